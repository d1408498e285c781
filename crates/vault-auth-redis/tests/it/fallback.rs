//! Redis trouble never stops payments: killed mid-test, frozen, unreachable or not
//! Redis at all, calls keep succeeding locally with one warning, and sharing resumes.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::task::JoinSet;
use vault_auth::{ManualClock, OAuth2Source, TokenCache, TokenStore};
use vault_auth_redis::{RedisStoreOptions, RedisTokenStore};
use vault_core::{ClientId, ClientSecret, ReportExt, VaultError};
use wiremock::MockServer;

use crate::server::{free_port, own_redis};
use crate::{
    CLIENT_ID, CLIENT_SECRET, LogCapture, TokenSequence, replica, token_endpoint, unique_prefix,
};

const SEC: Duration = Duration::from_secs(1);

/// A replica whose cache and store run on `clock`.
async fn replica_on(
    server: &MockServer,
    redis_url: &str,
    prefix: &str,
    clock: &Arc<ManualClock>,
) -> (TokenCache, Arc<RedisTokenStore>) {
    let options = RedisStoreOptions::new().prefix(prefix).clock(clock.clone());
    let store = RedisTokenStore::connect(redis_url, options).await.unwrap();
    let source = OAuth2Source::client_credentials(
        format!("{}/token", server.uri()),
        ClientId::new(CLIENT_ID),
        ClientSecret::new(CLIENT_SECRET),
    )
    .build()
    .unwrap();
    let cache = TokenCache::builder(Arc::new(source))
        .clock(clock.clone())
        .store(store.clone())
        .build();
    (cache, store)
}

/// 100 concurrent callers, all served.
async fn hundred_callers(cache: &TokenCache) -> String {
    let mut callers = JoinSet::new();
    for _ in 0..100 {
        let cache = cache.clone();
        callers.spawn(async move { cache.get().await });
    }
    let mut tokens = Vec::new();
    while let Some(result) = callers.join_next().await {
        tokens.push(
            result
                .unwrap()
                .unwrap()
                .access_token()
                .expose_secret()
                .to_owned(),
        );
    }
    tokens.dedup();
    assert_eq!(tokens.len(), 1, "one token for all: {tokens:?}");
    tokens.remove(0)
}

#[tokio::test]
async fn redis_killed_mid_test_falls_back_locally_with_one_warning_then_sharing_resumes() {
    let Some(mut redis) = own_redis("redis_killed", &[]) else {
        return;
    };
    let (logs, _guard) = LogCapture::install();
    let prefix = unique_prefix("redis_killed");
    let server = token_endpoint(TokenSequence::new(300).prefixed(&prefix), 4).await;
    let clock = Arc::new(ManualClock::new());
    let (cache, store) = replica_on(&server, &redis.url(), &prefix, &clock).await;
    assert_eq!(hundred_callers(&cache).await, format!("{prefix}-1"));

    redis.kill();
    // Each round: the token has expired, 100 callers need a new one, Redis is gone.
    for round in 2..=3 {
        clock.advance(301 * SEC);
        assert_eq!(hundred_callers(&cache).await, format!("{prefix}-{round}"));
    }
    assert!(!store.is_available());
    let stats = store.stats();
    assert_eq!(stats.outages, 1, "{stats:?}");
    assert!(stats.errors >= 2 && stats.skipped >= 1, "{stats:?}");
    let warnings = logs.warnings();
    assert_eq!(warnings.len(), 1, "one warning per outage: {warnings:#?}");
    assert!(
        warnings[0].contains("Redis token store unavailable"),
        "{warnings:#?}"
    );

    // Redis is back on the same port: the next fetch is shared again.
    redis.restart();
    clock.advance(301 * SEC);
    assert_eq!(hundred_callers(&cache).await, format!("{prefix}-4"));
    assert!(store.is_available());
    assert!(logs.text().contains("Redis token store answers again"));
    let (other, _) = replica_on(&server, &redis.url(), &prefix, &clock).await;
    assert_eq!(hundred_callers(&other).await, format!("{prefix}-4"));
    assert_eq!(other.fetch_stats().total(), 0, "read from Redis");
    assert_eq!(logs.warnings().len(), 1);
    server.verify().await;
}

#[tokio::test]
async fn a_frozen_redis_costs_one_command_timeout_and_then_nothing() {
    let Some(redis) = own_redis("redis_frozen", &[]) else {
        return;
    };
    let prefix = unique_prefix("redis_frozen");
    let server = token_endpoint(TokenSequence::new(300).prefixed(&prefix), 1).await;
    let options = RedisStoreOptions::new()
        .prefix(&prefix)
        .command_timeout(Duration::from_millis(100));
    let (cache, store) = replica(&server, &redis.url(), options).await;

    redis.signal("STOP");
    let started = Instant::now();
    assert_eq!(hundred_callers(&cache).await, format!("{prefix}-1"));
    let took = started.elapsed();
    redis.signal("CONT");
    // One read timed out (100 ms); lock, write and unlock were answered at once.
    assert!(took < Duration::from_secs(2), "took {took:?}");
    let stats = store.stats();
    assert_eq!(stats.outages, 1, "{stats:?}");
    assert!(stats.skipped >= 2, "{stats:?}");
    server.verify().await;
}

#[tokio::test]
async fn connect_is_bounded_and_says_what_failed_without_the_password() {
    // Nothing listens: refused, at once.
    let url = format!("redis://:pw-s3cret@127.0.0.1:{}/0", free_port());
    let err = RedisTokenStore::connect(&url, RedisStoreOptions::new())
        .await
        .unwrap_err();
    assert_eq!(err.kind(), VaultError::Transport, "{err:?}");
    let rendered = format!("{err:?} {}", err.summary());
    assert!(rendered.contains("127.0.0.1"), "{rendered}");
    assert!(!rendered.contains("pw-s3cret"), "{rendered}");

    // Something accepts connections but never answers: a timeout, not a hang.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!(
        "redis://127.0.0.1:{}/0",
        silent.local_addr().unwrap().port()
    );
    let started = Instant::now();
    let err = RedisTokenStore::connect(
        &url,
        RedisStoreOptions::new().connect_timeout(Duration::from_millis(300)),
    )
    .await
    .unwrap_err();
    assert_eq!(err.kind(), VaultError::Timeout, "{err:?}");
    assert!(started.elapsed() < Duration::from_secs(3));

    // Not a Redis URL at all.
    for bad in ["http://127.0.0.1:6379", "127.0.0.1:6379", "redis://"] {
        let err = RedisTokenStore::connect(bad, RedisStoreOptions::new())
            .await
            .unwrap_err();
        assert_eq!(err.kind(), VaultError::InvalidConfig, "{bad}: {err:?}");
    }
}

#[test]
fn a_lazy_store_needs_a_runtime_and_says_so() {
    let err = RedisTokenStore::connect_lazy("redis://127.0.0.1:6379/0", RedisStoreOptions::new())
        .unwrap_err();
    assert_eq!(err.kind(), VaultError::InvalidConfig);
    assert!(err.summary().contains("Tokio runtime"), "{}", err.summary());
}

#[tokio::test]
async fn a_lazy_store_starts_while_redis_is_down_and_the_cache_still_serves() {
    let prefix = unique_prefix("lazy_down");
    let server = token_endpoint(TokenSequence::new(300).prefixed(&prefix), 1).await;
    let url = format!("redis://127.0.0.1:{}/0", free_port());
    let store =
        RedisTokenStore::connect_lazy(&url, RedisStoreOptions::new().prefix(&prefix)).unwrap();
    let source = OAuth2Source::client_credentials(
        format!("{}/token", server.uri()),
        ClientId::new(CLIENT_ID),
        ClientSecret::new(CLIENT_SECRET),
    )
    .build()
    .unwrap();
    let cache = TokenCache::builder(Arc::new(source))
        .store(store.clone() as Arc<dyn TokenStore>)
        .build();
    assert_eq!(hundred_callers(&cache).await, format!("{prefix}-1"));
    assert_eq!(store.stats().outages, 1);
    server.verify().await;
}
