//! OAuth2 token endpoint wire types (RFC 6749 §5.1 / §5.2, Keycloak's shapes) and the
//! mapping of its answers to `VaultError`. Pure functions, unit-tested without HTTP.

use std::time::Duration;

use error_stack::Report;
use serde::Deserialize;
use vault_core::{AccessToken, Detail, HttpStatus, RetryAfter, VaultError};

/// A successful token response, or an error response sent with status 200.
/// Unknown fields (`refresh_token`, `scope`, `not-before-policy`, …) are ignored.
#[derive(Deserialize)]
pub(crate) struct TokenResponse {
    #[serde(default)]
    access_token: Option<String>,
    #[serde(default)]
    expires_in: Option<ExpiresIn>,
    #[serde(default)]
    token_type: Option<String>,
    #[serde(default)]
    error: Option<String>,
    #[serde(default)]
    error_description: Option<String>,
}

/// `expires_in` as a number, or as a string some providers send.
#[derive(Deserialize)]
#[serde(untagged)]
enum ExpiresIn {
    Integer(i64),
    Float(f64),
    Text(String),
}

impl ExpiresIn {
    fn seconds(&self) -> Option<f64> {
        match self {
            #[allow(clippy::cast_precision_loss)]
            ExpiresIn::Integer(secs) => Some(*secs as f64),
            ExpiresIn::Float(secs) => Some(*secs),
            ExpiresIn::Text(text) => text.trim().parse::<f64>().ok(),
        }
    }
}

/// An error response body: `{"error":"invalid_client","error_description":"…"}`.
#[derive(Deserialize, Default)]
struct ErrorResponse {
    #[serde(default)]
    error: Option<String>,
    #[serde(default)]
    error_description: Option<String>,
}

/// What the error mapping needs to know about the request, none of it secret except
/// `secrets`, which are only used to scrub them from the provider's error text.
pub(crate) struct ErrorContext<'a> {
    /// `scheme://host[:port]/path` of the token endpoint.
    pub(crate) endpoint: &'a str,
    /// The client id.
    pub(crate) client_id: &'a str,
    /// The requested scopes, for an `invalid_scope` detail.
    pub(crate) scopes: &'a [String],
    /// Values that must never appear in an error (client secret, password).
    pub(crate) secrets: &'a [&'a str],
}

/// A token parsed from a 2xx answer.
pub(crate) struct ParsedToken {
    pub(crate) token: AccessToken,
    pub(crate) lifetime: Duration,
    /// `token_type` when present (checked to be bearer by the caller).
    pub(crate) token_type: Option<String>,
}

/// Parses a 2xx token response. A missing `expires_in` gives `default_lifetime`.
pub(crate) fn parse_token_response(
    status: u16,
    body: &[u8],
    default_lifetime: Duration,
    ctx: &ErrorContext<'_>,
) -> Result<ParsedToken, Report<VaultError>> {
    let parsed: TokenResponse = serde_json::from_slice(body).map_err(|e| {
        // serde_json's message can quote the input (a token); keep only where it failed.
        unexpected(
            status,
            format!(
                "the token endpoint {} answered HTTP {status} with a body that is not a token response ({:?} error at line {} column {})",
                ctx.endpoint,
                e.classify(),
                e.line(),
                e.column()
            ),
        )
    })?;
    let Some(access_token) = parsed.access_token.filter(|t| !t.is_empty()) else {
        if parsed.error.is_some() {
            let error = ErrorResponse {
                error: parsed.error,
                error_description: parsed.error_description,
            };
            return Err(map_error(status, &error, None, ctx));
        }
        return Err(unexpected(
            status,
            format!(
                "the token endpoint {} answered HTTP {status} without an access_token",
                ctx.endpoint
            ),
        ));
    };
    let token = AccessToken::new(access_token);
    let lifetime = match parsed.expires_in {
        None => default_lifetime,
        Some(expires_in) => match expires_in.seconds() {
            Some(secs) if secs.is_finite() && secs >= 1.0 => {
                Duration::from_secs_f64(secs.min(crate::schedule::MAX_LIFETIME.as_secs_f64()))
            }
            _ => {
                return Err(unexpected(
                    status,
                    format!(
                        "the token endpoint {} answered with an expires_in that is not a positive number of seconds",
                        ctx.endpoint
                    ),
                ));
            }
        },
    };
    Ok(ParsedToken {
        token,
        lifetime,
        token_type: parsed.token_type,
    })
}

fn unexpected(status: u16, detail: String) -> Report<VaultError> {
    Report::new(VaultError::UnexpectedResponse)
        .attach(Detail::new(detail))
        .attach(HttpStatus(status))
}

/// Maps a non-2xx answer of the token endpoint to a report. Only the provider's
/// `error` code and `error_description` (scrubbed, capped) and the status are kept;
/// the rest of the body is dropped because it could echo what was sent.
pub(crate) fn map_error_response(
    status: u16,
    body: &[u8],
    retry_after: Option<&str>,
    ctx: &ErrorContext<'_>,
) -> Report<VaultError> {
    let error: ErrorResponse = serde_json::from_slice(body).unwrap_or_default();
    map_error(status, &error, retry_after, ctx)
}

fn map_error(
    status: u16,
    error: &ErrorResponse,
    retry_after: Option<&str>,
    ctx: &ErrorContext<'_>,
) -> Report<VaultError> {
    let code = error
        .error
        .as_deref()
        .map(|c| scrub(c, ctx.secrets, 64))
        .filter(|c| !c.is_empty());
    let description = error
        .error_description
        .as_deref()
        .map(|d| scrub(d, ctx.secrets, 300))
        .filter(|d| !d.is_empty());

    let kind = match (status, code.as_deref()) {
        (401, _) => VaultError::InvalidCredentials,
        (403, _) => VaultError::Forbidden,
        (408, _) => VaultError::Timeout,
        (429, _) => VaultError::RateLimited,
        (500..=599, _) => VaultError::Upstream,
        (300..=399, _) => VaultError::InvalidConfig,
        (_, Some("invalid_client" | "invalid_grant")) => VaultError::InvalidCredentials,
        (_, Some("invalid_scope" | "unauthorized_client" | "access_denied")) => {
            VaultError::Forbidden
        }
        (400..=499, _) => VaultError::InvalidConfig,
        _ => VaultError::UnexpectedResponse,
    };

    let mut text = format!(
        "the token endpoint {} answered HTTP {status} for client {}",
        ctx.endpoint, ctx.client_id
    );
    if let Some(code) = &code {
        text.push_str(&format!(": {code}"));
    }
    if let Some(description) = &description {
        text.push_str(&format!(" ({description})"));
    }
    let mut report = Report::new(kind).attach(Detail::new(text));
    match (kind, code.as_deref()) {
        (VaultError::Forbidden, Some("invalid_scope")) | (VaultError::Forbidden, None) => {
            report = report.attach(Detail::new(format!(
                "requested scopes: [{}]",
                ctx.scopes.join(" ")
            )));
        }
        (VaultError::InvalidConfig, _) if (300..=399).contains(&status) => {
            report = report.attach(Detail::new(
                "redirects are not followed on the token call: configure the token URL the endpoint redirects to",
            ));
        }
        _ => {}
    }
    if status == 429
        && let Some(wait) = retry_after.and_then(parse_retry_after)
    {
        report = report.attach(RetryAfter(wait));
    }
    report.attach(HttpStatus(status))
}

/// `Retry-After` in delta-seconds (the HTTP-date form is not used by token endpoints).
pub(crate) fn parse_retry_after(value: &str) -> Option<Duration> {
    value.trim().parse::<u64>().ok().map(Duration::from_secs)
}

/// Keeps printable text only, cut to `max` characters, with any secret replaced.
fn scrub(text: &str, secrets: &[&str], max: usize) -> String {
    let mut clean: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    for secret in secrets.iter().filter(|s| !s.is_empty()) {
        clean = clean.replace(secret, vault_core::REDACTED);
    }
    let mut clean = clean.trim().to_owned();
    if clean.chars().count() > max {
        clean = clean.chars().take(max).collect();
        clean.push('…');
    }
    clean
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use vault_core::ReportExt;

    const CTX: ErrorContext<'static> = ErrorContext {
        endpoint: "https://auth.example/token",
        client_id: "ACclient",
        scopes: &[],
        secrets: &["sup3r-s3cret"],
    };

    fn map(status: u16, body: &str) -> Report<VaultError> {
        map_error_response(status, body.as_bytes(), None, &CTX)
    }

    #[test]
    fn keycloak_errors_map_to_kinds() {
        let cases = [
            (
                401,
                r#"{"error":"invalid_client"}"#,
                VaultError::InvalidCredentials,
            ),
            (
                400,
                r#"{"error":"invalid_client"}"#,
                VaultError::InvalidCredentials,
            ),
            (
                400,
                r#"{"error":"invalid_grant","error_description":"Invalid user credentials"}"#,
                VaultError::InvalidCredentials,
            ),
            (400, r#"{"error":"invalid_scope"}"#, VaultError::Forbidden),
            (
                400,
                r#"{"error":"unauthorized_client"}"#,
                VaultError::Forbidden,
            ),
            (403, "", VaultError::Forbidden),
            (
                400,
                r#"{"error":"unsupported_grant_type"}"#,
                VaultError::InvalidConfig,
            ),
            (400, "not json", VaultError::InvalidConfig),
            (404, "<html>", VaultError::InvalidConfig),
            (302, "", VaultError::InvalidConfig),
            (408, "", VaultError::Timeout),
            (429, "", VaultError::RateLimited),
            (500, "", VaultError::Upstream),
            (503, "<html>busy</html>", VaultError::Upstream),
        ];
        for (status, body, kind) in cases {
            let report = map(status, body);
            assert_eq!(report.kind(), kind, "{status} {body}");
            assert_eq!(report.http_status(), Some(status));
        }
    }

    #[test]
    fn provider_text_is_kept_and_scrubbed() {
        let report = map(
            401,
            r#"{"error":"invalid_client","error_description":"bad secret sup3r-s3cret\n for you","extra":"sup3r-s3cret"}"#,
        );
        let details = report.details().join(" | ");
        assert!(
            details.contains("invalid_client (bad secret [REDACTED]  for you)"),
            "{details}"
        );
        assert!(!format!("{report:?}").contains("sup3r-s3cret"));
    }

    #[test]
    fn invalid_scope_names_the_requested_scopes() {
        let scopes = ["aliases:write".to_owned(), "aliases:read".to_owned()];
        let ctx = ErrorContext {
            scopes: &scopes,
            ..CTX
        };
        let report = map_error_response(400, br#"{"error":"invalid_scope"}"#, None, &ctx);
        assert!(
            report
                .details()
                .join(" ")
                .contains("requested scopes: [aliases:write aliases:read]")
        );
    }

    #[test]
    fn rate_limit_keeps_retry_after() {
        let report = map_error_response(429, b"", Some("7"), &CTX);
        assert_eq!(report.retry_after(), Some(Duration::from_secs(7)));
        assert!(report.is_retryable());
    }

    #[test]
    fn token_response_fields() {
        let ok = parse_token_response(
            200,
            br#"{"access_token":"abc","expires_in":300,"token_type":"Bearer","refresh_expires_in":0,"not-before-policy":0,"scope":"a b"}"#,
            Duration::from_secs(60),
            &CTX,
        )
        .unwrap();
        assert_eq!(ok.token.expose_secret(), "abc");
        assert_eq!(ok.lifetime, Duration::from_secs(300));
        assert_eq!(ok.token_type.as_deref(), Some("Bearer"));

        let default = parse_token_response(
            200,
            br#"{"access_token":"abc"}"#,
            Duration::from_secs(60),
            &CTX,
        )
        .unwrap();
        assert_eq!(default.lifetime, Duration::from_secs(60));
        assert_eq!(default.token_type, None);

        let text = parse_token_response(
            200,
            br#"{"access_token":"abc","expires_in":"3600"}"#,
            Duration::from_secs(60),
            &CTX,
        )
        .unwrap();
        assert_eq!(text.lifetime, Duration::from_secs(3600));
    }

    #[test]
    fn bad_token_responses_are_unexpected_and_do_not_echo_the_body() {
        for body in [
            r#"{"access_token":12345678}"#,
            r#"{"expires_in":300}"#,
            r#"{"access_token":"","expires_in":300}"#,
            r#"{"access_token":"leaky-token","expires_in":0}"#,
            r#"{"access_token":"leaky-token","expires_in":"soon"}"#,
            r#"leaky-token"#,
        ] {
            let Err(report) =
                parse_token_response(200, body.as_bytes(), Duration::from_secs(60), &CTX)
            else {
                panic!("accepted {body}");
            };
            assert_eq!(report.kind(), VaultError::UnexpectedResponse, "{body}");
            let rendered = format!("{report:?}");
            assert!(
                !rendered.contains("leaky-token") && !rendered.contains("12345678"),
                "{rendered}"
            );
        }
    }

    #[test]
    fn an_error_sent_with_200_is_still_an_error() {
        let Err(report) = parse_token_response(
            200,
            br#"{"error":"invalid_client"}"#,
            Duration::from_secs(60),
            &CTX,
        ) else {
            panic!("accepted");
        };
        assert_eq!(report.kind(), VaultError::InvalidCredentials);
    }
}
