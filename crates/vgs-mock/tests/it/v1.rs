//! Vault API v1 per the official spec: every operation, its statuses and error bodies.

use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use serde_json::{Value, json};

use crate::support::{Mock, basic, demo_basic, item};

fn many_items(n: usize) -> Vec<Value> {
    (0..n)
        .map(|i| item(&format!("value-{i}"), "UUID", "PERSISTENT"))
        .collect()
}

#[tokio::test]
async fn create_answers_201_with_results_in_request_order() {
    let mock = Mock::demo();
    let reply = mock
        .v1(
            Method::POST,
            "/aliases",
            Some(json!({"data": [
                item("first", "UUID", "PERSISTENT"),
                item("4111111111111111", "FPE_SIX_T_FOUR", "PERSISTENT"),
                item("123", "NUM_LENGTH_PRESERVING", "VOLATILE"),
            ]})),
        )
        .await;
    assert_eq!(reply.status, StatusCode::CREATED);
    let data = reply.json()["data"].as_array().unwrap().clone();
    assert_eq!(data.len(), 3);
    assert_eq!(data[0]["value"], "first");
    assert_eq!(data[1]["value"], "4111111111111111");
    assert_eq!(data[1]["aliases"][0]["format"], "FPE_SIX_T_FOUR");
    assert_eq!(data[2]["storage"], "VOLATILE");
    assert_eq!(data[0]["classifiers"], json!(["test"]));
    assert_eq!(data[0]["created_at"], "2024-01-01T00:00:00Z");
}

#[tokio::test]
async fn twenty_values_are_fine_and_twenty_one_are_too_many() {
    let mock = Mock::demo();
    let reply = mock
        .v1(
            Method::POST,
            "/aliases",
            Some(json!({"data": many_items(20)})),
        )
        .await;
    assert_eq!(reply.status, StatusCode::CREATED);

    let reply = mock
        .v1(
            Method::POST,
            "/aliases",
            Some(json!({"data": many_items(21)})),
        )
        .await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    let host_less_href = "/aliases";
    assert_eq!(
        reply.json(),
        json!({"errors": [{
            "status": 400,
            "title": "Bad request",
            "detail": "Too many values (limit: 20)",
            "href": host_less_href,
        }]})
    );
}

#[tokio::test]
async fn href_is_the_request_url() {
    let mock = Mock::demo();
    let request = Request::builder()
        .method(Method::GET)
        .uri("/aliases/tok_sandbox_missing")
        .header(header::HOST, "127.0.0.1:8080")
        .header(header::AUTHORIZATION, demo_basic())
        .body(Body::empty())
        .unwrap();
    let reply = mock.send(request).await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND);
    let error = &reply.json()["errors"][0];
    assert_eq!(
        error["href"],
        "http://127.0.0.1:8080/aliases/tok_sandbox_missing"
    );
    assert_eq!(error["title"], "Not found");
    assert_eq!(error["status"], 404);
}

#[tokio::test]
async fn malformed_create_bodies_are_400_with_a_precise_detail() {
    let mock = Mock::demo();
    let cases = [
        (json!({"data": []}), "`data` must contain at least one item"),
        (
            json!({"values": []}),
            "`data` must be an array of 1 to 20 items",
        ),
        (
            json!({"data": [{"value": "x"}]}),
            "data[0].format is required",
        ),
        (
            json!({"data": [{"value": "x", "format": "NOPE"}]}),
            "data[0].format is not one of the spec's alias formats",
        ),
        (
            json!({"data": [{"value": "x", "format": "UUID", "storage": "DISK"}]}),
            "data[0].storage must be PERSISTENT or VOLATILE",
        ),
        (
            json!({"data": [{"value": "x", "alias": "y", "format": "UUID"}]}),
            "data[0] has both `value` and `alias`: give one",
        ),
        (
            json!({"data": [{"format": "UUID"}]}),
            "data[0] needs `value` (to store) or `alias` (to reference stored data)",
        ),
        (
            json!({"data": [{"value": "x", "format": "UUID", "classifiers": "pii"}]}),
            "data[0].classifiers must be an array of strings",
        ),
    ];
    for (body, detail) in cases {
        let reply = mock.v1(Method::POST, "/aliases", Some(body)).await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST);
        assert_eq!(reply.detail(), detail);
    }
    assert_eq!(mock.state.record_count(vgs_mock::DEMO_VAULT_ID), Some(0));
}

#[tokio::test]
async fn invalid_json_is_400_without_echoing_the_body() {
    let mock = Mock::demo();
    let request = Request::builder()
        .method(Method::POST)
        .uri("/aliases")
        .header(header::AUTHORIZATION, demo_basic())
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(r#"{"data":[{"value":"4111111111111111","#))
        .unwrap();
    let reply = mock.send(request).await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert!(reply.detail().starts_with("request body is not valid JSON"));
    assert!(!reply.text().contains("4111"));
}

#[tokio::test]
async fn a_non_json_content_type_is_415() {
    let mock = Mock::demo();
    let request = Request::builder()
        .method(Method::POST)
        .uri("/aliases")
        .header(header::AUTHORIZATION, demo_basic())
        .header(header::CONTENT_TYPE, "text/plain")
        .body(Body::from("{}"))
        .unwrap();
    let reply = mock.send(request).await;
    assert_eq!(reply.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert_eq!(reply.json()["errors"][0]["title"], "Unsupported media type");
}

#[tokio::test]
async fn missing_or_wrong_credentials_are_401() {
    let mock = Mock::demo();
    for authorization in [
        None,
        Some(basic("demo-user", "nope")),
        Some("Bearer x".to_owned()),
    ] {
        let reply = mock
            .call(
                Method::GET,
                "/aliases/tok_x",
                authorization.as_deref(),
                None,
            )
            .await;
        assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
        assert_eq!(reply.json()["errors"][0]["title"], "Unauthorized");
        assert!(
            reply
                .header("www-authenticate")
                .unwrap()
                .starts_with("Basic")
        );
    }
}

#[tokio::test]
async fn reveal_one_alias_returns_exactly_one_item() {
    let mock = Mock::demo();
    let alias = mock.create_one("secret").await;
    let reply = mock
        .v1(Method::GET, &format!("/aliases/{alias}"), None)
        .await;
    assert_eq!(reply.status, StatusCode::OK);
    let json = reply.json();
    assert_eq!(json["data"].as_array().unwrap().len(), 1);
    assert_eq!(json["data"][0]["value"], "secret");
    assert_eq!(json["data"][0]["aliases"][0]["alias"], alias.as_str());
    assert_eq!(json["data"][0]["storage"], "PERSISTENT");
}

#[tokio::test]
async fn reveal_unknown_alias_is_404_without_echoing_it() {
    let mock = Mock::demo();
    let reply = mock
        .v1(Method::GET, "/aliases/tok_sandbox_unknownAlias123", None)
        .await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND);
    assert_eq!(reply.detail(), "alias not found in PERSISTENT storage");
}

#[tokio::test]
async fn reveal_many_returns_a_map_keyed_by_alias() {
    let mock = Mock::demo();
    let aliases = mock
        .create(vec![
            item("one", "UUID", "PERSISTENT"),
            item("two", "RAW_UUID", "PERSISTENT"),
        ])
        .await;
    let uri = format!("/aliases?aliases={},{}", aliases[0], aliases[1]);
    let reply = mock.v1(Method::GET, &uri, None).await;
    assert_eq!(reply.status, StatusCode::OK);
    let data = reply.json()["data"].clone();
    assert_eq!(data.as_object().unwrap().len(), 2);
    assert_eq!(data[&aliases[0]]["value"], "one");
    assert_eq!(data[&aliases[1]]["value"], "two");
    assert_eq!(data[&aliases[1]]["aliases"][0]["format"], "RAW_UUID");
}

#[tokio::test]
async fn reveal_many_with_an_unknown_alias_is_404_and_without_the_parameter_400() {
    let mock = Mock::demo();
    let alias = mock.create_one("one").await;
    let reply = mock
        .v1(
            Method::GET,
            &format!("/aliases?aliases={alias},tok_nope"),
            None,
        )
        .await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND);
    assert_eq!(
        reply.detail(),
        "1 of 2 aliases not found in PERSISTENT storage"
    );

    let reply = mock.v1(Method::GET, "/aliases", None).await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    let reply = mock.v1(Method::GET, "/aliases?aliases=,", None).await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn update_replaces_the_classifiers() {
    let mock = Mock::demo();
    let alias = mock.create_one("v").await;
    let reply = mock
        .v1(
            Method::PUT,
            &format!("/aliases/{alias}"),
            Some(json!({"data": {"classifiers": ["credit-cards", "PII"]}})),
        )
        .await;
    assert_eq!(reply.status, StatusCode::NO_CONTENT);
    assert!(reply.body.is_empty());
    let reply = mock
        .v1(Method::GET, &format!("/aliases/{alias}"), None)
        .await;
    assert_eq!(
        reply.json()["data"][0]["classifiers"],
        json!(["credit-cards", "PII"])
    );

    let reply = mock
        .v1(
            Method::PUT,
            &format!("/aliases/{alias}"),
            Some(json!({"data": {}})),
        )
        .await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    let reply = mock
        .v1(
            Method::PUT,
            "/aliases/tok_nope",
            Some(json!({"data": {"classifiers": []}})),
        )
        .await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn delete_removes_the_alias_then_it_is_404() {
    let mock = Mock::demo();
    let alias = mock.create_one("v").await;
    let path = format!("/aliases/{alias}");
    let reply = mock.v1(Method::DELETE, &path, None).await;
    assert_eq!(reply.status, StatusCode::NO_CONTENT);
    assert_eq!(
        mock.v1(Method::GET, &path, None).await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        mock.v1(Method::DELETE, &path, None).await.status,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn batch_delete_is_all_or_nothing() {
    let mock = Mock::demo();
    let aliases = mock
        .create(vec![
            item("a", "UUID", "VOLATILE"),
            item("b", "UUID", "VOLATILE"),
        ])
        .await;
    let reply = mock
        .v1(
            Method::POST,
            "/aliases/delete",
            Some(json!({"data": [aliases[0], "tok_unknown"], "storage": "VOLATILE"})),
        )
        .await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND);
    assert_eq!(mock.state.record_count(vgs_mock::DEMO_VAULT_ID), Some(2));

    let reply = mock
        .v1(
            Method::POST,
            "/aliases/delete",
            Some(json!({"data": aliases, "storage": "VOLATILE"})),
        )
        .await;
    assert_eq!(reply.status, StatusCode::NO_CONTENT);
    assert_eq!(mock.state.record_count(vgs_mock::DEMO_VAULT_ID), Some(0));
}

#[tokio::test]
async fn batch_delete_limits_and_shape() {
    let mock = Mock::demo();
    let aliases: Vec<String> = (0..21).map(|i| format!("tok_{i}")).collect();
    let reply = mock
        .v1(
            Method::POST,
            "/aliases/delete",
            Some(json!({ "data": aliases })),
        )
        .await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert_eq!(reply.detail(), "Too many values (limit: 20)");
    let reply = mock
        .v1(Method::POST, "/aliases/delete", Some(json!({"data": []})))
        .await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    let reply = mock
        .v1(
            Method::POST,
            "/aliases/delete",
            Some(json!({"data": "tok_1"})),
        )
        .await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn reference_form_adds_an_alias_to_stored_data() {
    let mock = Mock::demo();
    let uuid = mock.create_one("122105155").await;
    let reply = mock
        .v1(
            Method::POST,
            "/aliases",
            Some(json!({"data": [{"alias": uuid, "format": "RAW_UUID", "storage": "PERSISTENT"}]})),
        )
        .await;
    assert_eq!(reply.status, StatusCode::CREATED);
    let data = &reply.json()["data"][0];
    assert_eq!(data["value"], "122105155");
    assert_eq!(data["aliases"].as_array().unwrap().len(), 2);
    assert_eq!(data["aliases"][0]["format"], "RAW_UUID");
    assert_eq!(data["aliases"][1]["alias"], uuid.as_str());
    let raw = data["aliases"][0]["alias"].as_str().unwrap().to_owned();
    let view = mock.state.record(vgs_mock::DEMO_VAULT_ID, &raw).unwrap();
    assert_eq!(view.value, "122105155");
    assert_eq!(mock.state.record_count(vgs_mock::DEMO_VAULT_ID), Some(1));

    // Referencing the same alias twice in one request, or an unknown one, fails.
    let twice = json!({"data": [
        {"alias": uuid, "format": "VGS_FIXED_LEN_GENERIC"},
        {"alias": uuid, "format": "NUM_LENGTH_PRESERVING"},
    ]});
    let reply = mock.v1(Method::POST, "/aliases", Some(twice)).await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    let unknown = json!({"data": [{"alias": "tok_sandbox_nope", "format": "UUID"}]});
    let reply = mock.v1(Method::POST, "/aliases", Some(unknown)).await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn a_numeric_value_as_in_the_spec_example_is_stored_as_text() {
    let mock = Mock::demo();
    let reply = mock
        .v1(
            Method::POST,
            "/aliases",
            Some(json!({"data": [{"value": 122105155, "classifiers": ["bank-account"], "format": "UUID", "storage": "PERSISTENT"}]})),
        )
        .await;
    assert_eq!(reply.status, StatusCode::CREATED);
    assert_eq!(reply.json()["data"][0]["value"], "122105155");
}

#[tokio::test]
async fn x_ratelimit_remaining_is_on_every_authenticated_answer() {
    let mock = Mock::demo();
    let alias = mock.create_one("v").await; // 1 request used
    let answers = [
        mock.v1(Method::GET, &format!("/aliases/{alias}"), None)
            .await,
        mock.v1(Method::GET, "/aliases/tok_nope", None).await,
        mock.v1(Method::POST, "/aliases", Some(json!({"data": []})))
            .await,
        mock.v1(Method::DELETE, &format!("/aliases/{alias}"), None)
            .await,
    ];
    let remaining: Vec<Option<&str>> = answers
        .iter()
        .map(|reply| reply.header("x-ratelimit-remaining"))
        .collect();
    assert_eq!(
        remaining,
        [Some("2998"), Some("2997"), Some("2996"), Some("2995")]
    );
}

#[tokio::test]
async fn a_body_over_32_mb_is_413() {
    let mock = Mock::demo();
    let oversized = vec![b' '; vgs_mock::MAX_BODY_BYTES + 1];
    // Streamed (no Content-Length): the limit is hit while reading.
    let request = Request::builder()
        .method(Method::POST)
        .uri("/aliases")
        .header(header::AUTHORIZATION, demo_basic())
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(oversized))
        .unwrap();
    let reply = mock.send(request).await;
    assert_eq!(reply.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(reply.json()["errors"][0]["title"], "Payload too large");

    // Declared: refused before reading.
    let request = Request::builder()
        .method(Method::POST)
        .uri("/aliases")
        .header(header::AUTHORIZATION, demo_basic())
        .header(header::CONTENT_TYPE, "application/json")
        .header(header::CONTENT_LENGTH, vgs_mock::MAX_BODY_BYTES + 1)
        .body(Body::empty())
        .unwrap();
    assert_eq!(
        mock.send(request).await.status,
        StatusCode::PAYLOAD_TOO_LARGE
    );

    // Exactly 32 MB of valid JSON is accepted.
    let value = "x".repeat(vgs_mock::MAX_BODY_BYTES - 200);
    let body = json!({"data": [item(&value, "UUID", "PERSISTENT")]}).to_string();
    assert!(body.len() <= vgs_mock::MAX_BODY_BYTES);
    let request = Request::builder()
        .method(Method::POST)
        .uri("/aliases")
        .header(header::AUTHORIZATION, demo_basic())
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(body))
        .unwrap();
    assert_eq!(mock.send(request).await.status, StatusCode::CREATED);
}

#[tokio::test]
async fn unknown_routes_are_404_in_the_v1_shape() {
    let mock = Mock::demo();
    let reply = mock.v1(Method::GET, "/nothing/here", None).await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND);
    assert_eq!(reply.json()["errors"][0]["detail"], "no such route");
}
