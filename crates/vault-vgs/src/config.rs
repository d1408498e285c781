//! `VgsConnectorBuilder`: credentials, vault id, environment or custom endpoint, API
//! generation, alias formats, timeouts and retries, each default documented here.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use error_stack::Report;
use secrecy::SecretString;
use vault_auth::{Clock, TokenStore};
use vault_core::{
    AliasFormat, ConnectorAuthType, Detail, Environment, VaultError, VaultId, WallClock,
};

use crate::connector::VgsConnector;
use crate::retry::RetryPolicy;
use crate::routing::{ApiGeneration, Endpoint, checked_url};

/// Time limits of a call. Defaults: connect 2 s, each attempt 5 s, the whole call
/// (token wait, every attempt and the backoff between them) 15 s.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    /// Establishing a TCP (and TLS) connection. Default 2 s.
    pub connect: Duration,
    /// One HTTP exchange, from sending the request to the last byte of the answer.
    /// Default 5 s.
    pub per_attempt: Duration,
    /// The whole call as the orchestrator sees it. Default 15 s.
    pub total: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            connect: Duration::from_secs(2),
            per_attempt: Duration::from_secs(5),
            total: Duration::from_secs(15),
        }
    }
}

/// Whether the vault gives equal values one record: VGS's per-vault fingerprinting
/// setting for the alias API (dashboard: the vault's advanced settings), or CMP's
/// duplicate-card check for a card-object tenant.
///
/// It decides two things, so set it to what the vault does (`vaultctl check` probes
/// the alias API and says which it found):
///
/// | | `On` | `Off` |
/// |---|---|---|
/// | insert after a timeout, reset or 5xx | sent again: the vault returns the first attempt's aliases | not sent again: [`VaultError::InsertOutcomeUnknown`] |
/// | delete | records shared by value are kept ([`vault_core::KeptBecause::SharedByValue`]) | every record of the card is removed |
///
/// Setting `On` for a vault that is off risks a card stored twice after a retried
/// insert; setting `Off` for a vault that is on lets a delete remove records other
/// cards share. The default is `On`, VGS's usual setting, and the one where a wrong
/// guess loses no data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Fingerprinting {
    /// Equal values share one record (one alias per value and format).
    #[default]
    On,
    /// Every insert stores new records.
    Off,
}

impl Fingerprinting {
    /// True for [`Fingerprinting::On`].
    pub const fn is_on(self) -> bool {
        matches!(self, Fingerprinting::On)
    }

    /// `"on"` or `"off"`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Fingerprinting::On => "on",
            Fingerprinting::Off => "off",
        }
    }
}

impl fmt::Display for Fingerprinting {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Builds a [`VgsConnector`]. Nothing defaults to a production host: give an
/// [`Environment`] or a custom endpoint.
///
/// | setting | default |
/// |---|---|
/// | API generation | [`ApiGeneration::V2`] (OAuth bearer token) |
/// | card number alias format | `FPE_SIX_T_FOUR` (keeps BIN and last four) |
/// | timeouts | [`Timeouts::default`]: connect 2 s, attempt 5 s, total 15 s |
/// | retries | [`RetryPolicy::default`]: 3 attempts, 50 ms..1 s full-jitter backoff |
/// | batch concurrency | 4 requests in flight for `insert_many` / `retrieve_many` |
/// | largest response read | 1 MiB (a larger body is refused, not buffered) |
/// | OAuth scopes | none requested (the service account's granted scopes) |
/// | fingerprinting | [`Fingerprinting::On`]: set it to the vault's setting |
/// | wall clock | the system's (for CVC expiry in ids) |
pub struct VgsConnectorBuilder {
    pub(crate) api: ApiGeneration,
    pub(crate) vault_id: Option<String>,
    pub(crate) client_id: Option<String>,
    pub(crate) secret: Option<SecretString>,
    pub(crate) environment: Option<Environment>,
    pub(crate) endpoint: Option<String>,
    pub(crate) token_url: Option<String>,
    pub(crate) scopes: Vec<String>,
    pub(crate) card_number_format: AliasFormat,
    pub(crate) timeouts: Timeouts,
    pub(crate) retry: RetryPolicy,
    pub(crate) batch_concurrency: usize,
    pub(crate) max_response_bytes: usize,
    pub(crate) http_client: Option<reqwest::Client>,
    pub(crate) clock: Option<Arc<dyn Clock>>,
    pub(crate) token_store: Option<Arc<dyn TokenStore>>,
    pub(crate) proxy: Option<String>,
    pub(crate) fingerprinting: Fingerprinting,
    pub(crate) wall_clock: Option<Arc<dyn WallClock>>,
}

impl fmt::Debug for VgsConnectorBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VgsConnectorBuilder")
            .field("api", &self.api)
            .field("vault_id", &self.vault_id)
            .field("client_id", &self.client_id)
            .field(
                "secret",
                &self.secret.as_ref().map(|_| vault_core::REDACTED),
            )
            .field("environment", &self.environment)
            .field("endpoint", &self.endpoint)
            .field("card_number_format", &self.card_number_format)
            .field("timeouts", &self.timeouts)
            .field("retry", &self.retry)
            .field("proxy", &self.proxy.as_ref().map(|_| "[configured]"))
            .field("fingerprinting", &self.fingerprinting)
            .finish_non_exhaustive()
    }
}

impl Default for VgsConnectorBuilder {
    fn default() -> Self {
        VgsConnectorBuilder {
            api: ApiGeneration::V2,
            vault_id: None,
            client_id: None,
            secret: None,
            environment: None,
            endpoint: None,
            token_url: None,
            scopes: Vec::new(),
            card_number_format: AliasFormat::FpeSixTFour,
            timeouts: Timeouts::default(),
            retry: RetryPolicy::default(),
            batch_concurrency: 4,
            max_response_bytes: 1 << 20,
            http_client: None,
            clock: None,
            token_store: None,
            proxy: None,
            fingerprinting: Fingerprinting::On,
            wall_clock: None,
        }
    }
}

impl VgsConnectorBuilder {
    /// Takes credentials and vault id from Hyperswitch's envelope:
    /// `SignatureKey { api_key: client id, key1: client secret, api_secret: vault id }`
    /// (with [`ApiGeneration::V1`], `api_key`/`key1` are the access credentials'
    /// username and password). Any other variant is an `InvalidConfig` error naming
    /// `SignatureKey`.
    pub fn auth_type(mut self, auth: &ConnectorAuthType) -> Result<Self, Report<VaultError>> {
        let key = auth.signature_key()?;
        self.client_id = Some(key.api_key);
        self.secret = Some(key.key1);
        self.vault_id = Some(key.api_secret);
        Ok(self)
    }

    /// The OAuth client (API v2) or access credentials (API v1): an id and a secret.
    pub fn credentials(mut self, id: impl Into<String>, secret: SecretString) -> Self {
        self.client_id = Some(id.into());
        self.secret = Some(secret);
        self
    }

    /// The vault id (`tnt…`), validated at [`build`](Self::build).
    pub fn vault_id(mut self, vault_id: impl Into<String>) -> Self {
        self.vault_id = Some(vault_id.into());
        self
    }

    /// The VGS environment, which picks the hosts.
    pub fn environment(mut self, environment: Environment) -> Self {
        self.environment = Some(environment);
        self
    }

    /// A custom base URL instead of VGS's hosts (see [`Endpoint`] for the layout):
    /// `https`, or `http` to loopback only. Overrides the environment's hosts.
    pub fn endpoint(mut self, base: impl Into<String>) -> Self {
        self.endpoint = Some(base.into());
        self
    }

    /// A token endpoint other than VGS's (or the custom endpoint's) Keycloak URL.
    pub fn token_url(mut self, url: impl Into<String>) -> Self {
        self.token_url = Some(url.into());
        self
    }

    /// Which alias API to speak. Default [`ApiGeneration::V2`].
    /// ([`ApiGeneration::Cmp`] is spoken by [`CmpConnector`](crate::CmpConnector):
    /// `build` refuses it here.)
    pub fn api(mut self, api: ApiGeneration) -> Self {
        self.api = api;
        self
    }

    /// OAuth scopes to request (API v2), e.g. `aliases:read`. Default none.
    pub fn scopes<I, S>(mut self, scopes: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.scopes = scopes.into_iter().map(Into::into).collect();
        self
    }

    /// The alias format of card numbers in per-field mode. Default `FPE_SIX_T_FOUR`.
    pub fn card_number_format(mut self, format: AliasFormat) -> Self {
        self.card_number_format = format;
        self
    }

    /// Time limits. Default [`Timeouts::default`].
    pub fn timeouts(mut self, timeouts: Timeouts) -> Self {
        self.timeouts = timeouts;
        self
    }

    /// Retry policy. Default [`RetryPolicy::default`].
    pub fn retry(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }

    /// How many batch requests run at once in `insert_many` / `retrieve_many`.
    /// Default 4; at least 1.
    pub fn batch_concurrency(mut self, requests: usize) -> Self {
        self.batch_concurrency = requests.max(1);
        self
    }

    /// The largest response body read, in bytes. Default 1 MiB.
    pub fn max_response_bytes(mut self, bytes: usize) -> Self {
        self.max_response_bytes = bytes;
        self
    }

    /// A `reqwest::Client` to share (its own timeouts and redirect policy then apply;
    /// make sure it follows no redirects). Default: one built for this connector with
    /// no redirects, the connect timeout, TCP_NODELAY and rustls.
    pub fn http_client(mut self, client: reqwest::Client) -> Self {
        self.http_client = Some(client);
        self
    }

    /// The clock for token expiry (tests inject a manual one). Default: the system's
    /// monotonic clock.
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = Some(clock);
        self
    }

    /// An HTTP(S) proxy for the `https` calls (e.g. a corporate egress proxy, or VGS's
    /// forward proxy), as a URL; credentials may be given in it
    /// (`http://user:pass@proxy:3128`). Calls are tunnelled with `CONNECT`, so TLS to
    /// VGS stays end to end and no redirect is followed. Plain-`http` loopback
    /// endpoints never go through it. Default: no proxy, and proxy environment
    /// variables (`HTTPS_PROXY`, …) are ignored, so card data cannot be routed by a
    /// variable set elsewhere.
    pub fn proxy(mut self, url: impl Into<String>) -> Self {
        self.proxy = Some(url.into());
        self
    }

    /// Where access tokens are kept (e.g. Redis, shared by replicas). Default: in
    /// process memory.
    pub fn token_store(mut self, store: Arc<dyn TokenStore>) -> Self {
        self.token_store = Some(store);
        self
    }

    /// The vault's fingerprinting setting; see [`Fingerprinting`] for what it
    /// decides. Default [`Fingerprinting::On`].
    pub fn fingerprinting(mut self, fingerprinting: Fingerprinting) -> Self {
        self.fingerprinting = fingerprinting;
        self
    }

    /// The calendar clock that CVC expiries in ids are computed and compared with
    /// (tests inject the mock's). Default: the system's.
    pub fn wall_clock(mut self, clock: Arc<dyn WallClock>) -> Self {
        self.wall_clock = Some(clock);
        self
    }

    /// Validates everything and builds the connector. Makes no request.
    pub fn build(self) -> Result<VgsConnector, Report<VaultError>> {
        if self.api == ApiGeneration::Cmp {
            return Err(Report::new(VaultError::InvalidConfig).attach(Detail::new(
                "ApiGeneration::Cmp is the Card Management Platform, spoken by CmpConnector; build it with CmpConnector::builder()",
            )));
        }
        self.build_any()
    }

    /// [`build`](Self::build) for any API generation: the CMP connector's base too.
    pub(crate) fn build_any(self) -> Result<VgsConnector, Report<VaultError>> {
        let missing = |what: &str, how: &str| {
            Report::new(VaultError::InvalidConfig).attach(Detail::new(format!("{what}; {how}")))
        };
        let vault_id = self.vault_id.as_deref().ok_or_else(|| {
            missing(
                "the vault id is not set",
                "call .vault_id(\"tnt…\") or .auth_type(…)",
            )
        })?;
        let vault_id = VaultId::new(vault_id.trim()).map_err(|e| e.into_report())?;
        let endpoint = match (&self.endpoint, self.environment) {
            (Some(base), _) => Endpoint::custom(base)?,
            (None, Some(env)) => Endpoint::Vgs(env),
            (None, None) => {
                return Err(missing(
                    "the environment is not set",
                    "call .environment(Environment::Sandbox) (or Live / LiveEu1), or .endpoint(url)",
                ));
            }
        };
        let token_url = self.token_url.as_deref().map(checked_url).transpose()?;
        if self
            .client_id
            .as_deref()
            .is_none_or(|id| id.trim().is_empty())
            || self.secret.is_none()
        {
            return Err(missing(
                "the credentials are not set",
                "call .credentials(client_id, client_secret) or .auth_type(&SignatureKey)",
            ));
        }
        VgsConnector::from_builder(self, vault_id, endpoint, token_url)
    }
}

#[cfg(test)]
mod tests {
    use vault_core::ReportExt;

    use super::*;

    fn base() -> VgsConnectorBuilder {
        VgsConnectorBuilder::default()
            .credentials("ACid", SecretString::from("s3cret-value".to_owned()))
    }

    #[test]
    fn a_bad_vault_id_is_refused_before_any_request() {
        let err = base()
            .vault_id("tnt-bad.evil.com")
            .environment(Environment::Sandbox)
            .build()
            .expect_err("bad id");
        assert_eq!(err.kind(), VaultError::InvalidConfig);
        assert!(
            err.details()[0].contains("vault id `tnt-bad.evil.com` is not valid"),
            "{:?}",
            err.details()
        );
    }

    #[test]
    fn nothing_defaults_to_a_production_host() {
        let err = base()
            .vault_id("tntabc1")
            .build()
            .expect_err("no environment");
        assert!(
            err.details()[0].contains("the environment is not set"),
            "{:?}",
            err.details()
        );
    }

    #[test]
    fn missing_credentials_and_vault_id_are_named() {
        let err = VgsConnectorBuilder::default()
            .vault_id("tntabc1")
            .environment(Environment::Live)
            .build()
            .expect_err("no creds");
        assert!(
            err.details()[0].contains("the credentials are not set"),
            "{:?}",
            err.details()
        );
        let err = base()
            .environment(Environment::Live)
            .build()
            .expect_err("no vault");
        assert!(
            err.details()[0].contains("the vault id is not set"),
            "{:?}",
            err.details()
        );
    }

    #[test]
    fn plain_http_endpoint_off_loopback_is_refused() {
        let err = base()
            .vault_id("tntabc1")
            .endpoint("http://vault.internal:8080")
            .build()
            .expect_err("http");
        assert_eq!(err.kind(), VaultError::InvalidConfig);
        let err = base()
            .vault_id("tntabc1")
            .environment(Environment::Sandbox)
            .token_url("http://10.1.2.3/token")
            .build()
            .expect_err("http token");
        assert_eq!(err.kind(), VaultError::InvalidConfig);
    }

    #[test]
    fn builder_debug_hides_the_secret() {
        let rendered = format!("{:?}", base());
        assert!(!rendered.contains("s3cret-value"), "{rendered}");
        assert!(rendered.contains("[REDACTED]"));
    }

    #[tokio::test]
    async fn connector_builds_from_signature_key_for_every_environment() {
        for env in [Environment::Sandbox, Environment::Live] {
            let connector = base()
                .vault_id("tntabc1")
                .environment(env)
                .build()
                .expect("builds");
            assert_eq!(connector.vault_id().as_str(), "tntabc1");
            assert!(!format!("{connector:?}").contains("s3cret-value"));
        }
    }
}
