//! Hyperswitch's shapes (feature `hyperswitch`): vaultlink's requests, responses and
//! errors to and from the types Hyperswitch's external-vault flows use
//! (`hyperswitch_domain_models`: `VaultIdType`, `PaymentMethodVaultingData`,
//! `PaymentMethodCustomVaultingData`, `ErrorResponse`), in the JSON serde gives
//! them there (externally tagged enums, field names as written, `null` for absent
//! options). For an orchestrator built on Hyperswitch's types, or one migrating
//! from its VGS connector.
//!
//! - Ids: [`VaultIdType`] to and from [`ConnectorVaultId`]. A Hyperswitch
//!   `SingleVaultId` is either its own single-token alias or vaultlink's compact
//!   string (`vl1;…`, [`crate::compact`]): vaultlink writes every id as one
//!   `SingleVaultId` string, except a bare single-record id, which stays the alias
//!   Hyperswitch's own connector can read. `MultiVauldIds` (sic) are Hyperswitch's
//!   multi-token ids: every field VOLATILE, format UUID.
//! - Data: [`PaymentMethodVaultingData`] and [`PaymentMethodCustomVaultingData`]
//!   deserialise (validating, as the rest of vault-core does) into
//!   [`PaymentMethodData`]; [`RevealedVaultingData`] serialises a retrieved payment
//!   method back, secrets in clear, as an explicit act.
//! - Errors: [`ErrorResponse::from_report`] fills Hyperswitch's
//!   `ErrorResponse{code, message, reason, status_code}` from a vaultlink report,
//!   without card data (reports never hold any).

use std::fmt;

use error_stack::Report;
use serde::ser::SerializeStruct;
use serde::{Deserialize, Serialize, Serializer};

use crate::card::{Card, CardHolderName, CardNumber, Cvc, ExpiryMonth, ExpiryYear};
use crate::error::{ReportExt, VaultError};
use crate::flow::{
    CardField, ConnectorVaultId, FieldAlias, FieldAliases, InsertRequest, InsertResponse,
    PaymentMethodData, TokenizationMode,
};
use crate::payment_method::{CardFields, Cryptogram, NetworkToken};
use crate::validation::ValidationError;
use crate::vault::{Alias, AliasFormat, Storage};

/// Hyperswitch's `VaultIdType`: what it keeps as a payment method's
/// `connector_vault_id`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum VaultIdType {
    /// One string: a single-token alias, or vaultlink's compact id.
    SingleVaultId(String),
    /// Multi-token aliases (the variant's spelling is Hyperswitch's).
    MultiVauldIds(MultiVaultIdType),
}

/// Hyperswitch's `MultiVaultIdType`. Every field is optional here: Hyperswitch's
/// connector fills them from `Option`s, and some of its versions declare the card
/// number and expiry required; both read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum MultiVaultIdType {
    /// A card's aliases.
    Card {
        /// The card number's alias.
        #[serde(default)]
        tokenized_card_number: Option<String>,
        /// The expiry year's alias.
        #[serde(default)]
        tokenized_card_expiry_year: Option<String>,
        /// The expiry month's alias.
        #[serde(default)]
        tokenized_card_expiry_month: Option<String>,
        /// The CVC's alias.
        #[serde(default)]
        tokenized_card_cvc: Option<String>,
    },
    /// A network token's aliases.
    NetworkToken {
        /// The token's alias.
        #[serde(default)]
        tokenized_network_token: Option<String>,
        /// The token expiry year's alias.
        #[serde(default)]
        tokenized_network_token_exp_year: Option<String>,
        /// The token expiry month's alias.
        #[serde(default)]
        tokenized_network_token_exp_month: Option<String>,
        /// The cryptogram's alias.
        #[serde(default)]
        tokenized_cryptogram: Option<String>,
    },
}

fn alias_of(text: &str) -> Result<Alias, ValidationError> {
    Alias::new(text)
}

/// A Hyperswitch multi-token field: VOLATILE, format UUID, expiry unknown.
fn hyperswitch_field(alias: Alias) -> FieldAlias {
    FieldAlias::new(alias, AliasFormat::Uuid, Storage::Volatile)
}

impl TryFrom<&VaultIdType> for ConnectorVaultId {
    type Error = ValidationError;

    /// Reads a Hyperswitch id: vaultlink's compact string, a Hyperswitch single-token
    /// alias, or its multi-token aliases (each validated).
    fn try_from(id: &VaultIdType) -> Result<Self, Self::Error> {
        match id {
            VaultIdType::SingleVaultId(text) if text.starts_with("vl") && text.contains(';') => {
                text.parse()
            }
            VaultIdType::SingleVaultId(text) => Ok(ConnectorVaultId::Single {
                id: alias_of(text)?,
                cvc: None,
                cvc_expires_at: None,
            }),
            VaultIdType::MultiVauldIds(multi) => {
                let entries: Vec<(CardField, &Option<String>)> = match multi {
                    MultiVaultIdType::Card {
                        tokenized_card_number,
                        tokenized_card_expiry_year,
                        tokenized_card_expiry_month,
                        tokenized_card_cvc,
                    } => vec![
                        (CardField::CardNumber, tokenized_card_number),
                        (CardField::CardExpMonth, tokenized_card_expiry_month),
                        (CardField::CardExpYear, tokenized_card_expiry_year),
                        (CardField::CardCvc, tokenized_card_cvc),
                    ],
                    MultiVaultIdType::NetworkToken {
                        tokenized_network_token,
                        tokenized_network_token_exp_year,
                        tokenized_network_token_exp_month,
                        tokenized_cryptogram,
                    } => vec![
                        (CardField::NetworkToken, tokenized_network_token),
                        (
                            CardField::NetworkTokenExpMonth,
                            tokenized_network_token_exp_month,
                        ),
                        (
                            CardField::NetworkTokenExpYear,
                            tokenized_network_token_exp_year,
                        ),
                        (CardField::NetworkTokenCryptogram, tokenized_cryptogram),
                    ],
                };
                let mut fields = FieldAliases::new();
                for (field, alias) in entries {
                    if let Some(alias) = alias {
                        fields.insert(field, hyperswitch_field(alias_of(alias)?));
                    }
                }
                if fields.is_empty() {
                    return Err(ValidationError::VaultIdString(
                        "the multi-token id holds no alias".to_owned(),
                    ));
                }
                Ok(ConnectorVaultId::Multi(fields))
            }
        }
    }
}

impl VaultIdType {
    /// Hyperswitch's multi-token form of a per-field id, for code that reads
    /// `MultiVauldIds` (it keeps aliases only: formats, storage and expiries are
    /// Hyperswitch's assumptions again when read back); `None` for a single id, or
    /// a per-field id with fields of both a card and a network token.
    pub fn multi_token(id: &ConnectorVaultId) -> Option<Self> {
        let ConnectorVaultId::Multi(fields) = id else {
            return None;
        };
        let alias = |field| {
            fields
                .get(&field)
                .map(|f: &FieldAlias| f.alias.as_str().to_owned())
        };
        let token = fields.keys().any(CardField::is_network_token);
        let card = fields.keys().any(|f| !f.is_network_token());
        let multi = match (card, token) {
            (true, false) => MultiVaultIdType::Card {
                tokenized_card_number: alias(CardField::CardNumber),
                tokenized_card_expiry_year: alias(CardField::CardExpYear),
                tokenized_card_expiry_month: alias(CardField::CardExpMonth),
                tokenized_card_cvc: alias(CardField::CardCvc),
            },
            (false, true) => MultiVaultIdType::NetworkToken {
                tokenized_network_token: alias(CardField::NetworkToken),
                tokenized_network_token_exp_year: alias(CardField::NetworkTokenExpYear),
                tokenized_network_token_exp_month: alias(CardField::NetworkTokenExpMonth),
                tokenized_cryptogram: alias(CardField::NetworkTokenCryptogram),
            },
            _ => return None,
        };
        Some(VaultIdType::MultiVauldIds(multi))
    }
}

impl From<&ConnectorVaultId> for VaultIdType {
    /// One `SingleVaultId` string: the compact id, or, for a bare single record, its
    /// alias (what Hyperswitch's own connector keeps and reads).
    fn from(id: &ConnectorVaultId) -> Self {
        match id {
            ConnectorVaultId::Single {
                id: alias,
                cvc: None,
                ..
            } => VaultIdType::SingleVaultId(alias.as_str().to_owned()),
            other => VaultIdType::SingleVaultId(other.to_string()),
        }
    }
}

/// Hyperswitch's `ExternalVaultInsertResponse` variant of `VaultResponseData`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExternalVaultInsertResponse {
    /// What to keep for the payment method.
    pub connector_vault_id: VaultIdType,
    /// Its fingerprint (always present).
    pub fingerprint_id: String,
}

impl From<&InsertResponse> for ExternalVaultInsertResponse {
    fn from(response: &InsertResponse) -> Self {
        ExternalVaultInsertResponse {
            connector_vault_id: VaultIdType::from(&response.connector_vault_id),
            fingerprint_id: response.fingerprint.0.clone(),
        }
    }
}

/// `CardDetail` (api_models), as Hyperswitch reads it: number and expiry required,
/// the rest optional, unknown keys refused. The descriptive fields are accepted and
/// dropped.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)] // the descriptive fields are read only so that other keys stay refused
struct CardDetailWire {
    card_number: CardNumber,
    card_exp_month: ExpiryMonth,
    card_exp_year: ExpiryYear,
    #[serde(default)]
    card_cvc: Option<Cvc>,
    #[serde(default)]
    card_holder_name: Option<CardHolderName>,
    #[serde(default)]
    nick_name: Option<serde::de::IgnoredAny>,
    #[serde(default)]
    card_issuing_country: Option<serde::de::IgnoredAny>,
    #[serde(default)]
    card_network: Option<serde::de::IgnoredAny>,
    #[serde(default)]
    card_issuer: Option<serde::de::IgnoredAny>,
    #[serde(default)]
    card_type: Option<serde::de::IgnoredAny>,
}

impl From<CardDetailWire> for Card {
    fn from(detail: CardDetailWire) -> Self {
        Card {
            number: detail.card_number,
            exp_month: detail.card_exp_month,
            exp_year: detail.card_exp_year,
            cvc: detail.card_cvc,
            holder_name: detail.card_holder_name,
        }
    }
}

/// `NetworkTokenDetails` (domain models): token and expiry required.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)] // the descriptive fields are read only so that other keys stay refused
struct NetworkTokenDetailsWire {
    network_token: CardNumber,
    network_token_exp_month: ExpiryMonth,
    network_token_exp_year: ExpiryYear,
    #[serde(default)]
    cryptogram: Option<CryptogramWire>,
    #[serde(default)]
    card_issuer: Option<serde::de::IgnoredAny>,
    #[serde(default)]
    card_network: Option<serde::de::IgnoredAny>,
    #[serde(default)]
    card_type: Option<serde::de::IgnoredAny>,
    #[serde(default)]
    card_issuing_country: Option<serde::de::IgnoredAny>,
    #[serde(default)]
    card_holder_name: Option<serde::de::IgnoredAny>,
    #[serde(default)]
    nick_name: Option<serde::de::IgnoredAny>,
}

/// A cryptogram read from JSON, refused without echoing it.
struct CryptogramWire(Cryptogram);

impl<'de> Deserialize<'de> for CryptogramWire {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        /// Takes a string only, and says so without quoting what it got.
        struct Text;
        impl serde::de::Visitor<'_> for Text {
            type Value = CryptogramWire;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a cryptogram string")
            }
            fn visit_str<E: serde::de::Error>(self, text: &str) -> Result<Self::Value, E> {
                Cryptogram::new(text).map(CryptogramWire).map_err(E::custom)
            }
            fn visit_u64<E: serde::de::Error>(self, _: u64) -> Result<Self::Value, E> {
                Err(E::custom(
                    "the cryptogram must be a JSON string, not a number",
                ))
            }
            fn visit_i64<E: serde::de::Error>(self, _: i64) -> Result<Self::Value, E> {
                Err(E::custom(
                    "the cryptogram must be a JSON string, not a number",
                ))
            }
            fn visit_f64<E: serde::de::Error>(self, _: f64) -> Result<Self::Value, E> {
                Err(E::custom(
                    "the cryptogram must be a JSON string, not a number",
                ))
            }
        }
        deserializer.deserialize_any(Text)
    }
}

/// `PaymentMethodVaultingData` as JSON: `{"Card": CardDetail}`,
/// `{"NetworkToken": NetworkTokenDetails}` or `{"CardNumber": "…"}`.
#[derive(Deserialize)]
enum VaultingDataWire {
    Card(CardDetailWire),
    NetworkToken(NetworkTokenDetailsWire),
    CardNumber(CardNumber),
}

/// Hyperswitch's `PaymentMethodVaultingData`, read (validating) into a vaultlink
/// payment method: a card, a network token, or a card number alone
/// ([`PaymentMethodData::CardFields`]). Serialise a payment method back with
/// [`RevealedVaultingData`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PaymentMethodVaultingData(pub PaymentMethodData);

impl<'de> Deserialize<'de> for PaymentMethodVaultingData {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Ok(PaymentMethodVaultingData(
            match VaultingDataWire::deserialize(deserializer)? {
                VaultingDataWire::Card(detail) => PaymentMethodData::Card(detail.into()),
                VaultingDataWire::NetworkToken(token) => {
                    PaymentMethodData::NetworkToken(token.into())
                }
                VaultingDataWire::CardNumber(number) => {
                    PaymentMethodData::CardFields(CardFields::number(number))
                }
            },
        ))
    }
}

impl From<NetworkTokenDetailsWire> for NetworkToken {
    fn from(token: NetworkTokenDetailsWire) -> Self {
        NetworkToken {
            token: token.network_token,
            exp_month: token.network_token_exp_month,
            exp_year: token.network_token_exp_year,
            cryptogram: token.cryptogram.map(|c| c.0),
        }
    }
}

/// `CardCustomData`: every field optional.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CardCustomDataWire {
    #[serde(default)]
    card_number: Option<CardNumber>,
    #[serde(default)]
    card_exp_month: Option<ExpiryMonth>,
    #[serde(default)]
    card_exp_year: Option<ExpiryYear>,
    #[serde(default)]
    card_cvc: Option<Cvc>,
}

/// `NetworkTokenCustomData`: every field optional.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NetworkTokenCustomDataWire {
    #[serde(default)]
    network_token: Option<CardNumber>,
    #[serde(default)]
    network_token_exp_month: Option<ExpiryMonth>,
    #[serde(default)]
    network_token_exp_year: Option<ExpiryYear>,
    #[serde(default)]
    cryptogram: Option<CryptogramWire>,
}

#[derive(Deserialize)]
enum CustomVaultingDataWire {
    CardData(CardCustomDataWire),
    NetworkTokenData(NetworkTokenCustomDataWire),
}

/// Hyperswitch's `PaymentMethodCustomVaultingData` (what its vault insert flow
/// takes: `{"CardData": {…}}` or `{"NetworkTokenData": {…}}`, every field
/// optional), read into a vaultlink payment method: a whole card when number and
/// expiry are there, else [`PaymentMethodData::CardFields`] (a CVC alone, a number
/// alone); a network token needs its token and expiry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PaymentMethodCustomVaultingData(pub PaymentMethodData);

impl<'de> Deserialize<'de> for PaymentMethodCustomVaultingData {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        Ok(PaymentMethodCustomVaultingData(
            match CustomVaultingDataWire::deserialize(deserializer)? {
                CustomVaultingDataWire::CardData(card) => {
                    let fields = CardFields {
                        number: card.card_number,
                        exp_month: card.card_exp_month,
                        exp_year: card.card_exp_year,
                        cvc: card.card_cvc,
                        holder_name: None,
                    };
                    if fields.is_empty() {
                        return Err(D::Error::custom("the card data holds no field"));
                    }
                    match fields.into_card() {
                        Ok(card) => PaymentMethodData::Card(card),
                        Err(fields) => PaymentMethodData::CardFields(fields),
                    }
                }
                CustomVaultingDataWire::NetworkTokenData(token) => {
                    match (
                        token.network_token,
                        token.network_token_exp_month,
                        token.network_token_exp_year,
                    ) {
                        (Some(number), Some(month), Some(year)) => {
                            let mut built = NetworkToken::new(number, month, year);
                            built.cryptogram = token.cryptogram.map(|c| c.0);
                            PaymentMethodData::NetworkToken(built)
                        }
                        _ => {
                            return Err(D::Error::custom(
                                "network token data needs network_token, network_token_exp_month and network_token_exp_year",
                            ));
                        }
                    }
                }
            },
        ))
    }
}

impl PaymentMethodCustomVaultingData {
    /// The insert Hyperswitch's vault flow asks for: one record
    /// ([`TokenizationMode::SingleId`]) unless `should_generate_multiple_tokens`,
    /// which is per field (vaultlink's default, and what card fields and network
    /// tokens always use). The CVC is stored volatile in both, never inside the
    /// record as Hyperswitch's single-token mode did.
    pub fn into_insert_request(
        self,
        should_generate_multiple_tokens: Option<bool>,
    ) -> InsertRequest {
        let request = InsertRequest::new(self.0);
        match (&request.payment_method, should_generate_multiple_tokens) {
            (PaymentMethodData::Card(_), Some(false) | None) => {
                request.with_mode(TokenizationMode::SingleId)
            }
            _ => request,
        }
    }

    /// The insert for fields of a card already stored (Hyperswitch's card data with
    /// only a CVC, re-entered by the customer): the response is `card`'s id with the
    /// new aliases in place of its old ones ([`InsertRequest::cvc_for`]).
    pub fn into_insert_request_for(self, card: ConnectorVaultId) -> InsertRequest {
        let mut request = InsertRequest::new(match self.0 {
            // A whole card for a stored card: its fields, stored per field.
            PaymentMethodData::Card(card) => PaymentMethodData::CardFields(card.into()),
            other => other,
        });
        request.for_card = Some(card);
        request
    }
}

/// Serialises a retrieved payment method as Hyperswitch's
/// `PaymentMethodVaultingData` JSON, **secrets in clear** (so it is an explicit
/// wrapper, like [`RevealedCard`](crate::RevealedCard)): `{"Card": CardDetail}`,
/// `{"NetworkToken": …}` or `{"CardNumber": "…"}`. Card fields without a number
/// and aliases-only cards have no Hyperswitch form: serialising them fails.
pub struct RevealedVaultingData<'a>(pub &'a PaymentMethodData);

impl Serialize for RevealedVaultingData<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::Error;
        match self.0 {
            PaymentMethodData::Card(card) => serializer.serialize_newtype_variant(
                "PaymentMethodVaultingData",
                0,
                "Card",
                &CardDetailOut(card),
            ),
            PaymentMethodData::NetworkToken(token) => serializer.serialize_newtype_variant(
                "PaymentMethodVaultingData",
                1,
                "NetworkToken",
                &NetworkTokenOut(token),
            ),
            PaymentMethodData::CardFields(CardFields {
                number: Some(number),
                ..
            }) => serializer.serialize_newtype_variant(
                "PaymentMethodVaultingData",
                2,
                "CardNumber",
                number.expose_secret(),
            ),
            other => Err(S::Error::custom(format!(
                "{} have no Hyperswitch PaymentMethodVaultingData form",
                other.kind()
            ))),
        }
    }
}

struct CardDetailOut<'a>(&'a Card);

impl Serialize for CardDetailOut<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let card = self.0;
        let mut state = serializer.serialize_struct("CardDetail", 10)?;
        state.serialize_field("card_number", card.number.expose_secret())?;
        state.serialize_field("card_exp_month", &card.exp_month.two_digits())?;
        state.serialize_field("card_exp_year", &card.exp_year.get().to_string())?;
        state.serialize_field("card_cvc", &card.cvc.as_ref().map(Cvc::expose_secret))?;
        state.serialize_field(
            "card_holder_name",
            &card.holder_name.as_ref().map(CardHolderName::expose_secret),
        )?;
        for absent in [
            "nick_name",
            "card_issuing_country",
            "card_network",
            "card_issuer",
            "card_type",
        ] {
            state.serialize_field(absent, &None::<()>)?;
        }
        state.end()
    }
}

struct NetworkTokenOut<'a>(&'a NetworkToken);

impl Serialize for NetworkTokenOut<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let token = self.0;
        let mut state = serializer.serialize_struct("NetworkTokenDetails", 10)?;
        state.serialize_field("network_token", token.token.expose_secret())?;
        state.serialize_field("network_token_exp_month", &token.exp_month.two_digits())?;
        state.serialize_field("network_token_exp_year", &token.exp_year.get().to_string())?;
        state.serialize_field(
            "cryptogram",
            &token.cryptogram.as_ref().map(Cryptogram::expose_secret),
        )?;
        for absent in [
            "card_issuer",
            "card_network",
            "card_type",
            "card_issuing_country",
            "card_holder_name",
            "nick_name",
        ] {
            state.serialize_field(absent, &None::<()>)?;
        }
        state.end()
    }
}

/// Hyperswitch's `ErrorResponse` (router_data), the fields a connector fills.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorResponse {
    /// A stable code: vaultlink's [`VaultError::code`] (`"alias_not_found"`).
    pub code: String,
    /// What failed, in a sentence.
    pub message: String,
    /// The details and the fix.
    pub reason: Option<String>,
    /// The vault's HTTP status, else the status the kind stands for.
    pub status_code: u16,
    /// Hyperswitch's attempt status: never set for vault flows.
    pub attempt_status: Option<String>,
    /// Hyperswitch's connector transaction id: the vault's trace id, if any.
    pub connector_transaction_id: Option<String>,
}

impl ErrorResponse {
    /// Hyperswitch's `ErrorResponse` for a vaultlink failure. Reports hold no card
    /// data, so neither does this.
    pub fn from_report(report: &Report<VaultError>) -> Self {
        let kind = report.kind();
        let details = report.details();
        let reason = if details.is_empty() {
            format!("Fix: {}", kind.fix())
        } else {
            format!("{}. Fix: {}", details.join("; "), kind.fix())
        };
        ErrorResponse {
            code: kind.code().to_owned(),
            message: kind.to_string(),
            reason: Some(reason),
            status_code: report.http_status().unwrap_or_else(|| status_of(kind)),
            attempt_status: None,
            connector_transaction_id: report.trace_id().map(str::to_owned),
        }
    }
}

impl ErrorResponse {
    /// The vaultlink kind an `ErrorResponse` written by [`ErrorResponse::from_report`]
    /// stands for (by its `code`); `None` for another connector's codes.
    pub fn kind(&self) -> Option<VaultError> {
        VaultError::ALL
            .into_iter()
            .find(|kind| kind.code() == self.code)
    }

    /// Whether the failed call may succeed if made again later: the kind's answer, or
    /// for another connector's codes, a 429 or a 5xx other than 500 (as Hyperswitch
    /// treats them).
    pub fn is_retryable(&self) -> bool {
        match self.kind() {
            Some(kind) => kind.is_retryable(),
            None => self.status_code == 429 || (self.status_code > 500 && self.status_code < 600),
        }
    }
}

/// The HTTP status a kind stands for when the vault gave none.
fn status_of(kind: VaultError) -> u16 {
    match kind {
        VaultError::InvalidConfig => 500,
        VaultError::InvalidRequest => 400,
        VaultError::InvalidCredentials => 401,
        VaultError::Forbidden | VaultError::RevealDisabled => 403,
        VaultError::VaultNotFound | VaultError::AliasNotFound => 404,
        VaultError::RateLimited => 429,
        VaultError::Timeout => 504,
        VaultError::Transport | VaultError::Upstream | VaultError::UnexpectedResponse => 502,
        VaultError::ServerError
        | VaultError::InsertOutcomeUnknown
        | VaultError::ForwardOutcomeUnknown => 500,
    }
}

impl fmt::Display for ErrorResponse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({}): {}", self.code, self.status_code, self.message)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::error::{Detail, HttpStatus, TraceId};
    use serde_json::Value;

    fn shapes() -> Value {
        serde_json::from_str(include_str!("../../../fixtures/hyperswitch/shapes.json"))
            .expect("fixture is JSON")
    }

    fn shape<T: serde::de::DeserializeOwned>(name: &str) -> T {
        serde_json::from_value(shapes()[name].clone()).unwrap_or_else(|e| panic!("{name}: {e}"))
    }

    #[test]
    fn ids_read_from_each_hyperswitch_form_and_go_back_as_one_string() {
        let single: VaultIdType = shape("vault_id_single");
        let id = ConnectorVaultId::try_from(&single).expect("single");
        assert!(
            matches!(&id, ConnectorVaultId::Single { id, cvc: None, .. } if id.as_str() == "tok_sandbox_5kTzQmtFvF6XvQ3hP2uXzA")
        );
        // A bare single record stays the alias Hyperswitch's connector reads.
        assert_eq!(VaultIdType::from(&id), single);

        let multi: VaultIdType = shape("vault_id_multi_card");
        let id = ConnectorVaultId::try_from(&multi).expect("multi");
        let ConnectorVaultId::Multi(fields) = &id else {
            panic!("{id:?}")
        };
        assert_eq!(
            fields.keys().copied().collect::<Vec<_>>(),
            [
                CardField::CardNumber,
                CardField::CardExpMonth,
                CardField::CardExpYear
            ]
        );
        assert!(
            fields
                .values()
                .all(|f| f.storage == Storage::Volatile && f.format == AliasFormat::Uuid)
        );
        assert_eq!(
            fields[&CardField::CardExpMonth].alias.as_str(),
            "tok_sandbox_f2LrT8bV4cX7mN1pQ9sW3k"
        );
        // Back as one compact string, which reads to the same id.
        let VaultIdType::SingleVaultId(text) = VaultIdType::from(&id) else {
            panic!("one string")
        };
        assert!(text.starts_with("vl1;m;"), "{text}");
        let again = ConnectorVaultId::try_from(&VaultIdType::SingleVaultId(text)).expect("compact");
        assert_eq!(again, id);

        // And Hyperswitch's own multi-token form, written back the same.
        assert_eq!(VaultIdType::multi_token(&id), Some(multi));

        let token: VaultIdType = shape("vault_id_multi_network_token");
        let id = ConnectorVaultId::try_from(&token).expect("token");
        assert_eq!(VaultIdType::multi_token(&id).as_ref(), Some(&token));
        assert_eq!(id.fingerprint().0, "tok_sandbox_h7KdW3pM9qR2tV6yB1nX4c");
        assert!(id.field(CardField::NetworkTokenCryptogram).is_some());
    }

    #[test]
    fn a_bad_alias_or_an_empty_multi_id_is_refused() {
        let bad = VaultIdType::SingleVaultId("not an alias".to_owned());
        assert!(ConnectorVaultId::try_from(&bad).is_err());
        let empty = VaultIdType::MultiVauldIds(MultiVaultIdType::Card {
            tokenized_card_number: None,
            tokenized_card_expiry_year: None,
            tokenized_card_expiry_month: None,
            tokenized_card_cvc: None,
        });
        let err = ConnectorVaultId::try_from(&empty).expect_err("empty");
        assert!(err.to_string().contains("holds no alias"), "{err}");
    }

    #[test]
    fn vaulting_data_reads_cards_numbers_and_tokens_and_goes_back_the_same() {
        for (name, kind) in [
            ("vaulting_data_card", "card"),
            ("vaulting_data_card_number", "card fields"),
            ("vaulting_data_network_token", "network token"),
        ] {
            let data: PaymentMethodVaultingData = shape(name);
            assert_eq!(data.0.kind(), kind, "{name}");
            let back = serde_json::to_value(RevealedVaultingData(&data.0)).expect("serialise");
            let expected = shapes()[name].clone();
            // Descriptive fields are not kept: they come back null.
            let mut expected_kept = expected.clone();
            if let Some(object) = expected_kept
                .as_object_mut()
                .and_then(|o| o.values_mut().next())
                .and_then(Value::as_object_mut)
            {
                object.insert("card_network".to_owned(), Value::Null);
            }
            assert_eq!(back, expected_kept, "{name}");
        }
        let card: PaymentMethodVaultingData = shape("vaulting_data_card");
        let PaymentMethodData::Card(card) = card.0 else {
            panic!("card")
        };
        assert_eq!(card.holder_name.expect("name").expose_secret(), "John Doe");
        assert_eq!(card.exp_month.get(), 3);
    }

    #[test]
    fn vaulting_data_that_fails_validation_or_has_unknown_keys_is_refused_without_the_value() {
        let numeric = serde_json::json!({"NetworkTokenData": {"cryptogram": 98765432109876543u64}});
        let err =
            serde_json::from_value::<PaymentMethodCustomVaultingData>(numeric).expect_err("number");
        assert!(!err.to_string().contains("9876543210"), "{err}");
        let luhn = serde_json::json!({"Card": {"card_number": "4111111111111112", "card_exp_month": "03", "card_exp_year": "2030"}});
        let err = serde_json::from_value::<PaymentMethodVaultingData>(luhn).expect_err("luhn");
        assert!(!err.to_string().contains("411111111111"), "{err}");
        let unknown = serde_json::json!({"Card": {"card_number": "4111111111111111", "card_exp_month": "03", "card_exp_year": "2030", "colour": "blue"}});
        assert!(serde_json::from_value::<PaymentMethodVaultingData>(unknown).is_err());
        let aliases_only = PaymentMethodData::CardFields(CardFields::cvc(Cvc::new("123").unwrap()));
        let err = serde_json::to_string(&RevealedVaultingData(&aliases_only)).expect_err("no form");
        assert!(
            err.to_string().contains("card fields have no Hyperswitch"),
            "{err}"
        );
    }

    #[test]
    fn custom_vaulting_data_maps_to_the_insert_hyperswitch_asks_for() {
        let card: PaymentMethodCustomVaultingData = shape("custom_vaulting_card");
        let single = card.clone().into_insert_request(None);
        assert_eq!(single.mode, TokenizationMode::SingleId);
        assert!(matches!(&single.payment_method, PaymentMethodData::Card(c) if c.cvc.is_some()));
        assert_eq!(
            card.into_insert_request(Some(true)).mode,
            TokenizationMode::PerField
        );

        let cvc: PaymentMethodCustomVaultingData = shape("custom_vaulting_cvc_only");
        let stored = ConnectorVaultId::Single {
            id: Alias::new("tok_sandbox_card").unwrap(),
            cvc: None,
            cvc_expires_at: None,
        };
        let for_card = cvc.clone().into_insert_request_for(stored.clone());
        assert_eq!(for_card.for_card, Some(stored));
        let request = cvc.into_insert_request(None);
        assert_eq!(request.mode, TokenizationMode::PerField);
        let PaymentMethodData::CardFields(fields) = &request.payment_method else {
            panic!("fields")
        };
        assert!(fields.cvc.is_some() && fields.number.is_none());

        let token: PaymentMethodCustomVaultingData = shape("custom_vaulting_network_token");
        assert_eq!(token.0.kind(), "network token");
        let partial =
            serde_json::json!({"NetworkTokenData": {"network_token": "4895370012003478"}});
        let err = serde_json::from_value::<PaymentMethodCustomVaultingData>(partial)
            .expect_err("partial");
        assert!(err.to_string().contains("network_token_exp_month"), "{err}");
        let empty = serde_json::json!({"CardData": {}});
        assert!(serde_json::from_value::<PaymentMethodCustomVaultingData>(empty).is_err());
    }

    #[test]
    fn errors_fill_hyperswitchs_error_response() {
        let report = Report::new(VaultError::AliasNotFound)
            .attach(HttpStatus(404))
            .attach(TraceId("1c2e3a4b5d6f".to_owned()))
            .attach(Detail::new(
                "the alias tok_sandbox_x is not in vault tntdemo00001",
            ));
        let response = ErrorResponse::from_report(&report);
        let expected: ErrorResponse = shape("error_response_alias_not_found");
        assert_eq!(response, expected);
        assert_eq!(expected.kind(), Some(VaultError::AliasNotFound));
        assert!(!expected.is_retryable());
        let no_status = ErrorResponse::from_report(&Report::new(VaultError::RateLimited));
        assert_eq!(no_status.status_code, 429);
        assert_eq!(no_status.code, "rate_limited");
        // Back: every kind's response names its kind.
        for kind in VaultError::ALL {
            let response = ErrorResponse::from_report(&Report::new(kind));
            assert_eq!(response.kind(), Some(kind));
            assert_eq!(response.is_retryable(), kind.is_retryable(), "{kind:?}");
        }
        let other = ErrorResponse {
            code: "HE_00".to_owned(),
            message: "Something went wrong".to_owned(),
            reason: None,
            status_code: 503,
            attempt_status: None,
            connector_transaction_id: None,
        };
        assert_eq!(other.kind(), None);
        assert!(other.is_retryable());
    }

    #[test]
    fn an_insert_response_is_hyperswitchs_with_its_fingerprint() {
        let mut fields = FieldAliases::new();
        fields.insert(
            CardField::CardNumber,
            FieldAlias::new(
                Alias::new("4111119970481111").unwrap(),
                AliasFormat::FpeSixTFour,
                Storage::Persistent,
            ),
        );
        let response = InsertResponse::new(ConnectorVaultId::Multi(fields));
        let json = serde_json::to_value(ExternalVaultInsertResponse::from(&response)).unwrap();
        assert_eq!(
            json,
            serde_json::json!({
                "connector_vault_id": {"SingleVaultId": "vl1;m;n=4111119970481111,P,FPE_SIX_T_FOUR"},
                "fingerprint_id": "4111119970481111"
            })
        );
    }
}
