//! At-rest protection and unusable values: sealed tokens round-trip between replicas
//! and hide the token; a wrong key, a clear value or junk reads as a miss, not garbage.

use vault_auth::TokenStore;
use vault_auth_redis::{EncryptionKey, RedisStoreOptions, RedisTokenStore};

use crate::server::shared_redis;
use crate::{LogCapture, TokenSequence, inspect, replica, token_endpoint, unique_prefix};

#[tokio::test]
async fn sealed_tokens_round_trip_between_replicas_and_hide_the_token() {
    let Some(redis) = shared_redis("sealed_round_trip") else {
        return;
    };
    let prefix = unique_prefix("sealed_round_trip");
    let server = token_endpoint(TokenSequence::new(300).prefixed(&prefix), 1).await;
    let key = EncryptionKey::generate();
    let options = RedisStoreOptions::new()
        .prefix(&prefix)
        .encryption_key(key.clone());
    let (first, store) = replica(&server, redis.url(), options.clone()).await;
    let (second, _) = replica(&server, redis.url(), options).await;

    let token = first.get().await.unwrap();
    let from_second = second.get().await.unwrap();
    assert_eq!(from_second.access_token(), token.access_token());
    assert_eq!(second.fetch_stats().total(), 0);

    let value: Vec<u8> = redis::cmd("GET")
        .arg(store.redis_key(first.key()))
        .query_async(&mut inspect(redis.url()).await)
        .await
        .unwrap();
    assert!(value.starts_with(b"vl1s"), "sealed");
    let secret = token.access_token().expose_secret().as_bytes();
    assert!(!value.windows(secret.len()).any(|w| w == secret));
    server.verify().await;
}

#[tokio::test]
async fn a_wrong_key_or_no_key_reads_as_a_miss_and_the_replica_fetches_its_own() {
    let Some(redis) = shared_redis("wrong_key") else {
        return;
    };
    let (logs, _guard) = LogCapture::install();
    let prefix = unique_prefix("wrong_key");
    let server = token_endpoint(TokenSequence::new(300).prefixed(&prefix), 2).await;
    let sealing = RedisStoreOptions::new()
        .prefix(&prefix)
        .encryption_key(EncryptionKey::generate());
    let (first, _) = replica(&server, redis.url(), sealing).await;
    first.get().await.unwrap();

    // Another key, and no key at all: both read the sealed value as a miss.
    let other_key = RedisTokenStore::connect(
        redis.url(),
        RedisStoreOptions::new()
            .prefix(&prefix)
            .encryption_key(EncryptionKey::generate()),
    )
    .await
    .unwrap();
    assert!(other_key.get(first.key()).await.unwrap().is_none());
    assert_eq!(other_key.stats().unreadable, 1);
    let no_key = RedisTokenStore::connect(redis.url(), RedisStoreOptions::new().prefix(&prefix))
        .await
        .unwrap();
    assert!(no_key.get(first.key()).await.unwrap().is_none());
    assert!(
        no_key.is_available(),
        "an unreadable value is not an outage"
    );

    // A replica with the wrong key fetches its own token (fetch 2), with one warning.
    let (mismatched, mismatched_store) = replica(
        &server,
        redis.url(),
        RedisStoreOptions::new()
            .prefix(&prefix)
            .encryption_key(EncryptionKey::generate()),
    )
    .await;
    for _ in 0..3 {
        let token = mismatched.get().await.unwrap();
        assert_eq!(token.access_token().expose_secret(), format!("{prefix}-2"));
    }
    assert_eq!(mismatched.fetch_stats().total(), 1);
    assert_eq!(
        mismatched_store.stats().unreadable,
        2,
        "read, and read again under the lock"
    );
    let warnings: Vec<String> = logs
        .warnings()
        .into_iter()
        .filter(|line| line.contains("sealed with another encryption key"))
        .collect();
    assert_eq!(warnings.len(), 2, "one per store: {warnings:#?}");
    server.verify().await;
}

#[tokio::test]
async fn clear_values_injected_under_a_sealed_store_and_junk_read_as_misses() {
    let Some(redis) = shared_redis("junk_values") else {
        return;
    };
    let prefix = unique_prefix("junk_values");
    let server = token_endpoint(TokenSequence::new(300).prefixed(&prefix), 1).await;
    let key = EncryptionKey::generate();
    let (cache, store) = replica(
        &server,
        redis.url(),
        RedisStoreOptions::new()
            .prefix(&prefix)
            .encryption_key(key.clone()),
    )
    .await;
    let redis_key = store.redis_key(cache.key());
    let mut raw = inspect(redis.url()).await;
    let clear = RedisTokenStore::connect(redis.url(), RedisStoreOptions::new().prefix(&prefix))
        .await
        .unwrap();

    // Someone with write access plants a token in clear: a sealed store ignores it.
    clear
        .put(
            cache.key(),
            vault_auth::StoredToken {
                token: vault_core::AccessToken::new("planted-token"),
                scheme: vault_auth::AuthScheme::Bearer,
                lifetime: std::time::Duration::from_secs(300),
                remaining: std::time::Duration::from_secs(300),
            },
        )
        .await
        .unwrap();
    assert!(store.get(cache.key()).await.unwrap().is_none());

    // Junk bytes, then a list under the key: misses, and Redis is not taken for down.
    let _: () = redis::cmd("SET")
        .arg(&redis_key)
        .arg(b"\x00\xffjunk".as_slice())
        .arg("PX")
        .arg(60_000)
        .query_async(&mut raw)
        .await
        .unwrap();
    assert!(store.get(cache.key()).await.unwrap().is_none());
    let _: i64 = redis::cmd("DEL")
        .arg(&redis_key)
        .query_async(&mut raw)
        .await
        .unwrap();
    let _: i64 = redis::cmd("RPUSH")
        .arg(&redis_key)
        .arg("not a token")
        .query_async(&mut raw)
        .await
        .unwrap();
    assert!(store.get(cache.key()).await.is_err());
    assert!(store.is_available());

    // The cache fetches, and its token replaces the list.
    let token = cache.get().await.unwrap();
    assert_eq!(token.access_token().expose_secret(), format!("{prefix}-1"));
    let stored = store.get(cache.key()).await.unwrap().unwrap();
    assert_eq!(stored.token, *token.access_token());
    let stats = store.stats();
    assert_eq!(stats.outages, 0, "{stats:?}");
    assert!(stats.unreadable >= 2 && stats.errors >= 1, "{stats:?}");
    server.verify().await;
}
