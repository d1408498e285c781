//! vault-auth-redis: a Redis [`TokenStore`](vault_auth::TokenStore) so that N replicas
//! of an orchestrator fetch one access token between them instead of N.
//!
//! ```no_run
//! # async fn demo(source: std::sync::Arc<dyn vault_auth::TokenSource>) -> vault_core::VaultResult<()> {
//! use vault_auth::TokenCache;
//! use vault_auth_redis::{EncryptionKey, RedisStoreOptions, RedisTokenStore};
//!
//! let options = RedisStoreOptions::new()
//!     .prefix("payments-live")
//!     .encryption_key(EncryptionKey::from_base64(&std::env::var("TOKEN_STORE_KEY").unwrap_or_default())?);
//! // Bounded by the connect timeout (2 s); `connect_lazy` starts even when Redis is down.
//! let store = RedisTokenStore::connect("rediss://:password@cache.internal:6380/0", options).await?;
//! let cache = TokenCache::builder(source).store(store.clone()).build();
//! let token = cache.get().await?; // one fetch for all replicas
//! # Ok(()) }
//! ```
//!
//! # How the replicas share a token
//!
//! A [`TokenCache`](vault_auth::TokenCache) reads the store only when it has no usable
//! token (or is refreshing it). On a miss it takes the token's lock, `SET
//! <prefix>:lock:<hash> <random owner> NX PX <ttl>`, reads the store once more (the
//! previous holder may just have filed its token), fetches, files the token and
//! releases the lock with a Lua compare-and-delete (never a plain `DEL`, so a lock
//! that expired and was taken by another process stays). The other processes poll
//! the store every 50 ms for that token and try the lock again: they take over as soon
//! as the lock is released without a token or expires because its holder died (at
//! most [`RedisStoreOptions::lock_ttl`], default 5 s), and past the cache's fetch
//! timeout they fetch on their own rather than hang. Polling was chosen over pub/sub:
//! a wait lasts one token fetch, a few reads per process per token lifetime, and it
//! needs no second connection, no subscription that can be missed, and no more code
//! paths that can fail.
//!
//! # Keys and expiry
//!
//! Keys are `<prefix>:token:<hash>` and `<prefix>:lock:<hash>`, the hash being 128
//! bits of SHA-256 over the token endpoint, client id, user and scopes: no credential
//! or identifier appears in a key. A token is stored with `SET … PX` equal to its
//! remaining lifetime minus the earliest point at which a cache would refresh it
//! (margin plus largest jitter of [`RedisStoreOptions::refresh_policy`]); the value
//! holds the token, its scheme, its lifetime and that offset. A reader takes the
//! token's expiry as the key's `PTTL` plus the offset, measured on Redis's one clock,
//! so replicas whose wall clocks disagree still agree on when the token must be
//! refreshed: when its key is gone.
//!
//! # At-rest protection
//!
//! Off by default: the stored value then holds the token in clear, and anyone who
//! can read the Redis (or its backups and replicas) can use it until it expires,
//! which is no more than what the token lets that reader do anyway for its lifetime,
//! and Redis deployments usually sit in the same trust zone as the orchestrator.
//! With [`RedisStoreOptions::encryption_key`], values are sealed with
//! XChaCha20-Poly1305: `vl1s | key id (4) | random nonce (24) | ciphertext + tag`,
//! the additional data binding the value to its key id and Redis key. The cost is a
//! 32-byte key to distribute to every replica and rotate like any secret (a rotation
//! costs one fetch: values under the old key read as misses). A value sealed with
//! another key, a clear value when a key is set (a value someone injected), or
//! anything else that does not decode reads as a miss, never as a garbled token.
//!
//! # When Redis is in trouble
//!
//! Redis trouble never stops payments. Each call is bounded by
//! [`RedisStoreOptions::command_timeout`] (250 ms). When a call times out, cannot
//! connect or is refused, the store logs one warning (not one per call), counts the
//! outage in [`RedisTokenStore::stats`], and for
//! [`RedisStoreOptions::retry_interval`] (5 s) answers every call at once with an
//! error, without trying Redis: the caches then work as process-local single-flight
//! caches (vault-auth logs store errors at `debug` only). The first call after the
//! interval tries again; when Redis answers, an `info` line says so and sharing
//! resumes. A reply of the wrong type under a token key counts as an error and is
//! warned about once, without taking Redis for down: the next token written replaces
//! it.
//!
//! # Connections and TLS
//!
//! One [`redis::aio::ConnectionManager`] per store: a single multiplexed connection
//! that pipelines concurrent calls and reconnects by itself. A pool (deadpool-redis,
//! bb8) buys nothing here: the store sends a handful of short commands per token
//! lifetime, never a blocking command, and a pool is one more dependency with its own
//! failure modes. `rediss://` is supported, over rustls (no OpenSSL, and no second
//! TLS stack: reqwest already builds rustls), trusting the system's root certificates
//! or, with [`RedisStoreOptions::tls_root_certificate`], a private CA; the tests run it
//! against a TLS-only `redis-server`. Client certificates (mTLS) are not supported.

#![deny(missing_docs)]

mod codec;
mod health;
mod keys;
mod options;
mod store;

pub use health::RedisStoreStats;
pub use options::{
    DEFAULT_COMMAND_TIMEOUT, DEFAULT_CONNECT_TIMEOUT, DEFAULT_LOCK_TTL, DEFAULT_PREFIX,
    DEFAULT_RETRY_INTERVAL, EncryptionKey, RedisStoreOptions,
};
pub use store::RedisTokenStore;
