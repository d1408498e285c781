//! Observability: `GET /_mock/stats` (stable JSON names, same data as `stats()`),
//! per-route/status counts, and `POST /_mock/reset`.

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use serde_json::json;
use vgs_mock::{DEMO_VAULT_ID, Route, Stats};

use crate::support::{Mock, item};

async fn stats_json(mock: &Mock) -> serde_json::Value {
    let reply = mock
        .send(Request::get("/_mock/stats").body(Body::empty()).unwrap())
        .await;
    assert_eq!(reply.status, StatusCode::OK);
    reply.json()
}

#[tokio::test]
async fn the_stats_endpoint_counts_routes_statuses_and_stored_aliases() {
    let mock = Mock::demo();
    let token = mock.token(None).await;
    let alias = mock.create_one("v").await;
    mock.v1(Method::GET, &format!("/aliases/{alias}"), None)
        .await;
    mock.v1(Method::GET, "/aliases/tok_nope", None).await;
    mock.v2(
        DEMO_VAULT_ID,
        &token,
        Method::GET,
        "/aliases/tok_nope",
        None,
    )
    .await;

    let json = stats_json(&mock).await;
    assert_eq!(json["token_requests"], 1);
    assert_eq!(json["token_successes"], 1);
    assert_eq!(json["token_failures"], 0);
    assert_eq!(json["expired_token_rejections"], 0);
    assert_eq!(json["api_requests"]["createAliases"]["201"], 1);
    assert_eq!(json["api_requests"]["revealAlias"]["200"], 1);
    assert_eq!(json["api_requests"]["revealAlias"]["404"], 2);
    assert_eq!(json["aliases_stored"], 1);
    assert_eq!(json["records_stored"], 1);
    assert_eq!(json["vaults"][DEMO_VAULT_ID]["create_requests"], 1);
    assert_eq!(json["vaults"][DEMO_VAULT_ID]["api_requests"], 4);

    // The typed snapshot is the same data.
    let typed: Stats = serde_json::from_value(json).unwrap();
    assert_eq!(typed, mock.state.stats());
    assert_eq!(typed.api_count(Route::RevealAlias, 404), 2);
    assert_eq!(typed.api_total(Route::RevealAlias), 3);
}

#[tokio::test]
async fn control_routes_are_not_counted() {
    let mock = Mock::demo();
    stats_json(&mock).await;
    let json = stats_json(&mock).await;
    assert_eq!(json["api_requests"], json!({}));
}

#[tokio::test]
async fn reset_clears_records_tokens_and_counters() {
    let mock = Mock::demo();
    let token = mock.token(None).await;
    let alias = mock
        .create(vec![
            item("a", "UUID", "PERSISTENT"),
            item("b", "UUID", "VOLATILE"),
        ])
        .await
        .remove(0);
    let reply = mock
        .send(Request::post("/_mock/reset").body(Body::empty()).unwrap())
        .await;
    assert_eq!(reply.status, StatusCode::NO_CONTENT);
    let stats = mock.state.stats();
    assert_eq!(
        (
            stats.token_requests,
            stats.faults_injected,
            stats.aliases_stored
        ),
        (0, 0, 0)
    );
    assert!(stats.api_requests.is_empty());
    assert_eq!(mock.state.record_count(DEMO_VAULT_ID), Some(0));
    assert_eq!(mock.state.stats().vault(DEMO_VAULT_ID), Default::default());
    let reply = mock
        .v1(Method::GET, &format!("/aliases/{alias}"), None)
        .await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND);
    let reply = mock
        .v2(DEMO_VAULT_ID, &token, Method::GET, "/aliases/tok_x", None)
        .await;
    assert_eq!(
        reply.status,
        StatusCode::UNAUTHORIZED,
        "tokens are forgotten"
    );
}

#[tokio::test]
async fn reset_stats_keeps_the_records() {
    let mock = Mock::demo();
    mock.create_one("kept").await;
    let reply = mock
        .send(
            Request::post("/_mock/reset-stats")
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(reply.status, StatusCode::NO_CONTENT);
    let stats = mock.state.stats();
    assert_eq!(stats.api_total(Route::CreateAliases), 0);
    assert_eq!(stats.vault(DEMO_VAULT_ID).create_requests, 0);
    assert_eq!(stats.aliases_stored, 1);
}
