//! The fetch lock: a holder that dies delays the others only until its lock expires,
//! and releasing is compare-and-delete, so it never frees a lock another process took.

use std::sync::Arc;
use std::time::{Duration, Instant};

use error_stack::Report;
use tokio::sync::oneshot;
use vault_auth::{CacheKey, FetchedToken, TokenCache, TokenSource, TokenStore};
use vault_auth_redis::{RedisStoreOptions, RedisTokenStore};
use vault_core::VaultError;

use crate::server::shared_redis;
use crate::{TokenSequence, inspect, replica, token_endpoint, unique_prefix};

/// A replica that dies in the middle of its fetch: says so once the fetch has begun
/// (it holds the lock by then) and never answers.
#[derive(Debug)]
struct DiesWhileFetching {
    key: CacheKey,
    fetching: std::sync::Mutex<Option<oneshot::Sender<()>>>,
}

#[async_trait::async_trait]
impl TokenSource for DiesWhileFetching {
    async fn fetch(&self) -> Result<FetchedToken, Report<VaultError>> {
        if let Some(tx) = self.fetching.lock().unwrap().take() {
            let _ = tx.send(());
        }
        std::future::pending().await
    }

    fn cache_key(&self) -> CacheKey {
        self.key.clone()
    }
}

#[tokio::test]
async fn a_lock_holder_that_dies_delays_the_others_only_until_its_lock_expires() {
    let Some(redis) = shared_redis("dead_holder") else {
        return;
    };
    let prefix = unique_prefix("dead_holder");
    let server = token_endpoint(TokenSequence::new(300).prefixed(&prefix), 1).await;
    let (survivor, store) = replica(
        &server,
        redis.url(),
        RedisStoreOptions::new().prefix(&prefix),
    )
    .await;

    // The doomed replica runs on a runtime of its own, in a thread of its own, with a
    // 200 ms lock; dropping that runtime kills it mid-fetch, holding the lock.
    let (fetching_tx, fetching_rx) = oneshot::channel();
    let (die_tx, die_rx) = std::sync::mpsc::channel::<()>();
    let doomed = DiesWhileFetching {
        key: survivor.key().clone(),
        fetching: std::sync::Mutex::new(Some(fetching_tx)),
    };
    let (url, doomed_prefix) = (redis.url().to_owned(), prefix.clone());
    let doomed_thread = std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async move {
            let options = RedisStoreOptions::new()
                .prefix(doomed_prefix)
                .lock_ttl(Duration::from_millis(200));
            let store = RedisTokenStore::connect(&url, options).await.unwrap();
            let cache = TokenCache::builder(Arc::new(doomed)).store(store).build();
            tokio::spawn(async move { cache.get().await });
            // Keep the runtime running until told to die.
            let _ = tokio::task::spawn_blocking(move || die_rx.recv()).await;
        });
        drop(runtime);
    });
    fetching_rx.await.unwrap();
    die_tx.send(()).unwrap();
    doomed_thread.join().unwrap();

    // Its lock is still there, unreleased.
    let lock_key = store.redis_key(survivor.key()).replace(":token:", ":lock:");
    let pttl: i64 = redis::cmd("PTTL")
        .arg(&lock_key)
        .query_async(&mut inspect(redis.url()).await)
        .await
        .unwrap();
    assert!(
        pttl > 0,
        "the dead replica's lock should still be held (PTTL {pttl})"
    );

    let started = Instant::now();
    let token = survivor.get().await.unwrap();
    let waited = started.elapsed();
    assert_eq!(token.access_token().expose_secret(), format!("{prefix}-1"));
    assert_eq!(survivor.fetch_stats().total(), 1);
    // It waited for the lock to expire and took it over then, not at its own 15 s
    // fetch timeout.
    let lock_left = Duration::from_millis(u64::try_from(pttl).unwrap());
    assert!(
        waited + Duration::from_millis(20) >= lock_left,
        "waited {waited:?}"
    );
    assert!(waited < Duration::from_secs(5), "waited {waited:?}");
    let exists: i64 = redis::cmd("EXISTS")
        .arg(&lock_key)
        .query_async(&mut inspect(redis.url()).await)
        .await
        .unwrap();
    assert_eq!(exists, 0, "the survivor released its lock");
    server.verify().await;
}

#[tokio::test]
async fn unlocking_never_frees_a_lock_another_process_took_over() {
    let Some(redis) = shared_redis("lock_ownership") else {
        return;
    };
    let options = RedisStoreOptions::new().prefix(unique_prefix("lock_ownership"));
    let first = RedisTokenStore::connect(redis.url(), options.clone())
        .await
        .unwrap();
    let second = RedisTokenStore::connect(redis.url(), options)
        .await
        .unwrap();
    let key = CacheKey::new("https://auth.example/token", "ACowner");
    let lock_key = first.redis_key(&key).replace(":token:", ":lock:");
    let mut raw = inspect(redis.url()).await;

    let held = first
        .try_lock(&key, Duration::from_secs(30))
        .await
        .unwrap()
        .expect("free");
    assert!(
        second
            .try_lock(&key, Duration::from_secs(30))
            .await
            .unwrap()
            .is_none()
    );
    let pttl: i64 = redis::cmd("PTTL")
        .arg(&lock_key)
        .query_async(&mut raw)
        .await
        .unwrap();
    assert!(
        (1..=5_000).contains(&pttl),
        "granted for the store's lock TTL (5 s), not 30 s: {pttl}"
    );

    // The lock expires (deleted here, as expiry would) and the second process takes it.
    let _: i64 = redis::cmd("DEL")
        .arg(&lock_key)
        .query_async(&mut raw)
        .await
        .unwrap();
    let taken_over = second
        .try_lock(&key, Duration::from_secs(30))
        .await
        .unwrap()
        .expect("free again");
    assert_ne!(held, taken_over);

    // The first process, late, releases "its" lock: the second's stays.
    first.unlock(&key, held).await.unwrap();
    let owner: Option<String> = redis::cmd("GET")
        .arg(&lock_key)
        .query_async(&mut raw)
        .await
        .unwrap();
    assert_eq!(owner.as_deref(), Some(taken_over.id()));

    second.unlock(&key, taken_over).await.unwrap();
    let owner: Option<String> = redis::cmd("GET")
        .arg(&lock_key)
        .query_async(&mut raw)
        .await
        .unwrap();
    assert_eq!(owner, None);
}
