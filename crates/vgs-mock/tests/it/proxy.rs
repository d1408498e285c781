//! The outbound and inbound proxies against a stand-in processor on loopback: revealed
//! PAN and CVC reach it over http (absolute-form) and https (CONNECT, TLS intercepted
//! by the mock's CA); inbound aliases reveal to the posted card; 407; an unknown
//! alias; no route matched; a non-JSON body; form and regex filters; faults, the rate
//! limit and the stats.

use serde_json::{Value, json};
use vgs_mock::{
    DEMO_V1_PASSWORD, DEMO_V1_USERNAME, DEMO_VAULT_ID, FailWith, MockConfig, MockHandle,
    REQUEST_ID_HEADER, Received, Route, RouteFile, StandInProcessor,
};

const PAN: &str = "4111111111111111";
const CVC: &str = "737";

/// Outbound routes for the processor at `host`: reveal the card at `$.card.*` in
/// requests (CVC from volatile storage), redact `$.token` in responses.
fn outbound_routes(host: &str) -> RouteFile {
    RouteFile::parse(&format!(
        r#"
version: 1
data:
- type: rule_chain
  attributes:
    protocol: http
    source_endpoint: '*'
    destination_override_endpoint: '*'
    host_endpoint: {host}
    tags: {{name: processor}}
    entries:
    - phase: REQUEST
      operation: REVEAL
      token_manager: PERSISTENT
      public_token_generator: FPE_SIX_T_FOUR
      transformer: JSON_PATH
      transformer_config: [$.card.number]
      targets: [body]
      config:
        condition: AND
        rules:
        - expression: {{field: PathInfo, type: string, operator: begins_with, values: [/pay]}}
    - phase: REQUEST
      operation: ENRICH
      token_manager: VOLATILE
      public_token_generator: UUID
      transformer: JSON_PATH
      transformer_config: [$.card.cvc]
      targets: [body]
    - phase: REQUEST
      operation: REVEAL
      transformer: FORM_FIELD
      transformer_config: [card_number]
    - phase: RESPONSE
      operation: REDACT
      token_manager: PERSISTENT
      public_token_generator: UUID
      transformer: JSON_PATH
      transformer_config: [$.token]
"#
    ))
    .expect("routes parse")
}

/// An inbound route to `upstream`: redact the posted card, reveal `$.echo` answered.
fn inbound_routes(upstream: &str) -> RouteFile {
    RouteFile::parse(&format!(
        r#"{{"version": 1, "data": [{{"type": "rule_chain", "attributes": {{
            "protocol": "http", "destination_override_endpoint": "{upstream}", "host_endpoint": "*",
            "entries": [
              {{"phase": "REQUEST", "operation": "REDACT", "token_manager": "PERSISTENT",
                "public_token_generator": "FPE_SIX_T_FOUR", "transformer": "JSON_PATH",
                "transformer_config": ["$.card.number"], "targets": ["body"]}},
              {{"phase": "REQUEST", "operation": "REDACT", "token_manager": "VOLATILE",
                "public_token_generator": "UUID", "transformer": "JSON_PATH",
                "transformer_config": ["$.card.cvc"], "targets": ["body"]}},
              {{"phase": "REQUEST", "operation": "REDACT", "transformer": "REGEX",
                "transformer_config": ["ssn=(\\d{{3}}-\\d{{2}}-\\d{{4}})"]}},
              {{"phase": "RESPONSE", "operation": "REVEAL", "token_manager": "PERSISTENT",
                "transformer": "JSON_PATH", "transformer_config": ["$.echo"]}}
            ]}}}}]}}"#
    ))
    .expect("routes parse")
}

async fn mock_with_routes(routes: RouteFile) -> MockHandle {
    vgs_mock::start(MockConfig::demo().with_routes(DEMO_VAULT_ID, routes))
        .await
        .unwrap()
}

/// A client of the outbound proxy with the demo vault's access credentials.
fn proxied_client(mock: &MockHandle, user: &str, password: &str) -> reqwest::Client {
    let proxy = reqwest::Proxy::all(format!("http://{}", mock.outbound_proxy_addr().unwrap()))
        .unwrap()
        .basic_auth(user, password);
    let ca = reqwest::Certificate::from_pem(
        mock.proxy_authority().unwrap().certificate_pem().as_bytes(),
    )
    .unwrap();
    reqwest::Client::builder()
        .proxy(proxy)
        .add_root_certificate(ca)
        .build()
        .unwrap()
}

/// Stores the demo card through the alias API: (PAN alias, CVC alias).
async fn stored_card(mock: &MockHandle) -> (String, String) {
    let client = reqwest::Client::builder().no_proxy().build().unwrap();
    let answer: Value = client
        .post(format!("{}/aliases", mock.base_url()))
        .basic_auth(DEMO_V1_USERNAME, Some(DEMO_V1_PASSWORD))
        .header("content-type", "application/json")
        .body(
            json!({"data": [
                {"value": PAN, "format": "FPE_SIX_T_FOUR", "storage": "PERSISTENT"},
                {"value": CVC, "format": "UUID", "storage": "VOLATILE"}
            ]})
            .to_string(),
        )
        .send()
        .await
        .unwrap()
        .text()
        .await
        .map(|t| serde_json::from_str::<Value>(&t).unwrap())
        .unwrap();
    let alias = |i: usize| {
        answer["data"][i]["aliases"][0]["alias"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    (alias(0), alias(1))
}

/// A stand-in processor answering `answer`.
async fn processor(
    answer: Value,
    tls: Option<&vgs_mock::CertificateAuthority>,
) -> StandInProcessor {
    StandInProcessor::start(answer, tls).await.unwrap()
}

/// The JSON body a processor received.
fn body_of(received: &Received) -> Value {
    serde_json::from_str(&received.body).unwrap()
}

fn payment(number: &str, cvc: &str) -> Value {
    json!({"amount": 1000, "card": {"number": number, "cvc": cvc, "exp_month": 4}})
}

#[tokio::test]
async fn the_processor_receives_the_revealed_card_through_the_outbound_proxy_over_http() {
    let processor = processor(json!({"status": "authorized", "token": "proc-tok-1"}), None).await;
    let mock = mock_with_routes(outbound_routes("127\\.0\\.0\\.1")).await;
    let (pan_alias, cvc_alias) = stored_card(&mock).await;
    let client = proxied_client(&mock, DEMO_V1_USERNAME, DEMO_V1_PASSWORD);
    let response = client
        .post(format!("http://{}/payments", processor.addr()))
        .header("content-type", "application/json")
        .body((payment(&pan_alias, &cvc_alias)).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert!(response.headers().contains_key(REQUEST_ID_HEADER));
    assert_eq!(response.headers()[vgs_mock::UPSTREAM_STATUS_HEADER], "200");
    assert_eq!(
        response.headers()["x-processor"],
        "stand-in",
        "upstream headers come back"
    );
    let answer: Value = serde_json::from_str(&response.text().await.unwrap()).unwrap();
    // The processor got the card, not the aliases.
    let got: Value = body_of(&processor.last().unwrap());
    assert_eq!(got["card"]["number"], PAN);
    assert_eq!(got["card"]["cvc"], CVC);
    assert_eq!(got["amount"], 1000, "the rest of the body is untouched");
    // Its token came back redacted: an alias the vault reveals to the token.
    assert_eq!(answer["status"], "authorized");
    let token_alias = answer["token"].as_str().unwrap();
    assert!(token_alias.starts_with("tok_sandbox_"), "{answer}");
    assert_eq!(
        mock.record(DEMO_VAULT_ID, token_alias).unwrap().value,
        "proc-tok-1"
    );
    let stats = mock.stats();
    assert_eq!(stats.proxied_requests, 1);
    assert_eq!(stats.values_revealed, 2);
    assert_eq!(stats.values_redacted, 1);
    assert_eq!(stats.api_count(Route::OutboundProxy, 200), 1);
}

#[tokio::test]
async fn https_upstreams_are_reached_through_connect_with_the_mocks_ca() {
    let mock = mock_with_routes(outbound_routes("127\\.0\\.0\\.1")).await;
    let processor = processor(
        json!({"status": "authorized"}),
        Some(mock.proxy_authority().unwrap()),
    )
    .await;
    let (pan_alias, cvc_alias) = stored_card(&mock).await;
    let client = proxied_client(&mock, DEMO_V1_USERNAME, DEMO_V1_PASSWORD);
    let response = client
        .post(format!(
            "https://127.0.0.1:{}/payments",
            processor.addr().port()
        ))
        .header("content-type", "application/json")
        .body((payment(&pan_alias, &cvc_alias)).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert!(response.headers().contains_key(REQUEST_ID_HEADER));
    let got: Value = body_of(&processor.last().unwrap());
    assert_eq!(got["card"]["number"], PAN);
    assert_eq!(got["card"]["cvc"], CVC);

    // A client that does not trust the mock's CA cannot be intercepted.
    let untrusting = reqwest::Client::builder()
        .proxy(
            reqwest::Proxy::all(format!("http://{}", mock.outbound_proxy_addr().unwrap()))
                .unwrap()
                .basic_auth(DEMO_V1_USERNAME, DEMO_V1_PASSWORD),
        )
        .build()
        .unwrap();
    let refused = untrusting
        .post(format!(
            "https://127.0.0.1:{}/payments",
            processor.addr().port()
        ))
        .header("content-type", "application/json")
        .body((payment(&pan_alias, &cvc_alias)).to_string())
        .send()
        .await;
    assert!(
        refused.is_err(),
        "the intercepting certificate is not trusted"
    );
    assert_eq!(processor.count(), 1);
}

#[tokio::test]
async fn the_outbound_proxy_needs_a_vaults_access_credentials() {
    let processor = processor(json!({}), None).await;
    let mock = mock_with_routes(outbound_routes("127\\.0\\.0\\.1")).await;
    for (user, password) in [(DEMO_V1_USERNAME, "wrong"), ("nobody", DEMO_V1_PASSWORD)] {
        let response = proxied_client(&mock, user, password)
            .post(format!("http://{}/payments", processor.addr()))
            .header("content-type", "application/json")
            .body((json!({})).to_string())
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 407);
        assert!(response.headers().contains_key("proxy-authenticate"));
    }
    let anonymous = reqwest::Client::builder()
        .proxy(
            reqwest::Proxy::all(format!("http://{}", mock.outbound_proxy_addr().unwrap())).unwrap(),
        )
        .build()
        .unwrap();
    let response = anonymous
        .get(format!("http://{}/x", processor.addr()))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 407);
    assert_eq!(processor.count(), 0, "nothing reached the processor");
    assert_eq!(mock.stats().api_count(Route::OutboundProxy, 407), 3);
}

#[tokio::test]
async fn unknown_aliases_and_non_json_bodies_pass_unchanged_and_unrouted_hosts_are_refused() {
    let processor = processor(json!({"ok": true}), None).await;
    let mock = mock_with_routes(outbound_routes("127\\.0\\.0\\.1")).await;
    let client = proxied_client(&mock, DEMO_V1_USERNAME, DEMO_V1_PASSWORD);

    // An alias the vault does not hold is left as it is (our choice: VGS's is not
    // documented), and counted nowhere as revealed.
    let unknown = "4111119999991111";
    client
        .post(format!("http://{}/payments", processor.addr()))
        .header("content-type", "application/json")
        .body((payment(unknown, "tok_sandbox_unknownCvc000000000000")).to_string())
        .send()
        .await
        .unwrap();
    let got: Value = body_of(&processor.last().unwrap());
    assert_eq!(got["card"]["number"], unknown);
    assert_eq!(
        got["card"]["cvc"], "tok_sandbox_unknownCvc000000000000",
        "an unknown CVC alias arrives as sent"
    );
    assert_eq!(mock.stats().values_revealed, 0);

    // A path the filter's condition excludes: the number stays an alias.
    let (pan_alias, cvc_alias) = stored_card(&mock).await;
    client
        .post(format!("http://{}/refunds", processor.addr()))
        .header("content-type", "application/json")
        .body((payment(&pan_alias, &cvc_alias)).to_string())
        .send()
        .await
        .unwrap();
    let got: Value = body_of(&processor.last().unwrap());
    assert_eq!(
        got["card"]["number"],
        pan_alias.as_str(),
        "condition: /pay… only"
    );
    assert_eq!(got["card"]["cvc"], CVC, "the CVC filter has no condition");

    // A body that is not JSON: JSON-path filters select nothing, it passes as sent.
    let text = format!("number={pan_alias}; not json");
    client
        .post(format!("http://{}/payments", processor.addr()))
        .header("content-type", "text/plain")
        .body(text.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(processor.last().unwrap().body, text);
    assert_eq!(processor.last().unwrap().content_type, "text/plain");

    // A host no route serves: refused by the proxy, nothing reaches the processor.
    let other = mock_with_routes(outbound_routes("api\\.processor\\.test")).await;
    let (pan_alias, cvc_alias) = stored_card(&other).await;
    let before = processor.count();
    let refused = proxied_client(&other, DEMO_V1_USERNAME, DEMO_V1_PASSWORD)
        .post(format!("http://{}/payments", processor.addr()))
        .header("content-type", "application/json")
        .body((payment(&pan_alias, &cvc_alias)).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 404);
    assert!(refused.headers().contains_key(REQUEST_ID_HEADER));
    assert!(
        !refused
            .headers()
            .contains_key(vgs_mock::UPSTREAM_STATUS_HEADER),
        "the proxy's own answer"
    );
    assert!(refused.text().await.unwrap().contains("no route of vault"));
    assert_eq!(processor.count(), before);
    assert_eq!(other.stats().api_count(Route::OutboundProxy, 404), 1);
}

#[tokio::test]
async fn form_bodies_are_revealed_field_by_field() {
    let processor = processor(json!({}), None).await;
    let mock = mock_with_routes(outbound_routes("127\\.0\\.0\\.1")).await;
    let (pan_alias, _) = stored_card(&mock).await;
    proxied_client(&mock, DEMO_V1_USERNAME, DEMO_V1_PASSWORD)
        .post(format!("http://{}/charge", processor.addr()))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("amount=10&card_number={pan_alias}&note=a+b"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        processor.last().unwrap().body,
        format!("amount=10&card_number={PAN}&note=a+b")
    );
}

#[tokio::test]
async fn the_inbound_proxy_hands_the_merchant_aliases_that_reveal_to_the_posted_card() {
    let merchant = processor(json!({"saved": true}), None).await;
    let mock = mock_with_routes(inbound_routes(&format!("http://{}", merchant.addr()))).await;
    let client = reqwest::Client::builder().no_proxy().build().unwrap();
    let inbound = mock.inbound_proxy_addr().unwrap();
    let response = client
        .post(format!("http://{inbound}/cards?source=checkout"))
        .header("content-type", "application/json")
        .body((payment(PAN, CVC)).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert!(response.headers().contains_key(REQUEST_ID_HEADER));
    let seen = merchant.last().unwrap();
    assert_eq!(
        seen.path, "/cards?source=checkout",
        "path and query forwarded"
    );
    assert!(
        !seen.body.contains(PAN) && !seen.body.contains(&format!("\"{CVC}\"")),
        "{}",
        seen.body
    );
    let got: Value = body_of(&seen);
    let pan_alias = got["card"]["number"].as_str().unwrap();
    assert!(
        pan_alias.starts_with("411111") && pan_alias.ends_with("1111"),
        "FPE_SIX_T_FOUR"
    );
    assert_eq!(mock.record(DEMO_VAULT_ID, pan_alias).unwrap().value, PAN);
    let cvc_alias = got["card"]["cvc"].as_str().unwrap();
    let cvc = mock.record(DEMO_VAULT_ID, cvc_alias).unwrap();
    assert_eq!(cvc.value, CVC);
    assert_eq!(cvc.storage, vgs_mock::Storage::Volatile);
    assert_eq!(mock.stats().api_count(Route::InboundProxy, 200), 1);

    // REGEX: the SSN in a text body is redacted before the merchant sees it.
    let response = client
        .post(format!("http://{inbound}/form"))
        .header("content-type", "text/plain")
        .body("name=Ada&ssn=123-45-6789")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let body = merchant.last().unwrap().body;
    assert!(
        body.starts_with("name=Ada&ssn=") && !body.contains("123-45-6789"),
        "{body}"
    );
    let ssn_alias = body.trim_start_matches("name=Ada&ssn=");
    assert_eq!(
        mock.record(DEMO_VAULT_ID, ssn_alias).unwrap().value,
        "123-45-6789"
    );

    // RESPONSE REVEAL: the merchant answers with the alias, the client gets the value.
    merchant.answer_with(json!({"echo": pan_alias, "id": 7}));
    let answer: Value = client
        .get(format!("http://{inbound}/cards/7"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .map(|t| serde_json::from_str::<Value>(&t).unwrap())
        .unwrap();
    assert_eq!(answer, json!({"echo": PAN, "id": 7}));
    let stats = mock.stats();
    assert_eq!(stats.values_redacted, 3, "number, CVC, SSN");
    assert_eq!(stats.values_revealed, 1);
}

#[tokio::test]
async fn a_value_that_cannot_be_redacted_stops_the_request() {
    let merchant = processor(json!({}), None).await;
    let mock = mock_with_routes(inbound_routes(&format!("http://{}", merchant.addr()))).await;
    let response = reqwest::Client::builder()
        .no_proxy()
        .build()
        .unwrap()
        .post(format!(
            "http://{}/cards",
            mock.inbound_proxy_addr().unwrap()
        ))
        .header("content-type", "application/json")
        .body((payment("not a card number", CVC)).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    let text = response.text().await.unwrap();
    assert!(
        text.contains("could not be redacted as FPE_SIX_T_FOUR"),
        "{text}"
    );
    assert!(
        !text.contains("not a card number"),
        "the value is not echoed: {text}"
    );
    assert_eq!(merchant.count(), 0, "the value never reached the merchant");
}

#[tokio::test]
async fn faults_and_the_rate_limit_apply_to_the_proxies_too() {
    let processor = processor(json!({}), None).await;
    let config = MockConfig::demo()
        .with_routes(DEMO_VAULT_ID, outbound_routes("127\\.0\\.0\\.1"))
        .with_rate_limit_per_minute(Some(2));
    let mock = vgs_mock::start(config).await.unwrap();
    let client = proxied_client(&mock, DEMO_V1_USERNAME, DEMO_V1_PASSWORD);
    let send = || {
        client
            .post(format!("http://{}/payments", processor.addr()))
            .header("content-type", "application/json")
            .body("{}")
            .send()
    };
    mock.fail_next(Route::OutboundProxy, 1, FailWith::Status(503));
    let response = send().await.unwrap();
    assert_eq!(response.status(), 503);
    assert_eq!(response.headers()[vgs_mock::FAULT_HEADER], "status");
    mock.fail_next(Route::OutboundProxy, 1, FailWith::Reset);
    assert!(send().await.is_err(), "a reset drops the proxy connection");
    assert_eq!(processor.count(), 0);
    assert_eq!(send().await.unwrap().status(), 200);
    assert_eq!(send().await.unwrap().status(), 200);
    let limited = send().await.unwrap();
    assert_eq!(limited.status(), 429);
    assert!(limited.headers().contains_key("retry-after"));
    let stats = mock.stats();
    assert_eq!(stats.faults_injected, 2);
    assert_eq!(stats.api_resets(Route::OutboundProxy), 1);
    assert_eq!(stats.api_count(Route::OutboundProxy, 429), 1);
    assert_eq!(processor.count(), 2);
}

#[tokio::test]
async fn an_inbound_upstream_with_a_base_path_gets_the_clients_path_under_it() {
    let merchant = processor(json!({"saved": true}), None).await;
    let mock = mock_with_routes(inbound_routes(&format!(
        "http://{}/api/v2/",
        merchant.addr()
    )))
    .await;
    let response = reqwest::Client::builder()
        .no_proxy()
        .build()
        .unwrap()
        .post(format!(
            "http://{}/cards?x=1",
            mock.inbound_proxy_addr().unwrap()
        ))
        .header("content-type", "application/json")
        .body((payment(PAN, CVC)).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(merchant.last().unwrap().path, "/api/v2/cards?x=1");
}

#[tokio::test]
async fn connect_needs_credentials_and_compressed_bodies_are_refused() {
    let mock = mock_with_routes(outbound_routes("127\\.0\\.0\\.1")).await;
    let processor = processor(json!({}), Some(mock.proxy_authority().unwrap())).await;
    // CONNECT with wrong credentials: 407 before any tunnel, so the client fails.
    let refused = proxied_client(&mock, DEMO_V1_USERNAME, "wrong")
        .post(format!(
            "https://127.0.0.1:{}/payments",
            processor.addr().port()
        ))
        .body("{}")
        .send()
        .await;
    assert!(refused.is_err(), "no tunnel without credentials");
    assert_eq!(processor.count(), 0);
    assert_eq!(mock.stats().api_count(Route::OutboundProxy, 407), 1);

    // A gzip body would pass the filters in clear: refused, nothing forwarded.
    let (pan_alias, cvc_alias) = stored_card(&mock).await;
    let response = proxied_client(&mock, DEMO_V1_USERNAME, DEMO_V1_PASSWORD)
        .post(format!(
            "https://127.0.0.1:{}/payments",
            processor.addr().port()
        ))
        .header("content-type", "application/json")
        .header("content-encoding", "gzip")
        .body((payment(&pan_alias, &cvc_alias)).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 415);
    assert!(
        !response
            .headers()
            .contains_key(vgs_mock::UPSTREAM_STATUS_HEADER)
    );
    assert!(
        response
            .text()
            .await
            .unwrap()
            .contains("without Content-Encoding")
    );
    assert_eq!(processor.count(), 0);
}

#[tokio::test]
async fn without_routes_no_proxy_runs() {
    let mock = vgs_mock::start(MockConfig::demo()).await.unwrap();
    assert!(mock.outbound_proxy_addr().is_none() && mock.inbound_proxy_addr().is_none());
    assert!(mock.proxy_authority().is_none());
}
