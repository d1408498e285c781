//! The stored value: token, scheme, lifetime and expiry offset, in clear (`vl1p`) or
//! sealed with XChaCha20-Poly1305 bound to its Redis key (`vl1s`); pure functions.

use std::time::Duration;

use chacha20poly1305::XNonce;
use chacha20poly1305::aead::{Aead, Payload};
use vault_auth::AuthScheme;
use vault_core::AccessToken;

use crate::options::EncryptionKey;

const PLAIN: &[u8; 4] = b"vl1p";
const SEALED: &[u8; 4] = b"vl1s";
const NONCE_LEN: usize = 24;
/// version + scheme + lifetime + grace
const FIELDS_LEN: usize = 1 + 1 + 8 + 8;

/// What a stored value holds.
#[derive(Debug)]
pub(crate) struct TokenRecord {
    pub(crate) token: AccessToken,
    pub(crate) scheme: AuthScheme,
    /// The lifetime the token was issued with.
    pub(crate) lifetime: Duration,
    /// How long the token outlives its Redis key: its expiry is the key's expiry
    /// (`PTTL`, on the one Redis clock) plus this.
    pub(crate) grace: Duration,
}

/// Why a stored value could not be read. Each reads as a miss.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Unreadable {
    /// Not a value this crate writes (another program's, or damaged).
    Malformed,
    /// Sealed, but this store has no key.
    SealedButNoKey,
    /// Sealed with a key of another id.
    OtherKey,
    /// Sealed with this key's id, but does not open (tampered, or moved from
    /// another Redis key).
    Inauthentic,
    /// In clear, but this store requires sealed values.
    PlainButKeyRequired,
}

impl Unreadable {
    /// A short description, for logs.
    pub(crate) fn describe(self) -> &'static str {
        match self {
            Unreadable::Malformed => "not a vaultlink token value",
            Unreadable::SealedButNoKey => {
                "sealed, but this process has no token store encryption key"
            }
            Unreadable::OtherKey => "sealed with another encryption key",
            Unreadable::Inauthentic => "sealed value failed authentication",
            Unreadable::PlainButKeyRequired => {
                "stored in clear, but this process requires sealed values"
            }
        }
    }
}

/// Encodes `record` for the Redis key `redis_key`, sealed when `key` is given;
/// `None` for a scheme this format does not know (such a token is not shared).
pub(crate) fn encode(
    record: &TokenRecord,
    key: Option<&EncryptionKey>,
    redis_key: &str,
) -> Option<Vec<u8>> {
    let fields = fields(record)?;
    Some(match key {
        None => [PLAIN.as_slice(), &fields].concat(),
        Some(key) => {
            let nonce: [u8; NONCE_LEN] = rand::random();
            let aad = aad(&key.id, redis_key);
            let sealed = key
                .cipher
                .encrypt(
                    &XNonce::from(nonce),
                    Payload {
                        msg: &fields,
                        aad: &aad,
                    },
                )
                .expect("XChaCha20-Poly1305 seals any message shorter than 256 GiB");
            [SEALED.as_slice(), &key.id, &nonce, &sealed].concat()
        }
    })
}

/// Decodes a value read from `redis_key`.
pub(crate) fn decode(
    value: &[u8],
    key: Option<&EncryptionKey>,
    redis_key: &str,
) -> Result<TokenRecord, Unreadable> {
    let (magic, rest) = value.split_at_checked(4).ok_or(Unreadable::Malformed)?;
    if magic == PLAIN {
        if key.is_some() {
            return Err(Unreadable::PlainButKeyRequired);
        }
        return parse_fields(rest);
    }
    if magic != SEALED {
        return Err(Unreadable::Malformed);
    }
    let key = key.ok_or(Unreadable::SealedButNoKey)?;
    let (id, rest) = rest.split_at_checked(4).ok_or(Unreadable::Malformed)?;
    if id != key.id {
        return Err(Unreadable::OtherKey);
    }
    let (nonce, sealed) = rest
        .split_at_checked(NONCE_LEN)
        .ok_or(Unreadable::Malformed)?;
    let nonce = XNonce::try_from(nonce).map_err(|_| Unreadable::Malformed)?;
    let aad = aad(&key.id, redis_key);
    let fields = key
        .cipher
        .decrypt(
            &nonce,
            Payload {
                msg: sealed,
                aad: &aad,
            },
        )
        .map_err(|_| Unreadable::Inauthentic)?;
    parse_fields(&fields)
}

/// The sealed value is bound to its format, key id and Redis key: a value copied to
/// another token's key does not open there.
fn aad(key_id: &[u8; 4], redis_key: &str) -> Vec<u8> {
    [SEALED.as_slice(), key_id, redis_key.as_bytes()].concat()
}

fn fields(record: &TokenRecord) -> Option<Vec<u8>> {
    let scheme = match record.scheme {
        AuthScheme::Bearer => 1,
        AuthScheme::Tok => 2,
        _ => return None,
    };
    let token = record.token.expose_secret().as_bytes();
    let mut out = Vec::with_capacity(FIELDS_LEN + token.len());
    out.push(1);
    out.push(scheme);
    out.extend_from_slice(&millis(record.lifetime).to_be_bytes());
    out.extend_from_slice(&millis(record.grace).to_be_bytes());
    out.extend_from_slice(token);
    Some(out)
}

fn parse_fields(fields: &[u8]) -> Result<TokenRecord, Unreadable> {
    let (head, token) = fields
        .split_at_checked(FIELDS_LEN)
        .ok_or(Unreadable::Malformed)?;
    if head[0] != 1 {
        return Err(Unreadable::Malformed);
    }
    let scheme = match head[1] {
        1 => AuthScheme::Bearer,
        2 => AuthScheme::Tok,
        _ => return Err(Unreadable::Malformed),
    };
    let number = |bytes: &[u8]| -> Result<u64, Unreadable> {
        Ok(u64::from_be_bytes(
            bytes.try_into().map_err(|_| Unreadable::Malformed)?,
        ))
    };
    let token = std::str::from_utf8(token).map_err(|_| Unreadable::Malformed)?;
    if token.is_empty() {
        return Err(Unreadable::Malformed);
    }
    Ok(TokenRecord {
        token: AccessToken::new(token),
        scheme,
        lifetime: Duration::from_millis(number(&head[2..10])?),
        grace: Duration::from_millis(number(&head[10..18])?),
    })
}

pub(crate) fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(token: &str) -> TokenRecord {
        TokenRecord {
            token: AccessToken::new(token),
            scheme: AuthScheme::Tok,
            lifetime: Duration::from_secs(43_200),
            grace: Duration::from_millis(450_000),
        }
    }

    #[test]
    fn plain_values_round_trip() {
        let value = encode(&record("tok-plain-1"), None, "p:token:aa").expect("known scheme");
        assert!(value.starts_with(b"vl1p"));
        let back = decode(&value, None, "p:token:aa").expect("decodes");
        assert_eq!(back.token, AccessToken::new("tok-plain-1"));
        assert_eq!(back.scheme, AuthScheme::Tok);
        assert_eq!(back.lifetime, Duration::from_secs(43_200));
        assert_eq!(back.grace, Duration::from_millis(450_000));
    }

    #[test]
    fn sealed_values_round_trip_hide_the_token_and_use_fresh_nonces() {
        let key = EncryptionKey::from_bytes([3; 32]);
        let seal = || encode(&record("tok-sealed-1"), Some(&key), "p:token:aa").expect("sealed");
        let (one, two) = (seal(), seal());
        assert_ne!(one, two, "a nonce per write");
        assert!(!one.windows(12).any(|w| w == b"tok-sealed-1"));
        let back = decode(&one, Some(&key), "p:token:aa").expect("opens");
        assert_eq!(back.token, AccessToken::new("tok-sealed-1"));
    }

    #[test]
    fn unreadable_values_are_told_apart() {
        let key = EncryptionKey::from_bytes([3; 32]);
        let other = EncryptionKey::from_bytes([4; 32]);
        let sealed = encode(&record("t"), Some(&key), "p:token:aa").expect("sealed");
        let plain = encode(&record("t"), None, "p:token:aa").expect("plain");
        let unreadable = |value: &[u8], key: Option<&EncryptionKey>, redis_key: &str| {
            decode(value, key, redis_key).expect_err("unreadable")
        };
        assert_eq!(
            unreadable(&sealed, Some(&other), "p:token:aa"),
            Unreadable::OtherKey
        );
        assert_eq!(
            unreadable(&sealed, None, "p:token:aa"),
            Unreadable::SealedButNoKey
        );
        assert_eq!(
            unreadable(&sealed, Some(&key), "p:token:bb"),
            Unreadable::Inauthentic
        );
        let mut tampered = sealed.clone();
        let last = tampered.len() - 1;
        tampered[last] ^= 1;
        assert_eq!(
            unreadable(&tampered, Some(&key), "p:token:aa"),
            Unreadable::Inauthentic
        );
        assert_eq!(
            unreadable(&plain, Some(&key), "p:token:aa"),
            Unreadable::PlainButKeyRequired
        );
        for junk in [&b""[..], b"vl1", b"hello world", &sealed[..20]] {
            assert_eq!(
                unreadable(junk, Some(&key), "p:token:aa"),
                Unreadable::Malformed
            );
        }
        assert_eq!(
            unreadable(b"vl1p\x01\x01", None, "p:token:aa"),
            Unreadable::Malformed
        );
        assert_eq!(
            unreadable(&[PLAIN.as_slice(), &[1, 1], &[0; 16]].concat(), None, "k"),
            Unreadable::Malformed,
            "an empty token"
        );
    }
}
