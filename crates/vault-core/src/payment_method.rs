//! Payment methods beside a whole card: a network token, and some of a card's fields
//! (Hyperswitch's card data has every field optional: a re-entered CVC alone, a card
//! number alone).

use std::fmt;

use secrecy::{ExposeSecret, SecretString};

use crate::card::{Card, CardHolderName, CardNumber, Cvc, ExpiryMonth, ExpiryYear};
use crate::secret::REDACTED;
use crate::validation::ValidationError;

/// A network token's cryptogram (TAVV / DSRP data, base64): single use, secret, and
/// always stored volatile. Never printed.
#[derive(Clone)]
pub struct Cryptogram(SecretString);

impl Cryptogram {
    /// The longest cryptogram accepted.
    pub const MAX_LEN: usize = 512;

    /// Validates and wraps a cryptogram: 1 to 512 printable ASCII characters.
    pub fn new(input: &str) -> Result<Self, ValidationError> {
        let input = input.trim();
        if (1..=Self::MAX_LEN).contains(&input.len()) && input.bytes().all(|b| b.is_ascii_graphic())
        {
            Ok(Cryptogram(SecretString::from(input.to_owned())))
        } else {
            Err(ValidationError::Cryptogram { max: Self::MAX_LEN })
        }
    }

    /// The cryptogram, for the one place that must send it.
    pub fn expose_secret(&self) -> &str {
        self.0.expose_secret()
    }
}

impl PartialEq for Cryptogram {
    fn eq(&self, other: &Self) -> bool {
        self.expose_secret() == other.expose_secret()
    }
}

impl Eq for Cryptogram {}

impl fmt::Debug for Cryptogram {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Cryptogram({REDACTED})")
    }
}

/// A network token: a card scheme's stand-in for a card number (Visa Token Service,
/// Mastercard MDES), with its own expiry and, for a payment, a cryptogram. Stored
/// like a card: the token and its expiry persistent, the cryptogram volatile.
///
/// Its `Debug` shows the token's last four and the expiry, never the token or the
/// cryptogram.
#[derive(Clone, PartialEq, Eq)]
pub struct NetworkToken {
    /// The token number (Luhn valid, 12 to 19 digits, like a card number).
    pub token: CardNumber,
    /// The token's expiry month.
    pub exp_month: ExpiryMonth,
    /// The token's expiry year.
    pub exp_year: ExpiryYear,
    /// The cryptogram, when there is one (single use: kept an hour at most).
    pub cryptogram: Option<Cryptogram>,
}

impl NetworkToken {
    /// A network token without a cryptogram.
    pub fn new(token: CardNumber, exp_month: ExpiryMonth, exp_year: ExpiryYear) -> Self {
        NetworkToken {
            token,
            exp_month,
            exp_year,
            cryptogram: None,
        }
    }

    /// Adds a cryptogram.
    pub fn with_cryptogram(mut self, cryptogram: Cryptogram) -> Self {
        self.cryptogram = Some(cryptogram);
        self
    }
}

impl fmt::Debug for NetworkToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NetworkToken")
            .field("token", &self.token)
            .field("exp_month", &self.exp_month.get())
            .field("exp_year", &self.exp_year.get())
            .field("cryptogram", &self.cryptogram)
            .finish()
    }
}

/// Some of a card's fields, each optional: what an orchestrator stores when it has
/// only part of a card (a card number alone; a CVC re-entered for a card already
/// stored, see [`InsertRequest::cvc_for`](crate::InsertRequest::cvc_for)), and what
/// retrieve returns for an id that holds only part of a card.
///
/// Its `Debug` shows which fields are present, never a value.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct CardFields {
    /// The card number.
    pub number: Option<CardNumber>,
    /// The expiry month.
    pub exp_month: Option<ExpiryMonth>,
    /// The expiry year.
    pub exp_year: Option<ExpiryYear>,
    /// The CVC.
    pub cvc: Option<Cvc>,
    /// The holder name.
    pub holder_name: Option<CardHolderName>,
}

impl CardFields {
    /// No field yet.
    pub fn new() -> Self {
        CardFields::default()
    }

    /// Only a card number.
    pub fn number(number: CardNumber) -> Self {
        CardFields {
            number: Some(number),
            ..CardFields::default()
        }
    }

    /// Only a CVC.
    pub fn cvc(cvc: Cvc) -> Self {
        CardFields {
            cvc: Some(cvc),
            ..CardFields::default()
        }
    }

    /// Whether no field is present.
    pub fn is_empty(&self) -> bool {
        self.number.is_none()
            && self.exp_month.is_none()
            && self.exp_year.is_none()
            && self.cvc.is_none()
            && self.holder_name.is_none()
    }

    /// The whole card, when number and expiry are all present.
    pub fn into_card(self) -> Result<Card, CardFields> {
        match (self.number, self.exp_month, self.exp_year) {
            (Some(number), Some(exp_month), Some(exp_year)) => Ok(Card {
                number,
                exp_month,
                exp_year,
                cvc: self.cvc,
                holder_name: self.holder_name,
            }),
            (number, exp_month, exp_year) => Err(CardFields {
                number,
                exp_month,
                exp_year,
                cvc: self.cvc,
                holder_name: self.holder_name,
            }),
        }
    }
}

impl From<Card> for CardFields {
    fn from(card: Card) -> Self {
        CardFields {
            number: Some(card.number),
            exp_month: Some(card.exp_month),
            exp_year: Some(card.exp_year),
            cvc: card.cvc,
            holder_name: card.holder_name,
        }
    }
}

impl fmt::Debug for CardFields {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CardFields")
            .field("number", &self.number)
            .field("exp_month", &self.exp_month.as_ref().map(|m| m.get()))
            .field("exp_year", &self.exp_year.as_ref().map(|y| y.get()))
            .field("cvc", &self.cvc)
            .field("holder_name", &self.holder_name)
            .finish()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_a_token_or_cryptogram() {
        let token = NetworkToken::new(
            CardNumber::new("4895370012003478").unwrap(),
            ExpiryMonth::new(7).unwrap(),
            ExpiryYear::new(2031).unwrap(),
        )
        .with_cryptogram(Cryptogram::new("AgAAAAAABk4DWZ4C28yUQAAAAAA=").unwrap());
        let shown = format!("{token:?}");
        assert!(!shown.contains("48953700120034"), "{shown}");
        assert!(!shown.contains("AgAAAAAABk4"), "{shown}");
        assert!(shown.contains("3478"), "{shown}");
        let fields = CardFields::cvc(Cvc::new("123").unwrap());
        let shown = format!("{fields:?}");
        assert!(!shown.contains("123"), "{shown}");
    }

    #[test]
    fn a_cryptogram_is_printable_and_bounded() {
        assert!(Cryptogram::new("").is_err());
        assert!(Cryptogram::new("a b").is_err());
        assert!(Cryptogram::new(&"A".repeat(513)).is_err());
        assert!(Cryptogram::new("AgAAAAAABk4DWZ4C28yUQAAAAAA=").is_ok());
    }

    #[test]
    fn fields_make_a_card_only_when_number_and_expiry_are_there() {
        let number = CardNumber::new("4111111111111111").unwrap();
        let partial = CardFields::number(number.clone());
        let back = partial.clone().into_card().expect_err("no expiry");
        assert_eq!(back, partial);
        let whole = CardFields {
            exp_month: Some(ExpiryMonth::new(4).unwrap()),
            exp_year: Some(ExpiryYear::new(2030).unwrap()),
            ..partial
        };
        assert_eq!(whole.into_card().expect("whole").number, number);
    }
}
