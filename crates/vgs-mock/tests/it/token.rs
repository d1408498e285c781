//! The token endpoint: client auth by Basic or form, scopes, lifetime, Keycloak errors,
//! and what tokens are worth on API v2 (expiry, scope binding).

use std::time::Duration;

use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use vgs_mock::{
    DEMO_CLIENT_ID, DEMO_CLIENT_SECRET, DEMO_VAULT_ID, MockClock, MockConfig, TOKEN_PATH,
};

use crate::support::{Mock, basic, epoch, item};

fn demo_auth() -> String {
    basic(DEMO_CLIENT_ID, DEMO_CLIENT_SECRET)
}

#[tokio::test]
async fn basic_auth_gets_a_bearer_token_with_all_client_scopes() {
    let mock = Mock::demo();
    let reply = mock
        .token_request(Some(&demo_auth()), "grant_type=client_credentials")
        .await;
    assert_eq!(reply.status, StatusCode::OK);
    let json = reply.json();
    assert_eq!(json["token_type"], "Bearer");
    assert_eq!(json["expires_in"], 300);
    assert_eq!(json["scope"], "aliases:read aliases:write aliases:delete");
    let token = json["access_token"].as_str().unwrap();
    assert!(token.len() >= 32);
    assert_eq!(reply.header("cache-control"), Some("no-store"));
}

#[tokio::test]
async fn form_fields_authenticate_the_client_too() {
    let mock = Mock::demo();
    let form = format!(
        "grant_type=client_credentials&client_id={DEMO_CLIENT_ID}&client_secret={DEMO_CLIENT_SECRET}"
    );
    let reply = mock.token_request(None, &form).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
}

#[tokio::test]
async fn tokens_are_random() {
    let mock = Mock::demo();
    let a = mock.token(None).await;
    let b = mock.token(None).await;
    assert_ne!(a, b);
}

#[tokio::test]
async fn expires_in_reflects_the_configured_lifetime() {
    let mock = Mock::new(MockConfig::demo().with_token_lifetime(Duration::from_secs(1200)));
    let reply = mock
        .token_request(Some(&demo_auth()), "grant_type=client_credentials")
        .await;
    assert_eq!(reply.json()["expires_in"], 1200);
}

#[tokio::test]
async fn a_subset_of_scopes_is_granted_and_a_foreign_scope_is_invalid_scope() {
    let mock = Mock::demo();
    let reply = mock
        .token_request(
            Some(&demo_auth()),
            "grant_type=client_credentials&scope=aliases%3Aread",
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.json()["scope"], "aliases:read");

    let reply = mock
        .token_request(
            Some(&demo_auth()),
            "grant_type=client_credentials&scope=aliases:read+cards:read-pci",
        )
        .await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert_eq!(reply.json()["error"], "invalid_scope");
}

#[tokio::test]
async fn a_wrong_secret_or_unknown_client_is_401_invalid_client() {
    let mock = Mock::demo();
    for authorization in [
        basic(DEMO_CLIENT_ID, "wrong"),
        basic("nobody", DEMO_CLIENT_SECRET),
        "Basic %%%".to_owned(),
    ] {
        let reply = mock
            .token_request(Some(&authorization), "grant_type=client_credentials")
            .await;
        assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
        let json = reply.json();
        assert_eq!(json["error"], "invalid_client");
        assert!(json["error_description"].is_string());
        assert!(!reply.text().contains("wrong"), "never echo a secret");
    }
    let reply = mock
        .token_request(None, "grant_type=client_credentials")
        .await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    assert_eq!(reply.json()["error"], "invalid_client");
}

#[tokio::test]
async fn another_grant_is_unsupported_and_a_missing_one_invalid() {
    let mock = Mock::demo();
    let reply = mock
        .token_request(
            Some(&demo_auth()),
            "grant_type=password&username=a&password=b",
        )
        .await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert_eq!(reply.json()["error"], "unsupported_grant_type");

    let reply = mock
        .token_request(Some(&demo_auth()), "scope=aliases:read")
        .await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert_eq!(reply.json()["error"], "invalid_request");
}

#[tokio::test]
async fn a_json_body_is_400() {
    let mock = Mock::demo();
    let request = Request::builder()
        .method(Method::POST)
        .uri(TOKEN_PATH)
        .header(header::AUTHORIZATION, demo_auth())
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(r#"{"grant_type":"client_credentials"}"#))
        .unwrap();
    let reply = mock.send(request).await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert_eq!(reply.json()["error"], "invalid_request");
}

#[tokio::test]
async fn an_expired_token_is_401_and_counted() {
    let clock = MockClock::manual_at(epoch());
    let mock = Mock::new(MockConfig::demo().with_clock(clock.clone()));
    let token = mock.token(None).await;
    let create = || {
        mock.v2(
            DEMO_VAULT_ID,
            &token,
            Method::POST,
            "/aliases",
            Some(serde_json::json!({"data": [item("v", "UUID", "PERSISTENT")]})),
        )
    };
    clock.advance(Duration::from_secs(299));
    assert_eq!(create().await.status, StatusCode::CREATED);
    clock.advance(Duration::from_secs(1));
    let reply = create().await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    assert_eq!(reply.json()["errors"][0]["code"], "unauthorized");
    assert!(
        reply
            .header("www-authenticate")
            .unwrap()
            .starts_with("Bearer")
    );
    let stats = mock.state.stats();
    assert_eq!(stats.expired_token_rejections, 1);

    // An unknown token is rejected too, but is not an expired one.
    let reply = mock
        .v2(DEMO_VAULT_ID, "made-up", Method::GET, "/aliases/x", None)
        .await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    assert_eq!(mock.state.stats().expired_token_rejections, 1);
}

#[tokio::test]
async fn token_counters_split_successes_and_failures() {
    let mock = Mock::demo();
    mock.token(None).await;
    mock.token_request(
        Some(&basic(DEMO_CLIENT_ID, "x")),
        "grant_type=client_credentials",
    )
    .await;
    let stats = mock.state.stats();
    assert_eq!(
        (
            stats.token_requests,
            stats.token_successes,
            stats.token_failures
        ),
        (2, 1, 1)
    );
}
