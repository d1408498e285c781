//! `ValidationError`: why a value was refused at construction, worded for the person
//! who has to fix it and never echoing card data.

use error_stack::Report;

use crate::error::{Detail, VaultError};

/// Why a domain value (card number, CVC, expiry, vault id, alias, …) was refused.
///
/// Messages say what was wrong and how to fix it. They never contain a card number,
/// a CVC or a holder name; vault ids and aliases, which are not secret, are quoted
/// when they are short and cannot be mistaken for a card number.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ValidationError {
    /// The card number has a character other than digits, spaces or dashes.
    #[error("card number must contain only digits (spaces and dashes are ignored)")]
    CardNumberNotDigits,
    /// The card number has too few or too many digits.
    #[error("card number has {0} digits; expected 12 to 19")]
    CardNumberLength(usize),
    /// The card number fails the Luhn check digit.
    #[error("card number fails the Luhn check; a digit is probably mistyped")]
    CardNumberLuhn,
    /// The CVC is not 3 or 4 digits.
    #[error("CVC must be 3 or 4 digits")]
    Cvc,
    /// The expiry month is not 1 to 12.
    #[error("expiry month must be a number from 1 to 12 (for example 4 or \"04\")")]
    ExpiryMonth,
    /// The expiry year is not a 2- or 4-digit year.
    #[error("expiry year must be 2 or 4 digits (for example 28 or 2028)")]
    ExpiryYear,
    /// The holder name is empty, too long or has control characters.
    #[error("card holder name must be 1 to {max} characters with no control characters")]
    HolderName {
        /// The longest name accepted.
        max: usize,
    },
    /// The last four digits of a card are not exactly four digits.
    #[error("the last four digits of a card must be exactly 4 digits")]
    LastFour,
    /// A BIN (issuer identification number) is not 6 to 8 digits.
    #[error("a BIN must be 6 to 8 digits")]
    Bin,
    /// The vault id is not `tnt` followed by lowercase letters and digits.
    #[error(
        "vault id {0} is not valid: expected `tnt` followed by 1 to 32 lowercase letters and digits (e.g. tntabc12345)"
    )]
    VaultId(Quoted),
    /// The alias is empty, too long or has characters no VGS alias has.
    #[error(
        "alias {0} is not valid: expected 1 to 128 characters of letters, digits and - _ . : (as returned by the vault)"
    )]
    Alias(Quoted),
    /// An unknown alias format name.
    #[error(
        "alias format {0} is not one of VGS's formats (UUID, RAW_UUID, NUM_LENGTH_PRESERVING, FPE_SIX_T_FOUR, FPE_T_FOUR, PFPT, NON_LUHN_FPE_ALPHANUMERIC, GENERIC_T_FOUR, FPE_SSN_T_FOUR, FPE_ACC_NUM_T_FOUR, FPE_ALPHANUMERIC_ACC_NUM_T_FOUR, ALPHANUMERIC_SIX_T_FOUR, VGS_FIXED_LEN_GENERIC, CUSTOM, JS)"
    )]
    AliasFormat(Quoted),
    /// An unknown storage name.
    #[error("storage {0} is not valid: expected PERSISTENT or VOLATILE")]
    Storage(Quoted),
    /// An unknown environment name.
    #[error("environment {0} is not valid: expected sandbox, live or live-eu-1")]
    Environment(Quoted),
    /// A network token's cryptogram is empty, too long or not printable ASCII.
    #[error(
        "cryptogram must be 1 to {max} printable ASCII characters (as the token service returned it)"
    )]
    Cryptogram {
        /// The longest cryptogram accepted.
        max: usize,
    },
    /// A connector vault id in its string form (`vl1;…`) that cannot be read.
    #[error("connector vault id string is not valid: {0}")]
    VaultIdString(String),
}

impl ValidationError {
    /// The [`VaultError`] kind this maps to: configuration values (vault id,
    /// environment) are [`VaultError::InvalidConfig`], request data is
    /// [`VaultError::InvalidRequest`].
    pub fn kind(&self) -> VaultError {
        match self {
            ValidationError::VaultId(_) | ValidationError::Environment(_) => {
                VaultError::InvalidConfig
            }
            _ => VaultError::InvalidRequest,
        }
    }

    /// Turns this into a vault error report with the message as its [`Detail`].
    #[track_caller]
    pub fn into_report(self) -> Report<VaultError> {
        let detail = Detail::new(self.to_string());
        Report::new(self.kind()).attach(detail)
    }
}

/// A user-supplied non-secret value quoted in an error message: shown in backticks
/// when it is short and holds no run of 12 or more digits (which could be a card
/// number typed in the wrong field), otherwise described only by its length.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Quoted(String);

impl Quoted {
    const MAX_SHOWN: usize = 64;

    /// Quotes `value`, or describes it without showing it when it might be sensitive.
    pub fn new(value: &str) -> Self {
        let printable = value.chars().all(|c| !c.is_control());
        if printable && value.chars().count() <= Self::MAX_SHOWN && !has_long_digit_run(value) {
            Quoted(format!("`{value}`"))
        } else {
            Quoted(format!(
                "(a value of {} characters, not shown)",
                value.chars().count()
            ))
        }
    }
}

impl std::fmt::Display for Quoted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

fn has_long_digit_run(value: &str) -> bool {
    let mut run = 0;
    for c in value.chars() {
        if c.is_ascii_digit() {
            run += 1;
            if run >= 12 {
                return true;
            }
        } else if c != ' ' && c != '-' {
            run = 0;
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ReportExt;

    #[test]
    fn quoted_hides_anything_that_could_be_a_card_number() {
        assert_eq!(Quoted::new("tnt-1").to_string(), "`tnt-1`");
        let hidden = Quoted::new("4111 1111 1111 1111").to_string();
        assert!(!hidden.contains("4111"), "{hidden}");
        assert!(hidden.contains("19 characters"));
        assert!(!Quoted::new(&"a".repeat(100)).to_string().contains("aaaa"));
        assert!(!Quoted::new("bad\nline").to_string().contains("bad"));
    }

    #[test]
    fn reports_of_card_errors_render_no_card_data() {
        let pan = "4111111111111112";
        let report = crate::card::CardNumber::new(pan)
            .expect_err("luhn")
            .into_report();
        for rendered in [
            format!("{report:?}"),
            format!("{report:#?}"),
            format!("{report}"),
            report.summary(),
        ] {
            assert!(!rendered.contains(pan), "{rendered}");
        }
        assert!(format!("{report:?}").contains("Luhn"));
        assert!(report.summary().contains("Luhn"));
    }

    #[test]
    fn config_errors_and_request_errors_map_to_their_kinds() {
        let report = ValidationError::VaultId(Quoted::new("tnt-1")).into_report();
        assert_eq!(report.kind(), VaultError::InvalidConfig);
        assert_eq!(
            report.details(),
            vec![
                "vault id `tnt-1` is not valid: expected `tnt` followed by 1 to 32 lowercase letters and digits (e.g. tntabc12345)"
            ]
        );
        assert_eq!(
            ValidationError::Cvc.into_report().kind(),
            VaultError::InvalidRequest
        );
    }
}
