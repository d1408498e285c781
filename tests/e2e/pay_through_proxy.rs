//! Paying with a card the orchestrator never holds, end to end: a browser posts the
//! card to the vault's inbound proxy, the orchestrator's endpoint receives aliases,
//! and the orchestrator pays through the outbound proxy as `Arc<dyn VaultProxy>` to a
//! processor over TLS (intercepted by the mock's CA, pinned by the client). The
//! processor gets the card; the test fails if any value the orchestrator handled, any
//! rendering of it, or any line this process logged at TRACE carries the card number,
//! the CVC, the processor's key or the proxy password.

use std::sync::Arc;

use serde_json::{Value, json};
use vault_core::{
    Alias, AliasFormat, CardField, ConnectorVaultId, ForwardRequest, ReportExt, VaultError,
    VaultProxy,
};
use vault_vgs::{VgsProxy, card_id_from_collected};
use vaultlink_tests::logs::LogCapture;
use vgs_mock::{
    DEMO_V1_PASSWORD, DEMO_V1_USERNAME, DEMO_VAULT_ID, MockConfig, RouteFile, StandInProcessor,
};

const PAN: &str = "5105105105105100";
const CVC: &str = "6210";
const HOLDER: &str = "Katherine Johnson";
const PROCESSOR_KEY: &str = "sk_live_e2e_7f3a91";

const TEMPLATE: &str = r#"{"amount": 1999, "card": {"number": "{{$card_number}}", "cvc": "{{$card_cvc}}", "exp_month": "{{$card_exp_month}}", "exp_year": "{{$card_exp_year}}", "name": "{{$card_holder_name}}"}}"#;

/// The repository's collect-and-pay route file (the demo's).
fn routes(endpoint: &str) -> RouteFile {
    RouteFile::parse(
        &include_str!("../../fixtures/routes/collect-and-pay.yaml")
            .replace("ORCHESTRATOR_ENDPOINT", endpoint),
    )
    .unwrap()
}

/// Where `needle` stands alone (not inside a longer run of letters or digits).
fn stands_alone(haystack: &str, needle: &str) -> bool {
    haystack.match_indices(needle).any(|(at, _)| {
        let before = haystack[..at].chars().next_back();
        let after = haystack[at + needle.len()..].chars().next();
        !before.is_some_and(char::is_alphanumeric) && !after.is_some_and(char::is_alphanumeric)
    })
}

fn assert_clean(what: &str, text: &str) {
    assert!(!text.contains(PAN), "the card number in {what}:\n{text}");
    assert!(!stands_alone(text, CVC), "the CVC in {what}:\n{text}");
    assert!(!text.contains(HOLDER), "the holder name in {what}:\n{text}");
    assert!(
        !text.contains(PROCESSOR_KEY),
        "the processor's key in {what}:\n{text}"
    );
    assert!(
        !text.contains(DEMO_V1_PASSWORD),
        "the proxy password in {what}:\n{text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_processor_gets_the_card_and_the_orchestrator_never_does() {
    let logs = LogCapture::everything();
    let endpoint = StandInProcessor::start(json!({"saved": true}), None)
        .await
        .unwrap();
    let mock = vgs_mock::start(MockConfig::demo().with_routes(
        DEMO_VAULT_ID,
        routes(&format!("http://{}", endpoint.addr())),
    ))
    .await
    .unwrap();
    let authority = mock.proxy_authority().unwrap();
    let processor = StandInProcessor::start(json!({"paid": true}), Some(authority))
        .await
        .unwrap();

    // The browser: the only party besides the vault and the processor with the card.
    let posted = reqwest::Client::builder()
        .no_proxy()
        .build()
        .unwrap()
        .post(format!(
            "http://{}/checkout",
            mock.inbound_proxy_addr().unwrap()
        ))
        .header("content-type", "application/json")
        .body(
            json!({"card_number": PAN, "card_exp_month": "03", "card_exp_year": "2033",
                   "card_cvc": CVC, "card_holder_name": HOLDER})
            .to_string(),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(posted.status(), 200);

    // The orchestrator.
    let collected = endpoint.last().unwrap().body;
    let id = card_id_from_collected(collected.as_bytes(), AliasFormat::FpeSixTFour).unwrap();
    let proxy: Arc<dyn VaultProxy> = Arc::new(
        VgsProxy::builder()
            .proxy_url(format!(
                "http://{DEMO_V1_USERNAME}:{DEMO_V1_PASSWORD}@{}",
                mock.outbound_proxy_addr().unwrap()
            ))
            .certificate(authority.certificate_pem())
            .build()
            .unwrap(),
    );
    let url = format!("https://127.0.0.1:{}/v1/charges", processor.addr().port());
    let request = ForwardRequest::new("POST", url.clone(), id.clone())
        .header("Authorization", format!("Bearer {PROCESSOR_KEY}"))
        .json(TEMPLATE);
    let answer = proxy.forward(request.clone()).await.unwrap();
    assert_eq!(answer.status, 200);
    assert_eq!(
        serde_json::from_slice::<Value>(&answer.body).unwrap()["paid"],
        true
    );

    // The processor got the card.
    let got: Value = serde_json::from_str(&processor.last().unwrap().body).unwrap();
    assert_eq!(
        got["card"],
        json!({"number": PAN, "cvc": CVC, "exp_month": "03", "exp_year": "2033", "name": HOLDER})
    );
    assert_eq!(got["amount"], 1999);

    // Everything the orchestrator handled, and every rendering of it.
    assert_clean("its endpoint's request", &collected);
    assert_clean("the id", &serde_json::to_string(&id).unwrap());
    assert_clean("renderings", &format!("{id:?} {request:?} {answer:?}"));
    let headers: Vec<String> = answer
        .headers
        .iter()
        .map(|(n, v)| format!("{n}: {v}"))
        .collect();
    assert_clean("the answer's headers", &headers.join("\n"));
    assert_clean("the answer's body", &String::from_utf8_lossy(&answer.body));

    // A card the proxy cannot put in (an alias the vault never issued) is not an
    // error the orchestrator can miss: the processor declines what it received, and
    // the answer still carries nothing of the card.
    processor.answer_with(json!({"declined": true}));
    let mut unknown = id.clone();
    if let ConnectorVaultId::Multi(fields) = &mut unknown {
        fields.get_mut(&CardField::CardNumber).unwrap().alias =
            Alias::new("5105100000000000").unwrap();
    }
    let answer = proxy
        .forward(ForwardRequest::new("POST", url.clone(), unknown).json(TEMPLATE))
        .await
        .unwrap();
    let got: Value = serde_json::from_str(&processor.last().unwrap().body).unwrap();
    assert_eq!(got["card"]["number"], "5105100000000000", "left as is");
    assert_clean(
        "the declined answer",
        &String::from_utf8_lossy(&answer.body),
    );

    // An unknown placeholder fails before anything is sent.
    let before = processor.count();
    let err = proxy
        .forward(ForwardRequest::new("POST", url, id).json(r#"{"n": "{{$card_pan}}"}"#))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), VaultError::InvalidRequest);
    assert_eq!(processor.count(), before);

    let text = logs.text();
    assert!(text.contains("vgs_forward"), "the forward span was logged");
    assert_clean("this process's TRACE logs", &text);
    mock.stop().await;
}
