//! `vaultctl forward` as an orchestrator's process would run it: the card is collected
//! through `vaultctl mock serve --routes`'s inbound proxy (the orchestrator's endpoint
//! gets aliases), then paid with through its outbound proxy; the stand-in processor
//! gets the card, while vaultctl's stdout and stderr at TRACE hold no card value, no
//! access password and no header value. The proxy's failures are one line with the
//! fix, and a template that cannot be filled sends nothing.

use std::io::BufRead as _;
use std::process::Output;

use serde_json::{Value, json};
use vault_core::ConnectorVaultId;
use vgs_mock::StandInProcessor;

use crate::support::{
    MockServer, TempDir, assert_one_line_failure, assert_success, run, stderr, stdout, vaultctl,
};

const PAN: &str = "6011111111111117";
const CVC: &str = "9052";
const PROCESSOR_KEY: &str = "sk_processor_5d1f0e";

const TEMPLATE: &str = r#"{"amount": 990, "card": {"number": "{{$card_number}}", "cvc": "{{$card_cvc}}", "exp_month": "{{$card_exp_month}}", "exp_year": "{{$card_exp_year}}"}}"#;

/// Outbound: 127.0.0.1 processors get the card revealed where the template puts it.
/// Inbound: the orchestrator's collect endpoint gets the posted card as aliases.
fn routes(collect_upstream: &str) -> String {
    format!(
        r#"
version: 1
data:
- type: rule_chain
  attributes:
    protocol: http
    destination_override_endpoint: '*'
    host_endpoint: 127\.0\.0\.1
    entries:
    - {{phase: REQUEST, operation: REVEAL, transformer: JSON_PATH, transformer_config: [$.card.number, $.card.exp_month, $.card.exp_year]}}
    - {{phase: REQUEST, operation: REVEAL, token_manager: VOLATILE, transformer: JSON_PATH, transformer_config: [$.card.cvc]}}
    - {{phase: REQUEST, operation: REVEAL, transformer: FORM_FIELD, transformer_config: [number]}}
- type: rule_chain
  attributes:
    protocol: http
    destination_override_endpoint: {collect_upstream}
    entries:
    - {{phase: REQUEST, operation: REDACT, public_token_generator: FPE_SIX_T_FOUR, transformer: JSON_PATH, transformer_config: [$.card_number]}}
    - {{phase: REQUEST, operation: REDACT, transformer: JSON_PATH, transformer_config: [$.card_exp_month, $.card_exp_year]}}
    - {{phase: REQUEST, operation: REDACT, token_manager: VOLATILE, transformer: JSON_PATH, transformer_config: [$.card_cvc]}}
"#
    )
}

/// The mock with the routes, and its proxies' addresses from its second and third
/// stdout lines: (outbound URL with credentials, CA file, inbound URL).
struct Proxies {
    _mock: MockServer,
    outbound: String,
    inbound: String,
    _dir: TempDir,
}

fn start(collect: &StandInProcessor, name: &str) -> Proxies {
    let dir = TempDir::new(name);
    let file = dir.path("routes.yaml");
    std::fs::write(&file, routes(&format!("http://{}", collect.addr()))).unwrap();
    let mut mock = MockServer::start_with(&["--routes", file.to_str().unwrap()]);
    let mut line = String::new();
    mock.stdout.read_line(&mut line).unwrap();
    let outbound = line
        .strip_prefix("outbound proxy: ")
        .and_then(|rest| rest.split(' ').next())
        .unwrap_or_else(|| panic!("second line: {line}"))
        .to_owned();
    let mut line = String::new();
    mock.stdout.read_line(&mut line).unwrap();
    let inbound = line
        .strip_prefix("inbound proxy: ")
        .and_then(|rest| rest.split(' ').next())
        .unwrap_or_else(|| panic!("third line: {line}"))
        .to_owned();
    Proxies {
        _mock: mock,
        outbound,
        inbound,
        _dir: dir,
    }
}

/// The cardholder's browser posts the card to the inbound proxy; returns the card's
/// id as the orchestrator builds it from the aliases its endpoint received.
async fn collect(proxies: &Proxies, endpoint: &StandInProcessor) -> ConnectorVaultId {
    let posted = reqwest::Client::builder()
        .no_proxy()
        .build()
        .unwrap()
        .post(format!("{}/cards", proxies.inbound))
        .header("content-type", "application/json")
        .body(
            json!({"card_number": PAN, "card_cvc": CVC, "card_exp_month": "08", "card_exp_year": "2031"})
                .to_string(),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(posted.status(), 200);
    vault_vgs::card_id_from_collected(
        endpoint.last().unwrap().body.as_bytes(),
        vault_core::AliasFormat::FpeSixTFour,
    )
    .unwrap()
}

/// `vaultctl forward` at TRACE with the proxy from the environment, off the runtime's
/// threads (the processor answers on them meanwhile).
async fn forward(proxies: &Proxies, args: Vec<String>, template: &str) -> Output {
    forward_logging(proxies, args, template, "trace").await
}

/// [`forward`] with vaultctl's default logs (errors only: one line on failure).
async fn forward_quiet(proxies: &Proxies, args: Vec<String>, template: &str) -> Output {
    forward_logging(proxies, args, template, "error").await
}

async fn forward_logging(
    proxies: &Proxies,
    args: Vec<String>,
    template: &str,
    level: &'static str,
) -> Output {
    let outbound = proxies.outbound.clone();
    let template = template.to_owned();
    tokio::task::spawn_blocking(move || {
        run(
            vaultctl()
                .env("RUST_LOG", level)
                .env("VGS_PROXY_URL", outbound)
                .arg("forward")
                .args(args),
            &template,
        )
    })
    .await
    .unwrap()
}

fn write_id(dir: &TempDir, id: &ConnectorVaultId) -> String {
    let path = dir.path("card.json");
    std::fs::write(&path, serde_json::to_string(id).unwrap()).unwrap();
    path.to_str().unwrap().to_owned()
}

/// Where `needle` stands alone (not inside a longer run of letters or digits).
fn stands_alone(haystack: &str, needle: &str) -> bool {
    haystack.match_indices(needle).any(|(at, _)| {
        let before = haystack[..at].chars().next_back();
        let after = haystack[at + needle.len()..].chars().next();
        !before.is_some_and(char::is_alphanumeric) && !after.is_some_and(char::is_alphanumeric)
    })
}

fn assert_nothing_secret(output: &Output) {
    let text = format!("{}\n{}", stdout(output), stderr(output));
    assert!(!text.contains(PAN), "the card number in:\n{text}");
    assert!(!stands_alone(&text, CVC), "the CVC in:\n{text}");
    assert!(
        !text.contains("demo-password"),
        "the access password in:\n{text}"
    );
    assert!(!text.contains(PROCESSOR_KEY), "a header value in:\n{text}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_card_collected_as_aliases_is_paid_with_and_the_process_never_sees_it() {
    let endpoint = StandInProcessor::start(json!({"saved": true}), None)
        .await
        .unwrap();
    let processor = StandInProcessor::start(json!({"status": "authorized", "id": "pay_1"}), None)
        .await
        .unwrap();
    let proxies = start(&endpoint, "forward-pay");
    let id = collect(&proxies, &endpoint).await;
    let collected = endpoint.last().unwrap().body;
    assert!(!collected.contains(PAN) && !stands_alone(&collected, CVC));

    let dir = TempDir::new("forward-pay-id");
    let args = vec![
        "--id".to_owned(),
        write_id(&dir, &id),
        "--url".to_owned(),
        format!("http://{}/v1/payments", processor.addr()),
        "-H".to_owned(),
        format!("Authorization: Bearer {PROCESSOR_KEY}"),
    ];
    let output = forward(&proxies, args.clone(), TEMPLATE).await;
    assert_success(&output);
    let out = stdout(&output);
    assert!(out.starts_with("HTTP 200\n"), "{out}");
    assert!(out.contains("\"authorized\""), "{out}");
    assert!(
        out.to_ascii_lowercase().contains("vgs-request-id: "),
        "{out}"
    );
    assert!(
        stderr(&output).contains("TRACE") || stderr(&output).contains("DEBUG"),
        "logs were on: {}",
        stderr(&output)
    );
    assert_nothing_secret(&output);
    // The processor got the card, in the template's shape, with its credentials.
    let got: Value = serde_json::from_str(&processor.last().unwrap().body).unwrap();
    assert_eq!(got["card"]["number"], PAN);
    assert_eq!(got["card"]["cvc"], CVC);
    assert_eq!(got["card"]["exp_month"], "08");
    assert_eq!(got["card"]["exp_year"], "2031");
    assert_eq!(got["amount"], 990);

    // --json: one document with the processor's answer.
    let mut json_args = args.clone();
    json_args.push("--json".to_owned());
    let output = forward(&proxies, json_args, TEMPLATE).await;
    assert_success(&output);
    let doc: Value = serde_json::from_str(&stdout(&output)).unwrap();
    assert_eq!(doc["status"], 200);
    assert_eq!(doc["body"]["id"], "pay_1");
    assert!(doc["vgs_request_id"].is_string(), "{doc}");
    assert_nothing_secret(&output);

    // A form body: the alias percent-encoded, revealed by the FORM_FIELD filter.
    let mut form_args = args.clone();
    form_args.extend([
        "-H".to_owned(),
        "Content-Type: application/x-www-form-urlencoded".to_owned(),
    ]);
    let output = forward(&proxies, form_args, "amount=990&number={{$card_number}}\n").await;
    assert_success(&output);
    assert_eq!(
        processor.last().unwrap().body,
        format!("amount=990&number={PAN}")
    );
    assert_nothing_secret(&output);
    assert_eq!(processor.count(), 3);
}

#[tokio::test(flavor = "multi_thread")]
async fn proxy_failures_are_one_line_with_the_fix_and_a_bad_template_sends_nothing() {
    let endpoint = StandInProcessor::start(json!({"saved": true}), None)
        .await
        .unwrap();
    let processor = StandInProcessor::start(json!({"status": "authorized"}), None)
        .await
        .unwrap();
    let proxies = start(&endpoint, "forward-fail");
    let id = collect(&proxies, &endpoint).await;
    let dir = TempDir::new("forward-fail-id");
    let id_file = write_id(&dir, &id);
    let url = format!("http://{}/v1/payments", processor.addr());
    let args = |url: &str| {
        vec![
            "--id".to_owned(),
            id_file.clone(),
            "--url".to_owned(),
            url.to_owned(),
        ]
    };

    // A placeholder that is not a card field: nothing is sent.
    let output = forward_quiet(&proxies, args(&url), r#"{"n": "{{$card_numbr}}"}"#).await;
    let line = assert_one_line_failure(&output);
    assert!(line.contains("card_numbr"), "{line}");
    // A field the card does not have (no holder name was collected).
    let output = forward_quiet(&proxies, args(&url), r#"{"n": "{{$card_holder_name}}"}"#).await;
    let line = assert_one_line_failure(&output);
    assert!(line.contains("card_holder_name"), "{line}");
    assert_eq!(processor.count(), 0, "nothing reached the processor");

    // No route serves `localhost`: the proxy's 404, not the processor's.
    let elsewhere = format!("http://localhost:{}/v1/payments", processor.addr().port());
    let output = forward_quiet(&proxies, args(&elsewhere), TEMPLATE).await;
    let line = assert_one_line_failure(&output);
    assert!(line.contains("no outbound route"), "{line}");
    assert_eq!(processor.count(), 0);

    // Wrong access credentials: 407.
    let wrong = proxies
        .outbound
        .replace("demo-password", "not-the-password");
    let output = tokio::task::spawn_blocking({
        let id_file = id_file.clone();
        let url = url.clone();
        move || {
            run(
                vaultctl()
                    .env("VGS_PROXY_URL", wrong)
                    .args(["forward", "--id", &id_file, "--url", &url]),
                TEMPLATE,
            )
        }
    })
    .await
    .unwrap();
    let line = assert_one_line_failure(&output);
    assert!(line.contains("access credentials"), "{line}");
    assert!(!line.contains("not-the-password"), "{line}");
    assert_eq!(processor.count(), 0);

    // No proxy configured at all: says which variables to set.
    let output = tokio::task::spawn_blocking({
        let id_file = id_file.clone();
        move || {
            run(
                vaultctl().args(["forward", "--id", &id_file, "--url", "https://x.example/"]),
                "",
            )
        }
    })
    .await
    .unwrap();
    let line = assert_one_line_failure(&output);
    assert!(line.contains("VGS_PROXY_URL"), "{line}");
}
