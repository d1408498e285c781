//! The pure parts of the connector's hot path, for `benches/` only: building an
//! insert body, parsing VGS's answers, rebuilding a card. Hidden; not an API.

use error_stack::Report;
use secrecy::SecretString;
use vault_core::{Alias, AliasFormat, Card, VaultError};

use crate::transformers::{self, FieldRefs, Formats, SlotValue};

/// The values of a per-field insert of one card, as the connector builds them
/// (card number `FPE_SIX_T_FOUR`, the CVC volatile).
pub struct PerFieldInsert(Vec<SlotValue>);

impl PerFieldInsert {
    /// Splits `card` into its values.
    pub fn new(card: &Card) -> Self {
        PerFieldInsert(transformers::per_field_values(
            0,
            card,
            Formats {
                card_number: AliasFormat::FpeSixTFour,
            },
        ))
    }

    /// The `POST /aliases` body.
    pub fn body(&self) -> Vec<u8> {
        transformers::create_aliases_body(&self.0)
    }

    /// Parses VGS's answer to that body and matches it to the values; returns how
    /// many aliases came back.
    pub fn parse_answer(&self, body: &[u8]) -> Result<usize, Report<VaultError>> {
        transformers::parse_create_aliases(body, &self.0).map(|stored| stored.len())
    }
}

/// Parses a `GET /aliases?aliases=…` answer for `aliases`; returns how many values
/// it held.
pub fn parse_reveal_many(body: &[u8], aliases: &[&Alias]) -> Result<usize, Report<VaultError>> {
    transformers::parse_reveal_many(body, aliases).map(|values| values.iter().flatten().count())
}

/// Parses a `GET /aliases/{alias}` answer.
pub fn parse_reveal_one(body: &[u8]) -> Result<SecretString, Report<VaultError>> {
    transformers::parse_reveal_one(body)
}

/// Rebuilds and validates a card from revealed values, as retrieve does last.
pub fn card_from_values(
    number: &SecretString,
    exp_month: &SecretString,
    exp_year: &SecretString,
    cvc: Option<&SecretString>,
    holder_name: Option<&SecretString>,
) -> Result<Card, Report<VaultError>> {
    transformers::card_from_refs(FieldRefs {
        number: Some(number),
        exp_month: Some(exp_month),
        exp_year: Some(exp_year),
        cvc,
        holder_name,
    })
}
