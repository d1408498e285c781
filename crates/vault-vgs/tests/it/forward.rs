//! `VgsProxy` against vgs-mock's outbound proxy and a stand-in processor: the processor
//! receives the card, the connector only ever sent aliases; http and https (TLS
//! intercepted by the mock's CA, pinned); JSON and form templates; a template that
//! cannot be filled fails before anything is sent; the proxy's own failures (407, no
//! route, 429, 5xx) are errors, the processor's answers are answers; retries only
//! where safe; CMP cards through a lookup that sees aliases only.

use std::sync::Arc;
use std::time::Duration;

use secrecy::SecretString;
use serde_json::{Value, json};
use vault_core::{
    ConnectorVaultId, ExternalVault, ForwardRequest, InsertRequest, ReportExt, TokenizationMode,
    VaultError, VaultProxy,
};
use vault_vgs::{CmpConnector, RetryPolicy, VgsProxy, VgsProxyBuilder};
use vgs_mock::{
    DEMO_CMP_CLIENT_ID, DEMO_CMP_CLIENT_SECRET, DEMO_V1_PASSWORD, DEMO_V1_USERNAME, DEMO_VAULT_ID,
    FailWith, MockConfig, MockHandle, Route, RouteFile, StandInProcessor,
};

use crate::support::{card, connector, mock_with};

const PAN: &str = "4111111111111111";

/// An outbound route for 127.0.0.1 revealing the card's fields where the template
/// below puts them.
fn routes() -> RouteFile {
    RouteFile::parse(
        r#"
version: 1
data:
- type: rule_chain
  attributes:
    protocol: http
    destination_override_endpoint: '*'
    host_endpoint: 127\.0\.0\.1
    entries:
    - {phase: REQUEST, operation: REVEAL, transformer: JSON_PATH, transformer_config: [$.card.number, $.card.exp_month, $.card.exp_year]}
    - {phase: REQUEST, operation: REVEAL, token_manager: VOLATILE, transformer: JSON_PATH, transformer_config: [$.card.cvc]}
    - {phase: REQUEST, operation: REVEAL, transformer: FORM_FIELD, transformer_config: [number]}
"#,
    )
    .expect("routes")
}

const TEMPLATE: &str = r#"{"amount": 1250, "card": {"number": "{{$card_number}}", "cvc": "{{$card_cvc}}", "exp_month": "{{$card_exp_month}}", "exp_year": "{{$card_exp_year}}"}}"#;

async fn setup() -> (MockHandle, StandInProcessor) {
    let mock = mock_with(MockConfig::demo().with_routes(DEMO_VAULT_ID, routes())).await;
    let processor = StandInProcessor::start(json!({"status": "authorized"}), None)
        .await
        .unwrap();
    (mock, processor)
}

fn builder(mock: &MockHandle) -> VgsProxyBuilder {
    VgsProxy::builder()
        .proxy_url(format!("http://{}", mock.outbound_proxy_addr().unwrap()))
        .access_credentials(
            DEMO_V1_USERNAME,
            SecretString::from(DEMO_V1_PASSWORD.to_owned()),
        )
        .certificate(mock.proxy_authority().unwrap().certificate_pem())
        .retry(RetryPolicy {
            base_backoff: Duration::from_millis(1),
            max_backoff: Duration::from_millis(5),
            ..RetryPolicy::default()
        })
}

fn proxy(mock: &MockHandle) -> Arc<dyn VaultProxy> {
    Arc::new(builder(mock).build().expect("proxy"))
}

async fn stored(mock: &MockHandle) -> ConnectorVaultId {
    connector(mock)
        .insert(InsertRequest::card(card()))
        .await
        .expect("insert")
        .connector_vault_id
}

fn pay(processor: &StandInProcessor, id: ConnectorVaultId) -> ForwardRequest {
    ForwardRequest::new(
        "POST",
        format!("http://{}/v1/payments", processor.addr()),
        id,
    )
    .header("Authorization", "Bearer processor-key")
    .header("Idempotency-Key", "order-42")
    .json(TEMPLATE)
}

#[tokio::test]
async fn the_processor_receives_the_card_while_the_connector_sends_only_aliases() {
    let (mock, processor) = setup().await;
    let id = stored(&mock).await;
    let answer = proxy(&mock)
        .forward(pay(&processor, id.clone()))
        .await
        .expect("forward");
    assert_eq!(answer.status, 200);
    assert_eq!(
        serde_json::from_slice::<Value>(&answer.body).unwrap()["status"],
        "authorized"
    );
    assert!(answer.request_id.is_some(), "VGS's request id");
    assert_eq!(answer.header("x-processor"), Some("stand-in"));
    let got: Value = serde_json::from_str(&processor.last().unwrap().body).unwrap();
    assert_eq!(got["card"]["number"], PAN);
    assert_eq!(got["card"]["cvc"], "123");
    assert_eq!(got["card"]["exp_month"], "04");
    assert_eq!(got["card"]["exp_year"], "2030");
    assert_eq!(got["amount"], 1250);
    // What left the connector: the aliases (the mock's proxy counted them revealed).
    assert_eq!(mock.stats().values_revealed, 4);
    let rendered = format!("{answer:?} {:?}", pay(&processor, id));
    assert!(
        !rendered.contains(PAN) && !rendered.contains("processor-key"),
        "{rendered}"
    );
}

#[tokio::test]
async fn https_processors_are_reached_through_the_intercepting_ca_which_is_pinned() {
    let (mock, _) = setup().await;
    let processor = StandInProcessor::start(json!({"ok": true}), mock.proxy_authority())
        .await
        .unwrap();
    let id = stored(&mock).await;
    let request = ForwardRequest::new(
        "POST",
        format!("https://127.0.0.1:{}/pay", processor.addr().port()),
        id.clone(),
    )
    .json(TEMPLATE);
    let answer = proxy(&mock)
        .forward(request.clone())
        .await
        .expect("forward");
    assert_eq!(answer.status, 200);
    let got: Value = serde_json::from_str(&processor.last().unwrap().body).unwrap();
    assert_eq!(got["card"]["number"], PAN);

    // Without the CA, an https processor is refused before anything is sent.
    let no_ca = VgsProxy::builder()
        .proxy_url(format!("http://{}", mock.outbound_proxy_addr().unwrap()))
        .access_credentials(
            DEMO_V1_USERNAME,
            SecretString::from(DEMO_V1_PASSWORD.to_owned()),
        )
        .build()
        .unwrap();
    let err = no_ca.forward(request.clone()).await.expect_err("no CA");
    assert_eq!(err.kind(), VaultError::InvalidConfig);
    // With another CA pinned, the intercepted TLS is not trusted.
    let other = vgs_mock::CertificateAuthority::generate("another CA").unwrap();
    let wrong_ca = builder(&mock)
        .certificate(other.certificate_pem())
        .build()
        .unwrap();
    // (The URL's query stands for a processor key: it never shows in an error.)
    let with_query = ForwardRequest::new(
        "POST",
        format!(
            "https://127.0.0.1:{}/pay?key=sk_url_secret",
            processor.addr().port()
        ),
        id,
    )
    .json(TEMPLATE);
    let err = wrong_ca
        .forward(with_query.clone())
        .await
        .expect_err("not trusted");
    assert_eq!(err.kind(), VaultError::Transport, "{}", err.summary());
    assert!(
        !err.summary().contains("sk_url_secret"),
        "{}",
        err.summary()
    );
    // Wrong access credentials: the proxy refuses the CONNECT with 407.
    let wrong_password = builder(&mock)
        .access_credentials(DEMO_V1_USERNAME, SecretString::from("wrong".to_owned()))
        .build()
        .unwrap();
    let err = wrong_password
        .forward(with_query)
        .await
        .expect_err("407 to CONNECT");
    assert_eq!(
        err.kind(),
        VaultError::InvalidCredentials,
        "{}",
        err.summary()
    );
    assert_eq!(err.attempt(), Some(1), "not retried");
    assert!(
        !err.summary().contains("sk_url_secret"),
        "{}",
        err.summary()
    );
    assert_eq!(processor.count(), 1, "only the trusted request reached it");
}

#[tokio::test]
async fn form_templates_are_filled_and_percent_encoded() {
    let (mock, processor) = setup().await;
    let id = stored(&mock).await;
    let request = ForwardRequest::new("POST", format!("http://{}/charge", processor.addr()), id)
        .form("amount=10&number={{$card_number}}&note=a+b");
    proxy(&mock).forward(request).await.expect("forward");
    let got = processor.last().unwrap();
    assert_eq!(got.body, format!("amount=10&number={PAN}&note=a+b"));
    assert_eq!(got.content_type, "application/x-www-form-urlencoded");
}

#[tokio::test]
async fn a_template_that_cannot_be_filled_fails_before_anything_is_sent() {
    let (mock, processor) = setup().await;
    let id = stored(&mock).await;
    let url = format!("http://{}/pay", processor.addr());
    let proxy = proxy(&mock);
    for (template, says) in [
        (r#"{"pin": "{{$card_pin}}"}"#, "not a card field"),
        (
            r#"{"name": "{{$card_holder_name}}"}"#,
            "no alias for card_holder_name",
        ),
        (r#"{"number": {{$card_number}}"#, "not JSON once filled"),
        (r#"{"number": "{{$card_number"}"#, "without its closing"),
    ] {
        let err = proxy
            .forward(ForwardRequest::new("POST", url.clone(), id.clone()).json(template))
            .await
            .expect_err(template);
        assert_eq!(err.kind(), VaultError::InvalidRequest, "{template}");
        assert!(
            err.summary().contains(says),
            "{template}: {}",
            err.summary()
        );
    }
    let single = connector(&mock)
        .insert(InsertRequest::card(card()).with_mode(TokenizationMode::SingleId))
        .await
        .unwrap()
        .connector_vault_id;
    let err = proxy
        .forward(ForwardRequest::new("POST", url.clone(), single).json(TEMPLATE))
        .await
        .expect_err("single id");
    assert!(
        err.summary().contains("field by field"),
        "{}",
        err.summary()
    );
    let err = proxy
        .forward(ForwardRequest::new("POST", "http://processor.example/pay", id).json(TEMPLATE))
        .await
        .expect_err("http off loopback");
    assert!(err.summary().contains("must be https"), "{}", err.summary());
    assert_eq!(processor.count(), 0);
    assert_eq!(
        mock.stats().proxied_requests,
        0,
        "nothing reached the proxy"
    );
}

#[tokio::test]
async fn the_proxys_own_failures_are_errors_and_the_processors_answers_are_answers() {
    let (mock, processor) = setup().await;
    let id = stored(&mock).await;
    let proxy = proxy(&mock);
    // 407: wrong access credentials.
    let wrong = builder(&mock)
        .access_credentials(DEMO_V1_USERNAME, SecretString::from("wrong".to_owned()))
        .build()
        .unwrap();
    let err = wrong
        .forward(pay(&processor, id.clone()))
        .await
        .expect_err("407");
    assert_eq!(err.kind(), VaultError::InvalidCredentials);
    assert_eq!(err.http_status(), Some(407));
    assert!(err.trace_id().is_some(), "the proxy's request id");
    // No route for the host: refused by the proxy.
    let unrouted = mock_with(MockConfig::demo().with_routes(
        DEMO_VAULT_ID,
        RouteFile::parse("version: 1\ndata:\n- type: rule_chain\n  attributes:\n    protocol: http\n    destination_override_endpoint: '*'\n    host_endpoint: api\\.processor\\.test\n    entries: []\n").unwrap(),
    ))
    .await;
    let id2 = stored(&unrouted).await;
    let err = self::proxy(&unrouted)
        .forward(pay(&processor, id2))
        .await
        .expect_err("no route");
    assert_eq!(err.kind(), VaultError::InvalidConfig);
    assert!(
        err.summary().contains("no outbound route"),
        "{}",
        err.summary()
    );
    // 429 from the proxy: refused before forwarding, so even a POST is sent again.
    mock.fail_next(Route::OutboundProxy, 1, FailWith::Status(429));
    proxy
        .forward(pay(&processor, id.clone()))
        .await
        .expect("retried after 429");
    // A 5xx of the proxy: a POST that may have gone on is not sent again…
    let before = processor.count();
    mock.fail_next(Route::OutboundProxy, 1, FailWith::Status(503));
    let err = proxy
        .forward(pay(&processor, id.clone()))
        .await
        .expect_err("503");
    assert_eq!(err.kind(), VaultError::ForwardOutcomeUnknown);
    assert!(
        !err.kind().is_retryable(),
        "a caller's retry loop must not resend it"
    );
    assert_eq!(err.attempt(), Some(1));
    assert!(
        err.summary().contains("not sent again"),
        "{}",
        err.summary()
    );
    // … a GET is.
    mock.fail_next(Route::OutboundProxy, 1, FailWith::Status(503));
    let get = ForwardRequest::new(
        "GET",
        format!("http://{}/status", processor.addr()),
        id.clone(),
    );
    assert_eq!(proxy.forward(get).await.expect("retried GET").status, 200);
    assert_eq!(
        processor.count(),
        before + 1,
        "only the GET's second attempt arrived"
    );
    // The processor's own 500, 429 and 402 are its answers, returned as they are,
    // never retried: only the proxy's own failures are errors.
    let failing = StandInProcessor::start(json!({"error": "declined"}), None)
        .await
        .unwrap();
    for status in [500, 429, 402] {
        failing.answer_with_status(status, json!({"error": status}));
        let before = failing.count();
        let request =
            ForwardRequest::new("POST", format!("http://{}/pay", failing.addr()), id.clone())
                .json(TEMPLATE);
        let answer = proxy
            .forward(request)
            .await
            .expect("the processor answered");
        assert_eq!(answer.status, status);
        let upstream = status.to_string();
        assert_eq!(
            answer.header("vgs-upstream-status-code"),
            Some(upstream.as_str())
        );
        assert_eq!(failing.count(), before + 1, "sent once");
    }
}

#[tokio::test]
async fn a_refusal_a_dropped_connection_and_an_oversized_answer_are_typed() {
    let (mock, processor) = setup().await;
    let id = stored(&mock).await;
    let proxy = proxy(&mock);
    // Another 4xx of the proxy itself: the request is refused, not retried.
    mock.fail_next(Route::OutboundProxy, 1, FailWith::Status(400));
    let err = proxy
        .forward(pay(&processor, id.clone()))
        .await
        .expect_err("400");
    assert_eq!(err.kind(), VaultError::InvalidRequest);
    assert_eq!(err.http_status(), Some(400));
    assert_eq!(processor.count(), 0);
    // A dropped connection after the request went out: a POST is not sent again.
    mock.fail_next(Route::OutboundProxy, 1, FailWith::Reset);
    let err = proxy
        .forward(pay(&processor, id.clone()))
        .await
        .expect_err("reset");
    assert_eq!(err.kind(), VaultError::ForwardOutcomeUnknown);
    assert_eq!(err.attempt(), Some(1));
    assert!(
        err.summary().contains("not sent again"),
        "{}",
        err.summary()
    );
    // An answer over the cap is refused, whatever the processor meant.
    processor.answer_with(json!({"padding": "x".repeat(300)}));
    let small = builder(&mock).max_response_bytes(256).build().unwrap();
    let err = small
        .forward(pay(&processor, id))
        .await
        .expect_err("oversized");
    // The processor answered a POST whose answer cannot be read: the payment may have
    // been made, so it is not an error a caller may simply retry.
    assert_eq!(err.kind(), VaultError::ForwardOutcomeUnknown);
    assert_eq!(err.http_status(), Some(200));
    assert!(err.trace_id().is_some(), "VGS's request id");
    assert!(
        err.summary().contains("256-byte limit"),
        "{}",
        err.summary()
    );
}

#[tokio::test]
async fn cmp_cards_are_forwarded_through_a_lookup_that_sees_aliases_only() {
    let (mock, processor) = setup().await;
    let cmp = |scopes: &[&str]| {
        CmpConnector::builder()
            .credentials(DEMO_CMP_CLIENT_ID, DEMO_CMP_CLIENT_SECRET.to_owned().into())
            .vault_id(DEMO_VAULT_ID)
            .endpoint(mock.base_url())
            .scopes(scopes.iter().copied())
            .build()
            .unwrap()
    };
    let stored = cmp(&[])
        .insert(InsertRequest::card(card()))
        .await
        .expect("CMP insert");
    let proxy = builder(&mock)
        .card_lookup(cmp(&["cards:read"]))
        .build()
        .expect("proxy");
    proxy
        .forward(pay(&processor, stored.connector_vault_id.clone()))
        .await
        .expect("forward");
    let got: Value = serde_json::from_str(&processor.last().unwrap().body).unwrap();
    assert_eq!(
        got["card"]["number"], PAN,
        "CMP's PAN alias revealed by the proxy"
    );
    assert_eq!(got["card"]["exp_month"], "04");
    // A lookup that could read the card in clear is refused when the proxy is built.
    for scopes in [&[][..], &["cards:read", "cards:read-pci"][..]] {
        let err = builder(&mock)
            .card_lookup(cmp(scopes))
            .build()
            .expect_err("PCI lookup");
        assert!(err.summary().contains("cards:read"), "{}", err.summary());
    }
}
