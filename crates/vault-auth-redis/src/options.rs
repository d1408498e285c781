//! `RedisStoreOptions` (prefix, timeouts, lock TTL, refresh policy, clock) and the
//! optional `EncryptionKey` that seals stored tokens at rest.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use chacha20poly1305::{KeyInit, XChaCha20Poly1305};
use error_stack::Report;
use sha2::{Digest, Sha256};
use vault_auth::{Clock, RefreshPolicy, SystemClock};
use vault_core::{Detail, VaultError};

/// Default key prefix: keys are `vaultlink:token:<hash>` and `vaultlink:lock:<hash>`.
pub const DEFAULT_PREFIX: &str = "vaultlink";
/// Default bound on one Redis call, connection wait included.
pub const DEFAULT_COMMAND_TIMEOUT: Duration = Duration::from_millis(250);
/// Default bound on [`RedisTokenStore::connect`](crate::RedisTokenStore::connect).
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// Default longest life of a fetch lock.
pub const DEFAULT_LOCK_TTL: Duration = Duration::from_secs(5);
/// Default wait before trying Redis again after it failed.
pub const DEFAULT_RETRY_INTERVAL: Duration = Duration::from_secs(5);

/// How a [`RedisTokenStore`](crate::RedisTokenStore) names, times and protects what
/// it stores. Every setting has a default, stated on its method:
///
/// | setting | default |
/// |---|---|
/// | [`prefix`](Self::prefix) | `vaultlink` |
/// | [`command_timeout`](Self::command_timeout) | 250 ms |
/// | [`connect_timeout`](Self::connect_timeout) | 2 s |
/// | [`lock_ttl`](Self::lock_ttl) | 5 s |
/// | [`retry_interval`](Self::retry_interval) | 5 s |
/// | [`refresh_policy`](Self::refresh_policy) | [`RefreshPolicy::default`] |
/// | [`encryption_key`](Self::encryption_key) | none: tokens are stored in clear |
/// | [`tls_root_certificate`](Self::tls_root_certificate) | none: `rediss://` trusts the system's roots |
/// | [`clock`](Self::clock) | [`SystemClock`] |
#[derive(Clone)]
pub struct RedisStoreOptions {
    pub(crate) prefix: String,
    pub(crate) command_timeout: Duration,
    pub(crate) connect_timeout: Duration,
    pub(crate) lock_ttl: Duration,
    pub(crate) retry_interval: Duration,
    pub(crate) refresh_policy: RefreshPolicy,
    pub(crate) encryption_key: Option<EncryptionKey>,
    pub(crate) tls_root: Option<Vec<u8>>,
    pub(crate) clock: Arc<dyn Clock>,
}

impl RedisStoreOptions {
    /// The defaults listed above.
    pub fn new() -> Self {
        RedisStoreOptions {
            prefix: DEFAULT_PREFIX.to_owned(),
            command_timeout: DEFAULT_COMMAND_TIMEOUT,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            lock_ttl: DEFAULT_LOCK_TTL,
            retry_interval: DEFAULT_RETRY_INTERVAL,
            refresh_policy: RefreshPolicy::default(),
            encryption_key: None,
            tls_root: None,
            clock: Arc::new(SystemClock),
        }
    }

    /// The namespace of every key (default `vaultlink`): give deployments that share
    /// one Redis but must not share tokens (sandbox and live) different prefixes.
    pub fn prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// The longest one store call may take, waiting for a connection included
    /// (default 250 ms). A call that runs past it counts as Redis trouble: the cache
    /// carries on without the store.
    pub fn command_timeout(mut self, timeout: Duration) -> Self {
        self.command_timeout = timeout;
        self
    }

    /// The longest [`connect`](crate::RedisTokenStore::connect) waits for the first
    /// connection and `PING` (default 2 s); also the bound on each reconnection attempt.
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// The longest a fetch lock lives (default 5 s): a process that dies holding it
    /// delays the others by at most this. The cache asks for a lock as long as its
    /// fetch timeout; the store grants the shorter of the two. A fetch slower than
    /// this lets one more process fetch, which costs a token, never a payment.
    pub fn lock_ttl(mut self, ttl: Duration) -> Self {
        self.lock_ttl = ttl;
        self
    }

    /// After Redis failed, how long the store answers at once without trying Redis
    /// (default 5 s); then one call tries again, and its success resumes sharing.
    pub fn retry_interval(mut self, interval: Duration) -> Self {
        self.retry_interval = interval;
        self
    }

    /// The refresh policy of the caches that use this store (default
    /// [`RefreshPolicy::default`], as the caches'). A token's key expires when the
    /// earliest of those caches would refresh it: margin plus the largest jitter
    /// before the token's expiry.
    pub fn refresh_policy(mut self, policy: RefreshPolicy) -> Self {
        self.refresh_policy = policy;
        self
    }

    /// Seals stored tokens with this key (XChaCha20-Poly1305, a fresh random nonce per
    /// write). Default: none, tokens are stored in clear, readable by anyone who can
    /// read the Redis (see the crate docs for the trade-off). Every process sharing
    /// the tokens needs the same key; a value sealed with another key, or not sealed
    /// at all, reads as a miss.
    pub fn encryption_key(mut self, key: EncryptionKey) -> Self {
        self.encryption_key = Some(key);
        self
    }

    /// For `rediss://`: trust this CA certificate (PEM) instead of the system's root
    /// certificates, for a Redis whose certificate a private CA issued. Default: none,
    /// the system's roots. Only for `rediss://` URLs.
    pub fn tls_root_certificate(mut self, pem: impl Into<Vec<u8>>) -> Self {
        self.tls_root = Some(pem.into());
        self
    }

    /// The monotonic clock that times [`retry_interval`](Self::retry_interval)
    /// (tests pass a [`ManualClock`](vault_auth::ManualClock)).
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }
}

impl Default for RedisStoreOptions {
    fn default() -> Self {
        RedisStoreOptions::new()
    }
}

impl fmt::Debug for RedisStoreOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisStoreOptions")
            .field("prefix", &self.prefix)
            .field("command_timeout", &self.command_timeout)
            .field("connect_timeout", &self.connect_timeout)
            .field("lock_ttl", &self.lock_ttl)
            .field("retry_interval", &self.retry_interval)
            .field("refresh_policy", &self.refresh_policy)
            .field("encryption_key", &self.encryption_key)
            .field("tls_root_certificate", &self.tls_root.is_some())
            .finish_non_exhaustive()
    }
}

/// A 256-bit key that seals stored tokens (XChaCha20-Poly1305). Its `Debug` shows
/// only its id: the first 4 bytes of a SHA-256 of the key, also written into each
/// sealed value so that a reader can tell "sealed with another key" apart.
///
/// ```
/// use vault_auth_redis::EncryptionKey;
///
/// // e.g. from `openssl rand -base64 32`, kept with the other secrets
/// let key = EncryptionKey::from_base64("q83vEjRWeJCrze8SNFZ4kKvN7xI0VniQq83vEjRWeJA=")?;
/// assert!(!format!("{key:?}").contains("q83v"));
/// # Ok::<_, vault_core::Report<vault_core::VaultError>>(())
/// ```
#[derive(Clone)]
pub struct EncryptionKey {
    pub(crate) cipher: Arc<XChaCha20Poly1305>,
    pub(crate) id: [u8; 4],
}

impl EncryptionKey {
    /// The length of a key in bytes.
    pub const LEN: usize = 32;

    /// A key from its 32 bytes.
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        let digest = Sha256::new()
            .chain_update(b"vaultlink-token-store-key-id\0")
            .chain_update(bytes)
            .finalize();
        let mut id = [0u8; 4];
        id.copy_from_slice(&digest[..4]);
        EncryptionKey {
            cipher: Arc::new(XChaCha20Poly1305::new(&bytes.into())),
            id,
        }
    }

    /// A key from standard base64 of 32 bytes (what `openssl rand -base64 32`
    /// prints). The error never quotes the input.
    pub fn from_base64(text: &str) -> Result<Self, Report<VaultError>> {
        let invalid = || {
            Report::new(VaultError::InvalidConfig).attach(Detail::new(
                "the token store encryption key must be 32 bytes in standard base64 \
                 (44 characters, e.g. from `openssl rand -base64 32`)",
            ))
        };
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(text.trim())
            .map_err(|_| invalid())?;
        let bytes: [u8; 32] = bytes.try_into().map_err(|_| invalid())?;
        Ok(EncryptionKey::from_bytes(bytes))
    }

    /// A new random key (from the thread's CSPRNG), for tests and one-off setups.
    pub fn generate() -> Self {
        EncryptionKey::from_bytes(rand::random())
    }

    /// The key's id, in hex: safe to log, the same on every process with this key.
    pub fn id(&self) -> String {
        hex(&self.id)
    }
}

impl fmt::Debug for EncryptionKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "EncryptionKey(id {}, {})",
            self.id(),
            vault_core::REDACTED
        )
    }
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for byte in bytes {
        out.push(char::from(DIGITS[usize::from(byte >> 4)]));
        out.push(char::from(DIGITS[usize::from(byte & 0x0f)]));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_keys_must_be_32_bytes_and_errors_do_not_echo_them() {
        let err = EncryptionKey::from_base64("c2hvcnQta2V5LXNlY3JldA==").expect_err("16 bytes");
        assert_eq!(*err.current_context(), VaultError::InvalidConfig);
        assert!(!format!("{err:?}").contains("c2hvcnQta2V5"));
        assert!(EncryptionKey::from_base64("not base64 at all!").is_err());
        let key = EncryptionKey::from_base64(" AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA= \n")
            .expect("32 zero bytes");
        assert_eq!(key.id(), EncryptionKey::from_bytes([0; 32]).id());
        assert_ne!(key.id(), EncryptionKey::from_bytes([1; 32]).id());
    }

    #[test]
    fn debug_shows_the_key_id_only() {
        let key = EncryptionKey::from_bytes([7; 32]);
        let options = RedisStoreOptions::new().encryption_key(key.clone());
        let rendered = format!("{key:?} {options:?} {options:#?}");
        assert!(rendered.contains(&key.id()), "{rendered}");
        assert!(rendered.contains(vault_core::REDACTED), "{rendered}");
        assert!(!rendered.contains("[7, 7"), "{rendered}");
    }

    #[test]
    fn hex_is_lowercase_two_digits_per_byte() {
        assert_eq!(hex(&[0x00, 0x0f, 0xa0, 0xff]), "000fa0ff");
    }
}
