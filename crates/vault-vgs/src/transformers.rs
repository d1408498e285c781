//! VGS's JSON: `pub(crate)` wire types and the pure conversions between them and
//! vault-core's types (request bodies, response matching, error bodies). No I/O here.

use std::borrow::Cow;
use std::collections::HashMap;
use std::time::Duration;

use error_stack::Report;
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use vault_core::{
    Alias, AliasFormat, Card, CardField, CardHolderName, CardNumber, Cvc, Detail, ExpiryMonth,
    ExpiryYear, FieldAlias, HttpStatus, RetryAfter, Storage, TraceId, VaultError,
};

/// The most values VGS accepts in one `POST /aliases` (and one batch reveal/delete).
pub(crate) const MAX_VALUES_PER_REQUEST: usize = 20;

/// The classifier every value stored by vaultlink carries, beside its field name.
const CLASSIFIER: &str = "vaultlink";

// ---------------------------------------------------------------------------------
// Requests
// ---------------------------------------------------------------------------------

/// `POST /aliases` body.
#[derive(Serialize)]
pub(crate) struct CreateAliasesRequest<'a> {
    pub(crate) data: Vec<CreateAlias<'a>>,
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

/// The field a slot holds: a card field, or the whole card as one record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SlotField {
    Field(CardField),
    WholeCard,
}

impl SlotField {
    fn classifier(self) -> &'static str {
        match self {
            SlotField::Field(field) => field.as_str(),
            SlotField::WholeCard => "card",
        }
    }
}

/// A value to store, borrowed or owned (expiry digits are formatted on the fly), kept
/// secret until serialised.
pub(crate) struct SlotValue {
    pub(crate) slot: Slot,
    pub(crate) value: SecretString,
}

/// The formats the connector uses per field.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Formats {
    pub(crate) card_number: AliasFormat,
}

/// Splits a card into the values to store, one per field. The CVC is always VOLATILE;
/// everything else PERSISTENT.
pub(crate) fn per_field_values(item: usize, card: &Card, formats: Formats) -> Vec<SlotValue> {
    let slot = |field, format, storage| Slot {
        item,
        field: SlotField::Field(field),
        format,
        storage,
    };
    let mut values = vec![
        SlotValue {
            slot: slot(
                CardField::CardNumber,
                formats.card_number,
                Storage::Persistent,
            ),
            value: secret(card.number.expose_secret()),
        },
        SlotValue {
            slot: slot(
                CardField::CardExpMonth,
                AliasFormat::Uuid,
                Storage::Persistent,
            ),
            value: SecretString::from(card.exp_month.two_digits()),
        },
        SlotValue {
            slot: slot(
                CardField::CardExpYear,
                AliasFormat::Uuid,
                Storage::Persistent,
            ),
            value: SecretString::from(card.exp_year.get().to_string()),
        },
    ];
    if let Some(cvc) = &card.cvc {
        values.push(cvc_value(item, cvc));
    }
    if let Some(name) = &card.holder_name {
        values.push(SlotValue {
            slot: slot(
                CardField::CardHolderName,
                AliasFormat::Uuid,
                Storage::Persistent,
            ),
            value: secret(name.expose_secret()),
        });
    }
    values
}

/// Stores the card (without CVC) as one PERSISTENT record and the CVC, if any, as a
/// separate VOLATILE one.
pub(crate) fn single_id_values(item: usize, card: &Card) -> Vec<SlotValue> {
    let whole = WholeCard {
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

/// The JSON value of a single-id record.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct WholeCard<'a> {
    #[serde(borrow)]
    card_number: Cow<'a, str>,
    card_exp_month: String,
    card_exp_year: String,
    #[serde(borrow, skip_serializing_if = "Option::is_none", default)]
    card_holder_name: Option<Cow<'a, str>>,
}

/// Serialises a `POST /aliases` body for up to 20 values.
pub(crate) fn create_aliases_body(values: &[SlotValue]) -> Vec<u8> {
    let body = CreateAliasesRequest {
        data: values
            .iter()
            .map(|v| CreateAlias {
                value: v.value.expose_secret(),
                classifiers: [CLASSIFIER, v.slot.field.classifier()],
                format: v.slot.format,
                storage: v.slot.storage,
            })
            .collect(),
    };
    serde_json::to_vec(&body).expect("serialising strings to JSON cannot fail")
}

// ---------------------------------------------------------------------------------
// Responses
// ---------------------------------------------------------------------------------

/// `POST /aliases` 201 and `GET /aliases/{alias}` 200.
#[derive(Deserialize)]
pub(crate) struct RevealedList {
    pub(crate) data: Vec<RevealedData>,
}

/// `GET /aliases?aliases=…` 200: a map keyed by alias.
#[derive(Deserialize)]
pub(crate) struct RevealedMap {
    pub(crate) data: HashMap<String, RevealedData>,
}

/// One stored value as VGS returns it.
#[derive(Deserialize)]
pub(crate) struct RevealedData {
    #[serde(default)]
    pub(crate) value: Option<SecretString>,
    #[serde(default)]
    pub(crate) aliases: Vec<AliasDto>,
    #[serde(default)]
    pub(crate) storage: Option<Storage>,
}

/// An alias entry; the spec's schema names the field `alias`, its example `value`.
#[derive(Deserialize)]
pub(crate) struct AliasDto {
    #[serde(alias = "value")]
    pub(crate) alias: String,
    #[serde(default)]
    pub(crate) format: Option<AliasFormat>,
}

/// An alias the vault returned for a slot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Stored {
    pub(crate) slot: Slot,
    pub(crate) alias: FieldAlias,
}

/// Parses a `POST /aliases` answer and matches it to the request's slots by position,
/// verifying the count and each record's storage (a CVC must come back VOLATILE).
pub(crate) fn parse_create_aliases(
    body: &[u8],
    slots: &[Slot],
) -> Result<Vec<Stored>, Report<VaultError>> {
    let list: RevealedList = parse_json(body, "POST /aliases")?;
    if list.data.len() != slots.len() {
        return Err(unexpected(format!(
            "the vault returned {} records for {} values sent",
            list.data.len(),
            slots.len()
        )));
    }
    list.data
        .iter()
        .zip(slots)
        .enumerate()
        .map(|(i, (record, slot))| {
            let storage = record.storage.unwrap_or(Storage::Persistent);
            if storage != slot.storage {
                return Err(unexpected(format!(
                    "record {i} came back {storage} but was sent {}",
                    slot.storage
                )));
            }
            let entry = record
                .aliases
                .iter()
                .find(|a| a.format == Some(slot.format))
                .or_else(|| record.aliases.first())
                .ok_or_else(|| unexpected(format!("record {i} has no alias")))?;
            let alias = Alias::new(&entry.alias)
                .map_err(|_| unexpected(format!("record {i} has an alias that is not valid")))?;
            Ok(Stored {
                slot: *slot,
                alias: FieldAlias {
                    alias,
                    format: entry.format.unwrap_or(slot.format),
                    storage,
                },
            })
        })
        .collect()
}

/// Parses `GET /aliases/{alias}`: exactly one record with a value.
pub(crate) fn parse_reveal_one(body: &[u8]) -> Result<SecretString, Report<VaultError>> {
    let list: RevealedList = parse_json(body, "GET /aliases/{alias}")?;
    let mut data = list.data.into_iter();
    match (data.next(), data.next()) {
        (Some(record), None) => record
            .value
            .ok_or_else(|| unexpected("the record has no value".to_owned())),
        _ => Err(unexpected("expected exactly one record".to_owned())),
    }
}

/// Parses `GET /aliases?aliases=…` into alias -> value.
pub(crate) fn parse_reveal_many(
    body: &[u8],
) -> Result<HashMap<String, SecretString>, Report<VaultError>> {
    let map: RevealedMap = parse_json(body, "GET /aliases")?;
    map.data
        .into_iter()
        .map(|(alias, record)| match record.value {
            Some(value) => Ok((alias, value)),
            None => Err(unexpected("a record has no value".to_owned())),
        })
        .collect()
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

/// Rebuilds and validates a card from its field values. Number and expiry are
/// required; CVC and holder name may be absent (expired or deleted).
pub(crate) fn card_from_fields(values: FieldValues) -> Result<Card, Report<VaultError>> {
    let required = |value: Option<SecretString>, field: CardField| {
        value.ok_or_else(|| unexpected(format!("the vault returned no value for {field}")))
    };
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

/// Rebuilds a card from a single-id record (and its CVC, if still held).
pub(crate) fn card_from_whole(
    record: &SecretString,
    cvc: Option<SecretString>,
) -> Result<Card, Report<VaultError>> {
    let whole: WholeCard<'_> = serde_json::from_str(record.expose_secret())
        .map_err(|_| unexpected("the stored card record is not a vaultlink card".to_owned()))?;
    card_from_fields(FieldValues {
        number: Some(secret(&whole.card_number)),
        exp_month: Some(SecretString::from(whole.card_exp_month)),
        exp_year: Some(SecretString::from(whole.card_exp_year)),
        cvc,
        holder_name: whole.card_holder_name.as_deref().map(secret),
    })
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
    serde_json::from_slice(body).map_err(|e| {
        let kind = match e.classify() {
            serde_json::error::Category::Syntax => "is not valid JSON",
            serde_json::error::Category::Eof => "is truncated JSON",
            serde_json::error::Category::Data => "does not have the expected fields or types",
            serde_json::error::Category::Io => "could not be read",
        };
        unexpected(format!(
            "the {what} response ({} bytes) {kind} (line {}, column {})",
            body.len(),
            e.line(),
            e.column()
        ))
    })
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

/// Parses `Retry-After` given in seconds (VGS's form); HTTP dates are ignored.
pub(crate) fn parse_retry_after(value: &str) -> Option<Duration> {
    value.trim().parse::<u64>().ok().map(Duration::from_secs)
}

#[cfg(test)]
mod tests {
    use vault_core::ReportExt;

    use super::*;

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
        let values = single_id_values(0, &card());
        assert_eq!(values.len(), 2);
        assert_eq!(values[0].slot.storage, Storage::Persistent);
        assert!(
            !values[0].value.expose_secret().contains("123\""),
            "CVC inside the card record"
        );
        assert_eq!(values[1].slot.field, SlotField::Field(CardField::CardCvc));
        assert_eq!(values[1].slot.storage, Storage::Volatile);
        let back = card_from_whole(&values[0].value, Some(SecretString::from("123".to_owned())))
            .expect("round trip");
        assert_eq!(back, card());
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
        let many = parse_reveal_many(
            br#"{"data":{"a1":{"value":"x"},"a2":{"value":"y","storage":"VOLATILE"}}}"#,
        )
        .expect("many");
        assert_eq!(many["a2"].expose_secret(), "y");
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
                let _ = parse_reveal_many(&bytes);
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
                let _ = parse_reveal_many(body.as_bytes());
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
