//! `vaultctl forward`: a processor request through the vault's outbound proxy. The
//! body template (stdin) names card fields; `VgsProxy` fills them with the card's
//! aliases and the proxy puts the card in. This process never holds the card.

use std::sync::Arc;

use base64::Engine as _;
use serde_json::{Value, json};
use vault_core::{ConnectorVaultId, ForwardRequest, ForwardResponse, VaultProxy};

use crate::cli::{ForwardArgs, VaultArgs};
use crate::config::{Settings, proxy_builder};
use crate::ops::{parse_id_json, read_limited};
use crate::output::{Failure, print_json, say};

/// Runs `vaultctl forward`.
pub(crate) async fn forward(args: ForwardArgs) -> Result<(), Failure> {
    if args.id == "-" {
        return Err(Failure::new(
            "--id - would read the card's aliases from stdin, which carries the body template. Fix: give --id the path of the JSON `vaultctl insert --json` printed",
        ));
    }
    let id = {
        let file = std::fs::File::open(&args.id).map_err(|e| {
            Failure::new(format!(
                "cannot read --id {}: {e}. Fix: check the path",
                args.id
            ))
        })?;
        parse_id_json(&read_limited(file, &args.id)?, &args.id)?
    };
    let env = |name: &str| std::env::var(name).ok();
    let mut builder = proxy_builder(args.config.as_deref(), env)?;
    if is_cmp_card(&id) {
        let vault = VaultArgs {
            config: args.config.clone(),
            api: Some("cmp".to_owned()),
            token_store: None,
        };
        let settings = Settings::load(&vault)?;
        builder = builder.card_lookup(settings.card_lookup().await?);
    }
    let proxy: Arc<dyn VaultProxy> = Arc::new(
        builder
            .build()
            .map_err(|report| Failure::vault("the proxy settings are not usable", &report))?,
    );
    let request = request(&args, id)?;
    let answer = proxy
        .forward(request)
        .await
        .map_err(|report| Failure::vault("the request through the proxy failed", &report))?;
    if args.json {
        print_json(&answer_json(&answer));
    } else {
        print_answer(&answer);
    }
    Ok(())
}

/// A CMP card (`CRD…`): its aliases are read through CMP first.
fn is_cmp_card(id: &ConnectorVaultId) -> bool {
    matches!(id, ConnectorVaultId::Single { id, cvc: None, .. } if id.as_str().starts_with("CRD"))
}

/// The request: method, URL, `--header`s and the template from stdin, JSON unless a
/// Content-Type header says form.
fn request(args: &ForwardArgs, id: ConnectorVaultId) -> Result<ForwardRequest, Failure> {
    let mut request = ForwardRequest::new(args.method.clone(), args.url.clone(), id);
    let mut form = false;
    for (n, header) in args.headers.iter().enumerate() {
        // Not echoed: a header without its colon may be `Authorization Bearer sk_…`.
        let Some((name, value)) = header.split_once(':') else {
            return Err(Failure::new(format!(
                "--header number {} has no `:`. Fix: give it as 'Name: value'",
                n + 1
            )));
        };
        if name.trim().eq_ignore_ascii_case("content-type") {
            form = value
                .trim()
                .to_ascii_lowercase()
                .starts_with("application/x-www-form-urlencoded");
        }
        request = request.header(name.trim(), value.trim());
    }
    let template = read_limited(std::io::stdin(), "stdin")?;
    let template = String::from_utf8(template).map_err(|_| {
        Failure::new("the body template on stdin is not UTF-8 text. Fix: give the template as UTF-8 JSON or form text")
    })?;
    if !template.trim().is_empty() {
        request = if form {
            request.form(template.trim_end_matches(['\r', '\n']))
        } else {
            request.json(template)
        };
    }
    Ok(request)
}

/// `HTTP 200`, the headers, a blank line, the body.
fn print_answer(answer: &ForwardResponse) {
    say!("HTTP {}", answer.status);
    for (name, value) in &answer.headers {
        say!("{name}: {value}");
    }
    say!();
    match std::str::from_utf8(&answer.body) {
        Ok(text) => {
            use std::io::Write as _;
            let mut out = std::io::stdout().lock();
            let _ = out.write_all(text.as_bytes());
            if !text.is_empty() && !text.ends_with('\n') {
                let _ = writeln!(out);
            }
        }
        Err(_) => say!(
            "({} bytes of binary body; --json prints it as base64)",
            answer.body.len()
        ),
    }
}

/// `{"status", "headers", "vgs_request_id", "body" | "body_text" | "body_base64"}`.
fn answer_json(answer: &ForwardResponse) -> Value {
    let mut doc = json!({
        "status": answer.status,
        "headers": answer.headers.iter().map(|(n, v)| json!([n, v])).collect::<Vec<_>>(),
        "vgs_request_id": answer.request_id,
    });
    if let Ok(body) = serde_json::from_slice::<Value>(&answer.body) {
        doc["body"] = body;
    } else if let Ok(text) = std::str::from_utf8(&answer.body) {
        doc["body_text"] = Value::from(text);
    } else {
        doc["body_base64"] =
            Value::from(base64::engine::general_purpose::STANDARD.encode(&answer.body));
    }
    doc
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_answer_document_keeps_json_bodies_as_json_and_others_as_text_or_base64() {
        let json_body = ForwardResponse::new(
            402,
            vec![("content-type".into(), "application/json".into())],
            br#"{"declined":true}"#.to_vec(),
        )
        .with_request_id("req-1");
        let doc = answer_json(&json_body);
        assert_eq!(doc["status"], 402);
        assert_eq!(doc["body"]["declined"], true);
        assert_eq!(doc["vgs_request_id"], "req-1");
        assert_eq!(doc["headers"][0][1], "application/json");
        let text = answer_json(&ForwardResponse::new(200, vec![], b"ok=1".to_vec()));
        assert_eq!(text["body_text"], "ok=1");
        let binary = answer_json(&ForwardResponse::new(200, vec![], vec![0xff, 0x00]));
        assert_eq!(binary["body_base64"], "/wA=");
    }
}
