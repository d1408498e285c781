//! Fault injection: deterministic "fail the next N calls", random 5xx / 429 / resets,
//! latency and a hanging token endpoint (on Tokio's paused clock, no real waiting),
//! seeds, the JSON controls, and resets seen by a real HTTP client.

use std::time::Duration;

use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use serde_json::json;
use tokio::time::Instant;
use vgs_mock::{
    DEMO_CLIENT_ID, DEMO_CLIENT_SECRET, DEMO_VAULT_ID, FAULT_HEADER, FailWith, FaultConfig,
    MockConfig, Route,
};

use crate::support::{Mock, basic, demo_basic, item};

fn create_body() -> serde_json::Value {
    json!({"data": [item("v", "UUID", "PERSISTENT")]})
}

async fn token_status(mock: &Mock) -> StatusCode {
    mock.token_request(
        Some(&basic(DEMO_CLIENT_ID, DEMO_CLIENT_SECRET)),
        "grant_type=client_credentials",
    )
    .await
    .status
}

#[tokio::test]
async fn the_next_two_token_calls_fail_with_503_then_it_recovers() {
    let mock = Mock::demo();
    mock.state
        .fail_next(Route::TokenEndpoint, 2, FailWith::Status(503));
    for _ in 0..2 {
        let reply = mock
            .token_request(
                Some(&basic(DEMO_CLIENT_ID, DEMO_CLIENT_SECRET)),
                "grant_type=client_credentials",
            )
            .await;
        assert_eq!(reply.status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(reply.json()["error"], "temporarily_unavailable");
        assert_eq!(reply.header(FAULT_HEADER), Some("status"));
    }
    assert_eq!(token_status(&mock).await, StatusCode::OK);
    let stats = mock.state.stats();
    assert_eq!((stats.token_successes, stats.token_failures), (1, 2));
    assert_eq!(stats.faults_injected, 2);
}

#[tokio::test]
async fn a_deterministic_fault_hits_only_its_route_in_the_callers_error_shape() {
    let mock = Mock::demo();
    let alias = mock.create_one("v").await;
    mock.state
        .fail_next(Route::CreateAliases, 2, FailWith::Status(500));
    let reply = mock
        .v1(Method::GET, &format!("/aliases/{alias}"), None)
        .await;
    assert_eq!(reply.status, StatusCode::OK, "other routes are untouched");

    let reply = mock.v1(Method::POST, "/aliases", Some(create_body())).await;
    assert_eq!(reply.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(reply.json()["errors"][0]["title"], "Internal server error");

    let token = mock.token(None).await;
    let reply = mock
        .v2(
            DEMO_VAULT_ID,
            &token,
            Method::POST,
            "/aliases",
            Some(create_body()),
        )
        .await;
    assert_eq!(reply.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(reply.json()["errors"][0]["code"], "internal-server-error");
    assert!(reply.json()["trace_id"].is_string());

    let reply = mock.v1(Method::POST, "/aliases", Some(create_body())).await;
    assert_eq!(reply.status, StatusCode::CREATED);
    // Faulted calls never reached the vault.
    assert_eq!(mock.state.stats().vault(DEMO_VAULT_ID).create_requests, 2);
}

#[tokio::test]
async fn p_5xx_of_one_fails_every_call_with_the_configured_status() {
    let mock = Mock::demo();
    mock.state.set_faults(FaultConfig {
        p_5xx: 1.0,
        status_5xx: 502,
        ..FaultConfig::default()
    });
    assert_eq!(token_status(&mock).await, StatusCode::BAD_GATEWAY);
    let reply = mock.v1(Method::GET, "/aliases/tok_x", None).await;
    assert_eq!(reply.status, StatusCode::BAD_GATEWAY);
    mock.state.set_faults(FaultConfig::none());
    assert_eq!(token_status(&mock).await, StatusCode::OK);
}

#[tokio::test]
async fn p_429_answers_too_many_requests_with_retry_after() {
    let mock = Mock::demo();
    mock.state.set_faults(FaultConfig {
        p_429: 1.0,
        routes: vec![Route::RevealAlias],
        ..FaultConfig::default()
    });
    let reply = mock.v1(Method::GET, "/aliases/tok_x", None).await;
    assert_eq!(reply.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(reply.header("retry-after"), Some("1"));
    assert_eq!(reply.header("x-ratelimit-remaining"), Some("0"));
    // Only the targeted route is hit.
    let reply = mock.v1(Method::POST, "/aliases", Some(create_body())).await;
    assert_eq!(reply.status, StatusCode::CREATED);
}

#[tokio::test]
async fn a_seed_replays_the_same_faults() {
    let run = || async {
        let mock = Mock::demo();
        mock.state.set_faults(FaultConfig {
            p_5xx: 0.5,
            seed: Some(7),
            ..FaultConfig::default()
        });
        let mut statuses = Vec::new();
        for _ in 0..30 {
            statuses.push(
                mock.v1(Method::GET, "/aliases/tok_x", None)
                    .await
                    .status
                    .as_u16(),
            );
        }
        statuses
    };
    let first = run().await;
    assert_eq!(first, run().await);
    assert!(first.contains(&503) && first.contains(&404), "{first:?}");
}

#[tokio::test(start_paused = true)]
async fn latency_delays_the_answer_on_the_tokio_clock() {
    let mock = Mock::demo();
    mock.state.set_faults(FaultConfig {
        latency_ms: 1500,
        latency_jitter_ms: 500,
        ..FaultConfig::default()
    });
    let started = Instant::now();
    let reply = mock.v1(Method::GET, "/aliases/tok_x", None).await;
    let waited = started.elapsed();
    assert_eq!(
        reply.status,
        StatusCode::NOT_FOUND,
        "the call is still answered"
    );
    assert!(waited >= Duration::from_millis(1500), "{waited:?}");
    assert!(waited <= Duration::from_millis(2000), "{waited:?}");
}

#[tokio::test(start_paused = true)]
async fn a_hanging_token_endpoint_outlasts_a_client_timeout() {
    let mock = Mock::new(MockConfig::demo().with_faults(FaultConfig {
        token_delay_ms: 60_000,
        ..FaultConfig::default()
    }));
    let attempt = tokio::time::timeout(Duration::from_secs(5), token_status(&mock)).await;
    assert!(
        attempt.is_err(),
        "the token endpoint should still be hanging"
    );
    let started = Instant::now();
    assert_eq!(token_status(&mock).await, StatusCode::OK);
    assert!(started.elapsed() >= Duration::from_secs(60));
    // API routes are not delayed by token_delay_ms.
    let started = Instant::now();
    mock.v1(Method::GET, "/aliases/tok_x", None).await;
    assert_eq!(started.elapsed(), Duration::ZERO);
}

#[tokio::test(start_paused = true)]
async fn a_deterministic_delay_then_a_normal_answer() {
    let mock = Mock::demo();
    mock.state.fail_next(
        Route::RevealAlias,
        1,
        FailWith::Delay(Duration::from_secs(3)),
    );
    let started = Instant::now();
    let reply = mock.v1(Method::GET, "/aliases/tok_x", None).await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND);
    assert_eq!(reply.header(FAULT_HEADER), Some("delay"));
    assert!(started.elapsed() >= Duration::from_secs(3));
}

#[tokio::test]
async fn in_process_a_reset_answers_502_marked_reset() {
    let mock = Mock::demo();
    mock.state.fail_next(Route::RevealAlias, 1, FailWith::Reset);
    let reply = mock.v1(Method::GET, "/aliases/tok_x", None).await;
    assert_eq!(reply.status, StatusCode::BAD_GATEWAY);
    assert_eq!(reply.header(FAULT_HEADER), Some("reset"));
    assert_eq!(mock.state.stats().api_resets(Route::RevealAlias), 1);
}

async fn control(mock: &Mock, path: &str, body: serde_json::Value) -> crate::support::Reply {
    let request = Request::builder()
        .method(Method::POST)
        .uri(path)
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(body.to_string()))
        .unwrap();
    mock.send(request).await
}

#[tokio::test]
async fn faults_are_settable_over_json() {
    let mock = Mock::demo();
    let reply = control(
        &mock,
        "/_mock/faults",
        json!({"p_5xx": 1.0, "routes": ["createAliases"]}),
    )
    .await;
    assert_eq!(reply.status, StatusCode::NO_CONTENT, "{}", reply.text());
    let reply = mock.v1(Method::POST, "/aliases", Some(create_body())).await;
    assert_eq!(reply.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(mock.state.faults().routes, [Route::CreateAliases]);

    let reply = mock
        .send(Request::get("/_mock/faults").body(Body::empty()).unwrap())
        .await;
    assert_eq!(reply.json()["p_5xx"], 1.0);
    assert_eq!(reply.json()["status_5xx"], 503);

    let reply = control(&mock, "/_mock/faults", json!({"p_5xx": 2.0})).await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    let reply = control(&mock, "/_mock/faults", json!({"p_typo": 1.0})).await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    control(&mock, "/_mock/faults", json!({})).await;

    let reply = control(
        &mock,
        "/_mock/fail-next",
        json!({"route": "revealAlias", "count": 1, "with": {"status": 504}}),
    )
    .await;
    assert_eq!(reply.status, StatusCode::NO_CONTENT);
    let reply = mock.v1(Method::GET, "/aliases/tok_x", None).await;
    assert_eq!(reply.status, StatusCode::GATEWAY_TIMEOUT);
    let reply = mock.v1(Method::GET, "/aliases/tok_x", None).await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND);
    // Not an HTTP status (found by schemathesis against the description): refused.
    let reply = control(
        &mock,
        "/_mock/fail-next",
        json!({"route": "token", "count": 1, "with": {"status": 600}}),
    )
    .await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert!(
        reply.json()["error"]
            .as_str()
            .unwrap()
            .contains("100 to 599")
    );
}

// Over a real socket: a reset must reach the client as a broken connection.

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("client")
}

#[tokio::test]
async fn a_reset_drops_the_connection_so_the_client_sees_no_status() {
    let mock = vgs_mock::start(MockConfig::demo()).await.unwrap();
    mock.fail_next(Route::CreateAliases, 1, FailWith::Reset);
    let client = client();
    let send = || {
        client
            .post(format!("{}/aliases", mock.base_url()))
            .header("authorization", demo_basic())
            .header("content-type", "application/json")
            .body(create_body().to_string())
            .send()
    };
    let error = send().await.expect_err("the connection was dropped");
    assert!(error.status().is_none(), "{error:?}");
    assert!(!error.is_timeout(), "{error:?}");
    let response = send().await.expect("the next call is answered");
    assert_eq!(response.status(), 201);
    let stats = mock.stats();
    assert_eq!(stats.api_resets(Route::CreateAliases), 1);
    assert_eq!(stats.api_count(Route::CreateAliases, 201), 1);
    mock.stop().await;
}

#[tokio::test]
async fn p_reset_on_the_token_endpoint_breaks_token_requests_only() {
    let mock = vgs_mock::start(MockConfig::demo().with_faults(FaultConfig {
        p_reset: 1.0,
        routes: vec![Route::TokenEndpoint],
        ..FaultConfig::default()
    }))
    .await
    .unwrap();
    let client = client();
    let error = client
        .post(mock.token_url())
        .basic_auth(DEMO_CLIENT_ID, Some(DEMO_CLIENT_SECRET))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("grant_type=client_credentials")
        .send()
        .await
        .expect_err("dropped");
    assert!(error.status().is_none());
    let response = client
        .get(format!("{}/aliases/tok_x", mock.base_url()))
        .header("authorization", demo_basic())
        .send()
        .await
        .expect("API answered");
    assert_eq!(response.status(), 404);
    let stats = mock.stats();
    assert_eq!((stats.token_requests, stats.token_failures), (1, 1));
    mock.stop().await;
}
