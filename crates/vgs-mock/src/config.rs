//! The mock's explicit configuration: vaults and their v1 access credentials, OAuth
//! clients and their scopes (and CMP tenant), token lifetime, rate limit, CMP's CVC
//! window and duplicate check, faults and clock.

use std::fmt;
use std::time::Duration;

use crate::clock::MockClock;
use crate::faults::FaultConfig;

/// Vault id of [`MockConfig::demo`].
pub const DEMO_VAULT_ID: &str = "tntdemo00001";
/// OAuth client id of [`MockConfig::demo`].
pub const DEMO_CLIENT_ID: &str = "demo-client";
/// OAuth client secret of [`MockConfig::demo`].
pub const DEMO_CLIENT_SECRET: &str = "demo-secret";
/// Vault API v1 access-credential username of [`MockConfig::demo`].
pub const DEMO_V1_USERNAME: &str = "demo-user";
/// Vault API v1 access-credential password of [`MockConfig::demo`].
pub const DEMO_V1_PASSWORD: &str = "demo-password";

/// The vault API v2 scopes: `aliases:read`, `aliases:write`, `aliases:delete`.
pub const ALIAS_SCOPES: [&str; 3] = ["aliases:read", "aliases:write", "aliases:delete"];
/// The CMP scopes of a PCI client: `cards:write` (create, delete), `cards:read` (read
/// the non-PCI view), `cards:read-pci` (PAN and CVC in clear).
pub const CARD_SCOPES: [&str; 3] = ["cards:write", "cards:read", "cards:read-pci"];
/// OAuth client id of [`MockConfig::demo`]'s CMP service account.
pub const DEMO_CMP_CLIENT_ID: &str = "demo-cmp-client";
/// OAuth client secret of [`MockConfig::demo`]'s CMP service account.
pub const DEMO_CMP_CLIENT_SECRET: &str = "demo-cmp-secret";
/// How long CMP keeps a card's CVC unless configured: one hour (our choice; CMP says
/// "a short period", and one hour is how long the vault keeps VOLATILE values).
pub const DEFAULT_CVC_WINDOW: Duration = Duration::from_secs(3600);
/// Token lifetime unless configured: 300 s, VGS's default for service accounts.
pub const DEFAULT_TOKEN_LIFETIME: Duration = Duration::from_secs(300);
/// Requests per minute and vault unless configured: 3,000, as the spec states.
pub const DEFAULT_RATE_LIMIT_PER_MINUTE: u32 = 3_000;

/// Everything the mock accepts and how it behaves. Build it with [`MockConfig::new`]
/// (no vaults, no clients) or [`MockConfig::demo`] and the `with_*` methods.
///
/// Defaults: token lifetime [`DEFAULT_TOKEN_LIFETIME`], rate limit
/// [`DEFAULT_RATE_LIMIT_PER_MINUTE`] per vault, no faults, the system clock.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct MockConfig {
    /// The vaults that exist; anything else is 404 on API v2 and unreachable on v1.
    pub vaults: Vec<VaultConfig>,
    /// OAuth clients the token endpoint accepts.
    pub clients: Vec<OAuthClient>,
    /// Lifetime of issued access tokens (`expires_in`).
    pub token_lifetime: Duration,
    /// Requests per one-minute window per vault; `None` lifts the limit (benchmarks)
    /// and then no `x-ratelimit-remaining` header is sent.
    pub rate_limit_per_minute: Option<u32>,
    /// Fault injection at start; change it at runtime with `MockState::set_faults`.
    pub faults: FaultConfig,
    /// The clock for token expiry, VOLATILE expiry and rate-limit windows.
    pub clock: MockClock,
    /// How long a CMP card keeps its CVC after it was stored ([`DEFAULT_CVC_WINDOW`]).
    pub cvc_window: Duration,
    /// CA certificates (PEM) the proxies trust for https upstreams, beside the public
    /// roots and the mock's own proxy authority. Default none.
    pub upstream_ca_pem: Vec<String>,
}

impl Default for MockConfig {
    fn default() -> Self {
        Self {
            vaults: Vec::new(),
            clients: Vec::new(),
            token_lifetime: DEFAULT_TOKEN_LIFETIME,
            rate_limit_per_minute: Some(DEFAULT_RATE_LIMIT_PER_MINUTE),
            faults: FaultConfig::default(),
            clock: MockClock::system(),
            cvc_window: DEFAULT_CVC_WINDOW,
            upstream_ca_pem: Vec::new(),
        }
    }
}

impl MockConfig {
    /// A config with no vaults and no clients, and the defaults above.
    pub fn new() -> Self {
        Self::default()
    }

    /// One vault [`DEMO_VAULT_ID`] with v1 credentials [`DEMO_V1_USERNAME`] /
    /// [`DEMO_V1_PASSWORD`], one OAuth client [`DEMO_CLIENT_ID`] /
    /// [`DEMO_CLIENT_SECRET`] granted all of [`ALIAS_SCOPES`], and one CMP service
    /// account [`DEMO_CMP_CLIENT_ID`] / [`DEMO_CMP_CLIENT_SECRET`] granted all of
    /// [`CARD_SCOPES`] (a PCI client) for tenant [`DEMO_VAULT_ID`].
    pub fn demo() -> Self {
        Self::new()
            .with_vault(DEMO_VAULT_ID, DEMO_V1_USERNAME, DEMO_V1_PASSWORD)
            .with_client(DEMO_CLIENT_ID, DEMO_CLIENT_SECRET, &ALIAS_SCOPES)
            .with_cmp_client(
                DEMO_CMP_CLIENT_ID,
                DEMO_CMP_CLIENT_SECRET,
                &CARD_SCOPES,
                DEMO_VAULT_ID,
            )
    }

    /// Adds a vault reachable on v1 with the access credentials `username`/`password`.
    pub fn with_vault(mut self, id: &str, username: &str, password: &str) -> Self {
        self.vaults.push(
            VaultConfig::new(id).with_v1_credentials(BasicCredentials::new(username, password)),
        );
        self
    }

    /// Adds an OAuth client granted `scopes`.
    pub fn with_client(mut self, id: &str, secret: &str, scopes: &[&str]) -> Self {
        self.clients.push(OAuthClient::new(id, secret, scopes));
        self
    }

    /// Adds a CMP service account of `tenant` granted `scopes` (e.g. [`CARD_SCOPES`],
    /// or `["cards:write", "cards:read"]` for a non-PCI client).
    pub fn with_cmp_client(
        mut self,
        id: &str,
        secret: &str,
        scopes: &[&str],
        tenant: &str,
    ) -> Self {
        self.clients
            .push(OAuthClient::new(id, secret, scopes).with_tenant(tenant));
        self
    }

    /// Sets fingerprinting on or off for every vault configured so far.
    pub fn with_fingerprinting(mut self, on: bool) -> Self {
        for vault in &mut self.vaults {
            vault.fingerprinting = on;
        }
        self
    }

    /// Gives vault `vault` these proxy routes (no effect for an unknown vault id).
    pub fn with_routes(mut self, vault: &str, routes: crate::routes::RouteFile) -> Self {
        if let Some(slot) = self.vaults.iter_mut().find(|v| v.id == vault) {
            slot.routes = Some(routes);
        }
        self
    }

    /// Trusts this CA certificate (PEM) for the proxies' https upstreams.
    pub fn with_upstream_ca(mut self, pem: &str) -> Self {
        self.upstream_ca_pem.push(pem.to_owned());
        self
    }

    /// Enables or disables reveal for every vault configured so far.
    pub fn with_reveal(mut self, on: bool) -> Self {
        for vault in &mut self.vaults {
            vault.reveal = on;
        }
        self
    }

    /// Sets how long CMP cards keep their CVC.
    pub fn with_cvc_window(mut self, window: Duration) -> Self {
        self.cvc_window = window;
        self
    }

    /// Sets the access-token lifetime.
    pub fn with_token_lifetime(mut self, lifetime: Duration) -> Self {
        self.token_lifetime = lifetime;
        self
    }

    /// Sets the per-vault limit per minute; `None` = unlimited.
    pub fn with_rate_limit_per_minute(mut self, limit: Option<u32>) -> Self {
        self.rate_limit_per_minute = limit;
        self
    }

    /// Sets the fault injection in force at start.
    pub fn with_faults(mut self, faults: FaultConfig) -> Self {
        self.faults = faults;
        self
    }

    /// Sets the clock (e.g. [`MockClock::manual`] in tests).
    pub fn with_clock(mut self, clock: MockClock) -> Self {
        self.clock = clock;
        self
    }
}

/// A vault: its id (VGS ids look like `tnt` + lowercase letters/digits) and the
/// access credentials that identify it on API v1.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct VaultConfig {
    /// Vault id, e.g. `tntdemo00001`.
    pub id: String,
    /// HTTP Basic access credentials for API v1; each pair identifies this vault.
    pub v1_credentials: Vec<BasicCredentials>,
    /// CMP's duplicate-card check for this tenant: creating a card whose PAN is
    /// already a card of the tenant answers 303 with the existing card. Default on.
    pub duplicate_card_check: bool,
    /// The vault's fingerprinting (VGS: a per-vault setting). On: the same value gets
    /// the same alias again (one record per value and storage). Off: every create
    /// stores a new record with a new alias. Default on.
    pub fingerprinting: bool,
    /// Whether values may be revealed (VGS enables reveal per vault on request). Off:
    /// `GET /aliases` and `GET /aliases/{alias}` answer 403 with VGS's message.
    /// Default on.
    pub reveal: bool,
    /// The vault's proxy routes (a VGS route file). When any vault has some, the mock
    /// also runs the outbound and inbound proxies. Default none.
    pub routes: Option<crate::routes::RouteFile>,
}

impl VaultConfig {
    /// A vault without v1 credentials (reachable on v2 only), duplicate-card check on.
    pub fn new(id: &str) -> Self {
        Self {
            id: id.to_owned(),
            v1_credentials: Vec::new(),
            duplicate_card_check: true,
            fingerprinting: true,
            reveal: true,
            routes: None,
        }
    }

    /// Sets the vault's proxy routes.
    pub fn with_routes(mut self, routes: crate::routes::RouteFile) -> Self {
        self.routes = Some(routes);
        self
    }

    /// Turns the vault's fingerprinting on or off.
    pub fn with_fingerprinting(mut self, on: bool) -> Self {
        self.fingerprinting = on;
        self
    }

    /// Enables or disables revealing values.
    pub fn with_reveal(mut self, on: bool) -> Self {
        self.reveal = on;
        self
    }

    /// Turns CMP's duplicate-card check on or off for this tenant.
    pub fn with_duplicate_card_check(mut self, on: bool) -> Self {
        self.duplicate_card_check = on;
        self
    }

    /// Adds a pair of v1 access credentials.
    pub fn with_v1_credentials(mut self, credentials: BasicCredentials) -> Self {
        self.v1_credentials.push(credentials);
        self
    }
}

/// Vault API v1 access credentials (HTTP Basic). `Debug` hides the password.
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct BasicCredentials {
    /// The username.
    pub username: String,
    /// The password.
    pub password: String,
}

impl BasicCredentials {
    /// A username/password pair.
    pub fn new(username: &str, password: &str) -> Self {
        Self {
            username: username.to_owned(),
            password: password.to_owned(),
        }
    }
}

impl fmt::Debug for BasicCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BasicCredentials")
            .field("username", &self.username)
            .field("password", &"[redacted]")
            .finish()
    }
}

/// An OAuth client of the token endpoint. `Debug` hides the secret.
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct OAuthClient {
    /// The client id.
    pub id: String,
    /// The client secret.
    pub secret: String,
    /// Scopes the client may be granted (a token request may ask for a subset).
    pub scopes: Vec<String>,
    /// The CMP tenant (vault id) whose cards the client's tokens reach. CMP's host
    /// names no tenant: a service account belongs to one. `None`: the first vault of
    /// the configuration.
    pub tenant: Option<String>,
    /// The vaults the service account is assigned to on API v2; a call for any other
    /// vault (or one that does not exist) answers 401, as VGS does. `None`: every
    /// configured vault (the mock's convenience); `Some(vec![])`: none.
    pub vaults: Option<Vec<String>>,
}

impl OAuthClient {
    /// A client granted `scopes`, bound to no tenant.
    pub fn new(id: &str, secret: &str, scopes: &[&str]) -> Self {
        Self {
            id: id.to_owned(),
            secret: secret.to_owned(),
            scopes: scopes.iter().map(|scope| (*scope).to_owned()).collect(),
            tenant: None,
            vaults: None,
        }
    }

    /// Assigns the service account to exactly these vaults (API v2).
    pub fn with_vaults(mut self, vaults: &[&str]) -> Self {
        self.vaults = Some(vaults.iter().map(|vault| (*vault).to_owned()).collect());
        self
    }

    /// Whether the service account may use `vault` on API v2.
    pub fn is_assigned_to(&self, vault: &str) -> bool {
        self.vaults
            .as_ref()
            .is_none_or(|vaults| vaults.iter().any(|v| v == vault))
    }

    /// Binds the client to a CMP tenant (vault id).
    pub fn with_tenant(mut self, tenant: &str) -> Self {
        self.tenant = Some(tenant.to_owned());
        self
    }
}

impl fmt::Debug for OAuthClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OAuthClient")
            .field("id", &self.id)
            .field("secret", &"[redacted]")
            .field("scopes", &self.scopes)
            .field("tenant", &self.tenant)
            .field("vaults", &self.vaults)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_prints_secrets() {
        let printed = format!("{:?}", MockConfig::demo());
        assert!(!printed.contains(DEMO_CLIENT_SECRET), "{printed}");
        assert!(!printed.contains(DEMO_V1_PASSWORD), "{printed}");
        assert!(printed.contains(DEMO_CLIENT_ID));
        assert!(printed.contains("[redacted]"));
    }

    #[test]
    fn demo_has_one_vault_and_one_client_with_all_alias_scopes() {
        let config = MockConfig::demo();
        assert_eq!(config.vaults.len(), 1);
        assert_eq!(config.vaults[0].id, DEMO_VAULT_ID);
        assert_eq!(config.clients[0].scopes, ALIAS_SCOPES);
        assert_eq!(config.token_lifetime, Duration::from_secs(300));
        assert_eq!(config.rate_limit_per_minute, Some(3_000));
    }
}
