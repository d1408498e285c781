//! Vault vocabulary: `VaultId` (the `tnt…` tenant), `Alias`, `AliasFormat`, `Storage`
//! and `Environment`, each validated when parsed.

use std::fmt;
use std::str::FromStr;

use crate::validation::{Quoted, ValidationError};

/// A VGS vault (tenant) id: `tnt` followed by 1 to 32 lowercase letters and digits.
///
/// Validated before it goes anywhere near a URL.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct VaultId(String);

impl VaultId {
    /// The longest id accepted after the `tnt` prefix.
    pub const MAX_SUFFIX: usize = 32;

    /// Validates a vault id.
    pub fn new(input: &str) -> Result<Self, ValidationError> {
        let valid = input.strip_prefix("tnt").is_some_and(|rest| {
            (1..=Self::MAX_SUFFIX).contains(&rest.len())
                && rest
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        });
        if valid {
            Ok(VaultId(input.to_owned()))
        } else {
            Err(ValidationError::VaultId(Quoted::new(input)))
        }
    }

    /// The id.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for VaultId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "VaultId({})", self.0)
    }
}

impl fmt::Display for VaultId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for VaultId {
    type Err = ValidationError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        VaultId::new(s)
    }
}

/// An alias (token) the vault returned for a stored value, or a vault-side record id.
///
/// Not secret: aliases are what the orchestrator keeps instead of card data. Some
/// formats keep the BIN and last four of a card (`FPE_SIX_T_FOUR`), never the whole
/// number. Validated so it can go into a URL path or a comma-separated query safely.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Alias(String);

impl Alias {
    /// The longest alias accepted.
    pub const MAX_LEN: usize = 128;

    /// Validates an alias: 1 to 128 characters of ASCII letters, digits and `- _ . :`.
    pub fn new(input: &str) -> Result<Self, ValidationError> {
        let valid = (1..=Self::MAX_LEN).contains(&input.len())
            && input
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':'));
        if valid {
            Ok(Alias(input.to_owned()))
        } else {
            Err(ValidationError::Alias(Quoted::new(input)))
        }
    }

    /// The alias.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Alias {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Alias({})", self.0)
    }
}

impl fmt::Display for Alias {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for Alias {
    type Err = ValidationError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Alias::new(s)
    }
}

macro_rules! wire_enum {
    (
        $(#[$doc:meta])*
        $name:ident, $err:ident {
            $( $(#[$vdoc:meta])* $variant:ident => $wire:literal $(| $alt:literal)* ),+ $(,)?
        }
    ) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum $name {
            $( $(#[$vdoc])* $variant ),+
        }

        impl $name {
            /// Every value, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The name on the wire and in configuration.
            pub const fn as_str(&self) -> &'static str {
                match self {
                    $($name::$variant => $wire),+
                }
            }
        }

        impl FromStr for $name {
            type Err = ValidationError;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                match s {
                    $($wire $(| $alt)* => Ok($name::$variant),)+
                    _ => Err(ValidationError::$err(Quoted::new(s))),
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        #[cfg(feature = "serde")]
        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(self.as_str())
            }
        }

        #[cfg(feature = "serde")]
        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let raw = String::deserialize(deserializer)?;
                raw.parse().map_err(serde::de::Error::custom)
            }
        }
    };
}

wire_enum!(
    /// The shape of an alias, as VGS names it (all 15 formats of the vault API spec).
    AliasFormat, AliasFormat {
        /// `tok_sandbox_` / `tok_live_` + 22 base58 characters (VGS's default).
        Uuid => "UUID",
        /// A plain UUID, `xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx`.
        RawUuid => "RAW_UUID",
        /// Digits, the same length as the value.
        NumLengthPreserving => "NUM_LENGTH_PRESERVING",
        /// Card: first six + random middle + last four, Luhn valid.
        FpeSixTFour => "FPE_SIX_T_FOUR",
        /// Card: random + last four, Luhn valid.
        FpeTFour => "FPE_T_FOUR",
        /// Card: prefixed, Luhn valid, 19 digits.
        Pfpt => "PFPT",
        /// Card length, not Luhn valid.
        NonLuhnFpeAlphanumeric => "NON_LUHN_FPE_ALPHANUMERIC",
        /// `tok_sandbox_` + 22 characters + `_` + last four.
        GenericTFour => "GENERIC_T_FOUR",
        /// `xxx-xx-` + last four.
        FpeSsnTFour => "FPE_SSN_T_FOUR",
        /// Numeric, length preserving, keeps the last four.
        FpeAccNumTFour => "FPE_ACC_NUM_T_FOUR",
        /// Alphanumeric, length preserving, keeps the last four.
        FpeAlphanumericAccNumTFour => "FPE_ALPHANUMERIC_ACC_NUM_T_FOUR",
        /// 19 symbols: first six + alphanumeric + last four.
        AlphanumericSixTFour => "ALPHANUMERIC_SIX_T_FOUR",
        /// `vgs` + 26 alphanumeric characters.
        VgsFixedLenGeneric => "VGS_FIXED_LEN_GENERIC",
        /// Defined by the vault's configuration.
        Custom => "CUSTOM",
        /// Defined by a vault-side script.
        Js => "JS",
    }
);

wire_enum!(
    /// How long the vault keeps a value.
    Storage, Storage {
        /// Kept until deleted (VGS's default).
        Persistent => "PERSISTENT",
        /// Kept in memory for one hour, never written to disk: how a CVC must be kept
        /// (PCI DSS forbids persisting it after authorization).
        Volatile => "VOLATILE",
    }
);

wire_enum!(
    /// Which VGS environment a vault lives in; picks the hosts.
    Environment, Environment {
        /// Test data only.
        Sandbox => "sandbox",
        /// Production, US.
        Live => "live",
        /// Production, EU.
        LiveEu1 => "live-eu-1" | "live_eu_1" | "liveeu1",
    }
);

#[cfg(feature = "serde")]
mod serde_impls {
    //! Serde for ids and aliases: serialised as plain strings, validated when read.

    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    use super::{Alias, VaultId};

    macro_rules! string_serde {
        ($ty:ty) => {
            impl Serialize for $ty {
                fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                    serializer.serialize_str(self.as_str())
                }
            }

            impl<'de> Deserialize<'de> for $ty {
                fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                    let raw = String::deserialize(deserializer)?;
                    <$ty>::new(&raw).map_err(serde::de::Error::custom)
                }
            }
        };
    }

    string_serde!(VaultId);
    string_serde!(Alias);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vault_id_accepts_tnt_and_lowercase_alphanumerics() {
        for good in ["tntabc12345", "tnt1", "tntsandbox0000000000000000000000x"] {
            assert_eq!(VaultId::new(good).expect(good).as_str(), good);
        }
    }

    #[test]
    fn vault_id_errors_name_the_id_and_the_rule() {
        let err = VaultId::new("tnt-1").expect_err("dash");
        assert_eq!(
            err.to_string(),
            "vault id `tnt-1` is not valid: expected `tnt` followed by 1 to 32 lowercase letters and digits (e.g. tntabc12345)"
        );
        for bad in [
            "",
            "tnt",
            "TNTabc",
            "tntABC",
            "abc123",
            "tnt abc",
            "tnt.evil.com",
            "tnt/x",
        ] {
            assert!(VaultId::new(bad).is_err(), "{bad}");
        }
        let too_long = format!("tnt{}", "a".repeat(33));
        assert!(VaultId::new(&too_long).is_err());
    }

    #[test]
    fn alias_accepts_vgs_shapes_and_refuses_url_breakers() {
        for good in [
            "tok_sandbox_bhtsCwFUzoJMw9rWUfEV5e",
            "4111117284161111",
            "f0b2c9a4-1a2b-4c3d-8e9f-0123456789ab",
            "vgsabcdefghijklmnopqrstuvwxyz",
            "CRDabc.123:x",
        ] {
            assert_eq!(Alias::new(good).expect(good).as_str(), good);
        }
        for bad in [
            "",
            "a,b",
            "a/b",
            "a?b",
            "a#b",
            "a b",
            "ünï",
            &"a".repeat(129),
        ] {
            let err = Alias::new(bad).expect_err(bad);
            assert!(err.to_string().contains("is not valid"), "{err}");
        }
    }

    #[test]
    fn alias_format_round_trips_all_fifteen_spec_names() {
        assert_eq!(AliasFormat::ALL.len(), 15);
        for format in AliasFormat::ALL {
            assert_eq!(format.as_str().parse::<AliasFormat>(), Ok(*format));
        }
        let err = "FPE_SIX".parse::<AliasFormat>().expect_err("unknown");
        assert!(
            err.to_string()
                .starts_with("alias format `FPE_SIX` is not one of VGS's formats")
        );
    }

    #[test]
    fn storage_and_environment_parse() {
        assert_eq!("VOLATILE".parse::<Storage>(), Ok(Storage::Volatile));
        assert_eq!("PERSISTENT".parse::<Storage>(), Ok(Storage::Persistent));
        assert!(
            "volatile"
                .parse::<Storage>()
                .expect_err("case")
                .to_string()
                .contains("PERSISTENT or VOLATILE")
        );
        assert_eq!("sandbox".parse::<Environment>(), Ok(Environment::Sandbox));
        assert_eq!("live".parse::<Environment>(), Ok(Environment::Live));
        assert_eq!("live-eu-1".parse::<Environment>(), Ok(Environment::LiveEu1));
        assert_eq!(Environment::LiveEu1.to_string(), "live-eu-1");
        let err = "prod".parse::<Environment>().expect_err("unknown");
        assert_eq!(
            err.to_string(),
            "environment `prod` is not valid: expected sandbox, live or live-eu-1"
        );
    }
}
