//! Paying through the vault's proxy: `VaultProxy` sends a processor request whose
//! body names card fields (`{{$card_number}}`, …); the connector fills them with the
//! card's **aliases** and the vault's outbound proxy swaps those for the card in
//! flight, so the orchestrator never holds the card. Plain types only: no HTTP here.

use std::fmt;

use async_trait::async_trait;

use crate::error::VaultResult;
use crate::flow::{CardField, ConnectorVaultId};

/// Sends processor requests through a vault's outbound proxy, as
/// `Arc<dyn VaultProxy>`.
#[async_trait]
pub trait VaultProxy: Send + Sync {
    /// Fills the body template's placeholders with the card's aliases and sends the
    /// request through the proxy. The answer is the processor's (any status); a
    /// failure of the proxy itself (its credentials, no route, its rate limit, its own
    /// errors) or of the way there is an error.
    async fn forward(&self, request: ForwardRequest) -> VaultResult<ForwardResponse>;
}

/// How a body template is written, which decides how aliases are escaped in it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum BodyEncoding {
    /// JSON: placeholders sit inside JSON strings (`"number": "{{$card_number}}"`); the
    /// aliases are escaped as JSON string content, and the filled body must be JSON.
    Json,
    /// `application/x-www-form-urlencoded`: the aliases are percent-encoded.
    Form,
}

impl BodyEncoding {
    /// The `Content-Type` of a body in this encoding.
    pub const fn content_type(&self) -> &'static str {
        match self {
            BodyEncoding::Json => "application/json",
            BodyEncoding::Form => "application/x-www-form-urlencoded",
        }
    }
}

/// A processor request to send through the proxy.
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ForwardRequest {
    /// The HTTP method (`POST`).
    pub method: String,
    /// The processor's URL (`https://api.processor.example/v1/payments`).
    pub url: String,
    /// Headers for the processor (`Authorization` of the processor, `Idempotency-Key`…).
    pub headers: Vec<(String, String)>,
    /// The body template and its encoding, if the request has a body.
    pub body: Option<(BodyEncoding, String)>,
    /// The card whose aliases fill the template.
    pub connector_vault_id: ConnectorVaultId,
}

impl ForwardRequest {
    /// A request without a body.
    pub fn new(
        method: impl Into<String>,
        url: impl Into<String>,
        connector_vault_id: ConnectorVaultId,
    ) -> Self {
        ForwardRequest {
            method: method.into(),
            url: url.into(),
            headers: Vec::new(),
            body: None,
            connector_vault_id,
        }
    }

    /// Adds a header.
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// Sets a JSON body template.
    pub fn json(mut self, template: impl Into<String>) -> Self {
        self.body = Some((BodyEncoding::Json, template.into()));
        self
    }

    /// Sets a form-urlencoded body template.
    pub fn form(mut self, template: impl Into<String>) -> Self {
        self.body = Some((BodyEncoding::Form, template.into()));
        self
    }
}

impl fmt::Debug for ForwardRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Header values may carry the processor's credentials: names only.
        let names: Vec<&str> = self.headers.iter().map(|(name, _)| name.as_str()).collect();
        f.debug_struct("ForwardRequest")
            .field("method", &self.method)
            .field("url", &without_secrets(&self.url))
            .field("headers", &names)
            .field("body", &self.body.as_ref().map(|(e, t)| (e, t.len())))
            .field("connector_vault_id", &self.connector_vault_id)
            .finish()
    }
}

/// A URL without what may be secret in it: credentials before the host
/// (`https://sk_live_…@api…`), the query and the fragment.
pub fn without_secrets(url: &str) -> String {
    let url = url.trim();
    let end = url.find(['?', '#']).unwrap_or(url.len());
    let url = &url[..end];
    match url.split_once("://") {
        Some((scheme, rest)) => {
            let authority_end = rest.find('/').unwrap_or(rest.len());
            let (authority, path) = rest.split_at(authority_end);
            let host = authority
                .rsplit_once('@')
                .map_or(authority, |(_, host)| host);
            format!("{scheme}://{host}{path}")
        }
        None => url.to_owned(),
    }
}

/// The processor's answer, as it came through the proxy.
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ForwardResponse {
    /// The processor's status.
    pub status: u16,
    /// Its headers (the proxy's `vgs-request-id` and `vgs-upstream-status-code` too).
    pub headers: Vec<(String, String)>,
    /// Its body.
    pub body: Vec<u8>,
    /// The vault's id for the proxied request (what VGS support asks for).
    pub request_id: Option<String>,
}

impl ForwardResponse {
    /// An answer.
    pub fn new(status: u16, headers: Vec<(String, String)>, body: Vec<u8>) -> Self {
        ForwardResponse {
            status,
            headers,
            body,
            request_id: None,
        }
    }

    /// Adds the vault's request id.
    pub fn with_request_id(mut self, id: impl Into<String>) -> Self {
        self.request_id = Some(id.into());
        self
    }

    /// The first header of that name (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

impl fmt::Debug for ForwardResponse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = self.headers.iter().map(|(name, _)| name.as_str()).collect();
        f.debug_struct("ForwardResponse")
            .field("status", &self.status)
            .field("headers", &names)
            .field("body", &format_args!("[{} bytes]", self.body.len()))
            .field("request_id", &self.request_id)
            .finish()
    }
}

/// The card fields a template may name, as `{{$…}}` (Hyperswitch's names).
pub const PLACEHOLDERS: [(&str, CardField); 5] = [
    ("card_number", CardField::CardNumber),
    ("card_cvc", CardField::CardCvc),
    ("card_exp_month", CardField::CardExpMonth),
    ("card_exp_year", CardField::CardExpYear),
    ("card_holder_name", CardField::CardHolderName),
];

/// Why a template cannot be filled. Names the placeholder, never a value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TemplateError {
    /// `{{$name}}` names no card field.
    Unknown(String),
    /// The card has nothing for this field (e.g. no CVC stored).
    Unfilled(CardField),
    /// `{{$` without its closing `}}`.
    Unterminated,
}

impl fmt::Display for TemplateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TemplateError::Unknown(name) => write!(
                f,
                "the template names `{{{{${}}}}}`, which is not a card field: use {{{{$card_number}}}}, {{{{$card_cvc}}}}, {{{{$card_exp_month}}}}, {{{{$card_exp_year}}}} or {{{{$card_holder_name}}}}",
                name.chars().take(40).collect::<String>()
            ),
            TemplateError::Unfilled(field) => write!(
                f,
                "the template names {{{{${field}}}}}, but this card has no alias for {field} (not stored, or not a per-field card)"
            ),
            TemplateError::Unterminated => {
                f.write_str("the template has `{{$` without its closing `}}`")
            }
        }
    }
}

/// Fills `template`'s `{{$field}}` placeholders with `value_of(field)`, escaped for
/// `encoding`. Every placeholder is checked before any is filled: an unknown or
/// unfillable one fails the whole template.
pub fn fill_template(
    template: &str,
    encoding: BodyEncoding,
    value_of: impl Fn(CardField) -> Option<String>,
) -> Result<String, TemplateError> {
    let mut out = String::with_capacity(template.len() + 64);
    let mut rest = template;
    while let Some(start) = rest.find("{{") {
        let inner = &rest[start + 2..];
        // `{{$name}}`, spaces allowed inside the braces; any other `{{` is text.
        let Some(after) = inner.trim_start().strip_prefix('$') else {
            out.push_str(&rest[..start + 2]);
            rest = inner;
            continue;
        };
        out.push_str(&rest[..start]);
        let end = after.find("}}").ok_or(TemplateError::Unterminated)?;
        let name = after[..end].trim();
        let field = PLACEHOLDERS
            .iter()
            .find(|(known, _)| *known == name)
            .map(|(_, field)| *field)
            .ok_or_else(|| TemplateError::Unknown(name.to_owned()))?;
        let value = value_of(field).ok_or(TemplateError::Unfilled(field))?;
        escape_into(&mut out, &value, encoding);
        rest = &after[end + 2..];
    }
    out.push_str(rest);
    Ok(out)
}

fn escape_into(out: &mut String, value: &str, encoding: BodyEncoding) {
    match encoding {
        BodyEncoding::Json => {
            for c in value.chars() {
                match c {
                    '"' => out.push_str("\\\""),
                    '\\' => out.push_str("\\\\"),
                    '\n' => out.push_str("\\n"),
                    '\r' => out.push_str("\\r"),
                    '\t' => out.push_str("\\t"),
                    c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
                    c => out.push(c),
                }
            }
        }
        BodyEncoding::Form => {
            for byte in value.bytes() {
                match byte {
                    b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'*' | b'-' | b'.' | b'_' => {
                        out.push(char::from(byte));
                    }
                    b' ' => out.push('+'),
                    other => out.push_str(&format!("%{other:02X}")),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn aliases(field: CardField) -> Option<String> {
        match field {
            CardField::CardNumber => Some("4111110000001111".to_owned()),
            CardField::CardCvc => Some("tok_sandbox_cvc".to_owned()),
            CardField::CardHolderName => Some("odd \"alias\" & more".to_owned()),
            _ => None,
        }
    }

    #[test]
    fn placeholders_are_filled_with_aliases_escaped_for_the_body() {
        let json = fill_template(
            r#"{"n":"{{$card_number}}","c":"{{ $card_cvc }}","h":"{{$card_holder_name}}"}"#,
            BodyEncoding::Json,
            aliases,
        )
        .expect("fills");
        assert_eq!(
            json,
            r#"{"n":"4111110000001111","c":"tok_sandbox_cvc","h":"odd \"alias\" & more"}"#
        );
        let form = fill_template(
            "number={{$card_number}}&name={{$card_holder_name}}",
            BodyEncoding::Form,
            aliases,
        )
        .expect("fills");
        assert_eq!(
            form,
            "number=4111110000001111&name=odd+%22alias%22+%26+more"
        );
        assert_eq!(
            fill_template("no placeholders {{other}}", BodyEncoding::Json, aliases),
            Ok("no placeholders {{other}}".to_owned())
        );
    }

    #[test]
    fn unknown_unfilled_and_unterminated_placeholders_fail_the_template() {
        let fill = |t: &str| fill_template(t, BodyEncoding::Json, aliases);
        assert_eq!(
            fill("{{$card_pin}}"),
            Err(TemplateError::Unknown("card_pin".to_owned()))
        );
        assert_eq!(
            fill(r#"{"m":"{{$card_exp_month}}"}"#),
            Err(TemplateError::Unfilled(CardField::CardExpMonth))
        );
        assert_eq!(fill("x {{$card_number"), Err(TemplateError::Unterminated));
        let message = TemplateError::Unknown("card_pin".to_owned()).to_string();
        assert!(
            message.contains("{{$card_pin}}") && message.contains("{{$card_number}}"),
            "{message}"
        );
        assert!(
            TemplateError::Unfilled(CardField::CardCvc)
                .to_string()
                .contains("{{$card_cvc}}")
        );
    }

    #[test]
    fn debug_shows_no_header_values_and_no_body() {
        let request = ForwardRequest::new(
            "POST",
            "https://processor.test/pay",
            ConnectorVaultId::Multi(Default::default()),
        )
        .header("Authorization", "Bearer processor-secret")
        .json(r#"{"n":"{{$card_number}}"}"#);
        let shown = format!("{request:?}");
        assert!(
            !shown.contains("processor-secret") && shown.contains("Authorization"),
            "{shown}"
        );
        let response = ForwardResponse::new(
            200,
            vec![("set-cookie".into(), "s=1".into())],
            b"{\"token\":\"t\"}".to_vec(),
        );
        let shown = format!("{response:?}");
        assert!(
            !shown.contains("s=1") && !shown.contains("token"),
            "{shown}"
        );
        assert_eq!(response.header("Set-Cookie"), Some("s=1"));
    }

    #[test]
    fn urls_are_shown_without_credentials_query_or_fragment() {
        for (given, shown) in [
            (
                "https://sk_live_1:@api.processor.test:8443/v1/pay?key=sk_2#f",
                "https://api.processor.test:8443/v1/pay",
            ),
            ("https://api.processor.test", "https://api.processor.test"),
            ("http://u:p@127.0.0.1:9/?q", "http://127.0.0.1:9/"),
            ("not a url?secret", "not a url"),
        ] {
            assert_eq!(without_secrets(given), shown, "{given}");
        }
        let request = ForwardRequest::new(
            "POST",
            "https://sk_live_1:@api.processor.test/pay?key=sk_2",
            ConnectorVaultId::Multi(Default::default()),
        );
        let shown = format!("{request:?}");
        assert!(
            !shown.contains("sk_live_1") && !shown.contains("sk_2"),
            "{shown}"
        );
    }
}
