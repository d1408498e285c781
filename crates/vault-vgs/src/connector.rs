//! `VgsConnector`: the flows (insert, retrieve, delete, and their batch forms) wired
//! from routing, transformers and the executor; implements `ExternalVault`.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use error_stack::Report;
use futures_util::future::join_all;
use reqwest::Method;
use secrecy::SecretString;
use tracing::{Instrument, field};
use url::Url;
use vault_auth::FetchStats;
use vault_core::{
    Alias, Attempt, Card, CardField, ConnectorVaultId, DeleteRequest, DeleteResponse, Detail,
    ExternalVault, FieldAlias, FieldAliases, HttpStatus, InsertRequest, InsertResponse,
    PaymentMethodData, ReportExt, RetrieveRequest, RetrieveResponse, RetryAfter, Storage,
    TokenizationMode, TraceId, VaultError, VaultId, VaultResult, async_trait,
};

use crate::auth::Authorizer;
use crate::config::VgsConnectorBuilder;
use crate::http::{Call, Executor};
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
}

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
                },
                routes,
                formats: Formats {
                    card_number: builder.card_number_format,
                },
                batch_concurrency: builder.batch_concurrency,
            }),
        })
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
                    result.unwrap_or_else(|| Ok(InsertResponse::new(assemble(mode, records))))
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
            TokenizationMode::SingleId => transformers::single_id_values(item, card),
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
                idempotent: false,
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
            let outcomes = self
                .bounded(chunks.iter().map(|chunk| self.reveal_many(chunk)))
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
            let rebuilt = ids.iter().map(|id| {
                let failed = id
                    .aliases()
                    .iter()
                    .find_map(|a| failures.get(a.as_str()))
                    .copied();
                let values = &values;
                let reports = &reports;
                async move {
                    if let Some(index) = failed {
                        return Err(copy_report(&reports[index]));
                    }
                    self.rebuild(id, |alias| values.get(alias.as_str())).await
                }
            });
            self.bounded(rebuilt).await
        }
        .instrument(span)
        .await
    }

    /// Rebuilds a card from revealed persistent values (looked up by `value_of`) and
    /// its CVC, revealed from volatile storage.
    async fn rebuild<'v>(
        &self,
        id: &ConnectorVaultId,
        value_of: impl Fn(&Alias) -> Option<&'v SecretString>,
    ) -> VaultResult<RetrieveResponse> {
        let required = |alias: &Alias| {
            value_of(alias).ok_or_else(|| {
                Report::new(VaultError::AliasNotFound)
                    .attach(HttpStatus(404))
                    .attach(Detail::new(format!(
                        "alias {alias} not found in vault {}",
                        self.inner.vault_id
                    )))
            })
        };
        let card = match id {
            ConnectorVaultId::Multi(fields) => {
                let get = |field: CardField| fields.get(&field);
                let need = |field: CardField| {
                    get(field).map(|f| &f.alias).ok_or_else(|| {
                        Report::new(VaultError::InvalidRequest).attach(Detail::new(format!(
                            "the vault id has no alias for {field}"
                        )))
                    })
                };
                let number = required(need(CardField::CardNumber)?)?;
                let exp_month = required(need(CardField::CardExpMonth)?)?;
                let exp_year = required(need(CardField::CardExpYear)?)?;
                let holder_name = get(CardField::CardHolderName).and_then(|f| value_of(&f.alias));
                let cvc = match get(CardField::CardCvc) {
                    Some(field) => self.optional_cvc(&field.alias).await?,
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
            ConnectorVaultId::Single { id, cvc } => {
                let record = required(id)?;
                let cvc = match cvc {
                    Some(alias) => self.optional_cvc(alias).await?,
                    None => None,
                };
                transformers::card_from_whole(record, cvc)?
            }
        };
        Ok(RetrieveResponse::new(PaymentMethodData::Card(card)))
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
        let mut url = self.inner.routes.alias(alias);
        if storage == Storage::Volatile {
            url.query_pairs_mut()
                .append_pair("storage", storage.as_str());
        }
        let answer = self
            .inner
            .exec
            .execute(Call {
                method: Method::GET,
                url,
                body: None,
                idempotent: true,
                operation: Operation::Alias(alias),
            })
            .await
            .map_err(Probe::from)?;
        transformers::parse_reveal_one(&answer.body).map_err(Probe::Failed)
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
                idempotent: true,
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
        let mut url = self.inner.routes.alias(alias.as_str());
        if storage == Storage::Volatile {
            url.query_pairs_mut()
                .append_pair("storage", storage.as_str());
        }
        let outcome = self
            .inner
            .exec
            .execute(Call {
                method: Method::DELETE,
                url,
                body: None,
                idempotent: true,
                operation: Operation::Alias(alias.as_str()),
            })
            .await;
        match outcome {
            Ok(_) => Ok(true),
            Err(report) if report.kind() == VaultError::AliasNotFound => Ok(false),
            Err(report) => Err(report),
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

fn assemble(mode: TokenizationMode, records: Vec<Stored>) -> ConnectorVaultId {
    match mode {
        TokenizationMode::PerField => {
            let mut fields = FieldAliases::new();
            for record in records {
                if let SlotField::Field(field) = record.slot.field {
                    fields.insert(field, record.alias);
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
                    SlotField::Field(_) => cvc = Some(record.alias.alias),
                }
            }
            let id = id.expect("a single-id insert always stores the card record");
            ConnectorVaultId::Single { id, cvc }
        }
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
            let records = self.store(&values).await?;
            Ok(InsertResponse::new(assemble(mode, records)))
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
            let values = self.reveal_many(&persistent).await?;
            self.rebuild(id, |alias| {
                persistent
                    .iter()
                    .zip(&values)
                    .find(|(asked, _)| **asked == alias)
                    .and_then(|(_, value)| value.as_ref())
            })
            .await
        })
        .await
    }

    async fn delete(&self, request: DeleteRequest) -> VaultResult<DeleteResponse> {
        self.traced("delete", async move {
            let (targets, retained) = delete_plan(&request.connector_vault_id);
            let outcomes = join_all(
                targets
                    .iter()
                    .map(|f| self.delete_alias(&f.alias, f.storage)),
            )
            .await;
            let mut removed = Vec::new();
            let mut already_gone = Vec::new();
            for (target, outcome) in targets.into_iter().zip(outcomes) {
                if outcome? {
                    removed.push(target.alias);
                } else {
                    already_gone.push(target.alias);
                }
            }
            Ok(DeleteResponse::new(removed, already_gone).with_retained(retained))
        })
        .await
    }
}

/// What delete removes, and what it leaves. Expiry month and year records are shared:
/// VGS fingerprints values, so every card expiring in April shares one `04` record,
/// and deleting it would break every other stored card. They are not cardholder data
/// on their own, so they stay; everything that identifies the card goes.
fn delete_plan(id: &ConnectorVaultId) -> (Vec<FieldAlias>, Vec<Alias>) {
    match id {
        ConnectorVaultId::Multi(fields) => {
            let mut targets = Vec::new();
            let mut retained = Vec::new();
            for (field, alias) in fields {
                match field {
                    CardField::CardExpMonth | CardField::CardExpYear => {
                        retained.push(alias.alias.clone())
                    }
                    _ => targets.push(alias.clone()),
                }
            }
            (targets, retained)
        }
        ConnectorVaultId::Single { id, cvc } => {
            let field = |alias: &Alias, storage| FieldAlias {
                alias: alias.clone(),
                format: vault_core::AliasFormat::Uuid,
                storage,
            };
            let mut targets = vec![field(id, Storage::Persistent)];
            targets.extend(cvc.iter().map(|c| field(c, Storage::Volatile)));
            (targets, Vec::new())
        }
    }
}
