//! Vault API v2: Bearer auth, vault by Host or `/v2/{vault}` prefix, scopes, v2 error
//! bodies with `trace_id`, and the same alias operations as v1.

use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use serde_json::json;
use vgs_mock::DEMO_VAULT_ID;

use crate::support::{Mock, item};

fn create_body(value: &str) -> serde_json::Value {
    json!({"data": [item(value, "UUID", "PERSISTENT")]})
}

#[tokio::test]
async fn the_vault_is_named_by_the_host_header() {
    let mock = Mock::demo();
    let token = mock.token(None).await;
    let request = Request::builder()
        .method(Method::POST)
        .uri("/aliases")
        .header(
            header::HOST,
            format!("{DEMO_VAULT_ID}.sandbox.vault-api.verygoodvault.com"),
        )
        .header(header::AUTHORIZATION, format!("Bearer {token}"))
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(create_body("by-host").to_string()))
        .unwrap();
    let reply = mock.send(request).await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.text());
    let alias = reply.aliases().remove(0);
    assert_eq!(
        mock.state.record(DEMO_VAULT_ID, &alias).unwrap().value,
        "by-host"
    );
}

#[tokio::test]
async fn every_operation_works_under_the_path_prefix() {
    let mock = Mock::demo();
    let token = mock.token(None).await;
    let v = DEMO_VAULT_ID;
    let reply = mock
        .v2(v, &token, Method::POST, "/aliases", Some(create_body("x")))
        .await;
    assert_eq!(reply.status, StatusCode::CREATED);
    let alias = reply.aliases().remove(0);
    let one = format!("/aliases/{alias}");
    let reply = mock.v2(v, &token, Method::GET, &one, None).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.json()["data"][0]["value"], "x");
    let reply = mock
        .v2(
            v,
            &token,
            Method::GET,
            &format!("/aliases?aliases={alias}"),
            None,
        )
        .await;
    assert_eq!(reply.json()["data"][&alias]["value"], "x");
    let classify = json!({"data": {"classifiers": ["pii"]}});
    let reply = mock.v2(v, &token, Method::PUT, &one, Some(classify)).await;
    assert_eq!(reply.status, StatusCode::NO_CONTENT);
    let reply = mock.v2(v, &token, Method::DELETE, &one, None).await;
    assert_eq!(reply.status, StatusCode::NO_CONTENT);
    let second = mock
        .v2(v, &token, Method::POST, "/aliases", Some(create_body("y")))
        .await
        .aliases();
    let reply = mock
        .v2(
            v,
            &token,
            Method::POST,
            "/aliases/delete",
            Some(json!({"data": second})),
        )
        .await;
    assert_eq!(reply.status, StatusCode::NO_CONTENT);
    assert_eq!(mock.state.record_count(v), Some(0));
}

#[tokio::test]
async fn each_operation_needs_its_scope() {
    let mock = Mock::demo();
    let v = DEMO_VAULT_ID;
    let full = mock.token(None).await;
    let alias = mock
        .v2(v, &full, Method::POST, "/aliases", Some(create_body("s")))
        .await
        .aliases()
        .remove(0);
    let one = format!("/aliases/{alias}");
    let read_only = mock.token(Some("aliases:read")).await;
    let write_only = mock.token(Some("aliases:write")).await;
    let delete_only = mock.token(Some("aliases:delete")).await;

    let cases = [
        (
            &read_only,
            Method::POST,
            "/aliases".to_owned(),
            Some(create_body("t")),
            "aliases:write",
        ),
        (
            &read_only,
            Method::PUT,
            one.clone(),
            Some(json!({"data": {"classifiers": []}})),
            "aliases:write",
        ),
        (&write_only, Method::GET, one.clone(), None, "aliases:read"),
        (
            &write_only,
            Method::GET,
            format!("/aliases?aliases={alias}"),
            None,
            "aliases:read",
        ),
        (
            &read_only,
            Method::DELETE,
            one.clone(),
            None,
            "aliases:delete",
        ),
        (
            &write_only,
            Method::POST,
            "/aliases/delete".to_owned(),
            Some(json!({"data": [alias]})),
            "aliases:delete",
        ),
        (&delete_only, Method::GET, one.clone(), None, "aliases:read"),
    ];
    for (token, method, uri, body, scope) in cases {
        let reply = mock.v2(v, token, method.clone(), &uri, body).await;
        assert_eq!(reply.status, StatusCode::FORBIDDEN, "{method} {uri}");
        let json = reply.json();
        assert_eq!(json["errors"][0]["code"], "forbidden");
        assert_eq!(
            json["errors"][0]["detail"],
            format!("the access token lacks the scope {scope}")
        );
        assert!(reply.header("x-ratelimit-remaining").is_some());
    }
    // The allowed ones pass.
    let reply = mock.v2(v, &read_only, Method::GET, &one, None).await;
    assert_eq!(reply.status, StatusCode::OK);
    let reply = mock.v2(v, &delete_only, Method::DELETE, &one, None).await;
    assert_eq!(reply.status, StatusCode::NO_CONTENT);
}

#[tokio::test]
async fn a_missing_or_unknown_token_is_401() {
    let mock = Mock::demo();
    let reply = mock
        .call(
            Method::GET,
            &format!("/v2/{DEMO_VAULT_ID}/aliases/tok_x"),
            None,
            None,
        )
        .await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    assert_eq!(reply.detail(), "a Bearer access token is required");
    let reply = mock
        .v2(
            DEMO_VAULT_ID,
            "not-a-token",
            Method::GET,
            "/aliases/tok_x",
            None,
        )
        .await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    assert_eq!(reply.detail(), "the access token is not valid");
    // v1 access credentials do not open v2.
    let reply = mock
        .call(
            Method::GET,
            &format!("/v2/{DEMO_VAULT_ID}/aliases/tok_x"),
            Some(&crate::support::demo_basic()),
            None,
        )
        .await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn an_unknown_or_unassigned_vault_is_401_by_path_and_by_host() {
    // VGS: "Absence of an assigned vault to the client credentials, even with the vault
    // scopes assigned to the credential will result in a 401 - Unauthorized error."
    let mock = Mock::demo();
    let token = mock.token(None).await;
    let reply = mock
        .v2("tntunknown99", &token, Method::GET, "/aliases/tok_x", None)
        .await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    assert_eq!(reply.json()["errors"][0]["code"], "unauthorized");
    assert!(
        reply
            .detail()
            .contains("not assigned to vault tntunknown99")
    );
    assert!(reply.header("www-authenticate").is_some());

    let request = Request::builder()
        .method(Method::GET)
        .uri("/aliases/tok_x")
        .header(
            header::HOST,
            "tntunknown99.sandbox.vault-api.verygoodvault.com",
        )
        .header(header::AUTHORIZATION, format!("Bearer {token}"))
        .body(Body::empty())
        .unwrap();
    let reply = mock.send(request).await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);

    // An existing vault the service account is not assigned to: 401 as well; the
    // vault it is assigned to works with the same token.
    assert!(
        mock.state
            .assign_client(vgs_mock::DEMO_CLIENT_ID, &[crate::support::OTHER_VAULT])
    );
    reaches_only_the_other_vault(&mock, &token).await;
    assert!(!mock.state.assign_client("no-such-client", &[]));
}

#[tokio::test]
async fn a_client_configured_for_some_vaults_reaches_only_those() {
    let mut config = crate::support::two_vaults();
    config.clients[0] = config.clients[0]
        .clone()
        .with_vaults(&[crate::support::OTHER_VAULT]);
    let mock = Mock::new(config);
    let token = mock.token(None).await;
    reaches_only_the_other_vault(&mock, &token).await;
}

/// The token is refused (401) for the demo vault and reaches the other one (where the
/// alias is unknown: 404).
async fn reaches_only_the_other_vault(mock: &Mock, token: &str) {
    let denied = mock
        .v2(DEMO_VAULT_ID, token, Method::GET, "/aliases/tok_x", None)
        .await;
    assert_eq!(denied.status, StatusCode::UNAUTHORIZED);
    let allowed = mock
        .v2(
            crate::support::OTHER_VAULT,
            token,
            Method::GET,
            "/aliases/tok_x",
            None,
        )
        .await;
    assert_eq!(
        allowed.status,
        StatusCode::NOT_FOUND,
        "alias unknown, vault fine"
    );
}

#[tokio::test]
async fn v2_errors_carry_status_code_detail_and_a_trace_id() {
    let mock = Mock::demo();
    let token = mock.token(None).await;
    let reply = mock
        .v2(
            DEMO_VAULT_ID,
            &token,
            Method::GET,
            "/aliases/tok_sandbox_missing",
            None,
        )
        .await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND);
    let json = reply.json();
    assert_eq!(json["errors"][0]["status"], 404);
    assert_eq!(json["errors"][0]["code"], "not-found");
    let trace_id = json["trace_id"].as_str().unwrap();
    assert_eq!(trace_id.len(), 32);
    assert!(json["errors"][0].get("title").is_none());

    let again = mock
        .v2(
            DEMO_VAULT_ID,
            &token,
            Method::GET,
            "/aliases/tok_sandbox_missing",
            None,
        )
        .await;
    assert_ne!(
        again.json()["trace_id"],
        json["trace_id"],
        "a trace id per request"
    );

    let reply = mock
        .v2(
            DEMO_VAULT_ID,
            &token,
            Method::POST,
            "/aliases",
            Some(json!({"data": (0..21).map(|i| item(&i.to_string(), "UUID", "PERSISTENT")).collect::<Vec<_>>()})),
        )
        .await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert_eq!(reply.json()["errors"][0]["code"], "bad-request");
    assert_eq!(reply.detail(), "Too many values (limit: 20)");
}

#[tokio::test]
async fn v1_and_v2_see_the_same_vault() {
    let mock = Mock::demo();
    let token = mock.token(None).await;
    let alias = mock.create_one("shared").await;
    let reply = mock
        .v2(
            DEMO_VAULT_ID,
            &token,
            Method::GET,
            &format!("/aliases/{alias}"),
            None,
        )
        .await;
    assert_eq!(reply.json()["data"][0]["value"], "shared");
}
