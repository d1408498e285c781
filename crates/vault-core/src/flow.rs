//! The `ExternalVault` trait, its flow marker types (`Insert`, `Retrieve`, `Delete`) and
//! the per-flow request/response data, in the shape of Hyperswitch's vault flows.

use std::collections::BTreeMap;
use std::fmt;

use async_trait::async_trait;

use crate::card::Card;
use crate::card_object::CardAliases;
use crate::error::VaultResult;
use crate::vault::{Alias, AliasFormat, Storage};

/// A vault connector as a payment orchestrator uses it: `Arc<dyn ExternalVault>`.
///
/// Implementations are cheap to share across tasks and safe to call concurrently.
#[async_trait]
pub trait ExternalVault: Send + Sync {
    /// Stores a payment method's fields and returns the vault's identifiers for them.
    async fn insert(&self, request: InsertRequest) -> VaultResult<InsertResponse>;

    /// Turns identifiers returned by [`ExternalVault::insert`] back into the payment
    /// method.
    async fn retrieve(&self, request: RetrieveRequest) -> VaultResult<RetrieveResponse>;

    /// Removes what [`ExternalVault::insert`] stored.
    async fn delete(&self, request: DeleteRequest) -> VaultResult<DeleteResponse>;
}

/// A vault flow: ties a marker type to its request and response, so a connector's
/// per-flow pieces (URL, body, parsing) can be written as pure functions per flow.
pub trait Flow: Send + Sync + 'static {
    /// What the orchestrator hands in.
    type Request: Send;
    /// What the orchestrator gets back.
    type Response: Send;
    /// The flow's name for logs and spans (`"insert"`).
    const NAME: &'static str;
}

/// Marker for the insert flow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Insert;

/// Marker for the retrieve flow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retrieve;

/// Marker for the delete flow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Delete;

impl Flow for Insert {
    type Request = InsertRequest;
    type Response = InsertResponse;
    const NAME: &'static str = "insert";
}

impl Flow for Retrieve {
    type Request = RetrieveRequest;
    type Response = RetrieveResponse;
    const NAME: &'static str = "retrieve";
}

impl Flow for Delete {
    type Request = DeleteRequest;
    type Response = DeleteResponse;
    const NAME: &'static str = "delete";
}

/// The payment method to store. A card first; more kinds may follow.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum PaymentMethodData {
    /// A payment card.
    Card(Card),
    /// A card as a card-object vault shows it to a client that may not see it in
    /// clear (VGS CMP without `cards:read-pci`): aliases, BIN, last four, expiry and
    /// CVC status, never the number or the CVC. Retrieve returns it instead of
    /// [`PaymentMethodData::Card`] for such clients; the orchestrator can still route
    /// on it and forward the aliases through the vault's proxy. (A CMP insert also
    /// accepts it, to make a card object from aliases already in the vault.)
    CardAliases(CardAliases),
}

/// How the fields of a payment method map to vault records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum TokenizationMode {
    /// One alias per field (card number, CVC, expiry month, expiry year, holder
    /// name), each with its own format and storage. The default.
    #[default]
    PerField,
    /// One vault id for the whole payment method. The CVC, if any, is still kept in a
    /// separate volatile record.
    SingleId,
}

/// A field of a card, as a key of [`FieldAliases`]. The names are Hyperswitch's card
/// field names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "snake_case"))]
pub enum CardField {
    /// The card number.
    CardNumber,
    /// The expiry month.
    CardExpMonth,
    /// The expiry year.
    CardExpYear,
    /// The CVC (always stored volatile).
    CardCvc,
    /// The holder name.
    CardHolderName,
}

impl CardField {
    /// The Hyperswitch field name (`"card_number"`).
    pub const fn as_str(&self) -> &'static str {
        match self {
            CardField::CardNumber => "card_number",
            CardField::CardExpMonth => "card_exp_month",
            CardField::CardExpYear => "card_exp_year",
            CardField::CardCvc => "card_cvc",
            CardField::CardHolderName => "card_holder_name",
        }
    }
}

impl fmt::Display for CardField {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One stored field: its alias, the alias's format and how the vault keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct FieldAlias {
    /// The alias the vault returned.
    pub alias: Alias,
    /// Its format.
    pub format: AliasFormat,
    /// How the vault keeps the value.
    pub storage: Storage,
}

/// Field -> alias, for [`ConnectorVaultId::Multi`].
pub type FieldAliases = BTreeMap<CardField, FieldAlias>;

/// What the vault returned for a stored payment method: the orchestrator keeps this
/// instead of the card (Hyperswitch's `connector_vault_id`).
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(tag = "type", rename_all = "snake_case"))]
pub enum ConnectorVaultId {
    /// One id for the whole payment method, plus the volatile CVC's alias if a CVC
    /// was stored.
    Single {
        /// The id of the record that holds the payment method.
        id: Alias,
        /// The alias of the separately stored, volatile CVC.
        #[cfg_attr(
            feature = "serde",
            serde(default, skip_serializing_if = "Option::is_none")
        )]
        cvc: Option<Alias>,
    },
    /// One alias per field.
    Multi(FieldAliases),
}

impl ConnectorVaultId {
    /// Every alias this id refers to (the record id and CVC for `Single`).
    pub fn aliases(&self) -> Vec<&Alias> {
        match self {
            ConnectorVaultId::Single { id, cvc } => std::iter::once(id).chain(cvc).collect(),
            ConnectorVaultId::Multi(fields) => fields.values().map(|f| &f.alias).collect(),
        }
    }
}

/// A fingerprint of the stored value, when the vault returns one (same card ->
/// same fingerprint). Not secret.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(transparent))]
pub struct Fingerprint(pub String);

/// Insert: the payment method and how to map it to vault records.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct InsertRequest {
    /// What to store.
    pub payment_method: PaymentMethodData,
    /// One alias per field (default) or one id.
    pub mode: TokenizationMode,
}

impl InsertRequest {
    /// Stores a card, one alias per field.
    pub fn card(card: Card) -> Self {
        InsertRequest::new(PaymentMethodData::Card(card))
    }

    /// Stores any payment method (e.g. [`PaymentMethodData::CardAliases`] in a
    /// card-object vault), in the default mode.
    pub fn new(payment_method: PaymentMethodData) -> Self {
        InsertRequest {
            payment_method,
            mode: TokenizationMode::PerField,
        }
    }

    /// Sets the tokenization mode.
    pub fn with_mode(mut self, mode: TokenizationMode) -> Self {
        self.mode = mode;
        self
    }
}

/// Insert's result.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct InsertResponse {
    /// What to keep in place of the payment method.
    pub connector_vault_id: ConnectorVaultId,
    /// The vault's fingerprint of the card number, when it gives one.
    pub fingerprint: Option<Fingerprint>,
    /// True when the vault said the payment method was already stored and returned
    /// the existing identifiers (duplicate check).
    pub already_stored: bool,
    /// What a card-object vault (VGS CMP) returned beside the card id: the PAN and
    /// CVC aliases, BIN, last four, expiry. `None` for per-field aliases.
    pub card_aliases: Option<CardAliases>,
}

impl InsertResponse {
    /// A fresh insert result.
    pub fn new(connector_vault_id: ConnectorVaultId) -> Self {
        InsertResponse {
            connector_vault_id,
            fingerprint: None,
            already_stored: false,
            card_aliases: None,
        }
    }

    /// Adds the fingerprint.
    pub fn with_fingerprint(mut self, fingerprint: Fingerprint) -> Self {
        self.fingerprint = Some(fingerprint);
        self
    }

    /// Marks the result as an already stored payment method.
    pub fn already_stored(mut self) -> Self {
        self.already_stored = true;
        self
    }

    /// Adds what a card-object vault returned beside the card id.
    pub fn with_card_aliases(mut self, card_aliases: CardAliases) -> Self {
        self.card_aliases = Some(card_aliases);
        self
    }
}

/// Retrieve: what insert returned.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct RetrieveRequest {
    /// The identifiers insert returned.
    pub connector_vault_id: ConnectorVaultId,
}

impl RetrieveRequest {
    /// Retrieves by what insert returned.
    pub fn new(connector_vault_id: ConnectorVaultId) -> Self {
        RetrieveRequest { connector_vault_id }
    }
}

/// Retrieve's result: the payment method, rebuilt and validated. A CVC whose
/// volatile record has expired comes back as `None`, not as an error.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct RetrieveResponse {
    /// The payment method.
    pub payment_method: PaymentMethodData,
}

impl RetrieveResponse {
    /// Wraps a retrieved payment method.
    pub fn new(payment_method: PaymentMethodData) -> Self {
        RetrieveResponse { payment_method }
    }

    /// The card, if the payment method is one in clear.
    pub fn card(&self) -> Option<&Card> {
        match &self.payment_method {
            PaymentMethodData::Card(card) => Some(card),
            PaymentMethodData::CardAliases(_) => None,
        }
    }

    /// The card's aliases, when the vault returned the card without the number and
    /// CVC (a client not allowed to see them in clear).
    pub fn card_aliases(&self) -> Option<&CardAliases> {
        match &self.payment_method {
            PaymentMethodData::CardAliases(aliases) => Some(aliases),
            PaymentMethodData::Card(_) => None,
        }
    }
}

/// Delete: what insert returned.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct DeleteRequest {
    /// The identifiers insert returned.
    pub connector_vault_id: ConnectorVaultId,
}

impl DeleteRequest {
    /// Deletes by what insert returned.
    pub fn new(connector_vault_id: ConnectorVaultId) -> Self {
        DeleteRequest { connector_vault_id }
    }
}

/// Delete's result: which aliases were removed now and which were already gone
/// (deleted before, or a volatile value that had expired). Both mean the value is
/// no longer in the vault. `retained` lists aliases the connector deliberately left
/// in place because the vault shares them between payment methods (see the
/// connector's documentation).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct DeleteResponse {
    /// Removed by this call.
    pub removed: Vec<Alias>,
    /// Not found: already deleted or expired.
    pub already_gone: Vec<Alias>,
    /// Left in place on purpose: shared, non-sensitive records.
    pub retained: Vec<Alias>,
}

impl DeleteResponse {
    /// A delete result.
    pub fn new(removed: Vec<Alias>, already_gone: Vec<Alias>) -> Self {
        DeleteResponse {
            removed,
            already_gone,
            retained: Vec::new(),
        }
    }

    /// Adds the aliases left in place on purpose.
    pub fn with_retained(mut self, retained: Vec<Alias>) -> Self {
        self.retained = retained;
        self
    }
}
