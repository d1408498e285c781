//! What v1 and v2 do differently, in one place: who is calling (HTTP Basic access
//! credentials vs Bearer token for a vault named by Host or path), the per-vault rate
//! limit, and the two error-body shapes. Plus body/header helpers.

use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use http_body_util::{BodyExt, LengthLimitError, Limited};
use rand::Rng;
use serde::Serialize;

use crate::state::{MockState, VaultSlot};
use crate::store::StoreError;
use crate::token::TokenCheck;

/// Largest request body the vault API accepts ("storing data up to 32MB").
pub const MAX_BODY_BYTES: usize = 32 * 1024 * 1024;
/// The rate-limit header the spec puts on every response.
pub const RATE_LIMIT_HEADER: &str = "x-ratelimit-remaining";

/// The 403 detail of a reveal on a vault without reveal enabled: VGS's note on its
/// reveal endpoints.
pub const REVEAL_DISABLED: &str = "This endpoint may expose sensitive data. Therefore, it is disabled by default. To enable it, please contact your VGS account manager or drop us a line at support@verygoodsecurity.com.";

/// Which API generation a request speaks.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Target {
    /// v1: HTTP Basic access credentials identify the vault.
    V1,
    /// v2: the vault named by the Host's first label or the `/v2/{vault}` prefix.
    V2(String),
}

/// Which API a request targets, and its `href` (the request URL, for v1 errors).
pub(crate) fn describe(state: &MockState, headers: &HeaderMap, path: &str) -> (Target, String) {
    let host = headers.get(header::HOST).and_then(|h| h.to_str().ok());
    let href = match host {
        Some(host) => format!("http://{host}{path}"),
        None => path.to_owned(),
    };
    if let Some(rest) = path.strip_prefix("/v2/") {
        let vault = rest.split('/').next().unwrap_or_default();
        return (Target::V2(vault.to_owned()), href);
    }
    if let Some(host) = host {
        let label = host.split(['.', ':']).next().unwrap_or_default();
        if state.vault(label).is_some() || looks_like_vault_id(label) {
            return (Target::V2(label.to_owned()), href);
        }
    }
    (Target::V1, href)
}

/// VGS vault ids: `tnt` followed by lowercase letters and digits.
fn looks_like_vault_id(label: &str) -> bool {
    label.strip_prefix("tnt").is_some_and(|rest| {
        !rest.is_empty()
            && rest
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
    })
}

/// An API failure: a status and a detail safe to show (no stored value, credential
/// or token ever goes in it).
#[derive(Debug, Clone)]
pub(crate) struct ApiError {
    pub(crate) status: StatusCode,
    pub(crate) detail: String,
}

impl ApiError {
    pub(crate) fn new(status: StatusCode, detail: impl Into<String>) -> Self {
        Self {
            status,
            detail: detail.into(),
        }
    }

    pub(crate) fn bad_request(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, detail)
    }

    pub(crate) fn not_found(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, detail)
    }
}

impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::Invalid(detail) => ApiError::bad_request(detail),
            StoreError::NotFound(detail) => ApiError::not_found(detail),
        }
    }
}

#[derive(Serialize)]
struct V1Errors<'a> {
    errors: [V1Error<'a>; 1],
}

#[derive(Serialize)]
struct V1Error<'a> {
    status: u16,
    title: String,
    detail: &'a str,
    href: &'a str,
}

#[derive(Serialize)]
struct V2Errors<'a> {
    errors: [V2Error<'a>; 1],
    trace_id: String,
}

#[derive(Serialize)]
struct V2Error<'a> {
    status: u16,
    code: String,
    detail: &'a str,
}

/// The error body of the target API: v1 `{"errors":[{status,title,detail,href}]}`,
/// v2 `{"errors":[{status,code,detail}],"trace_id"}`.
pub(crate) fn error_response(target: Target, href: &str, error: &ApiError) -> Response {
    let reason = error.status.canonical_reason().unwrap_or("Error");
    match target {
        Target::V1 => {
            // The spec's example title is "Bad request": only the first letter capital.
            let mut title = String::with_capacity(reason.len());
            for (i, c) in reason.chars().enumerate() {
                title.push(if i == 0 { c } else { c.to_ascii_lowercase() });
            }
            json_response(
                error.status,
                &V1Errors {
                    errors: [V1Error {
                        status: error.status.as_u16(),
                        title,
                        detail: &error.detail,
                        href,
                    }],
                },
            )
        }
        Target::V2(_) => {
            // Our choice: the reason in kebab case, e.g. "not-found".
            let code = reason.to_ascii_lowercase().replace(' ', "-");
            let trace: [u8; 16] = rand::rng().random();
            let trace_id = trace.iter().map(|b| format!("{b:02x}")).collect();
            json_response(
                error.status,
                &V2Errors {
                    errors: [V2Error {
                        status: error.status.as_u16(),
                        code,
                        detail: &error.detail,
                    }],
                    trace_id,
                },
            )
        }
    }
}

/// A JSON response of `body`.
pub(crate) fn json_response(status: StatusCode, body: &impl Serialize) -> Response {
    let bytes = serde_json::to_vec(body).expect("the mock's own response types serialise");
    let mut response = (status, bytes).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

/// Whether the Content-Type's media type is `expected` (parameters ignored).
pub(crate) fn content_type_is(headers: &HeaderMap, expected: &str) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.split(';').next())
        .is_some_and(|media| media.trim().eq_ignore_ascii_case(expected))
}

/// Why a body could not be read.
pub(crate) enum ReadError {
    TooLarge,
    Broken,
}

/// Reads at most `limit` bytes of `body`.
pub(crate) async fn read_limited(body: Body, limit: usize) -> Result<Bytes, ReadError> {
    match Limited::new(body, limit).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(error) if error.downcast_ref::<LengthLimitError>().is_some() => {
            Err(ReadError::TooLarge)
        }
        Err(_) => Err(ReadError::Broken),
    }
}

/// Reads a JSON request body of at most [`MAX_BODY_BYTES`]: 415 unless the
/// Content-Type is JSON, 413 when too large, 400 when not JSON (the detail gives
/// only the position, never the content).
pub(crate) async fn read_json_body(
    headers: &HeaderMap,
    body: Body,
) -> Result<serde_json::Value, ApiError> {
    if !content_type_is(headers, "application/json") {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "Content-Type must be application/json",
        ));
    }
    let too_large = || {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("request body is larger than the limit of {MAX_BODY_BYTES} bytes (32 MB)"),
        )
    };
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse::<u64>().ok());
    if declared.is_some_and(|length| length > MAX_BODY_BYTES as u64) {
        return Err(too_large());
    }
    let bytes = match read_limited(body, MAX_BODY_BYTES).await {
        Ok(bytes) => bytes,
        Err(ReadError::TooLarge) => return Err(too_large()),
        Err(ReadError::Broken) => {
            return Err(ApiError::bad_request("request body could not be read"));
        }
    };
    serde_json::from_slice(&bytes).map_err(|error| {
        ApiError::bad_request(format!(
            "request body is not valid JSON (line {}, column {})",
            error.line(),
            error.column()
        ))
    })
}

/// The user and password of a `Basic` credentials header value (Authorization or
/// Proxy-Authorization); `None` when it is not one.
pub(crate) fn basic_pair(value: &HeaderValue) -> Option<(String, String)> {
    let mut headers = HeaderMap::new();
    headers.insert(header::AUTHORIZATION, value.clone());
    basic_credentials(&headers)?.ok()
}

/// HTTP Basic credentials: `None` without a Basic Authorization header, `Err` when
/// one is present but malformed.
pub(crate) fn basic_credentials(headers: &HeaderMap) -> Option<Result<(String, String), ()>> {
    let value = headers.get(header::AUTHORIZATION)?;
    let Some(encoded) = value
        .to_str()
        .ok()
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("basic"))
        .map(|(_, rest)| rest.trim())
    else {
        return Some(Err(()));
    };
    let decoded = STANDARD
        .decode(encoded)
        .ok()
        .and_then(|bytes| String::from_utf8(bytes).ok());
    Some(
        decoded
            .as_deref()
            .and_then(|text| text.split_once(':'))
            .map(|(user, pass)| (user.to_owned(), pass.to_owned()))
            .ok_or(()),
    )
}

/// The Bearer token of the Authorization header, if any.
pub(crate) fn bearer_token(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(header::AUTHORIZATION)?
        .to_str()
        .ok()?
        .split_once(' ')
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token.trim())
        .filter(|token| !token.is_empty())
}

/// An authenticated, rate-limit-admitted caller of the vault API.
pub(crate) struct Caller {
    pub(crate) target: Target,
    pub(crate) vault: Arc<VaultSlot>,
    /// Granted scopes (v2); v1 access credentials carry every right.
    scopes: Option<Arc<Vec<String>>>,
    href: String,
    remaining: Option<u32>,
}

impl Caller {
    /// 403 on v2 unless the token was granted `scope`.
    pub(crate) fn require_scope(&self, scope: &str) -> Result<(), ApiError> {
        match &self.scopes {
            Some(scopes) if !scopes.iter().any(|s| s == scope) => Err(ApiError::new(
                StatusCode::FORBIDDEN,
                format!("the access token lacks the scope {scope}"),
            )),
            _ => Ok(()),
        }
    }

    /// 403 unless the vault is configured to reveal values (VGS enables it per vault,
    /// on request; the detail is VGS's own note on the reveal endpoints).
    pub(crate) fn require_reveal(&self) -> Result<(), ApiError> {
        match self.vault.reveal {
            true => Ok(()),
            false => Err(ApiError::new(StatusCode::FORBIDDEN, REVEAL_DISABLED)),
        }
    }

    /// The response, errors in the caller's API shape, with `x-ratelimit-remaining`.
    pub(crate) fn respond(&self, result: Result<Response, ApiError>) -> Response {
        let mut response = match result {
            Ok(response) => response,
            Err(error) => {
                tracing::debug!(
                    vault = self.vault.id.as_str(),
                    status = error.status.as_u16(),
                    "api error"
                );
                error_response(self.target.clone(), &self.href, &error)
            }
        };
        with_remaining(&mut response, self.remaining);
        response
    }
}

pub(crate) fn with_remaining(response: &mut Response, remaining: Option<u32>) {
    if let Some(remaining) = remaining {
        response
            .headers_mut()
            .insert(RATE_LIMIT_HEADER, HeaderValue::from(remaining));
    }
}

impl FromRequestParts<MockState> for Caller {
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &MockState,
    ) -> Result<Self, Self::Rejection> {
        let (target, href) = describe(state, &parts.headers, parts.uri.path());
        let now = state.now();
        let reject = |vault: Option<&Arc<VaultSlot>>, error: ApiError| {
            let mut response = error_response(target.clone(), &href, &error);
            if let Some(vault) = vault {
                with_remaining(&mut response, vault.remaining(state, now));
            }
            if error.status == StatusCode::UNAUTHORIZED {
                let challenge = match target {
                    Target::V1 => "Basic realm=\"vault\"",
                    Target::V2(_) => "Bearer error=\"invalid_token\"",
                };
                response.headers_mut().insert(
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static(challenge),
                );
            }
            response
        };
        let unauthorized = |detail: &str| ApiError::new(StatusCode::UNAUTHORIZED, detail);

        let (vault, scopes) = match &target {
            Target::V1 => {
                let vault = match basic_credentials(&parts.headers) {
                    Some(Ok((user, pass))) => state.vault_for_v1(&user, &pass),
                    _ => None,
                };
                let Some(vault) = vault else {
                    return Err(reject(
                        None,
                        unauthorized("valid HTTP Basic access credentials are required"),
                    ));
                };
                (Arc::clone(vault), None)
            }
            Target::V2(id) => {
                // As VGS: the token first, then the vault. A service account that is
                // not assigned to the vault (or a vault that does not exist) is 401.
                let known = state.vault(id);
                let Some(token) = bearer_token(&parts.headers) else {
                    return Err(reject(
                        known,
                        unauthorized("a Bearer access token is required"),
                    ));
                };
                let (client_id, scopes) = match state.tokens().check(token, now) {
                    TokenCheck::Valid { client_id, scopes } => (client_id, scopes),
                    TokenCheck::Expired => {
                        state.counters().expired_token_rejected();
                        return Err(reject(known, unauthorized("the access token has expired")));
                    }
                    TokenCheck::Unknown => {
                        return Err(reject(known, unauthorized("the access token is not valid")));
                    }
                };
                let vault = match known {
                    Some(vault) if state.assigned(&client_id, id) => vault,
                    _ => {
                        return Err(reject(
                            None,
                            unauthorized(&format!(
                                "the service account is not assigned to vault {id}, or the vault does not exist in this environment"
                            )),
                        ));
                    }
                };
                tracing::trace!(client = &*client_id, vault = id.as_str(), "bearer ok");
                (Arc::clone(vault), Some(scopes))
            }
        };

        let remaining = match vault.admit(state, now) {
            Ok(remaining) => remaining,
            Err(limited) => {
                let mut response = error_response(
                    target.clone(),
                    &href,
                    &ApiError::new(
                        StatusCode::TOO_MANY_REQUESTS,
                        "rate limit exceeded: too many requests for this vault in the last minute",
                    ),
                );
                let secs = limited.retry_after.as_secs_f64().ceil().max(1.0) as u64;
                let headers = response.headers_mut();
                headers.insert(RATE_LIMIT_HEADER, HeaderValue::from(0));
                headers.insert(header::RETRY_AFTER, HeaderValue::from(secs));
                return Err(response);
            }
        };
        Ok(Caller {
            target,
            vault,
            scopes,
            href,
            remaining,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vault_id_shape() {
        assert!(looks_like_vault_id("tntabc12345"));
        assert!(!looks_like_vault_id("tnt"));
        assert!(!looks_like_vault_id("tntABC"));
        assert!(!looks_like_vault_id("localhost"));
        assert!(!looks_like_vault_id("127"));
    }

    #[test]
    fn basic_credentials_parse_and_reject_garbage() {
        let mut headers = HeaderMap::new();
        assert!(basic_credentials(&headers).is_none());
        headers.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("Basic dXNlcjpwYTpzcw=="),
        );
        assert_eq!(
            basic_credentials(&headers),
            Some(Ok(("user".to_owned(), "pa:ss".to_owned())))
        );
        headers.insert(header::AUTHORIZATION, HeaderValue::from_static("Basic !!!"));
        assert_eq!(basic_credentials(&headers), Some(Err(())));
        headers.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("Bearer abc"),
        );
        assert_eq!(basic_credentials(&headers), Some(Err(())));
        assert_eq!(bearer_token(&headers), Some("abc"));
    }
}
