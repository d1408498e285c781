//! The token cache: single flight, refresh ahead in the background on an injected
//! clock, failed refreshes, fail fast, invalidate-and-retry on a vault 401, stores.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use error_stack::Report;
use vault_auth::{
    AuthScheme, CacheKey, Clock, FetchStats, FetchedToken, Freshness, InMemoryTokenStore,
    ManualClock, StoreLock, StoredToken, TokenCache, TokenSource, TokenStore,
};
use vault_core::{AccessToken, HttpStatus, ReportExt, VaultError};
use wiremock::matchers::{header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::{Script, TokenSequence, no_jitter, token_body, vgs_source};

const SEC: Duration = Duration::from_secs(1);

async fn mount_tokens(server: &MockServer, tokens: TokenSequence, expected: u64) {
    Mock::given(method("POST"))
        .and(path("/token"))
        .respond_with(tokens)
        .expect(expected)
        .mount(server)
        .await;
}

fn cache_on(server: &MockServer, clock: &Arc<ManualClock>) -> TokenCache {
    let source = vgs_source(server).build().unwrap();
    TokenCache::builder(Arc::new(source))
        .clock(clock.clone())
        .refresh_policy(no_jitter())
        .build()
}

fn stats(ok: u64, failed: u64) -> FetchStats {
    FetchStats { ok, failed }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_concurrent_callers_share_one_fetch() {
    let server = MockServer::start().await;
    mount_tokens(
        &server,
        TokenSequence::new(300).delayed(Duration::from_millis(300)),
        1,
    )
    .await;
    let cache = TokenCache::builder(Arc::new(vgs_source(&server).build().unwrap())).build();

    let callers: Vec<_> = (0..1000)
        .map(|_| {
            let cache = cache.clone();
            tokio::spawn(async move { cache.get().await })
        })
        .collect();
    let mut tokens = Vec::with_capacity(callers.len());
    for caller in callers {
        tokens.push(caller.await.unwrap().unwrap());
    }
    assert!(tokens.iter().all(|t| Arc::ptr_eq(t, &tokens[0])));
    assert_eq!(tokens[0].access_token().expose_secret(), "tok-1");
    assert_eq!(cache.fetch_stats(), stats(1, 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_token_is_refetched_once_under_contention() {
    let server = MockServer::start().await;
    mount_tokens(
        &server,
        TokenSequence::new(300).delayed(Duration::from_millis(200)),
        2,
    )
    .await;
    let clock = Arc::new(ManualClock::new());
    let cache = cache_on(&server, &clock);
    assert_eq!(
        cache.get().await.unwrap().access_token().expose_secret(),
        "tok-1"
    );

    clock.advance(300 * SEC);
    let callers: Vec<_> = (0..1000)
        .map(|_| {
            let cache = cache.clone();
            tokio::spawn(async move { cache.get().await })
        })
        .collect();
    for caller in callers {
        let token = caller.await.unwrap().unwrap();
        assert_eq!(token.access_token().expose_secret(), "tok-2");
    }
    assert_eq!(cache.fetch_stats(), stats(2, 0));
}

#[tokio::test]
async fn token_is_refreshed_ahead_in_the_background_with_jitter() {
    let server = MockServer::start().await;
    mount_tokens(&server, TokenSequence::new(300), 2).await;
    let clock = Arc::new(ManualClock::new());
    let source = vgs_source(&server).build().unwrap();
    // The default policy: 10 % margin (30 s) plus up to 15 s of jitter.
    let cache = TokenCache::builder(Arc::new(source))
        .clock(clock.clone())
        .build();
    let t0 = clock.now();
    let first = cache.get().await.unwrap();
    let refresh_in = first.refresh_at() - t0;
    assert!(
        refresh_in >= 255 * SEC && refresh_in <= 270 * SEC,
        "{refresh_in:?}"
    );

    clock.advance(254 * SEC);
    assert!(Arc::ptr_eq(&cache.get().await.unwrap(), &first));
    cache.settled().await;
    assert_eq!(
        cache.fetch_stats(),
        stats(1, 0),
        "no refresh before the margin"
    );

    clock.advance(16 * SEC); // 270 s: due whatever the jitter
    let during = cache.get().await.unwrap();
    // The caller got the still-valid token at once; the refresh runs on its own.
    assert!(Arc::ptr_eq(&during, &first));
    assert_eq!(cache.fetch_stats(), stats(1, 0));
    cache.settled().await;
    assert_eq!(cache.fetch_stats(), stats(2, 0));

    let second = cache.get().await.unwrap();
    assert_eq!(second.access_token().expose_secret(), "tok-2");
    assert_eq!(second.issued_at(), clock.now());
    assert_eq!(second.expires_at() - clock.now(), 300 * SEC);
}

#[tokio::test]
async fn callers_never_see_an_expired_token() {
    let server = MockServer::start().await;
    mount_tokens(&server, TokenSequence::new(300), 4).await;
    let clock = Arc::new(ManualClock::new());
    let cache = cache_on(&server, &clock);
    // 3 lifetimes in steps of 10 s: refreshed at 270 s, 540 s, 810 s.
    for _ in 0..90 {
        let token = cache.get().await.unwrap();
        let now = clock.now();
        assert!(token.expires_at() > now);
        assert_ne!(token.freshness(now), Freshness::Expired);
        cache.settled().await;
        clock.advance(10 * SEC);
    }
    assert_eq!(cache.fetch_stats(), stats(4, 0));
}

/// A source whose request takes 20 s on the manual clock.
#[derive(Debug)]
struct SlowSource {
    clock: Arc<ManualClock>,
}

#[async_trait::async_trait]
impl TokenSource for SlowSource {
    async fn fetch(&self) -> Result<FetchedToken, Report<VaultError>> {
        self.clock.advance(20 * SEC);
        Ok(FetchedToken {
            token: AccessToken::new("slow"),
            lifetime: 300 * SEC,
            scheme: AuthScheme::Bearer,
        })
    }

    fn cache_key(&self) -> CacheKey {
        CacheKey::new("test:slow", "c")
    }
}

#[tokio::test]
async fn expiry_counts_from_when_the_request_was_sent() {
    let clock = Arc::new(ManualClock::new());
    let cache = TokenCache::builder(Arc::new(SlowSource {
        clock: clock.clone(),
    }))
    .clock(clock.clone())
    .build();
    let sent = clock.now();
    let token = cache.get().await.unwrap();
    assert_eq!(clock.now() - sent, 20 * SEC);
    assert_eq!(token.issued_at(), sent);
    assert_eq!(token.expires_at(), sent + 300 * SEC);
}

#[tokio::test]
async fn a_failed_refresh_keeps_serving_the_old_token_until_it_expires() {
    let server = MockServer::start().await;
    Mock::given(path("/token"))
        .respond_with(Script::new(vec![
            ResponseTemplate::new(200).set_body_json(token_body("tok-1", 300)),
            ResponseTemplate::new(503),
        ]))
        .expect(3)
        .mount(&server)
        .await;
    let clock = Arc::new(ManualClock::new());
    let cache = cache_on(&server, &clock);
    let first = cache.get().await.unwrap();

    clock.advance(270 * SEC);
    assert!(Arc::ptr_eq(&cache.get().await.unwrap(), &first));
    cache.settled().await;
    assert_eq!(cache.fetch_stats(), stats(1, 1), "the refresh failed");

    // Still valid: served; the next refresh waits for the 1 s backoff.
    clock.advance(SEC / 2);
    assert!(Arc::ptr_eq(&cache.get().await.unwrap(), &first));
    cache.settled().await;
    assert_eq!(cache.fetch_stats(), stats(1, 1));

    // Really expired: callers now get the token endpoint's error.
    clock.advance(29 * SEC + SEC / 2);
    let report = cache.get().await.unwrap_err();
    assert_eq!(report.kind(), VaultError::Upstream);
    assert_eq!(report.http_status(), Some(503));
    assert_eq!(cache.fetch_stats(), stats(1, 2));
}

#[tokio::test]
async fn after_a_failure_callers_fail_fast_until_the_backoff_passes() {
    let server = MockServer::start().await;
    Mock::given(path("/token"))
        .respond_with(ResponseTemplate::new(401).set_body_json(serde_json::json!({
            "error": "invalid_client", "error_description": "Invalid client credentials"
        })))
        .expect(2)
        .mount(&server)
        .await;
    let clock = Arc::new(ManualClock::new());
    let cache = cache_on(&server, &clock);
    for _ in 0..5 {
        let report = cache.get().await.unwrap_err();
        assert_eq!(report.kind(), VaultError::InvalidCredentials);
        assert_eq!(report.http_status(), Some(401));
        assert!(
            report
                .details()
                .join(" ")
                .contains("Invalid client credentials")
        );
    }
    assert_eq!(cache.fetch_stats(), stats(0, 1));
    clock.advance(SEC);
    assert!(cache.get().await.is_err());
    assert_eq!(cache.fetch_stats(), stats(0, 2));
}

#[tokio::test]
async fn a_hanging_endpoint_fails_callers_with_a_timeout() {
    let server = MockServer::start().await;
    Mock::given(path("/token"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(token_body("late", 300))
                .set_delay(Duration::from_secs(10)),
        )
        .expect(1)
        .mount(&server)
        .await;
    let source = vgs_source(&server)
        .timeout(Duration::from_millis(200))
        .build()
        .unwrap();
    let cache = TokenCache::builder(Arc::new(source)).build();
    let (a, b) = tokio::join!(cache.get(), cache.get());
    for report in [a.unwrap_err(), b.unwrap_err()] {
        assert_eq!(report.kind(), VaultError::Timeout);
        assert!(report.is_retryable());
    }
    assert_eq!(cache.fetch_stats(), stats(0, 1));
}

/// A vault on the same mock server: `/vault` accepts only `Bearer tok-2`.
async fn mount_vault(server: &MockServer) {
    Mock::given(path("/vault"))
        .and(header("authorization", "Bearer tok-2"))
        .respond_with(ResponseTemplate::new(200))
        .mount(server)
        .await;
    Mock::given(path("/vault"))
        .respond_with(ResponseTemplate::new(401))
        .mount(server)
        .await;
}

async fn call_vault(
    server: &MockServer,
    token: &vault_auth::CachedToken,
    calls: &AtomicU32,
) -> Result<u16, Report<VaultError>> {
    calls.fetch_add(1, Ordering::SeqCst);
    let status = reqwest::Client::new()
        .get(format!("{}/vault", server.uri()))
        .header("authorization", token.authorization().clone())
        .send()
        .await
        .unwrap()
        .status()
        .as_u16();
    match status {
        401 => Err(Report::new(VaultError::InvalidCredentials).attach(HttpStatus(401))),
        other => Ok(other),
    }
}

#[tokio::test]
async fn a_vault_401_invalidates_the_token_and_retries_once() {
    let server = MockServer::start().await;
    mount_tokens(&server, TokenSequence::new(300), 2).await;
    mount_vault(&server).await;
    let clock = Arc::new(ManualClock::new());
    let cache = cache_on(&server, &clock);
    let calls = AtomicU32::new(0);

    let status = cache
        .with_token(|token| {
            let (server, calls) = (&server, &calls);
            async move { call_vault(server, &token, calls).await }
        })
        .await
        .unwrap();
    assert_eq!(status, 200);
    assert_eq!(calls.load(Ordering::SeqCst), 2);
    assert_eq!(
        cache.peek().unwrap().access_token().expose_secret(),
        "tok-2"
    );

    // The fresh token is kept: the next call needs no fetch and no retry.
    let status = cache
        .with_token(|token| {
            let (server, calls) = (&server, &calls);
            async move { call_vault(server, &token, calls).await }
        })
        .await
        .unwrap();
    assert_eq!(status, 200);
    assert_eq!(calls.load(Ordering::SeqCst), 3);
    assert_eq!(cache.fetch_stats(), stats(2, 0));
}

#[tokio::test]
async fn a_second_401_is_invalid_credentials_not_a_loop() {
    let server = MockServer::start().await;
    mount_tokens(&server, TokenSequence::new(300), 2).await;
    Mock::given(path("/vault"))
        .respond_with(ResponseTemplate::new(401))
        .expect(2)
        .mount(&server)
        .await;
    let clock = Arc::new(ManualClock::new());
    let cache = cache_on(&server, &clock);
    let calls = AtomicU32::new(0);
    let report = cache
        .with_token(|token| {
            let (server, calls) = (&server, &calls);
            async move { call_vault(server, &token, calls).await }
        })
        .await
        .unwrap_err();
    assert_eq!(report.kind(), VaultError::InvalidCredentials);
    assert_eq!(report.attempt(), Some(2));
    assert_eq!(report.http_status(), Some(401));
    assert_eq!(calls.load(Ordering::SeqCst), 2);
    assert_eq!(cache.fetch_stats(), stats(2, 0));
}

#[tokio::test]
async fn other_errors_are_not_retried() {
    let server = MockServer::start().await;
    mount_tokens(&server, TokenSequence::new(300), 1).await;
    let cache = cache_on(&server, &Arc::new(ManualClock::new()));
    let calls = AtomicU32::new(0);
    let report = cache
        .with_token(|_| {
            calls.fetch_add(1, Ordering::SeqCst);
            async { Err::<(), _>(Report::new(VaultError::Upstream)) }
        })
        .await
        .unwrap_err();
    assert_eq!(report.kind(), VaultError::Upstream);
    assert_eq!(calls.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn invalidating_an_old_token_keeps_the_newer_one() {
    let server = MockServer::start().await;
    mount_tokens(&server, TokenSequence::new(300), 2).await;
    let cache = cache_on(&server, &Arc::new(ManualClock::new()));
    let first = cache.get().await.unwrap();
    assert!(cache.invalidate(first.access_token()).await);
    let second = cache.get().await.unwrap();
    assert_eq!(second.access_token().expose_secret(), "tok-2");
    // A late 401 for the first token (another task's call) changes nothing.
    assert!(!cache.invalidate(first.access_token()).await);
    assert!(Arc::ptr_eq(&cache.get().await.unwrap(), &second));
    assert_eq!(cache.fetch_stats(), stats(2, 0));
}

#[tokio::test]
async fn caches_sharing_a_store_share_the_token() {
    let server = MockServer::start().await;
    mount_tokens(&server, TokenSequence::new(300), 1).await;
    let clock = Arc::new(ManualClock::new());
    let store = Arc::new(InMemoryTokenStore::with_clock(clock.clone()));
    let build = || {
        TokenCache::builder(Arc::new(vgs_source(&server).build().unwrap()))
            .clock(clock.clone())
            .store(store.clone())
            .build()
    };
    let (a, b) = (build(), build());
    assert_eq!(a.key(), b.key());
    let from_a = a.get().await.unwrap();
    clock.advance(10 * SEC);
    let from_b = b.get().await.unwrap();
    assert_eq!(from_a.access_token(), from_b.access_token());
    assert_eq!(from_b.expires_at(), from_a.expires_at());
    assert_eq!(b.fetch_stats(), stats(0, 0));
}

/// A store as a second process sees it: the lock is held elsewhere, and the other
/// process's token shows up on the second read.
#[derive(Debug, Default)]
struct LockedElsewhere {
    reads: AtomicU32,
}

#[async_trait::async_trait]
impl TokenStore for LockedElsewhere {
    async fn get(&self, _: &CacheKey) -> Result<Option<StoredToken>, Report<VaultError>> {
        let read = self.reads.fetch_add(1, Ordering::SeqCst);
        Ok((read >= 1).then(|| StoredToken {
            token: AccessToken::new("from-other-process"),
            scheme: AuthScheme::Bearer,
            lifetime: 300 * SEC,
            remaining: 290 * SEC,
        }))
    }

    async fn put(&self, _: &CacheKey, _: StoredToken) -> Result<(), Report<VaultError>> {
        Ok(())
    }

    async fn remove_if(&self, _: &CacheKey, _: &AccessToken) -> Result<bool, Report<VaultError>> {
        Ok(false)
    }

    async fn try_lock(
        &self,
        _: &CacheKey,
        _: Duration,
    ) -> Result<Option<StoreLock>, Report<VaultError>> {
        Ok(None)
    }
}

#[tokio::test]
async fn while_another_process_holds_the_store_lock_its_token_is_used() {
    let server = MockServer::start().await;
    mount_tokens(&server, TokenSequence::new(300), 0).await;
    let store = Arc::new(LockedElsewhere::default());
    let cache = TokenCache::builder(Arc::new(vgs_source(&server).build().unwrap()))
        .store(store.clone())
        .build();
    let token = cache.get().await.unwrap();
    assert_eq!(token.access_token().expose_secret(), "from-other-process");
    assert_eq!(cache.fetch_stats(), stats(0, 0));
}

/// A store as a second process sees it when the lock holder dies: the lock is
/// refused twice (held elsewhere), then granted (expired); no token ever shows up.
#[derive(Debug, Default)]
struct HolderDies {
    reads: AtomicU32,
    lock_tries: AtomicU32,
}

#[async_trait::async_trait]
impl TokenStore for HolderDies {
    async fn get(&self, _: &CacheKey) -> Result<Option<StoredToken>, Report<VaultError>> {
        self.reads.fetch_add(1, Ordering::SeqCst);
        Ok(None)
    }

    async fn put(&self, _: &CacheKey, _: StoredToken) -> Result<(), Report<VaultError>> {
        Ok(())
    }

    async fn remove_if(&self, _: &CacheKey, _: &AccessToken) -> Result<bool, Report<VaultError>> {
        Ok(false)
    }

    async fn try_lock(
        &self,
        _: &CacheKey,
        _: Duration,
    ) -> Result<Option<StoreLock>, Report<VaultError>> {
        let tries = self.lock_tries.fetch_add(1, Ordering::SeqCst);
        Ok((tries >= 2).then(|| StoreLock::new("taken-over")))
    }
}

#[tokio::test]
async fn a_store_lock_whose_holder_died_is_taken_over_not_waited_out() {
    let server = MockServer::start().await;
    mount_tokens(&server, TokenSequence::new(300), 1).await;
    let store = Arc::new(HolderDies::default());
    let cache = TokenCache::builder(Arc::new(vgs_source(&server).build().unwrap()))
        .store(store.clone())
        .build();
    let token = cache.get().await.unwrap();
    assert_eq!(token.access_token().expose_secret(), "tok-1");
    assert_eq!(cache.fetch_stats(), stats(1, 0));
    // Lock refused, poll (read + lock) twice, granted, read once more, then fetch:
    // long before the 15 s fetch timeout.
    assert_eq!(store.lock_tries.load(Ordering::SeqCst), 3);
    assert_eq!(store.reads.load(Ordering::SeqCst), 4);
}
