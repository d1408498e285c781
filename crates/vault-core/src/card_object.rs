//! `CardAliases`: a card as a card-object vault (VGS CMP) shows it to a client that may
//! not see the card in clear: its aliases, BIN, last four and expiry. Nothing secret.

use std::fmt;

use crate::card::{ExpiryMonth, ExpiryYear};
use crate::validation::ValidationError;
use crate::vault::Alias;

/// Whether a card-object vault still holds the card's CVC. The CVC is kept volatile,
/// for a short window after it was stored, and may be used several times within it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum CvcStatus {
    /// The CVC is held: a payment can use it now.
    Active,
    /// The CVC's window is over: ask the cardholder again.
    Expired,
    /// The vault gave a status this version does not know.
    Unknown,
}

impl CvcStatus {
    /// Reads the vault's word for it (`"active"`, `"expired"`); anything else is
    /// [`CvcStatus::Unknown`].
    pub fn from_wire(status: &str) -> Self {
        if status.eq_ignore_ascii_case("active") {
            CvcStatus::Active
        } else if status.eq_ignore_ascii_case("expired") {
            CvcStatus::Expired
        } else {
            CvcStatus::Unknown
        }
    }

    /// `"active"`, `"expired"` or `"unknown"`.
    pub const fn as_str(&self) -> &'static str {
        match self {
            CvcStatus::Active => "active",
            CvcStatus::Expired => "expired",
            CvcStatus::Unknown => "unknown",
        }
    }
}

impl fmt::Display for CvcStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A card kept as one object by the vault, as a client without the right to see the
/// card in clear gets it (VGS CMP without `cards:read-pci`): the PAN alias and CVC
/// alias to forward through the vault's proxy, and what an orchestrator routes on (BIN,
/// last four, expiry, whether the CVC is still held). Never the number or the CVC.
///
/// Returned by retrieve as [`PaymentMethodData::CardAliases`](crate::PaymentMethodData)
/// and by insert in [`InsertResponse::card_aliases`](crate::InsertResponse). Its
/// `Debug` shows everything: none of it is secret (PCI DSS allows showing the BIN and
/// the last four digits).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct CardAliases {
    /// The alias of the card number.
    pub pan_alias: Alias,
    /// The alias of the CVC, when one was stored.
    pub cvc_alias: Option<Alias>,
    /// The BIN (first 6 to 8 digits), when the vault gives it.
    pub bin: Option<String>,
    /// The last four digits.
    pub last4: String,
    /// Expiry month.
    pub exp_month: ExpiryMonth,
    /// Expiry year.
    pub exp_year: ExpiryYear,
    /// Whether the CVC is still held, when one was stored.
    pub cvc_status: Option<CvcStatus>,
}

impl CardAliases {
    /// A card's aliases; `last4` must be exactly four digits.
    pub fn new(
        pan_alias: Alias,
        last4: &str,
        exp_month: ExpiryMonth,
        exp_year: ExpiryYear,
    ) -> Result<Self, ValidationError> {
        if last4.len() != 4 || !last4.bytes().all(|b| b.is_ascii_digit()) {
            return Err(ValidationError::LastFour);
        }
        Ok(CardAliases {
            pan_alias,
            cvc_alias: None,
            bin: None,
            last4: last4.to_owned(),
            exp_month,
            exp_year,
            cvc_status: None,
        })
    }

    /// Adds the BIN: 6 to 8 digits.
    pub fn with_bin(mut self, bin: &str) -> Result<Self, ValidationError> {
        if !(6..=8).contains(&bin.len()) || !bin.bytes().all(|b| b.is_ascii_digit()) {
            return Err(ValidationError::Bin);
        }
        self.bin = Some(bin.to_owned());
        Ok(self)
    }

    /// Adds the CVC's alias.
    pub fn with_cvc_alias(mut self, alias: Alias) -> Self {
        self.cvc_alias = Some(alias);
        self
    }

    /// Adds whether the CVC is still held.
    pub fn with_cvc_status(mut self, status: CvcStatus) -> Self {
        self.cvc_status = Some(status);
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn aliases() -> CardAliases {
        CardAliases::new(
            Alias::new("tok_sandbox_pan").expect("alias"),
            "1111",
            ExpiryMonth::new(4).expect("month"),
            ExpiryYear::new(2030).expect("year"),
        )
        .expect("valid")
    }

    #[test]
    fn last_four_and_bin_are_validated() {
        let ok = aliases().with_bin("41111111").expect("8 digits");
        assert_eq!(ok.bin.as_deref(), Some("41111111"));
        assert_eq!(
            aliases().with_bin("41111").expect_err("5"),
            ValidationError::Bin
        );
        assert_eq!(
            aliases().with_bin("41111a").expect_err("letter"),
            ValidationError::Bin
        );
        for bad in ["111", "11111", "11a1", ""] {
            let err = CardAliases::new(
                Alias::new("tok_x").expect("alias"),
                bad,
                ExpiryMonth::new(1).expect("month"),
                ExpiryYear::new(30).expect("year"),
            )
            .expect_err(bad);
            assert_eq!(err, ValidationError::LastFour);
        }
    }

    #[test]
    fn cvc_status_reads_the_vault_words() {
        assert_eq!(CvcStatus::from_wire("active"), CvcStatus::Active);
        assert_eq!(CvcStatus::from_wire("EXPIRED"), CvcStatus::Expired);
        assert_eq!(CvcStatus::from_wire("pending"), CvcStatus::Unknown);
        assert_eq!(CvcStatus::Active.to_string(), "active");
    }

    #[test]
    fn debug_shows_aliases_bin_and_last_four() {
        let rendered = format!(
            "{:?}",
            aliases()
                .with_cvc_alias(Alias::new("tok_sandbox_cvc").expect("alias"))
                .with_cvc_status(CvcStatus::Active)
        );
        assert!(rendered.contains("tok_sandbox_pan"), "{rendered}");
        assert!(rendered.contains("\"1111\""), "{rendered}");
        assert!(rendered.contains("Active"), "{rendered}");
    }
}
