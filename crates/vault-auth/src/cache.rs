//! `TokenCache`: one token per (endpoint, client id, scopes), fetched by a single
//! flight, refreshed ahead of expiry in the background, invalidated on a vault 401.

use std::fmt;
use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use error_stack::Report;
use reqwest::header::HeaderValue;
use tokio::sync::watch;
use tracing::Instrument as _;
use vault_core::{
    AccessToken, Attempt, Detail, HttpStatus, ReportExt, RetryAfter, TraceId, VaultError,
};

use crate::clock::{Clock, SystemClock};
use crate::schedule::{Freshness, RefreshPolicy, TokenTimes};
use crate::source::{AuthScheme, CacheKey, FetchedToken, TokenSource};
use crate::store::{InMemoryTokenStore, StoreLock, StoredToken, TokenStore};

/// Default bound on one token fetch by the cache, whatever the source.
pub const DEFAULT_FETCH_TIMEOUT: Duration = Duration::from_secs(15);
/// How often the cache re-reads a shared store while another process holds its lock.
const LOCK_POLL: Duration = Duration::from_millis(50);

/// A token held by the cache, with its `Authorization` header value built once.
///
/// Callers get an `Arc<CachedToken>`: handing it out allocates nothing, and cloning
/// [`authorization`](Self::authorization) only bumps a reference count.
pub struct CachedToken {
    token: AccessToken,
    header: HeaderValue,
    scheme: AuthScheme,
    lifetime: Duration,
    issued_at: Instant,
    expires_at: Instant,
    /// Refresh instant as nanoseconds after `issued_at`; moved later after a failed
    /// refresh so that the next attempt waits for the failure backoff.
    refresh_after_nanos: AtomicU64,
    generation: u64,
}

impl CachedToken {
    fn new(
        fetched: FetchedToken,
        times: TokenTimes,
        generation: u64,
    ) -> Result<Self, Report<VaultError>> {
        let header = fetched.scheme.header_value(&fetched.token)?;
        Ok(CachedToken {
            token: fetched.token,
            header,
            scheme: fetched.scheme,
            lifetime: fetched.lifetime,
            issued_at: times.issued_at,
            expires_at: times.expires_at,
            refresh_after_nanos: AtomicU64::new(nanos(times.refresh_at - times.issued_at)),
            generation,
        })
    }

    /// The token.
    pub fn access_token(&self) -> &AccessToken {
        &self.token
    }

    /// The `Authorization` header value (`Bearer …`, `TOK:…`), marked sensitive.
    pub fn authorization(&self) -> &HeaderValue {
        &self.header
    }

    /// How the token is sent.
    pub fn scheme(&self) -> AuthScheme {
        self.scheme
    }

    /// The lifetime the token was issued with.
    pub fn lifetime(&self) -> Duration {
        self.lifetime
    }

    /// When the request for this token was sent (on the cache's clock).
    pub fn issued_at(&self) -> Instant {
        self.issued_at
    }

    /// When the cache stops handing this token out.
    pub fn expires_at(&self) -> Instant {
        self.expires_at
    }

    /// From when a background refresh is (next) attempted.
    pub fn refresh_at(&self) -> Instant {
        self.issued_at + Duration::from_nanos(self.refresh_after_nanos.load(Ordering::Relaxed))
    }

    /// The token's state at `now`.
    pub fn freshness(&self, now: Instant) -> Freshness {
        TokenTimes {
            issued_at: self.issued_at,
            refresh_at: self.refresh_at(),
            expires_at: self.expires_at,
        }
        .freshness(now)
    }

    fn postpone_refresh(&self, until: Instant) {
        let until = until.min(self.expires_at);
        let after = nanos(until.saturating_duration_since(self.issued_at));
        self.refresh_after_nanos.fetch_max(after, Ordering::Relaxed);
    }
}

fn nanos(duration: Duration) -> u64 {
    u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX)
}

impl fmt::Debug for CachedToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CachedToken")
            .field("token", &self.token)
            .field("scheme", &self.scheme)
            .field("lifetime", &self.lifetime)
            .field("generation", &self.generation)
            .finish_non_exhaustive()
    }
}

/// How many times the cache called its token source.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FetchStats {
    /// Fetches that returned a token.
    pub ok: u64,
    /// Fetches that failed (including timeouts).
    pub failed: u64,
}

impl FetchStats {
    /// All fetches.
    pub fn total(&self) -> u64 {
        self.ok + self.failed
    }
}

/// A failed fetch as every caller waiting on it gets it: the kind and the
/// vault-core attachments, rebuilt into a new report for each caller.
struct SharedFailure {
    kind: VaultError,
    details: Vec<Detail>,
    status: Option<HttpStatus>,
    retry_after: Option<RetryAfter>,
    trace_id: Option<TraceId>,
}

impl SharedFailure {
    fn capture(report: &Report<VaultError>) -> Self {
        let mut details: Vec<Detail> = report
            .frames()
            .filter_map(|frame| frame.downcast_ref::<Detail>())
            .cloned()
            .collect();
        details.reverse();
        SharedFailure {
            kind: report.kind(),
            details,
            status: report.http_status().map(HttpStatus),
            retry_after: report.retry_after().map(RetryAfter),
            trace_id: report.trace_id().map(|t| TraceId(t.to_owned())),
        }
    }

    fn to_report(&self) -> Report<VaultError> {
        let mut report = Report::new(self.kind);
        for detail in &self.details {
            report = report.attach(detail.clone());
        }
        if let Some(trace_id) = &self.trace_id {
            report = report.attach(trace_id.clone());
        }
        if let Some(retry_after) = self.retry_after {
            report = report.attach(retry_after);
        }
        if let Some(status) = self.status {
            report = report.attach(status);
        }
        report
    }
}

type Outcome = Result<Arc<CachedToken>, Arc<SharedFailure>>;

/// Caches the token of one [`TokenSource`] and shares it between every task of the
/// process. Cloning is cheap (an `Arc`); clones share the token.
///
/// - **Hit path**: a read lock held for one `Arc` clone; no allocation, no await.
/// - **Single flight**: callers that find no valid token all wait on one fetch, run
///   as its own task (a caller that gives up does not cancel it for the others).
/// - **Refresh ahead**: from [`CachedToken::refresh_at`] (see [`RefreshPolicy`]) the
///   first caller starts one background refresh and every caller keeps getting the
///   current token until the new one is in. A failed refresh leaves the current
///   token in place until it really expires; the next attempt waits
///   [`RefreshPolicy::failure_backoff`].
/// - **Fail fast**: for [`RefreshPolicy::failure_backoff`] after a failed fetch,
///   callers with no valid token get that failure at once instead of starting
///   another fetch; a fetch never takes longer than the fetch timeout.
/// - **Invalidate**: [`invalidate`](Self::invalidate) drops exactly the token a vault
///   rejected; [`with_token`](Self::with_token) does it for you and retries once.
///
/// Expiry is measured on the cache's [`Clock`], read when the token request is sent.
///
/// ```no_run
/// # async fn demo(source: std::sync::Arc<dyn vault_auth::TokenSource>) -> vault_core::VaultResult<()> {
/// use vault_auth::TokenCache;
///
/// let cache = TokenCache::builder(source).build();
/// let status = cache
///     .with_token(|token| async move {
///         // send the vault call with `Authorization: token.authorization()`;
///         // map a vault 401 to `VaultError::InvalidCredentials`.
///         Ok::<_, vault_core::Report<vault_core::VaultError>>(200)
///     })
///     .await?;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct TokenCache {
    inner: Arc<Inner>,
}

struct Inner {
    source: Arc<dyn TokenSource>,
    key: CacheKey,
    store: Arc<dyn TokenStore>,
    clock: Arc<dyn Clock>,
    policy: RefreshPolicy,
    fetch_timeout: Duration,
    current: RwLock<Option<Arc<CachedToken>>>,
    flight: Mutex<Option<watch::Receiver<Option<Outcome>>>>,
    flying: AtomicBool,
    last_failure: Mutex<Option<(Instant, Arc<SharedFailure>)>>,
    ok: AtomicU64,
    failed: AtomicU64,
}

/// Builds a [`TokenCache`]. Defaults: the [`SystemClock`], a private
/// [`InMemoryTokenStore`] on the cache's clock, [`RefreshPolicy::default`] and a
/// fetch timeout of [`DEFAULT_FETCH_TIMEOUT`] (15 s).
pub struct TokenCacheBuilder {
    source: Arc<dyn TokenSource>,
    clock: Option<Arc<dyn Clock>>,
    store: Option<Arc<dyn TokenStore>>,
    policy: RefreshPolicy,
    fetch_timeout: Duration,
}

impl TokenCacheBuilder {
    /// The clock expiry is measured on (tests pass a [`ManualClock`](crate::ManualClock)).
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = Some(clock);
        self
    }

    /// The store tokens are filed in (default: a private in-memory store).
    pub fn store(mut self, store: Arc<dyn TokenStore>) -> Self {
        self.store = Some(store);
        self
    }

    /// When tokens are refreshed and how long failures are remembered.
    pub fn refresh_policy(mut self, policy: RefreshPolicy) -> Self {
        self.policy = policy;
        self
    }

    /// The longest one call of the token source may take before it counts as a
    /// [`VaultError::Timeout`] (default 15 s; the OAuth2 source's own 10 s
    /// timeout normally ends it first).
    pub fn fetch_timeout(mut self, timeout: Duration) -> Self {
        self.fetch_timeout = timeout;
        self
    }

    /// Builds the cache. Needs no runtime; fetching needs a Tokio runtime.
    pub fn build(self) -> TokenCache {
        let clock = self.clock.unwrap_or_else(|| Arc::new(SystemClock));
        let store = self
            .store
            .unwrap_or_else(|| Arc::new(InMemoryTokenStore::with_clock(clock.clone())));
        TokenCache {
            inner: Arc::new(Inner {
                key: self.source.cache_key(),
                source: self.source,
                store,
                clock,
                policy: self.policy,
                fetch_timeout: self.fetch_timeout,
                current: RwLock::new(None),
                flight: Mutex::new(None),
                flying: AtomicBool::new(false),
                last_failure: Mutex::new(None),
                ok: AtomicU64::new(0),
                failed: AtomicU64::new(0),
            }),
        }
    }
}

impl fmt::Debug for TokenCacheBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenCacheBuilder")
            .field("source", &self.source)
            .field("policy", &self.policy)
            .field("fetch_timeout", &self.fetch_timeout)
            .finish_non_exhaustive()
    }
}

impl TokenCache {
    /// Starts building a cache for `source`.
    pub fn builder(source: Arc<dyn TokenSource>) -> TokenCacheBuilder {
        TokenCacheBuilder {
            source,
            clock: None,
            store: None,
            policy: RefreshPolicy::default(),
            fetch_timeout: DEFAULT_FETCH_TIMEOUT,
        }
    }

    /// A valid token: the cached one, or one fetched (once, for all concurrent
    /// callers) when there is none. Starts a background refresh when the cached one
    /// is due for it.
    pub async fn get(&self) -> Result<Arc<CachedToken>, Report<VaultError>> {
        let inner = &self.inner;
        let now = inner.clock.now();
        if let Some(token) = inner.usable(now) {
            if now >= token.refresh_at() && !inner.flying.load(Ordering::Acquire) {
                Inner::start_refresh(inner, &token);
            }
            tracing::trace!(key = %inner.key, "token cache hit");
            return Ok(token);
        }
        Inner::wait_for_token(inner).await
    }

    /// The cached token, if it is still valid, without fetching or refreshing.
    pub fn peek(&self) -> Option<Arc<CachedToken>> {
        self.inner.usable(self.inner.clock.now())
    }

    /// Drops `token` because a vault rejected it (401): the cache forgets it only if
    /// it is still the cached one (a newer token fetched meanwhile is kept), tells
    /// the source ([`TokenSource::rejected`]) and removes it from the store. Returns
    /// whether the cached token was dropped.
    pub async fn invalidate(&self, token: &AccessToken) -> bool {
        let inner = &self.inner;
        inner.source.rejected(token);
        let removed = {
            let mut current = inner.current.write().unwrap_or_else(|p| p.into_inner());
            if current.as_ref().is_some_and(|c| c.token == *token) {
                *current = None;
                true
            } else {
                false
            }
        };
        if let Err(report) = inner.store.remove_if(&inner.key, token).await {
            tracing::debug!(key = %inner.key, kind = report.kind().code(), "token store remove failed");
        }
        if removed {
            tracing::info!(key = %inner.key, "access token invalidated after a vault rejected it");
        }
        removed
    }

    /// Runs `call` with a valid token and, if it fails with
    /// [`VaultError::InvalidCredentials`] (how a connector reports a vault 401),
    /// invalidates exactly that token and runs `call` once more with a fresh one.
    /// A second rejection is returned as it is, with [`Attempt`]`(2)` attached: the
    /// helper never loops. Any other result is returned at once.
    pub async fn with_token<T, F, Fut>(&self, mut call: F) -> Result<T, Report<VaultError>>
    where
        F: FnMut(Arc<CachedToken>) -> Fut,
        Fut: Future<Output = Result<T, Report<VaultError>>>,
    {
        let token = self.get().await?;
        match call(token.clone()).await {
            Err(report) if report.kind() == VaultError::InvalidCredentials => {
                tracing::debug!(key = %self.inner.key, "vault rejected the access token; retrying once with a fresh one");
                self.invalidate(token.access_token()).await;
            }
            other => return other,
        }
        let token = self
            .get()
            .await
            .map_err(|report| report.attach(Attempt(2)))?;
        match call(token.clone()).await {
            Err(report) if report.kind() == VaultError::InvalidCredentials => {
                self.invalidate(token.access_token()).await;
                Err(report
                    .attach(Detail::new(
                        "the vault rejected a freshly fetched access token too; not retrying again",
                    ))
                    .attach(Attempt(2)))
            }
            other => other,
        }
    }

    /// Waits until the token fetch in flight, if any, has finished and its result
    /// is in the cache. Returns at once when none is in flight. For tests (awaiting a
    /// background refresh without sleeping) and orderly shutdown.
    pub async fn settled(&self) {
        let flight = self.inner.flight_slot().clone();
        if let Some(mut flight) = flight {
            let _ = flight.wait_for(Option::is_some).await;
        }
    }

    /// How many times the source was called, and how many of those failed.
    pub fn fetch_stats(&self) -> FetchStats {
        FetchStats {
            ok: self.inner.ok.load(Ordering::Relaxed),
            failed: self.inner.failed.load(Ordering::Relaxed),
        }
    }

    /// The key the cached token is filed under.
    pub fn key(&self) -> &CacheKey {
        &self.inner.key
    }
}

impl fmt::Debug for TokenCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenCache")
            .field("key", &self.inner.key)
            .field("source", &self.inner.source)
            .field("store", &self.inner.store)
            .field("policy", &self.inner.policy)
            .field("token", &self.peek())
            .field("fetches", &self.fetch_stats())
            .finish_non_exhaustive()
    }
}

impl Inner {
    /// The cached token if it has not expired and is of the source's generation.
    fn usable(&self, now: Instant) -> Option<Arc<CachedToken>> {
        let token = self
            .current
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .as_ref()?
            .clone();
        (now < token.expires_at && token.generation == self.source.generation()).then_some(token)
    }

    fn flight_slot(&self) -> std::sync::MutexGuard<'_, Option<watch::Receiver<Option<Outcome>>>> {
        self.flight.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn start_refresh(this: &Arc<Inner>, token: &Arc<CachedToken>) {
        let tx = {
            let mut slot = this.flight_slot();
            if slot.is_some() || this.clock.now() < token.refresh_at() {
                return;
            }
            let (tx, rx) = watch::channel(None);
            *slot = Some(rx);
            this.flying.store(true, Ordering::Release);
            tx
        };
        Inner::launch(this, tx, "refresh");
    }

    async fn wait_for_token(this: &Arc<Inner>) -> Result<Arc<CachedToken>, Report<VaultError>> {
        let mut flight = {
            let mut slot = this.flight_slot();
            match slot.as_ref() {
                Some(flight) => flight.clone(),
                None => {
                    // A flight may have finished between the caller's look and the lock.
                    let now = this.clock.now();
                    if let Some(token) = this.usable(now) {
                        return Ok(token);
                    }
                    let last_failure = this
                        .last_failure
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .clone();
                    if let Some((at, failure)) = last_failure
                        && now < at + this.policy.failure_backoff()
                    {
                        return Err(failure.to_report());
                    }
                    let (tx, rx) = watch::channel(None);
                    *slot = Some(rx.clone());
                    this.flying.store(true, Ordering::Release);
                    drop(slot);
                    Inner::launch(this, tx, "fetch");
                    rx
                }
            }
        };
        let outcome = match flight.wait_for(Option::is_some).await {
            Ok(outcome) => outcome.clone(),
            Err(_) => None,
        };
        match outcome {
            Some(Ok(token)) => Ok(token),
            Some(Err(failure)) => Err(failure.to_report()),
            None => Err(Report::new(VaultError::Transport).attach(Detail::new(
                "the token fetch ended without a result (was the runtime shutting down?)",
            ))),
        }
    }

    /// Spawns the one fetch, whose receiver the caller has put in the flight slot.
    /// Called without holding the slot lock: the task's guard takes it when it ends.
    fn launch(this: &Arc<Inner>, tx: watch::Sender<Option<Outcome>>, reason: &'static str) {
        let guard = FlightGuard {
            inner: this.clone(),
        };
        // The fetch serves every caller, so it is not filed under one caller's span.
        let span =
            tracing::debug_span!(parent: None, "vault_auth.token_flight", key = %this.key, reason);
        span.follows_from(tracing::Span::current());
        tokio::spawn(
            async move {
                let inner = guard.inner.clone();
                let outcome = inner.obtain().await;
                let outcome = inner.record(outcome);
                drop(guard);
                tx.send_replace(Some(outcome));
            }
            .instrument(span),
        );
    }

    /// Files the result of a flight: the new token, or the failure (keeping the old
    /// token and postponing its next refresh).
    fn record(&self, outcome: Result<Arc<CachedToken>, Report<VaultError>>) -> Outcome {
        match outcome {
            Ok(token) => {
                *self.current.write().unwrap_or_else(|p| p.into_inner()) = Some(token.clone());
                *self.last_failure.lock().unwrap_or_else(|p| p.into_inner()) = None;
                Ok(token)
            }
            Err(report) => {
                let now = self.clock.now();
                let failure = Arc::new(SharedFailure::capture(&report));
                *self.last_failure.lock().unwrap_or_else(|p| p.into_inner()) =
                    Some((now, failure.clone()));
                let kept = self.usable(now);
                if let Some(current) = &kept {
                    current.postpone_refresh(now + self.policy.failure_backoff());
                }
                tracing::warn!(
                    kind = report.kind().code(),
                    status = report.http_status(),
                    keeping_current_token = kept.is_some(),
                    "access token fetch failed"
                );
                Err(failure)
            }
        }
    }

    /// Gets a new token: from the store if another cache or process put a fresh one
    /// there, otherwise from the source, holding the store's fetch lock so that one
    /// process fetches while the others wait for its token.
    async fn obtain(&self) -> Result<Arc<CachedToken>, Report<VaultError>> {
        let generation = self.source.generation();
        let current = self
            .current
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        // A token of an older generation in the store is no use: skip the store reads.
        let read_store = current.as_ref().is_none_or(|c| c.generation == generation);
        if read_store && let Some(token) = self.read_store(current.as_deref(), generation).await {
            return Ok(token);
        }

        let mut lock = self.try_store_lock().await;
        if lock.is_none() {
            // Another process is fetching: wait for its token to appear, or for its
            // lock to go (released without a token, or expired because it died) and
            // take it over. Past the fetch timeout, fetch without the lock.
            let deadline = tokio::time::Instant::now() + self.fetch_timeout;
            while lock.is_none() && tokio::time::Instant::now() < deadline {
                tokio::time::sleep(LOCK_POLL).await;
                if let Some(token) = self.read_store(current.as_deref(), generation).await {
                    return Ok(token);
                }
                lock = self.try_store_lock().await;
            }
        }
        // The previous holder may have filed its token between our read and our lock.
        if lock.is_some()
            && read_store
            && let Some(token) = self.read_store(current.as_deref(), generation).await
        {
            self.unlock_store(lock).await;
            return Ok(token);
        }

        let result = self.fetch(generation).await;
        if let Ok(token) = &result {
            let stored = StoredToken {
                token: token.token.clone(),
                scheme: token.scheme,
                lifetime: token.lifetime,
                remaining: token.expires_at.saturating_duration_since(self.clock.now()),
            };
            if let Err(report) = self.store.put(&self.key, stored).await {
                tracing::debug!(kind = report.kind().code(), "token store write failed");
            }
        }
        self.unlock_store(lock).await;
        result
    }

    /// The store's fetch lock: `None` while another holder has it. A store error
    /// counts as granted (the cache then fetches on its own).
    async fn try_store_lock(&self) -> Option<StoreLock> {
        match self.store.try_lock(&self.key, self.fetch_timeout).await {
            Ok(lock) => lock,
            Err(report) => {
                tracing::debug!(
                    kind = report.kind().code(),
                    "token store lock failed; fetching"
                );
                Some(StoreLock::default())
            }
        }
    }

    async fn unlock_store(&self, lock: Option<StoreLock>) {
        if let Some(lock) = lock
            && let Err(report) = self.store.unlock(&self.key, lock).await
        {
            tracing::debug!(kind = report.kind().code(), "token store unlock failed");
        }
    }

    async fn fetch(&self, generation: u64) -> Result<Arc<CachedToken>, Report<VaultError>> {
        let issued_at = self.clock.now();
        let fetched = match tokio::time::timeout(self.fetch_timeout, self.source.fetch()).await {
            Ok(result) => result,
            Err(_) => Err(Report::new(VaultError::Timeout).attach(Detail::new(format!(
                "the token source for {} did not answer within {} ms",
                self.key,
                self.fetch_timeout.as_millis()
            )))),
        };
        let token = fetched.and_then(|fetched| {
            let times = self
                .policy
                .schedule(issued_at, fetched.lifetime, rand::random::<f64>());
            CachedToken::new(fetched, times, generation)
        });
        match &token {
            Ok(token) => {
                self.ok.fetch_add(1, Ordering::Relaxed);
                tracing::debug!(
                    lifetime_secs = token.lifetime.as_secs(),
                    refresh_in_secs = token
                        .refresh_at()
                        .saturating_duration_since(issued_at)
                        .as_secs(),
                    "access token cached"
                );
            }
            Err(_) => {
                self.failed.fetch_add(1, Ordering::Relaxed);
            }
        }
        token.map(Arc::new)
    }

    /// A fresh token from the store that is not the one being replaced.
    async fn read_store(
        &self,
        current: Option<&CachedToken>,
        generation: u64,
    ) -> Option<Arc<CachedToken>> {
        let stored = match self.store.get(&self.key).await {
            Ok(stored) => stored?,
            Err(report) => {
                tracing::debug!(
                    kind = report.kind().code(),
                    "token store read failed; fetching"
                );
                return None;
            }
        };
        if current.is_some_and(|c| c.token == stored.token) {
            return None;
        }
        let now = self.clock.now();
        let lifetime = stored.lifetime.max(stored.remaining);
        let issued_at = (now + stored.remaining).checked_sub(lifetime)?;
        let times = self
            .policy
            .schedule(issued_at, lifetime, rand::random::<f64>());
        if times.freshness(now) != Freshness::Fresh {
            return None;
        }
        let fetched = FetchedToken {
            token: stored.token,
            lifetime,
            scheme: stored.scheme,
        };
        let token = CachedToken::new(fetched, times, generation).ok()?;
        tracing::debug!("access token taken from the token store");
        Some(Arc::new(token))
    }
}

/// Clears the flight slot when the flight task ends, even if it panicked or was
/// dropped with its runtime, so that a later caller can start a new one.
struct FlightGuard {
    inner: Arc<Inner>,
}

impl Drop for FlightGuard {
    fn drop(&mut self) {
        let mut slot = self.inner.flight_slot();
        *slot = None;
        self.inner.flying.store(false, Ordering::Release);
    }
}
