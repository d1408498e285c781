//! The exact wire format of every request, pinned with wiremock: method, path, query,
//! headers (Basic on the token call, Bearer or Basic on the vault call) and JSON body.

use std::sync::Arc;

use serde_json::json;
use vault_core::{
    CardField, ConnectorVaultId, DeleteRequest, ExternalVault, InsertRequest, RetrieveRequest,
    Storage, TokenizationMode,
};
use vault_vgs::{ApiGeneration, Fingerprinting, VgsConnector};
use wiremock::matchers::{body_json, body_string, header, method, path, query_param};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::support::{CLIENT_ID, CLIENT_SECRET, VAULT, basic, card, token_body};

const TOKEN_PATH: &str = "/auth/realms/vgs/protocol/openid-connect/token";

async fn token_endpoint(server: &MockServer, expected: u64) {
    Mock::given(method("POST"))
        .and(path(TOKEN_PATH))
        .and(header(
            "authorization",
            basic(CLIENT_ID, CLIENT_SECRET).as_str(),
        ))
        .and(header("content-type", "application/x-www-form-urlencoded"))
        .and(body_string("grant_type=client_credentials"))
        .respond_with(ResponseTemplate::new(200).set_body_json(token_body("tok-abc", 300)))
        .expect(expected)
        .mount(server)
        .await;
}

fn v2(server: &MockServer) -> Arc<dyn ExternalVault> {
    Arc::new(v2_builder(server).build().expect("connector"))
}

fn v2_builder(server: &MockServer) -> vault_vgs::VgsConnectorBuilder {
    VgsConnector::builder()
        .credentials(CLIENT_ID, CLIENT_SECRET.to_owned().into())
        .vault_id(VAULT)
        .endpoint(server.uri())
}

fn created(aliases: &[(&str, &str, &str)]) -> serde_json::Value {
    json!({"data": aliases.iter().map(|(alias, format, storage)| json!({
        "aliases": [{"alias": alias, "format": format}],
        "classifiers": [],
        "created_at": "2026-11-24T00:00:00Z",
        "storage": storage,
    })).collect::<Vec<_>>()})
}

#[tokio::test]
async fn v2_insert_sends_basic_to_the_token_endpoint_and_bearer_with_each_field() {
    let server = MockServer::start().await;
    token_endpoint(&server, 1).await;
    Mock::given(method("POST"))
        .and(path(format!("/v2/{VAULT}/aliases")))
        .and(header("authorization", "Bearer tok-abc"))
        .and(header("content-type", "application/json"))
        .and(body_json(json!({"data":[
            {"value":"4111111111111111","classifiers":["vaultlink","card_number"],"format":"FPE_SIX_T_FOUR","storage":"PERSISTENT"},
            {"value":"04","classifiers":["vaultlink","card_exp_month"],"format":"UUID","storage":"PERSISTENT"},
            {"value":"2030","classifiers":["vaultlink","card_exp_year"],"format":"UUID","storage":"PERSISTENT"},
            {"value":"123","classifiers":["vaultlink","card_cvc"],"format":"UUID","storage":"VOLATILE"}
        ]})))
        .respond_with(ResponseTemplate::new(201).set_body_json(created(&[
            ("4111119876541111", "FPE_SIX_T_FOUR", "PERSISTENT"),
            ("tok_sandbox_month", "UUID", "PERSISTENT"),
            ("tok_sandbox_year", "UUID", "PERSISTENT"),
            ("tok_sandbox_cvc", "UUID", "VOLATILE"),
        ])))
        .expect(2)
        .mount(&server)
        .await;

    let vault = v2(&server);
    for _ in 0..2 {
        let stored = vault
            .insert(InsertRequest::card(card()))
            .await
            .expect("insert");
        let ConnectorVaultId::Multi(fields) = stored.connector_vault_id else {
            panic!("per-field insert returns Multi");
        };
        assert_eq!(
            fields[&CardField::CardNumber].alias.as_str(),
            "4111119876541111"
        );
        assert_eq!(
            fields[&CardField::CardCvc].alias.as_str(),
            "tok_sandbox_cvc"
        );
        assert_eq!(fields[&CardField::CardCvc].storage, Storage::Volatile);
    }
}

#[tokio::test]
async fn v2_retrieve_reveals_persistent_fields_in_one_call_and_the_cvc_from_volatile() {
    let server = MockServer::start().await;
    token_endpoint(&server, 1).await;
    Mock::given(method("GET"))
        .and(path(format!("/v2/{VAULT}/aliases")))
        .and(query_param("aliases", "4111119876541111,tok_sandbox_month,tok_sandbox_year"))
        .and(header("authorization", "Bearer tok-abc"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"data":{
            "4111119876541111": {"value":"4111111111111111","aliases":[{"alias":"4111119876541111","format":"FPE_SIX_T_FOUR"}],"storage":"PERSISTENT"},
            "tok_sandbox_month": {"value":"04","aliases":[{"value":"tok_sandbox_month","format":"UUID"}]},
            "tok_sandbox_year": {"value":"2030","aliases":[{"alias":"tok_sandbox_year","format":"UUID"}]}
        }})))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(format!("/v2/{VAULT}/aliases/tok_sandbox_cvc")))
        .and(query_param("storage", "VOLATILE"))
        .and(header("authorization", "Bearer tok-abc"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"data":[
            {"value":"123","aliases":[{"alias":"tok_sandbox_cvc","format":"UUID"}],"storage":"VOLATILE"}
        ]})))
        .expect(1)
        .mount(&server)
        .await;

    let id = crate::support::multi_id(
        "4111119876541111",
        "tok_sandbox_month",
        "tok_sandbox_year",
        Some("tok_sandbox_cvc"),
    );
    let back = v2(&server)
        .retrieve(RetrieveRequest::new(id))
        .await
        .expect("retrieve");
    assert_eq!(back.card(), Some(&card()));
}

#[tokio::test]
async fn v2_delete_removes_every_record_without_fingerprinting_and_sends_nothing_with_it() {
    let server = MockServer::start().await;
    token_endpoint(&server, 1).await;
    for alias in ["tok_sandbox_month", "tok_sandbox_year"] {
        Mock::given(method("DELETE"))
            .and(path(format!("/v2/{VAULT}/aliases/{alias}")))
            .respond_with(ResponseTemplate::new(204))
            .expect(1)
            .mount(&server)
            .await;
    }
    Mock::given(method("DELETE"))
        .and(path(format!("/v2/{VAULT}/aliases/4111119876541111")))
        .and(header("authorization", "Bearer tok-abc"))
        .respond_with(ResponseTemplate::new(204))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("DELETE"))
        .and(path(format!("/v2/{VAULT}/aliases/tok_sandbox_cvc")))
        .and(query_param("storage", "VOLATILE"))
        .respond_with(ResponseTemplate::new(404).set_body_json(json!({
            "errors":[{"status":404,"code":"not_found","detail":"alias not found"}],"trace_id":"t-1"
        })))
        .expect(1)
        .mount(&server)
        .await;

    let id = crate::support::multi_id(
        "4111119876541111",
        "tok_sandbox_month",
        "tok_sandbox_year",
        Some("tok_sandbox_cvc"),
    );
    let deleted = v2_builder(&server)
        .fingerprinting(Fingerprinting::Off)
        .build()
        .expect("connector")
        .delete(DeleteRequest::new(id.clone()))
        .await
        .expect("delete");
    let names =
        |v: Vec<&vault_core::Alias>| v.iter().map(|a| a.as_str().to_owned()).collect::<Vec<_>>();
    assert_eq!(
        names(deleted.removed()),
        ["4111119876541111", "tok_sandbox_month", "tok_sandbox_year"]
    );
    assert_eq!(names(deleted.already_gone()), ["tok_sandbox_cvc"]);
    assert!(deleted.kept().is_empty());
    // With fingerprinting on (the default) nothing is sent: every record may be shared
    // (the wiremock expectations above would fail on a second DELETE).
    let kept = v2(&server)
        .delete(DeleteRequest::new(id))
        .await
        .expect("delete");
    assert!(kept.removed().is_empty() && kept.already_gone().is_empty());
    assert_eq!(kept.kept().len(), 4);
}

#[tokio::test]
async fn v1_uses_basic_access_credentials_and_no_token_endpoint() {
    let server = MockServer::start().await;
    token_endpoint(&server, 0).await;
    Mock::given(method("POST"))
        .and(path("/aliases"))
        .and(header("authorization", basic("US1access", "access-pass").as_str()))
        .and(|request: &wiremock::Request| {
            // The card record carries a random per-card marker: compare the rest.
            let Ok(mut body) = serde_json::from_slice::<serde_json::Value>(&request.body) else {
                return false;
            };
            let record: serde_json::Value =
                serde_json::from_str(body["data"][0]["value"].as_str().unwrap_or("")).unwrap_or_default();
            let marker = record["vaultlink_record"].as_str().unwrap_or("");
            let marked = marker.len() == 32 && marker.bytes().all(|b| b.is_ascii_hexdigit());
            body["data"][0]["value"] = json!("card");
            marked
                && record
                    == json!({"vaultlink_record": marker, "card_number":"4111111111111111","card_exp_month":"04","card_exp_year":"2030"})
                && body
                    == json!({"data":[
                        {"value":"card","classifiers":["vaultlink","card"],"format":"UUID","storage":"PERSISTENT"},
                        {"value":"123","classifiers":["vaultlink","card_cvc"],"format":"UUID","storage":"VOLATILE"}
                    ]})
        })
        .respond_with(ResponseTemplate::new(201).set_body_json(created(&[
            ("tok_sandbox_card", "UUID", "PERSISTENT"),
            ("tok_sandbox_cvc", "UUID", "VOLATILE"),
        ])))
        .expect(1)
        .mount(&server)
        .await;

    let vault = VgsConnector::builder()
        .api(ApiGeneration::V1)
        .credentials("US1access", "access-pass".to_owned().into())
        .vault_id(VAULT)
        .endpoint(server.uri())
        .build()
        .expect("connector");
    let stored = vault
        .insert(InsertRequest::card(card()).with_mode(TokenizationMode::SingleId))
        .await
        .expect("insert");
    let ConnectorVaultId::Single { id, cvc, .. } = stored.connector_vault_id else {
        panic!("single-id insert returns Single");
    };
    assert_eq!(id.as_str(), "tok_sandbox_card");
    assert_eq!(
        cvc.map(|c| c.as_str().to_owned()).as_deref(),
        Some("tok_sandbox_cvc")
    );
}

#[tokio::test]
async fn redirects_are_not_followed_with_credentials() {
    let server = MockServer::start().await;
    token_endpoint(&server, 1).await;
    Mock::given(method("GET"))
        .and(path(format!("/v2/{VAULT}/aliases/tok_x")))
        .respond_with(ResponseTemplate::new(302).insert_header("location", "/elsewhere"))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(path("/elsewhere"))
        .respond_with(ResponseTemplate::new(200))
        .expect(0)
        .mount(&server)
        .await;
    let id = ConnectorVaultId::Single {
        id: vault_core::Alias::new("tok_x").expect("alias"),
        cvc: None,
        cvc_expires_at: None,
    };
    let err = v2(&server)
        .retrieve(RetrieveRequest::new(id))
        .await
        .expect_err("302 is not followed");
    assert_eq!(
        vault_core::ReportExt::kind(&err),
        vault_core::VaultError::UnexpectedResponse
    );
}

#[tokio::test]
async fn v1_retrieve_and_delete_of_a_single_id_use_the_spec_paths() {
    let server = MockServer::start().await;
    let auth = basic("US1access", "access-pass");
    Mock::given(method("GET"))
        .and(path("/aliases/tok_sandbox_card"))
        .and(header("authorization", auth.as_str()))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"data":[{
            "value":"{\"card_number\":\"4111111111111111\",\"card_exp_month\":\"04\",\"card_exp_year\":\"2030\"}",
            "aliases":[{"alias":"tok_sandbox_card","format":"UUID"}],"storage":"PERSISTENT"
        }]})))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/aliases/tok_sandbox_cvc"))
        .and(query_param("storage", "VOLATILE"))
        .and(header("authorization", auth.as_str()))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"data":[{
            "value":"123","aliases":[{"alias":"tok_sandbox_cvc","format":"UUID"}],"storage":"VOLATILE"
        }]})))
        .expect(1)
        .mount(&server)
        .await;
    for (alias, storage) in [
        ("tok_sandbox_card", None),
        ("tok_sandbox_cvc", Some("VOLATILE")),
    ] {
        let mock = Mock::given(method("DELETE"))
            .and(path(format!("/aliases/{alias}")))
            .and(header("authorization", auth.as_str()));
        let mock = match storage {
            Some(storage) => mock.and(query_param("storage", storage)),
            None => mock,
        };
        mock.respond_with(ResponseTemplate::new(204))
            .expect(1)
            .mount(&server)
            .await;
    }
    let vault = VgsConnector::builder()
        .api(ApiGeneration::V1)
        .credentials("US1access", "access-pass".to_owned().into())
        .vault_id(VAULT)
        .endpoint(server.uri())
        .fingerprinting(Fingerprinting::Off)
        .build()
        .expect("connector");
    let id = ConnectorVaultId::Single {
        id: vault_core::Alias::new("tok_sandbox_card").expect("alias"),
        cvc: Some(vault_core::Alias::new("tok_sandbox_cvc").expect("alias")),
        cvc_expires_at: None,
    };
    let back = vault
        .retrieve(RetrieveRequest::new(id.clone()))
        .await
        .expect("retrieve");
    assert_eq!(back.card(), Some(&card()));
    let deleted = vault.delete(DeleteRequest::new(id)).await.expect("delete");
    assert_eq!(deleted.removed().len(), 2);
}

/// A wall clock the test moves.
#[derive(Debug)]
struct Wall(std::sync::Mutex<std::time::SystemTime>);

impl vault_core::WallClock for Wall {
    fn now(&self) -> std::time::SystemTime {
        *self.0.lock().unwrap()
    }
}

#[tokio::test]
async fn a_cvc_whose_creation_time_is_unknown_has_an_upper_bound_and_is_expired_past_it() {
    // With fingerprinting, a CVC may share an earlier card's record; VGS may fill
    // `created_at` of volatile records with a default, so only `sent + 1 h` is known.
    let server = MockServer::start().await;
    token_endpoint(&server, 1).await;
    let mut answer = created(&[
        ("4111119876541111", "FPE_SIX_T_FOUR", "PERSISTENT"),
        ("tok_sandbox_month", "UUID", "PERSISTENT"),
        ("tok_sandbox_year", "UUID", "PERSISTENT"),
        ("tok_sandbox_cvc", "UUID", "VOLATILE"),
    ]);
    answer["data"][3]["created_at"] = json!("1970-01-01T00:00:00Z");
    Mock::given(method("POST"))
        .and(path(format!("/v2/{VAULT}/aliases")))
        .respond_with(ResponseTemplate::new(201).set_body_json(answer))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(format!("/v2/{VAULT}/aliases")))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"data": {
            "4111119876541111": {"value": "4111111111111111"},
            "tok_sandbox_month": {"value": "04"},
            "tok_sandbox_year": {"value": "2030"}
        }})))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(format!("/v2/{VAULT}/aliases/tok_sandbox_cvc")))
        .respond_with(ResponseTemplate::new(404).set_body_json(json!({
            "errors":[{"status":404,"code":"not-found","detail":"alias not found"}],"trace_id":"t"
        })))
        .mount(&server)
        .await;
    let start = std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_800_000_000);
    let clock = Arc::new(Wall(std::sync::Mutex::new(start)));
    let vault = v2_builder(&server)
        .wall_clock(clock.clone())
        .build()
        .expect("connector");
    let stored = vault
        .insert(InsertRequest::card(card()))
        .await
        .expect("insert");
    let ConnectorVaultId::Multi(fields) = &stored.connector_vault_id else {
        panic!("per field");
    };
    let cvc = &fields[&vault_core::CardField::CardCvc];
    assert_eq!(
        cvc.expires_at,
        Some(start + std::time::Duration::from_secs(3600))
    );
    assert!(!cvc.expiry_exact, "the 1970 created_at is not believed");
    let reason = |vault: &VgsConnector| {
        let id = stored.connector_vault_id.clone();
        let vault = vault.clone();
        async move {
            let back = vault
                .retrieve(RetrieveRequest::new(id))
                .await
                .expect("retrieve");
            back.missing[0].reason
        }
    };
    assert_eq!(
        reason(&vault).await,
        vault_core::MissingReason::ExpiredOrGone
    );
    *clock.0.lock().unwrap() = start + std::time::Duration::from_secs(3600);
    assert_eq!(reason(&vault).await, vault_core::MissingReason::Expired);
}
