//! `VgsConnector`: the flows (insert, retrieve, delete, and their batch forms) wired
//! from routing, transformers and the executor; implements `ExternalVault`.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use error_stack::Report;
use futures_util::future::join_all;
use reqwest::Method;
use secrecy::SecretString;
use tracing::{Instrument, field};
use url::Url;
use vault_auth::FetchStats;
use vault_core::{
    Alias, Attempt, Card, CardField, ConnectorVaultId, DeleteRequest, DeleteResponse, DeleteScope,
    Detail, EraseRequest, ExternalVault, FieldAliases, HttpStatus, InsertRequest, InsertResponse,
    KeptBecause, MissingField, MissingReason, PaymentMethodData, RecordAction, RecordOutcome,
    ReportExt, RetrieveRequest, RetrieveResponse, RetryAfter, Storage, StoredPart, SystemWallClock,
    TokenizationMode, TraceId, VaultError, VaultId, VaultResult, WallClock, async_trait,
};

use crate::auth::Authorizer;
use crate::config::{Fingerprinting, VgsConnectorBuilder};
use crate::http::{Call, Executor};
use crate::retry::Resend;
use crate::routing::{ApiGeneration, Endpoint, Routes};
use crate::transformers::{
    self, FieldRefs, Formats, MAX_VALUES_PER_REQUEST, Operation, SlotField, SlotValue, Stored,
};

/// The VGS connector: an [`ExternalVault`] over VGS's vault API (v2 by default, or v1).
///
/// Cheap to clone (an `Arc` inside); share one per vault and credentials. Build it
/// with [`VgsConnector::builder`].
#[derive(Clone)]
pub struct VgsConnector {
    inner: Arc<Inner>,
}

struct Inner {
    vault_id: VaultId,
    api: ApiGeneration,
    routes: Routes,
    exec: Executor,
    formats: Formats,
    batch_concurrency: usize,
    fingerprinting: Fingerprinting,
    clock: Arc<dyn WallClock>,
    /// The OAuth scopes asked for (none: the service account's).
    scopes: Vec<String>,
}

/// How long VGS keeps a VOLATILE value: one hour.
pub(crate) const VOLATILE_LIFETIME: Duration = Duration::from_secs(3600);
/// How far the vault's clock may be from ours when its `created_at` is believed.
const CLOCK_SKEW: Duration = Duration::from_secs(300);

impl std::fmt::Debug for VgsConnector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VgsConnector")
            .field("vault_id", &self.inner.vault_id)
            .field("api", &self.inner.api)
            .field("aliases_url", &self.inner.routes.aliases.as_str())
            .finish_non_exhaustive()
    }
}

impl VgsConnector {
    /// A builder; see [`VgsConnectorBuilder`] for every setting and its default.
    pub fn builder() -> VgsConnectorBuilder {
        VgsConnectorBuilder::default()
    }

    pub(crate) fn from_builder(
        builder: VgsConnectorBuilder,
        vault_id: VaultId,
        endpoint: Endpoint,
        token_url: Option<Url>,
    ) -> Result<Self, Report<VaultError>> {
        let routes = Routes::new(builder.api, &endpoint, &vault_id, token_url)?;
        let config_error =
            |what: String| Report::new(VaultError::InvalidConfig).attach(Detail::new(what));
        let client = match builder.http_client.clone() {
            Some(client) => client,
            None => {
                let mut http = reqwest::Client::builder()
                    .redirect(reqwest::redirect::Policy::none())
                    .connect_timeout(builder.timeouts.connect)
                    .tcp_nodelay(true)
                    .pool_idle_timeout(Duration::from_secs(60))
                    .no_proxy();
                if let Some(proxy) = &builder.proxy {
                    // Only https targets are proxied (CONNECT tunnel, TLS end to end).
                    let proxy = reqwest::Proxy::https(proxy.as_str()).map_err(|_| {
                        config_error("the proxy is not a valid URL; give one like http://proxy.example.com:3128".to_owned())
                    })?;
                    http = http.proxy(proxy);
                }
                http.build()
                    .map_err(|e| config_error(format!("cannot build the HTTP client: {e}")))?
            }
        };
        let authorizer = Authorizer::new(&builder, &routes, client.clone())?;
        Ok(VgsConnector {
            inner: Arc::new(Inner {
                vault_id,
                api: builder.api,
                exec: Executor {
                    client,
                    authorizer,
                    timeouts: builder.timeouts,
                    retry: builder.retry,
                    max_response_bytes: builder.max_response_bytes,
                    rate_limit_remaining: AtomicI64::new(-1),
                    dialect: crate::dialect::Dialect::of(builder.api),
                    fresh_token_refused: std::sync::Mutex::new(None),
                },
                routes,
                formats: Formats {
                    card_number: builder.card_number_format,
                },
                batch_concurrency: builder.batch_concurrency,
                fingerprinting: builder.fingerprinting,
                scopes: builder.scopes.clone(),
                clock: builder
                    .wall_clock
                    .clone()
                    .unwrap_or_else(|| Arc::new(SystemWallClock)),
            }),
        })
    }

    /// The OAuth scopes this connector asks for (empty: the service account's own).
    pub fn requested_scopes(&self) -> &[String] {
        &self.inner.scopes
    }

    /// The vault's fingerprinting setting, as configured.
    pub fn fingerprinting(&self) -> Fingerprinting {
        self.inner.fingerprinting
    }

    /// Whether a create may be sent again after it may have reached the vault.
    pub(crate) fn create_resend(&self) -> Resend {
        match self.inner.fingerprinting {
            Fingerprinting::On => Resend::Deduplicated,
            Fingerprinting::Off => Resend::Never,
        }
    }

    /// Finds out whether the vault fingerprints values: stores one random,
    /// non-sensitive probe value twice (two requests) and compares the aliases, then
    /// deletes what it stored. Two requests to create, one or two to delete.
    pub async fn probe_fingerprinting(&self) -> VaultResult<Fingerprinting> {
        self.traced("probe_fingerprinting", async {
            let value = format!(
                "vaultlink-fingerprinting-probe-{}",
                transformers::new_record_marker()
            );
            let probe = || transformers::probe_value(&value);
            let alias_of = |stored: Vec<Stored>| {
                stored
                    .into_iter()
                    .next()
                    .map(|s| s.alias.alias)
                    .ok_or_else(|| transformers::unexpected("the probe was not stored".to_owned()))
            };
            let first = alias_of(self.store(&[probe()]).await?)?;
            let second = match self.store(&[probe()]).await.and_then(alias_of) {
                Ok(second) => second,
                Err(report) => {
                    // Leave nothing behind, whatever the second store did.
                    let _ = self.delete_alias(&first, Storage::Persistent).await;
                    return Err(report);
                }
            };
            self.delete_alias(&first, Storage::Persistent).await?;
            if second == first {
                return Ok(Fingerprinting::On);
            }
            self.delete_alias(&second, Storage::Persistent).await?;
            Ok(Fingerprinting::Off)
        })
        .await
    }

    /// The vault this connector talks to.
    pub fn vault_id(&self) -> &VaultId {
        &self.inner.vault_id
    }

    /// The API generation in use.
    pub fn api(&self) -> ApiGeneration {
        self.inner.api
    }

    /// How many access tokens were fetched (API v2), successes and failures.
    pub fn token_fetches(&self) -> Option<FetchStats> {
        self.inner.exec.authorizer.fetch_stats()
    }

    /// The last `x-ratelimit-remaining` the vault reported, if any yet.
    pub fn rate_limit_remaining(&self) -> Option<u64> {
        u64::try_from(self.inner.exec.rate_limit_remaining.load(Ordering::Relaxed)).ok()
    }

    /// The executor, for another flavour of connector built on this one (CMP).
    pub(crate) fn executor(&self) -> &Executor {
        &self.inner.exec
    }

    /// The URLs, for another flavour of connector built on this one (CMP).
    pub(crate) fn routes(&self) -> &Routes {
        &self.inner.routes
    }

    /// Fetches a token (API v2) and reveals an alias that cannot exist, to check
    /// credentials, scopes and the vault id in one call: `Ok` means the vault answered
    /// "alias not found" as it should.
    pub async fn check(&self) -> VaultResult<()> {
        let probe = "tok_vaultlink_check_00000000000000";
        match self.reveal_one(probe, Storage::Persistent).await {
            Ok(_) | Err(Probe::Missing) => Ok(()),
            Err(Probe::Failed(report)) => Err(report),
        }
    }

    /// Runs one flow inside its span (`vgs`: flow, vault id, attempt, status, trace
    /// id, duration) and logs its outcome: safe fields only, never values or bodies.
    ///
    /// Built from combinators rather than as an `async fn`: an async fn that awaits
    /// the future it is given keeps two copies of it in its state, which doubled the
    /// future every flow is boxed into (3.4 KB instead of 1.8 KB per call).
    pub(crate) fn traced<T>(
        &self,
        flow: &'static str,
        work: impl Future<Output = VaultResult<T>>,
    ) -> impl Future<Output = VaultResult<T>> {
        let span = tracing::debug_span!(
            "vgs",
            flow,
            vault_id = %self.inner.vault_id,
            attempt = field::Empty,
            status = field::Empty,
            trace_id = field::Empty,
            duration_ms = field::Empty,
        );
        let started = std::time::Instant::now();
        let recorder = span.clone();
        futures_util::FutureExt::map(work.instrument(span), move |outcome| {
            let elapsed = started.elapsed();
            recorder.record("duration_ms", elapsed.as_millis() as u64);
            recorder.in_scope(|| match &outcome {
                Ok(_) => tracing::debug!(
                    flow,
                    duration_ms = elapsed.as_millis() as u64,
                    "vault call succeeded"
                ),
                Err(report) => tracing::debug!(
                    flow,
                    duration_ms = elapsed.as_millis() as u64,
                    kind = report.kind().code(),
                    retryable = report.is_retryable(),
                    "vault call failed"
                ),
            });
            outcome
        })
    }

    /// Reveals the value behind one alias, kept in `storage` (an operator's lookup
    /// during an incident; orchestrators use [`ExternalVault::retrieve`]). The value is
    /// a secret: print it masked unless the operator asked to see it.
    pub async fn reveal(&self, alias: &Alias, storage: Storage) -> VaultResult<SecretString> {
        self.traced("reveal", async {
            match self.reveal_one(alias.as_str(), storage).await {
                Ok(value) => Ok(value),
                Err(Probe::Failed(report)) => Err(report),
                Err(Probe::Missing) => Err(Report::new(VaultError::AliasNotFound)
                    .attach(HttpStatus(404))
                    .attach(Detail::new(format!(
                        "alias {alias} not found in {storage} storage of vault {}",
                        self.inner.vault_id
                    )))),
            }
        })
        .await
    }

    // --- insert -------------------------------------------------------------------

    /// Stores many payment methods with as few requests as VGS allows: their values
    /// are packed 20 to a `POST /aliases` (a card may span two requests), run with
    /// bounded concurrency. Results come back per item, in order: a failed request
    /// fails only the items with a value in it.
    pub async fn insert_many(
        &self,
        requests: Vec<InsertRequest>,
    ) -> Vec<VaultResult<InsertResponse>> {
        let span = tracing::debug_span!("vgs", flow = "insert_many", vault_id = %self.inner.vault_id, items = requests.len());
        async move {
            let mut results: Vec<Option<VaultResult<InsertResponse>>> =
                (0..requests.len()).map(|_| None).collect();
            let mut values = Vec::new();
            let mut modes = Vec::with_capacity(requests.len());
            for (item, request) in requests.into_iter().enumerate() {
                modes.push(request.mode);
                match card_of(request.payment_method) {
                    Ok(card) => values.extend(self.values_of(item, &card, request.mode)),
                    Err(report) => results[item] = Some(Err(report)),
                }
            }
            let chunks: Vec<&[SlotValue]> = values.chunks(MAX_VALUES_PER_REQUEST).collect();
            let sent_at = self.inner.clock.now();
            let outcomes = self
                .bounded(chunks.iter().map(|chunk| self.store(chunk)))
                .await;

            let mut stored: Vec<Vec<Stored>> = vec![Vec::new(); modes.len()];
            for (chunk, outcome) in chunks.iter().zip(outcomes) {
                match outcome {
                    Ok(records) => {
                        for record in records {
                            stored[record.slot.item].push(record);
                        }
                    }
                    Err(report) => {
                        for value in chunk.iter() {
                            let slot = &mut results[value.slot.item];
                            if slot.is_none() {
                                *slot = Some(Err(copy_report(&report)));
                            }
                        }
                    }
                }
            }
            results
                .into_iter()
                .zip(stored)
                .zip(modes)
                .map(|((result, records), mode)| {
                    result.unwrap_or_else(|| {
                        Ok(InsertResponse::new(self.assemble(mode, records, sent_at)))
                    })
                })
                .collect()
        }
        .instrument(span)
        .await
    }

    fn values_of(&self, item: usize, card: &Card, mode: TokenizationMode) -> Vec<SlotValue> {
        match mode {
            TokenizationMode::PerField => {
                transformers::per_field_values(item, card, self.inner.formats)
            }
            TokenizationMode::SingleId => {
                transformers::single_id_values(item, card, &transformers::new_record_marker())
            }
        }
    }

    /// One `POST /aliases` of at most 20 values.
    async fn store(&self, values: &[SlotValue]) -> VaultResult<Vec<Stored>> {
        let body = Bytes::from(transformers::create_aliases_body(values));
        let answer = self
            .inner
            .exec
            .execute(Call {
                method: Method::POST,
                url: self.inner.routes.aliases.clone(),
                body: Some(body),
                resend: self.create_resend(),
                operation: Operation::Create,
            })
            .await?;
        transformers::parse_create_aliases(&answer.body, values)
    }

    // --- retrieve -----------------------------------------------------------------

    /// Retrieves many payment methods; per-item results in order. Per-field aliases
    /// are revealed 20 to a `GET /aliases?aliases=…`.
    pub async fn retrieve_many(
        &self,
        ids: Vec<ConnectorVaultId>,
    ) -> Vec<VaultResult<RetrieveResponse>> {
        let span = tracing::debug_span!("vgs", flow = "retrieve_many", vault_id = %self.inner.vault_id, items = ids.len());
        async move {
            // Reveal every persistent alias of every item in chunks of 20, then rebuild.
            let persistent: Vec<&Alias> = ids
                .iter()
                .flat_map(|id| match id {
                    ConnectorVaultId::Multi(fields) => fields
                        .values()
                        .filter(|f| f.storage == Storage::Persistent)
                        .map(|f| &f.alias)
                        .collect::<Vec<_>>(),
                    ConnectorVaultId::Single { id, .. } => vec![id],
                })
                .collect();
            let chunks: Vec<&[&Alias]> = persistent.chunks(MAX_VALUES_PER_REQUEST).collect();
            // The volatile CVCs are separate reads: they go out with the chunks, not
            // after them.
            let (outcomes, cvcs) = futures_util::future::join(
                self.bounded(chunks.iter().map(|chunk| self.reveal_many(chunk))),
                self.bounded(ids.iter().map(|id| self.read_cvc(id))),
            )
            .await;
            let mut values: HashMap<String, SecretString> = HashMap::new();
            let mut failures: HashMap<&str, usize> = HashMap::new();
            let mut reports = Vec::new();
            for (chunk, outcome) in chunks.iter().zip(outcomes) {
                match outcome {
                    Ok(found) => {
                        for (alias, value) in chunk.iter().zip(found) {
                            if let Some(value) = value {
                                values.insert(alias.as_str().to_owned(), value);
                            }
                        }
                    }
                    Err(report) => {
                        for alias in chunk.iter() {
                            failures.insert(alias.as_str(), reports.len());
                        }
                        reports.push(report);
                    }
                }
            }
            ids.iter()
                .zip(cvcs)
                .map(|(id, cvc)| {
                    let failed = id
                        .aliases()
                        .iter()
                        .find_map(|a| failures.get(a.as_str()))
                        .copied();
                    if let Some(index) = failed {
                        return Err(copy_report(&reports[index]));
                    }
                    self.rebuild(id, |alias| values.get(alias.as_str()), cvc?)
                })
                .collect()
        }
        .instrument(span)
        .await
    }

    /// Rebuilds a card from revealed persistent values (looked up by `value_of`) and
    /// its CVC, as [`read_cvc`](Self::read_cvc) found it. A required field that is gone
    /// is an error naming it; an optional one is reported in `missing`.
    fn rebuild<'v>(
        &self,
        id: &ConnectorVaultId,
        value_of: impl Fn(&Alias) -> Option<&'v SecretString>,
        cvc: Option<SecretString>,
    ) -> VaultResult<RetrieveResponse> {
        let required = |part: &str, alias: &Alias| {
            value_of(alias).ok_or_else(|| {
                Report::new(VaultError::AliasNotFound)
                    .attach(HttpStatus(404))
                    .attach(Detail::new(format!(
                        "the {part} record (alias {alias}) is not in vault {}: the vault never issued this alias, or it was erased or deleted since; the card cannot be rebuilt without it",
                        self.inner.vault_id
                    )))
            })
        };
        let mut missing = Vec::new();
        let card = match id {
            ConnectorVaultId::Multi(fields) => {
                let get = |field: CardField| fields.get(&field);
                let need = |field: CardField| {
                    let alias = get(field).map(|f| &f.alias).ok_or_else(|| {
                        Report::new(VaultError::InvalidRequest).attach(Detail::new(format!(
                            "the vault id has no alias for {field}"
                        )))
                    })?;
                    required(field.as_str(), alias)
                };
                let number = need(CardField::CardNumber)?;
                let exp_month = need(CardField::CardExpMonth)?;
                let exp_year = need(CardField::CardExpYear)?;
                let holder_name = match get(CardField::CardHolderName) {
                    Some(field) => {
                        let value = value_of(&field.alias);
                        if value.is_none() {
                            // Persistent: it cannot have expired.
                            missing.push(MissingField::new(
                                CardField::CardHolderName,
                                field.alias.clone(),
                                MissingReason::Gone,
                            ));
                        }
                        value
                    }
                    None => None,
                };
                let cvc = match get(CardField::CardCvc) {
                    Some(field) => {
                        let expiry = field.expires_at.map(|at| (at, field.expiry_exact));
                        self.cvc_or_missing(&field.alias, expiry, cvc, &mut missing)
                    }
                    None => None,
                };
                transformers::card_from_refs(FieldRefs {
                    number: Some(number),
                    exp_month: Some(exp_month),
                    exp_year: Some(exp_year),
                    cvc: cvc.as_ref(),
                    holder_name,
                })?
            }
            ConnectorVaultId::Single {
                id,
                cvc: cvc_alias,
                cvc_expires_at,
            } => {
                let record = required("card", id)?;
                let cvc = match cvc_alias {
                    Some(alias) => {
                        // Single ids record an upper bound only.
                        let expiry = cvc_expires_at.map(|at| (at, false));
                        self.cvc_or_missing(alias, expiry, cvc, &mut missing)
                    }
                    None => None,
                };
                transformers::card_from_whole(record, cvc)?
            }
        };
        Ok(RetrieveResponse::new(PaymentMethodData::Card(card)).with_missing(missing))
    }

    /// The CVC of a card, read from volatile storage (`None`: the card has none, or
    /// the vault no longer holds it). A read of its own, so that retrieve sends it
    /// together with the persistent reveal: one round trip, not two.
    async fn read_cvc(&self, id: &ConnectorVaultId) -> VaultResult<Option<SecretString>> {
        let alias = match id {
            ConnectorVaultId::Multi(fields) => fields.get(&CardField::CardCvc).map(|f| &f.alias),
            ConnectorVaultId::Single { cvc, .. } => cvc.as_ref(),
        };
        match alias {
            Some(alias) => self.optional_cvc(alias).await,
            None => Ok(None),
        }
    }

    /// The CVC the vault gave (`value`), or `None` with an entry in `missing` saying
    /// whether it expired (its hour is over by the connector's clock) or vanished
    /// before its time.
    fn cvc_or_missing(
        &self,
        alias: &Alias,
        expires_at: Option<(SystemTime, bool)>,
        value: Option<SecretString>,
        missing: &mut Vec<MissingField>,
    ) -> Option<SecretString> {
        if value.is_none() {
            let reason = match expires_at {
                Some((at, _)) if self.inner.clock.now() >= at => MissingReason::Expired,
                Some((_, true)) => MissingReason::Gone,
                Some((_, false)) | None => MissingReason::ExpiredOrGone,
            };
            missing.push(MissingField::new(CardField::CardCvc, alias.clone(), reason));
        }
        value
    }

    /// The CVC if the vault still holds it: it is volatile, so "not found" (expired
    /// or deleted) is `None`, not an error.
    async fn optional_cvc(&self, alias: &Alias) -> VaultResult<Option<SecretString>> {
        match self.reveal_one(alias.as_str(), Storage::Volatile).await {
            Ok(value) => Ok(Some(value)),
            Err(Probe::Missing) => Ok(None),
            Err(Probe::Failed(report)) => Err(report),
        }
    }

    async fn reveal_one(&self, alias: &str, storage: Storage) -> Result<SecretString, Probe> {
        let answer = self.read_record(alias, storage).await?;
        transformers::parse_reveal_one(&answer.body).map_err(Probe::Failed)
    }

    /// `GET /aliases/{alias}` in `storage`: the record's answer, or why there is none.
    async fn read_record(
        &self,
        alias: &str,
        storage: Storage,
    ) -> Result<crate::http::Answer, Probe> {
        self.inner
            .exec
            .execute(Call {
                method: Method::GET,
                url: self.alias_url(alias, storage),
                body: None,
                resend: Resend::Always,
                operation: Operation::Alias(alias),
            })
            .await
            .map_err(Probe::from)
    }

    /// The URL of one alias, with `?storage=VOLATILE` for a volatile one.
    fn alias_url(&self, alias: &str, storage: Storage) -> Url {
        let mut url = self.inner.routes.alias(alias);
        if storage == Storage::Volatile {
            url.query_pairs_mut()
                .append_pair("storage", storage.as_str());
        }
        url
    }

    /// Reveals up to 20 persistent aliases: their values in the order given, `None`
    /// for an alias the vault does not know (whether it omits it or answers 404 for
    /// the batch).
    async fn reveal_many(&self, aliases: &[&Alias]) -> VaultResult<Vec<Option<SecretString>>> {
        if let [alias] = aliases {
            return match self.reveal_one(alias.as_str(), Storage::Persistent).await {
                Ok(value) => Ok(vec![Some(value)]),
                Err(Probe::Missing) => Ok(vec![None]),
                Err(Probe::Failed(report)) => Err(report),
            };
        }
        let mut joined = String::with_capacity(aliases.iter().map(|a| a.as_str().len() + 1).sum());
        for alias in aliases {
            if !joined.is_empty() {
                joined.push(',');
            }
            joined.push_str(alias.as_str());
        }
        let mut url = self.inner.routes.aliases.clone();
        url.query_pairs_mut().append_pair("aliases", &joined);
        let answer = self
            .inner
            .exec
            .execute(Call {
                method: Method::GET,
                url,
                body: None,
                resend: Resend::Always,
                operation: Operation::Aliases,
            })
            .await;
        match answer {
            Ok(answer) => transformers::parse_reveal_many(&answer.body, aliases),
            Err(report) if report.kind() == VaultError::AliasNotFound => {
                // The batch failed because one alias is unknown: find out which, one by
                // one, so the others still come back.
                let singles = join_all(
                    aliases
                        .iter()
                        .map(|a| self.reveal_many(std::slice::from_ref(a))),
                )
                .await;
                let mut found = Vec::with_capacity(aliases.len());
                for single in singles {
                    found.push(single?.pop().flatten());
                }
                Ok(found)
            }
            Err(report) => Err(report),
        }
    }

    // --- delete -------------------------------------------------------------------

    async fn delete_alias(
        &self,
        alias: &Alias,
        storage: Storage,
    ) -> Result<bool, Report<VaultError>> {
        let url = self.alias_url(alias.as_str(), storage);
        let outcome = self
            .inner
            .exec
            .execute(Call {
                method: Method::DELETE,
                url,
                body: None,
                resend: Resend::Always,
                operation: Operation::Alias(alias.as_str()),
            })
            .await;
        match outcome {
            Ok(_) => Ok(true),
            Err(report) if report.kind() == VaultError::AliasNotFound => Ok(false),
            Err(report) => Err(report),
        }
    }

    /// The id of a stored payment method, from what the vault returned for it; a
    /// CVC's alias records when the vault forgets it at the latest.
    fn assemble(
        &self,
        mode: TokenizationMode,
        records: Vec<Stored>,
        sent_at: SystemTime,
    ) -> ConnectorVaultId {
        let expiry = |record: &Stored| self.volatile_expiry(record.created_at, sent_at);
        match mode {
            TokenizationMode::PerField => {
                let mut fields = FieldAliases::new();
                for record in records {
                    if let SlotField::Field(field) = record.slot.field {
                        let mut alias = record.alias.clone();
                        if alias.storage == Storage::Volatile {
                            let (at, exact) = expiry(&record);
                            alias = alias.expiring_at(at, exact);
                        }
                        fields.insert(field, alias);
                    }
                }
                ConnectorVaultId::Multi(fields)
            }
            TokenizationMode::SingleId => {
                let mut id = None;
                let mut cvc = None;
                for record in records {
                    match record.slot.field {
                        SlotField::WholeCard => id = Some(record.alias.alias),
                        SlotField::Field(_) => cvc = Some((expiry(&record).0, record.alias.alias)),
                        SlotField::Probe => {}
                    }
                }
                let id = id.expect("a single-id insert always stores the card record");
                let (cvc_expires_at, cvc) = match cvc {
                    Some((at, alias)) => (Some(at), Some(alias)),
                    None => (None, None),
                };
                ConnectorVaultId::Single {
                    id,
                    cvc,
                    cvc_expires_at,
                }
            }
        }
    }

    /// When a volatile value sent at `sent_at` is forgotten at the latest, and whether
    /// that is exact. Its record lives an hour from its creation, which is no later
    /// than `sent_at`: so `sent_at + 1 h` bounds it. Without fingerprinting the record
    /// is new, and the bound is exact. With it, an equal value stored earlier is the
    /// same record and goes an hour after *its* creation: the vault's `created_at` says
    /// when, if it is believable (VGS may fill it with a default for volatile values);
    /// otherwise the bound is all that is known.
    fn volatile_expiry(
        &self,
        created_at: Option<SystemTime>,
        sent_at: SystemTime,
    ) -> (SystemTime, bool) {
        let bound = sent_at + VOLATILE_LIFETIME;
        let believable = created_at.filter(|created| {
            *created <= sent_at + CLOCK_SKEW && *created + VOLATILE_LIFETIME + CLOCK_SKEW >= sent_at
        });
        match (believable, self.inner.fingerprinting) {
            (Some(created), _) => (bound.min(created + VOLATILE_LIFETIME), true),
            (None, Fingerprinting::Off) => (bound, true),
            (None, Fingerprinting::On) => (bound, false),
        }
    }

    /// Runs futures with at most `batch_concurrency` in flight, results in order.
    async fn bounded<F: Future>(&self, futures: impl Iterator<Item = F>) -> Vec<F::Output> {
        use futures_util::StreamExt;
        futures_util::stream::iter(futures)
            .buffered(self.inner.batch_concurrency)
            .collect()
            .await
    }
}

/// A reveal that may legitimately find nothing.
enum Probe {
    Missing,
    Failed(Report<VaultError>),
}

impl From<Report<VaultError>> for Probe {
    fn from(report: Report<VaultError>) -> Self {
        if report.kind() == VaultError::AliasNotFound {
            Probe::Missing
        } else {
            Probe::Failed(report)
        }
    }
}

fn card_of(payment_method: PaymentMethodData) -> VaultResult<Card> {
    match payment_method {
        PaymentMethodData::Card(card) => Ok(card),
        #[allow(unreachable_patterns)]
        _ => Err(Report::new(VaultError::InvalidRequest)
            .attach(Detail::new("the VGS connector stores cards only"))),
    }
}

/// A fresh report with the same kind and safe attachments, for each item that shares
/// one failed batch request.
fn copy_report(report: &Report<VaultError>) -> Report<VaultError> {
    let mut copy = Report::new(report.kind());
    if let Some(status) = report.http_status() {
        copy = copy.attach(HttpStatus(status));
    }
    for detail in report.details() {
        copy = copy.attach(Detail::new(detail));
    }
    if let Some(trace) = report.trace_id() {
        copy = copy.attach(TraceId(trace.to_owned()));
    }
    if let Some(wait) = report.retry_after() {
        copy = copy.attach(RetryAfter(wait));
    }
    if let Some(attempt) = report.attempt() {
        copy = copy.attach(Attempt(attempt));
    }
    copy.attach(Detail::new(
        "failed together with the other items of its batch request",
    ))
}

#[async_trait]
impl ExternalVault for VgsConnector {
    async fn insert(&self, request: InsertRequest) -> VaultResult<InsertResponse> {
        self.traced("insert", async move {
            let mode = request.mode;
            let card = card_of(request.payment_method)?;
            let values = self.values_of(0, &card, mode);
            let sent_at = self.inner.clock.now();
            let records = self.store(&values).await?;
            Ok(InsertResponse::new(self.assemble(mode, records, sent_at)))
        })
        .await
    }

    async fn retrieve(&self, request: RetrieveRequest) -> VaultResult<RetrieveResponse> {
        self.traced("retrieve", async move {
            let id = &request.connector_vault_id;
            let persistent: Vec<&Alias> = match id {
                ConnectorVaultId::Multi(fields) => fields
                    .values()
                    .filter(|f| f.storage == Storage::Persistent)
                    .map(|f| &f.alias)
                    .collect(),
                ConnectorVaultId::Single { id, .. } => vec![id],
            };
            // The persistent fields and the volatile CVC are two reads: both go out
            // at once, so a retrieve costs one round trip to the vault.
            let (values, cvc) =
                futures_util::future::join(self.reveal_many(&persistent), self.read_cvc(id)).await;
            let values = values?;
            let cvc = cvc?;
            self.rebuild(
                id,
                |alias| {
                    persistent
                        .iter()
                        .zip(&values)
                        .find(|(asked, _)| **asked == alias)
                        .and_then(|(_, value)| value.as_ref())
                },
                cvc,
            )
        })
        .await
    }

    /// Fetches the access token (API v2; into the cache and any shared token store)
    /// and opens the connection to the vault with one read of an alias that cannot
    /// exist ([`check`](Self::check)): one vault API request, plus a token fetch when
    /// no valid token is cached. Idle connections close after 90 s, so call it at
    /// start-up, not long before traffic.
    async fn warm_up(&self) -> VaultResult<()> {
        self.traced("warm_up", self.check()).await
    }

    async fn delete(&self, request: DeleteRequest) -> VaultResult<DeleteResponse> {
        self.traced("delete", async move {
            let plan = self.delete_plan(&request.connector_vault_id).await?;
            self.carry_out(DeleteScope::PaymentMethod, plan).await
        })
        .await
    }

    async fn erase(&self, request: EraseRequest) -> VaultResult<DeleteResponse> {
        self.traced("erase", async move {
            let wanted: Vec<(StoredPart, Alias, Storage)> = parts(&request.connector_vault_id)
                .into_iter()
                .filter(|(part, _, _)| match part {
                    StoredPart::Field(field) => request.fields.contains(field),
                    // The record holds every field but the CVC.
                    _ => request.fields.iter().any(|f| *f != CardField::CardCvc),
                })
                .collect();
            // Every alias of each value's record (other formats, made for other
            // cards), so that the value is gone from the vault, not one alias. The
            // records are read at once: one round trip, then one for the deletes.
            let found = join_all(
                wanted
                    .iter()
                    .map(|(_, alias, storage)| self.record_aliases(alias, *storage)),
            )
            .await;
            let mut plan = Vec::new();
            for ((part, alias, storage), found) in wanted.into_iter().zip(found) {
                match found {
                    Ok(all) => plan.extend(all.into_iter().map(|a| (part, a, storage, Plan::Remove))),
                    Err(Probe::Missing) => plan.push((part, alias, storage, Plan::Gone)),
                    Err(Probe::Failed(report)) if report.kind() == VaultError::RevealDisabled => {
                        return Err(report.attach(Detail::new(
                            "erase reads each record to find every alias of its value, which needs reveal; nothing was erased",
                        )));
                    }
                    Err(Probe::Failed(report)) => return Err(report),
                }
            }
            // Everywhere only where equal values are one record, and every record was
            // reached: a single-id record is one card's own, and an alias already gone
            // no longer leads to the value's other aliases.
            let shared = self.inner.fingerprinting.is_on()
                && plan
                    .iter()
                    .all(|(part, _, _, action)| {
                        matches!(part, StoredPart::Field(_)) && *action != Plan::Gone
                    });
            let scope = match shared {
                true => DeleteScope::EveryHolder,
                false => DeleteScope::ReachableRecords,
            };
            self.carry_out(scope, plan).await
        })
        .await
    }
}

/// What a delete or erase does with one record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Plan {
    Remove,
    Keep(KeptBecause),
    /// Known to be gone already (a read found nothing).
    Gone,
}

/// Every record of a payment method: (part, alias, storage).
fn parts(id: &ConnectorVaultId) -> Vec<(StoredPart, Alias, Storage)> {
    match id {
        ConnectorVaultId::Multi(fields) => fields
            .iter()
            .map(|(field, f)| (StoredPart::Field(*field), f.alias.clone(), f.storage))
            .collect(),
        ConnectorVaultId::Single { id, cvc, .. } => {
            let mut parts = vec![(StoredPart::WholeCard, id.clone(), Storage::Persistent)];
            parts.extend(cvc.iter().map(|c| {
                (
                    StoredPart::Field(CardField::CardCvc),
                    c.clone(),
                    Storage::Volatile,
                )
            }));
            parts
        }
    }
}

impl VgsConnector {
    /// What delete removes and what it keeps. Without fingerprinting every record is
    /// the card's own: all go. With it, equal values are one record, shared with every
    /// card holding the value (a holder name, a PAN saved by two customers, a CVC, an
    /// expiry), and nothing says who else holds it: per-field records are kept. A
    /// single-id record is the card's own when it carries vaultlink's random marker
    /// (read to check); the CVC beside it is a plain value, kept (it expires within the
    /// hour anyway).
    async fn delete_plan(
        &self,
        id: &ConnectorVaultId,
    ) -> VaultResult<Vec<(StoredPart, Alias, Storage, Plan)>> {
        let mut plan = Vec::new();
        for (part, alias, storage) in parts(id) {
            let action = match (self.inner.fingerprinting, part) {
                (Fingerprinting::Off, _) => Plan::Remove,
                (Fingerprinting::On, StoredPart::WholeCard) => {
                    match self.reveal_one(alias.as_str(), storage).await {
                        Ok(record) if transformers::whole_card_is_marked(&record) => Plan::Remove,
                        Ok(_) => Plan::Keep(KeptBecause::SharedByValue),
                        Err(Probe::Missing) => Plan::Gone,
                        // Cannot read it, so cannot tell whose it is: keep it.
                        Err(Probe::Failed(report))
                            if report.kind() == VaultError::RevealDisabled =>
                        {
                            Plan::Keep(KeptBecause::SharedByValue)
                        }
                        Err(Probe::Failed(report)) => return Err(report),
                    }
                }
                (Fingerprinting::On, _) => Plan::Keep(KeptBecause::SharedByValue),
            };
            plan.push((part, alias, storage, action));
        }
        Ok(plan)
    }

    /// Removes what `plan` says, concurrently, and reports every record's outcome.
    async fn carry_out(
        &self,
        scope: DeleteScope,
        plan: Vec<(StoredPart, Alias, Storage, Plan)>,
    ) -> VaultResult<DeleteResponse> {
        let outcomes = join_all(plan.iter().map(|(_, alias, storage, action)| async move {
            match action {
                Plan::Remove => self.delete_alias(alias, *storage).await.map(|removed| {
                    if removed {
                        RecordAction::Removed
                    } else {
                        RecordAction::AlreadyGone
                    }
                }),
                Plan::Keep(why) => Ok(RecordAction::Kept(*why)),
                Plan::Gone => Ok(RecordAction::AlreadyGone),
            }
        }))
        .await;
        let mut records = Vec::with_capacity(plan.len());
        for ((part, alias, storage, _), outcome) in plan.into_iter().zip(outcomes) {
            records.push(RecordOutcome::new(part, alias, storage, outcome?));
        }
        Ok(DeleteResponse::new(scope, records))
    }

    /// Every alias of the record behind `alias` (one per format it was given).
    async fn record_aliases(&self, alias: &Alias, storage: Storage) -> Result<Vec<Alias>, Probe> {
        let answer = self.read_record(alias.as_str(), storage).await?;
        let mut all = transformers::parse_reveal_aliases(&answer.body).map_err(Probe::Failed)?;
        if !all.contains(alias) {
            all.insert(0, alias.clone());
        }
        Ok(all)
    }
}
