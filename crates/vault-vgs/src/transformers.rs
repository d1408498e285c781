//! VGS's JSON: `pub(crate)` wire types and the pure conversions between them and
//! vault-core's types (request bodies, response matching, error bodies). No I/O here.

use std::borrow::Cow;
use std::fmt;
use std::marker::PhantomData;
use std::time::Duration;

use error_stack::Report;
use secrecy::{ExposeSecret, SecretString};
use serde::de::{DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Serialize};
use vault_core::{
    Alias, AliasFormat, Card, CardField, CardFields, CardHolderName, CardNumber, Cryptogram, Cvc,
    Detail, ExpiryMonth, ExpiryYear, FieldAlias, HttpStatus, NetworkToken, RetryAfter, Storage,
    TraceId, VaultError,
};

/// The most values VGS accepts in one `POST /aliases` (and one batch reveal/delete).
pub(crate) const MAX_VALUES_PER_REQUEST: usize = 20;

/// The classifier every value stored by vaultlink carries, beside its field name.
const CLASSIFIER: &str = "vaultlink";

// ---------------------------------------------------------------------------------
// Requests
// ---------------------------------------------------------------------------------

/// `POST /aliases` body, serialised straight from the values (no intermediate list).
#[derive(Serialize)]
pub(crate) struct CreateAliasesRequest<'a> {
    pub(crate) data: CreateAliasList<'a>,
}

/// The `data` array of a `POST /aliases` body.
pub(crate) struct CreateAliasList<'a>(pub(crate) &'a [SlotValue]);

impl Serialize for CreateAliasList<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(self.0.iter().map(|v| CreateAlias {
            value: v.value.expose_secret(),
            classifiers: [CLASSIFIER, v.slot.field.classifier()],
            format: v.slot.format,
            storage: v.slot.storage,
        }))
    }
}

/// One value to store.
#[derive(Serialize)]
pub(crate) struct CreateAlias<'a> {
    pub(crate) value: &'a str,
    pub(crate) classifiers: [&'static str; 2],
    pub(crate) format: AliasFormat,
    pub(crate) storage: Storage,
}

/// What the connector asked to store in one slot of a `POST /aliases`: which field of
/// which item, in which format and storage. Responses are matched to slots by position.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Slot {
    /// Index of the payment method in a batch (0 for a single insert).
    pub(crate) item: usize,
    /// What the value is.
    pub(crate) field: SlotField,
    pub(crate) format: AliasFormat,
    pub(crate) storage: Storage,
}

impl AsRef<Slot> for Slot {
    fn as_ref(&self) -> &Slot {
        self
    }
}

/// The field a slot holds: a card field, or the whole card as one record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SlotField {
    Field(CardField),
    WholeCard,
    /// A non-sensitive value stored to probe the vault's behaviour.
    Probe,
}

impl SlotField {
    fn classifier(self) -> &'static str {
        match self {
            SlotField::Field(field) => field.as_str(),
            SlotField::WholeCard => "card",
            SlotField::Probe => "vaultlink-probe",
        }
    }
}

/// A value to store, borrowed or owned (expiry digits are formatted on the fly), kept
/// secret until serialised.
pub(crate) struct SlotValue {
    pub(crate) slot: Slot,
    pub(crate) value: SecretString,
}

impl AsRef<Slot> for SlotValue {
    fn as_ref(&self) -> &Slot {
        &self.slot
    }
}

/// The formats the connector uses per field.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Formats {
    pub(crate) card_number: AliasFormat,
}

/// Splits a card into the values to store, one per field. The CVC is always VOLATILE;
/// everything else PERSISTENT.
pub(crate) fn per_field_values(item: usize, card: &Card, formats: Formats) -> Vec<SlotValue> {
    let values = field_values(
        Some(&card.number),
        Some(&card.exp_month),
        Some(&card.exp_year),
        card.cvc.as_ref(),
        card.holder_name.as_ref(),
    );
    field_slots(item, values, formats)
}

/// Stores the card (without CVC) as one PERSISTENT record and the CVC, if any, as a
/// separate VOLATILE one. The record carries `marker`, random per stored card, so that
/// no other card's record is ever equal to it: with fingerprinting on, equal records
/// are one, and a delete could not tell whose it is.
pub(crate) fn single_id_values(item: usize, card: &Card, marker: &str) -> Vec<SlotValue> {
    let whole = WholeCard {
        vaultlink_record: Some(Cow::Borrowed(marker)),
        card_number: Cow::Borrowed(card.number.expose_secret()),
        card_exp_month: card.exp_month.two_digits(),
        card_exp_year: card.exp_year.get().to_string(),
        card_holder_name: card
            .holder_name
            .as_ref()
            .map(|name| Cow::Borrowed(name.expose_secret())),
    };
    let json = serde_json::to_string(&whole).expect("serialising strings to JSON cannot fail");
    let mut values = vec![SlotValue {
        slot: Slot {
            item,
            field: SlotField::WholeCard,
            format: AliasFormat::Uuid,
            storage: Storage::Persistent,
        },
        value: SecretString::from(json),
    }];
    if let Some(cvc) = &card.cvc {
        values.push(cvc_value(item, cvc));
    }
    values
}

/// The value of one field of a payment method, to store per field.
pub(crate) struct FieldValue {
    pub(crate) field: CardField,
    pub(crate) value: SecretString,
}

/// The fields present in `fields` (a card's subset), as values to store.
pub(crate) fn card_field_values(fields: &CardFields) -> Vec<FieldValue> {
    field_values(
        fields.number.as_ref(),
        fields.exp_month.as_ref(),
        fields.exp_year.as_ref(),
        fields.cvc.as_ref(),
        fields.holder_name.as_ref(),
    )
}

/// The card fields given, in field order.
fn field_values(
    number: Option<&CardNumber>,
    exp_month: Option<&ExpiryMonth>,
    exp_year: Option<&ExpiryYear>,
    cvc: Option<&Cvc>,
    holder_name: Option<&CardHolderName>,
) -> Vec<FieldValue> {
    let mut values = Vec::with_capacity(5);
    let mut push = |field, value: SecretString| values.push(FieldValue { field, value });
    if let Some(number) = number {
        push(CardField::CardNumber, secret(number.expose_secret()));
    }
    if let Some(month) = exp_month {
        push(CardField::CardExpMonth, digits(u16::from(month.get()), 2));
    }
    if let Some(year) = exp_year {
        push(CardField::CardExpYear, digits(year.get(), 4));
    }
    if let Some(cvc) = cvc {
        push(CardField::CardCvc, secret(cvc.expose_secret()));
    }
    if let Some(name) = holder_name {
        push(CardField::CardHolderName, secret(name.expose_secret()));
    }
    values
}

/// A network token's fields, as values to store.
pub(crate) fn network_token_values(token: &NetworkToken) -> Vec<FieldValue> {
    let mut values = vec![
        FieldValue {
            field: CardField::NetworkToken,
            value: secret(token.token.expose_secret()),
        },
        FieldValue {
            field: CardField::NetworkTokenExpMonth,
            value: digits(u16::from(token.exp_month.get()), 2),
        },
        FieldValue {
            field: CardField::NetworkTokenExpYear,
            value: digits(token.exp_year.get(), 4),
        },
    ];
    if let Some(cryptogram) = &token.cryptogram {
        values.push(FieldValue {
            field: CardField::NetworkTokenCryptogram,
            value: secret(cryptogram.expose_secret()),
        });
    }
    values
}

/// Per-field slots for `values`: card numbers and network tokens in the connector's
/// card number format, everything else UUID; the CVC and the cryptogram VOLATILE,
/// everything else PERSISTENT.
pub(crate) fn field_slots(
    item: usize,
    values: Vec<FieldValue>,
    formats: Formats,
) -> Vec<SlotValue> {
    values
        .into_iter()
        .map(|FieldValue { field, value }| {
            let format = match field {
                CardField::CardNumber | CardField::NetworkToken => formats.card_number,
                _ => AliasFormat::Uuid,
            };
            let storage = match field {
                CardField::CardCvc | CardField::NetworkTokenCryptogram => Storage::Volatile,
                _ => Storage::Persistent,
            };
            SlotValue {
                slot: Slot {
                    item,
                    field: SlotField::Field(field),
                    format,
                    storage,
                },
                value,
            }
        })
        .collect()
}

/// A probe value (not card data), stored PERSISTENT as a UUID alias.
pub(crate) fn probe_value(value: &str) -> SlotValue {
    SlotValue {
        slot: Slot {
            item: 0,
            field: SlotField::Probe,
            format: AliasFormat::Uuid,
            storage: Storage::Persistent,
        },
        value: secret(value),
    }
}

fn cvc_value(item: usize, cvc: &Cvc) -> SlotValue {
    SlotValue {
        slot: Slot {
            item,
            field: SlotField::Field(CardField::CardCvc),
            format: AliasFormat::Uuid,
            storage: Storage::Volatile,
        },
        value: secret(cvc.expose_secret()),
    }
}

fn secret(value: &str) -> SecretString {
    SecretString::from(value.to_owned())
}

/// `n` as `width` decimal digits (`04`, `2030`), in one exact-size allocation
/// (`format!` would allocate, then reallocate to box the string).
fn digits(n: u16, width: usize) -> SecretString {
    let mut buf = [b'0'; 5];
    let width = width.clamp(1, buf.len());
    let mut rest = n;
    for byte in buf[..width].iter_mut().rev() {
        *byte = b'0' + (rest % 10) as u8;
        rest /= 10;
    }
    secret(std::str::from_utf8(&buf[..width]).unwrap_or_default())
}

/// The JSON value of a single-id record. `vaultlink_record` is a random marker of this
/// card's own record (absent from records written before it existed).
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct WholeCard<'a> {
    #[serde(borrow, skip_serializing_if = "Option::is_none", default)]
    vaultlink_record: Option<Cow<'a, str>>,
    #[serde(borrow)]
    card_number: Cow<'a, str>,
    card_exp_month: String,
    card_exp_year: String,
    #[serde(borrow, skip_serializing_if = "Option::is_none", default)]
    card_holder_name: Option<Cow<'a, str>>,
}

/// Serialises a `POST /aliases` body for up to 20 values, into one buffer sized for it.
pub(crate) fn create_aliases_body(values: &[SlotValue]) -> Vec<u8> {
    // Per value: the value itself and at most ~110 bytes of keys, classifiers, format
    // and storage (more only if the value needs escaping).
    let capacity = 12
        + values
            .iter()
            .map(|v| v.value.expose_secret().len() + 112)
            .sum::<usize>();
    let mut body = Vec::with_capacity(capacity);
    let request = CreateAliasesRequest {
        data: CreateAliasList(values),
    };
    serde_json::to_writer(&mut body, &request).expect("serialising strings to JSON cannot fail");
    body
}

// ---------------------------------------------------------------------------------
// Responses
// ---------------------------------------------------------------------------------

// Answers are read into what the connector keeps, as they are parsed: a create
// answer's records are matched to the request's slots one by one (the values VGS
// echoes are skipped, never copied; aliases and names borrow from the body), a
// reveal answer's values go straight into the result.

/// An alias entry; the spec's schema names the field `alias`, its example `value`.
#[derive(Deserialize)]
pub(crate) struct AliasDto<'a> {
    #[serde(alias = "value", borrow)]
    pub(crate) alias: Cow<'a, str>,
    #[serde(default, deserialize_with = "wire_name")]
    pub(crate) format: Option<AliasFormat>,
}

/// One stored value of a create answer, as far as it is read: the alias to keep
/// (the one in the format asked for, else the first) and the storage.
pub(crate) struct CreatedRecord<'a> {
    pub(crate) alias: Option<AliasDto<'a>>,
    pub(crate) storage: Option<Storage>,
    /// When the vault first stored the value (it may predate this request: with
    /// fingerprinting on, an equal value stored earlier is the same record).
    pub(crate) created_at: Option<Cow<'a, str>>,
}

/// Reads one record of a create answer, keeping only the alias in `wanted`'s
/// format (else the first) and the storage; everything else is skipped unread.
struct RecordSeed(Option<AliasFormat>);

impl<'de> DeserializeSeed<'de> for RecordSeed {
    type Value = CreatedRecord<'de>;

    fn deserialize<D: serde::Deserializer<'de>>(
        self,
        deserializer: D,
    ) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for RecordSeed {
    type Value = CreatedRecord<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a stored value")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut record = CreatedRecord {
            alias: None,
            storage: None,
            created_at: None,
        };
        // A repeated key is refused, as a derived struct would: which copy of
        // `storage` VGS meant decides whether a CVC was stored volatile.
        let (mut seen_aliases, mut seen_storage) = (false, false);
        while let Some(key) = map.next_key::<Key>()? {
            match key {
                Key::Aliases if std::mem::replace(&mut seen_aliases, true) => {
                    return Err(serde::de::Error::duplicate_field("aliases"));
                }
                Key::Storage if std::mem::replace(&mut seen_storage, true) => {
                    return Err(serde::de::Error::duplicate_field("storage"));
                }
                Key::Aliases => record.alias = map.next_value_seed(BestAlias(self.0))?,
                Key::Storage => {
                    record.storage = map.next_value_seed(WireName(PhantomData))?;
                }
                Key::CreatedAt => record.created_at = map.next_value()?,
                Key::Data | Key::Other => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(record)
    }
}

/// Reads a record's list of aliases (one per format it has been given), keeping the
/// one in the wanted format, else the first: no list is built.
struct BestAlias(Option<AliasFormat>);

impl<'de> DeserializeSeed<'de> for BestAlias {
    type Value = Option<AliasDto<'de>>;

    fn deserialize<D: serde::Deserializer<'de>>(
        self,
        deserializer: D,
    ) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for BestAlias {
    type Value = Option<AliasDto<'de>>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a list of aliases")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut best: Option<AliasDto<'de>> = None;
        while let Some(entry) = seq.next_element::<AliasDto<'de>>()? {
            let wanted = self.0.is_some() && entry.format == self.0;
            let best_is_wanted = best
                .as_ref()
                .is_some_and(|b| self.0.is_some() && b.format == self.0);
            if best.is_none() || (wanted && !best_is_wanted) {
                best = Some(entry);
            }
        }
        Ok(best)
    }
}

/// Matches a create answer's records to the request's slots as they are read.
struct MatchCreated<'s, S> {
    slots: &'s [S],
    stored: Vec<Stored>,
    records: usize,
    problem: Option<Report<VaultError>>,
}

impl<'de, S: AsRef<Slot>> DeserializeSeed<'de> for &mut MatchCreated<'_, S> {
    type Value = ();

    fn deserialize<D: serde::Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_seq(self)
    }
}

impl<'de, S: AsRef<Slot>> Visitor<'de> for &mut MatchCreated<'_, S> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a list of stored values")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        loop {
            let slot = self.slots.get(self.records).map(AsRef::as_ref);
            let Some(record) = seq.next_element_seed(RecordSeed(slot.map(|s| s.format)))? else {
                return Ok(());
            };
            if let (Some(slot), None) = (slot, &self.problem) {
                match matched(self.records, slot, &record) {
                    Ok(one) => self.stored.push(one),
                    Err(report) => self.problem = Some(report),
                }
            }
            self.records += 1;
        }
    }
}

/// A revealed value (its aliases, classifiers and storage are not read).
#[derive(Deserialize)]
pub(crate) struct RevealedData {
    #[serde(default)]
    pub(crate) value: Option<SecretString>,
}

/// Reads one of vault-core's wire names (`"UUID"`, `"VOLATILE"`) straight from the
/// body without copying it; absent or `null` is `None`, an unknown name an error.
fn wire_name<'de, D, T>(deserializer: D) -> Result<Option<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: std::str::FromStr,
{
    WireName(PhantomData).deserialize(deserializer)
}

/// [`wire_name`] as a seed.
struct WireName<T>(PhantomData<T>);

impl<'de, T: std::str::FromStr> DeserializeSeed<'de> for WireName<T> {
    type Value = Option<T>;

    fn deserialize<D: serde::Deserializer<'de>>(
        self,
        deserializer: D,
    ) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_option(self)
    }
}

impl<'de, T: std::str::FromStr> Visitor<'de> for WireName<T> {
    type Value = Option<T>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a known name or null")
    }

    fn visit_none<E: serde::de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_unit<E: serde::de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_some<D2: serde::Deserializer<'de>>(
        self,
        deserializer: D2,
    ) -> Result<Self::Value, D2::Error> {
        deserializer.deserialize_str(self)
    }

    fn visit_str<E: serde::de::Error>(self, name: &str) -> Result<Self::Value, E> {
        name.parse()
            .map(Some)
            .map_err(|_| E::invalid_value(serde::de::Unexpected::Other("an unknown name"), &self))
    }
}

/// Reads `{"data": …}` (other keys skipped), handing `data` to the inner seed.
struct Envelope<S>(S);

impl<'de, S: DeserializeSeed<'de>> DeserializeSeed<'de> for Envelope<S> {
    type Value = S::Value;

    fn deserialize<D: serde::Deserializer<'de>>(
        self,
        deserializer: D,
    ) -> Result<S::Value, D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de, S: DeserializeSeed<'de>> Visitor<'de> for Envelope<S> {
    type Value = S::Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an object with `data`")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<S::Value, A::Error> {
        let mut seed = Some(self.0);
        let mut data = None;
        while let Some(key) = map.next_key::<Key>()? {
            match (key, seed.take()) {
                (Key::Data, Some(inner)) => data = Some(map.next_value_seed(inner)?),
                (Key::Data, None) => return Err(serde::de::Error::duplicate_field("data")),
                (Key::Aliases | Key::Storage | Key::CreatedAt | Key::Other, unused) => {
                    seed = unused;
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        data.ok_or_else(|| serde::de::Error::missing_field("data"))
    }
}

/// A key the connector reads, of the envelope (`data`) or of a stored value
/// (`aliases`, `storage`); every other key is skipped unread.
enum Key {
    Data,
    Aliases,
    Storage,
    CreatedAt,
    Other,
}

impl<'de> Deserialize<'de> for Key {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Name;

        impl Visitor<'_> for Name {
            type Value = Key;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a key")
            }

            fn visit_str<E: serde::de::Error>(self, key: &str) -> Result<Key, E> {
                Ok(match key {
                    "data" => Key::Data,
                    "aliases" => Key::Aliases,
                    "storage" => Key::Storage,
                    "created_at" => Key::CreatedAt,
                    _ => Key::Other,
                })
            }
        }

        deserializer.deserialize_identifier(Name)
    }
}

/// Hands each element of a JSON list to `F` as it is read.
struct EachElement<'f, T, F>(&'f mut F, PhantomData<T>);

impl<'de, T: Deserialize<'de>, F: FnMut(T)> DeserializeSeed<'de> for EachElement<'_, T, F> {
    type Value = ();

    fn deserialize<D: serde::Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_seq(self)
    }
}

impl<'de, T: Deserialize<'de>, F: FnMut(T)> Visitor<'de> for EachElement<'_, T, F> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a list")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while let Some(element) = seq.next_element::<T>()? {
            (self.0)(element);
        }
        Ok(())
    }
}

/// Reads a JSON object keyed by alias, handing the entry of each alias in
/// `requested` to `each` with its position there; other entries are skipped.
struct EachRequested<'r, 'f, F> {
    requested: &'r [&'r Alias],
    each: &'f mut F,
}

impl<'de, F: FnMut(usize, RevealedData)> DeserializeSeed<'de> for EachRequested<'_, '_, F> {
    type Value = ();

    fn deserialize<D: serde::Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de, F: FnMut(usize, RevealedData)> Visitor<'de> for EachRequested<'_, '_, F> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an object keyed by alias")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while let Some(index) = map.next_key_seed(Position(self.requested))? {
            match index {
                Some(index) => (self.each)(index, map.next_value()?),
                None => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(())
    }
}

/// A key, read as its position in the aliases asked for (without copying it).
struct Position<'r>(&'r [&'r Alias]);

impl<'de> DeserializeSeed<'de> for Position<'_> {
    type Value = Option<usize>;

    fn deserialize<D: serde::Deserializer<'de>>(
        self,
        deserializer: D,
    ) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_str(self)
    }
}

impl Visitor<'_> for Position<'_> {
    type Value = Option<usize>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an alias")
    }

    fn visit_str<E: serde::de::Error>(self, key: &str) -> Result<Self::Value, E> {
        Ok(self.0.iter().position(|alias| alias.as_str() == key))
    }
}

/// An alias the vault returned for a slot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Stored {
    pub(crate) slot: Slot,
    pub(crate) alias: FieldAlias,
    /// The record's `created_at`, parsed, for volatile slots only (the CVC's expiry
    /// is counted from it).
    pub(crate) created_at: Option<std::time::SystemTime>,
}

/// Parses a `POST /aliases` answer and matches it to the request's slots by position,
/// verifying the count and each record's storage (a CVC must come back VOLATILE).
/// Records are matched as they are read: nothing but the aliases kept is allocated.
pub(crate) fn parse_create_aliases<S: AsRef<Slot>>(
    body: &[u8],
    slots: &[S],
) -> Result<Vec<Stored>, Report<VaultError>> {
    let mut matching = MatchCreated {
        slots,
        stored: Vec::with_capacity(slots.len()),
        records: 0,
        problem: None,
    };
    parse_json_seed(body, "POST /aliases", Envelope(&mut matching))?;
    if matching.records != slots.len() {
        return Err(unexpected(format!(
            "the vault returned {} records for {} values sent",
            matching.records,
            slots.len()
        )));
    }
    match matching.problem {
        Some(report) => Err(report),
        None => Ok(matching.stored),
    }
}

/// Record `i` of a create answer, for `slot`: its storage must be the one asked for;
/// its alias is the one in the slot's format, else the first.
fn matched(
    i: usize,
    slot: &Slot,
    record: &CreatedRecord<'_>,
) -> Result<Stored, Report<VaultError>> {
    let storage = record.storage.unwrap_or(Storage::Persistent);
    if storage != slot.storage {
        return Err(unexpected(format!(
            "record {i} came back {storage} but was sent {}",
            slot.storage
        )));
    }
    let entry = record
        .alias
        .as_ref()
        .ok_or_else(|| unexpected(format!("record {i} has no alias")))?;
    let alias = Alias::new(&entry.alias)
        .map_err(|_| unexpected(format!("record {i} has an alias that is not valid")))?;
    let created_at = match storage {
        Storage::Volatile => record.created_at.as_deref().and_then(parse_rfc3339),
        Storage::Persistent => None,
    };
    Ok(Stored {
        slot: *slot,
        alias: FieldAlias::new(alias, entry.format.unwrap_or(slot.format), storage),
        created_at,
    })
}

/// Parses `GET /aliases/{alias}`: exactly one record with a value.
pub(crate) fn parse_reveal_one(body: &[u8]) -> Result<SecretString, Report<VaultError>> {
    let mut first = None;
    let mut records = 0;
    let mut each = |record: RevealedData| {
        records += 1;
        if records == 1 {
            first = Some(record);
        }
    };
    parse_json_seed(
        body,
        "GET /aliases/{alias}",
        Envelope(EachElement(&mut each, PhantomData)),
    )?;
    match (first, records) {
        (Some(record), 1) => record
            .value
            .ok_or_else(|| unexpected("the record has no value".to_owned())),
        _ => Err(unexpected("expected exactly one record".to_owned())),
    }
}

/// Parses `GET /aliases?aliases=…`: the value of each alias asked for, in the order
/// asked (`None` where the answer has none). Entries are matched to `requested` as
/// they are read; one for an alias not asked for is skipped. An alias asked for twice
/// gets its value at its first position only (callers ask for distinct aliases).
pub(crate) fn parse_reveal_many(
    body: &[u8],
    requested: &[&Alias],
) -> Result<Vec<Option<SecretString>>, Report<VaultError>> {
    let mut values: Vec<Option<SecretString>> = vec![None; requested.len()];
    let mut missing = false;
    let mut each = |index: usize, record: RevealedData| match (values.get_mut(index), record.value)
    {
        (Some(slot), Some(value)) => *slot = Some(value),
        (_, None) => missing = true,
        (None, Some(_)) => {}
    };
    parse_json_seed(
        body,
        "GET /aliases",
        Envelope(EachRequested {
            requested,
            each: &mut each,
        }),
    )?;
    if missing {
        return Err(unexpected("a record has no value".to_owned()));
    }
    Ok(values)
}

/// The values of a per-field card, read back from the vault.
#[derive(Default)]
pub(crate) struct FieldValues {
    pub(crate) number: Option<SecretString>,
    pub(crate) exp_month: Option<SecretString>,
    pub(crate) exp_year: Option<SecretString>,
    pub(crate) cvc: Option<SecretString>,
    pub(crate) holder_name: Option<SecretString>,
}

/// [`FieldValues`], borrowed (from the map of revealed values).
#[derive(Default)]
pub(crate) struct FieldRefs<'a> {
    pub(crate) number: Option<&'a SecretString>,
    pub(crate) exp_month: Option<&'a SecretString>,
    pub(crate) exp_year: Option<&'a SecretString>,
    pub(crate) cvc: Option<&'a SecretString>,
    pub(crate) holder_name: Option<&'a SecretString>,
}

/// Rebuilds and validates a card from its field values. Number and expiry are
/// required; CVC and holder name may be absent (expired or deleted).
pub(crate) fn card_from_fields(values: FieldValues) -> Result<Card, Report<VaultError>> {
    card_from_refs(FieldRefs {
        number: values.number.as_ref(),
        exp_month: values.exp_month.as_ref(),
        exp_year: values.exp_year.as_ref(),
        cvc: values.cvc.as_ref(),
        holder_name: values.holder_name.as_ref(),
    })
}

/// [`card_from_fields`] from borrowed values: the card's types copy what they keep.
pub(crate) fn card_from_refs(values: FieldRefs<'_>) -> Result<Card, Report<VaultError>> {
    fn required(
        value: Option<&SecretString>,
        field: CardField,
    ) -> Result<&SecretString, Report<VaultError>> {
        value.ok_or_else(|| unexpected(format!("the vault returned no value for {field}")))
    }
    let number = required(values.number, CardField::CardNumber)?;
    let month = required(values.exp_month, CardField::CardExpMonth)?;
    let year = required(values.exp_year, CardField::CardExpYear)?;
    let mut card = Card::new(
        validated::<CardNumber>(number.expose_secret(), CardField::CardNumber)?,
        validated::<ExpiryMonth>(month.expose_secret(), CardField::CardExpMonth)?,
        validated::<ExpiryYear>(year.expose_secret(), CardField::CardExpYear)?,
    );
    if let Some(cvc) = values.cvc {
        card.cvc = Some(validated::<Cvc>(cvc.expose_secret(), CardField::CardCvc)?);
    }
    if let Some(name) = values.holder_name {
        card.holder_name = Some(validated::<CardHolderName>(
            name.expose_secret(),
            CardField::CardHolderName,
        )?);
    }
    Ok(card)
}

/// Rebuilds a card from a single-id record (and its CVC, if still held): vaultlink's
/// record, or one Hyperswitch's VGS connector wrote; `true` when it is not today's
/// vaultlink layout (Hyperswitch's, or without the per-card marker).
pub(crate) fn card_from_whole(
    record: &SecretString,
    cvc: Option<SecretString>,
) -> Result<(Card, bool), Report<VaultError>> {
    let text = record.expose_secret();
    let whole: WholeCard<'_> = match serde_json::from_str(text) {
        Ok(whole) => whole,
        Err(_) => return card_from_hyperswitch_record(text, cvc).map(|card| (card, true)),
    };
    // Without vaultlink's marker the record is an older one, or Hyperswitch's
    // without a `card_cvc` key: the same keys. Either way not today's layout.
    let legacy = whole.vaultlink_record.as_deref().is_none_or(str::is_empty);
    card_from_fields(FieldValues {
        number: Some(secret(&whole.card_number)),
        exp_month: Some(SecretString::from(whole.card_exp_month)),
        exp_year: Some(SecretString::from(whole.card_exp_year)),
        cvc,
        holder_name: whole.card_holder_name.as_deref().map(secret),
    })
    .map(|card| (card, legacy))
}

/// A single-token record written by Hyperswitch's VGS connector: its card data
/// (`CardCustomData`, or `CardDetail` with its optional descriptive fields) as JSON,
/// the CVC inside when it was given (persisted: re-store such cards in vaultlink's
/// layout with `vaultctl migrate`). Unknown keys are refused, as Hyperswitch does.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)] // the descriptive fields are read only so that other keys stay refused
struct HyperswitchCard<'a> {
    #[serde(borrow)]
    card_number: Cow<'a, str>,
    #[serde(borrow)]
    card_exp_month: Cow<'a, str>,
    #[serde(borrow)]
    card_exp_year: Cow<'a, str>,
    #[serde(borrow, default)]
    card_cvc: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    card_holder_name: Option<Cow<'a, str>>,
    // `CardDetail`'s descriptive fields: accepted, not kept.
    #[serde(default)]
    nick_name: Option<IgnoredAny>,
    #[serde(default)]
    card_issuing_country: Option<IgnoredAny>,
    #[serde(default)]
    card_network: Option<IgnoredAny>,
    #[serde(default)]
    card_issuer: Option<IgnoredAny>,
    #[serde(default)]
    card_type: Option<IgnoredAny>,
}

fn card_from_hyperswitch_record(
    text: &str,
    cvc: Option<SecretString>,
) -> Result<Card, Report<VaultError>> {
    let card: HyperswitchCard<'_> = serde_json::from_str(text).map_err(|_| {
        unexpected(
            "the stored card record is neither a vaultlink card record nor one written by Hyperswitch's VGS connector"
                .to_owned(),
        )
    })?;
    card_from_fields(FieldValues {
        number: Some(secret(&card.card_number)),
        exp_month: Some(secret(&card.card_exp_month)),
        exp_year: Some(secret(&card.card_exp_year)),
        // A separately stored volatile CVC is the newer one.
        cvc: cvc.or_else(|| card.card_cvc.as_deref().map(secret)),
        holder_name: card.card_holder_name.as_deref().map(secret),
    })
}

/// Validates the fields present in `values`, for an id that holds only part of a card.
pub(crate) fn card_fields_from_refs(
    values: FieldRefs<'_>,
) -> Result<CardFields, Report<VaultError>> {
    fn optional<T: std::str::FromStr>(
        value: Option<&SecretString>,
        field: CardField,
    ) -> Result<Option<T>, Report<VaultError>> {
        value
            .map(|v| validated::<T>(v.expose_secret(), field))
            .transpose()
    }
    Ok(CardFields {
        number: optional(values.number, CardField::CardNumber)?,
        exp_month: optional(values.exp_month, CardField::CardExpMonth)?,
        exp_year: optional(values.exp_year, CardField::CardExpYear)?,
        cvc: optional(values.cvc, CardField::CardCvc)?,
        holder_name: optional(values.holder_name, CardField::CardHolderName)?,
    })
}

/// Rebuilds and validates a network token from its values.
pub(crate) fn network_token_from_refs(
    token: &SecretString,
    exp_month: &SecretString,
    exp_year: &SecretString,
    cryptogram: Option<&SecretString>,
) -> Result<NetworkToken, Report<VaultError>> {
    let mut built = NetworkToken::new(
        validated::<CardNumber>(token.expose_secret(), CardField::NetworkToken)?,
        validated::<ExpiryMonth>(exp_month.expose_secret(), CardField::NetworkTokenExpMonth)?,
        validated::<ExpiryYear>(exp_year.expose_secret(), CardField::NetworkTokenExpYear)?,
    );
    if let Some(cryptogram) = cryptogram {
        built.cryptogram = Some(Cryptogram::new(cryptogram.expose_secret()).map_err(|_| {
            unexpected("the vault returned a cryptogram that fails validation".to_owned())
        })?);
    }
    Ok(built)
}

/// Whether a single-id record carries vaultlink's per-card marker (so no other card
/// can share it); `false` for a record that is not a vaultlink card at all.
pub(crate) fn whole_card_is_marked(record: &SecretString) -> bool {
    serde_json::from_str::<WholeCard<'_>>(record.expose_secret())
        .is_ok_and(|whole| whole.vaultlink_record.is_some_and(|m| !m.is_empty()))
}

/// A random per-card marker: 128 bits as 32 lowercase hex digits.
pub(crate) fn new_record_marker() -> String {
    let bytes: [u8; 16] = rand::random();
    let mut marker = String::with_capacity(32);
    for byte in bytes {
        marker.push(char::from(b"0123456789abcdef"[usize::from(byte >> 4)]));
        marker.push(char::from(b"0123456789abcdef"[usize::from(byte & 15)]));
    }
    marker
}

/// Parses an RFC 3339 time (`2019-05-15T12:30:45Z`, optional fraction and offset).
pub(crate) fn parse_rfc3339(text: &str) -> Option<std::time::SystemTime> {
    let bytes = text.as_bytes();
    let number = |range: std::ops::Range<usize>| -> Option<i64> {
        let digits = bytes.get(range)?;
        digits.iter().all(u8::is_ascii_digit).then(|| {
            digits
                .iter()
                .fold(0i64, |n, d| n * 10 + i64::from(d - b'0'))
        })
    };
    let separators = [(4, b'-'), (7, b'-'), (13, b':'), (16, b':')];
    if bytes.len() < 20
        || separators.iter().any(|&(at, c)| bytes[at] != c)
        || !matches!(bytes[10], b'T' | b't' | b' ')
    {
        return None;
    }
    let (year, month, day) = (number(0..4)?, number(5..7)?, number(8..10)?);
    let (hour, minute, second) = (number(11..13)?, number(14..16)?, number(17..19)?);
    let leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0);
    let days_in_month = match month {
        2 if leap => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    };
    if !(1..=12).contains(&month)
        || !(1..=days_in_month).contains(&day)
        || hour > 23
        || minute > 59
        || second > 60
    {
        return None;
    }
    let mut rest = &text[19..];
    if let Some(fraction) = rest.strip_prefix('.') {
        let end = fraction
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(fraction.len());
        if end == 0 {
            return None;
        }
        rest = &fraction[end..];
    }
    let offset = match rest.as_bytes() {
        b"Z" | b"z" => 0,
        [sign, h1, h2, b':', m1, m2] if [h1, h2, m1, m2].iter().all(|b| b.is_ascii_digit()) => {
            let sign = match sign {
                b'+' => 1,
                b'-' => -1,
                _ => return None,
            };
            let hours = i64::from(h1 - b'0') * 10 + i64::from(h2 - b'0');
            let minutes = i64::from(m1 - b'0') * 10 + i64::from(m2 - b'0');
            if hours > 23 || minutes > 59 {
                return None;
            }
            sign * (hours * 3600 + minutes * 60)
        }
        _ => return None,
    };
    // Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * ((month + 9) % 12) + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let secs = days * 86_400 + hour * 3600 + minute * 60 + second - offset;
    let secs = u64::try_from(secs).ok()?;
    Some(std::time::UNIX_EPOCH + Duration::from_secs(secs))
}

/// Every alias of the record a `GET /aliases/{alias}` answer shows (all its formats).
pub(crate) fn parse_reveal_aliases(body: &[u8]) -> Result<Vec<Alias>, Report<VaultError>> {
    #[derive(Deserialize)]
    struct Answer<'a> {
        #[serde(borrow)]
        data: Vec<Record<'a>>,
    }
    #[derive(Deserialize)]
    struct Record<'a> {
        #[serde(borrow, default)]
        aliases: Vec<AliasDto<'a>>,
    }
    let answer: Answer<'_> = parse_json(body, "GET /aliases/{alias}")?;
    let [record] = answer.data.as_slice() else {
        return Err(unexpected("expected exactly one record".to_owned()));
    };
    record
        .aliases
        .iter()
        .map(|entry| {
            Alias::new(&entry.alias)
                .map_err(|_| unexpected("the record has an alias that is not valid".to_owned()))
        })
        .collect()
}

fn validated<T: std::str::FromStr>(value: &str, field: CardField) -> Result<T, Report<VaultError>> {
    value.parse().map_err(|_| {
        unexpected(format!(
            "the vault returned a {field} that fails validation"
        ))
    })
}

/// Parses JSON without ever putting the body (or serde's message, which can quote
/// values) into the error: only what kind of error and where.
pub(crate) fn parse_json<'de, T: Deserialize<'de>>(
    body: &'de [u8],
    what: &str,
) -> Result<T, Report<VaultError>> {
    serde_json::from_slice(body).map_err(|e| json_error(&e, body.len(), what))
}

/// [`parse_json`] through a seed, which builds its result as the body is read.
fn parse_json_seed<'de, S: DeserializeSeed<'de>>(
    body: &'de [u8],
    what: &str,
    seed: S,
) -> Result<S::Value, Report<VaultError>> {
    let mut deserializer = serde_json::Deserializer::from_slice(body);
    seed.deserialize(&mut deserializer)
        .and_then(|value| deserializer.end().map(|()| value))
        .map_err(|e| json_error(&e, body.len(), what))
}

/// What is wrong with a JSON answer: the kind of error and where, never the content
/// (serde's message can quote values).
fn json_error(e: &serde_json::Error, len: usize, what: &str) -> Report<VaultError> {
    let kind = match e.classify() {
        serde_json::error::Category::Syntax => "is not valid JSON",
        serde_json::error::Category::Eof => "is truncated JSON",
        serde_json::error::Category::Data => "does not have the expected fields or types",
        serde_json::error::Category::Io => "could not be read",
    };
    unexpected(format!(
        "the {what} response ({len} bytes) {kind} (line {}, column {})",
        e.line(),
        e.column()
    ))
}

pub(crate) fn unexpected(detail: String) -> Report<VaultError> {
    Report::new(VaultError::UnexpectedResponse).attach(Detail::new(detail))
}

// ---------------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------------

/// VGS's error body: `{"errors":[{status,title,code,detail,href}],"trace_id":…}`
/// (v1 has no `code` and no `trace_id`).
#[derive(Deserialize)]
struct ErrorBody {
    #[serde(default)]
    errors: Vec<ApiError>,
    #[serde(default)]
    trace_id: Option<String>,
}

#[derive(Deserialize)]
struct ApiError {
    #[serde(default)]
    title: Option<String>,
    #[serde(default)]
    code: Option<String>,
    #[serde(default)]
    detail: Option<String>,
}

/// What the connector was doing when the vault answered with an error: it decides
/// what a 404 means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Operation<'a> {
    /// Storing values: a 404 means the vault does not exist.
    Create,
    /// Reading or deleting one alias: a 404 means the alias is unknown, unless the
    /// vault says the vault itself is unknown.
    Alias(&'a str),
    /// Reading or deleting several aliases.
    Aliases,
}

/// Maps an error response to a `VaultError` with safe attachments: the status, the
/// trace id, VGS's `detail` (capped), the retry-after wait. Never the body itself.
pub(crate) fn error_from_response(
    status: u16,
    retry_after: Option<Duration>,
    header_trace_id: Option<String>,
    body: &[u8],
    operation: Operation<'_>,
) -> Report<VaultError> {
    let parsed: Option<ErrorBody> = serde_json::from_slice(body).ok();
    let first = parsed.as_ref().and_then(|b| b.errors.first());
    let code = first.and_then(|e| e.code.as_deref()).unwrap_or("");
    let text = first
        .and_then(|e| e.detail.as_deref().or(e.title.as_deref()))
        .map(str::to_owned);
    let says_vault = code.contains("vault")
        || text.as_deref().is_some_and(|t| {
            let t = t.to_ascii_lowercase();
            t.contains("vault") && !t.contains("alias")
        });

    let (kind, fallback) = match status {
        400 | 413 | 422 => (VaultError::InvalidRequest, "the vault refused the request"),
        401 => (
            VaultError::InvalidCredentials,
            "the vault rejected the credentials",
        ),
        403 if says_reveal_disabled(text.as_deref()) => (
            VaultError::RevealDisabled,
            "revealing values is not enabled for this vault",
        ),
        403 => (
            VaultError::Forbidden,
            "the credentials lack the permission (scope) for this call",
        ),
        404 => match operation {
            Operation::Create => (
                VaultError::VaultNotFound,
                "the vault does not exist in this environment",
            ),
            _ if says_vault => (
                VaultError::VaultNotFound,
                "the vault does not exist in this environment",
            ),
            Operation::Alias(_) | Operation::Aliases => {
                (VaultError::AliasNotFound, "alias not found")
            }
        },
        429 => (
            VaultError::RateLimited,
            "the vault is rate limiting this client",
        ),
        500..=599 => (VaultError::Upstream, "the vault had a server error"),
        _ => (
            VaultError::UnexpectedResponse,
            "the vault answered with an unexpected status",
        ),
    };

    let mut report = Report::new(kind).attach(HttpStatus(status));
    let mut detail = text.unwrap_or_else(|| fallback.to_owned());
    if let (VaultError::AliasNotFound, Operation::Alias(alias)) = (kind, operation) {
        detail = format!("alias {alias} not found: {detail}");
    }
    report = report.attach(Detail::new(detail));
    if let Some(trace) = parsed.and_then(|b| b.trace_id).or(header_trace_id) {
        report = report.attach(TraceId(trace.chars().take(128).collect()));
    }
    if let Some(wait) = retry_after {
        report = report.attach(RetryAfter(wait));
    }
    report
}

/// Whether a 403's text is VGS's "reveal is disabled for this vault" (its note on the
/// reveal endpoints: "…it is disabled by default. To enable it, please contact…"),
/// rather than a missing scope.
fn says_reveal_disabled(text: Option<&str>) -> bool {
    text.is_some_and(|t| {
        let t = t.to_ascii_lowercase();
        t.contains("disabled") && (t.contains("reveal") || t.contains("sensitive data"))
    })
}

/// Parses `Retry-After` given in seconds (VGS's form); HTTP dates are ignored.
/// `Retry-After` in seconds, capped at a day: a larger value (or one that would
/// overflow a deadline) is not a wait anyone means.
pub(crate) fn parse_retry_after(value: &str) -> Option<Duration> {
    const CAP_SECS: u64 = 86_400;
    value
        .trim()
        .parse::<u64>()
        .ok()
        .map(|secs| Duration::from_secs(secs.min(CAP_SECS)))
}

#[cfg(test)]
mod tests {
    use vault_core::ReportExt;

    use super::*;

    #[test]
    fn retry_after_is_seconds_capped_at_a_day() {
        assert_eq!(parse_retry_after(" 3 "), Some(Duration::from_secs(3)));
        assert_eq!(
            parse_retry_after("18446744073709551615"),
            Some(Duration::from_secs(86_400))
        );
        assert_eq!(parse_retry_after("soon"), None);
    }

    fn card() -> Card {
        serde_json::from_str(
            r#"{"card_number":"4111111111111111","card_exp_month":"4","card_exp_year":"2030","card_cvc":"123","card_holder_name":"Ada Lovelace"}"#,
        )
        .expect("card")
    }

    const FORMATS: Formats = Formats {
        card_number: AliasFormat::FpeSixTFour,
    };

    #[test]
    fn per_field_body_stores_each_field_with_cvc_volatile() {
        let values = per_field_values(0, &card(), FORMATS);
        let body: serde_json::Value =
            serde_json::from_slice(&create_aliases_body(&values)).expect("json");
        assert_eq!(
            body,
            serde_json::json!({"data":[
                {"value":"4111111111111111","classifiers":["vaultlink","card_number"],"format":"FPE_SIX_T_FOUR","storage":"PERSISTENT"},
                {"value":"04","classifiers":["vaultlink","card_exp_month"],"format":"UUID","storage":"PERSISTENT"},
                {"value":"2030","classifiers":["vaultlink","card_exp_year"],"format":"UUID","storage":"PERSISTENT"},
                {"value":"123","classifiers":["vaultlink","card_cvc"],"format":"UUID","storage":"VOLATILE"},
                {"value":"Ada Lovelace","classifiers":["vaultlink","card_holder_name"],"format":"UUID","storage":"PERSISTENT"}
            ]})
        );
    }

    #[test]
    fn single_id_keeps_the_cvc_apart_and_volatile() {
        let values = single_id_values(0, &card(), "m4rk3r");
        assert_eq!(values.len(), 2);
        assert_eq!(values[0].slot.storage, Storage::Persistent);
        assert!(
            !values[0].value.expose_secret().contains("123\""),
            "CVC inside the card record"
        );
        assert_eq!(values[1].slot.field, SlotField::Field(CardField::CardCvc));
        assert_eq!(values[1].slot.storage, Storage::Volatile);
        let (back, legacy) =
            card_from_whole(&values[0].value, Some(SecretString::from("123".to_owned())))
                .expect("round trip");
        assert_eq!(back, card());
        assert!(!legacy);
    }

    #[test]
    fn a_single_id_record_is_marked_as_one_cards_own() {
        let marked = single_id_values(0, &card(), &new_record_marker());
        assert!(whole_card_is_marked(&marked[0].value));
        // Two cards with equal data still get unequal records.
        let other = single_id_values(0, &card(), &new_record_marker());
        assert_ne!(
            marked[0].value.expose_secret(),
            other[0].value.expose_secret()
        );
        // A record written before the marker existed (or by another tool) reads back
        // but is not known to be one card's own.
        let unmarked = SecretString::from(
            r#"{"card_number":"4111111111111111","card_exp_month":"04","card_exp_year":"2030"}"#
                .to_owned(),
        );
        assert!(!whole_card_is_marked(&unmarked));
        // It reads, and says it is not today's layout.
        assert!(card_from_whole(&unmarked, None).expect("reads").1);
        // Nor is Hyperswitch's, with or without `card_cvc`; the CVC inside reads.
        let hyperswitch = SecretString::from(
            r#"{"card_number":"4111111111111111","card_exp_month":"04","card_exp_year":"2030","card_cvc":"123"}"#.to_owned(),
        );
        let (card, legacy) = card_from_whole(&hyperswitch, None).expect("reads");
        assert!(legacy);
        assert_eq!(card.cvc.as_ref().map(Cvc::expose_secret), Some("123"));
        assert!(!whole_card_is_marked(&SecretString::from(
            "not json".to_owned()
        )));
        assert_eq!(new_record_marker().len(), 32);
    }

    #[test]
    fn rfc3339_times_parse_to_the_right_instant() {
        use std::time::{Duration, UNIX_EPOCH};
        let at = |secs: u64| Some(UNIX_EPOCH + Duration::from_secs(secs));
        assert_eq!(parse_rfc3339("1970-01-01T00:00:00Z"), at(0));
        assert_eq!(parse_rfc3339("2024-01-01T00:00:00Z"), at(1_704_067_200));
        assert_eq!(parse_rfc3339("2024-02-29T12:30:45.123Z"), at(1_709_209_845));
        assert_eq!(
            parse_rfc3339("2024-01-01T02:00:00+02:00"),
            at(1_704_067_200)
        );
        assert_eq!(
            parse_rfc3339("2023-12-31T23:00:00-01:00"),
            at(1_704_067_200)
        );
        assert_eq!(
            parse_rfc3339("2024-02-29T00:00:00Z"),
            at(1_709_164_800),
            "a leap day"
        );
        for bad in [
            "",
            "yesterday",
            "2024-13-01T00:00:00Z",
            "2024-01-01 00:00",
            "2024-01-01T00:00:00",
            "2024-02-30T00:00:00Z",
            "2023-02-29T00:00:00Z",
            "2024-04-31T00:00:00Z",
            "2024-01-01T00:00:00.Z",
            "2024-01-01T00:00:00+-1:00",
            "2024-01-01T00:00:00++1:00",
            "2024-01-01T00:00:00+24:00",
            "2024-01-01T00:00:00+01:60",
        ] {
            assert_eq!(parse_rfc3339(bad), None, "{bad}");
        }
    }

    fn slots() -> Vec<Slot> {
        per_field_values(0, &card(), FORMATS)
            .iter()
            .map(|v| v.slot)
            .collect()
    }

    #[test]
    fn create_response_is_matched_by_position_not_value() {
        let body = br#"{"data":[
            {"value":"ignored","aliases":[{"alias":"tok_sandbox_uuidform","format":"UUID"},{"alias":"4111114589301111","format":"FPE_SIX_T_FOUR"}],"storage":"PERSISTENT"},
            {"aliases":[{"value":"tok_sandbox_month","format":"UUID"}]},
            {"aliases":[{"alias":"tok_sandbox_year","format":"UUID"}],"storage":"PERSISTENT"},
            {"aliases":[{"alias":"tok_sandbox_cvc","format":"UUID"}],"storage":"VOLATILE"},
            {"aliases":[{"alias":"tok_sandbox_name"}],"storage":"PERSISTENT","created_at":null,"classifiers":[]}
        ]}"#;
        let stored = parse_create_aliases(body, &slots()).expect("parses");
        let aliases: Vec<_> = stored.iter().map(|s| s.alias.alias.as_str()).collect();
        assert_eq!(
            aliases,
            [
                "4111114589301111",
                "tok_sandbox_month",
                "tok_sandbox_year",
                "tok_sandbox_cvc",
                "tok_sandbox_name"
            ]
        );
        assert_eq!(stored[0].alias.format, AliasFormat::FpeSixTFour);
        assert_eq!(stored[3].alias.storage, Storage::Volatile);
        assert_eq!(stored[4].alias.format, AliasFormat::Uuid);
    }

    #[test]
    fn create_response_with_wrong_count_or_persisted_cvc_is_refused() {
        let short = br#"{"data":[{"aliases":[{"alias":"a1","format":"UUID"}]}]}"#;
        let err = parse_create_aliases(short, &slots()).expect_err("count");
        assert_eq!(err.kind(), VaultError::UnexpectedResponse);
        assert!(err.details()[0].contains("1 records for 5 values"));

        let persisted = br#"{"data":[
            {"aliases":[{"alias":"a1","format":"FPE_SIX_T_FOUR"}]},
            {"aliases":[{"alias":"a2","format":"UUID"}]},
            {"aliases":[{"alias":"a3","format":"UUID"}]},
            {"aliases":[{"alias":"a4","format":"UUID"}],"storage":"PERSISTENT"},
            {"aliases":[{"alias":"a5","format":"UUID"}]}
        ]}"#;
        let err = parse_create_aliases(persisted, &slots()).expect_err("cvc persisted");
        assert!(err.details()[0].contains("record 3 came back PERSISTENT but was sent VOLATILE"));
    }

    #[test]
    fn a_record_with_a_repeated_storage_or_aliases_key_is_refused() {
        // Which `storage` counts must not be left to the parser: a CVC sent VOLATILE
        // whose record says PERSISTENT then VOLATILE is not proven volatile.
        let record = |i: usize, extra: &str| {
            format!(r#"{{"aliases":[{{"alias":"a{i}","format":"UUID"}}]{extra}}}"#)
        };
        for repeated in [
            r#","storage":"PERSISTENT","storage":"VOLATILE""#,
            r#","aliases":[{"alias":"b3","format":"UUID"}]"#,
        ] {
            let records: Vec<String> = (0..5)
                .map(|i| match i {
                    3 => record(i, repeated),
                    _ => record(i, ""),
                })
                .collect();
            let body = format!(r#"{{"data":[{}]}}"#, records.join(","));
            let err = parse_create_aliases(body.as_bytes(), &slots()).expect_err(repeated);
            assert_eq!(err.kind(), VaultError::UnexpectedResponse);
            assert!(
                err.details()[0].contains("does not have the expected fields or types"),
                "{:?}",
                err.details()
            );
        }
    }

    #[test]
    fn malformed_json_is_described_without_the_body() {
        let body = br#"{"data":[{"value":"4111111111111111","aliases":[{"alias":5}]}]}"#;
        let err = parse_create_aliases(body, &slots()[..1]).expect_err("bad type");
        let rendered = format!("{err:?}");
        assert!(!rendered.contains("4111111111111111"), "{rendered}");
        assert!(err.details()[0].contains("does not have the expected fields or types"));
        let err = parse_reveal_one(br#"{"data":[{"value":"41111111"#).expect_err("truncated");
        assert!(
            err.details()[0].contains("truncated JSON"),
            "{:?}",
            err.details()
        );
        assert!(!format!("{err:?}").contains("41111111"));
    }

    #[test]
    fn reveal_parsers_read_values() {
        let one = parse_reveal_one(br#"{"data":[{"value":"123","aliases":[]}]}"#).expect("one");
        assert_eq!(one.expose_secret(), "123");
        assert!(parse_reveal_one(br#"{"data":[]}"#).is_err());
        let (a1, a2, a3) = (
            Alias::new("a1").expect("alias"),
            Alias::new("a2").expect("alias"),
            Alias::new("a3").expect("alias"),
        );
        let many = parse_reveal_many(
            br#"{"data":{"a2":{"value":"y","storage":"VOLATILE"},"zz":{"value":"z"},"a1":{"value":"x"}}}"#,
            &[&a1, &a2, &a3],
        )
        .expect("many");
        let values: Vec<_> = many
            .iter()
            .map(|v| v.as_ref().map(|s| s.expose_secret()))
            .collect();
        assert_eq!(values, [Some("x"), Some("y"), None]);
        assert!(parse_reveal_many(br#"{"data":{"a1":{}}}"#, &[&a1]).is_err());
    }

    #[test]
    fn fields_rebuild_a_validated_card_and_tolerate_missing_cvc() {
        let s = |v: &str| Some(SecretString::from(v.to_owned()));
        let card = card_from_fields(FieldValues {
            number: s("4111111111111111"),
            exp_month: s("04"),
            exp_year: s("2030"),
            cvc: None,
            holder_name: None,
        })
        .expect("card");
        assert!(card.cvc.is_none());
        let bad = card_from_fields(FieldValues {
            number: s("4111111111111112"),
            exp_month: s("04"),
            exp_year: s("2030"),
            ..FieldValues::default()
        })
        .expect_err("luhn");
        assert_eq!(bad.kind(), VaultError::UnexpectedResponse);
        assert!(!format!("{bad:?}").contains("4111111111111112"));
    }

    #[test]
    fn error_bodies_map_to_kinds_with_safe_attachments() {
        let v2 = br#"{"errors":[{"status":404,"code":"not_found","detail":"Alias does not exist"}],"trace_id":"tr-1"}"#;
        let err = error_from_response(404, None, None, v2, Operation::Alias("tok_x"));
        assert_eq!(err.kind(), VaultError::AliasNotFound);
        assert_eq!(err.trace_id(), Some("tr-1"));
        assert_eq!(err.http_status(), Some(404));
        assert_eq!(
            err.details(),
            vec!["alias tok_x not found: Alias does not exist"]
        );

        let vault = br#"{"errors":[{"status":404,"code":"vault_not_found","detail":"Unknown vault"}],"trace_id":"t"}"#;
        assert_eq!(
            error_from_response(404, None, None, vault, Operation::Alias("a")).kind(),
            VaultError::VaultNotFound
        );
        assert_eq!(
            error_from_response(404, None, None, b"", Operation::Create).kind(),
            VaultError::VaultNotFound
        );

        let v1 = br#"{"errors":[{"status":400,"title":"Bad request","detail":"Too many values (limit: 20)","href":"https://x/aliases"}]}"#;
        let err = error_from_response(400, None, None, v1, Operation::Create);
        assert_eq!(err.kind(), VaultError::InvalidRequest);
        assert_eq!(err.details(), vec!["Too many values (limit: 20)"]);

        let err = error_from_response(
            429,
            Some(Duration::from_secs(3)),
            Some("hdr".into()),
            b"not json",
            Operation::Aliases,
        );
        assert_eq!(err.kind(), VaultError::RateLimited);
        assert_eq!(err.retry_after(), Some(Duration::from_secs(3)));
        assert_eq!(err.trace_id(), Some("hdr"));

        for (status, kind) in [
            (401, VaultError::InvalidCredentials),
            (403, VaultError::Forbidden),
            (500, VaultError::Upstream),
            (503, VaultError::Upstream),
            (302, VaultError::UnexpectedResponse),
        ] {
            assert_eq!(
                error_from_response(status, None, None, b"<html>", Operation::Create).kind(),
                kind
            );
        }
    }

    #[test]
    fn retry_after_reads_seconds() {
        assert_eq!(parse_retry_after(" 2 "), Some(Duration::from_secs(2)));
        assert_eq!(parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT"), None);
    }

    mod properties {
        //! Hostile responses: random bytes, truncated and mistyped JSON, huge strings.
        //! Every parser returns a typed error and never repeats a value.

        use proptest::prelude::*;

        use super::*;

        fn valid_create_body() -> String {
            r#"{"data":[{"value":"4111111111111111","aliases":[{"alias":"411111abcdef1111","format":"FPE_SIX_T_FOUR"}],"storage":"PERSISTENT"},{"aliases":[{"alias":"tok_m","format":"UUID"}]},{"aliases":[{"alias":"tok_y","format":"UUID"}]},{"aliases":[{"alias":"tok_c","format":"UUID"}],"storage":"VOLATILE"},{"aliases":[{"alias":"tok_h","format":"UUID"}]}]}"#.to_owned()
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(512))]

            #[test]
            fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
                let _ = parse_create_aliases(&bytes, &slots());
                let _ = parse_reveal_one(&bytes);
                let _ = parse_reveal_many(&bytes, &[&Alias::new("a").expect("alias")]);
                let err = error_from_response(500, None, None, &bytes, Operation::Aliases);
                prop_assert_eq!(err.kind(), VaultError::Upstream);
            }

            #[test]
            fn truncated_json_is_an_unexpected_response_without_values(cut in 0usize..400) {
                let body = valid_create_body();
                let cut = cut.min(body.len() - 1);
                let err = parse_create_aliases(&body.as_bytes()[..cut], &slots()).expect_err("truncated");
                prop_assert_eq!(err.kind(), VaultError::UnexpectedResponse);
                let rendered = format!("{err:?}");
                prop_assert!(!rendered.contains("4111111111111111"));
            }

            #[test]
            fn mistyped_fields_are_refused(value in prop_oneof![Just("5"), Just("null"), Just("[]"), Just("{}"), Just("true")]) {
                let body = format!(r#"{{"data":[{{"value":{value},"aliases":{value},"storage":{value}}}]}}"#);
                prop_assert!(parse_create_aliases(body.as_bytes(), &slots()[..1]).is_err());
                let body = format!(r#"{{"data":{{"a":{{"value":{value}}}}}}}"#);
                let _ = parse_reveal_many(body.as_bytes(), &[&Alias::new("a").expect("alias")]);
            }

            #[test]
            fn error_details_are_capped(len in 0usize..100_000) {
                let body = format!(r#"{{"errors":[{{"status":400,"detail":"{}"}}]}}"#, "d".repeat(len));
                let err = error_from_response(400, None, None, body.as_bytes(), Operation::Create);
                prop_assert!(err.details().iter().all(|d| d.chars().count() <= vault_core::Detail::MAX_LEN + 1));
            }
        }

        #[test]
        fn a_huge_value_is_parsed_without_being_echoed() {
            let huge = "9".repeat(1 << 20);
            let body = format!(r#"{{"data":[{{"value":"{huge}"}}]}}"#);
            let value = parse_reveal_one(body.as_bytes()).expect("a value");
            assert_eq!(value.expose_secret().len(), 1 << 20);
            let err = card_from_fields(FieldValues {
                number: Some(value),
                exp_month: Some(SecretString::from("01".to_owned())),
                exp_year: Some(SecretString::from("2030".to_owned())),
                ..FieldValues::default()
            })
            .expect_err("not a card number");
            assert!(format!("{err:?}").len() < 4_096);
        }

        #[test]
        fn non_utf8_bytes_are_refused() {
            let body = b"{\"data\":[{\"value\":\"\xff\xfe\"}]}";
            assert!(parse_reveal_one(body).is_err());
        }
    }
}
