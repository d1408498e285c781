//! Replicas share one token: independent caches, each with its own Redis connection
//! and 100 concurrent callers, fetch exactly once; the key expires at the refresh point.

use std::time::Duration;

use tokio::task::JoinSet;
use vault_auth::TokenStore;
use vault_auth_redis::RedisStoreOptions;

use crate::server::shared_redis;
use crate::{TokenSequence, inspect, replica, token_endpoint, unique_prefix};

/// `instances` replicas, 100 concurrent callers each, against one token endpoint
/// that must be called once.
async fn replicas_fetch_once(test: &str, instances: usize) {
    let Some(redis) = shared_redis(test) else {
        return;
    };
    let prefix = unique_prefix(test);
    // The token takes 150 ms to come: every replica is asking while it is in flight.
    let tokens = TokenSequence::new(300)
        .prefixed(&prefix)
        .delayed(Duration::from_millis(150));
    let server = token_endpoint(tokens, 1).await;
    let mut caches = Vec::new();
    for _ in 0..instances {
        let options = RedisStoreOptions::new().prefix(&prefix);
        caches.push(replica(&server, redis.url(), options).await);
    }
    let mut callers = JoinSet::new();
    for (cache, _) in &caches {
        for _ in 0..100 {
            let cache = cache.clone();
            callers.spawn(async move { cache.get().await });
        }
    }
    let mut served = 0;
    while let Some(result) = callers.join_next().await {
        let token = result.unwrap().unwrap();
        assert_eq!(token.access_token().expose_secret(), format!("{prefix}-1"));
        served += 1;
    }
    assert_eq!(served, instances * 100);
    let fetched: u64 = caches
        .iter()
        .map(|(cache, _)| cache.fetch_stats().total())
        .sum();
    assert_eq!(fetched, 1, "one fetch between {instances} replicas");
    for (_, store) in &caches {
        assert_eq!(store.stats().errors, 0, "{store:?}");
    }
    server.verify().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_with_100_callers_each_fetch_one_token() {
    replicas_fetch_once("two_replicas", 2).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn eight_replicas_with_100_callers_each_fetch_one_token() {
    replicas_fetch_once("eight_replicas", 8).await;
}

#[tokio::test]
async fn the_token_key_expires_at_the_refresh_point_and_replicas_agree_on_expiry() {
    let Some(redis) = shared_redis("key_expiry") else {
        return;
    };
    let prefix = unique_prefix("key_expiry");
    let server = token_endpoint(TokenSequence::new(300).prefixed(&prefix), 1).await;
    let options = RedisStoreOptions::new().prefix(&prefix);
    let (first, store) = replica(&server, redis.url(), options.clone()).await;
    let (second, _) = replica(&server, redis.url(), options).await;

    let token = first.get().await.unwrap();
    // A 300 s token: margin 30 s plus up to 15 s of jitter, so the key lives 255 s.
    let redis_key = store.redis_key(first.key());
    let pttl: i64 = redis::cmd("PTTL")
        .arg(&redis_key)
        .query_async(&mut inspect(redis.url()).await)
        .await
        .unwrap();
    assert!((250_000..=255_000).contains(&pttl), "PTTL {pttl}");

    // What every replica reads: the token's own expiry, ~300 s away.
    let stored = store.get(first.key()).await.unwrap().unwrap();
    assert!(stored.remaining > Duration::from_secs(295), "{stored:?}");
    assert!(stored.remaining <= Duration::from_secs(300), "{stored:?}");
    assert_eq!(stored.lifetime, Duration::from_secs(300));

    let from_second = second.get().await.unwrap();
    assert_eq!(from_second.access_token(), token.access_token());
    let skew = from_second
        .expires_at()
        .saturating_duration_since(token.expires_at())
        .max(
            token
                .expires_at()
                .saturating_duration_since(from_second.expires_at()),
        );
    assert!(skew < Duration::from_secs(2), "expiries differ by {skew:?}");
    assert_eq!(second.fetch_stats().total(), 0);
    server.verify().await;
}
