//! `ConnectorAuthType`, the credential envelope an orchestrator stores per merchant
//! connector account (Hyperswitch's JSON form), and its typed `SignatureKey` view.

use std::fmt;

use error_stack::Report;
use secrecy::{ExposeSecret, SecretString};

use crate::error::{Detail, VaultError};

/// The credential envelope, in Hyperswitch's shape:
/// `{"auth_type":"SignatureKey","api_key":"…","key1":"…","api_secret":"…"}`.
///
/// Every field is a secret; `Debug` prints only the variant name. For VGS use
/// `SignatureKey`: `api_key` = OAuth client id, `key1` = client secret,
/// `api_secret` = vault id.
#[derive(Clone)]
#[cfg_attr(feature = "serde", derive(serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(tag = "auth_type", deny_unknown_fields))]
#[non_exhaustive]
pub enum ConnectorAuthType {
    /// One key sent as a header.
    HeaderKey {
        /// The key.
        #[cfg_attr(feature = "serde", serde(deserialize_with = "secret_string"))]
        api_key: SecretString,
    },
    /// A key and a second value sent in the body.
    BodyKey {
        /// The key.
        #[cfg_attr(feature = "serde", serde(deserialize_with = "secret_string"))]
        api_key: SecretString,
        /// The second value.
        #[cfg_attr(feature = "serde", serde(deserialize_with = "secret_string"))]
        key1: SecretString,
    },
    /// Three values; for VGS: client id, client secret, vault id.
    SignatureKey {
        /// For VGS: the OAuth client id.
        #[cfg_attr(feature = "serde", serde(deserialize_with = "secret_string"))]
        api_key: SecretString,
        /// For VGS: the OAuth client secret.
        #[cfg_attr(feature = "serde", serde(deserialize_with = "secret_string"))]
        key1: SecretString,
        /// For VGS: the vault id (`tnt…`).
        #[cfg_attr(feature = "serde", serde(deserialize_with = "secret_string"))]
        api_secret: SecretString,
    },
    /// Four values.
    MultiAuthKey {
        /// First value.
        #[cfg_attr(feature = "serde", serde(deserialize_with = "secret_string"))]
        api_key: SecretString,
        /// Second value.
        #[cfg_attr(feature = "serde", serde(deserialize_with = "secret_string"))]
        key1: SecretString,
        /// Third value.
        #[cfg_attr(feature = "serde", serde(deserialize_with = "secret_string"))]
        api_secret: SecretString,
        /// Fourth value.
        #[cfg_attr(feature = "serde", serde(deserialize_with = "secret_string"))]
        key2: SecretString,
    },
    /// No credentials.
    NoKey,
}

impl ConnectorAuthType {
    /// The variant's name as it appears in `auth_type`.
    pub fn variant_name(&self) -> &'static str {
        match self {
            ConnectorAuthType::HeaderKey { .. } => "HeaderKey",
            ConnectorAuthType::BodyKey { .. } => "BodyKey",
            ConnectorAuthType::SignatureKey { .. } => "SignatureKey",
            ConnectorAuthType::MultiAuthKey { .. } => "MultiAuthKey",
            ConnectorAuthType::NoKey => "NoKey",
        }
    }

    /// The typed `SignatureKey` view, or an [`VaultError::InvalidConfig`] report
    /// naming the expected and the given variant.
    pub fn signature_key(&self) -> Result<SignatureKey, Report<VaultError>> {
        match self {
            ConnectorAuthType::SignatureKey {
                api_key,
                key1,
                api_secret,
            } => {
                let api_key = api_key.expose_secret().trim();
                let api_secret = api_secret.expose_secret().trim();
                for (name, value) in [
                    ("api_key", api_key),
                    ("key1", key1.expose_secret()),
                    ("api_secret", api_secret),
                ] {
                    if value.is_empty() {
                        return Err(Report::new(VaultError::InvalidConfig).attach(Detail::new(
                            format!("SignatureKey credentials have an empty `{name}`; fill it in"),
                        )));
                    }
                }
                Ok(SignatureKey {
                    api_key: api_key.to_owned(),
                    key1: key1.clone(),
                    api_secret: api_secret.to_owned(),
                })
            }
            other => Err(wrong_variant("SignatureKey", other.variant_name())),
        }
    }
}

/// Reads a credential from a JSON string only; any other type is refused without
/// echoing it (serde's "invalid type" message would print a numeric secret).
#[cfg(feature = "serde")]
fn secret_string<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<SecretString, D::Error> {
    struct SecretVisitor;

    impl serde::de::Visitor<'_> for SecretVisitor {
        type Value = SecretString;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a credential as a JSON string")
        }

        fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<SecretString, E> {
            Ok(SecretString::from(v.to_owned()))
        }

        fn visit_u64<E: serde::de::Error>(self, _: u64) -> Result<SecretString, E> {
            Err(E::custom(
                "a credential must be a JSON string, not a number",
            ))
        }

        fn visit_i64<E: serde::de::Error>(self, _: i64) -> Result<SecretString, E> {
            Err(E::custom(
                "a credential must be a JSON string, not a number",
            ))
        }

        fn visit_f64<E: serde::de::Error>(self, _: f64) -> Result<SecretString, E> {
            Err(E::custom(
                "a credential must be a JSON string, not a number",
            ))
        }

        fn visit_bool<E: serde::de::Error>(self, _: bool) -> Result<SecretString, E> {
            Err(E::custom(
                "a credential must be a JSON string, not a boolean",
            ))
        }
    }

    deserializer.deserialize_any(SecretVisitor)
}

fn wrong_variant(expected: &str, got: &str) -> Report<VaultError> {
    Report::new(VaultError::InvalidConfig).attach(Detail::new(format!(
        "expected connector credentials of auth_type {expected}, got {got}; store them as {{\"auth_type\":\"{expected}\",…}}"
    )))
}

impl fmt::Debug for ConnectorAuthType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "ConnectorAuthType::{} {{ [REDACTED] }}",
            self.variant_name()
        )
    }
}

/// The three values of a `SignatureKey` envelope, checked non-empty.
///
/// `api_key` (for VGS, the OAuth client id) and `api_secret` (the vault id) are not
/// secret and are held as plain strings; `key1` (the client secret) stays a secret.
#[derive(Clone)]
pub struct SignatureKey {
    /// For VGS: the OAuth client id.
    pub api_key: String,
    /// For VGS: the OAuth client secret.
    pub key1: SecretString,
    /// For VGS: the vault id.
    pub api_secret: String,
}

impl fmt::Debug for SignatureKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SignatureKey")
            .field("api_key", &self.api_key)
            .field("key1", &"[REDACTED]")
            .field("api_secret", &self.api_secret)
            .finish()
    }
}

#[cfg(all(test, feature = "serde"))]
mod tests {
    use super::*;
    use crate::error::ReportExt;

    const SIGNATURE: &str = r#"{"auth_type":"SignatureKey","api_key":"ACclient42","key1":"sup3r-s3cret","api_secret":"tntabc12345"}"#;

    #[test]
    fn parses_hyperswitch_signature_key_json() {
        let auth: ConnectorAuthType = serde_json::from_str(SIGNATURE).expect("valid");
        let key = auth.signature_key().expect("signature key");
        assert_eq!(key.api_key, "ACclient42");
        assert_eq!(key.key1.expose_secret(), "sup3r-s3cret");
        assert_eq!(key.api_secret, "tntabc12345");
    }

    #[test]
    fn parses_other_variants() {
        let header: ConnectorAuthType =
            serde_json::from_str(r#"{"auth_type":"HeaderKey","api_key":"k"}"#).expect("header");
        assert_eq!(header.variant_name(), "HeaderKey");
        let body: ConnectorAuthType =
            serde_json::from_str(r#"{"auth_type":"BodyKey","api_key":"k","key1":"x"}"#)
                .expect("body");
        assert_eq!(body.variant_name(), "BodyKey");
        let none: ConnectorAuthType =
            serde_json::from_str(r#"{"auth_type":"NoKey"}"#).expect("none");
        assert_eq!(none.variant_name(), "NoKey");
    }

    #[test]
    fn debug_is_redacted() {
        let auth: ConnectorAuthType = serde_json::from_str(SIGNATURE).expect("valid");
        let rendered = format!("{auth:?} {auth:#?}");
        assert!(!rendered.contains("sup3r-s3cret"), "{rendered}");
        assert!(!rendered.contains("ACclient42"), "{rendered}");
        assert!(rendered.contains("SignatureKey"));
        let key = auth.signature_key().expect("signature key");
        let rendered = format!("{key:?}");
        assert!(!rendered.contains("sup3r-s3cret"), "{rendered}");
        assert!(rendered.contains("[REDACTED]"));
    }

    #[test]
    fn wrong_variant_names_the_expected_one() {
        let header: ConnectorAuthType =
            serde_json::from_str(r#"{"auth_type":"HeaderKey","api_key":"k"}"#).expect("header");
        let err = header.signature_key().expect_err("wrong variant");
        assert_eq!(err.kind(), VaultError::InvalidConfig);
        let detail = err.details().join(" ");
        assert!(
            detail.contains(
                "expected connector credentials of auth_type SignatureKey, got HeaderKey"
            ),
            "{detail}"
        );
    }

    #[test]
    fn empty_values_are_refused_by_name() {
        let auth: ConnectorAuthType = serde_json::from_str(
            r#"{"auth_type":"SignatureKey","api_key":"id","key1":"secret","api_secret":"  "}"#,
        )
        .expect("parses");
        let err = auth.signature_key().expect_err("empty vault id");
        assert!(err.details().join(" ").contains("empty `api_secret`"));
    }

    #[test]
    fn malformed_json_gives_clear_errors_without_secrets() {
        let missing = serde_json::from_str::<ConnectorAuthType>(
            r#"{"auth_type":"SignatureKey","api_key":"id","api_secret":"tntabc"}"#,
        )
        .expect_err("missing key1");
        assert!(
            missing.to_string().contains("missing field `key1`"),
            "{missing}"
        );

        let unknown =
            serde_json::from_str::<ConnectorAuthType>(r#"{"auth_type":"Signature","api_key":"x"}"#)
                .expect_err("unknown variant");
        assert!(
            unknown.to_string().contains("unknown variant `Signature`"),
            "{unknown}"
        );
        assert!(unknown.to_string().contains("SignatureKey"), "{unknown}");

        let no_tag =
            serde_json::from_str::<ConnectorAuthType>(r#"{"api_key":"x"}"#).expect_err("no tag");
        assert!(
            no_tag.to_string().contains("missing field `auth_type`"),
            "{no_tag}"
        );

        let extra = serde_json::from_str::<ConnectorAuthType>(
            r#"{"auth_type":"HeaderKey","api_key":"k","key1":"sup3r-s3cret"}"#,
        )
        .expect_err("unknown field");
        assert!(
            extra.to_string().contains("unknown field `key1`"),
            "{extra}"
        );
        assert!(!extra.to_string().contains("sup3r-s3cret"));
    }
}
