//! Redis key names: `<prefix>:token:<hash>` and `<prefix>:lock:<hash>`, where the
//! hash is SHA-256 over the `CacheKey`'s fields, so no credential appears in a key.

use sha2::{Digest, Sha256};
use vault_auth::CacheKey;

use crate::options::hex;

/// The two keys of one cached token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TokenKeys {
    /// Where the token value lives.
    pub(crate) token: String,
    /// The fetch lock.
    pub(crate) lock: String,
}

impl TokenKeys {
    pub(crate) fn new(prefix: &str, key: &CacheKey) -> Self {
        let hash = key_hash(key);
        TokenKeys {
            token: format!("{prefix}:token:{hash}"),
            lock: format!("{prefix}:lock:{hash}"),
        }
    }
}

/// 128 bits of SHA-256 over the key's fields, each length-prefixed (so that no two
/// different keys hash the same input), in hex. Versioned: a change of layout gets a
/// new domain string, so old and new replicas never read each other's values.
fn key_hash(key: &CacheKey) -> String {
    let mut hasher = Sha256::new();
    hasher.update(b"vaultlink-token-store-v1\0");
    let mut field = |bytes: &[u8]| {
        hasher.update((bytes.len() as u64).to_be_bytes());
        hasher.update(bytes);
    };
    field(key.endpoint().as_bytes());
    field(key.client_id().as_bytes());
    match key.subject() {
        Some(subject) => {
            field(b"subject");
            field(subject.as_bytes());
        }
        None => field(b"no-subject"),
    }
    for scope in key.scopes() {
        field(scope.as_bytes());
    }
    let digest = hasher.finalize();
    hex(&digest[..16])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_prefixed_hashes_that_name_no_field() {
        let key = CacheKey::new("https://auth.example/token", "ACclient42")
            .with_subject("alice")
            .with_scopes(["aliases:write", "aliases:read"]);
        let keys = TokenKeys::new("vaultlink", &key);
        assert!(keys.token.starts_with("vaultlink:token:"), "{}", keys.token);
        assert!(keys.lock.starts_with("vaultlink:lock:"), "{}", keys.lock);
        assert_eq!(keys.token.len(), "vaultlink:token:".len() + 32);
        assert_eq!(keys.token[16..], keys.lock[15..]);
        for part in ["auth.example", "ACclient42", "alice", "aliases"] {
            assert!(!keys.token.contains(part), "{}", keys.token);
        }
    }

    #[test]
    fn every_field_changes_the_hash_and_scope_order_does_not() {
        let base = CacheKey::new("https://a/token", "c").with_scopes(["x", "y"]);
        let hash = |key: &CacheKey| TokenKeys::new("p", key).token;
        assert_eq!(
            hash(&base),
            hash(&CacheKey::new("https://a/token", "c").with_scopes(["y", "x"]))
        );
        let others = [
            CacheKey::new("https://b/token", "c").with_scopes(["x", "y"]),
            CacheKey::new("https://a/token", "d").with_scopes(["x", "y"]),
            CacheKey::new("https://a/token", "c").with_scopes(["x"]),
            CacheKey::new("https://a/token", "c")
                .with_subject("u")
                .with_scopes(["x", "y"]),
            // The same bytes split differently must not collide.
            CacheKey::new("https://a/tokenc", "").with_scopes(["x", "y"]),
            CacheKey::new("https://a/token", "c").with_scopes(["xy"]),
        ];
        for other in &others {
            assert_ne!(hash(&base), hash(other), "{other}");
        }
        assert_ne!(TokenKeys::new("p", &base), TokenKeys::new("q", &base));
    }
}
