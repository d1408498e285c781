//! The `ExternalVault` trait, its flow marker types (`Insert`, `Retrieve`, `Delete`) and
//! the per-flow request/response data, in the shape of Hyperswitch's vault flows.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::time::SystemTime;

use async_trait::async_trait;

use crate::card::{Card, Cvc, ExpiryMonth, ExpiryYear};
use crate::card_object::CardAliases;
use crate::error::{Detail, VaultError, VaultResult};
use crate::payment_method::{CardFields, NetworkToken};
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

    /// Removes what [`ExternalVault::insert`] stored for this payment method, and only
    /// what no other stored payment method can be using: a record the vault shares
    /// between payment methods with equal values is kept, and the response says so
    /// ([`RecordAction::Kept`]). To remove a value everywhere, use
    /// [`ExternalVault::erase`].
    async fn delete(&self, request: DeleteRequest) -> VaultResult<DeleteResponse>;

    /// Erases values from the vault as far as it can reach them: every record of the
    /// named fields' values this id leads to is removed, with every alias of it. Where
    /// the vault keeps one record per value, that is every stored payment method
    /// holding an equal value (a right-to-erasure request for a card number), and the
    /// response's scope is [`DeleteScope::EveryHolder`]; where it does not, the scope
    /// says so ([`DeleteScope::ReachableRecords`]).
    ///
    /// Gets ready for the first call, at the orchestrator's start-up: fetches what the
    /// connector needs before it can call the vault (an access token) and opens its
    /// connection, so that the first payment pays for neither. An error says what
    /// will fail every call (credentials, scope, vault id): a good moment to learn it.
    ///
    /// The default implementation does nothing.
    async fn warm_up(&self) -> VaultResult<()> {
        Ok(())
    }

    /// The default implementation refuses: a connector that cannot erase says so.
    async fn erase(&self, request: EraseRequest) -> VaultResult<DeleteResponse> {
        let _ = request;
        Err(
            crate::Report::new(VaultError::InvalidRequest).attach(Detail::new(
                "this vault connector cannot erase values; use delete",
            )),
        )
    }
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
    /// Some of a card's fields (every field optional, as in Hyperswitch's card data):
    /// a card number alone, or a CVC for a card already stored
    /// ([`InsertRequest::cvc_for`]). Retrieve returns it for an id that holds only
    /// part of a card.
    CardFields(CardFields),
    /// A network token, a payment method beside the card.
    NetworkToken(NetworkToken),
}

impl PaymentMethodData {
    /// What kind of payment method this is, for messages (`"card"`).
    pub const fn kind(&self) -> &'static str {
        match self {
            PaymentMethodData::Card(_) => "card",
            PaymentMethodData::CardAliases(_) => "card aliases",
            PaymentMethodData::CardFields(_) => "card fields",
            PaymentMethodData::NetworkToken(_) => "network token",
        }
    }
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

/// A field of a stored payment method (a card, or a network token), as a key of
/// [`FieldAliases`]. The names are Hyperswitch's field names.
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
    /// A network token (a scheme's stand-in card number, e.g. from Visa Token
    /// Service), stored like a card number.
    NetworkToken,
    /// The network token's expiry month.
    NetworkTokenExpMonth,
    /// The network token's expiry year.
    NetworkTokenExpYear,
    /// The network token's cryptogram (single use: always stored volatile).
    NetworkTokenCryptogram,
}

impl CardField {
    /// Every field of a card, in declaration order.
    pub const ALL: [CardField; 5] = [
        CardField::CardNumber,
        CardField::CardExpMonth,
        CardField::CardExpYear,
        CardField::CardCvc,
        CardField::CardHolderName,
    ];

    /// The fields of a network token, in declaration order.
    pub const NETWORK_TOKEN: [CardField; 4] = [
        CardField::NetworkToken,
        CardField::NetworkTokenExpMonth,
        CardField::NetworkTokenExpYear,
        CardField::NetworkTokenCryptogram,
    ];

    /// Every field of every payment method, in declaration order: `EVERY[f as usize]`
    /// is `f`, so a field can index an array of `EVERY.len()`.
    pub const EVERY: [CardField; 9] = [
        CardField::CardNumber,
        CardField::CardExpMonth,
        CardField::CardExpYear,
        CardField::CardCvc,
        CardField::CardHolderName,
        CardField::NetworkToken,
        CardField::NetworkTokenExpMonth,
        CardField::NetworkTokenExpYear,
        CardField::NetworkTokenCryptogram,
    ];

    /// The Hyperswitch field name (`"card_number"`).
    pub const fn as_str(&self) -> &'static str {
        match self {
            CardField::CardNumber => "card_number",
            CardField::CardExpMonth => "card_exp_month",
            CardField::CardExpYear => "card_exp_year",
            CardField::CardCvc => "card_cvc",
            CardField::CardHolderName => "card_holder_name",
            CardField::NetworkToken => "network_token",
            CardField::NetworkTokenExpMonth => "network_token_exp_month",
            CardField::NetworkTokenExpYear => "network_token_exp_year",
            CardField::NetworkTokenCryptogram => "network_token_cryptogram",
        }
    }

    /// Whether the field belongs to a network token rather than a card.
    pub const fn is_network_token(&self) -> bool {
        matches!(
            self,
            CardField::NetworkToken
                | CardField::NetworkTokenExpMonth
                | CardField::NetworkTokenExpYear
                | CardField::NetworkTokenCryptogram
        )
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
    /// For a volatile value (the CVC): when the vault forgets it at the latest. Lets
    /// retrieve tell a CVC that expired, as documented, from one whose record vanished
    /// early ([`MissingReason`]). `None` for persistent values and for ids written
    /// before it was recorded. In JSON: seconds since the Unix epoch.
    #[cfg_attr(
        feature = "serde",
        serde(
            default,
            skip_serializing_if = "Option::is_none",
            with = "unix_seconds"
        )
    )]
    pub expires_at: Option<SystemTime>,
    /// Whether [`FieldAlias::expires_at`] is when the value goes, not only the latest
    /// it can go (with fingerprinting, an equal value stored earlier by another card
    /// is the same record, and may go sooner when the vault does not say when it was
    /// made). Omitted from JSON when true.
    #[cfg_attr(
        feature = "serde",
        serde(default = "exact", skip_serializing_if = "is_exact")
    )]
    pub expiry_exact: bool,
}

#[cfg(feature = "serde")]
fn exact() -> bool {
    true
}

#[cfg(feature = "serde")]
fn is_exact(exact: &bool) -> bool {
    *exact
}

impl FieldAlias {
    /// A persistent or volatile alias without a known expiry.
    pub fn new(alias: Alias, format: AliasFormat, storage: Storage) -> Self {
        FieldAlias {
            alias,
            format,
            storage,
            expires_at: None,
            expiry_exact: true,
        }
    }

    /// Records when the vault forgets the value at the latest, and whether exactly then;
    /// to the second (ids are stored as text, in whole seconds).
    pub fn expiring_at(mut self, at: SystemTime, exact: bool) -> Self {
        self.expires_at = Some(whole_seconds(at));
        self.expiry_exact = exact;
        self
    }
}

/// `at`, down to the whole second (so that an id's text forms give it back equal).
pub fn whole_seconds(at: SystemTime) -> SystemTime {
    match at.duration_since(std::time::UNIX_EPOCH) {
        Ok(since) => std::time::UNIX_EPOCH + std::time::Duration::from_secs(since.as_secs()),
        Err(_) => std::time::UNIX_EPOCH,
    }
}

/// `Option<SystemTime>` as whole seconds since the Unix epoch (ids are stored by
/// orchestrators as JSON; an integer is the least ambiguous form).
#[cfg(feature = "serde")]
pub(crate) mod unix_seconds {
    use std::time::{Duration, SystemTime, UNIX_EPOCH};

    use serde::{Deserialize, Deserializer, Serializer};

    pub(crate) fn serialize<S: Serializer>(
        value: &Option<SystemTime>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        match value.and_then(|t| t.duration_since(UNIX_EPOCH).ok()) {
            Some(since) => s.serialize_some(&since.as_secs()),
            None => s.serialize_none(),
        }
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Option<SystemTime>, D::Error> {
        Ok(Option::<u64>::deserialize(d)?.map(|secs| UNIX_EPOCH + Duration::from_secs(secs)))
    }
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
        /// When the vault forgets the CVC at the latest (see
        /// [`FieldAlias::expires_at`]; a bound: before it a vanished CVC is
        /// [`MissingReason::ExpiredOrGone`]); `None` without a CVC or for older ids.
        #[cfg_attr(
            feature = "serde",
            serde(
                default,
                skip_serializing_if = "Option::is_none",
                with = "unix_seconds"
            )
        )]
        cvc_expires_at: Option<SystemTime>,
    },
    /// One alias per field.
    Multi(FieldAliases),
}

impl ConnectorVaultId {
    /// Every alias this id refers to (the record id and CVC for `Single`).
    pub fn aliases(&self) -> Vec<&Alias> {
        match self {
            ConnectorVaultId::Single { id, cvc, .. } => std::iter::once(id).chain(cvc).collect(),
            ConnectorVaultId::Multi(fields) => fields.values().map(|f| &f.alias).collect(),
        }
    }

    /// The fingerprint of what this id stores, from the id alone: the card number's
    /// alias (else the network token's) for per-field ids, the record's id for single
    /// ids. As in Hyperswitch, which also uses the alias: in a vault with
    /// fingerprinting on, the same card number gets the same alias, so payment methods
    /// of one card share a fingerprint; with fingerprinting off, and for single-id
    /// records (one of their own per card), it is per stored payment method. An id
    /// with neither (a CVC alone) is fingerprinted by its whole compact string: it
    /// matches no other payment method (a CVC's alias is shared by every card with
    /// that CVC, so it cannot serve).
    pub fn fingerprint(&self) -> Fingerprint {
        let alias = match self {
            ConnectorVaultId::Single { id, .. } => Some(id),
            ConnectorVaultId::Multi(fields) => [CardField::CardNumber, CardField::NetworkToken]
                .iter()
                .find_map(|field| fields.get(field))
                .map(|field| &field.alias),
        };
        match alias {
            Some(alias) => Fingerprint(alias.as_str().to_owned()),
            None => Fingerprint(self.to_string()),
        }
    }

    /// The alias of one field (`None` for a single id, or a field not stored).
    pub fn field(&self, field: CardField) -> Option<&FieldAlias> {
        match self {
            ConnectorVaultId::Multi(fields) => fields.get(&field),
            ConnectorVaultId::Single { .. } => None,
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
    /// The stored card these fields belong to ([`InsertRequest::cvc_for`]): the
    /// response is that card's id with the new aliases in place of the old.
    pub for_card: Option<ConnectorVaultId>,
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
            for_card: None,
        }
    }

    /// Stores a CVC (re-entered by the customer) for a card already stored: the
    /// response is the card's id with this CVC's alias in place of any earlier one
    /// (stored volatile, like every CVC). Nothing else is stored again.
    pub fn cvc_for(card: ConnectorVaultId, cvc: Cvc) -> Self {
        InsertRequest {
            for_card: Some(card),
            ..InsertRequest::new(PaymentMethodData::CardFields(CardFields::cvc(cvc)))
        }
    }

    /// Stores some of a card's fields (for example only the number): the response
    /// is a per-field id holding just those.
    pub fn card_fields(fields: CardFields) -> Self {
        InsertRequest::new(PaymentMethodData::CardFields(fields))
    }

    /// Stores a network token (the token and its expiry persistent, the
    /// cryptogram volatile).
    pub fn network_token(token: NetworkToken) -> Self {
        InsertRequest::new(PaymentMethodData::NetworkToken(token))
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
    /// The fingerprint of the stored card number (or network token): always there.
    /// The vault's own where it gives one (VGS CMP), else
    /// [`ConnectorVaultId::fingerprint`].
    pub fingerprint: Fingerprint,
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
            fingerprint: connector_vault_id.fingerprint(),
            connector_vault_id,
            already_stored: false,
            card_aliases: None,
        }
    }

    /// Sets the vault's own fingerprint.
    pub fn with_fingerprint(mut self, fingerprint: Fingerprint) -> Self {
        self.fingerprint = fingerprint;
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
    /// The card's expiry, for an id that has no alias for it (a card collected by
    /// VGS Collect stores only the number and CVC; the orchestrator kept the expiry).
    pub expiry: Option<(ExpiryMonth, ExpiryYear)>,
}

impl RetrieveRequest {
    /// Retrieves by what insert returned.
    pub fn new(connector_vault_id: ConnectorVaultId) -> Self {
        RetrieveRequest {
            connector_vault_id,
            expiry: None,
        }
    }

    /// Supplies the card's expiry, used where the id has no alias for it.
    pub fn with_expiry(mut self, month: ExpiryMonth, year: ExpiryYear) -> Self {
        self.expiry = Some((month, year));
        self
    }
}

/// Retrieve's result: the payment method, rebuilt and validated, and every field that
/// could not be read back ([`RetrieveResponse::missing`]): a field is never dropped
/// silently. A field without which the payment method cannot be rebuilt (a card's
/// number or expiry) is an error naming it instead.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct RetrieveResponse {
    /// The payment method.
    pub payment_method: PaymentMethodData,
    /// Optional fields that were stored but are not in the vault now (their value is
    /// absent from [`RetrieveResponse::payment_method`]), with why.
    pub missing: Vec<MissingField>,
    /// The single-id record is not one vaultlink writes today: Hyperswitch's
    /// single-token record (the whole card, the CVC persisted inside), or a card
    /// record without vaultlink's per-card marker (which other payment methods may
    /// share by value). Re-store such cards in vaultlink's layout (`vaultctl migrate`).
    pub legacy_record: bool,
}

impl RetrieveResponse {
    /// Wraps a retrieved payment method with nothing missing.
    pub fn new(payment_method: PaymentMethodData) -> Self {
        RetrieveResponse {
            payment_method,
            missing: Vec::new(),
            legacy_record: false,
        }
    }

    /// Marks the record as one in a layout vaultlink does not write.
    pub fn from_legacy_record(mut self) -> Self {
        self.legacy_record = true;
        self
    }

    /// Adds the fields that could not be read back.
    pub fn with_missing(mut self, missing: Vec<MissingField>) -> Self {
        self.missing = missing;
        self
    }

    /// Whether no stored field is known to be lost: `false` when a field's record is
    /// [`MissingReason::Gone`]. A CVC that expired as documented, or one that may have
    /// ([`MissingReason::ExpiredOrGone`]), does not count: look at
    /// [`RetrieveResponse::missing`] for those.
    pub fn is_complete(&self) -> bool {
        self.missing.iter().all(|m| m.reason != MissingReason::Gone)
    }

    /// The card, if the payment method is one in clear.
    pub fn card(&self) -> Option<&Card> {
        match &self.payment_method {
            PaymentMethodData::Card(card) => Some(card),
            _ => None,
        }
    }

    /// The network token, if the payment method is one.
    pub fn network_token(&self) -> Option<&NetworkToken> {
        match &self.payment_method {
            PaymentMethodData::NetworkToken(token) => Some(token),
            _ => None,
        }
    }

    /// The card fields, for an id that holds only part of a card.
    pub fn card_fields(&self) -> Option<&CardFields> {
        match &self.payment_method {
            PaymentMethodData::CardFields(fields) => Some(fields),
            _ => None,
        }
    }

    /// The card's aliases, when the vault returned the card without the number and
    /// CVC (a client not allowed to see them in clear).
    pub fn card_aliases(&self) -> Option<&CardAliases> {
        match &self.payment_method {
            PaymentMethodData::CardAliases(aliases) => Some(aliases),
            _ => None,
        }
    }
}

/// A stored field that retrieve could not read back.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct MissingField {
    /// Which field.
    pub field: CardField,
    /// The alias it was stored under.
    pub alias: Alias,
    /// Why it is missing.
    pub reason: MissingReason,
}

impl MissingField {
    /// A missing field.
    pub fn new(field: CardField, alias: Alias, reason: MissingReason) -> Self {
        MissingField {
            field,
            alias,
            reason,
        }
    }
}

/// Why a stored field is not in the vault any more.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum MissingReason {
    /// A volatile value past its lifetime (a CVC is kept one hour): documented and
    /// expected; collect the CVC again if the payment needs it.
    Expired,
    /// The record is gone before its time: erased, deleted by another client, or
    /// removed in the vault's dashboard. Data was lost.
    Gone,
    /// A volatile value is gone before the latest time it could have expired, and the
    /// id does not say exactly when it was to expire (an equal value stored earlier by
    /// another card may have been the same record; or an id written before expiry was
    /// recorded), so expiry and loss cannot be told apart.
    ExpiredOrGone,
}

impl MissingReason {
    /// A stable, machine-readable name (`"gone"`).
    pub const fn code(&self) -> &'static str {
        match self {
            MissingReason::Expired => "expired",
            MissingReason::Gone => "gone",
            MissingReason::ExpiredOrGone => "expired_or_gone",
        }
    }

    /// One sentence for a person.
    pub const fn explain(&self) -> &'static str {
        match self {
            MissingReason::Expired => {
                "the volatile value expired as documented (a CVC is kept one hour); collect it again if the payment needs it"
            }
            MissingReason::Gone => {
                "the record is gone from the vault before its time (erased, or deleted outside this payment method)"
            }
            MissingReason::ExpiredOrGone => {
                "the volatile value is gone; this id does not record when it was to expire, so it may have expired or been removed"
            }
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

/// Erase: what insert returned, and which fields' values to remove from the vault
/// everywhere.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct EraseRequest {
    /// The identifiers insert returned.
    pub connector_vault_id: ConnectorVaultId,
    /// The fields whose values are erased. For a single-id record, any field erases
    /// the whole-card record (it holds them all).
    pub fields: BTreeSet<CardField>,
}

impl EraseRequest {
    /// Erases the cardholder data of a stored card everywhere: the card number, the
    /// CVC and the holder name (not the expiry: on its own it identifies nobody, and
    /// erasing `04` would take it from every card expiring in April).
    pub fn cardholder_data(connector_vault_id: ConnectorVaultId) -> Self {
        EraseRequest::fields(
            connector_vault_id,
            [
                CardField::CardNumber,
                CardField::CardCvc,
                CardField::CardHolderName,
            ],
        )
    }

    /// Erases the given fields' values everywhere.
    pub fn fields(
        connector_vault_id: ConnectorVaultId,
        fields: impl IntoIterator<Item = CardField>,
    ) -> Self {
        EraseRequest {
            connector_vault_id,
            fields: fields.into_iter().collect(),
        }
    }
}

/// Delete's (or erase's) result: what happened to every record of the payment
/// method, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct DeleteResponse {
    /// Whether only this payment method's records were considered (delete), or the
    /// values were removed from every holder (erase).
    pub scope: DeleteScope,
    /// One entry per record (per alias for an erase, which removes every alias of a
    /// value's record).
    pub records: Vec<RecordOutcome>,
}

impl DeleteResponse {
    /// A delete or erase result.
    pub fn new(scope: DeleteScope, records: Vec<RecordOutcome>) -> Self {
        DeleteResponse { scope, records }
    }

    /// The aliases removed by this call.
    pub fn removed(&self) -> Vec<&Alias> {
        self.with_action(|a| matches!(a, RecordAction::Removed))
    }

    /// The aliases that were not in the vault any more (deleted before, or a volatile
    /// value that expired): the value is gone either way.
    pub fn already_gone(&self) -> Vec<&Alias> {
        self.with_action(|a| matches!(a, RecordAction::AlreadyGone))
    }

    /// The aliases deliberately left in place, with [`RecordOutcome::action`] saying why.
    pub fn kept(&self) -> Vec<&Alias> {
        self.with_action(|a| matches!(a, RecordAction::Kept(_)))
    }

    fn with_action(&self, wanted: impl Fn(&RecordAction) -> bool) -> Vec<&Alias> {
        self.records
            .iter()
            .filter(|r| wanted(&r.action))
            .map(|r| &r.alias)
            .collect()
    }
}

/// What a delete or erase covered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum DeleteScope {
    /// [`ExternalVault::delete`]: this payment method's own records; shared ones kept.
    PaymentMethod,
    /// [`ExternalVault::erase`] where the vault keeps one record per value
    /// (fingerprinting, a duplicate-card check): the values, from every payment method
    /// holding them.
    EveryHolder,
    /// [`ExternalVault::erase`] where records are not shared by value (fingerprinting
    /// off, a single-id record of its own, an alias already gone): this payment
    /// method's records of the values, with every alias each has. Equal values that
    /// other payment methods stored are records of their own, which no vault API finds
    /// by value: they stay.
    ReachableRecords,
}

/// One record of a payment method, and what a delete or erase did with it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct RecordOutcome {
    /// Which part of the payment method the record holds.
    pub part: StoredPart,
    /// The alias (for a card object, its id).
    pub alias: Alias,
    /// How the vault keeps it.
    pub storage: Storage,
    /// What happened.
    pub action: RecordAction,
}

impl RecordOutcome {
    /// One record's outcome.
    pub fn new(part: StoredPart, alias: Alias, storage: Storage, action: RecordAction) -> Self {
        RecordOutcome {
            part,
            alias,
            storage,
            action,
        }
    }
}

/// The part of a payment method a record holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum StoredPart {
    /// One card field (per-field aliases, or the CVC beside a single-id record).
    Field(CardField),
    /// A single-id record holding the whole card but its CVC.
    WholeCard,
    /// A card object of a card-object vault (VGS CMP), by its card id.
    CardObject,
}

impl fmt::Display for StoredPart {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StoredPart::Field(field) => f.write_str(field.as_str()),
            StoredPart::WholeCard => f.write_str("card record"),
            StoredPart::CardObject => f.write_str("card object"),
        }
    }
}

/// What a delete or erase did with one record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum RecordAction {
    /// Removed by this call.
    Removed,
    /// Not in the vault any more: deleted before, or a volatile value that expired.
    AlreadyGone,
    /// Left in place on purpose.
    Kept(KeptBecause),
}

/// Why a delete left a record in place.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum KeptBecause {
    /// The vault gives equal values one record (fingerprinting, or a card-object
    /// vault's duplicate-card check), so other stored payment methods may be using
    /// this one: removing it would break them. [`ExternalVault::erase`] removes it
    /// everywhere; a volatile value (CVC) also expires on its own within the hour.
    SharedByValue,
}

impl KeptBecause {
    /// A stable, machine-readable name (`"shared_by_value"`).
    pub const fn code(&self) -> &'static str {
        match self {
            KeptBecause::SharedByValue => "shared_by_value",
        }
    }

    /// One sentence for a person.
    pub const fn explain(&self) -> &'static str {
        match self {
            KeptBecause::SharedByValue => {
                "the vault keeps one record per value, so other stored cards with the same value may use it; erase removes it everywhere"
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, UNIX_EPOCH};

    #[test]
    fn every_field_indexes_its_own_position() {
        for (index, field) in super::CardField::EVERY.iter().enumerate() {
            assert_eq!(*field as usize, index, "{field}");
        }
    }

    use super::*;

    fn alias(text: &str) -> Alias {
        Alias::new(text).expect("alias")
    }

    #[cfg(feature = "serde")]
    #[test]
    fn cvc_expiry_is_kept_in_ids_as_unix_seconds_and_older_ids_still_read() {
        let at = UNIX_EPOCH + Duration::from_secs(1_767_225_600);
        let mut fields = FieldAliases::new();
        fields.insert(
            CardField::CardCvc,
            FieldAlias::new(alias("tok_c"), AliasFormat::Uuid, Storage::Volatile)
                .expiring_at(at, false),
        );
        let id = ConnectorVaultId::Multi(fields);
        let json = serde_json::to_value(&id).expect("serialises");
        assert_eq!(json["card_cvc"]["expires_at"], 1_767_225_600);
        assert_eq!(json["card_cvc"]["expiry_exact"], false);
        let back: ConnectorVaultId = serde_json::from_value(json).expect("parses");
        assert_eq!(back, id);

        let single = ConnectorVaultId::Single {
            id: alias("tok_w"),
            cvc: Some(alias("tok_c")),
            cvc_expires_at: Some(at),
        };
        let json = serde_json::to_value(&single).expect("serialises");
        assert_eq!(json["cvc_expires_at"], 1_767_225_600);
        assert_eq!(
            serde_json::from_value::<ConnectorVaultId>(json).expect("parses"),
            single
        );

        // An id written before expiry was recorded reads with `None`.
        let old: ConnectorVaultId =
            serde_json::from_str(r#"{"type":"single","id":"tok_w","cvc":"tok_c"}"#)
                .expect("older id");
        assert!(matches!(
            old,
            ConnectorVaultId::Single {
                cvc_expires_at: None,
                ..
            }
        ));
        let persistent = FieldAlias::new(alias("tok_p"), AliasFormat::Uuid, Storage::Persistent);
        let json = serde_json::to_string(&persistent).expect("serialises");
        assert!(
            !json.contains("expires_at") && !json.contains("expiry_exact"),
            "{json}"
        );
    }

    #[test]
    fn a_delete_response_sorts_its_records_by_what_happened() {
        let record = |name: &str, action| {
            RecordOutcome::new(
                StoredPart::Field(CardField::CardNumber),
                alias(name),
                Storage::Persistent,
                action,
            )
        };
        let response = DeleteResponse::new(
            DeleteScope::PaymentMethod,
            vec![
                record("tok_a", RecordAction::Removed),
                record("tok_b", RecordAction::AlreadyGone),
                record("tok_c", RecordAction::Kept(KeptBecause::SharedByValue)),
            ],
        );
        assert_eq!(response.removed(), [&alias("tok_a")]);
        assert_eq!(response.already_gone(), [&alias("tok_b")]);
        assert_eq!(response.kept(), [&alias("tok_c")]);
        assert_eq!(KeptBecause::SharedByValue.code(), "shared_by_value");
        assert_eq!(StoredPart::WholeCard.to_string(), "card record");
    }

    #[test]
    fn only_a_field_known_gone_makes_a_retrieve_incomplete() {
        let card = Card::new(
            crate::CardNumber::new("4111111111111111").expect("valid"),
            crate::ExpiryMonth::new(4).expect("valid"),
            crate::ExpiryYear::new(2030).expect("valid"),
        );
        let missing = |reason| {
            vec![MissingField::new(
                CardField::CardCvc,
                alias("tok_c"),
                reason,
            )]
        };
        let response = RetrieveResponse::new(PaymentMethodData::Card(card));
        assert!(response.is_complete());
        for (reason, complete) in [
            (MissingReason::Expired, true),
            (MissingReason::Gone, false),
            (MissingReason::ExpiredOrGone, true),
        ] {
            let with = response.clone().with_missing(missing(reason));
            assert_eq!(with.is_complete(), complete, "{reason:?}");
            assert!(!reason.explain().is_empty() && !reason.code().is_empty());
        }
    }

    #[test]
    fn erase_of_cardholder_data_leaves_the_expiry_out() {
        let request = EraseRequest::cardholder_data(ConnectorVaultId::Multi(FieldAliases::new()));
        assert!(request.fields.contains(&CardField::CardNumber));
        assert!(request.fields.contains(&CardField::CardCvc));
        assert!(request.fields.contains(&CardField::CardHolderName));
        assert!(!request.fields.contains(&CardField::CardExpMonth));
        assert!(!request.fields.contains(&CardField::CardExpYear));
    }
}
