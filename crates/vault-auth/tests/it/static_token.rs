//! Static tokens (VDMS `TOK:`): the backup is used after the primary is rejected with
//! 401, and a new primary is promoted at runtime without rebuilding anything.

use std::sync::Arc;

use error_stack::Report;
use vault_auth::{AuthScheme, CachedToken, StaticTokenSource, TokenCache};
use vault_core::{AccessToken, HttpStatus, ReportExt, VaultError};
use wiremock::matchers::{header, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

async fn call_vault(server: &MockServer, token: &CachedToken) -> Result<u16, Report<VaultError>> {
    let status = reqwest::Client::new()
        .get(format!("{}/vault", server.uri()))
        .header("authorization", token.authorization().clone())
        .send()
        .await
        .unwrap()
        .status()
        .as_u16();
    match status {
        401 => Err(Report::new(VaultError::InvalidCredentials).attach(HttpStatus(401))),
        other => Ok(other),
    }
}

async fn mount(server: &MockServer, authorization: &str, status: u16, expected: u64) {
    Mock::given(path("/vault"))
        .and(header("authorization", authorization))
        .respond_with(ResponseTemplate::new(status))
        .expect(expected)
        .mount(server)
        .await;
}

#[tokio::test]
async fn the_backup_is_used_after_the_primary_is_rejected() {
    let server = MockServer::start().await;
    mount(&server, "TOK:primary-uuid", 401, 1).await;
    mount(&server, "TOK:backup-uuid", 200, 2).await;
    let tokens = Arc::new(
        StaticTokenSource::new("vdms", AuthScheme::Tok, AccessToken::new("primary-uuid"))
            .with_backup(AccessToken::new("backup-uuid")),
    );
    let cache = TokenCache::builder(tokens.clone()).build();

    let status = cache
        .with_token(|token| {
            let server = &server;
            async move { call_vault(server, &token).await }
        })
        .await
        .unwrap();
    assert_eq!(status, 200);
    assert!(tokens.is_using_backup());
    // Later calls go straight to the backup.
    let status = cache
        .with_token(|token| {
            let server = &server;
            async move { call_vault(server, &token).await }
        })
        .await
        .unwrap();
    assert_eq!(status, 200);
}

#[tokio::test]
async fn both_tokens_rejected_is_invalid_credentials() {
    let server = MockServer::start().await;
    mount(&server, "TOK:primary-uuid", 401, 1).await;
    mount(&server, "TOK:backup-uuid", 401, 1).await;
    let tokens = Arc::new(
        StaticTokenSource::new("vdms", AuthScheme::Tok, AccessToken::new("primary-uuid"))
            .with_backup(AccessToken::new("backup-uuid")),
    );
    let cache = TokenCache::builder(tokens).build();
    let report = cache
        .with_token(|token| {
            let server = &server;
            async move { call_vault(server, &token).await }
        })
        .await
        .unwrap_err();
    assert_eq!(report.kind(), VaultError::InvalidCredentials);
    assert_eq!(report.attempt(), Some(2));
}

#[tokio::test]
async fn a_promoted_primary_is_used_at_once_without_a_restart() {
    let server = MockServer::start().await;
    mount(&server, "TOK:primary-uuid", 200, 1).await;
    mount(&server, "TOK:rotated-uuid", 200, 1).await;
    let tokens = Arc::new(StaticTokenSource::new(
        "vdms",
        AuthScheme::Tok,
        AccessToken::new("primary-uuid"),
    ));
    let cache = TokenCache::builder(tokens.clone()).build();
    let before = cache.get().await.unwrap();
    assert_eq!(call_vault(&server, &before).await.unwrap(), 200);

    tokens.promote(AccessToken::new("rotated-uuid"));
    let after = cache.get().await.unwrap();
    assert_eq!(after.access_token().expose_secret(), "rotated-uuid");
    assert_eq!(call_vault(&server, &after).await.unwrap(), 200);
    assert_eq!(cache.fetch_stats().ok, 2);
}
