//! OAuth2 sources on the wire: client authentication, scopes, the password grant,
//! error mapping, redirects and timeouts, against one wiremock token endpoint each.

use std::time::{Duration, Instant};

use base64::Engine as _;
use serde_json::json;
use vault_auth::{ClientAuth, OAuth2Source, ScopeDelimiter, TokenSource};
use vault_core::{ClientId, ClientSecret, Password, ReportExt, VaultError};
use wiremock::matchers::{body_string, header, method, path};
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

use crate::{CLIENT_SECRET, token_body, vgs_source};

fn no_authorization_header(request: &Request) -> bool {
    !request.headers.contains_key("authorization")
}

#[tokio::test]
async fn basic_client_auth_sends_percent_encoded_credentials_and_space_joined_scopes() {
    let server = MockServer::start().await;
    // RFC 6749 §2.3.1: form-urlencode id and secret, then base64 `id:secret`.
    let basic =
        base64::engine::general_purpose::STANDARD.encode("my%3Aclient:s%C3%A9cr%2Bt+%2F%26");
    Mock::given(method("POST"))
        .and(path("/token"))
        .and(header("authorization", format!("Basic {basic}").as_str()))
        .and(header("content-type", "application/x-www-form-urlencoded"))
        .and(header("accept", "application/json"))
        .and(body_string(
            "grant_type=client_credentials&scope=aliases%3Aread%20aliases%3Awrite",
        ))
        .respond_with(ResponseTemplate::new(200).set_body_json(token_body("tok-basic", 300)))
        .expect(1)
        .mount(&server)
        .await;

    let source = OAuth2Source::client_credentials(
        format!("{}/token", server.uri()),
        ClientId::new("my:client"),
        ClientSecret::new("sécr+t /&"),
    )
    .scopes(["aliases:read", "aliases:write"])
    .build()
    .unwrap();
    let token = source.fetch().await.unwrap();
    assert_eq!(token.token.expose_secret(), "tok-basic");
    assert_eq!(token.lifetime, Duration::from_secs(300));
}

#[tokio::test]
async fn form_client_auth_sends_credentials_in_the_body_and_plus_joined_scopes() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/token"))
        .and(no_authorization_header)
        .and(header("content-type", "application/x-www-form-urlencoded"))
        .and(body_string(format!(
            "grant_type=client_credentials&client_id=ACclient42&client_secret={CLIENT_SECRET}&scope=ec.rules+ec.purge"
        )))
        .respond_with(ResponseTemplate::new(200).set_body_json(token_body("tok-form", 300)))
        .expect(1)
        .mount(&server)
        .await;

    let source = vgs_source(&server)
        .client_auth(ClientAuth::Form)
        .scopes(["ec.rules", "ec.purge"])
        .scope_delimiter(ScopeDelimiter::Plus)
        .build()
        .unwrap();
    assert_eq!(
        source.fetch().await.unwrap().token.expose_secret(),
        "tok-form"
    );
}

#[tokio::test]
async fn password_grant_sends_client_id_username_and_password() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/token"))
        .and(no_authorization_header)
        .and(body_string(
            "grant_type=password&client_id=vista&username=alice%40example.com&password=hunter2+pass%21",
        ))
        .respond_with(ResponseTemplate::new(200).set_body_json(token_body("tok-gas", 43_200)))
        .expect(1)
        .mount(&server)
        .await;

    let source = OAuth2Source::password(
        format!("{}/token", server.uri()),
        ClientId::new("vista"),
        "alice@example.com",
        Password::new("hunter2 pass!"),
    )
    .build()
    .unwrap();
    let token = source.fetch().await.unwrap();
    assert_eq!(token.lifetime, Duration::from_secs(12 * 3600));
}

#[tokio::test]
async fn a_missing_expires_in_gets_the_configured_default_lifetime() {
    let server = MockServer::start().await;
    Mock::given(path("/token"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"access_token": "t"})))
        .expect(1)
        .mount(&server)
        .await;
    let source = vgs_source(&server)
        .default_lifetime(Duration::from_secs(120))
        .build()
        .unwrap();
    assert_eq!(
        source.fetch().await.unwrap().lifetime,
        Duration::from_secs(120)
    );
}

async fn fetch_error(response: ResponseTemplate) -> error_stack::Report<VaultError> {
    let server = MockServer::start().await;
    Mock::given(path("/token"))
        .respond_with(response)
        .expect(1)
        .mount(&server)
        .await;
    vgs_source(&server)
        .scopes(["aliases:write"])
        .build()
        .unwrap()
        .fetch()
        .await
        .expect_err("the token endpoint refused")
}

#[tokio::test]
async fn status_401_is_invalid_credentials_with_the_providers_text() {
    let report = fetch_error(ResponseTemplate::new(401).set_body_json(json!({
        "error": "invalid_client",
        "error_description": "Invalid client or Invalid client credentials"
    })))
    .await;
    assert_eq!(report.kind(), VaultError::InvalidCredentials);
    assert!(!report.is_retryable());
    assert_eq!(report.http_status(), Some(401));
    let details = report.details().join(" | ");
    assert!(
        details.contains("invalid_client (Invalid client or Invalid client credentials)"),
        "{details}"
    );
    assert!(details.contains("for client ACclient42"), "{details}");
}

#[tokio::test]
async fn status_403_and_invalid_scope_are_forbidden() {
    let report = fetch_error(ResponseTemplate::new(403)).await;
    assert_eq!(report.kind(), VaultError::Forbidden);
    assert_eq!(report.http_status(), Some(403));

    let report =
        fetch_error(ResponseTemplate::new(400).set_body_json(json!({"error": "invalid_scope"})))
            .await;
    assert_eq!(report.kind(), VaultError::Forbidden);
    assert!(
        report
            .details()
            .join(" ")
            .contains("requested scopes: [aliases:write]")
    );
}

#[tokio::test]
async fn server_errors_and_rate_limits_are_retryable() {
    let report = fetch_error(ResponseTemplate::new(503).set_body_string("<html>down</html>")).await;
    assert_eq!(report.kind(), VaultError::Upstream);
    assert!(report.is_retryable());
    assert_eq!(report.http_status(), Some(503));

    let report = fetch_error(ResponseTemplate::new(429).insert_header("retry-after", "3")).await;
    assert_eq!(report.kind(), VaultError::RateLimited);
    assert_eq!(report.retry_after(), Some(Duration::from_secs(3)));
}

#[tokio::test]
async fn unsupported_grant_type_is_a_configuration_error() {
    let report = fetch_error(
        ResponseTemplate::new(400).set_body_json(json!({"error": "unsupported_grant_type"})),
    )
    .await;
    assert_eq!(report.kind(), VaultError::InvalidConfig);
}

#[tokio::test]
async fn malformed_token_responses_are_unexpected() {
    let report = fetch_error(ResponseTemplate::new(200).set_body_string("{\"access_tok")).await;
    assert_eq!(report.kind(), VaultError::UnexpectedResponse);
    let report = fetch_error(
        ResponseTemplate::new(200).set_body_json(json!({"access_token": "x", "token_type": "mac"})),
    )
    .await;
    assert_eq!(report.kind(), VaultError::UnexpectedResponse);
    assert!(report.details().join(" ").contains("type `mac`"));
}

#[tokio::test]
async fn redirects_are_not_followed() {
    let server = MockServer::start().await;
    Mock::given(path("/token"))
        .respond_with(
            ResponseTemplate::new(302)
                .insert_header("location", format!("{}/elsewhere", server.uri())),
        )
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(path("/elsewhere"))
        .respond_with(ResponseTemplate::new(200).set_body_json(token_body("stolen", 300)))
        .expect(0)
        .mount(&server)
        .await;
    let report = vgs_source(&server)
        .build()
        .unwrap()
        .fetch()
        .await
        .unwrap_err();
    assert_eq!(report.kind(), VaultError::InvalidConfig);
    assert_eq!(report.http_status(), Some(302));
    assert!(
        report
            .details()
            .join(" ")
            .contains("redirects are not followed")
    );
}

#[tokio::test]
async fn a_slow_endpoint_is_a_retryable_timeout() {
    let server = MockServer::start().await;
    Mock::given(path("/token"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(token_body("late", 300))
                .set_delay(Duration::from_secs(10)),
        )
        .expect(1)
        .mount(&server)
        .await;
    let source = vgs_source(&server)
        .timeout(Duration::from_millis(200))
        .build()
        .unwrap();
    let started = Instant::now();
    let report = source.fetch().await.unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_eq!(report.kind(), VaultError::Timeout);
    assert!(report.is_retryable());
    assert!(report.details().join(" ").contains("within 200 ms"));
}

#[tokio::test]
async fn a_refused_connection_is_a_retryable_transport_error() {
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let source = OAuth2Source::client_credentials(
        format!("http://127.0.0.1:{port}/token"),
        ClientId::new("c"),
        ClientSecret::new("s"),
    )
    .build()
    .unwrap();
    let report = source.fetch().await.unwrap_err();
    assert_eq!(report.kind(), VaultError::Transport);
    assert!(report.is_retryable());
}

#[tokio::test]
async fn an_injected_client_still_gets_the_total_timeout() {
    let server = MockServer::start().await;
    Mock::given(path("/token"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(token_body("late", 300))
                .set_delay(Duration::from_secs(10)),
        )
        .expect(1)
        .mount(&server)
        .await;
    let shared = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let source = vgs_source(&server)
        .http_client(shared)
        .timeout(Duration::from_millis(200))
        .build()
        .unwrap();
    assert_eq!(
        source.fetch().await.unwrap_err().kind(),
        VaultError::Timeout
    );
}
