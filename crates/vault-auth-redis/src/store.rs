//! `RedisTokenStore`: vault-auth's `TokenStore` on one self-reconnecting Redis
//! connection, with a per-call timeout, a compare-and-delete lock and fail-fast fallback.

use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use error_stack::Report;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{ErrorKind, RedisError, Script};
use vault_auth::{CacheKey, StoreLock, StoredToken, TokenStore};
use vault_core::{AccessToken, Detail, VaultError};

use crate::codec::{self, TokenRecord};
use crate::health::{Health, RedisStoreStats};
use crate::keys::TokenKeys;
use crate::options::{RedisStoreOptions, hex};

/// Deletes `KEYS[1]` only while it still holds `ARGV[1]`: releases a lock only if we
/// still own it, removes a token only if it is the one we read.
const DELETE_IF_EQUAL: &str = r"
if redis.call('GET', KEYS[1]) == ARGV[1] then
    return redis.call('DEL', KEYS[1])
end
return 0
";

/// A [`TokenStore`] in Redis, shared by every process that connects to the same Redis
/// with the same [`prefix`](RedisStoreOptions::prefix) (and encryption key).
///
/// Give one `Arc<RedisTokenStore>` to every [`TokenCache`](vault_auth::TokenCache) of
/// the process: they then fetch one token per key between all processes.
///
/// ```no_run
/// # async fn demo(source: std::sync::Arc<dyn vault_auth::TokenSource>) -> vault_core::VaultResult<()> {
/// use vault_auth::TokenCache;
/// use vault_auth_redis::{RedisStoreOptions, RedisTokenStore};
///
/// let store = RedisTokenStore::connect("redis://127.0.0.1:6379/0", RedisStoreOptions::new()).await?;
/// let cache = TokenCache::builder(source).store(store).build();
/// let token = cache.get().await?;
/// # Ok(()) }
/// ```
///
/// Every call is bounded by [`command_timeout`](RedisStoreOptions::command_timeout).
/// When Redis fails (down, slow, refusing), the store logs one warning, counts it
/// ([`stats`](Self::stats)) and returns errors at once, without trying Redis, for
/// [`retry_interval`](RedisStoreOptions::retry_interval); the cache then works as a
/// process-local single-flight cache. The first call after the interval tries Redis
/// again, and when it answers, sharing resumes.
pub struct RedisTokenStore {
    connection: ConnectionManager,
    options: RedisStoreOptions,
    /// The URL without user, password or query, for messages.
    target: String,
    health: Health,
    delete_if_equal: Script,
}

impl RedisTokenStore {
    /// Connects to the Redis at `url` (`redis://[user:password@]host[:port][/db]`, or
    /// `rediss://…` for TLS with the system's root certificates) and checks it answers
    /// `PING`, all within [`connect_timeout`](RedisStoreOptions::connect_timeout)
    /// (default 2 s): it never waits longer.
    ///
    /// Fails with [`VaultError::InvalidConfig`] for a URL that is not a Redis URL,
    /// [`VaultError::Timeout`] when Redis did not answer in time, and
    /// [`VaultError::Transport`] when it could not be reached or refused the
    /// credentials. No error or log quotes the URL's password. For a process that
    /// must start while Redis is down, use [`connect_lazy`](Self::connect_lazy).
    pub async fn connect(
        url: &str,
        options: RedisStoreOptions,
    ) -> Result<Arc<Self>, Report<VaultError>> {
        let store = RedisTokenStore::connect_lazy(url, options)?;
        let mut connection = store.connection.clone();
        let ping_command = redis::cmd("PING");
        let ping = ping_command.query_async::<String>(&mut connection);
        match tokio::time::timeout(store.options.connect_timeout, ping).await {
            Ok(Ok(_)) => {
                tracing::debug!(target_url = %store.target, "Redis token store connected");
                Ok(store)
            }
            Ok(Err(error)) => {
                let kind = if error.is_timeout() {
                    VaultError::Timeout
                } else {
                    VaultError::Transport
                };
                Err(Report::new(kind).attach(Detail::new(format!(
                    "could not use the Redis token store at {}: {}",
                    store.target,
                    describe(&error)
                ))))
            }
            Err(_) => Err(Report::new(VaultError::Timeout).attach(Detail::new(format!(
                "the Redis token store at {} did not answer within {} ms",
                store.target,
                store.options.connect_timeout.as_millis()
            )))),
        }
    }

    /// Like [`connect`](Self::connect) but without connecting: the first store call
    /// does, and until Redis answers the store works as if Redis were down (the
    /// caches fetch on their own). Checks only the URL. Call it from within a Tokio
    /// runtime (the connection's reconnect task runs on it).
    pub fn connect_lazy(
        url: &str,
        options: RedisStoreOptions,
    ) -> Result<Arc<Self>, Report<VaultError>> {
        let target = redacted(url)?;
        if tokio::runtime::Handle::try_current().is_err() {
            return Err(Report::new(VaultError::InvalidConfig).attach(Detail::new(
                "the Redis token store must be created from within a Tokio runtime",
            )));
        }
        let client = match &options.tls_root {
            None => redis::Client::open(url),
            Some(_) if !target.starts_with("rediss://") => {
                return Err(
                    Report::new(VaultError::InvalidConfig).attach(Detail::new(format!(
                        "a TLS root certificate is configured but the token store URL {target} \
                     is not rediss://"
                    ))),
                );
            }
            Some(pem) => redis::Client::build_with_tls(
                url,
                redis::TlsCertificates {
                    client_tls: None,
                    root_cert: Some(pem.clone()),
                },
            ),
        }
        .map_err(|error| {
            Report::new(VaultError::InvalidConfig).attach(Detail::new(format!(
                "the token store URL {target} or its TLS root certificate is not usable: {}",
                describe(&error)
            )))
        })?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(options.connect_timeout))
            .set_response_timeout(Some(options.command_timeout))
            // The store decides when to try again (`retry_interval`): one attempt each.
            .set_number_of_retries(0);
        let connection =
            ConnectionManager::new_lazy_with_config(client, config).map_err(|error| {
                Report::new(VaultError::InvalidConfig).attach(Detail::new(format!(
                    "the token store URL {target} is not usable: {}",
                    describe(&error)
                )))
            })?;
        Ok(Arc::new(RedisTokenStore {
            connection,
            health: Health::new(options.clock.clone(), options.retry_interval),
            options,
            target,
            delete_if_equal: Script::new(DELETE_IF_EQUAL),
        }))
    }

    /// What the store has counted: outages (one warning each), failed calls, calls
    /// answered without Redis while it was down, unreadable values.
    pub fn stats(&self) -> RedisStoreStats {
        self.health.stats()
    }

    /// Whether Redis is taken to be answering (false from a failed call until a call
    /// succeeds again).
    pub fn is_available(&self) -> bool {
        self.health.is_up()
    }

    /// The Redis key the token for `key` is filed under (`<prefix>:token:<hash>`; the
    /// lock is `<prefix>:lock:<hash>`), for operators and tests.
    pub fn redis_key(&self, key: &CacheKey) -> String {
        TokenKeys::new(&self.options.prefix, key).token
    }

    fn keys(&self, key: &CacheKey) -> TokenKeys {
        TokenKeys::new(&self.options.prefix, key)
    }

    /// Runs one Redis exchange with the store's timeout and health bookkeeping.
    async fn run<T, F, Fut>(&self, op: &'static str, exchange: F) -> Result<T, Report<VaultError>>
    where
        F: Fn(ConnectionManager) -> Fut,
        Fut: Future<Output = Result<T, RedisError>>,
    {
        if !self.health.admit() {
            return Err(
                Report::new(VaultError::Transport).attach(Detail::new(format!(
                    "the Redis token store at {} is unavailable; not trying it again before \
                 the retry interval ({} ms) has passed",
                    self.target,
                    self.options.retry_interval.as_millis()
                ))),
            );
        }
        let attempt = async {
            match exchange(self.connection.clone()).await {
                // A connection that failed before the command was sent: the manager
                // starts a new one, which this second try waits for.
                Err(error) if error.is_connection_refusal() => {
                    exchange(self.connection.clone()).await
                }
                other => other,
            }
        };
        match tokio::time::timeout(self.options.command_timeout, attempt).await {
            Ok(Ok(value)) => {
                self.health.answered();
                Ok(value)
            }
            Ok(Err(error)) if is_unexpected_reply(&error) => {
                // Redis answered, so it is up; the reply is of no use.
                self.health.answered();
                self.health.unexpected_reply(op, describe(&error));
                Err(
                    Report::new(VaultError::UnexpectedResponse).attach(Detail::new(format!(
                        "the Redis token store at {} answered {op} with {}",
                        self.target,
                        describe(&error)
                    ))),
                )
            }
            Ok(Err(error)) => {
                self.health.unavailable(op, describe(&error));
                let kind = if error.is_timeout() {
                    VaultError::Timeout
                } else {
                    VaultError::Transport
                };
                Err(Report::new(kind).attach(Detail::new(format!(
                    "the Redis token store at {} failed on {op}: {}",
                    self.target,
                    describe(&error)
                ))))
            }
            Err(_) => {
                self.health.unavailable(op, "timeout");
                Err(Report::new(VaultError::Timeout).attach(Detail::new(format!(
                    "the Redis token store at {} did not answer {op} within {} ms",
                    self.target,
                    self.options.command_timeout.as_millis()
                ))))
            }
        }
    }

    /// The value under `redis_key` and its remaining time to live.
    async fn read(
        &self,
        op: &'static str,
        redis_key: &str,
    ) -> Result<Option<(Vec<u8>, i64)>, Report<VaultError>> {
        let (value, pttl): (Option<Vec<u8>>, i64) = self
            .run(op, |mut connection| async move {
                redis::pipe()
                    .atomic()
                    .get(redis_key)
                    .pttl(redis_key)
                    .query_async(&mut connection)
                    .await
            })
            .await?;
        Ok(value.map(|value| (value, pttl)))
    }

    /// Decodes a value read from `redis_key`; an unreadable one is counted, warned
    /// about once and read as a miss.
    fn decode(&self, value: &[u8], redis_key: &str) -> Option<TokenRecord> {
        match codec::decode(value, self.options.encryption_key.as_ref(), redis_key) {
            Ok(record) => {
                self.health.value_read();
                Some(record)
            }
            Err(unreadable) => {
                self.health.unreadable_value(unreadable.describe());
                None
            }
        }
    }
}

#[async_trait::async_trait]
impl TokenStore for RedisTokenStore {
    async fn get(&self, key: &CacheKey) -> Result<Option<StoredToken>, Report<VaultError>> {
        let keys = self.keys(key);
        let Some((value, pttl)) = self.read("get", &keys.token).await? else {
            tracing::trace!(redis_key = %keys.token, "token store miss");
            return Ok(None);
        };
        // -2: gone between the two commands; -1: no expiry, so not written by us.
        let Ok(pttl) = u64::try_from(pttl) else {
            if pttl == -1 {
                self.health
                    .unreadable_value("a token value without an expiry");
            }
            return Ok(None);
        };
        let Some(record) = self.decode(&value, &keys.token) else {
            return Ok(None);
        };
        let remaining = Duration::from_millis(pttl).saturating_add(record.grace);
        tracing::trace!(
            redis_key = %keys.token,
            remaining_ms = remaining.as_millis(),
            "token store hit"
        );
        Ok(Some(StoredToken {
            token: record.token,
            scheme: record.scheme,
            lifetime: record.lifetime,
            remaining,
        }))
    }

    /// Files the token with `PX` = its remaining time minus the earliest refresh
    /// point of the caches (margin plus largest jitter, see
    /// [`RedisStoreOptions::refresh_policy`]): when the key expires, every process
    /// agrees the token is due for refresh. A token with less time left than that is
    /// not stored.
    async fn put(&self, key: &CacheKey, token: StoredToken) -> Result<(), Report<VaultError>> {
        let keys = self.keys(key);
        let policy = &self.options.refresh_policy;
        let grace = policy.margin(token.lifetime) + policy.max_jitter(token.lifetime);
        let ttl = codec::millis(token.remaining.saturating_sub(grace));
        if ttl == 0 {
            tracing::trace!(redis_key = %keys.token, "token too close to its refresh to store");
            return Ok(());
        }
        let record = TokenRecord {
            token: token.token,
            scheme: token.scheme,
            lifetime: token.lifetime,
            grace,
        };
        let Some(value) = codec::encode(&record, self.options.encryption_key.as_ref(), &keys.token)
        else {
            tracing::debug!("token of an auth scheme the Redis store does not know; not stored");
            return Ok(());
        };
        let value = &value;
        let redis_key = keys.token.as_str();
        self.run("put", |mut connection| async move {
            redis::cmd("SET")
                .arg(redis_key)
                .arg(value)
                .arg("PX")
                .arg(ttl)
                .query_async::<()>(&mut connection)
                .await
        })
        .await?;
        tracing::trace!(redis_key = %keys.token, ttl_ms = ttl, "token stored");
        Ok(())
    }

    async fn remove_if(
        &self,
        key: &CacheKey,
        token: &AccessToken,
    ) -> Result<bool, Report<VaultError>> {
        let keys = self.keys(key);
        let Some((value, _)) = self.read("remove", &keys.token).await? else {
            return Ok(false);
        };
        if !self
            .decode(&value, &keys.token)
            .is_some_and(|record| record.token == *token)
        {
            return Ok(false);
        }
        let (value, redis_key, script) = (&value, keys.token.as_str(), &self.delete_if_equal);
        let removed: i64 = self
            .run("remove", |mut connection| async move {
                script
                    .key(redis_key)
                    .arg(value)
                    .invoke_async(&mut connection)
                    .await
            })
            .await?;
        tracing::trace!(redis_key = %keys.token, removed = removed == 1, "token removed");
        Ok(removed == 1)
    }

    /// `SET <prefix>:lock:<hash> <random owner> NX PX <ttl>`, the TTL being the shorter
    /// of `ttl` and [`RedisStoreOptions::lock_ttl`].
    async fn try_lock(
        &self,
        key: &CacheKey,
        ttl: Duration,
    ) -> Result<Option<StoreLock>, Report<VaultError>> {
        let keys = self.keys(key);
        let owner = hex(&rand::random::<[u8; 16]>());
        let ttl = codec::millis(ttl.min(self.options.lock_ttl)).max(1);
        let (redis_key, owner_ref) = (keys.lock.as_str(), owner.as_str());
        let taken: Option<String> = self
            .run("lock", |mut connection| async move {
                redis::cmd("SET")
                    .arg(redis_key)
                    .arg(owner_ref)
                    .arg("NX")
                    .arg("PX")
                    .arg(ttl)
                    .query_async(&mut connection)
                    .await
            })
            .await?;
        tracing::trace!(redis_key = %keys.lock, taken = taken.is_some(), ttl_ms = ttl, "token store lock");
        Ok(taken.map(|_| StoreLock::new(owner)))
    }

    /// Deletes the lock only if it still holds this owner (a Lua compare-and-delete,
    /// never a plain `DEL`): a lock that expired and was taken by another process
    /// stays. A lock not taken from Redis (an empty owner) is nothing to release.
    async fn unlock(&self, key: &CacheKey, lock: StoreLock) -> Result<(), Report<VaultError>> {
        if lock.id().is_empty() {
            return Ok(());
        }
        let keys = self.keys(key);
        let (redis_key, owner, script) = (keys.lock.as_str(), lock.id(), &self.delete_if_equal);
        let released: i64 = self
            .run("unlock", |mut connection| async move {
                script
                    .key(redis_key)
                    .arg(owner)
                    .invoke_async(&mut connection)
                    .await
            })
            .await?;
        tracing::trace!(redis_key = %keys.lock, released = released == 1, "token store unlock");
        Ok(())
    }
}

impl fmt::Debug for RedisTokenStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisTokenStore")
            .field("target", &self.target)
            .field("options", &self.options)
            .field("available", &self.is_available())
            .field("stats", &self.stats())
            .finish_non_exhaustive()
    }
}

/// A reply that shows Redis is up but not holding what we expect under our key.
fn is_unexpected_reply(error: &RedisError) -> bool {
    matches!(
        error.kind(),
        ErrorKind::UnexpectedReturnType | ErrorKind::Parse
    ) || error.clone().into_server_errors().is_some_and(|errors| {
        errors
            .iter()
            .any(|(_, server_error)| server_error.code() == "WRONGTYPE")
    })
}

/// What went wrong, for messages and logs: never the error's text, which may quote
/// a command's arguments.
fn describe(error: &RedisError) -> &str {
    if error.is_timeout() {
        "timeout"
    } else if is_unexpected_reply(error) {
        "a reply of an unexpected type"
    } else if error.is_connection_refusal() {
        "connection refused"
    } else if error.is_connection_dropped() {
        "connection dropped"
    } else if error.kind() == ErrorKind::AuthenticationFailed {
        "wrong or missing credentials"
    } else {
        error.category()
    }
}

/// The URL without user, password, query or fragment: `redis://host:6379/0`.
fn redacted(url: &str) -> Result<String, Report<VaultError>> {
    let invalid = || {
        Report::new(VaultError::InvalidConfig).attach(Detail::new(
            "the token store URL is not a valid URL: expected redis://[user:password@]host[:port][/db] \
             or rediss://… for TLS",
        ))
    };
    let parsed = url::Url::parse(url).map_err(|_| invalid())?;
    let scheme = parsed.scheme();
    if !matches!(scheme, "redis" | "rediss") {
        return Err(
            Report::new(VaultError::InvalidConfig).attach(Detail::new(format!(
                "the token store URL has scheme `{scheme}`: expected redis:// or rediss:// (TLS)"
            ))),
        );
    }
    let host = parsed
        .host_str()
        .filter(|h| !h.is_empty())
        .ok_or_else(invalid)?;
    let port = parsed.port().map(|p| format!(":{p}")).unwrap_or_default();
    Ok(format!("{scheme}://{host}{port}{}", parsed.path()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_shown_without_credentials() {
        assert_eq!(
            redacted("redis://:hunter2@cache.internal:6380/2?protocol=resp3").expect("valid"),
            "redis://cache.internal:6380/2"
        );
        assert_eq!(
            redacted("rediss://user:pw-secret@10.0.0.5").expect("valid"),
            "rediss://10.0.0.5"
        );
        for bad in [
            "http://cache:6379",
            "cache:6379",
            "redis://",
            "not a url :pw@",
        ] {
            let err = redacted(bad).expect_err(bad);
            assert_eq!(*err.current_context(), VaultError::InvalidConfig);
        }
        let err = redacted("memcached://u:pw-secret@h").expect_err("scheme");
        assert!(!format!("{err:?}").contains("pw-secret"));
    }
}
