//! `CmpConnector` and its builder: insert (`POST /cards`), retrieve (`GET /cards/{id}`)
//! and delete (`DELETE /cards/{id}`) over the alias connector's executor and tokens.

use std::fmt;
use std::sync::Arc;

use bytes::Bytes;
use error_stack::Report;
use reqwest::Method;
use secrecy::SecretString;
use vault_auth::{Clock, FetchStats, TokenStore};
use vault_core::{
    Alias, ConnectorAuthType, ConnectorVaultId, DeleteRequest, DeleteResponse, DeleteScope, Detail,
    Environment, EraseRequest, ExternalVault, InsertRequest, InsertResponse, KeptBecause,
    PaymentMethodData, RecordAction, RecordOutcome, ReportExt, RetrieveRequest, RetrieveResponse,
    Storage, StoredPart, VaultError, VaultId, VaultResult, async_trait,
};

use super::transformers;
use crate::config::{Timeouts, VgsConnectorBuilder};
use crate::connector::VgsConnector;
use crate::http::Call;
use crate::retry::{Resend, RetryPolicy};
use crate::routing::ApiGeneration;
use crate::transformers::Operation;

/// The VGS Card Management Platform connector: an [`ExternalVault`] where a card is
/// one object with a persistent card id (`CRD…`).
///
/// - insert: `POST /cards` stores the number, the CVC (CMP keeps it volatile, for a
///   short window) and the expiry; returns `ConnectorVaultId::Single { id: card id,
///   cvc: None }` with the PAN alias, CVC alias, BIN, last four
///   ([`InsertResponse::card_aliases`]) and the fingerprint when CMP gives one. When
///   CMP's duplicate check finds the number (303), the existing card id comes back with
///   `already_stored: true`. (The tokenization mode is ignored: a CMP card is always
///   one object. A holder name is refused: CMP's card object has no field for it.
///   [`PaymentMethodData::CardAliases`] makes a card object from aliases already in
///   the vault.)
/// - retrieve: `GET /cards/{id}`; with `cards:read-pci` the card in clear (the CVC
///   while it is held), otherwise [`PaymentMethodData::CardAliases`]: aliases, BIN,
///   last four, expiry and CVC status.
/// - delete: with the tenant's duplicate-card check on (the default, see
///   [`CmpConnectorBuilder::duplicate_card_check`]) the card object is **kept**
///   ([`KeptBecause::SharedByValue`]): every customer who stored the same PAN got the
///   same card id, so removing it would break their cards. With the check off,
///   `DELETE /cards/{id}`; an unknown card counts as already gone.
/// - erase: `DELETE /cards/{id}` whatever the setting: the card is gone for everyone
///   holding its id.
///
/// It shares the alias connector's machinery: token cache (client id and secret as
/// form fields), timeouts, retries, body cap, 401 handling, error reports. CMP's retry
/// rule: 502/503/504 are retried with backoff ([`VaultError::Upstream`]); 500 is never
/// retried ([`VaultError::ServerError`]); 4xx never. An insert that timed out or
/// whose connection dropped is sent again only with the duplicate-card check on and
/// [`RetryPolicy::retry_inserts`] (default `true`): a re-sent insert then answers 303
/// with the first card. With the check off it fails with
/// [`VaultError::InsertOutcomeUnknown`].
///
/// Cheap to clone; build it with [`CmpConnector::builder`].
#[derive(Clone)]
pub struct CmpConnector {
    base: VgsConnector,
}

impl fmt::Debug for CmpConnector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CmpConnector")
            .field("vault_id", self.base.vault_id())
            .field("cards_url", &self.base.routes().aliases.as_str())
            .finish_non_exhaustive()
    }
}

impl CmpConnector {
    /// A builder; see [`CmpConnectorBuilder`] for every setting and its default.
    pub fn builder() -> CmpConnectorBuilder {
        CmpConnectorBuilder(VgsConnectorBuilder::default().api(ApiGeneration::Cmp))
    }

    /// The tenant (vault id) this connector's credentials belong to.
    pub fn vault_id(&self) -> &VaultId {
        self.base.vault_id()
    }

    /// How many access tokens were fetched, successes and failures.
    pub fn token_fetches(&self) -> Option<FetchStats> {
        self.base.token_fetches()
    }

    /// The OAuth scopes this connector asks for (empty: the service account's own).
    pub fn requested_scopes(&self) -> &[String] {
        self.base.requested_scopes()
    }

    /// The last `x-ratelimit-remaining` CMP reported, if any yet.
    pub fn rate_limit_remaining(&self) -> Option<u64> {
        self.base.rate_limit_remaining()
    }

    /// Fetches a token and reads a card that cannot exist, to check credentials, the
    /// `cards:read` scope and the endpoint in one call: `Ok` means CMP answered "not
    /// found" as it should.
    pub async fn check(&self) -> VaultResult<()> {
        let probe = "CRDvaultlinkcheck000000000000";
        match self.exchange(Method::GET, probe).await {
            Ok(_) => Ok(()),
            Err(report) if report.kind() == VaultError::AliasNotFound => Ok(()),
            Err(report) => Err(needs_scope(report, "cards:read", "reading a card")),
        }
    }

    /// `GET` or `DELETE /cards/{id}`.
    async fn exchange(&self, method: Method, id: &str) -> VaultResult<crate::http::Answer> {
        self.base
            .executor()
            .execute(Call {
                method,
                url: self.base.routes().alias(id),
                body: None,
                resend: Resend::Always,
                operation: Operation::Alias(id),
            })
            .await
    }
}

/// Adds which scope the flow needs to a 403, so the report names it whatever CMP said.
fn needs_scope(report: Report<VaultError>, scope: &str, doing: &str) -> Report<VaultError> {
    if report.kind() == VaultError::Forbidden {
        report.attach(Detail::new(format!("{doing} needs the scope {scope}")))
    } else {
        report
    }
}

/// The card id of a CMP card: what insert returned.
fn card_id(id: &ConnectorVaultId) -> VaultResult<&Alias> {
    let refuse =
        |why: &str| Report::new(VaultError::InvalidRequest).attach(Detail::new(why.to_owned()));
    match id {
        ConnectorVaultId::Single { id, cvc: None, .. } => Ok(id),
        ConnectorVaultId::Single { cvc: Some(_), .. } => Err(refuse(
            "this id has a separate CVC alias, so it comes from the alias connector's single-id mode; a CMP card is identified by its card id alone (ConnectorVaultId::Single { id: CRD…, cvc: None })",
        )),
        ConnectorVaultId::Multi(_) => Err(refuse(
            "these are per-field aliases of the alias connector; a CMP card is identified by its card id (ConnectorVaultId::Single { id: CRD…, cvc: None })",
        )),
    }
}

#[async_trait]
impl ExternalVault for CmpConnector {
    async fn insert(&self, request: InsertRequest) -> VaultResult<InsertResponse> {
        self.base
            .traced("insert", async move {
                if request.for_card.is_some() {
                    return Err(Report::new(VaultError::InvalidRequest).attach(Detail::new(
                        "a CMP card object takes its CVC when it is created: insert the card again with the CVC, or use the alias connector (VgsConnector), whose cards take a new CVC",
                    )));
                }
                let body = match &request.payment_method {
                    PaymentMethodData::Card(card) if card.holder_name.is_some() => {
                        return Err(Report::new(VaultError::InvalidRequest).attach(Detail::new(
                            "CMP's card object has no field for the holder name: insert the card without it (keep the name with your other customer data), or use the alias connector (VgsConnector), which stores it",
                        )));
                    }
                    PaymentMethodData::Card(card) => transformers::create_card_body(card),
                    PaymentMethodData::CardAliases(aliases) => {
                        transformers::create_from_aliases_body(aliases)
                    }
                    _ => {
                        return Err(Report::new(VaultError::InvalidRequest)
                            .attach(Detail::new(format!(
                                "the CMP connector stores whole cards (and card objects from aliases), not {}: use the alias connector (VgsConnector)",
                                request.payment_method.kind()
                            ))));
                    }
                };
                let answer = self
                    .base
                    .executor()
                    .execute(Call {
                        method: Method::POST,
                        url: self.base.routes().aliases.clone(),
                        body: Some(Bytes::from(body)),
                        resend: self.base.create_resend(),
                        operation: Operation::Create,
                    })
                    .await
                    .map_err(|r| needs_scope(r, "cards:write", "creating a card"))?;
                transformers::parse_insert(&answer.body, answer.status, answer.location.as_deref())
            })
            .await
    }

    async fn retrieve(&self, request: RetrieveRequest) -> VaultResult<RetrieveResponse> {
        self.base
            .traced("retrieve", async move {
                let id = card_id(&request.connector_vault_id)?;
                let answer = self
                    .exchange(Method::GET, id.as_str())
                    .await
                    .map_err(|r| needs_scope(r, "cards:read", "reading a card"))?;
                transformers::parse_retrieve(&answer.body, id)
            })
            .await
    }

    /// Fetches the access token and opens the connection to CMP with one read of a
    /// card that cannot exist ([`check`](Self::check)).
    async fn warm_up(&self) -> VaultResult<()> {
        self.base.traced("warm_up", self.check()).await
    }

    async fn delete(&self, request: DeleteRequest) -> VaultResult<DeleteResponse> {
        self.base
            .traced("delete", async move {
                let id = card_id(&request.connector_vault_id)?;
                // With the duplicate-card check on, every customer who stored this PAN
                // got this card id (303): removing it would break their cards too.
                if self.base.fingerprinting().is_on() {
                    let kept = RecordAction::Kept(KeptBecause::SharedByValue);
                    return Ok(self.outcome(DeleteScope::PaymentMethod, id, kept));
                }
                self.remove(DeleteScope::PaymentMethod, id).await
            })
            .await
    }

    async fn erase(&self, request: EraseRequest) -> VaultResult<DeleteResponse> {
        self.base
            .traced("erase", async move {
                let id = card_id(&request.connector_vault_id)?;
                if request.fields.is_empty() {
                    return Ok(DeleteResponse::new(DeleteScope::EveryHolder, Vec::new()));
                }
                // CMP stores the card as one object: erasing any of its fields erases it.
                // With the duplicate check on, every holder of the number has this one.
                let scope = match self.base.fingerprinting().is_on() {
                    true => DeleteScope::EveryHolder,
                    false => DeleteScope::ReachableRecords,
                };
                self.remove(scope, id).await
            })
            .await
    }
}

impl CmpConnector {
    /// `DELETE /cards/{id}`; an unknown card counts as already gone.
    async fn remove(&self, scope: DeleteScope, id: &Alias) -> VaultResult<DeleteResponse> {
        let action = match self.exchange(Method::DELETE, id.as_str()).await {
            Ok(_) => RecordAction::Removed,
            Err(report) if report.kind() == VaultError::AliasNotFound => RecordAction::AlreadyGone,
            Err(report) => return Err(needs_scope(report, "cards:write", "deleting a card")),
        };
        Ok(self.outcome(scope, id, action))
    }

    fn outcome(&self, scope: DeleteScope, id: &Alias, action: RecordAction) -> DeleteResponse {
        let record = RecordOutcome::new(
            StoredPart::CardObject,
            id.clone(),
            Storage::Persistent,
            action,
        );
        DeleteResponse::new(scope, vec![record])
    }
}

/// Builds a [`CmpConnector`]. Nothing defaults to a production host: give an
/// [`Environment`] (`Sandbox` -> `https://sandbox.vgsapi.com`, `Live` ->
/// `https://vgsapi.com`; CMP has no live-eu-1 host) or a custom endpoint (CMP is then
/// at `{base}/cards`, the token endpoint at
/// `{base}/auth/realms/vgs/protocol/openid-connect/token`).
///
/// | setting | default |
/// |---|---|
/// | token endpoint | VGS's Keycloak URL (or the custom endpoint's), client id and secret as form fields |
/// | OAuth scopes | none requested: the service account's granted scopes (`cards:write`, `cards:read`, and `cards:read-pci` for PCI clients); asking for one not granted fails with `invalid_scope` |
/// | timeouts | [`Timeouts::default`]: connect 2 s, attempt 5 s, total 15 s |
/// | retries | [`RetryPolicy::default`]: 3 attempts, 50 ms..1 s full-jitter backoff, for 502/503/504, 429 and transport failures; never for 500 or 4xx |
/// | duplicate-card check | on (CMP's default): delete keeps card objects, inserts may be re-sent |
/// | largest response read | 1 MiB |
pub struct CmpConnectorBuilder(VgsConnectorBuilder);

impl fmt::Debug for CmpConnectorBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("CmpConnectorBuilder").field(&self.0).finish()
    }
}

impl Default for CmpConnectorBuilder {
    fn default() -> Self {
        CmpConnector::builder()
    }
}

impl CmpConnectorBuilder {
    /// Takes credentials and tenant from Hyperswitch's envelope, as the alias
    /// connector does: `SignatureKey { api_key: CMP client id, key1: client secret,
    /// api_secret: tenant (vault) id }`. Any other variant is an `InvalidConfig` error
    /// naming `SignatureKey`.
    pub fn auth_type(self, auth: &ConnectorAuthType) -> Result<Self, Report<VaultError>> {
        self.0.auth_type(auth).map(CmpConnectorBuilder)
    }

    /// The OAuth client of a CMP service account: id and secret.
    pub fn credentials(self, id: impl Into<String>, secret: SecretString) -> Self {
        CmpConnectorBuilder(self.0.credentials(id, secret))
    }

    /// The tenant (vault) id, `tnt…`, validated at [`build`](Self::build).
    pub fn vault_id(self, vault_id: impl Into<String>) -> Self {
        CmpConnectorBuilder(self.0.vault_id(vault_id))
    }

    /// The VGS environment, which picks the host.
    pub fn environment(self, environment: Environment) -> Self {
        CmpConnectorBuilder(self.0.environment(environment))
    }

    /// A custom base URL instead of VGS's hosts: `https`, or `http` to loopback only.
    pub fn endpoint(self, base: impl Into<String>) -> Self {
        CmpConnectorBuilder(self.0.endpoint(base))
    }

    /// A token endpoint other than VGS's (or the custom endpoint's) Keycloak URL.
    pub fn token_url(self, url: impl Into<String>) -> Self {
        CmpConnectorBuilder(self.0.token_url(url))
    }

    /// OAuth scopes to request, e.g. `cards:read` only. Default none (the service
    /// account's granted scopes).
    pub fn scopes<I, S>(self, scopes: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        CmpConnectorBuilder(self.0.scopes(scopes))
    }

    /// Time limits. Default [`Timeouts::default`].
    pub fn timeouts(self, timeouts: Timeouts) -> Self {
        CmpConnectorBuilder(self.0.timeouts(timeouts))
    }

    /// Retry policy. Default [`RetryPolicy::default`].
    pub fn retry(self, retry: RetryPolicy) -> Self {
        CmpConnectorBuilder(self.0.retry(retry))
    }

    /// Whether the tenant's duplicate-card check is on (CMP answers a known PAN with
    /// 303 and the existing card): it decides whether delete may remove a card object
    /// and whether an insert may be re-sent. Default `true`, CMP's default.
    pub fn duplicate_card_check(self, on: bool) -> Self {
        let setting = if on {
            crate::Fingerprinting::On
        } else {
            crate::Fingerprinting::Off
        };
        CmpConnectorBuilder(self.0.fingerprinting(setting))
    }

    /// The largest response body read, in bytes. Default 1 MiB.
    pub fn max_response_bytes(self, bytes: usize) -> Self {
        CmpConnectorBuilder(self.0.max_response_bytes(bytes))
    }

    /// A `reqwest::Client` to share; it must follow no redirects (CMP's duplicate
    /// answer is a 303 the connector reads itself).
    pub fn http_client(self, client: reqwest::Client) -> Self {
        CmpConnectorBuilder(self.0.http_client(client))
    }

    /// The clock for token expiry. Default: the system's monotonic clock.
    pub fn clock(self, clock: Arc<dyn Clock>) -> Self {
        CmpConnectorBuilder(self.0.clock(clock))
    }

    /// An HTTP(S) proxy for the `https` calls (see
    /// [`VgsConnectorBuilder::proxy`]). Default none; proxy variables are ignored.
    pub fn proxy(self, url: impl Into<String>) -> Self {
        CmpConnectorBuilder(self.0.proxy(url))
    }

    /// Where access tokens are kept (e.g. Redis, shared by replicas). Default: in
    /// process memory.
    pub fn token_store(self, store: Arc<dyn TokenStore>) -> Self {
        CmpConnectorBuilder(self.0.token_store(store))
    }

    /// Validates everything and builds the connector. Makes no request.
    pub fn build(self) -> Result<CmpConnector, Report<VaultError>> {
        self.0.build_any().map(|base| CmpConnector { base })
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use url::Url;

    use super::*;

    fn base() -> CmpConnectorBuilder {
        CmpConnector::builder()
            .credentials("cmp-client", SecretString::from("cmp-s3cret".to_owned()))
            .vault_id("tntabc12345")
    }

    fn cards_url(connector: &CmpConnector) -> Url {
        connector.base.routes().aliases.clone()
    }

    #[tokio::test]
    async fn environments_pick_cmps_hosts_and_live_eu_is_refused() {
        let sandbox = base()
            .environment(Environment::Sandbox)
            .build()
            .expect("sandbox");
        assert_eq!(
            cards_url(&sandbox).as_str(),
            "https://sandbox.vgsapi.com/cards"
        );
        assert_eq!(
            sandbox.base.routes().token.as_ref().map(Url::as_str),
            Some(crate::VGS_TOKEN_URL)
        );
        let live = base().environment(Environment::Live).build().expect("live");
        assert_eq!(cards_url(&live).as_str(), "https://vgsapi.com/cards");
        let err = base()
            .environment(Environment::LiveEu1)
            .build()
            .expect_err("no eu host");
        assert_eq!(err.kind(), VaultError::InvalidConfig);
        assert!(
            err.details()[0].contains("live-eu-1"),
            "{:?}",
            err.details()
        );
    }

    #[tokio::test]
    async fn a_custom_endpoint_serves_cmp_beside_the_alias_api() {
        let connector = base()
            .endpoint("http://127.0.0.1:8080")
            .build()
            .expect("custom");
        assert_eq!(
            cards_url(&connector).as_str(),
            "http://127.0.0.1:8080/cards"
        );
        assert_eq!(
            connector.base.routes().alias("CRDx").as_str(),
            "http://127.0.0.1:8080/cards/CRDx"
        );
        let rendered = format!("{connector:?} {:?}", base());
        assert!(!rendered.contains("cmp-s3cret"), "{rendered}");
    }

    #[test]
    fn the_alias_builder_refuses_cmp_and_names_the_cmp_connector() {
        let err = VgsConnector::builder()
            .api(ApiGeneration::Cmp)
            .credentials("c", SecretString::from("s".to_owned()))
            .vault_id("tntabc1")
            .environment(Environment::Sandbox)
            .build()
            .expect_err("cmp");
        assert_eq!(err.kind(), VaultError::InvalidConfig);
        assert!(err.details()[0].contains("CmpConnector::builder()"));
    }

    #[test]
    fn ids_of_the_alias_connector_are_refused_with_the_reason() {
        let multi = ConnectorVaultId::Multi(Default::default());
        assert_eq!(
            card_id(&multi).expect_err("multi").kind(),
            VaultError::InvalidRequest
        );
        let single = ConnectorVaultId::Single {
            id: Alias::new("tok_w").expect("alias"),
            cvc: Some(Alias::new("tok_c").expect("alias")),
            cvc_expires_at: None,
        };
        assert!(card_id(&single).is_err());
    }

    #[test]
    fn retries_stay_bounded_by_the_shared_policy() {
        // Sanity: the builder keeps the alias connector's defaults.
        let builder = base();
        assert_eq!(builder.0.retry, RetryPolicy::default());
        assert_eq!(builder.0.timeouts.total, Duration::from_secs(15));
    }
}
