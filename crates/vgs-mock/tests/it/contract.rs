//! The contract with the mock's own description (`openapi.yaml`): every operation and
//! status the mock answers is checked against its schemas (the harness checks every
//! answer of every test; this module makes sure each operation/status is exercised),
//! the validator itself catches drifts, every described operation is served, the
//! mock serves the document itself, and the document's request examples are accepted.

use std::collections::BTreeSet;

use axum::http::{Method, StatusCode};
use serde_json::{Value, json};
use vgs_mock::{DEMO_VAULT_ID, FailWith, Route};

use crate::spec::{Expected, spec};
use crate::support::{Mock, Reply, item, validated_count};

fn revealed_schema() -> Value {
    spec()
        .expected("/aliases/{alias}", "GET", 200)
        .unwrap()
        .json_schema()
}

fn error_schema() -> Value {
    spec()
        .expected("/aliases/{alias}", "GET", 404)
        .unwrap()
        .json_schema()
}

#[tokio::test]
async fn the_validator_catches_drifts() {
    let mock = Mock::demo();
    let alias = mock.create_one("v").await;
    let good = mock
        .v1(Method::GET, &format!("/aliases/{alias}"), None)
        .await
        .json();
    let schema = revealed_schema();
    spec()
        .validate(&schema, &good)
        .expect("a real answer passes");

    let mutate = |edit: &dyn Fn(&mut Value)| {
        let mut bad = good.clone();
        edit(&mut bad);
        spec().validate(&schema, &bad)
    };
    // The multi-reveal example's `{"value","format"}` alias entries are not the schema.
    let err = mutate(&|v| v["data"][0]["aliases"][0] = json!({"value": "tok", "format": "UUID"}));
    assert!(err.unwrap_err().contains("not declared"));
    assert!(mutate(&|v| v["data"][0]["storage"] = json!("DISK")).is_err());
    assert!(mutate(&|v| v["data"][0]["aliases"][0]["format"] = json!("UUID4")).is_err());
    assert!(mutate(&|v| v["data"][0]["created_at"] = json!("yesterday")).is_err());
    assert!(mutate(&|v| v["data"][0]["classifiers"] = json!("pii")).is_err());
    let duplicate = good["data"][0].clone();
    assert!(mutate(&|v| v["data"].as_array_mut().unwrap().push(duplicate.clone())).is_err());
    assert!(
        mutate(&|v| v["data"][0]["created_at"] = Value::Null).is_ok(),
        "nullable"
    );

    let v2_style = json!({"errors": [{"status": 404, "code": "not-found", "detail": "x"}]});
    assert!(spec().validate(&error_schema(), &v2_style).is_err());
    assert!(
        spec().expected("/aliases", "POST", 200).is_err(),
        "undeclared success"
    );
    assert!(matches!(
        spec().expected("/aliases/{alias}", "DELETE", 204),
        Ok(Expected::Empty)
    ));
}

/// (operationId, status) of an answer.
fn seen(route: Route, reply: &Reply) -> (&'static str, u16) {
    (route.as_str(), reply.status.as_u16())
}

#[tokio::test]
async fn every_operation_and_status_is_exercised_against_the_spec() {
    let before = validated_count();
    let mock = Mock::new(crate::support::two_vaults().with_rate_limit_per_minute(Some(60)));
    let mut statuses = BTreeSet::new();
    let created = json!({"data": [item("4111111111111111", "FPE_SIX_T_FOUR", "PERSISTENT"), item("737", "UUID", "VOLATILE")]});
    let reply = mock.v1(Method::POST, "/aliases", Some(created)).await;
    statuses.insert(seen(Route::CreateAliases, &reply));
    let aliases = reply.aliases();
    let one = format!("/aliases/{}", aliases[0]);

    // Every alias format in one answer.
    let formats = [
        ("4111111111111111", "ALPHANUMERIC_SIX_T_FOUR"),
        ("000123456789", "FPE_ACC_NUM_T_FOUR"),
        ("GB29NWBK6016", "FPE_ALPHANUMERIC_ACC_NUM_T_FOUR"),
        ("123-45-6789", "FPE_SSN_T_FOUR"),
        ("4111111111111111", "FPE_T_FOUR"),
        ("secret", "GENERIC_T_FOUR"),
        ("4111111111111111", "NON_LUHN_FPE_ALPHANUMERIC"),
        ("12345", "NUM_LENGTH_PRESERVING"),
        ("4111111111111111", "PFPT"),
        ("raw", "RAW_UUID"),
        ("vgs", "VGS_FIXED_LEN_GENERIC"),
    ];
    let items: Vec<Value> = formats
        .iter()
        .map(|(v, f)| item(v, f, "PERSISTENT"))
        .collect();
    let reply = mock
        .v1(Method::POST, "/aliases", Some(json!({ "data": items })))
        .await;
    assert_eq!(reply.status, StatusCode::CREATED);

    let calls: Vec<(Route, Method, String, Option<Value>)> = vec![
        (
            Route::CreateAliases,
            Method::POST,
            "/aliases".into(),
            Some(json!({"data": []})),
        ),
        (
            Route::CreateAliases,
            Method::POST,
            "/aliases".into(),
            Some(json!({"data": [{"alias": "tok_nope", "format": "UUID"}]})),
        ),
        (Route::RevealAlias, Method::GET, one.clone(), None),
        (
            Route::RevealAlias,
            Method::GET,
            format!("/aliases/{}?storage=VOLATILE", aliases[1]),
            None,
        ),
        (
            Route::RevealAlias,
            Method::GET,
            "/aliases/tok_nope".into(),
            None,
        ),
        (
            Route::RevealAlias,
            Method::GET,
            format!("{one}?storage=BAD"),
            None,
        ),
        (
            Route::RevealMultipleAliases,
            Method::GET,
            format!("/aliases?aliases={}", aliases[0]),
            None,
        ),
        (
            Route::RevealMultipleAliases,
            Method::GET,
            "/aliases?aliases=tok_nope".into(),
            None,
        ),
        (
            Route::RevealMultipleAliases,
            Method::GET,
            "/aliases".into(),
            None,
        ),
        (
            Route::UpdateAlias,
            Method::PUT,
            one.clone(),
            Some(json!({"data": {"classifiers": ["pan"]}})),
        ),
        (
            Route::UpdateAlias,
            Method::PUT,
            "/aliases/tok_nope".into(),
            Some(json!({"data": {"classifiers": []}})),
        ),
        (
            Route::UpdateAlias,
            Method::PUT,
            one.clone(),
            Some(json!({})),
        ),
        (
            Route::DeleteAliases,
            Method::POST,
            "/aliases/delete".into(),
            Some(json!({"data": [aliases[1]], "storage": "VOLATILE"})),
        ),
        (
            Route::DeleteAliases,
            Method::POST,
            "/aliases/delete".into(),
            Some(json!({"data": ["tok_nope"]})),
        ),
        (
            Route::DeleteAliases,
            Method::POST,
            "/aliases/delete".into(),
            Some(json!({"data": []})),
        ),
        (Route::DeleteAlias, Method::DELETE, one.clone(), None),
        (Route::DeleteAlias, Method::DELETE, one.clone(), None),
        (
            Route::DeleteAlias,
            Method::DELETE,
            format!("{one}?storage=X"),
            None,
        ),
    ];
    for (route, method, uri, body) in calls {
        let reply = mock.v1(method, &uri, body).await;
        statuses.insert(seen(route, &reply));
    }
    // 401, 413-less 415, injected 5xx and 429, rate limit 429 on every route.
    // (CMP's routes are not in the spec: `cmp.rs` checks them against the reference.)
    for route in Route::ALL
        .into_iter()
        .filter(|r| *r != Route::TokenEndpoint && !r.is_cmp() && !r.is_proxy())
    {
        let (method, uri) = match route {
            Route::CreateAliases => (Method::POST, "/aliases".to_owned()),
            Route::RevealMultipleAliases => (Method::GET, "/aliases?aliases=tok_a".to_owned()),
            Route::RevealAlias => (Method::GET, "/aliases/tok_a".to_owned()),
            Route::UpdateAlias => (Method::PUT, "/aliases/tok_a".to_owned()),
            Route::DeleteAlias => (Method::DELETE, "/aliases/tok_a".to_owned()),
            Route::DeleteAliases => (Method::POST, "/aliases/delete".to_owned()),
            Route::TokenEndpoint
            | Route::CreateCard
            | Route::GetCard
            | Route::DeleteCard
            | Route::OutboundProxy
            | Route::InboundProxy => unreachable!(),
        };
        let reply = mock.call(method.clone(), &uri, None, None).await;
        statuses.insert(seen(route, &reply));
        mock.state.fail_next(route, 1, FailWith::Status(503));
        statuses.insert(seen(route, &mock.v1(method.clone(), &uri, None).await));
        mock.state.fail_next(route, 1, FailWith::Status(429));
        statuses.insert(seen(route, &mock.v1(method.clone(), &uri, None).await));
        if method != Method::GET && method != Method::DELETE {
            let reply = mock.v1(method.clone(), &uri, None).await; // no Content-Type
            statuses.insert(seen(route, &reply));
        }
    }
    mock.state.set_rate_limit_per_minute(Some(0));
    let reply = mock.v1(Method::GET, "/aliases/tok_a", None).await;
    statuses.insert(seen(Route::RevealAlias, &reply));

    let expected: BTreeSet<(&str, u16)> = [
        ("createAliases", 201),
        ("createAliases", 400),
        ("createAliases", 404),
        ("createAliases", 401),
        ("createAliases", 415),
        ("createAliases", 429),
        ("createAliases", 503),
        ("revealAlias", 200),
        ("revealAlias", 400),
        ("revealAlias", 401),
        ("revealAlias", 404),
        ("revealAlias", 429),
        ("revealAlias", 503),
        ("revealMultipleAliases", 200),
        ("revealMultipleAliases", 400),
        ("revealMultipleAliases", 401),
        ("revealMultipleAliases", 404),
        ("revealMultipleAliases", 429),
        ("revealMultipleAliases", 503),
        ("updateAlias", 204),
        ("updateAlias", 400),
        ("updateAlias", 401),
        ("updateAlias", 404),
        ("updateAlias", 415),
        ("updateAlias", 429),
        ("updateAlias", 503),
        ("deleteAlias", 204),
        ("deleteAlias", 400),
        ("deleteAlias", 401),
        ("deleteAlias", 404),
        ("deleteAlias", 429),
        ("deleteAlias", 503),
        ("deleteAliases", 204),
        ("deleteAliases", 400),
        ("deleteAliases", 401),
        ("deleteAliases", 404),
        ("deleteAliases", 415),
        ("deleteAliases", 429),
        ("deleteAliases", 503),
    ]
    .into_iter()
    .collect();
    let missing: Vec<_> = expected.difference(&statuses).collect();
    assert!(
        missing.is_empty(),
        "not exercised: {missing:?}; seen {statuses:?}"
    );
    assert!(validated_count() - before >= statuses.len());
}

#[tokio::test]
async fn v2_answers_match_the_spec_bodies_too() {
    let mock = Mock::demo();
    let token = mock.token(None).await;
    let v = DEMO_VAULT_ID;
    let reply = mock
        .v2(
            v,
            &token,
            Method::POST,
            "/aliases",
            Some(json!({"data": [item("x", "PFPT", "PERSISTENT")]})),
        )
        .await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST); // checked against the v2 error shape
    let reply = mock
        .v2(
            v,
            &token,
            Method::POST,
            "/aliases",
            Some(json!({"data": [item("x", "UUID", "PERSISTENT")]})),
        )
        .await;
    let alias = reply.aliases().remove(0); // checked against createAliases' 201 schema
    mock.v2(v, &token, Method::GET, &format!("/aliases/{alias}"), None)
        .await;
    mock.v2(
        v,
        &token,
        Method::GET,
        &format!("/aliases?aliases={alias}"),
        None,
    )
    .await;
}

#[tokio::test]
async fn every_described_operation_is_served() {
    let mock = Mock::demo();
    let mut operation_ids = BTreeSet::new();
    for (path, method, operation) in spec().operations() {
        operation_ids.insert(operation["operationId"].as_str().unwrap());
        let uri = path
            .replace("{alias}", "tok_sandbox_probe")
            .replace("{vault}", DEMO_VAULT_ID)
            .replace("{id}", "CRDprobe");
        let method = Method::from_bytes(method.to_ascii_uppercase().as_bytes()).unwrap();
        // Checked by the harness against the description (so a 405 or the router's
        // "no such route" for a described path fails there).
        let reply = mock.v1(method.clone(), &uri, Some(json!({}))).await;
        assert_ne!(
            reply.status,
            StatusCode::METHOD_NOT_ALLOWED,
            "{method} {path}"
        );
    }
    assert_eq!(
        operation_ids.len(),
        spec().operations().len(),
        "operation ids are unique"
    );
    // Every route of this port the stats and faults name is described, by its
    // operation id (the proxies listen on ports of their own).
    for route in Route::ALL.into_iter().filter(|r| !r.is_proxy()) {
        assert!(
            operation_ids.contains(route.as_str()),
            "{route} undescribed"
        );
    }
    assert!(
        operation_ids.len() >= 22,
        "token, 6 v1, 6 v2, 3 CMP, 7 controls: {operation_ids:?}"
    );
}

#[tokio::test]
async fn an_answer_outside_the_description_is_caught() {
    let mock = Mock::demo();
    let reply = mock.v1(Method::GET, "/aliases/tok_a", None).await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND);
    // The same answer, claimed for a route whose description says otherwise.
    let drift = |method: Method, path: &str| {
        crate::support::check_against(spec(), &method, path, None, &reply).unwrap_err()
    };
    assert!(drift(Method::GET, "/_mock/stats").contains("does not declare status 404"));
    assert!(drift(Method::GET, "/undescribed").contains("no such path"));
    assert!(drift(Method::GET, "/aliases/delete").contains("has no GET"));
    assert!(drift(Method::GET, "/cards/CRD1").contains("Content-Type"));
}

#[tokio::test]
async fn the_mock_serves_its_own_description() {
    let mock = vgs_mock::start(vgs_mock::MockConfig::demo()).await.unwrap();
    let response = reqwest::Client::builder()
        .no_proxy()
        .build()
        .unwrap()
        .get(format!("{}/_mock/openapi.yaml", mock.base_url()))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.headers()["content-type"].to_str().unwrap(),
        "application/yaml"
    );
    let text = response.text().await.unwrap();
    let on_disk =
        std::fs::read_to_string(crate::support::manifest_dir().join("openapi.yaml")).unwrap();
    assert_eq!(
        text, on_disk,
        "the served document is the file in the repository"
    );
    let served = crate::spec::Spec::parse(&text).unwrap();
    assert_eq!(served.root["openapi"], "3.0.3");
    assert_eq!(
        mock.stats().api_requests.len(),
        0,
        "controls are not counted"
    );
    mock.stop().await;
}

#[test]
fn every_reference_of_the_description_resolves() {
    fn walk(spec: &crate::spec::Spec, value: &Value, refs: &mut usize) {
        match value {
            Value::Object(map) => {
                if map.contains_key("$ref") {
                    *refs += 1;
                    spec.resolve(value); // panics on a dangling or non-local $ref
                }
                map.values().for_each(|v| walk(spec, v, refs));
            }
            Value::Array(items) => items.iter().for_each(|v| walk(spec, v, refs)),
            _ => {}
        }
    }
    let mut refs = 0;
    walk(spec(), &spec().root, &mut refs);
    assert!(refs > 40, "{refs} references");
    // No keyword outside the validator's subset hides anywhere, used or not.
    let mut unsupported = Vec::new();
    for (name, schema) in spec().root["components"]["schemas"].as_object().unwrap() {
        crate::spec::unsupported_keywords(schema, name, &mut unsupported);
    }
    for (path, method, operation) in spec().operations() {
        let bodies = operation["responses"]
            .as_object()
            .unwrap()
            .values()
            .chain(operation.get("requestBody"));
        for body in bodies {
            let body = spec().resolve(body);
            for (media, content) in body
                .get("content")
                .and_then(Value::as_object)
                .into_iter()
                .flatten()
            {
                let at = format!("{method} {path} {media}");
                crate::spec::unsupported_keywords(&content["schema"], &at, &mut unsupported);
            }
        }
    }
    assert!(unsupported.is_empty(), "{unsupported:#?}");
}

#[tokio::test]
async fn the_spec_request_examples_are_accepted() {
    request_examples_are_accepted(spec()).await;
}

/// `spec`'s createAliases examples A (a new value) and B (a reference) are accepted.
pub(crate) async fn request_examples_are_accepted(spec: &crate::spec::Spec) {
    let mock = Mock::demo();
    let examples = spec.operation("/aliases", "POST")["requestBody"]["content"]["application/json"]
        ["examples"]
        .as_object()
        .unwrap()
        .clone();
    assert!(examples.len() >= 2);
    // Example A stores a value; B references an existing alias (replaced by A's).
    let a = examples["A"]["value"].clone();
    let reply = mock.v1(Method::POST, "/aliases", Some(a)).await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.text());
    let alias = reply.aliases().remove(0);
    let mut b = examples["B"]["value"].clone();
    b["data"][0]["alias"] = json!(alias);
    let reply = mock.v1(Method::POST, "/aliases", Some(b)).await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.text());
    assert_eq!(reply.json()["data"][0]["aliases"][0]["format"], "RAW_UUID");
}
