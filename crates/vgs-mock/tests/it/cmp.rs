//! CMP routes against REFERENCE.md's "CMP" section: JSON:API bodies, 415, scopes and the
//! PCI view, the per-tenant duplicate check (303), the CVC window on the manual clock,
//! 422s with code and pointer, faults and stats. Every answer is checked against the
//! mock's description (`openapi.yaml`).

use std::time::Duration;

use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use serde_json::{Value, json};
use vgs_mock::{
    DEMO_CLIENT_ID, DEMO_CLIENT_SECRET, DEMO_CMP_CLIENT_ID, DEMO_CMP_CLIENT_SECRET, DEMO_VAULT_ID,
    FailWith, MockConfig, Route,
};

use crate::support::{Mock, OTHER_VAULT, Reply, basic, two_vaults};

const MEDIA_TYPE: &str = "application/vnd.api+json";
const PAN: &str = "4111111111111111";
const NON_PCI_ID: &str = "non-pci-client";
const NON_PCI_SECRET: &str = "non-pci-secret";
const OTHER_CMP_ID: &str = "other-cmp-client";
const OTHER_CMP_SECRET: &str = "other-cmp-secret";

/// The demo tenant with a PCI and a non-PCI CMP client, a second tenant with its own.
fn config() -> MockConfig {
    two_vaults()
        .with_cmp_client(
            NON_PCI_ID,
            NON_PCI_SECRET,
            &["cards:write", "cards:read"],
            DEMO_VAULT_ID,
        )
        .with_cmp_client(
            OTHER_CMP_ID,
            OTHER_CMP_SECRET,
            &vgs_mock::CARD_SCOPES,
            OTHER_VAULT,
        )
}

/// A CMP token: client id and secret as form fields (CMP's documented client auth).
async fn cmp_token(mock: &Mock, id: &str, secret: &str, scope: Option<&str>) -> String {
    let mut form = format!("grant_type=client_credentials&client_id={id}&client_secret={secret}");
    if let Some(scope) = scope {
        form.push_str(&format!("&scope={}", scope.replace(' ', "+")));
    }
    let reply = mock.token_request(None, &form).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    reply.json()["access_token"].as_str().unwrap().to_owned()
}

async fn pci(mock: &Mock) -> String {
    cmp_token(mock, DEMO_CMP_CLIENT_ID, DEMO_CMP_CLIENT_SECRET, None).await
}

/// One CMP call; the answer is checked against the description and [`check_cmp_shape`].
async fn cmp(
    mock: &Mock,
    method: Method,
    uri: &str,
    token: Option<&str>,
    body: Option<(&str, String)>,
) -> Reply {
    let mut builder = Request::builder().method(method.clone()).uri(uri);
    if let Some(token) = token {
        builder = builder.header(header::AUTHORIZATION, format!("Bearer {token}"));
    }
    let body = match body {
        Some((content_type, text)) => {
            builder = builder.header(header::CONTENT_TYPE, content_type);
            Body::from(text)
        }
        None => Body::empty(),
    };
    let reply = mock.send(builder.body(body).unwrap()).await;
    check_cmp_shape(&reply);
    reply
}

fn card_body(pan: &str, cvc: Option<&str>) -> String {
    let mut attributes = json!({"pan": pan, "exp_month": 4, "exp_year": 28});
    if let Some(cvc) = cvc {
        attributes["cvc"] = Value::from(cvc);
    }
    json!({"data": {"attributes": attributes}}).to_string()
}

async fn create(mock: &Mock, token: &str, body: String) -> Reply {
    cmp(
        mock,
        Method::POST,
        "/cards",
        Some(token),
        Some((MEDIA_TYPE, body)),
    )
    .await
}

async fn get(mock: &Mock, token: &str, id: &str) -> Reply {
    cmp(
        mock,
        Method::GET,
        &format!("/cards/{id}"),
        Some(token),
        None,
    )
    .await
}

fn id_of(reply: &Reply) -> String {
    reply.json()["data"]["id"].as_str().unwrap().to_owned()
}

fn attributes(reply: &Reply) -> Value {
    reply.json()["data"]["attributes"].clone()
}

/// What the description's schemas cannot say about CMP answers (the harness already
/// checked each against `openapi.yaml`): card ids are `CRD…`, a CVC alias comes with
/// its status, a 303 points at the card it carries, and an error's `status` string is
/// the answer's status.
fn check_cmp_shape(reply: &Reply) {
    let status = reply.status.as_u16();
    match status {
        200 | 201 | 303 => {
            let doc = reply.json();
            let data = &doc["data"];
            let id = data["id"].as_str().unwrap();
            assert!(id.starts_with("CRD"), "{doc}");
            let attributes = &data["attributes"];
            assert_eq!(
                attributes.get("cvc_status").is_some(),
                attributes.get("cvc_alias").is_some(),
                "{doc}"
            );
            if status == 303 {
                assert_eq!(
                    reply.header("location"),
                    Some(format!("/cards/{id}").as_str())
                );
            }
        }
        204 | 502..=504 => {}
        _ => {
            let doc = reply.json();
            let errors = doc["errors"].as_array().expect("errors");
            assert_eq!(errors.len(), 1, "{doc}");
            assert_eq!(errors[0]["status"], status.to_string(), "{doc}");
        }
    }
}

fn error(reply: &Reply) -> (String, String, Option<String>) {
    let doc = reply.json();
    let error = &doc["errors"][0];
    (
        error["code"].as_str().unwrap().to_owned(),
        error["detail"].as_str().unwrap().to_owned(),
        error["source"]["pointer"].as_str().map(str::to_owned),
    )
}

#[tokio::test]
async fn create_answers_201_with_the_card_object_and_pci_fields_for_a_pci_client() {
    let mock = Mock::new(config());
    let token = pci(&mock).await;
    let reply = create(&mock, &token, card_body(PAN, Some("123"))).await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.text());
    let a = attributes(&reply);
    assert!(a["pan_alias"].as_str().unwrap().starts_with("tok_sandbox_"));
    assert!(a["cvc_alias"].as_str().unwrap().starts_with("tok_sandbox_"));
    assert_eq!(a["cvc_status"], "active");
    assert_eq!(
        (a["bin"].as_str(), a["first8"].as_str()),
        (Some("411111"), Some("41111111"))
    );
    assert_eq!(a["last4"], "1111");
    assert_eq!(
        (a["exp_month"].as_u64(), a["exp_year"].as_u64()),
        (Some(4), Some(28))
    );
    assert_eq!(
        (a["pan"].as_str(), a["cvc"].as_str()),
        (Some(PAN), Some("123"))
    );
    assert_eq!(mock.state.card_count(DEMO_VAULT_ID), Some(1));
    assert_eq!(mock.state.stats().vault(DEMO_VAULT_ID).cards_stored, 1);
}

#[tokio::test]
async fn the_pci_view_needs_cards_read_pci_and_the_non_pci_view_has_aliases_only() {
    let mock = Mock::new(config());
    let non_pci = cmp_token(&mock, NON_PCI_ID, NON_PCI_SECRET, None).await;
    let created = create(&mock, &non_pci, card_body(PAN, Some("123"))).await;
    assert_eq!(created.status, StatusCode::CREATED);
    assert!(attributes(&created).get("pan").is_none());
    let id = id_of(&created);

    let view = get(&mock, &non_pci, &id).await;
    assert_eq!(view.status, StatusCode::OK);
    let a = attributes(&view);
    assert!(a.get("pan").is_none() && a.get("cvc").is_none(), "{a}");
    assert_eq!(a["cvc_status"], "active");
    assert!(!view.text().contains(PAN) && !view.text().contains("\"123\""));

    let view = get(&mock, &pci(&mock).await, &id).await;
    assert_eq!(
        (
            attributes(&view)["pan"].as_str(),
            attributes(&view)["cvc"].as_str()
        ),
        (Some(PAN), Some("123"))
    );
}

#[tokio::test]
async fn a_known_pan_answers_303_to_the_existing_card_while_the_tenant_checks_duplicates() {
    let mock = Mock::new(config());
    let token = pci(&mock).await;
    let first = id_of(&create(&mock, &token, card_body(PAN, Some("123"))).await);
    let again = create(&mock, &token, card_body(PAN, Some("999"))).await;
    assert_eq!(again.status, StatusCode::SEE_OTHER);
    assert_eq!(
        again.header("location"),
        Some(format!("/cards/{first}").as_str())
    );
    assert_eq!(id_of(&again), first);
    assert_eq!(attributes(&again)["cvc"], "123", "a 303 changes nothing");
    assert_eq!(mock.state.card_count(DEMO_VAULT_ID), Some(1));

    // Another tenant has its own cards.
    let other = cmp_token(&mock, OTHER_CMP_ID, OTHER_CMP_SECRET, None).await;
    let theirs = create(&mock, &other, card_body(PAN, None)).await;
    assert_eq!(theirs.status, StatusCode::CREATED);
    assert_eq!(
        get(&mock, &other, &first).await.status,
        StatusCode::NOT_FOUND
    );

    // Switched off: the same PAN makes a second card, with the same fingerprint.
    assert!(mock.state.set_duplicate_card_check(DEMO_VAULT_ID, false));
    let second = create(&mock, &token, card_body(PAN, None)).await;
    assert_eq!(second.status, StatusCode::CREATED);
    assert_ne!(id_of(&second), first);
    let first_view = get(&mock, &token, &first).await;
    assert_eq!(
        attributes(&second)["fingerprint"],
        attributes(&first_view)["fingerprint"]
    );
    assert_eq!(mock.state.card_count(DEMO_VAULT_ID), Some(2));

    // Configured off from the start.
    let mut config = config();
    config.vaults[0] = vgs_mock::VaultConfig::new(DEMO_VAULT_ID).with_duplicate_card_check(false);
    let mock = Mock::new(config);
    let token = pci(&mock).await;
    for _ in 0..2 {
        assert_eq!(
            create(&mock, &token, card_body(PAN, None)).await.status,
            StatusCode::CREATED
        );
    }
}

#[tokio::test]
async fn the_cvc_is_held_for_its_window_then_gone_with_status_expired() {
    let mock = Mock::new(
        config()
            .with_cvc_window(Duration::from_secs(600))
            .with_token_lifetime(Duration::from_secs(3600)),
    );
    let token = pci(&mock).await;
    let id = id_of(&create(&mock, &token, card_body(PAN, Some("123"))).await);
    mock.clock().advance(Duration::from_secs(599));
    let a = attributes(&get(&mock, &token, &id).await);
    assert_eq!(
        (a["cvc"].as_str(), a["cvc_status"].as_str()),
        (Some("123"), Some("active"))
    );
    mock.clock().advance(Duration::from_secs(1));
    let a = attributes(&get(&mock, &token, &id).await);
    assert!(a.get("cvc").is_none(), "{a}");
    assert_eq!(a["cvc_status"], "expired");
    assert!(a["cvc_alias"].is_string());
    assert_eq!(a["pan"], PAN, "the card itself stays");
    // The default window is one hour.
    assert_eq!(vgs_mock::DEFAULT_CVC_WINDOW, Duration::from_secs(3600));
}

#[tokio::test]
async fn delete_answers_204_then_the_card_is_404() {
    let mock = Mock::new(config());
    let token = pci(&mock).await;
    let id = id_of(&create(&mock, &token, card_body(PAN, None)).await);
    let uri = format!("/cards/{id}");
    let deleted = cmp(&mock, Method::DELETE, &uri, Some(&token), None).await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT);
    let gone = get(&mock, &token, &id).await;
    assert_eq!(gone.status, StatusCode::NOT_FOUND);
    assert_eq!(error(&gone).0, "not-found");
    let again = cmp(&mock, Method::DELETE, &uri, Some(&token), None).await;
    assert_eq!(again.status, StatusCode::NOT_FOUND);
    // After a delete the PAN is new again for the duplicate check.
    assert_eq!(
        create(&mock, &token, card_body(PAN, None)).await.status,
        StatusCode::CREATED
    );
}

#[tokio::test]
async fn a_body_that_is_not_json_api_is_415() {
    let mock = Mock::new(config());
    let token = pci(&mock).await;
    for content_type in ["application/json", "text/plain"] {
        let reply = cmp(
            &mock,
            Method::POST,
            "/cards",
            Some(&token),
            Some((content_type, card_body(PAN, None))),
        )
        .await;
        assert_eq!(reply.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
        assert_eq!(error(&reply).0, "unsupported-media-type");
    }
    assert_eq!(mock.state.card_count(DEMO_VAULT_ID), Some(0));
}

#[tokio::test]
async fn invalid_cards_are_422_with_code_and_pointer_and_never_echo_the_pan() {
    let mock = Mock::new(config());
    let token = pci(&mock).await;
    let attrs = |a: Value| json!({"data": {"attributes": a}}).to_string();
    let cases = [
        (
            attrs(json!({"exp_month": 4, "exp_year": 28})),
            "missing-required-field",
            "/data/attributes/pan",
        ),
        (
            attrs(json!({"pan": "4111111111111112", "exp_month": 4, "exp_year": 28})),
            "validation-failed",
            "/data/attributes/pan",
        ),
        (
            attrs(json!({"pan": PAN, "exp_year": 28})),
            "missing-required-field",
            "/data/attributes/exp_month",
        ),
        (
            attrs(json!({"pan": PAN, "exp_month": 13, "exp_year": 28})),
            "validation-failed",
            "/data/attributes/exp_month",
        ),
        (
            attrs(json!({"pan": PAN, "exp_month": 4})),
            "missing-required-field",
            "/data/attributes/exp_year",
        ),
        (
            attrs(json!({"pan": PAN, "cvc": "12a", "exp_month": 4, "exp_year": 28})),
            "validation-failed",
            "/data/attributes/cvc",
        ),
        (
            attrs(json!({"pan_alias": "tok_sandbox_unknown", "exp_month": 4, "exp_year": 28})),
            "failed-dependency",
            "/data/attributes/pan_alias",
        ),
        (
            json!({"data": {"type": "aliases", "attributes": {}}}).to_string(),
            "validation-failed",
            "/data/type",
        ),
    ];
    for (body, code, pointer) in cases {
        let reply = create(&mock, &token, body.clone()).await;
        assert_eq!(reply.status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
        let (got_code, detail, got_pointer) = error(&reply);
        assert_eq!(
            (got_code.as_str(), got_pointer.as_deref()),
            (code, Some(pointer)),
            "{body}"
        );
        assert!(!detail.contains("411111111111111"), "{detail}");
    }
    for body in [
        "{not json".to_owned(),
        json!({"attributes": {}}).to_string(),
    ] {
        let reply = create(&mock, &token, body).await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST);
        assert_eq!(error(&reply).0, "bad-request");
    }
    assert_eq!(mock.state.card_count(DEMO_VAULT_ID), Some(0));
}

#[tokio::test]
async fn a_card_can_be_made_from_aliases_already_in_the_tenants_vault() {
    let mock = Mock::new(config());
    let pan_alias = mock.create_one(PAN).await;
    let token = pci(&mock).await;
    let body =
        json!({"data": {"attributes": {"pan_alias": pan_alias, "exp_month": 4, "exp_year": 2028}}});
    let reply = create(&mock, &token, body.to_string()).await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.text());
    let a = attributes(&reply);
    assert_eq!(a["pan_alias"].as_str(), Some(pan_alias.as_str()));
    assert_eq!(a["pan"], PAN);
    assert_eq!(a["exp_year"], 2028);
}

#[tokio::test]
async fn tokens_and_scopes_are_checked_and_the_missing_scope_is_named() {
    let mock = Mock::new(config());
    let no_token = cmp(&mock, Method::GET, "/cards/CRDx", None, None).await;
    assert_eq!(no_token.status, StatusCode::UNAUTHORIZED);
    assert_eq!(error(&no_token).0, "unauthorized");
    let bad = cmp(&mock, Method::GET, "/cards/CRDx", Some("nope"), None).await;
    assert_eq!(bad.status, StatusCode::UNAUTHORIZED);

    let read_only = cmp_token(
        &mock,
        DEMO_CMP_CLIENT_ID,
        DEMO_CMP_CLIENT_SECRET,
        Some("cards:read"),
    )
    .await;
    let reply = create(&mock, &read_only, card_body(PAN, None)).await;
    assert_eq!(reply.status, StatusCode::FORBIDDEN);
    assert!(error(&reply).1.contains("cards:write"), "{}", reply.text());
    let reply = cmp(&mock, Method::DELETE, "/cards/CRDx", Some(&read_only), None).await;
    assert!(error(&reply).1.contains("cards:write"));

    let write_only = cmp_token(
        &mock,
        DEMO_CMP_CLIENT_ID,
        DEMO_CMP_CLIENT_SECRET,
        Some("cards:write"),
    )
    .await;
    let reply = get(&mock, &write_only, "CRDx").await;
    assert_eq!(reply.status, StatusCode::FORBIDDEN);
    assert!(error(&reply).1.contains("cards:read"));

    // An alias-API token has no card scope.
    let reply = mock
        .token_request(
            Some(&basic(DEMO_CLIENT_ID, DEMO_CLIENT_SECRET)),
            "grant_type=client_credentials",
        )
        .await;
    let alias_token = reply.json()["access_token"].as_str().unwrap().to_owned();
    assert_eq!(
        create(&mock, &alias_token, card_body(PAN, None))
            .await
            .status,
        StatusCode::FORBIDDEN
    );

    // An expired token is 401 and counted.
    mock.clock().advance(Duration::from_secs(301));
    let reply = get(&mock, &write_only, "CRDx").await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    assert_eq!(mock.state.stats().expired_token_rejections, 1);
}

#[tokio::test]
async fn faults_take_cmps_shapes_and_stats_count_cmp_routes() {
    let mock = Mock::new(config());
    let token = pci(&mock).await;
    mock.state
        .fail_next(Route::CreateCard, 1, FailWith::Status(500));
    let reply = create(&mock, &token, card_body(PAN, None)).await;
    assert_eq!(reply.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(error(&reply).0, "server-error");
    mock.state
        .fail_next(Route::GetCard, 1, FailWith::Status(503));
    let reply = get(&mock, &token, "CRDx").await;
    assert_eq!(reply.status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(
        reply
            .header("content-type")
            .unwrap()
            .starts_with("text/html")
    );

    let id = id_of(&create(&mock, &token, card_body(PAN, None)).await);
    assert_eq!(get(&mock, &token, &id).await.status, StatusCode::OK);
    let stats = mock.state.stats();
    assert_eq!(stats.api_count(Route::CreateCard, 500), 1);
    assert_eq!(stats.api_count(Route::CreateCard, 201), 1);
    assert_eq!(stats.api_count(Route::GetCard, 503), 1);
    assert_eq!(stats.api_count(Route::GetCard, 200), 1);
    assert_eq!(stats.faults_injected, 2);
    assert_eq!(stats.cards_stored, 1);
    assert!(stats.vault(DEMO_VAULT_ID).api_requests >= 2);
    let json = serde_json::to_value(&stats).unwrap();
    assert_eq!(json["api_requests"]["createCard"]["201"], 1);

    // The tenant's rate limit covers CMP calls too.
    mock.state.set_rate_limit_per_minute(Some(0));
    let reply = get(&mock, &token, &id).await;
    assert_eq!(reply.status, StatusCode::TOO_MANY_REQUESTS);
    assert!(reply.header("retry-after").is_some());

    mock.state.reset();
    assert_eq!(mock.state.card_count(DEMO_VAULT_ID), Some(0));
}
