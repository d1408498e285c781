//! Credential secrets (client secret, password, access token) as `secrecy` types whose
//! `Debug` is always `[REDACTED]`; reading one is an explicit `expose_secret()`.

use std::fmt;

use secrecy::{ExposeSecret, SecretString};

/// What every redacted secret prints as.
pub const REDACTED: &str = "[REDACTED]";

macro_rules! secret_newtype {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone)]
        pub struct $name(SecretString);

        impl $name {
            /// Wraps a secret value.
            pub fn new(value: impl Into<String>) -> Self {
                $name(SecretString::from(value.into()))
            }

            /// The secret value, for the one place that must send it.
            pub fn expose_secret(&self) -> &str {
                self.0.expose_secret()
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({REDACTED})", stringify!($name))
            }
        }

        impl From<String> for $name {
            fn from(value: String) -> Self {
                $name::new(value)
            }
        }

        impl From<SecretString> for $name {
            fn from(value: SecretString) -> Self {
                $name(value)
            }
        }

        #[cfg(feature = "serde")]
        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let value = String::deserialize(deserializer)?;
                Ok($name::new(value))
            }
        }
    };
}

secret_newtype!(
    /// An OAuth2 client secret (VGS service account secret, `key1` of `SignatureKey`).
    ClientSecret
);
secret_newtype!(
    /// A password: of an OAuth2 password grant, or of VGS v1 access credentials.
    Password
);
secret_newtype!(
    /// An access token (OAuth2 bearer token or a static API token).
    ///
    /// Two tokens compare equal when their values are equal, which is how a cache
    /// invalidates exactly the token a vault rejected. The comparison is constant
    /// time in the token's length.
    AccessToken
);

impl PartialEq for AccessToken {
    fn eq(&self, other: &Self) -> bool {
        constant_time_eq(
            self.expose_secret().as_bytes(),
            other.expose_secret().as_bytes(),
        )
    }
}

impl Eq for AccessToken {}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// An OAuth2 client id. Not a secret (it is sent in the clear to the token endpoint
/// and shows in dashboards), so it prints in full.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[cfg_attr(feature = "serde", derive(serde::Deserialize, serde::Serialize))]
#[cfg_attr(feature = "serde", serde(transparent))]
pub struct ClientId(String);

impl ClientId {
    /// Wraps a client id.
    pub fn new(value: impl Into<String>) -> Self {
        ClientId(value.into())
    }

    /// The id.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for ClientId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ClientId({})", self.0)
    }
}

impl fmt::Display for ClientId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_debug_is_redacted() {
        let secret = ClientSecret::new("s3cr3t-value");
        let password = Password::new("hunter2-pass");
        let token = AccessToken::new("eyJhbGciOi.tok");
        for rendered in [
            format!("{secret:?}"),
            format!("{password:?}"),
            format!("{token:?}"),
            format!("{secret:#?}"),
        ] {
            assert!(rendered.contains(REDACTED), "{rendered}");
            assert!(!rendered.contains("s3cr3t"));
            assert!(!rendered.contains("hunter2"));
            assert!(!rendered.contains("eyJhbGciOi"));
        }
        assert_eq!(secret.expose_secret(), "s3cr3t-value");
    }

    #[test]
    fn tokens_compare_by_value() {
        assert_eq!(AccessToken::new("abc"), AccessToken::new("abc"));
        assert_ne!(AccessToken::new("abc"), AccessToken::new("abd"));
        assert_ne!(AccessToken::new("abc"), AccessToken::new("abcd"));
    }

    #[test]
    fn client_id_is_not_secret() {
        assert_eq!(format!("{:?}", ClientId::new("ACabc")), "ClientId(ACabc)");
    }
}
