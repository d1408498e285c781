//! `TokenStore`: where the cache files tokens so that several caches (and, with a
//! shared store such as Redis, several processes) use one token. In-memory default.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use error_stack::Report;
use vault_core::{AccessToken, VaultError};

use crate::clock::{Clock, SystemClock};
use crate::source::{AuthScheme, CacheKey};

/// A token as a [`TokenStore`] keeps it.
///
/// Times are relative: `remaining` is how long the token is still valid as of the
/// moment it is written or read. A store shared across processes can thus keep it
/// with a wall-clock TTL (Redis `PX`, `PTTL`) while each process's cache measures
/// expiry on its own monotonic clock; the two never have to agree on an epoch.
#[derive(Clone)]
pub struct StoredToken {
    /// The token.
    pub token: AccessToken,
    /// How it is sent.
    pub scheme: AuthScheme,
    /// The lifetime it was issued with (the refresh margin is a share of it).
    pub lifetime: Duration,
    /// How long it is still valid.
    pub remaining: Duration,
}

impl fmt::Debug for StoredToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StoredToken")
            .field("token", &self.token)
            .field("scheme", &self.scheme)
            .field("lifetime", &self.lifetime)
            .field("remaining", &self.remaining)
            .finish()
    }
}

/// Proof of holding a store's fetch lock, given back to [`TokenStore::unlock`].
/// The id lets a shared store release only a lock it still owns.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct StoreLock(String);

impl StoreLock {
    /// A lock proof with this owner id.
    pub fn new(id: impl Into<String>) -> Self {
        StoreLock(id.into())
    }

    /// The owner id.
    pub fn id(&self) -> &str {
        &self.0
    }
}

/// Where a [`TokenCache`](crate::TokenCache) files its token, by [`CacheKey`].
///
/// The cache reads the store only when it has no usable token of its own (or is
/// refreshing), and writes it after every successful fetch, so a slow store never
/// slows the hit path. Errors from a store are otherwise ignored: the cache then
/// fetches from the token source itself, and logs each error only at `debug`, so a
/// store that can fail (a network store) reports its own trouble, once per outage
/// rather than once per call. A store must bound the time of its own calls.
///
/// A store shared across processes should implement [`try_lock`](Self::try_lock)
/// (e.g. Redis `SET key owner NX PX ttl`): the cache takes the lock before fetching
/// and reads the store once more when it gets it (the previous holder may just have
/// filed its token). While another process holds the lock, the cache re-reads the
/// store every 50 ms for the token that process is fetching and tries the lock again,
/// so it takes over as soon as the lock is released without a token or expires (a
/// holder that died); past its fetch timeout it fetches without the lock.
#[async_trait::async_trait]
pub trait TokenStore: Send + Sync + fmt::Debug {
    /// The token filed under `key`, if any is still valid.
    async fn get(&self, key: &CacheKey) -> Result<Option<StoredToken>, Report<VaultError>>;

    /// Files `token` under `key`, replacing what was there. The store may drop it
    /// once `token.remaining` has passed.
    async fn put(&self, key: &CacheKey, token: StoredToken) -> Result<(), Report<VaultError>>;

    /// Removes the token under `key` only if it is `token` (compare and delete), so
    /// that invalidating a rejected token never removes a newer one. Returns whether
    /// a token was removed.
    async fn remove_if(
        &self,
        key: &CacheKey,
        token: &AccessToken,
    ) -> Result<bool, Report<VaultError>>;

    /// Takes the fetch lock for `key` for at most `ttl`, or `None` when another
    /// holder has it. Default: always granted (a store used by one process needs
    /// none; the cache's own single flight covers it).
    async fn try_lock(
        &self,
        key: &CacheKey,
        ttl: Duration,
    ) -> Result<Option<StoreLock>, Report<VaultError>> {
        let _ = (key, ttl);
        Ok(Some(StoreLock::default()))
    }

    /// Releases a lock taken with [`try_lock`](Self::try_lock). Default: nothing.
    async fn unlock(&self, key: &CacheKey, lock: StoreLock) -> Result<(), Report<VaultError>> {
        let _ = (key, lock);
        Ok(())
    }
}

/// The default store: a map in this process, measured on an injectable clock.
/// Share one `Arc<InMemoryTokenStore>` between caches to share tokens between them.
pub struct InMemoryTokenStore {
    clock: Arc<dyn Clock>,
    entries: Mutex<HashMap<CacheKey, Entry>>,
}

struct Entry {
    token: AccessToken,
    scheme: AuthScheme,
    lifetime: Duration,
    expires_at: Instant,
}

impl InMemoryTokenStore {
    /// An empty store on the system clock.
    pub fn new() -> Self {
        InMemoryTokenStore::with_clock(Arc::new(SystemClock))
    }

    /// An empty store on `clock` (give it the cache's clock in tests).
    pub fn with_clock(clock: Arc<dyn Clock>) -> Self {
        InMemoryTokenStore {
            clock,
            entries: Mutex::new(HashMap::new()),
        }
    }

    fn entries(&self) -> std::sync::MutexGuard<'_, HashMap<CacheKey, Entry>> {
        self.entries
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl Default for InMemoryTokenStore {
    fn default() -> Self {
        InMemoryTokenStore::new()
    }
}

#[async_trait::async_trait]
impl TokenStore for InMemoryTokenStore {
    async fn get(&self, key: &CacheKey) -> Result<Option<StoredToken>, Report<VaultError>> {
        let now = self.clock.now();
        let mut entries = self.entries();
        match entries.get(key) {
            Some(entry) if entry.expires_at > now => Ok(Some(StoredToken {
                token: entry.token.clone(),
                scheme: entry.scheme,
                lifetime: entry.lifetime,
                remaining: entry.expires_at - now,
            })),
            Some(_) => {
                entries.remove(key);
                Ok(None)
            }
            None => Ok(None),
        }
    }

    async fn put(&self, key: &CacheKey, token: StoredToken) -> Result<(), Report<VaultError>> {
        let expires_at = self.clock.now() + token.remaining;
        self.entries().insert(
            key.clone(),
            Entry {
                token: token.token,
                scheme: token.scheme,
                lifetime: token.lifetime,
                expires_at,
            },
        );
        Ok(())
    }

    async fn remove_if(
        &self,
        key: &CacheKey,
        token: &AccessToken,
    ) -> Result<bool, Report<VaultError>> {
        let mut entries = self.entries();
        if entries.get(key).is_some_and(|entry| entry.token == *token) {
            entries.remove(key);
            return Ok(true);
        }
        Ok(false)
    }
}

impl fmt::Debug for InMemoryTokenStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("InMemoryTokenStore")
            .field("entries", &self.entries().len())
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;

    fn stored(token: &str, remaining: u64) -> StoredToken {
        StoredToken {
            token: AccessToken::new(token),
            scheme: AuthScheme::Bearer,
            lifetime: Duration::from_secs(300),
            remaining: Duration::from_secs(remaining),
        }
    }

    #[tokio::test]
    async fn entries_expire_on_the_clock_and_remove_is_compare_and_delete() {
        let clock = Arc::new(ManualClock::new());
        let store = InMemoryTokenStore::with_clock(clock.clone());
        let key = CacheKey::new("https://a/token", "c");
        store.put(&key, stored("t1", 100)).await.expect("put");
        clock.advance(Duration::from_secs(40));
        let got = store.get(&key).await.expect("get").expect("present");
        assert_eq!(got.remaining, Duration::from_secs(60));
        assert!(
            !store
                .remove_if(&key, &AccessToken::new("t0"))
                .await
                .expect("remove")
        );
        assert!(store.get(&key).await.expect("get").is_some());
        assert!(
            store
                .remove_if(&key, &AccessToken::new("t1"))
                .await
                .expect("remove")
        );
        assert!(store.get(&key).await.expect("get").is_none());
        store.put(&key, stored("t2", 10)).await.expect("put");
        clock.advance(Duration::from_secs(10));
        assert!(store.get(&key).await.expect("get").is_none());
    }

    #[test]
    fn debug_is_redacted() {
        let rendered = format!("{:?}", stored("tok-secret-9", 1));
        assert!(!rendered.contains("tok-secret-9"), "{rendered}");
        let store = InMemoryTokenStore::new();
        assert!(format!("{store:?}").contains("entries: 0"));
    }
}
