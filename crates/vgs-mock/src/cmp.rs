//! The Card Management Platform (CMP) routes, from VGS's CMP reference: `POST /cards`,
//! `GET /cards/{id}`, `DELETE /cards/{id}` with JSON:API bodies, Bearer tokens and scopes,
//! the per-tenant duplicate-card check (303) and the CVC's volatile window.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::SystemTime;

use axum::Router;
use axum::body::Body;
use axum::extract::{FromRequestParts, Path, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use rand::Rng;
use serde_json::{Map, Value, json};

use crate::api::{self, ReadError};
use crate::clock::rfc3339;
use crate::lock;
use crate::state::{MockState, VaultSlot};
use crate::store::Storage;
use crate::token::TokenCheck;

/// JSON:API's media type: CMP's request and response bodies.
pub(crate) const MEDIA_TYPE: &str = "application/vnd.api+json";
const SCOPE_WRITE: &str = "cards:write";
const SCOPE_READ: &str = "cards:read";
const SCOPE_READ_PCI: &str = "cards:read-pci";
/// Largest create body read (a card is a few hundred bytes).
const MAX_CARD_BODY: usize = 64 * 1024;
const BASE58: &[u8] = b"123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz";

/// CMP's routes; mounted at the root beside the alias API.
pub(crate) fn routes() -> Router<MockState> {
    Router::new()
        .route("/cards", post(create))
        .route("/cards/{id}", get(read).delete(remove))
}

// ---------------------------------------------------------------------------------
// The tenant's cards
// ---------------------------------------------------------------------------------

/// One tenant's card objects.
#[derive(Default)]
pub(crate) struct CardStore {
    cards: HashMap<String, CardRecord>,
    /// PAN -> the card the duplicate check answers with.
    by_pan: HashMap<String, String>,
    /// PAN -> its fingerprint: stable for the tenant, even after a delete.
    fingerprints: HashMap<String, String>,
}

struct CardRecord {
    pan: String,
    pan_alias: String,
    cvc: Option<CvcRecord>,
    exp_month: u64,
    exp_year: u64,
    fingerprint: String,
    meta: Map<String, Value>,
    created_at: SystemTime,
}

struct CvcRecord {
    /// `None` once the window is over: the mock forgets the value.
    value: Option<String>,
    alias: String,
    expires_at: SystemTime,
}

impl CardStore {
    pub(crate) fn len(&self) -> usize {
        self.cards.len()
    }

    pub(crate) fn clear(&mut self) {
        *self = CardStore::default();
    }

    /// The card, with its CVC forgotten if the window is over.
    fn get(&mut self, id: &str, now: SystemTime) -> Option<&CardRecord> {
        let card = self.cards.get_mut(id)?;
        if let Some(cvc) = &mut card.cvc {
            if now >= cvc.expires_at {
                cvc.value = None;
            }
        }
        Some(card)
    }

    fn remove(&mut self, id: &str) -> bool {
        let Some(card) = self.cards.remove(id) else {
            return false;
        };
        if self.by_pan.get(&card.pan).is_some_and(|first| first == id) {
            self.by_pan.remove(&card.pan);
            if let Some((other, _)) = self.cards.iter().find(|(_, c)| c.pan == card.pan) {
                self.by_pan.insert(card.pan.clone(), other.clone());
            }
        }
        true
    }

    fn unique(&self, rng: &mut impl Rng, prefix: &str) -> String {
        loop {
            let candidate = format!("{prefix}{}", base58(rng, 22));
            let taken = self.cards.contains_key(&candidate)
                || self.cards.values().any(|c| {
                    c.pan_alias == candidate
                        || c.cvc.as_ref().is_some_and(|cvc| cvc.alias == candidate)
                });
            if !taken {
                return candidate;
            }
        }
    }
}

fn base58(rng: &mut impl Rng, len: usize) -> String {
    (0..len)
        .map(|_| char::from(BASE58[rng.random_range(0..BASE58.len())]))
        .collect()
}

// ---------------------------------------------------------------------------------
// Errors (JSON:API) and faults
// ---------------------------------------------------------------------------------

/// A CMP failure: status, CMP's `code`, a detail safe to show (never a PAN, CVC,
/// token or credential) and the offending field's JSON pointer.
#[derive(Debug)]
pub(crate) struct CmpError {
    status: StatusCode,
    code: &'static str,
    detail: String,
    pointer: Option<&'static str>,
}

impl CmpError {
    fn new(status: StatusCode, code: &'static str, detail: impl Into<String>) -> Self {
        Self {
            status,
            code,
            detail: detail.into(),
            pointer: None,
        }
    }

    fn at(mut self, pointer: &'static str) -> Self {
        self.pointer = Some(pointer);
        self
    }

    fn unprocessable(code: &'static str, pointer: &'static str, detail: impl Into<String>) -> Self {
        Self::new(StatusCode::UNPROCESSABLE_ENTITY, code, detail).at(pointer)
    }

    fn missing(pointer: &'static str, name: &str) -> Self {
        Self::unprocessable(
            "missing-required-field",
            pointer,
            format!("{name} is required"),
        )
    }

    fn invalid(pointer: &'static str, detail: impl Into<String>) -> Self {
        Self::unprocessable("validation-failed", pointer, detail)
    }

    fn bad_request(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "bad-request", detail)
    }

    fn response(&self) -> Response {
        let mut error = json!({
            "status": self.status.as_u16().to_string(),
            "code": self.code,
            "title": self.status.canonical_reason().unwrap_or("Error"),
            "detail": self.detail,
        });
        if let Some(pointer) = self.pointer {
            error["source"] = json!({ "pointer": pointer });
        }
        let mut response = document(self.status, &json!({ "errors": [error] }));
        if self.status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer error=\"invalid_token\""),
            );
        }
        response
    }
}

/// CMP's code for a status (our choice where the reference names none: 404, 413, 429).
fn code_of(status: StatusCode) -> &'static str {
    match status.as_u16() {
        400 => "bad-request",
        401 => "unauthorized",
        403 => "forbidden",
        404 => "not-found",
        413 => "payload-too-large",
        415 => "unsupported-media-type",
        422 => "validation-failed",
        429 => "too-many-requests",
        _ => "server-error",
    }
}

/// A JSON:API response.
fn document(status: StatusCode, body: &Value) -> Response {
    let bytes = serde_json::to_vec(body).expect("JSON values serialise");
    let mut response = (status, bytes).into_response();
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(MEDIA_TYPE));
    response
}

/// The answer of an injected failure on a CMP route: 502/503/504 as a gateway's HTML
/// page (CMP's gateway errors are not JSON:API shaped), anything else as JSON:API.
pub(crate) fn fault_response(status: StatusCode) -> Response {
    if matches!(status.as_u16(), 502..=504) {
        let reason = status.canonical_reason().unwrap_or("Gateway Error");
        let page = format!(
            "<html><head><title>{} {reason}</title></head><body><h1>{reason}</h1></body></html>",
            status.as_u16()
        );
        let mut response = (status, page).into_response();
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/html; charset=utf-8"),
        );
        return response;
    }
    CmpError::new(status, code_of(status), "injected fault").response()
}

// ---------------------------------------------------------------------------------
// Who is calling
// ---------------------------------------------------------------------------------

/// An authenticated, rate-limit-admitted CMP caller: the tenant its token belongs to
/// and the token's scopes.
pub(crate) struct CmpCaller {
    vault: Arc<VaultSlot>,
    scopes: Arc<Vec<String>>,
    remaining: Option<u32>,
}

impl CmpCaller {
    fn has(&self, scope: &str) -> bool {
        self.scopes.iter().any(|s| s == scope)
    }

    fn require(&self, scope: &'static str) -> Result<(), CmpError> {
        if self.has(scope) {
            Ok(())
        } else {
            Err(CmpError::new(
                StatusCode::FORBIDDEN,
                "forbidden",
                format!("the access token lacks the scope {scope}"),
            ))
        }
    }

    fn respond(&self, result: Result<Response, CmpError>) -> Response {
        let mut response = match result {
            Ok(response) => response,
            Err(error) => {
                tracing::debug!(
                    vault = self.vault.id.as_str(),
                    status = error.status.as_u16(),
                    code = error.code,
                    "cmp error"
                );
                error.response()
            }
        };
        api::with_remaining(&mut response, self.remaining);
        response
    }
}

impl FromRequestParts<MockState> for CmpCaller {
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &MockState,
    ) -> Result<Self, Self::Rejection> {
        let now = state.now();
        let unauthorized = |detail: &str| {
            CmpError::new(StatusCode::UNAUTHORIZED, "unauthorized", detail).response()
        };
        let Some(token) = api::bearer_token(&parts.headers) else {
            return Err(unauthorized("a Bearer access token is required"));
        };
        let (client_id, scopes) = match state.tokens().check(token, now) {
            TokenCheck::Valid { client_id, scopes } => (client_id, scopes),
            TokenCheck::Expired => {
                state.counters().expired_token_rejected();
                return Err(unauthorized("the access token has expired"));
            }
            TokenCheck::Unknown => return Err(unauthorized("the access token is not valid")),
        };
        let Some(vault) = state.cmp_tenant(&client_id) else {
            return Err(CmpError::new(
                StatusCode::FORBIDDEN,
                "forbidden",
                "the service account belongs to no tenant of this mock",
            )
            .response());
        };
        let remaining = match vault.admit(state, now) {
            Ok(remaining) => remaining,
            Err(limited) => {
                let mut response = CmpError::new(
                    StatusCode::TOO_MANY_REQUESTS,
                    "too-many-requests",
                    "rate limit exceeded: too many requests for this tenant in the last minute",
                )
                .response();
                let secs = limited.retry_after.as_secs_f64().ceil().max(1.0) as u64;
                let headers = response.headers_mut();
                headers.insert(api::RATE_LIMIT_HEADER, HeaderValue::from(0));
                headers.insert(header::RETRY_AFTER, HeaderValue::from(secs));
                return Err(response);
            }
        };
        Ok(CmpCaller {
            vault: Arc::clone(vault),
            scopes,
            remaining,
        })
    }
}

// ---------------------------------------------------------------------------------
// Handlers
// ---------------------------------------------------------------------------------

/// What a create request asks for, validated.
struct NewCard {
    pan: String,
    /// The alias of an existing vault record the PAN came from, if given.
    pan_alias: Option<String>,
    cvc: Option<String>,
    cvc_alias: Option<String>,
    exp_month: u64,
    exp_year: u64,
    meta: Map<String, Value>,
}

/// `POST /cards`: 201 with the new card; 303 to the existing card when the tenant's
/// duplicate check finds the PAN.
async fn create(
    caller: CmpCaller,
    State(state): State<MockState>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let result = async {
        caller.require(SCOPE_WRITE)?;
        let json = read_document(&headers, body).await?;
        let now = state.now();
        let new = parse_create(&json, &caller.vault, now)?;
        let window = state.config().cvc_window;
        let mut cards = lock(&caller.vault.cards);
        let duplicate_check = caller
            .vault
            .duplicate_card_check
            .load(std::sync::atomic::Ordering::Relaxed);
        if duplicate_check {
            if let Some(existing) = cards.by_pan.get(&new.pan).cloned() {
                let view = card_document(&existing, &mut cards, now, caller.has(SCOPE_READ_PCI))
                    .expect("by_pan points at a stored card");
                let mut response = document(StatusCode::SEE_OTHER, &view);
                let location = HeaderValue::from_str(&format!("/cards/{existing}"))
                    .expect("card ids are header-safe");
                response.headers_mut().insert(header::LOCATION, location);
                return Ok(response);
            }
        }
        let mut rng = rand::rng();
        let id = cards.unique(&mut rng, "CRD");
        // The PAN and CVC aliases are the tenant vault's aliases (so VGS's proxy can
        // reveal them in a processor request): the PAN persistent, the CVC volatile.
        let pan_alias = match new.pan_alias {
            Some(alias) => alias,
            None => vault_alias(&caller.vault, &new.pan, Storage::Persistent, now)?,
        };
        let cvc = match new.cvc {
            Some(value) => Some(CvcRecord {
                alias: match new.cvc_alias {
                    Some(alias) => alias,
                    None => vault_alias(&caller.vault, &value, Storage::Volatile, now)?,
                },
                value: Some(value),
                expires_at: now + window,
            }),
            None => None,
        };
        let fingerprint = match cards.fingerprints.get(&new.pan) {
            Some(fingerprint) => fingerprint.clone(),
            None => {
                let fingerprint = format!("FPR{}", base58(&mut rng, 22));
                cards
                    .fingerprints
                    .insert(new.pan.clone(), fingerprint.clone());
                fingerprint
            }
        };
        cards
            .by_pan
            .entry(new.pan.clone())
            .or_insert_with(|| id.clone());
        cards.cards.insert(
            id.clone(),
            CardRecord {
                pan: new.pan,
                pan_alias,
                cvc,
                exp_month: new.exp_month,
                exp_year: new.exp_year,
                fingerprint,
                meta: new.meta,
                created_at: now,
            },
        );
        tracing::debug!(
            vault = caller.vault.id.as_str(),
            card = id.as_str(),
            "card created"
        );
        let view =
            card_document(&id, &mut cards, now, caller.has(SCOPE_READ_PCI)).expect("just stored");
        Ok(document(StatusCode::CREATED, &view))
    }
    .await;
    caller.respond(result)
}

/// A UUID alias of `value` in the tenant's vault store (its aliases API and proxies).
fn vault_alias(
    vault: &VaultSlot,
    value: &str,
    storage: Storage,
    now: SystemTime,
) -> Result<String, CmpError> {
    let item = crate::store::CreateItem::New {
        value: value.to_owned(),
        classifiers: vec!["card".to_owned()],
        format: crate::formats::AliasFormat::Uuid,
        storage,
    };
    lock(&vault.store)
        .create(vec![item], now)
        .ok()
        .and_then(|data| data.into_iter().next())
        .and_then(|data| data.aliases.into_iter().next())
        .map(|alias| alias.alias)
        .ok_or_else(|| {
            CmpError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "server-error",
                "the card could not be stored",
            )
        })
}

/// `GET /cards/{id}`: the PCI view with `cards:read-pci`, else the non-PCI view.
async fn read(
    caller: CmpCaller,
    State(state): State<MockState>,
    Path(id): Path<String>,
) -> Response {
    let result = (|| {
        if !caller.has(SCOPE_READ) && !caller.has(SCOPE_READ_PCI) {
            caller.require(SCOPE_READ)?;
        }
        let now = state.now();
        let mut cards = lock(&caller.vault.cards);
        let view = card_document(&id, &mut cards, now, caller.has(SCOPE_READ_PCI))
            .ok_or_else(not_found)?;
        Ok(document(StatusCode::OK, &view))
    })();
    caller.respond(result)
}

/// `DELETE /cards/{id}`: 204, or 404 for a card the tenant does not have.
async fn remove(caller: CmpCaller, Path(id): Path<String>) -> Response {
    let result = (|| {
        caller.require(SCOPE_WRITE)?;
        if lock(&caller.vault.cards).remove(&id) {
            tracing::debug!(
                vault = caller.vault.id.as_str(),
                card = id.as_str(),
                "card deleted"
            );
            Ok(StatusCode::NO_CONTENT.into_response())
        } else {
            Err(not_found())
        }
    })();
    caller.respond(result)
}

fn not_found() -> CmpError {
    CmpError::new(StatusCode::NOT_FOUND, "not-found", "card not found")
}

/// The card's JSON:API document. Both views carry the aliases, `cvc_status`, BIN,
/// `first8`, last four, expiry, fingerprint and `meta`; the PCI view adds `pan` and,
/// while the CVC's window is open, `cvc`.
fn card_document(id: &str, cards: &mut CardStore, now: SystemTime, pci: bool) -> Option<Value> {
    let card = cards.get(id, now)?;
    let mut attributes = Map::new();
    attributes.insert("pan_alias".into(), Value::from(card.pan_alias.as_str()));
    if let Some(cvc) = &card.cvc {
        attributes.insert("cvc_alias".into(), Value::from(cvc.alias.as_str()));
        let status = if cvc.value.is_some() {
            "active"
        } else {
            "expired"
        };
        attributes.insert("cvc_status".into(), Value::from(status));
    }
    attributes.insert("bin".into(), Value::from(&card.pan[..6]));
    attributes.insert("first8".into(), Value::from(&card.pan[..8]));
    attributes.insert("last4".into(), Value::from(&card.pan[card.pan.len() - 4..]));
    attributes.insert("exp_month".into(), Value::from(card.exp_month));
    attributes.insert("exp_year".into(), Value::from(card.exp_year));
    attributes.insert("fingerprint".into(), Value::from(card.fingerprint.as_str()));
    if !card.meta.is_empty() {
        attributes.insert("meta".into(), Value::Object(card.meta.clone()));
    }
    attributes.insert("created_at".into(), Value::from(rfc3339(card.created_at)));
    if pci {
        attributes.insert("pan".into(), Value::from(card.pan.as_str()));
        if let Some(value) = card.cvc.as_ref().and_then(|cvc| cvc.value.as_deref()) {
            attributes.insert("cvc".into(), Value::from(value));
        }
    }
    Some(json!({
        "data": { "id": id, "type": "cards", "attributes": attributes },
    }))
}

/// Reads a JSON:API request body: 415 unless `application/vnd.api+json`, 413 when
/// too large, 400 when not JSON.
async fn read_document(headers: &HeaderMap, body: Body) -> Result<Value, CmpError> {
    if !api::content_type_is(headers, MEDIA_TYPE) {
        return Err(CmpError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported-media-type",
            format!("Content-Type must be {MEDIA_TYPE}"),
        ));
    }
    let bytes = match api::read_limited(body, MAX_CARD_BODY).await {
        Ok(bytes) => bytes,
        Err(ReadError::TooLarge) => {
            return Err(CmpError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload-too-large",
                format!("request body is larger than {MAX_CARD_BODY} bytes"),
            ));
        }
        Err(ReadError::Broken) => {
            return Err(CmpError::bad_request("request body could not be read"));
        }
    };
    serde_json::from_slice(&bytes).map_err(|error| {
        CmpError::bad_request(format!(
            "request body is not valid JSON (line {}, column {})",
            error.line(),
            error.column()
        ))
    })
}

/// Validates a create document. Details name the field, never its value.
fn parse_create(json: &Value, vault: &VaultSlot, now: SystemTime) -> Result<NewCard, CmpError> {
    let data = json.get("data").and_then(Value::as_object).ok_or_else(|| {
        CmpError::bad_request(
            "the body must be a JSON:API document: {\"data\":{\"attributes\":{…}}}",
        )
        .at("/data")
    })?;
    if let Some(kind) = data.get("type") {
        if kind.as_str() != Some("cards") {
            return Err(CmpError::invalid("/data/type", "type must be cards"));
        }
    }
    let attributes = match data.get("attributes") {
        Some(Value::Object(attributes)) => attributes,
        Some(_) => {
            return Err(CmpError::invalid(
                "/data/attributes",
                "attributes must be an object",
            ));
        }
        None => return Err(CmpError::missing("/data/attributes", "attributes")),
    };
    let string = |name: &str, pointer: &'static str| match attributes.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(text)) => Ok(Some(text.as_str())),
        Some(_) => Err(CmpError::invalid(
            pointer,
            format!("{name} must be a string"),
        )),
    };
    let pan_given = string("pan", "/data/attributes/pan")?;
    let pan_alias = string("pan_alias", "/data/attributes/pan_alias")?;
    let (pan, pan_alias) = match (pan_given, pan_alias) {
        (Some(_), Some(_)) => {
            return Err(CmpError::invalid(
                "/data/attributes/pan_alias",
                "give pan or pan_alias, not both",
            ));
        }
        (None, None) => return Err(CmpError::missing("/data/attributes/pan", "pan")),
        (Some(pan), None) => (pan.to_owned(), None),
        (None, Some(alias)) => {
            let record = lock(&vault.store)
                .reveal(alias, Storage::Persistent, now)
                .ok_or_else(|| {
                    CmpError::unprocessable(
                        "failed-dependency",
                        "/data/attributes/pan_alias",
                        "pan_alias is not an alias of this tenant's vault",
                    )
                })?;
            (record.value, Some(alias.to_owned()))
        }
    };
    let pan_ok = (12..=19).contains(&pan.len())
        && pan.bytes().all(|b| b.is_ascii_digit())
        && crate::formats::luhn_valid(&pan.bytes().map(|b| b - b'0').collect::<Vec<_>>());
    if !pan_ok {
        let pointer = if pan_alias.is_some() {
            "/data/attributes/pan_alias"
        } else {
            "/data/attributes/pan"
        };
        return Err(CmpError::invalid(
            pointer,
            "pan must be 12 to 19 digits passing the Luhn check",
        ));
    }
    let cvc_given = string("cvc", "/data/attributes/cvc")?;
    let cvc_alias = string("cvc_alias", "/data/attributes/cvc_alias")?;
    let (cvc, cvc_alias) = match (cvc_given, cvc_alias) {
        (Some(_), Some(_)) => {
            return Err(CmpError::invalid(
                "/data/attributes/cvc_alias",
                "give cvc or cvc_alias, not both",
            ));
        }
        (None, None) => (None, None),
        (Some(cvc), None) => (Some(cvc.to_owned()), None),
        (None, Some(alias)) => {
            let record = lock(&vault.store)
                .reveal(alias, Storage::Volatile, now)
                .ok_or_else(|| {
                    CmpError::unprocessable(
                        "failed-dependency",
                        "/data/attributes/cvc_alias",
                        "cvc_alias is not a volatile alias of this tenant's vault (or it expired)",
                    )
                })?;
            (Some(record.value), Some(alias.to_owned()))
        }
    };
    if let Some(cvc) = &cvc {
        if !(3..=4).contains(&cvc.len()) || !cvc.bytes().all(|b| b.is_ascii_digit()) {
            return Err(CmpError::invalid(
                "/data/attributes/cvc",
                "cvc must be 3 or 4 digits",
            ));
        }
    }
    let number =
        |name: &str, pointer: &'static str, ok: &dyn Fn(u64) -> bool, rule: &str| match attributes
            .get(name)
        {
            None | Some(Value::Null) => Err(CmpError::missing(pointer, name)),
            Some(value) => value
                .as_u64()
                .filter(|n| ok(*n))
                .ok_or_else(|| CmpError::invalid(pointer, format!("{name} must be {rule}"))),
        };
    let exp_month = number(
        "exp_month",
        "/data/attributes/exp_month",
        &|m| (1..=12).contains(&m),
        "an integer from 1 to 12",
    )?;
    let exp_year = number(
        "exp_year",
        "/data/attributes/exp_year",
        &|y| y <= 99 || (2000..=2099).contains(&y),
        "an integer year of 2 or 4 digits (28 or 2028)",
    )?;
    let meta = match attributes.get("meta") {
        None | Some(Value::Null) => Map::new(),
        Some(Value::Object(meta)) if meta.values().all(Value::is_string) => meta.clone(),
        Some(_) => {
            return Err(CmpError::invalid(
                "/data/attributes/meta",
                "meta must be an object of strings",
            ));
        }
    };
    Ok(NewCard {
        pan,
        pan_alias,
        cvc,
        cvc_alias,
        exp_month,
        exp_year,
        meta,
    })
}
