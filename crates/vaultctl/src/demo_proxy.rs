//! The demo's last step: pay with a card the orchestrator never holds. The card is
//! collected through the mock's inbound proxy (its endpoint receives aliases), then
//! paid with through the outbound proxy (`Arc<dyn VaultProxy>`) to a stand-in
//! processor over TLS that the mock's CA intercepts. The step proves it: the
//! processor got the card; none of the values the orchestrator saw and none of the
//! TRACE log lines of its calls carry the number or the CVC.

use std::collections::BTreeMap;
use std::io::Write;
use std::sync::{Arc, Mutex};

use secrecy::SecretString;
use serde_json::{Value, json};
use tracing::instrument::WithSubscriber as _;
use vault_core::{AliasFormat, Card, CardField, ConnectorVaultId, ForwardRequest, VaultProxy};
use vault_vgs::VgsProxy;
use vgs_mock::{
    DEMO_V1_PASSWORD, DEMO_V1_USERNAME, DEMO_VAULT_ID, MockConfig, RouteFile, StandInProcessor,
};

use crate::demo::step;
use crate::output::{Failure, card_label};

/// The processor request an orchestrator writes: placeholders, never card data.
const TEMPLATE: &str = r#"{"amount": 4200, "currency": "EUR", "card": {"number": "{{$card_number}}", "cvc": "{{$card_cvc}}", "exp_month": "{{$card_exp_month}}", "exp_year": "{{$card_exp_year}}", "name": "{{$card_holder_name}}"}}"#;

/// The vault's routes: inbound, the checkout form's fields become aliases before the
/// orchestrator's endpoint sees them; outbound, the processor's host gets them back.
fn routes(endpoint: &str) -> Result<RouteFile, Failure> {
    RouteFile::parse(&ROUTES.replace("ORCHESTRATOR_ENDPOINT", endpoint)).map_err(|e| {
        Failure::new(format!(
            "the demo's route file does not parse: {e}. Fix: this is a vaultlink bug; please report it"
        ))
    })
}

/// `fixtures/routes/collect-and-pay.yaml`, built in.
const ROUTES: &str = include_str!("../../../fixtures/routes/collect-and-pay.yaml");

/// Step 9. Returns the step's JSON for `--json`.
pub(crate) async fn pay_through_the_proxy(cards: &[Card], quiet: bool) -> Result<Value, Failure> {
    let bug = |what: String| {
        Failure::new(format!(
            "proxy: {what}. Fix: this is a vaultlink bug; please report it with `vaultctl -vv demo` output"
        ))
    };
    let io = |what: &str, e: std::io::Error| {
        Failure::new(format!(
            "cannot start the {what} on a loopback port: {e}. Fix: check that 127.0.0.1 is available"
        ))
    };
    let card = cards
        .iter()
        .find(|c| c.holder_name.is_some() && c.cvc.is_some() && c.number.last4() != "1111")
        .ok_or_else(|| {
            Failure::new("fixtures/cards.json has no second card with a CVC and a holder name")
        })?;
    let endpoint = StandInProcessor::start(json!({"saved": true}), None)
        .await
        .map_err(|e| io("orchestrator's card endpoint", e))?;
    let mock = vgs_mock::start(MockConfig::demo().with_routes(
        DEMO_VAULT_ID,
        routes(&format!("http://{}", endpoint.addr()))?,
    ))
    .await
    .map_err(|e| io("mock VGS", e))?;
    let (Some(inbound), Some(outbound), Some(authority)) = (
        mock.inbound_proxy_addr(),
        mock.outbound_proxy_addr(),
        mock.proxy_authority(),
    ) else {
        return Err(bug("the mock started without its proxies".to_owned()));
    };
    let processor = StandInProcessor::start(
        json!({"status": "authorized", "id": "pay_demo_1"}),
        Some(authority),
    )
    .await
    .map_err(|e| io("stand-in processor", e))?;
    step!(
        quiet,
        "9. Pay without holding the card: the mock again, with a route file (as `vaultctl mock serve --routes` takes it): an inbound proxy at http://{inbound} and an outbound proxy at http://{outbound}."
    );

    // The cardholder's browser posts the checkout form to the inbound proxy: this is
    // the only place the card travels in clear before the processor.
    let form = serde_json::to_string(&vault_core::RevealedCard(card))
        .map_err(|e| bug(format!("the card does not serialise: {e}")))?;
    let browser = reqwest::Client::builder()
        .no_proxy()
        .build()
        .map_err(|e| bug(format!("no HTTP client: {e}")))?;
    let posted = browser
        .post(format!("http://{inbound}/checkout"))
        .header("content-type", "application/json")
        .body(form)
        .send()
        .await
        .map_err(|e| bug(format!("the inbound proxy did not answer: {e}")))?;
    if !posted.status().is_success() {
        return Err(bug(format!(
            "the inbound proxy answered {}",
            posted.status()
        )));
    }

    // The orchestrator, from here on: its endpoint's request, the proxy, the answer.
    // Everything it logs at TRACE goes to `logs`.
    let logs = LogBuffer::default();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .with_writer(logs.clone())
        .finish();
    let ca = authority.certificate_pem().to_owned();
    let url = format!("https://127.0.0.1:{}/v1/payments", processor.addr().port());
    let orchestrator = async {
        tracing::trace!(target: "vaultctl::demo", "orchestrator: reading the card endpoint's request");
        let received = endpoint
            .last()
            .ok_or_else(|| bug("the card endpoint received nothing".to_owned()))?
            .body;
        let id = vault_vgs::card_id_from_collected(received.as_bytes(), AliasFormat::FpeSixTFour)
            .map_err(|r| Failure::vault("the collected form is not usable", &r))?;
        let proxy: Arc<dyn VaultProxy> = Arc::new(
            VgsProxy::builder()
                .proxy_url(format!("http://{outbound}"))
                .access_credentials(DEMO_V1_USERNAME, SecretString::from(DEMO_V1_PASSWORD.to_owned()))
                .certificate(ca)
                .build()
                .map_err(|r| Failure::vault("building the proxy client failed", &r))?,
        );
        let answer = proxy
            .forward(
                ForwardRequest::new("POST", url.clone(), id.clone())
                    .header("Idempotency-Key", "order-demo-1")
                    .json(TEMPLATE),
            )
            .await
            .map_err(|r| Failure::vault("paying through the proxy failed", &r))?;
        Ok::<_, Failure>((received, id, answer))
    }
    .with_subscriber(subscriber)
    .await;
    let (received, id, answer) = orchestrator?;

    let aliases = match &id {
        ConnectorVaultId::Multi(fields) => fields.clone(),
        ConnectorVaultId::Single { .. } => BTreeMap::new(),
    };
    let alias_of = |field| {
        aliases
            .get(&field)
            .map_or("?".to_owned(), |a| a.alias.as_str().to_owned())
    };
    step!(
        quiet,
        "   A browser posted card {} to the inbound proxy; the orchestrator's endpoint received aliases only: number {}, CVC {} (volatile), expiry and holder name as tok_sandbox_… aliases too.",
        card_label(card),
        alias_of(CardField::CardNumber),
        alias_of(CardField::CardCvc)
    );
    let answered: Value = serde_json::from_slice(&answer.body).unwrap_or(Value::Null);
    step!(
        quiet,
        "   The orchestrator sent POST {url} through the outbound proxy (Arc<dyn VaultProxy>; TLS to the processor intercepted by the mock's CA, which the client pins), the body a template of {{{{$card_…}}}} placeholders filled with those aliases:"
    );
    step!(
        quiet,
        "     processor answered {} {} (vgs-request-id {})",
        answer.status,
        answered["status"].as_str().unwrap_or("?"),
        answer.request_id.as_deref().unwrap_or("none")
    );

    // What the processor got: the card (compared, never printed).
    let got: Value = processor
        .last()
        .and_then(|r| serde_json::from_str(&r.body).ok())
        .ok_or_else(|| bug("the processor received no JSON".to_owned()))?;
    let number = card.number.expose_secret();
    let cvc = card
        .cvc
        .as_ref()
        .map(|c| c.expose_secret().to_owned())
        .unwrap_or_default();
    let received_card = got["card"]["number"] == number
        && got["card"]["cvc"] == cvc.as_str()
        && got["card"]["exp_month"] == card.exp_month.two_digits()
        && got["card"]["exp_year"]
            .as_str()
            .and_then(|y| y.parse::<u16>().ok())
            == Some(card.exp_year.get())
        && got["card"]["name"]
            == card
                .holder_name
                .as_ref()
                .map(|h| h.expose_secret())
                .unwrap_or_default();
    if !received_card {
        return Err(bug(
            "the processor did not receive the collected card".to_owned()
        ));
    }
    step!(
        quiet,
        "     the stand-in processor received the card itself: number, CVC, expiry and holder name equal to what the browser posted."
    );

    // And the orchestrator never held it.
    let id_text = serde_json::to_string(&id).unwrap_or_default();
    let seen: Vec<String> = std::iter::once(received.clone())
        .chain(std::iter::once(id_text))
        .chain(std::iter::once(answer.status.to_string()))
        .chain(answer.headers.iter().map(|(n, v)| format!("{n}: {v}")))
        .chain(std::iter::once(
            String::from_utf8_lossy(&answer.body).into_owned(),
        ))
        .collect();
    let log_text = logs.text();
    let log_lines = log_text.lines().count();
    let carries = |text: &str| text.contains(number) || stands_alone(text, &cvc);
    let values_with_card = seen.iter().filter(|v| carries(v)).count();
    let lines_with_card = log_text.lines().filter(|l| carries(l)).count();
    if log_lines == 0 {
        return Err(bug(
            "no TRACE log line was captured from the orchestrator's calls".to_owned(),
        ));
    }
    if values_with_card + lines_with_card > 0 {
        return Err(bug(format!(
            "the orchestrator saw the card: {values_with_card} values, {lines_with_card} log lines"
        )));
    }
    step!(
        quiet,
        "   The orchestrator never held the number: 0 of the {} values it saw (its endpoint's request, the card's id, the processor's status, headers and body) and 0 of the {} TRACE log lines its calls wrote (on its own tasks; hyper's connection tasks log elsewhere) carry the card number or the CVC.",
        seen.len(),
        log_lines
    );
    let stats = mock.stats();
    let result = json!({
        "inbound_proxy": format!("http://{inbound}"),
        "outbound_proxy": format!("http://{outbound}"),
        "aliases": crate::output::id_json(&id),
        "processor_status": answer.status,
        "processor_answer": answered,
        "vgs_request_id": answer.request_id,
        "processor_received_card": received_card,
        "values_seen": seen.len(),
        "values_with_card": values_with_card,
        "trace_log_lines": log_lines,
        "log_lines_with_card": lines_with_card,
        "values_redacted": stats.values_redacted,
        "values_revealed": stats.values_revealed,
    });
    mock.stop().await;
    Ok(result)
}

/// Where `needle` stands alone (not inside a longer run of letters or digits): a short
/// CVC inside a random alias or a port is not the CVC.
fn stands_alone(haystack: &str, needle: &str) -> bool {
    !needle.is_empty()
        && haystack.match_indices(needle).any(|(at, _)| {
            let before = haystack[..at].chars().next_back();
            let after = haystack[at + needle.len()..].chars().next();
            !before.is_some_and(char::is_alphanumeric) && !after.is_some_and(char::is_alphanumeric)
        })
}

/// Log lines written to memory.
#[derive(Clone, Default)]
struct LogBuffer(Arc<Mutex<Vec<u8>>>);

impl LogBuffer {
    fn text(&self) -> String {
        let bytes = self.0.lock().map(|b| b.clone()).unwrap_or_default();
        String::from_utf8_lossy(&bytes).into_owned()
    }
}

impl Write for LogBuffer {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if let Ok(mut bytes) = self.0.lock() {
            bytes.extend_from_slice(buf);
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for LogBuffer {
    type Writer = LogBuffer;

    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}
