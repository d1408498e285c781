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
    Alias, Attempt, CardField, ConnectorVaultId, DeleteRequest, DeleteResponse, DeleteScope,
    Detail, EraseRequest, ExpiryMonth, ExpiryYear, ExternalVault, FieldAliases, HttpStatus,
    InsertRequest, InsertResponse, KeptBecause, MissingField, MissingReason, PaymentMethodData,
    RecordAction, RecordOutcome, ReportExt, RetrieveRequest, RetrieveResponse, RetryAfter, Storage,
    StoredPart, SystemWallClock, TokenizationMode, TraceId, VaultError, VaultId, VaultResult,
    WallClock, async_trait,
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
                match self.values_of(item, &request) {
                    Ok(slots) => values.extend(slots),
                    Err(report) => results[item] = Some(Err(report)),
                }
                modes.push((request.mode, request.for_card));
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
                .map(|((result, records), (mode, for_card))| {
                    result.unwrap_or_else(|| {
                        Ok(InsertResponse::new(merged(
                            for_card,
                            self.assemble(mode, records, sent_at),
                        )))
                    })
                })
                .collect()
        }
        .instrument(span)
        .await
    }

    /// The values an insert stores, checked before anything is sent.
    fn values_of(&self, item: usize, request: &InsertRequest) -> VaultResult<Vec<SlotValue>> {
        let invalid = |what: &str| {
            Err(Report::new(VaultError::InvalidRequest).attach(Detail::new(what.to_owned())))
        };
        let formats = self.inner.formats;
        let values = match (&request.payment_method, request.mode) {
            (PaymentMethodData::Card(card), TokenizationMode::PerField) => {
                transformers::per_field_values(item, card, formats)
            }
            (PaymentMethodData::Card(card), TokenizationMode::SingleId) => {
                transformers::single_id_values(item, card, &transformers::new_record_marker())
            }
            (PaymentMethodData::CardFields(fields), TokenizationMode::PerField) => {
                if fields.is_empty() {
                    return invalid("the card fields to store are empty: give at least one");
                }
                transformers::field_slots(item, transformers::card_field_values(fields), formats)
            }
            (PaymentMethodData::NetworkToken(token), TokenizationMode::PerField) => {
                transformers::field_slots(item, transformers::network_token_values(token), formats)
            }
            (PaymentMethodData::CardFields(_) | PaymentMethodData::NetworkToken(_), _) => {
                return invalid(
                    "single-id mode stores whole cards; store card fields and network tokens per field (the default mode)",
                );
            }
            (PaymentMethodData::CardAliases(_), _) => {
                return invalid(
                    "card aliases make a card object in VGS CMP; the VGS vault API connector stores card data",
                );
            }
            (_, _) => return invalid("the VGS connector cannot store this kind of payment method"),
        };
        if let Some(card) = &request.for_card {
            let only_cvc = values
                .iter()
                .all(|v| v.slot.field == SlotField::Field(CardField::CardCvc));
            let fits = match card {
                ConnectorVaultId::Single { .. } => only_cvc,
                ConnectorVaultId::Multi(fields) => !fields.keys().any(|f| f.is_network_token()),
            };
            if !fits || !matches!(request.payment_method, PaymentMethodData::CardFields(_)) {
                return invalid(
                    "fields for a stored card are card fields, and a single-id card takes only a new CVC",
                );
            }
        }
        Ok(values)
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
            let (outcomes, volatile) = futures_util::future::join(
                self.bounded(chunks.iter().map(|chunk| self.reveal_many(chunk))),
                self.bounded(ids.iter().map(|id| self.read_volatile(id))),
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
                .zip(volatile)
                .map(|(id, volatile)| {
                    let failed = id
                        .aliases()
                        .iter()
                        .find_map(|a| failures.get(a.as_str()))
                        .copied();
                    if let Some(index) = failed {
                        return Err(copy_report(&reports[index]));
                    }
                    self.rebuild(id, |alias| values.get(alias.as_str()), volatile?, None)
                })
                .collect()
        }
        .instrument(span)
        .await
    }

    /// Rebuilds a payment method from revealed persistent values (looked up by
    /// `persistent`) and its volatile ones, as [`read_volatile`](Self::read_volatile)
    /// found them. A field without which it cannot be rebuilt that is gone is an
    /// error naming it; an optional one (CVC, holder name, cryptogram) is reported in
    /// `missing`. `expiry` fills in a card expiry the id has no alias for.
    fn rebuild<'v>(
        &self,
        id: &ConnectorVaultId,
        persistent: impl Fn(&Alias) -> Option<&'v SecretString>,
        volatile: Volatile,
        expiry: Option<&(ExpiryMonth, ExpiryYear)>,
    ) -> VaultResult<RetrieveResponse> {
        let gone = |field: &str, alias: &Alias, storage: Storage| {
            let volatile = match storage {
                Storage::Volatile => {
                    "; it was stored volatile, and VGS keeps volatile values an hour at most (Hyperswitch's multi-token mode stores every field volatile)"
                }
                Storage::Persistent => "",
            };
            Report::new(VaultError::AliasNotFound)
                .attach(HttpStatus(404))
                .attach(Detail::new(format!(
                    "the {field} record (alias {alias}) is not in vault {}: the vault never issued this alias, or it was erased or deleted since{volatile}; the payment method cannot be rebuilt without it",
                    self.inner.vault_id
                )))
        };
        let mut missing = Vec::new();
        let payment_method = match id {
            ConnectorVaultId::Multi(fields) => {
                let mut got: Got<'_> = [None; CardField::EVERY.len()];
                for (field, stored) in fields {
                    let value = match stored.storage {
                        Storage::Persistent => persistent(&stored.alias),
                        Storage::Volatile => volatile
                            .iter()
                            .find(|(f, _)| f == field)
                            .and_then(|(_, value)| value.as_ref()),
                    };
                    match value {
                        Some(value) => {
                            got[*field as usize] = Some(value);
                        }
                        None if optional(*field) => {
                            let reason = match stored.storage {
                                // Persistent: it cannot have expired.
                                Storage::Persistent => MissingReason::Gone,
                                Storage::Volatile => self.missing_reason(
                                    stored.expires_at.map(|at| (at, stored.expiry_exact)),
                                ),
                            };
                            missing.push(MissingField::new(*field, stored.alias.clone(), reason));
                        }
                        None => return Err(gone(field.as_str(), &stored.alias, stored.storage)),
                    }
                }
                let supplied = expiry.map(|(month, year)| {
                    (
                        SecretString::from(month.two_digits()),
                        SecretString::from(year.get().to_string()),
                    )
                });
                if let Some((month, year)) = &supplied {
                    got[CardField::CardExpMonth as usize].get_or_insert(month);
                    got[CardField::CardExpYear as usize].get_or_insert(year);
                }
                payment_method_of(fields, &got)?
            }
            ConnectorVaultId::Single {
                id,
                cvc: cvc_alias,
                cvc_expires_at,
            } => {
                let record = persistent(id).ok_or_else(|| gone("card", id, Storage::Persistent))?;
                let cvc = volatile
                    .into_iter()
                    .find(|(field, _)| *field == CardField::CardCvc)
                    .and_then(|(_, value)| value);
                let (card, legacy) = transformers::card_from_whole(record, cvc)?;
                // A CVC alias that no longer reads, unless the record had one inside
                // (Hyperswitch's) to come back instead.
                if let (Some(alias), None) = (cvc_alias, &card.cvc) {
                    // Single ids record an upper bound only.
                    let reason = self.missing_reason(cvc_expires_at.map(|at| (at, false)));
                    missing.push(MissingField::new(CardField::CardCvc, alias.clone(), reason));
                }
                if legacy {
                    let response = RetrieveResponse::new(PaymentMethodData::Card(card));
                    return Ok(response.with_missing(missing).from_legacy_record());
                }
                PaymentMethodData::Card(card)
            }
        };
        Ok(RetrieveResponse::new(payment_method).with_missing(missing))
    }

    /// The volatile values of a payment method (its CVC; every field of a
    /// Hyperswitch multi-token card), each read on its own and all at once: field ->
    /// value, `None` where the vault no longer holds it. Read together with the
    /// persistent reveal, so that retrieve costs one round trip, not two.
    async fn read_volatile(&self, id: &ConnectorVaultId) -> VaultResult<Volatile> {
        let aliases: Vec<(CardField, &Alias)> = match id {
            ConnectorVaultId::Multi(fields) => fields
                .iter()
                .filter(|(_, stored)| stored.storage == Storage::Volatile)
                .map(|(field, stored)| (*field, &stored.alias))
                .collect(),
            ConnectorVaultId::Single { cvc, .. } => cvc
                .iter()
                .map(|alias| (CardField::CardCvc, alias))
                .collect(),
        };
        if let [(field, alias)] = aliases[..] {
            // The usual case, one CVC: no futures to collect.
            return Ok(vec![(field, self.optional_volatile(alias).await?)]);
        }
        let reads = join_all(
            aliases
                .iter()
                .map(|(_, alias)| self.optional_volatile(alias)),
        )
        .await;
        aliases
            .iter()
            .zip(reads)
            .map(|((field, _), read)| read.map(|value| (*field, value)))
            .collect()
    }

    /// Why a volatile value the vault no longer holds is missing: it expired (its
    /// hour is over by the connector's clock), it vanished before its time (the expiry
    /// was exact), or either (only a bound is known).
    fn missing_reason(&self, expires_at: Option<(SystemTime, bool)>) -> MissingReason {
        match expires_at {
            Some((at, _)) if self.inner.clock.now() >= at => MissingReason::Expired,
            Some((_, true)) => MissingReason::Gone,
            Some((_, false)) | None => MissingReason::ExpiredOrGone,
        }
    }

    /// A volatile value if the vault still holds it: "not found" (expired or
    /// deleted) is `None`, not an error.
    async fn optional_volatile(&self, alias: &Alias) -> VaultResult<Option<SecretString>> {
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
        if aliases.is_empty() {
            // Nothing persistent (a Hyperswitch multi-token card is all volatile).
            return Ok(Vec::new());
        }
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
        let (at, exact) = match (believable, self.inner.fingerprinting) {
            (Some(created), _) => (bound.min(created + VOLATILE_LIFETIME), true),
            (None, Fingerprinting::Off) => (bound, true),
            (None, Fingerprinting::On) => (bound, false),
        };
        // To the second: ids are kept as text (JSON, the compact form) in seconds.
        (vault_core::whole_seconds(at), exact)
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

/// A payment method's volatile values, as read: field -> value (`None`: gone).
type Volatile = Vec<(CardField, Option<SecretString>)>;

/// The values read for a per-field id, by field (`field as usize`): no map to build
/// on every retrieve.
type Got<'v> = [Option<&'v SecretString>; CardField::EVERY.len()];

/// Whether a payment method can be rebuilt without the field.
fn optional(field: CardField) -> bool {
    matches!(
        field,
        CardField::CardCvc | CardField::CardHolderName | CardField::NetworkTokenCryptogram
    )
}

/// The payment method a per-field id holds, from the values read (`got`): a network
/// token, a whole card, or, for an id that holds only part of a card, its fields.
fn payment_method_of(fields: &FieldAliases, got: &Got<'_>) -> VaultResult<PaymentMethodData> {
    let value = |field: CardField| got[field as usize];
    if fields.keys().any(CardField::is_network_token) {
        let need = |field: CardField| {
            value(field).ok_or_else(|| {
                Report::new(VaultError::InvalidRequest).attach(Detail::new(format!(
                    "the vault id holds a network token but no alias for {field}"
                )))
            })
        };
        let token = transformers::network_token_from_refs(
            need(CardField::NetworkToken)?,
            need(CardField::NetworkTokenExpMonth)?,
            need(CardField::NetworkTokenExpYear)?,
            value(CardField::NetworkTokenCryptogram),
        )?;
        return Ok(PaymentMethodData::NetworkToken(token));
    }
    let refs = FieldRefs {
        number: value(CardField::CardNumber),
        exp_month: value(CardField::CardExpMonth),
        exp_year: value(CardField::CardExpYear),
        cvc: value(CardField::CardCvc),
        holder_name: value(CardField::CardHolderName),
    };
    if refs.number.is_some() && refs.exp_month.is_some() && refs.exp_year.is_some() {
        Ok(PaymentMethodData::Card(transformers::card_from_refs(refs)?))
    } else {
        Ok(PaymentMethodData::CardFields(
            transformers::card_fields_from_refs(refs)?,
        ))
    }
}

/// The id of a stored card with newly stored fields in place of its old ones
/// ([`InsertRequest::cvc_for`]); `stored` itself when the insert was not for a card.
fn merged(card: Option<ConnectorVaultId>, stored: ConnectorVaultId) -> ConnectorVaultId {
    match (card, stored) {
        (None, stored) => stored,
        (Some(ConnectorVaultId::Multi(mut fields)), ConnectorVaultId::Multi(new)) => {
            fields.extend(new);
            ConnectorVaultId::Multi(fields)
        }
        (Some(ConnectorVaultId::Single { id, .. }), ConnectorVaultId::Multi(new)) => {
            // values_of admits only a CVC here.
            let cvc = new.get(&CardField::CardCvc);
            ConnectorVaultId::Single {
                id,
                cvc: cvc.map(|f| f.alias.clone()),
                cvc_expires_at: cvc.and_then(|f| f.expires_at),
            }
        }
        (Some(_), stored) => stored,
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
            let values = self.values_of(0, &request)?;
            let sent_at = self.inner.clock.now();
            let records = self.store(&values).await?;
            let stored = self.assemble(request.mode, records, sent_at);
            Ok(InsertResponse::new(merged(request.for_card, stored)))
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
            // The persistent fields and the volatile ones (the CVC) are separate
            // reads: all go out at once, so a retrieve costs one round trip.
            let (values, volatile) =
                futures_util::future::join(self.reveal_many(&persistent), self.read_volatile(id))
                    .await;
            let values = values?;
            let volatile = volatile?;
            self.rebuild(
                id,
                |alias| {
                    persistent
                        .iter()
                        .zip(&values)
                        .find(|(asked, _)| **asked == alias)
                        .and_then(|(_, value)| value.as_ref())
                },
                volatile,
                request.expiry.as_ref(),
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
