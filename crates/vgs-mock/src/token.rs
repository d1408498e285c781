//! The Keycloak-style OAuth2 token endpoint (`client_credentials`, client auth by
//! HTTP Basic or form fields, scopes) and the table of issued tokens.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::Response;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::Rng;
use serde::Serialize;

use crate::api::{self, json_response};
use crate::lock;
use crate::state::MockState;

/// Largest token request body read (a form of a few fields).
const MAX_FORM_BYTES: usize = 64 * 1024;
/// Expired tokens are remembered this long, so that using one is told apart from
/// using a token that never existed (`expired_token_rejections`).
const REMEMBER_EXPIRED: Duration = Duration::from_secs(24 * 3600);

/// What a Bearer token is worth now.
pub(crate) enum TokenCheck {
    /// Valid: issued to this client, with these scopes.
    Valid {
        client_id: Arc<str>,
        scopes: Arc<Vec<String>>,
    },
    /// Was issued, has expired.
    Expired,
    /// Never issued (or forgotten by a reset).
    Unknown,
}

struct Grant {
    client_id: Arc<str>,
    scopes: Arc<Vec<String>>,
    expires_at: SystemTime,
}

/// Issued tokens, each bound to its scopes and expiry.
#[derive(Default)]
pub(crate) struct Tokens {
    grants: Mutex<HashMap<String, Grant>>,
}

impl Tokens {
    /// Every token issued and not yet forgotten (expired ones are kept a while).
    pub(crate) fn issued(&self) -> Vec<String> {
        lock(&self.grants).keys().cloned().collect()
    }

    fn issue(
        &self,
        client_id: &str,
        scopes: Vec<String>,
        lifetime: Duration,
        now: SystemTime,
    ) -> String {
        let bytes: [u8; 32] = rand::rng().random();
        let token = URL_SAFE_NO_PAD.encode(bytes);
        let mut grants = lock(&self.grants);
        grants.retain(|_, grant| now < grant.expires_at + REMEMBER_EXPIRED);
        grants.insert(
            token.clone(),
            Grant {
                client_id: client_id.into(),
                scopes: Arc::new(scopes),
                expires_at: now + lifetime,
            },
        );
        token
    }

    pub(crate) fn check(&self, token: &str, now: SystemTime) -> TokenCheck {
        match lock(&self.grants).get(token) {
            Some(grant) if now < grant.expires_at => TokenCheck::Valid {
                client_id: Arc::clone(&grant.client_id),
                scopes: Arc::clone(&grant.scopes),
            },
            Some(_) => TokenCheck::Expired,
            None => TokenCheck::Unknown,
        }
    }

    pub(crate) fn clear(&self) {
        lock(&self.grants).clear();
    }
}

#[derive(Serialize)]
struct TokenResponse<'a> {
    access_token: &'a str,
    expires_in: u64,
    refresh_expires_in: u64,
    token_type: &'static str,
    #[serde(rename = "not-before-policy")]
    not_before_policy: u64,
    scope: String,
}

#[derive(Serialize)]
struct OAuthError<'a> {
    error: &'a str,
    error_description: &'a str,
}

fn oauth_error(status: StatusCode, error: &str, description: &str) -> Response {
    let mut response = json_response(
        status,
        &OAuthError {
            error,
            error_description: description,
        },
    );
    if status == StatusCode::UNAUTHORIZED {
        response.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Basic realm=\"vgs\""),
        );
    }
    response
}

/// The token endpoint's answer to an injected failure status.
pub(crate) fn fault_response(status: StatusCode) -> Response {
    let error = match status {
        StatusCode::TOO_MANY_REQUESTS => "too_many_requests",
        StatusCode::SERVICE_UNAVAILABLE => "temporarily_unavailable",
        _ => "server_error",
    };
    oauth_error(status, error, "injected fault")
}

const INVALID_CLIENT: &str = "Invalid client or Invalid client credentials";

/// `POST /auth/realms/vgs/protocol/openid-connect/token`.
pub(crate) async fn token_endpoint(
    State(state): State<MockState>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    if !api::content_type_is(&headers, "application/x-www-form-urlencoded") {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "Content-Type must be application/x-www-form-urlencoded",
        );
    }
    let Ok(bytes) = api::read_limited(body, MAX_FORM_BYTES).await else {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "request body could not be read or is too large",
        );
    };
    let mut form: HashMap<String, String> = HashMap::new();
    for (key, value) in form_urlencoded::parse(&bytes) {
        if form.insert(key.into_owned(), value.into_owned()).is_some() {
            return oauth_error(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                "a parameter was given more than once",
            );
        }
    }

    // Client authentication: HTTP Basic if an Authorization header is present,
    // else the client_id / client_secret form fields.
    let (client_id, secret) = match api::basic_credentials(&headers) {
        Some(Ok(pair)) => pair,
        Some(Err(())) => {
            return oauth_error(StatusCode::UNAUTHORIZED, "invalid_client", INVALID_CLIENT);
        }
        None => match (form.get("client_id"), form.get("client_secret")) {
            (Some(id), Some(secret)) => (id.clone(), secret.clone()),
            _ => {
                return oauth_error(
                    StatusCode::UNAUTHORIZED,
                    "invalid_client",
                    "client authentication required: HTTP Basic or client_id and client_secret",
                );
            }
        },
    };
    if form.get("client_id").is_some_and(|id| *id != client_id) {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "client_id differs from the authenticated client",
        );
    }
    let config = state.config();
    let client = config
        .clients
        .iter()
        .find(|c| matches_encoded(&c.id, &client_id) && matches_encoded(&c.secret, &secret));
    let Some(client) = client else {
        tracing::debug!("token request from an unknown client or with a wrong secret");
        return oauth_error(StatusCode::UNAUTHORIZED, "invalid_client", INVALID_CLIENT);
    };

    match form.get("grant_type").map(String::as_str) {
        Some("client_credentials") => {}
        Some(_) => {
            return oauth_error(
                StatusCode::BAD_REQUEST,
                "unsupported_grant_type",
                "Unsupported grant_type",
            );
        }
        None => {
            return oauth_error(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                "Missing form parameter: grant_type",
            );
        }
    }

    let scopes: Vec<String> = match form.get("scope") {
        None => client.scopes.clone(),
        Some(requested) => {
            let mut granted: Vec<String> = Vec::new();
            for scope in requested.split_whitespace() {
                if !client.scopes.iter().any(|s| s == scope) {
                    return oauth_error(
                        StatusCode::BAD_REQUEST,
                        "invalid_scope",
                        "Invalid scopes: a requested scope is not granted to this client",
                    );
                }
                if !granted.iter().any(|s| s == scope) {
                    granted.push(scope.to_owned());
                }
            }
            granted
        }
    };

    let lifetime = config.token_lifetime;
    let scope = scopes.join(" ");
    let token = state
        .tokens()
        .issue(&client.id, scopes, lifetime, state.now());
    tracing::debug!(client = client.id.as_str(), "token issued");
    let mut response = json_response(
        StatusCode::OK,
        &TokenResponse {
            access_token: &token,
            expires_in: lifetime.as_secs(),
            refresh_expires_in: 0,
            token_type: "Bearer",
            not_before_policy: 0,
            scope,
        },
    );
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    response
}

/// RFC 6749 §2.3.1 form-encodes id and secret before Basic; accept both spellings.
fn matches_encoded(expected: &str, given: &str) -> bool {
    if expected == given {
        return true;
    }
    let pair = format!("x={given}");
    form_urlencoded::parse(pair.as_bytes())
        .next()
        .is_some_and(|(_, decoded)| decoded == expected)
}
