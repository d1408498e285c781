//! Records as Hyperswitch's VGS connector writes them
//! (`hyperswitch_connectors/src/connectors/vgs/transformers.rs`), and as VGS Collect
//! leaves them, so that tests and `vaultctl mock serve --seed-hyperswitch` can show
//! vaultlink reading and migrating cards it did not store.
//!
//! - Single-token mode (Hyperswitch's default): the whole card as one PERSISTENT
//!   value, classifier `data`, format UUID: JSON `{"card_number","card_exp_month",
//!   "card_exp_year","card_cvc"}` (the CVC inside, `null` when absent). The alias is
//!   the `connector_vault_id` and the `fingerprint_id`.
//! - Multi-token mode: one VOLATILE value per field, classifiers `card_number`,
//!   `card_expiry_month`, `card_expiry_year`, `card_cvc`, format UUID.
//! - VGS Collect: the card number PERSISTENT (FPE_SIX_T_FOUR) and the CVC VOLATILE;
//!   the expiry stays with the merchant.

use serde::Serialize;

use crate::{AliasFormat, MockState, Storage};

/// How a card was laid out in the vault.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HyperswitchLayout {
    /// Hyperswitch's single-token mode.
    SingleToken,
    /// Hyperswitch's multi-token mode.
    MultiToken,
    /// VGS Collect's card number and CVC aliases.
    Collect,
}

impl HyperswitchLayout {
    /// Every layout.
    pub const ALL: [HyperswitchLayout; 3] = [
        HyperswitchLayout::SingleToken,
        HyperswitchLayout::MultiToken,
        HyperswitchLayout::Collect,
    ];
}

/// A card to lay out: its values as Hyperswitch holds them (strings). Its `Debug`
/// shows the last four and the expiry, never the number or the CVC.
#[derive(Clone, Serialize)]
pub struct LegacyCard {
    /// The card number.
    pub card_number: String,
    /// The expiry month (`"04"`).
    pub card_exp_month: String,
    /// The expiry year (`"2030"`).
    pub card_exp_year: String,
    /// The CVC.
    pub card_cvc: Option<String>,
}

impl std::fmt::Debug for LegacyCard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let digits = self.card_number.len();
        let last4 = self
            .card_number
            .get(digits.saturating_sub(4)..)
            .unwrap_or_default();
        f.debug_struct("LegacyCard")
            .field("card_number", &format_args!("****{last4}"))
            .field("card_exp_month", &self.card_exp_month)
            .field("card_exp_year", &self.card_exp_year)
            .field("card_cvc", &self.card_cvc.as_ref().map(|_| "[redacted]"))
            .finish()
    }
}

/// What Hyperswitch (or the merchant, for Collect) kept for a laid-out card, in
/// Hyperswitch's `VaultIdType` JSON (`{"SingleVaultId": …}` or
/// `{"MultiVauldIds": {"Card": {…}}}`), or Collect's aliases with the expiry.
pub fn legacy_id_json(stored: &LegacyStored) -> serde_json::Value {
    match stored {
        LegacyStored::Single(alias) => serde_json::json!({ "SingleVaultId": alias }),
        LegacyStored::Multi {
            card_number,
            card_exp_month,
            card_exp_year,
            card_cvc,
        } => serde_json::json!({ "MultiVauldIds": { "Card": {
            "tokenized_card_number": card_number,
            "tokenized_card_expiry_year": card_exp_year,
            "tokenized_card_expiry_month": card_exp_month,
            "tokenized_card_cvc": card_cvc,
        }}}),
        LegacyStored::Collect {
            card_number,
            card_cvc,
        } => serde_json::json!({
            "card_number": card_number,
            "card_cvc": card_cvc,
        }),
        LegacyStored::NetworkToken {
            token,
            exp_month,
            exp_year,
            cryptogram,
        } => serde_json::json!({ "MultiVauldIds": { "NetworkToken": {
            "tokenized_network_token": token,
            "tokenized_network_token_exp_year": exp_year,
            "tokenized_network_token_exp_month": exp_month,
            "tokenized_cryptogram": cryptogram,
        }}}),
    }
}

/// A network token to lay out as Hyperswitch's connector stores `NetworkTokenData`
/// (every value VOLATILE, classifiers `payment_token`, `token_expiry_month`,
/// `token_expiry_year`, `token_cryptogram`). Its `Debug` shows the last four only.
#[derive(Clone)]
pub struct LegacyNetworkToken {
    /// The token number.
    pub token: String,
    /// Its expiry month.
    pub exp_month: String,
    /// Its expiry year.
    pub exp_year: String,
    /// The cryptogram.
    pub cryptogram: Option<String>,
}

impl std::fmt::Debug for LegacyNetworkToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let last4 = self
            .token
            .get(self.token.len().saturating_sub(4)..)
            .unwrap_or_default();
        f.debug_struct("LegacyNetworkToken")
            .field("token", &format_args!("****{last4}"))
            .field("exp_month", &self.exp_month)
            .field("exp_year", &self.exp_year)
            .field(
                "cryptogram",
                &self.cryptogram.as_ref().map(|_| "[redacted]"),
            )
            .finish()
    }
}

/// The aliases of a laid-out card.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LegacyStored {
    /// Single-token: the record's alias.
    Single(String),
    /// Multi-token: one alias per field.
    Multi {
        /// The card number's alias.
        card_number: String,
        /// The expiry month's alias.
        card_exp_month: String,
        /// The expiry year's alias.
        card_exp_year: String,
        /// The CVC's alias.
        card_cvc: Option<String>,
    },
    /// Multi-token network token: one alias per field.
    NetworkToken {
        /// The token's alias.
        token: String,
        /// The expiry month's alias.
        exp_month: String,
        /// The expiry year's alias.
        exp_year: String,
        /// The cryptogram's alias.
        cryptogram: Option<String>,
    },
    /// Collect: the card number's and the CVC's aliases.
    Collect {
        /// The card number's alias (FPE_SIX_T_FOUR, persistent).
        card_number: String,
        /// The CVC's alias (volatile).
        card_cvc: Option<String>,
    },
}

impl MockState {
    /// Stores `token` in `vault` as Hyperswitch's connector does; `None` for an
    /// unknown vault, `Some(Err)` if the mock refused a value.
    pub fn store_legacy_network_token(
        &self,
        vault: &str,
        token: &LegacyNetworkToken,
    ) -> Option<Result<LegacyStored, String>> {
        let volatile = |value: &str, classifier: &str| {
            self.store_value(
                vault,
                value,
                &[classifier],
                AliasFormat::Uuid,
                Storage::Volatile,
            )
        };
        let number = volatile(&token.token, "payment_token")?;
        let month = volatile(&token.exp_month, "token_expiry_month")?;
        let year = volatile(&token.exp_year, "token_expiry_year")?;
        let cryptogram = match &token.cryptogram {
            Some(cryptogram) => Some(volatile(cryptogram, "token_cryptogram")?),
            None => None,
        };
        Some((|| {
            Ok(LegacyStored::NetworkToken {
                token: number?,
                exp_month: month?,
                exp_year: year?,
                cryptogram: cryptogram.transpose()?,
            })
        })())
    }

    /// Stores `card` in `vault` the way `layout` does; `None` for an unknown vault,
    /// `Some(Err)` if the mock refused a value (a card number its format cannot take).
    pub fn store_legacy_card(
        &self,
        vault: &str,
        card: &LegacyCard,
        layout: HyperswitchLayout,
    ) -> Option<Result<LegacyStored, String>> {
        let store = |value: &str, classifier: &str, format, storage| {
            self.store_value(vault, value, &[classifier], format, storage)
        };
        let volatile = |value: &str, classifier: &str| {
            store(value, classifier, AliasFormat::Uuid, Storage::Volatile)
        };
        let stored = match layout {
            HyperswitchLayout::SingleToken => {
                let json = serde_json::to_string(card).expect("strings serialise");
                store(&json, "data", AliasFormat::Uuid, Storage::Persistent)?
                    .map(LegacyStored::Single)
            }
            HyperswitchLayout::MultiToken => {
                let number = volatile(&card.card_number, "card_number")?;
                let month = volatile(&card.card_exp_month, "card_expiry_month")?;
                let year = volatile(&card.card_exp_year, "card_expiry_year")?;
                let cvc = match &card.card_cvc {
                    Some(cvc) => Some(volatile(cvc, "card_cvc")?),
                    None => None,
                };
                (|| {
                    Ok(LegacyStored::Multi {
                        card_number: number?,
                        card_exp_month: month?,
                        card_exp_year: year?,
                        card_cvc: cvc.transpose()?,
                    })
                })()
            }
            HyperswitchLayout::Collect => {
                let number = store(
                    &card.card_number,
                    "card_number",
                    AliasFormat::FpeSixTFour,
                    Storage::Persistent,
                )?;
                let cvc = match &card.card_cvc {
                    Some(cvc) => Some(volatile(cvc, "card_cvc")?),
                    None => None,
                };
                (|| {
                    Ok(LegacyStored::Collect {
                        card_number: number?,
                        card_cvc: cvc.transpose()?,
                    })
                })()
            }
        };
        Some(stored)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::MockConfig;

    fn card() -> LegacyCard {
        LegacyCard {
            card_number: "4111111111111111".to_owned(),
            card_exp_month: "04".to_owned(),
            card_exp_year: "2030".to_owned(),
            card_cvc: Some("123".to_owned()),
        }
    }

    #[test]
    fn debug_shows_no_card_number_or_cvc() {
        let shown = format!("{:?}", card());
        assert!(!shown.contains("411111111111"), "{shown}");
        assert!(!shown.contains("123"), "{shown}");
        assert!(shown.contains("****1111"), "{shown}");
    }

    #[test]
    fn each_layout_stores_what_hyperswitch_or_collect_would() {
        let state = MockState::new(MockConfig::demo());
        let vault = "tntdemo00001";
        let single = state
            .store_legacy_card(vault, &card(), HyperswitchLayout::SingleToken)
            .expect("vault")
            .expect("stored");
        let LegacyStored::Single(alias) = &single else {
            panic!("single: {single:?}")
        };
        let record = state.record(vault, alias).expect("record");
        assert_eq!(
            record.value,
            r#"{"card_number":"4111111111111111","card_exp_month":"04","card_exp_year":"2030","card_cvc":"123"}"#
        );
        assert_eq!(record.classifiers, ["data"]);
        assert_eq!(record.storage, Storage::Persistent);

        let multi = state
            .store_legacy_card(vault, &card(), HyperswitchLayout::MultiToken)
            .expect("vault")
            .expect("stored");
        let LegacyStored::Multi {
            card_number,
            card_exp_month,
            ..
        } = &multi
        else {
            panic!("multi: {multi:?}")
        };
        let number = state.record(vault, card_number).expect("number");
        assert_eq!(number.storage, Storage::Volatile);
        assert_eq!(number.classifiers, ["card_number"]);
        assert_eq!(
            state
                .record(vault, card_exp_month)
                .expect("month")
                .classifiers,
            ["card_expiry_month"]
        );
        let json = legacy_id_json(&multi);
        assert_eq!(
            json["MultiVauldIds"]["Card"]["tokenized_card_number"],
            card_number.as_str()
        );

        let collect = state
            .store_legacy_card(vault, &card(), HyperswitchLayout::Collect)
            .expect("vault")
            .expect("stored");
        let LegacyStored::Collect { card_number, .. } = &collect else {
            panic!("collect: {collect:?}")
        };
        assert_eq!(
            state.record(vault, card_number).expect("number").format,
            AliasFormat::FpeSixTFour
        );
        assert!(
            state
                .store_legacy_card("tntnope", &card(), HyperswitchLayout::Collect)
                .is_none()
        );
    }
}
