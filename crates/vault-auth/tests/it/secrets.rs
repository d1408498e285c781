//! Secrets never show: the Debug of every config, source, cache and token type is
//! redacted, and a TRACE-level log of fetch, cache and error flows holds none of them.

use std::sync::Arc;

use base64::Engine as _;
use serde_json::json;
use vault_auth::{
    AuthScheme, InMemoryTokenStore, OAuth2Source, StaticTokenSource, TokenCache, TokenStore,
};
use vault_core::{AccessToken, ClientId, ClientSecret, Password, VaultError};
use wiremock::matchers::{body_string_contains, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::{CLIENT_SECRET, LogCapture, TokenSequence, token_body, vgs_source};

const PASSWORD: &str = "hunter2-pass-word";

fn secrets() -> Vec<String> {
    vec![
        CLIENT_SECRET.to_owned(),
        PASSWORD.to_owned(),
        "tok-1".to_owned(),
        "tok-2".to_owned(),
        "gas-token-value".to_owned(),
        "primary-uuid".to_owned(),
        "backup-uuid".to_owned(),
        base64::engine::general_purpose::STANDARD.encode(format!("ACclient42:{CLIENT_SECRET}")),
    ]
}

fn assert_clean(text: &str) {
    for secret in secrets() {
        assert!(!text.contains(&secret), "`{secret}` leaked into:\n{text}");
    }
}

#[tokio::test]
async fn debug_of_every_type_is_redacted() {
    let server = MockServer::start().await;
    Mock::given(path("/token"))
        .respond_with(TokenSequence::new(300))
        .expect(2)
        .mount(&server)
        .await;
    let builder = vgs_source(&server).scopes(["aliases:read"]);
    let mut rendered = format!("{builder:?}");
    let source = Arc::new(builder.build().unwrap());
    let password = OAuth2Source::password(
        format!("{}/token", server.uri()),
        ClientId::new("vista"),
        "alice",
        Password::new(PASSWORD),
    )
    .client_secret(ClientSecret::new(CLIENT_SECRET));
    rendered.push_str(&format!("{password:?}"));
    rendered.push_str(&format!("{:?}", password.build().unwrap()));
    let store = Arc::new(InMemoryTokenStore::new());
    let cache_builder = TokenCache::builder(source.clone()).store(store.clone());
    rendered.push_str(&format!("{cache_builder:?}"));
    let cache = cache_builder.build();
    let token = cache.get().await.unwrap();
    let fetched = vault_auth::TokenSource::fetch(&*source).await;
    let stored = store.get(cache.key()).await.unwrap().unwrap();
    let statics = StaticTokenSource::new("vdms", AuthScheme::Tok, AccessToken::new("primary-uuid"))
        .with_backup(AccessToken::new("backup-uuid"));
    rendered.push_str(&format!(
        "{source:?} {cache:?} {cache:#?} {token:?} {fetched:?} {stored:?} {store:?} {statics:?} {:?}",
        token.authorization()
    ));
    assert_clean(&rendered);
    assert!(rendered.contains("[REDACTED]"));
    assert!(
        rendered.contains("ACclient42"),
        "ids are not secret: {rendered}"
    );
}

#[tokio::test]
async fn trace_logs_never_hold_secrets_or_tokens() {
    let server = MockServer::start().await;
    Mock::given(path("/token"))
        .and(body_string_contains("grant_type=client_credentials"))
        .respond_with(TokenSequence::new(300))
        .expect(2)
        .mount(&server)
        .await;
    Mock::given(path("/gas"))
        .and(body_string_contains("grant_type=password"))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(token_body("gas-token-value", 43_200)),
        )
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(path("/bad"))
        .respond_with(ResponseTemplate::new(401).set_body_json(json!({
            "error": "invalid_client",
            "error_description": format!("secret {CLIENT_SECRET} is wrong"),
        })))
        .expect(1)
        .mount(&server)
        .await;

    let (capture, guard) = LogCapture::install();

    let cache = TokenCache::builder(Arc::new(vgs_source(&server).build().unwrap())).build();
    let token = cache.get().await.unwrap();
    cache.get().await.unwrap();
    let retried = cache
        .with_token(|t| {
            let first = token.clone();
            async move {
                if t.access_token() == first.access_token() {
                    Err(error_stack::Report::new(VaultError::InvalidCredentials))
                } else {
                    Ok(())
                }
            }
        })
        .await;
    assert!(retried.is_ok());

    let gas = OAuth2Source::password(
        format!("{}/gas", server.uri()),
        ClientId::new("vista"),
        "alice",
        Password::new(PASSWORD),
    )
    .build()
    .unwrap();
    let gas_cache = TokenCache::builder(Arc::new(gas)).build();
    gas_cache.get().await.unwrap();

    let bad = OAuth2Source::client_credentials(
        format!("{}/bad", server.uri()),
        ClientId::new("ACclient42"),
        ClientSecret::new(CLIENT_SECRET),
    )
    .build()
    .unwrap();
    let bad_cache = TokenCache::builder(Arc::new(bad)).build();
    let report = bad_cache.get().await.unwrap_err();
    assert_clean(&format!("{report:?} {report}"));

    let statics = Arc::new(
        StaticTokenSource::new("vdms", AuthScheme::Tok, AccessToken::new("primary-uuid"))
            .with_backup(AccessToken::new("backup-uuid")),
    );
    let static_cache = TokenCache::builder(statics.clone()).build();
    let primary = static_cache.get().await.unwrap();
    static_cache.invalidate(primary.access_token()).await;
    static_cache.get().await.unwrap();
    statics.promote(AccessToken::new("primary-uuid"));

    drop(guard);
    let logs = capture.text();
    // The capture works: safe fields are there.
    for expected in [
        "vault_auth.fetch_token",
        "access token fetched",
        "access token cached",
        "token cache hit",
        "client_id=ACclient42",
        "access token invalidated",
        "kind=\"invalid_credentials\"",
        "status=401",
    ] {
        assert!(
            logs.contains(expected),
            "`{expected}` missing from:\n{logs}"
        );
    }
    assert_clean(&logs);
    if std::env::var_os("SHOW_LOGS").is_some() {
        println!("{logs}");
    }
}
