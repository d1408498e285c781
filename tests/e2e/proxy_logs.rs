//! The mock's proxies at TRACE: a payment through the outbound proxy (the card
//! revealed into it) and a card collected through the inbound proxy (redacted out of
//! it) leave no card value, and no value a filter stored, in any log line.

use serde_json::{Value, json};
use vaultlink_tests::logs::LogCapture;
use vgs_mock::{
    DEMO_V1_PASSWORD, DEMO_V1_USERNAME, DEMO_VAULT_ID, MockConfig, RouteFile, StandInProcessor,
};

const PAN: &str = "5555555555554444";
const CVC: &str = "8413";
const PROCESSOR_TOKEN: &str = "proc-secret-token-77";

fn routes(upstream: &str) -> RouteFile {
    RouteFile::parse(&format!(
        r#"
version: 1
data:
- type: rule_chain
  attributes:
    protocol: http
    destination_override_endpoint: '*'
    host_endpoint: 127\.0\.0\.1
    entries:
    - {{phase: REQUEST, operation: REVEAL, transformer: JSON_PATH, transformer_config: [$.number]}}
    - {{phase: REQUEST, operation: REVEAL, token_manager: VOLATILE, transformer: JSON_PATH, transformer_config: [$.cvc]}}
    - {{phase: RESPONSE, operation: REDACT, transformer: JSON_PATH, transformer_config: [$.token]}}
- type: rule_chain
  attributes:
    protocol: http
    destination_override_endpoint: {upstream}
    entries:
    - {{phase: REQUEST, operation: REDACT, public_token_generator: FPE_SIX_T_FOUR, transformer: JSON_PATH, transformer_config: [$.number]}}
    - {{phase: REQUEST, operation: REDACT, token_manager: VOLATILE, transformer: JSON_PATH, transformer_config: [$.cvc]}}
"#
    ))
    .unwrap()
}

fn json_body(value: &Value) -> String {
    value.to_string()
}

#[tokio::test]
async fn the_proxies_log_no_value_they_reveal_or_redact() {
    let logs = LogCapture::everything();
    let processor = StandInProcessor::start(json!({"token": PROCESSOR_TOKEN}), None)
        .await
        .unwrap();
    let upstream = format!("http://{}", processor.addr());
    let mock = vgs_mock::start(MockConfig::demo().with_routes(DEMO_VAULT_ID, routes(&upstream)))
        .await
        .unwrap();
    let direct = reqwest::Client::builder().no_proxy().build().unwrap();

    // Collect the card through the inbound proxy: the merchant gets aliases.
    let collected = direct
        .post(format!(
            "http://{}/save",
            mock.inbound_proxy_addr().unwrap()
        ))
        .header("content-type", "application/json")
        .body(json_body(&json!({"number": PAN, "cvc": CVC})))
        .send()
        .await
        .unwrap();
    assert_eq!(collected.status(), 200);
    let aliases: Value = serde_json::from_str(&processor.last().unwrap().body).unwrap();
    assert_ne!(aliases["number"], PAN);

    // Pay with the aliases through the outbound proxy: the processor gets the card.
    let proxy = reqwest::Proxy::all(format!("http://{}", mock.outbound_proxy_addr().unwrap()))
        .unwrap()
        .basic_auth(DEMO_V1_USERNAME, DEMO_V1_PASSWORD);
    let client = reqwest::Client::builder().proxy(proxy).build().unwrap();
    let paid = client
        .post(format!("{upstream}/pay"))
        .header("content-type", "application/json")
        .body(json_body(&aliases))
        .send()
        .await
        .unwrap();
    assert_eq!(paid.status(), 200);
    let answer: Value = serde_json::from_str(&paid.text().await.unwrap()).unwrap();
    assert_ne!(answer["token"], PROCESSOR_TOKEN, "redacted on the way back");
    let received: Value = serde_json::from_str(&processor.last().unwrap().body).unwrap();
    assert_eq!(received, json!({"number": PAN, "cvc": CVC}));
    assert_eq!(mock.stats().values_revealed, 2);

    let text = logs.text();
    assert!(text.contains("proxied"), "the proxies log at TRACE/DEBUG");
    for secret in [PAN, PROCESSOR_TOKEN] {
        assert!(!text.contains(secret), "`{secret}` in the logs");
    }
    let cvc_alone = text.match_indices(CVC).any(|(at, _)| {
        let before = text[..at].chars().next_back();
        let after = text[at + CVC.len()..].chars().next();
        !before.is_some_and(char::is_alphanumeric) && !after.is_some_and(char::is_alphanumeric)
    });
    assert!(!cvc_alone, "the CVC in the logs");
    mock.stop().await;
}
