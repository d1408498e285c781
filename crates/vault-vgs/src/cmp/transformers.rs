//! CMP's JSON:API: `pub(crate)` wire types of `POST /cards` and `GET /cards/{id}`, the
//! pure conversions to vault-core types, and CMP's error mapping and retry rule.

use std::time::Duration;

use error_stack::Report;
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use vault_core::{
    Alias, Card, CardAliases, CardNumber, ConnectorVaultId, Cvc, CvcStatus, Detail, ExpiryMonth,
    ExpiryYear, Fingerprint, HttpStatus, InsertResponse, PaymentMethodData, RetrieveResponse,
    RetryAfter, TraceId, VaultError,
};

use crate::dialect::Dialect;
use crate::transformers::{Operation, parse_json, unexpected};

/// JSON:API's media type: every CMP request body has it (anything else is 415).
pub(crate) const MEDIA_TYPE: &str = "application/vnd.api+json";

/// How the executor speaks CMP: JSON:API bodies; 2xx and the duplicate answer 303 are
/// answers; CMP's error mapping (which carries its retry rule: 500 is
/// [`VaultError::ServerError`], never retried; 502/503/504 are
/// [`VaultError::Upstream`], retried with backoff; 4xx never).
pub(crate) const DIALECT: Dialect = Dialect {
    content_type: MEDIA_TYPE,
    is_answer,
    error: error_from_response,
};

fn is_answer(status: u16) -> bool {
    (200..300).contains(&status) || status == 303
}

// ---------------------------------------------------------------------------------
// Requests
// ---------------------------------------------------------------------------------

/// `POST /cards` body: `{"data":{"attributes":{…}}}`, as CMP's reference shows it.
#[derive(Serialize)]
struct CreateCard<'a> {
    data: CreateCardData<'a>,
}

#[derive(Serialize)]
struct CreateCardData<'a> {
    attributes: CreateCardAttributes<'a>,
}

#[derive(Serialize)]
struct CreateCardAttributes<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    pan: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pan_alias: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    cvc: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    cvc_alias: Option<&'a str>,
    exp_month: u8,
    /// Two digits, as CMP's reference shows it (`"exp_year":28`).
    exp_year: u16,
}

/// The body that stores `card` (number, CVC if any, expiry) as one card object.
pub(crate) fn create_card_body(card: &Card) -> Vec<u8> {
    create_body(CreateCardAttributes {
        pan: Some(card.number.expose_secret()),
        pan_alias: None,
        cvc: card.cvc.as_ref().map(Cvc::expose_secret),
        cvc_alias: None,
        exp_month: card.exp_month.get(),
        exp_year: card.exp_year.get() % 100,
    })
}

/// The body that makes a card object from aliases already in the tenant's vault.
pub(crate) fn create_from_aliases_body(aliases: &CardAliases) -> Vec<u8> {
    create_body(CreateCardAttributes {
        pan: None,
        pan_alias: Some(aliases.pan_alias.as_str()),
        cvc: None,
        cvc_alias: aliases.cvc_alias.as_ref().map(Alias::as_str),
        exp_month: aliases.exp_month.get(),
        exp_year: aliases.exp_year.get() % 100,
    })
}

fn create_body(attributes: CreateCardAttributes<'_>) -> Vec<u8> {
    let body = CreateCard {
        data: CreateCardData { attributes },
    };
    serde_json::to_vec(&body).expect("serialising strings and numbers to JSON cannot fail")
}

// ---------------------------------------------------------------------------------
// Responses
// ---------------------------------------------------------------------------------

/// `{"data":{"id":"CRD…","type":"cards","attributes":{…}}}`.
#[derive(Deserialize)]
struct CardDocument {
    data: CardResource,
}

#[derive(Deserialize)]
struct CardResource {
    id: String,
    #[serde(rename = "type", default)]
    kind: Option<String>,
    #[serde(default)]
    attributes: CardAttributes,
}

/// The card's attributes; `pan` and `cvc` only for PCI clients (`cards:read-pci`),
/// `cvc` only while its volatile window is open. Unknown attributes are ignored.
#[derive(Deserialize, Default)]
struct CardAttributes {
    #[serde(default)]
    pan: Option<SecretString>,
    #[serde(default)]
    cvc: Option<SecretString>,
    #[serde(default)]
    pan_alias: Option<String>,
    #[serde(default)]
    cvc_alias: Option<String>,
    #[serde(default)]
    cvc_status: Option<String>,
    #[serde(default)]
    bin: Option<String>,
    #[serde(default)]
    first8: Option<String>,
    #[serde(default)]
    last4: Option<String>,
    #[serde(default)]
    exp_month: Option<ExpiryMonth>,
    #[serde(default)]
    exp_year: Option<ExpiryYear>,
    #[serde(default)]
    fingerprint: Option<String>,
}

/// A card object as CMP returned it, converted and validated.
pub(crate) struct CardView {
    /// The persistent card id.
    pub(crate) id: Alias,
    /// The card in clear (PCI view), CVC included while it is held.
    pub(crate) card: Option<Card>,
    /// Aliases, BIN, last four, expiry, CVC status (both views carry them).
    pub(crate) aliases: Option<CardAliases>,
    pub(crate) fingerprint: Option<Fingerprint>,
}

/// Parses a card document (`POST /cards` 201 or 303, `GET /cards/{id}` 200).
pub(crate) fn parse_card(body: &[u8], what: &str) -> Result<CardView, Report<VaultError>> {
    let doc: CardDocument = parse_json(body, what)?;
    let resource = doc.data;
    if resource.kind.as_deref().is_some_and(|kind| kind != "cards") {
        return Err(unexpected(format!(
            "the {what} response is a JSON:API resource that is not of type cards"
        )));
    }
    let id = Alias::new(&resource.id).map_err(|_| {
        unexpected(format!(
            "the {what} response has a card id that is not valid"
        ))
    })?;
    let attributes = resource.attributes;
    let expiry = match (attributes.exp_month, attributes.exp_year) {
        (Some(month), Some(year)) => Some((month, year)),
        _ => None,
    };
    let card = match (&attributes.pan, expiry) {
        (Some(pan), Some((month, year))) => {
            let number = CardNumber::new(pan.expose_secret()).map_err(|_| {
                unexpected(format!(
                    "the {what} response has a pan that fails validation"
                ))
            })?;
            let mut card = Card::new(number, month, year);
            if let Some(cvc) = &attributes.cvc {
                card.cvc = Some(Cvc::new(cvc.expose_secret()).map_err(|_| {
                    unexpected(format!(
                        "the {what} response has a cvc that fails validation"
                    ))
                })?);
            }
            Some(card)
        }
        (Some(_), None) => {
            return Err(unexpected(format!(
                "the {what} response has a pan but no exp_month and exp_year"
            )));
        }
        (None, _) => None,
    };
    let aliases = match (&attributes.pan_alias, &attributes.last4, expiry) {
        (Some(pan_alias), Some(last4), Some((month, year))) => {
            let invalid = |name: &str| {
                unexpected(format!(
                    "the {what} response has a {name} that is not valid"
                ))
            };
            let pan_alias = Alias::new(pan_alias).map_err(|_| invalid("pan_alias"))?;
            let mut aliases =
                CardAliases::new(pan_alias, last4, month, year).map_err(|_| invalid("last4"))?;
            let bin = attributes
                .bin
                .as_deref()
                .or_else(|| attributes.first8.as_deref().and_then(|f| f.get(..6)));
            if let Some(bin) = bin {
                aliases = aliases.with_bin(bin).map_err(|_| invalid("bin"))?;
            }
            if let Some(cvc_alias) = &attributes.cvc_alias {
                aliases = aliases
                    .with_cvc_alias(Alias::new(cvc_alias).map_err(|_| invalid("cvc_alias"))?);
            }
            if let Some(status) = &attributes.cvc_status {
                aliases = aliases.with_cvc_status(CvcStatus::from_wire(status));
            }
            Some(aliases)
        }
        _ => None,
    };
    let fingerprint = attributes
        .fingerprint
        .filter(|f| !f.is_empty() && f.len() <= 256)
        .map(Fingerprint);
    Ok(CardView {
        id,
        card,
        aliases,
        fingerprint,
    })
}

/// Insert's result from a `POST /cards` answer: 201 (created) or 303 (the duplicate
/// check found the PAN: the existing card, flagged `already_stored`). A 303 names the
/// existing card in its body or, failing that, in its `Location`.
pub(crate) fn parse_insert(
    body: &[u8],
    status: u16,
    location: Option<&str>,
) -> Result<InsertResponse, Report<VaultError>> {
    let view = if status == 303 {
        match parse_card(body, "POST /cards 303") {
            Ok(view) => view,
            Err(report) => {
                let id = location
                    .and_then(|l| l.split(['?', '#']).next())
                    .and_then(|l| l.trim_end_matches('/').rsplit('/').next())
                    .and_then(|id| Alias::new(id).ok())
                    .ok_or_else(|| {
                        report.attach(Detail::new(
                            "CMP answered 303 (already stored) without the existing card's id in its body or Location",
                        ))
                    })?;
                CardView {
                    id,
                    card: None,
                    aliases: None,
                    fingerprint: None,
                }
            }
        }
    } else {
        parse_card(body, "POST /cards")?
    };
    let mut response = InsertResponse::new(ConnectorVaultId::Single {
        id: view.id,
        cvc: None,
        cvc_expires_at: None,
    });
    if let Some(aliases) = view.aliases {
        response = response.with_card_aliases(aliases);
    }
    if let Some(fingerprint) = view.fingerprint {
        response = response.with_fingerprint(fingerprint);
    }
    if status == 303 {
        response = response.already_stored();
    }
    Ok(response)
}

/// Retrieve's result from `GET /cards/{id}`: the card in clear (PCI view) or, without
/// `cards:read-pci`, its aliases (non-PCI view). The id must be the one asked for.
pub(crate) fn parse_retrieve(
    body: &[u8],
    asked: &Alias,
) -> Result<RetrieveResponse, Report<VaultError>> {
    let view = parse_card(body, "GET /cards/{id}")?;
    if &view.id != asked {
        return Err(unexpected(
            "GET /cards/{id} answered with another card than the one asked for".to_owned(),
        ));
    }
    match (view.card, view.aliases) {
        (Some(card), _) => Ok(RetrieveResponse::new(PaymentMethodData::Card(card))),
        (None, Some(aliases)) => Ok(RetrieveResponse::new(PaymentMethodData::CardAliases(
            aliases,
        ))),
        (None, None) => Err(unexpected(
            "the GET /cards/{id} response has neither the card (pan, exp_month, exp_year) nor its aliases (pan_alias, last4)"
                .to_owned(),
        )),
    }
}

// ---------------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------------

/// `{"errors":[{"status":"422","code":"…","title":"…","detail":"…","source":{"pointer":"/data/attributes/pan"}}]}`.
#[derive(Deserialize)]
struct ErrorDocument {
    #[serde(default)]
    errors: Vec<ErrorObject>,
}

#[derive(Deserialize)]
struct ErrorObject {
    #[serde(default)]
    code: Option<String>,
    #[serde(default)]
    title: Option<String>,
    #[serde(default)]
    detail: Option<String>,
    #[serde(default)]
    source: Option<ErrorSource>,
}

#[derive(Deserialize)]
struct ErrorSource {
    #[serde(default)]
    pointer: Option<String>,
    #[serde(default)]
    parameter: Option<String>,
}

/// Maps a CMP error response (JSON:API for 4xx and 500; 502/503/504 come from the
/// gateway and are not JSON:API) to a `VaultError` with safe attachments: the status,
/// CMP's `code`, the field (`source.pointer`), its `detail` (capped, digit runs that
/// could be a card number hidden), a trace id from the headers, the retry-after wait.
pub(crate) fn error_from_response(
    status: u16,
    retry_after: Option<Duration>,
    header_trace_id: Option<String>,
    body: &[u8],
    operation: Operation<'_>,
) -> Report<VaultError> {
    let parsed: Option<ErrorDocument> = serde_json::from_slice(body).ok();
    let first = parsed.as_ref().and_then(|doc| doc.errors.first());
    let code = first.and_then(|e| e.code.as_deref()).and_then(token);
    let field = first
        .and_then(|e| e.source.as_ref())
        .and_then(|s| s.pointer.as_deref().or(s.parameter.as_deref()))
        .and_then(|p| p.trim_end_matches('/').rsplit('/').next())
        .and_then(token);
    let text = first
        .and_then(|e| e.detail.as_deref().or(e.title.as_deref()))
        .map(hide_digit_runs);

    let (kind, fallback) = match status {
        400 => (VaultError::InvalidRequest, "CMP refused the request"),
        401 => (
            VaultError::InvalidCredentials,
            "CMP rejected the access token",
        ),
        403 => (
            VaultError::Forbidden,
            "the service account lacks the scope for this call",
        ),
        404 => match operation {
            Operation::Alias(_) => (VaultError::AliasNotFound, "card not found"),
            _ => (
                VaultError::VaultNotFound,
                "CMP's card API was not found at this endpoint",
            ),
        },
        415 => (
            VaultError::InvalidRequest,
            "CMP refused the body's media type (it takes application/vnd.api+json)",
        ),
        422 => (VaultError::InvalidRequest, "CMP could not process the card"),
        429 => (VaultError::RateLimited, "CMP is rate limiting this client"),
        502..=504 => (
            VaultError::Upstream,
            "CMP's gateway answered with a transient error",
        ),
        500..=599 => (
            VaultError::ServerError,
            "CMP had a server error, which its rules say must not be retried",
        ),
        _ => (
            VaultError::UnexpectedResponse,
            "CMP answered with an unexpected status",
        ),
    };

    let mut detail = match kind {
        // A gateway page is not CMP's text: keep our own words.
        VaultError::Upstream => fallback.to_owned(),
        _ => text.unwrap_or_else(|| fallback.to_owned()),
    };
    if let (VaultError::AliasNotFound, Operation::Alias(id)) = (kind, operation) {
        detail = if detail.to_ascii_lowercase().contains("not found") {
            format!("card {id} not found")
        } else {
            format!("card {id} not found: {detail}")
        };
    }
    match (code, field) {
        (Some(code), Some(field)) => detail.push_str(&format!(" (code {code}, field {field})")),
        (Some(code), None) => detail.push_str(&format!(" (code {code})")),
        (None, Some(field)) => detail.push_str(&format!(" (field {field})")),
        (None, None) => {}
    }
    let mut report = Report::new(kind)
        .attach(HttpStatus(status))
        .attach(Detail::new(detail));
    if let Some(trace) = header_trace_id {
        report = report.attach(TraceId(trace.chars().take(128).collect()));
    }
    if let Some(wait) = retry_after {
        report = report.attach(RetryAfter(wait));
    }
    report
}

/// A short machine word from the remote side (`missing-required-field`, `pan`), or
/// `None` if it is anything else.
fn token(text: &str) -> Option<&str> {
    let ok = (1..=64).contains(&text.len())
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
        && !text.bytes().all(|b| b.is_ascii_digit());
    ok.then_some(text)
}

/// Replaces every run of 12 or more digits with `[digits hidden]`: a detail that
/// quoted a card number never reaches a report.
fn hide_digit_runs(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut run = String::new();
    let flush = |run: &mut String, out: &mut String| {
        if run.len() >= 12 {
            out.push_str("[digits hidden]");
        } else {
            out.push_str(run);
        }
        run.clear();
    };
    for c in text.chars() {
        if c.is_ascii_digit() {
            run.push(c);
        } else {
            flush(&mut run, &mut out);
            out.push(c);
        }
    }
    flush(&mut run, &mut out);
    out
}

#[cfg(test)]
mod tests {
    use vault_core::ReportExt;

    use super::*;

    fn card() -> Card {
        serde_json::from_str(
            r#"{"card_number":"4111111111111111","card_exp_month":"4","card_exp_year":"2028","card_cvc":"123"}"#,
        )
        .expect("card")
    }

    #[test]
    fn create_body_is_the_references_json_api_document() {
        let body: serde_json::Value =
            serde_json::from_slice(&create_card_body(&card())).expect("json");
        assert_eq!(
            body,
            serde_json::json!({"data":{"attributes":{"pan":"4111111111111111","cvc":"123","exp_month":4,"exp_year":28}}})
        );
        let aliases = CardAliases::new(
            Alias::new("tok_pan").expect("alias"),
            "1111",
            ExpiryMonth::new(4).expect("m"),
            ExpiryYear::new(2028).expect("y"),
        )
        .expect("aliases")
        .with_cvc_alias(Alias::new("tok_cvc").expect("alias"));
        let body: serde_json::Value =
            serde_json::from_slice(&create_from_aliases_body(&aliases)).expect("json");
        assert_eq!(
            body,
            serde_json::json!({"data":{"attributes":{"pan_alias":"tok_pan","cvc_alias":"tok_cvc","exp_month":4,"exp_year":28}}})
        );
    }

    const PCI: &[u8] = br#"{"data":{"id":"CRDabc","type":"cards","attributes":{
        "pan":"4111111111111111","cvc":"123","pan_alias":"tok_sandbox_pan","cvc_alias":"tok_sandbox_cvc",
        "cvc_status":"active","bin":"411111","first8":"41111111","last4":"1111","exp_month":4,"exp_year":28,
        "fingerprint":"FPRx","created_at":"2026-01-01T00:00:00Z"}}}"#;
    const NON_PCI: &[u8] = br#"{"data":{"id":"CRDabc","type":"cards","attributes":{
        "pan_alias":"tok_sandbox_pan","cvc_alias":"tok_sandbox_cvc","cvc_status":"expired",
        "first8":"41111111","last4":"1111","exp_month":4,"exp_year":28}}}"#;

    #[test]
    fn pci_view_is_a_card_and_non_pci_view_is_typed_aliases() {
        let asked = Alias::new("CRDabc").expect("id");
        let pci = parse_retrieve(PCI, &asked).expect("pci");
        assert_eq!(pci.card(), Some(&card()));
        let non_pci = parse_retrieve(NON_PCI, &asked).expect("non-pci");
        assert!(non_pci.card().is_none());
        let aliases = non_pci.card_aliases().expect("aliases");
        assert_eq!(aliases.pan_alias.as_str(), "tok_sandbox_pan");
        assert_eq!(aliases.bin.as_deref(), Some("411111"));
        assert_eq!(aliases.last4, "1111");
        assert_eq!(aliases.exp_year.get(), 2028);
        assert_eq!(aliases.cvc_status, Some(CvcStatus::Expired));
        let other = parse_retrieve(PCI, &Alias::new("CRDother").expect("id")).expect_err("id");
        assert_eq!(other.kind(), VaultError::UnexpectedResponse);
    }

    #[test]
    fn insert_reads_created_and_duplicate_answers() {
        let created = parse_insert(PCI, 201, None).expect("201");
        assert!(!created.already_stored);
        assert_eq!(
            created.connector_vault_id,
            ConnectorVaultId::Single {
                id: Alias::new("CRDabc").expect("id"),
                cvc: None,
                cvc_expires_at: None,
            }
        );
        assert_eq!(created.fingerprint, Fingerprint("FPRx".to_owned()));
        assert_eq!(
            created.card_aliases.as_ref().map(|a| a.last4.as_str()),
            Some("1111")
        );
        let duplicate = parse_insert(PCI, 303, Some("/cards/CRDabc")).expect("303 body");
        assert!(duplicate.already_stored);
        let bare = parse_insert(b"", 303, Some("https://sandbox.vgsapi.com/cards/CRDold/"))
            .expect("303 location");
        assert!(bare.already_stored);
        assert_eq!(
            bare.connector_vault_id.aliases()[0].as_str(),
            "CRDold",
            "id from Location"
        );
        let err = parse_insert(b"", 303, None).expect_err("no id");
        assert_eq!(err.kind(), VaultError::UnexpectedResponse);
    }

    #[test]
    fn malformed_cards_are_refused_without_quoting_values() {
        let bad_pan = br#"{"data":{"id":"CRDabc","attributes":{"pan":"4111111111111112","exp_month":4,"exp_year":28}}}"#;
        let err = parse_card(bad_pan, "GET").err().expect("luhn");
        assert!(!format!("{err:?}").contains("4111111111111112"));
        let wrong_type = br#"{"data":{"id":"CRDabc","type":"aliases","attributes":{}}}"#;
        assert!(parse_card(wrong_type, "GET").is_err());
        let truncated = &PCI[..40];
        let err = parse_card(truncated, "GET").err().expect("truncated");
        assert!(
            err.details()[0].contains("truncated JSON"),
            "{:?}",
            err.details()
        );
    }

    #[test]
    fn errors_map_to_kinds_with_code_field_and_cmps_retry_rule() {
        let unprocessable = br#"{"errors":[{"status":"422","code":"missing-required-field","title":"Unprocessable Entity","detail":"pan is required","source":{"pointer":"/data/attributes/pan"}}]}"#;
        let err = error_from_response(422, None, None, unprocessable, Operation::Create);
        assert_eq!(err.kind(), VaultError::InvalidRequest);
        assert_eq!(
            err.details(),
            ["pan is required (code missing-required-field, field pan)"]
        );
        let forbidden = br#"{"errors":[{"status":"403","code":"forbidden","detail":"the access token lacks the scope cards:write"}]}"#;
        let err = error_from_response(403, None, None, forbidden, Operation::Create);
        assert_eq!(err.kind(), VaultError::Forbidden);
        assert!(err.details()[0].contains("cards:write"));
        let err = error_from_response(
            404,
            None,
            Some("tr".into()),
            b"{}",
            Operation::Alias("CRDx"),
        );
        assert_eq!(err.kind(), VaultError::AliasNotFound);
        assert!(err.details()[0].starts_with("card CRDx not found"));
        assert_eq!(err.trace_id(), Some("tr"));

        let server = br#"{"errors":[{"status":"500","code":"server-error","detail":"boom"}]}"#;
        let err = error_from_response(500, None, None, server, Operation::Create);
        assert_eq!(err.kind(), VaultError::ServerError);
        assert!(!err.is_retryable(), "CMP: 500 must not be retried");
        for gateway in [502, 503, 504] {
            let err =
                error_from_response(gateway, None, None, b"<html>503</html>", Operation::Create);
            assert_eq!(err.kind(), VaultError::Upstream);
            assert!(err.is_retryable());
        }
        let err = error_from_response(
            415,
            None,
            None,
            b"{\"errors\":[{\"code\":\"unsupported-media-type\"}]}",
            Operation::Create,
        );
        assert_eq!(err.kind(), VaultError::InvalidRequest);
        assert!(err.details()[0].contains("unsupported-media-type"));
        let err = error_from_response(
            429,
            Some(Duration::from_secs(2)),
            None,
            b"",
            Operation::Create,
        );
        assert_eq!(err.retry_after(), Some(Duration::from_secs(2)));
        assert_eq!(
            error_from_response(302, None, None, b"", Operation::Create).kind(),
            VaultError::UnexpectedResponse
        );
    }

    #[test]
    fn error_details_hide_card_numbers_and_odd_codes() {
        let body = br#"{"errors":[{"code":"<script>","detail":"pan 4111111111111111 is invalid","source":{"pointer":"/data/attributes/4111111111111111"}}]}"#;
        let err = error_from_response(422, None, None, body, Operation::Create);
        let rendered = format!("{err:?}");
        assert!(!rendered.contains("4111111111111111"), "{rendered}");
        assert_eq!(err.details(), ["pan [digits hidden] is invalid"]);
    }
}
