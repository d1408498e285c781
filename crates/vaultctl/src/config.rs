//! Vault settings for the commands that talk to a vault: from a `--config` TOML file,
//! then the `VGS_*` environment variables; never from flags. Builds the connector.

use std::fmt;
use std::path::Path;
use std::sync::Arc;

use secrecy::SecretString;
use serde::Deserialize;
use vault_auth::FetchStats;
use vault_auth::TokenStore;
use vault_auth_redis::{RedisStoreOptions, RedisTokenStore};
use vault_core::{
    DeleteRequest, DeleteResponse, Environment, EraseRequest, ExternalVault, InsertRequest,
    InsertResponse, ReportExt, RetrieveRequest, RetrieveResponse, VaultError, VaultResult,
    async_trait,
};
use vault_vgs::{
    ApiGeneration, CmpConnector, Fingerprinting, VgsConnector, VgsProxy, VgsProxyBuilder,
};

use crate::cli::VaultArgs;
use crate::output::Failure;

/// The environment variables read, in the order of [`Settings`]' fields.
pub(crate) const ENV_CLIENT_ID: &str = "VGS_CLIENT_ID";
pub(crate) const ENV_CLIENT_SECRET: &str = "VGS_CLIENT_SECRET";
pub(crate) const ENV_VAULT_ID: &str = "VGS_VAULT_ID";
pub(crate) const ENV_ENVIRONMENT: &str = "VGS_ENVIRONMENT";
pub(crate) const ENV_ENDPOINT: &str = "VGS_ENDPOINT";
pub(crate) const ENV_API: &str = "VGS_API";
/// The vault's fingerprinting setting (`on`/`off`; CMP: the duplicate-card check).
pub(crate) const ENV_FINGERPRINTING: &str = "VGS_FINGERPRINTING";
/// The outbound proxy's URL (`vaultctl forward`).
pub(crate) const ENV_PROXY_URL: &str = "VGS_PROXY_URL";
/// The vault's access credentials, for the proxy.
pub(crate) const ENV_PROXY_USERNAME: &str = "VGS_PROXY_USERNAME";
pub(crate) const ENV_PROXY_PASSWORD: &str = "VGS_PROXY_PASSWORD";
/// The proxy's CA certificate: a path, PEM, or base64 of PEM.
pub(crate) const ENV_PROXY_CA: &str = "VGS_PROXY_CA";
/// The shared token store's URL, when `--token-store` is not given.
pub(crate) const ENV_TOKEN_STORE: &str = "VAULTLINK_TOKEN_STORE";

/// The `--config` file. Unknown keys are refused so that a typo is not silently a
/// missing setting.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct ConfigFile {
    client_id: Option<String>,
    client_secret: Option<SecretString>,
    vault_id: Option<String>,
    environment: Option<String>,
    endpoint: Option<String>,
    api: Option<String>,
    fingerprinting: Option<String>,
    proxy_url: Option<String>,
    proxy_username: Option<String>,
    proxy_password: Option<SecretString>,
    proxy_ca: Option<String>,
}

/// Where the vault is: one of VGS's environments or a custom base URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Location {
    /// VGS's hosts for an environment.
    Environment(Environment),
    /// A custom base URL (the mock, a proxy).
    Endpoint(String),
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Location::Environment(env) => write!(f, "VGS {env}"),
            Location::Endpoint(url) => f.write_str(url),
        }
    }
}

/// Resolved vault settings. `Debug` hides the secret.
pub(crate) struct Settings {
    /// OAuth client id (API v1: access-credentials username).
    pub(crate) client_id: String,
    /// Its secret (API v1: password).
    client_secret: SecretString,
    /// The vault id, `tnt…` (validated when the connector is built).
    pub(crate) vault_id: String,
    /// Where the vault is.
    pub(crate) location: Location,
    /// Which API generation to speak.
    pub(crate) api: ApiGeneration,
    /// A Redis URL to share tokens through (`--token-store` / VAULTLINK_TOKEN_STORE).
    pub(crate) token_store: Option<String>,
    /// The vault's fingerprinting setting (CMP: its duplicate-card check).
    pub(crate) fingerprinting: Fingerprinting,
}

impl fmt::Debug for Settings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Settings")
            .field("client_id", &self.client_id)
            .field("client_secret", &vault_core::REDACTED)
            .field("vault_id", &self.vault_id)
            .field("location", &self.location)
            .field("api", &self.api)
            .field("fingerprinting", &self.fingerprinting)
            .field(
                "token_store",
                &self.token_store.as_ref().map(|_| "[configured]"),
            )
            .finish()
    }
}

impl Settings {
    /// Reads `--config` (if given) and fills what it leaves out from the process
    /// environment.
    pub(crate) fn load(args: &VaultArgs) -> Result<Self, Failure> {
        let api = args.api.as_deref().map(parse_api).transpose()?;
        let mut settings =
            Self::resolve_with(args.config.as_deref(), |name| std::env::var(name).ok(), api)?;
        settings.token_store = args
            .token_store
            .clone()
            .or_else(|| std::env::var(ENV_TOKEN_STORE).ok())
            .filter(|url| !url.trim().is_empty());
        Ok(settings)
    }

    /// [`Settings::load`] with the environment given as a lookup function (tests).
    pub(crate) fn resolve(
        config: Option<&Path>,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, Failure> {
        Self::resolve_with(config, env, None)
    }

    /// [`Settings::resolve`] with `--api` (which wins over the file and VGS_API).
    pub(crate) fn resolve_with(
        config: Option<&Path>,
        env: impl Fn(&str) -> Option<String>,
        api_flag: Option<ApiGeneration>,
    ) -> Result<Self, Failure> {
        let file = match config {
            Some(path) => read_config(path)?,
            None => ConfigFile::default(),
        };
        let env = |name: &str| env(name).filter(|v| !v.trim().is_empty());
        let from_file = config.is_some();
        let missing = |key: &str, var: &str, what: &str, how: &str| {
            let file_hint = if from_file {
                format!(" or `{key}` in the --config file")
            } else {
                format!(" (or `{key}` in a --config file)")
            };
            Failure::new(format!(
                "{var} is not set: vaultctl needs {what}. Fix: {how}{file_hint}"
            ))
        };

        let client_id = file
            .client_id
            .or_else(|| env(ENV_CLIENT_ID))
            .ok_or_else(|| {
                missing(
                    "client_id",
                    ENV_CLIENT_ID,
                    "the OAuth client id of a VGS service account",
                    "export VGS_CLIENT_ID=AC…",
                )
            })?;
        let client_secret = file
            .client_secret
            .or_else(|| env(ENV_CLIENT_SECRET).map(SecretString::from))
            .ok_or_else(|| {
                missing(
                    "client_secret",
                    ENV_CLIENT_SECRET,
                    "the client secret",
                    "set it without typing it on a command line: `read -rs VGS_CLIENT_SECRET && export VGS_CLIENT_SECRET`",
                )
            })?;
        let vault_id = file.vault_id.or_else(|| env(ENV_VAULT_ID)).ok_or_else(|| {
            missing(
                "vault_id",
                ENV_VAULT_ID,
                "the vault id",
                "export VGS_VAULT_ID=tnt… (shown in the VGS dashboard)",
            )
        })?;
        let endpoint = file.endpoint.or_else(|| env(ENV_ENDPOINT));
        let environment = file.environment.or_else(|| env(ENV_ENVIRONMENT));
        let location = match (endpoint, environment) {
            (Some(url), _) => Location::Endpoint(url.trim().to_owned()),
            (None, Some(name)) => {
                Location::Environment(name.trim().parse().map_err(|e| {
                    Failure::new(format!("{e}. Fix: set {ENV_ENVIRONMENT} (or `environment`) to sandbox, live or live-eu-1"))
                })?)
            }
            (None, None) => {
                return Err(missing(
                    "environment",
                    ENV_ENVIRONMENT,
                    "to know where the vault is",
                    "export VGS_ENVIRONMENT=sandbox (or live, live-eu-1), or VGS_ENDPOINT=URL for a custom endpoint such as `vaultctl mock serve`",
                ));
            }
        };
        let fingerprinting = match file.fingerprinting.or_else(|| env(ENV_FINGERPRINTING)) {
            None => Fingerprinting::On,
            Some(value) => match value.trim().to_ascii_lowercase().as_str() {
                "on" => Fingerprinting::On,
                "off" => Fingerprinting::Off,
                other => {
                    return Err(Failure::new(format!(
                        "fingerprinting `{}` is neither on nor off. Fix: set {ENV_FINGERPRINTING} (or `fingerprinting`) to on or off, as the vault is configured (`vaultctl check` finds out)",
                        other.chars().take(20).collect::<String>()
                    )));
                }
            },
        };
        let api = match (api_flag, file.api.or_else(|| env(ENV_API))) {
            (Some(api), _) => api,
            (None, None) => ApiGeneration::V2,
            (None, Some(name)) => parse_api(&name)?,
        };
        Ok(Settings {
            client_id: client_id.trim().to_owned(),
            client_secret,
            vault_id: vault_id.trim().to_owned(),
            location,
            api,
            token_store: None,
            fingerprinting,
        })
    }

    /// The client secret (API v1: the password), for `vaultctl bench`'s bare-HTTP
    /// baseline, which authenticates by itself.
    pub(crate) fn client_secret(&self) -> &SecretString {
        &self.client_secret
    }

    /// `v2`, `v1` or `cmp`.
    pub(crate) fn api_name(&self) -> &'static str {
        match self.api {
            ApiGeneration::V1 => "v1",
            ApiGeneration::V2 => "v2",
            ApiGeneration::Cmp => "cmp",
        }
    }

    /// One line saying which vault, where, as whom: never the secret.
    pub(crate) fn describe(&self) -> String {
        format!(
            "vault {} at {} (API {}, client {})",
            self.vault_id,
            self.location,
            self.api_name(),
            self.client_id
        )
    }

    /// Builds the connector. Makes no vault request; with a token store, connects to
    /// Redis first (a bad URL is an error; an unreachable Redis is one warning, then
    /// this process fetches its own tokens until Redis answers).
    pub(crate) async fn connector(&self) -> Result<VgsConnector, Failure> {
        if self.api == ApiGeneration::Cmp {
            return Err(Failure::new(
                "this command speaks the alias API only, not CMP (the Card Management Platform). Fix: use insert, retrieve id=CRD…, delete or check with --api cmp, or set VGS_API to v2 or v1",
            ));
        }
        let builder = VgsConnector::builder()
            .credentials(self.client_id.clone(), self.client_secret.clone())
            .vault_id(self.vault_id.clone())
            .api(self.api)
            .fingerprinting(self.fingerprinting);
        let mut builder = match &self.location {
            Location::Environment(env) => builder.environment(*env),
            Location::Endpoint(url) => builder.endpoint(url.clone()),
        };
        if let Some(url) = &self.token_store {
            builder = builder.token_store(token_store(url).await?);
        }
        builder
            .build()
            .map_err(|report| Failure::vault("the vault settings are not usable", &report))
    }

    /// The connector the settings ask for: the alias connector, or CMP's.
    pub(crate) async fn vault(&self) -> Result<Connector, Failure> {
        if self.api != ApiGeneration::Cmp {
            return self.connector().await.map(Connector::Alias);
        }
        self.cmp(None).await.map(Connector::Cmp)
    }

    /// The CMP connector `vaultctl forward` reads a card's aliases with: scope
    /// `cards:read` only, so that it is never shown the card in clear.
    pub(crate) async fn card_lookup(&self) -> Result<CmpConnector, Failure> {
        self.cmp(Some("cards:read")).await
    }

    async fn cmp(&self, scope: Option<&str>) -> Result<CmpConnector, Failure> {
        let mut builder = CmpConnector::builder()
            .credentials(self.client_id.clone(), self.client_secret.clone())
            .vault_id(self.vault_id.clone())
            .duplicate_card_check(self.fingerprinting.is_on());
        if let Some(scope) = scope {
            builder = builder.scopes([scope]);
        }
        let mut builder = match &self.location {
            Location::Environment(env) => builder.environment(*env),
            Location::Endpoint(url) => builder.endpoint(url.clone()),
        };
        if let Some(url) = &self.token_store {
            builder = builder.token_store(token_store(url).await?);
        }
        builder
            .build()
            .map_err(|report| Failure::vault("the vault settings are not usable", &report))
    }
}

/// A built connector: VGS's alias connector (API v1/v2) or the CMP connector. Both are
/// an [`ExternalVault`]; the rest is what `check` reports.
pub(crate) enum Connector {
    /// API v1 or v2.
    Alias(VgsConnector),
    /// The Card Management Platform.
    Cmp(CmpConnector),
}

impl Connector {
    /// Fetches a token and makes one read that must answer "not found".
    pub(crate) async fn check(&self) -> VaultResult<()> {
        match self {
            Connector::Alias(connector) => connector.check().await,
            Connector::Cmp(connector) => connector.check().await,
        }
    }

    /// Token fetches so far.
    pub(crate) fn token_fetches(&self) -> Option<FetchStats> {
        match self {
            Connector::Alias(connector) => connector.token_fetches(),
            Connector::Cmp(connector) => connector.token_fetches(),
        }
    }

    /// Probes the alias API's fingerprinting; `None` for CMP (its duplicate check is
    /// not probed: that would store a card).
    pub(crate) async fn probe_fingerprinting(&self) -> Option<VaultResult<Fingerprinting>> {
        match self {
            Connector::Alias(connector) => Some(connector.probe_fingerprinting().await),
            Connector::Cmp(_) => None,
        }
    }

    /// The last `x-ratelimit-remaining` seen.
    pub(crate) fn rate_limit_remaining(&self) -> Option<u64> {
        match self {
            Connector::Alias(connector) => connector.rate_limit_remaining(),
            Connector::Cmp(connector) => connector.rate_limit_remaining(),
        }
    }

    fn as_vault(&self) -> &dyn ExternalVault {
        match self {
            Connector::Alias(connector) => connector,
            Connector::Cmp(connector) => connector,
        }
    }
}

#[async_trait]
impl ExternalVault for Connector {
    async fn insert(&self, request: InsertRequest) -> VaultResult<InsertResponse> {
        self.as_vault().insert(request).await
    }

    async fn retrieve(&self, request: RetrieveRequest) -> VaultResult<RetrieveResponse> {
        self.as_vault().retrieve(request).await
    }

    async fn delete(&self, request: DeleteRequest) -> VaultResult<DeleteResponse> {
        self.as_vault().delete(request).await
    }

    async fn erase(&self, request: EraseRequest) -> VaultResult<DeleteResponse> {
        self.as_vault().erase(request).await
    }

    async fn warm_up(&self) -> VaultResult<()> {
        self.as_vault().warm_up().await
    }
}

/// Parses an API generation name (`--api`, VGS_API, `api`).
fn parse_api(name: &str) -> Result<ApiGeneration, Failure> {
    match name.trim() {
        "v2" | "V2" | "2" => Ok(ApiGeneration::V2),
        "v1" | "V1" | "1" => Ok(ApiGeneration::V1),
        "cmp" | "CMP" => Ok(ApiGeneration::Cmp),
        other => Err(Failure::new(format!(
            "API generation `{other}` is not known. Fix: set --api, {ENV_API} (or `api`) to v2, v1 or cmp"
        ))),
    }
}

/// Connects the shared token store.
async fn token_store(url: &str) -> Result<Arc<dyn TokenStore>, Failure> {
    let options = RedisStoreOptions::new();
    match RedisTokenStore::connect(url, options.clone()).await {
        Ok(store) => Ok(store),
        Err(report) if report.kind() == VaultError::InvalidConfig => Err(Failure::vault(
            "the token store URL is not usable (give redis://host:6379/0 or rediss://…)",
            &report,
        )),
        Err(report) => {
            eprintln!(
                "warning: the token store is unreachable ({}); fetching tokens in this process until it answers",
                report.kind()
            );
            RedisTokenStore::connect_lazy(url, options)
                .map(|store| store as Arc<dyn TokenStore>)
                .map_err(|report| Failure::vault("the token store URL is not usable", &report))
        }
    }
}

/// The outbound proxy's settings (`vaultctl forward`), from `--config` then the
/// environment; the proxy URL defaults to the vault's (VGS_VAULT_ID, VGS_ENVIRONMENT).
pub(crate) fn proxy_builder(
    config: Option<&Path>,
    env: impl Fn(&str) -> Option<String>,
) -> Result<VgsProxyBuilder, Failure> {
    let file = match config {
        Some(path) => read_config(path)?,
        None => ConfigFile::default(),
    };
    let env = |name: &str| env(name).filter(|v| !v.trim().is_empty());
    let mut builder = VgsProxy::builder();
    match file.proxy_url.or_else(|| env(ENV_PROXY_URL)) {
        Some(url) => builder = builder.proxy_url(url),
        None => {
            let vault = file.vault_id.or_else(|| env(ENV_VAULT_ID));
            let environment = file.environment.or_else(|| env(ENV_ENVIRONMENT));
            let (Some(vault), Some(environment)) = (vault, environment) else {
                return Err(Failure::new(format!(
                    "the outbound proxy is not set. Fix: export {ENV_PROXY_URL}=https://tnt….sandbox.verygoodproxy.com:8443 (for the mock: the `outbound proxy:` line of `vaultctl mock serve --routes`), or {ENV_VAULT_ID} and {ENV_ENVIRONMENT}"
                )));
            };
            let environment: Environment = environment.trim().parse().map_err(|_| {
                Failure::new(format!(
                    "environment `{}` is not known. Fix: set {ENV_ENVIRONMENT} (or `environment`) to sandbox, live or live-eu-1",
                    environment.trim()
                ))
            })?;
            builder = builder.vault_id(vault).environment(environment);
        }
    }
    let username = file.proxy_username.or_else(|| env(ENV_PROXY_USERNAME));
    let password = file
        .proxy_password
        .or_else(|| env(ENV_PROXY_PASSWORD).map(SecretString::from));
    match (username, password) {
        (Some(username), Some(password)) => {
            builder = builder.access_credentials(username, password);
        }
        (None, None) => {}
        (Some(_), None) => {
            return Err(Failure::new(format!(
                "{ENV_PROXY_USERNAME} is set but not {ENV_PROXY_PASSWORD}. Fix: set it without typing it on a command line: `read -rs {ENV_PROXY_PASSWORD} && export {ENV_PROXY_PASSWORD}`"
            )));
        }
        (None, Some(_)) => {
            return Err(Failure::new(format!(
                "{ENV_PROXY_PASSWORD} is set but not {ENV_PROXY_USERNAME}. Fix: export {ENV_PROXY_USERNAME}=US… (the vault's access credentials)"
            )));
        }
    }
    if let Some(ca) = file.proxy_ca.or_else(|| env(ENV_PROXY_CA)) {
        builder = builder.certificate(certificate_text(ca.trim())?);
    }
    Ok(builder)
}

/// VGS_PROXY_CA: PEM itself, a file holding it, or base64 of it (as Hyperswitch's
/// metadata keeps it; the proxy checks that it decodes to PEM). Never echoed: a
/// base64 blob is long, and a mistyped value may be anything.
fn certificate_text(given: &str) -> Result<String, Failure> {
    if given.contains("-----BEGIN") {
        return Ok(given.to_owned());
    }
    let path = Path::new(given);
    if path.is_file() {
        return std::fs::read_to_string(path).map_err(|e| {
            Failure::new(format!(
                "cannot read the proxy CA certificate file ({ENV_PROXY_CA} or `proxy_ca`): {e}. Fix: check the path and its permissions"
            ))
        });
    }
    let base64 = given.len() >= 64
        && given
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'=' | b'\n' | b'\r'));
    if base64 {
        return Ok(given.to_owned());
    }
    Err(Failure::new(format!(
        "the proxy CA certificate ({ENV_PROXY_CA} or `proxy_ca`) is not a file that exists, PEM, or base64 of PEM. Fix: set it to the path of the PEM file VGS gives (sandbox.pem), or to its contents"
    )))
}

fn read_config(path: &Path) -> Result<ConfigFile, Failure> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        Failure::new(format!(
            "cannot read the config file {}: {e}. Fix: check the path and its permissions",
            path.display()
        ))
    })?;
    toml::from_str(&text).map_err(|e| {
        // Not `e.to_string()`: toml quotes the offending source line, which may hold
        // the client secret. The message and the line number are enough.
        // A span starting at 0 is the whole document (e.g. an unknown key): no line.
        let line = e
            .span()
            .filter(|span| span.start > 0)
            .map(|span| text[..span.start.min(text.len())].lines().count().max(1));
        let at = line.map(|n| format!(" (line {n})")).unwrap_or_default();
        Failure::new(format!(
            "the config file {} is not valid{at}: {}. Fix: use TOML with the keys client_id, client_secret, vault_id, environment or endpoint, api, fingerprinting, and for `forward` proxy_url, proxy_username, proxy_password, proxy_ca",
            path.display(),
            e.message().trim_end()
        ))
    })
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        move |name| map.get(name).cloned()
    }

    #[test]
    fn the_proxy_ca_is_a_path_pem_or_base64_and_a_bad_one_is_never_echoed() {
        use base64::Engine as _;
        let pem = vgs_mock::CertificateAuthority::generate("test CA")
            .unwrap()
            .certificate_pem()
            .to_owned();
        let b64 = base64::engine::general_purpose::STANDARD.encode(&pem);
        assert!(b64.contains('/') || b64.len() > 64, "base64 of PEM is long");
        let base = [
            (ENV_PROXY_URL, "http://127.0.0.1:9"),
            (ENV_PROXY_USERNAME, "US1"),
            (ENV_PROXY_PASSWORD, "proxy-pass-Zq"),
        ];
        for ca in [pem.as_str(), b64.as_str()] {
            let mut pairs = base.to_vec();
            pairs.push((ENV_PROXY_CA, ca));
            let proxy = proxy_builder(None, env(&pairs)).unwrap().build();
            assert!(proxy.is_ok(), "{:?}", proxy.err());
        }
        for bad in ["/no/such/sandbox.pem", "short garbage"] {
            let mut pairs = base.to_vec();
            pairs.push((ENV_PROXY_CA, bad));
            let err = proxy_builder(None, env(&pairs)).expect_err(bad);
            assert!(err.message.contains(ENV_PROXY_CA), "{}", err.message);
            assert!(!err.message.contains(bad), "echoed: {}", err.message);
        }
    }

    const FULL: [(&str, &str); 4] = [
        (ENV_CLIENT_ID, "ACclient"),
        (ENV_CLIENT_SECRET, "env-secret-Zq81"),
        (ENV_VAULT_ID, "tntabc123"),
        (ENV_ENVIRONMENT, "sandbox"),
    ];

    #[tokio::test]
    async fn settings_come_from_the_environment() {
        let settings = Settings::resolve(None, env(&FULL)).expect("complete");
        assert_eq!(settings.client_id, "ACclient");
        assert_eq!(settings.vault_id, "tntabc123");
        assert_eq!(
            settings.location,
            Location::Environment(Environment::Sandbox)
        );
        assert_eq!(settings.api, ApiGeneration::V2);
        let debug = format!("{settings:?} {}", settings.describe());
        assert!(!debug.contains("env-secret-Zq81"), "{debug}");
        settings.connector().await.expect("builds");
    }

    #[tokio::test]
    async fn cmp_is_a_third_api_and_the_api_flag_wins() {
        let mut pairs = FULL.to_vec();
        pairs.push((ENV_API, "cmp"));
        let settings = Settings::resolve(None, env(&pairs)).expect("cmp");
        assert_eq!(settings.api, ApiGeneration::Cmp);
        assert!(
            settings.describe().contains("API cmp"),
            "{}",
            settings.describe()
        );
        assert!(matches!(
            settings.vault().await.expect("builds"),
            Connector::Cmp(_)
        ));
        let err = settings.connector().await.expect_err("alias-only commands");
        assert!(err.message.contains("--api cmp"), "{}", err.message);
        let flagged =
            Settings::resolve_with(None, env(&pairs), Some(ApiGeneration::V1)).expect("flag");
        assert_eq!(flagged.api, ApiGeneration::V1);
        let err = parse_api("v3").expect_err("unknown");
        assert!(err.message.contains("v2, v1 or cmp"), "{}", err.message);
    }

    #[test]
    fn a_missing_secret_says_how_to_set_it_without_shell_history() {
        let err = Settings::resolve(None, env(&FULL[..1])).expect_err("no secret");
        assert!(
            err.message.starts_with("VGS_CLIENT_SECRET is not set"),
            "{}",
            err.message
        );
        assert!(err.message.contains("read -rs"), "{}", err.message);
    }

    #[test]
    fn endpoint_wins_over_environment_and_bad_values_are_named() {
        let mut pairs = FULL.to_vec();
        pairs.push((ENV_ENDPOINT, "http://127.0.0.1:9"));
        let settings = Settings::resolve(None, env(&pairs)).expect("complete");
        assert_eq!(
            settings.location,
            Location::Endpoint("http://127.0.0.1:9".into())
        );

        let mut pairs = FULL.to_vec();
        pairs[3] = (ENV_ENVIRONMENT, "prod");
        let err = Settings::resolve(None, env(&pairs)).expect_err("bad env");
        assert!(err.message.contains("live-eu-1"), "{}", err.message);

        let mut pairs = FULL.to_vec();
        pairs.push((ENV_API, "v3"));
        let err = Settings::resolve(None, env(&pairs)).expect_err("bad api");
        assert!(err.message.contains("v3"), "{}", err.message);
    }

    #[test]
    fn config_file_settings_win_and_the_environment_fills_gaps() {
        let dir = std::env::temp_dir().join(format!("vaultctl-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("tmp");
        let path = dir.join("vault.toml");
        std::fs::write(
            &path,
            "client_id = \"file-client\"\nclient_secret = \"file-secret\"\nvault_id = \"tntfile1\"\napi = \"v1\"\n",
        )
        .expect("write");
        let settings = Settings::resolve(Some(&path), env(&FULL)).expect("complete");
        assert_eq!(settings.client_id, "file-client");
        assert_eq!(settings.vault_id, "tntfile1");
        assert_eq!(settings.api, ApiGeneration::V1);
        assert_eq!(
            settings.location,
            Location::Environment(Environment::Sandbox)
        );

        // A typo'd key is refused, and the error never quotes the file's lines.
        std::fs::write(&path, "client_secret = \"file-secret\"\nvault = 1\n").expect("write");
        let err = Settings::resolve(Some(&path), env(&FULL)).expect_err("unknown key");
        assert!(
            err.message.contains("unknown field `vault`"),
            "{}",
            err.message
        );

        assert!(!err.message.contains("file-secret"), "{}", err.message);

        std::fs::write(&path, "client_secret = \"file-secret\n").expect("write");
        let err = Settings::resolve(Some(&path), env(&FULL)).expect_err("bad toml");
        assert!(!err.message.contains("file-secret"), "{}", err.message);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
