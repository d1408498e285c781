//! CMP's exact wire format, pinned with wiremock: the token call with form-field client
//! auth, then method, path, `application/vnd.api+json`, Bearer and the JSON:API body of
//! each flow; the 303 duplicate answer; CMP's retry rule counted by wiremock.

use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use vault_core::{
    Alias, ConnectorVaultId, CvcStatus, DeleteRequest, ExternalVault, InsertRequest,
    PaymentMethodData, ReportExt, RetrieveRequest, VaultError,
};
use vault_vgs::{CmpConnector, RetryPolicy};
use wiremock::matchers::{body_json, body_string, header, header_exists, method, path};
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

use crate::support::{CLIENT_ID, CLIENT_SECRET, VAULT, card, token_body};

const TOKEN_PATH: &str = "/auth/realms/vgs/protocol/openid-connect/token";
const JSON_API: &str = "application/vnd.api+json";

/// The token endpoint, called with the client id and secret as form fields and no
/// Authorization header (CMP's documented client authentication).
async fn token_endpoint(server: &MockServer, expected: u64) {
    Mock::given(method("POST"))
        .and(path(TOKEN_PATH))
        .and(header("content-type", "application/x-www-form-urlencoded"))
        .and(body_string(format!(
            "grant_type=client_credentials&client_id={CLIENT_ID}&client_secret={CLIENT_SECRET}"
        )))
        .and(|request: &Request| !request.headers.contains_key("authorization"))
        .respond_with(ResponseTemplate::new(200).set_body_json(token_body("tok-cmp", 1200)))
        .expect(expected)
        .mount(server)
        .await;
}

fn cmp(server: &MockServer) -> Arc<dyn ExternalVault> {
    Arc::new(cmp_builder(server).build().expect("connector"))
}

fn cmp_builder(server: &MockServer) -> vault_vgs::CmpConnectorBuilder {
    CmpConnector::builder()
        .credentials(CLIENT_ID, CLIENT_SECRET.to_owned().into())
        .vault_id(VAULT)
        .endpoint(server.uri())
        .retry(RetryPolicy {
            base_backoff: Duration::from_millis(1),
            max_backoff: Duration::from_millis(5),
            ..RetryPolicy::default()
        })
}

fn card_document(id: &str, pci: bool) -> serde_json::Value {
    let mut attributes = json!({
        "pan_alias": "tok_sandbox_pan", "cvc_alias": "tok_sandbox_cvc", "cvc_status": "active",
        "bin": "411111", "first8": "41111111", "last4": "1111", "exp_month": 4, "exp_year": 30,
        "fingerprint": "FPRabc", "created_at": "2026-01-01T00:00:00Z"
    });
    if pci {
        attributes["pan"] = json!("4111111111111111");
        attributes["cvc"] = json!("123");
    }
    json!({"data": {"id": id, "type": "cards", "attributes": attributes}})
}

fn card_id(id: &str) -> ConnectorVaultId {
    ConnectorVaultId::Single {
        id: Alias::new(id).expect("id"),
        cvc: None,
        cvc_expires_at: None,
    }
}

#[tokio::test]
async fn insert_posts_a_json_api_card_with_bearer_and_returns_the_card_object() {
    let server = MockServer::start().await;
    token_endpoint(&server, 1).await;
    Mock::given(method("POST"))
        .and(path("/cards"))
        .and(header("authorization", "Bearer tok-cmp"))
        .and(header("content-type", JSON_API))
        .and(body_json(json!({"data":{"attributes":{
            "pan":"4111111111111111","cvc":"123","exp_month":4,"exp_year":30
        }}})))
        .respond_with(
            ResponseTemplate::new(201)
                .set_body_raw(card_document("CRDnew", false).to_string(), JSON_API),
        )
        .expect(1)
        .mount(&server)
        .await;

    let stored = cmp(&server)
        .insert(InsertRequest::card(card()))
        .await
        .expect("insert");
    assert_eq!(stored.connector_vault_id, card_id("CRDnew"));
    assert!(!stored.already_stored);
    assert_eq!(stored.fingerprint.0, "FPRabc");
    let aliases = stored.card_aliases.expect("card object");
    assert_eq!(aliases.pan_alias.as_str(), "tok_sandbox_pan");
    assert_eq!(
        aliases.cvc_alias.as_ref().map(Alias::as_str),
        Some("tok_sandbox_cvc")
    );
    assert_eq!(
        (aliases.bin.as_deref(), aliases.last4.as_str()),
        (Some("411111"), "1111")
    );
}

#[tokio::test]
async fn a_303_is_read_not_followed_and_returns_the_existing_card_as_already_stored() {
    let server = MockServer::start().await;
    token_endpoint(&server, 1).await;
    Mock::given(method("POST"))
        .and(path("/cards"))
        .respond_with(ResponseTemplate::new(303).insert_header("location", "/cards/CRDold"))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/cards/CRDold"))
        .respond_with(ResponseTemplate::new(200))
        .expect(0)
        .mount(&server)
        .await;

    let vault = cmp(&server);
    let stored = vault
        .insert(InsertRequest::card(card()))
        .await
        .expect("303");
    assert!(stored.already_stored);
    assert_eq!(stored.connector_vault_id, card_id("CRDold"));
    assert!(
        stored.card_aliases.is_none(),
        "a bare 303 names only the card"
    );

    // With the existing card in the body, its aliases come back too.
    server.verify().await;
    server.reset().await;
    token_endpoint(&server, 0).await;
    Mock::given(method("POST"))
        .and(path("/cards"))
        .respond_with(
            ResponseTemplate::new(303)
                .insert_header("location", "/cards/CRDold")
                .set_body_raw(card_document("CRDold", false).to_string(), JSON_API),
        )
        .expect(1)
        .mount(&server)
        .await;
    let stored = vault
        .insert(InsertRequest::card(card()))
        .await
        .expect("303");
    assert!(stored.already_stored);
    assert_eq!(
        stored.card_aliases.map(|a| a.last4),
        Some("1111".to_owned())
    );
}

#[tokio::test]
async fn retrieve_gets_the_card_by_id_in_either_view() {
    let server = MockServer::start().await;
    token_endpoint(&server, 1).await;
    for (id, pci) in [("CRDpci", true), ("CRDaliases", false)] {
        Mock::given(method("GET"))
            .and(path(format!("/cards/{id}")))
            .and(header("authorization", "Bearer tok-cmp"))
            .and(|request: &Request| request.body.is_empty())
            .respond_with(
                ResponseTemplate::new(200)
                    .set_body_raw(card_document(id, pci).to_string(), JSON_API),
            )
            .expect(1)
            .mount(&server)
            .await;
    }
    let vault = cmp(&server);
    let pci = vault
        .retrieve(RetrieveRequest::new(card_id("CRDpci")))
        .await
        .expect("pci");
    assert_eq!(pci.card(), Some(&card()));
    let aliases = vault
        .retrieve(RetrieveRequest::new(card_id("CRDaliases")))
        .await
        .expect("non-pci");
    let PaymentMethodData::CardAliases(aliases) = &aliases.payment_method else {
        panic!("the non-PCI view is typed aliases, not a card: {aliases:?}");
    };
    assert_eq!(aliases.cvc_status, Some(CvcStatus::Active));
    assert_eq!(aliases.exp_year.get(), 2030);
}

#[tokio::test]
async fn without_the_duplicate_check_delete_sends_delete_by_id_and_a_404_counts_as_already_gone() {
    let server = MockServer::start().await;
    token_endpoint(&server, 1).await;
    Mock::given(method("DELETE"))
        .and(path("/cards/CRDx"))
        .and(header("authorization", "Bearer tok-cmp"))
        .respond_with(ResponseTemplate::new(204))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("DELETE"))
        .and(path("/cards/CRDgone"))
        .respond_with(ResponseTemplate::new(404).set_body_raw(
            r#"{"errors":[{"status":"404","code":"not-found","detail":"card not found"}]}"#,
            JSON_API,
        ))
        .expect(1)
        .mount(&server)
        .await;
    let vault = cmp_builder(&server)
        .duplicate_card_check(false)
        .build()
        .expect("connector");
    let deleted = vault
        .delete(DeleteRequest::new(card_id("CRDx")))
        .await
        .expect("204");
    assert_eq!(deleted.removed(), [&Alias::new("CRDx").expect("id")]);
    let gone = vault
        .delete(DeleteRequest::new(card_id("CRDgone")))
        .await
        .expect("404");
    assert_eq!(gone.already_gone(), [&Alias::new("CRDgone").expect("id")]);
}

#[tokio::test]
async fn cmps_500_is_never_retried_and_its_gateway_errors_are() {
    let server = MockServer::start().await;
    token_endpoint(&server, 1).await;
    Mock::given(method("GET"))
        .and(path("/cards/CRD500"))
        .respond_with(ResponseTemplate::new(500).set_body_raw(
            r#"{"errors":[{"status":"500","code":"server-error","detail":"internal error"}]}"#,
            JSON_API,
        ))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/cards/CRD503"))
        .respond_with(ResponseTemplate::new(503).set_body_raw("<html>503</html>", "text/html"))
        .expect(3)
        .mount(&server)
        .await;
    let vault = cmp(&server);
    let err = vault
        .retrieve(RetrieveRequest::new(card_id("CRD500")))
        .await
        .expect_err("500");
    assert_eq!(err.kind(), VaultError::ServerError);
    assert!(!err.is_retryable());
    assert_eq!(err.attempt(), Some(1));
    let err = vault
        .retrieve(RetrieveRequest::new(card_id("CRD503")))
        .await
        .expect_err("503 x3");
    assert_eq!(err.kind(), VaultError::Upstream);
    assert_eq!(err.attempt(), Some(3));
    assert!(!err.summary().contains("<html>"), "{}", err.summary());
}

#[tokio::test]
async fn a_422_names_cmps_code_and_the_field_and_is_not_retried() {
    let server = MockServer::start().await;
    token_endpoint(&server, 1).await;
    Mock::given(method("POST"))
        .and(path("/cards"))
        .and(header_exists("authorization"))
        .respond_with(ResponseTemplate::new(422).set_body_raw(
            r#"{"errors":[{"status":"422","code":"validation-failed","detail":"exp_month must be an integer from 1 to 12","source":{"pointer":"/data/attributes/exp_month"}}]}"#,
            JSON_API,
        ))
        .expect(1)
        .mount(&server)
        .await;
    let err = cmp(&server)
        .insert(InsertRequest::card(card()))
        .await
        .expect_err("422");
    assert_eq!(err.kind(), VaultError::InvalidRequest);
    assert_eq!(err.http_status(), Some(422));
    assert!(
        err.summary()
            .contains("code validation-failed, field exp_month"),
        "{}",
        err.summary()
    );
}

#[tokio::test]
async fn a_415_and_a_403_are_typed_and_the_403_names_the_scope() {
    let server = MockServer::start().await;
    token_endpoint(&server, 1).await;
    Mock::given(method("POST"))
        .and(path("/cards"))
        .respond_with(ResponseTemplate::new(415).set_body_raw(
            r#"{"errors":[{"status":"415","code":"unsupported-media-type","detail":"Content-Type must be application/vnd.api+json"}]}"#,
            JSON_API,
        ))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/cards/CRDx"))
        .respond_with(ResponseTemplate::new(403).set_body_raw(
            r#"{"errors":[{"status":"403","code":"forbidden","detail":"Forbidden"}]}"#,
            JSON_API,
        ))
        .expect(1)
        .mount(&server)
        .await;
    let vault = cmp(&server);
    let err = vault
        .insert(InsertRequest::card(card()))
        .await
        .expect_err("415");
    assert_eq!(
        (err.kind(), err.http_status()),
        (VaultError::InvalidRequest, Some(415))
    );
    assert!(
        err.summary().contains("unsupported-media-type"),
        "{}",
        err.summary()
    );
    let err = vault
        .retrieve(RetrieveRequest::new(card_id("CRDx")))
        .await
        .expect_err("403");
    assert_eq!(err.kind(), VaultError::Forbidden);
    assert!(
        err.summary()
            .contains("reading a card needs the scope cards:read"),
        "{}",
        err.summary()
    );
}
