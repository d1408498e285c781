//! `VgsProxy`: a [`VaultProxy`] through VGS's outbound proxy. The body template's
//! `{{$card_…}}` placeholders are filled with the card's aliases, the request goes to
//! the processor through the proxy (HTTP proxy auth with the vault's access
//! credentials, TLS to the processor intercepted by VGS with its CA, which this client
//! trusts and pins), and VGS swaps the aliases for the card in flight. The answer
//! tells the processor's own (it has `VGS-Upstream-Status-Code`) from the proxy's.

use std::fmt;
use std::sync::Arc;

use base64::Engine;
use error_stack::Report;
use reqwest::header::{CONTENT_TYPE, HeaderMap, HeaderName, HeaderValue, RETRY_AFTER};
use reqwest::{Method, Url};
use secrecy::{ExposeSecret, SecretString};
use tokio::time::Instant;
use tracing::{Instrument, debug};
use vault_core::{
    BodyEncoding, CardField, ConnectorVaultId, Detail, Environment, ForwardRequest,
    ForwardResponse, HttpStatus, PaymentMethodData, ReportExt, RetryAfter, TraceId, VaultError,
    VaultId, VaultProxy, VaultResult, async_trait, fill_template,
};

use crate::cmp::CmpConnector;
use crate::config::Timeouts;
use crate::retry::{Failure, RetryPolicy};
use crate::routing::is_loopback;

/// VGS adds it to every answer that came from the upstream.
const UPSTREAM_STATUS: HeaderName = HeaderName::from_static("vgs-upstream-status-code");
/// VGS's id of a proxied request.
const REQUEST_ID: HeaderName = HeaderName::from_static("vgs-request-id");

/// Sends processor requests through VGS's outbound proxy; cheap to clone. Build it
/// with [`VgsProxy::builder`].
#[derive(Clone)]
pub struct VgsProxy {
    inner: Arc<Inner>,
}

struct Inner {
    client: reqwest::Client,
    proxy: Url,
    has_ca: bool,
    timeouts: Timeouts,
    retry: RetryPolicy,
    max_response_bytes: usize,
    cards: Option<CmpConnector>,
}

impl fmt::Debug for VgsProxy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VgsProxy")
            .field("proxy", &self.inner.proxy.as_str())
            .field("ca_pinned", &self.inner.has_ca)
            .finish_non_exhaustive()
    }
}

impl VgsProxy {
    /// A builder; see [`VgsProxyBuilder`] for every setting and its default.
    pub fn builder() -> VgsProxyBuilder {
        VgsProxyBuilder::default()
    }

    /// The proxy's URL (without credentials).
    pub fn proxy_url(&self) -> &Url {
        &self.inner.proxy
    }

    /// The card's fields as the template fills them: aliases (and, for a CMP card,
    /// its expiry, which is not secret). Never a card value.
    async fn fields(&self, id: &ConnectorVaultId) -> VaultResult<Vec<(CardField, String)>> {
        match (id, &self.inner.cards) {
            (ConnectorVaultId::Multi(fields), _) => Ok(fields
                .iter()
                .map(|(field, alias)| (*field, alias.alias.as_str().to_owned()))
                .collect()),
            (ConnectorVaultId::Single { id, cvc: None, .. }, Some(cards)) => {
                let aliases = cards.card_aliases(id).await?;
                let mut fields = vec![
                    (CardField::CardNumber, aliases.pan_alias.as_str().to_owned()),
                    (CardField::CardExpMonth, aliases.exp_month.two_digits()),
                    (CardField::CardExpYear, aliases.exp_year.get().to_string()),
                ];
                if let Some(cvc) = &aliases.cvc_alias {
                    fields.push((CardField::CardCvc, cvc.as_str().to_owned()));
                }
                Ok(fields)
            }
            (ConnectorVaultId::Single { .. }, _) => Err(Report::new(VaultError::InvalidRequest)
                .attach(Detail::new(
                    "this id is one record for the whole card (single-id mode, or a CMP card without .card_lookup(…)): the proxy reveals aliases field by field, so store the card per field (the default), or give the proxy the CMP connector that stored it",
                ))),
        }
    }

    /// The filled, checked request (nothing sent yet).
    fn prepare(
        &self,
        request: &ForwardRequest,
        fields: &[(CardField, String)],
    ) -> VaultResult<(Method, Url, HeaderMap, Option<Vec<u8>>)> {
        let invalid =
            |what: String| Report::new(VaultError::InvalidRequest).attach(Detail::new(what));
        let method = Method::from_bytes(request.method.trim().to_ascii_uppercase().as_bytes())
            .map_err(|_| {
                invalid(format!(
                    "`{}` is not an HTTP method",
                    short(&request.method)
                ))
            })?;
        let url = Url::parse(request.url.trim())
            .map_err(|e| invalid(format!("the processor URL is not valid: {e}")))?;
        match (url.scheme(), url.host_str()) {
            ("https", Some(_)) => {}
            ("http", Some(_)) if is_loopback(&url) => {}
            _ => {
                return Err(invalid(
                    "the processor URL must be https (plain http only to loopback): card data leaves VGS's proxy for it"
                        .to_owned(),
                ));
            }
        }
        if url.scheme() == "https" && !self.inner.has_ca {
            return Err(Report::new(VaultError::InvalidConfig).attach(Detail::new(
                "an https processor is reached through VGS's TLS interception: give the proxy's CA certificate (.certificate(…), VGS_PROXY_CA)",
            )));
        }
        let mut headers = HeaderMap::new();
        for (name, value) in &request.headers {
            let name = HeaderName::from_bytes(name.trim().as_bytes())
                .map_err(|_| invalid(format!("`{}` is not a header name", short(name))))?;
            if matches!(
                name.as_str(),
                "host" | "proxy-authorization" | "content-length"
            ) {
                return Err(invalid(format!(
                    "the header {name} is set by the connector; leave it out"
                )));
            }
            let value = HeaderValue::from_str(value.trim()).map_err(|_| {
                invalid(format!(
                    "the value of header {name} is not a valid header value"
                ))
            })?;
            headers.append(name, value);
        }
        let body = match &request.body {
            None => None,
            Some((encoding, template)) => {
                let value_of = |field| {
                    fields
                        .iter()
                        .find(|(f, _)| *f == field)
                        .map(|(_, v)| v.clone())
                };
                let filled = fill_template(template, *encoding, value_of)
                    .map_err(|e| invalid(e.to_string()))?;
                if *encoding == BodyEncoding::Json
                    && serde_json::from_str::<serde::de::IgnoredAny>(&filled).is_err()
                {
                    return Err(invalid(
                        "the body template is not JSON once filled: put each placeholder inside a JSON string, e.g. \"number\": \"{{$card_number}}\"".to_owned(),
                    ));
                }
                if !headers.contains_key(CONTENT_TYPE) {
                    headers.insert(
                        CONTENT_TYPE,
                        HeaderValue::from_static(encoding.content_type()),
                    );
                }
                Some(filled.into_bytes())
            }
        };
        Ok((method, url, headers, body))
    }

    /// Sends it, retrying only what is safe: anything that never reached the proxy,
    /// the proxy's 429, and, for idempotent methods, what may have reached it.
    async fn send(
        &self,
        method: Method,
        url: Url,
        headers: HeaderMap,
        body: Option<Vec<u8>>,
    ) -> VaultResult<ForwardResponse> {
        let idempotent = matches!(
            method,
            Method::GET | Method::HEAD | Method::PUT | Method::DELETE | Method::OPTIONS
        );
        let deadline = Instant::now() + self.inner.timeouts.total;
        let mut attempt = 1u32;
        loop {
            let remaining = deadline.saturating_duration_since(Instant::now());
            let mut builder = self
                .inner
                .client
                .request(method.clone(), url.clone())
                .headers(headers.clone())
                .timeout(remaining.min(self.inner.timeouts.per_attempt));
            if let Some(body) = &body {
                builder = builder.body(body.clone());
            }
            let (report, failure) = match builder.send().await {
                Ok(answer) => match self.answer(answer, idempotent).await? {
                    Ok(response) => return Ok(response),
                    Err(failed) => failed,
                },
                Err(error) => transport(error),
            };
            let retryable = match failure {
                Failure::NotSent | Failure::Throttled => true,
                Failure::MaybeProcessed => idempotent,
                Failure::Final => false,
            };
            if !retryable || attempt >= self.inner.retry.max_attempts {
                return Err(self.given_up(report, failure, idempotent, attempt));
            }
            let mut wait = self.inner.retry.backoff(attempt + 1, rand::random::<f64>());
            if let Some(after) = report.retry_after() {
                wait = wait.max(after);
            }
            if Instant::now() + wait >= deadline {
                return Err(self.given_up(report, failure, idempotent, attempt));
            }
            debug!(
                attempt,
                kind = report.kind().code(),
                "retrying the proxied request"
            );
            tokio::time::sleep(wait).await;
            attempt += 1;
        }
    }

    fn given_up(
        &self,
        report: Report<VaultError>,
        failure: Failure,
        idempotent: bool,
        attempt: u32,
    ) -> Report<VaultError> {
        let report = if failure == Failure::MaybeProcessed && !idempotent {
            may_have_been_processed(report, "it failed")
        } else {
            report
        };
        report.attach(vault_core::Attempt(attempt))
    }

    /// The processor's answer (`Ok(Ok)`), or the proxy's own error with how retryable.
    async fn answer(
        &self,
        answer: reqwest::Response,
        idempotent: bool,
    ) -> VaultResult<Result<ForwardResponse, (Report<VaultError>, Failure)>> {
        let status = answer.status().as_u16();
        let from_upstream = answer.headers().contains_key(UPSTREAM_STATUS);
        let request_id = answer
            .headers()
            .get(REQUEST_ID)
            .and_then(|v| v.to_str().ok())
            .map(|v| v.chars().take(128).collect::<String>());
        let retry_after = answer
            .headers()
            .get(RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(crate::transformers::parse_retry_after);
        let headers: Vec<(String, String)> = answer
            .headers()
            .iter()
            .filter_map(|(n, v)| {
                v.to_str()
                    .ok()
                    .map(|v| (n.as_str().to_owned(), v.to_owned()))
            })
            .collect();
        let body = match read_capped(answer, self.inner.max_response_bytes).await {
            Ok(body) => body,
            Err(report) => {
                // The request got there (an answer began): say what came back.
                let mut report = report.attach(HttpStatus(status));
                if let Some(id) = &request_id {
                    report = report.attach(TraceId(id.clone()));
                }
                if from_upstream && !idempotent {
                    report = may_have_been_processed(
                        report,
                        "the processor answered but its answer could not be read",
                    );
                }
                return Err(report);
            }
        };
        if from_upstream {
            debug!(status, "processor answered through the proxy");
            let mut response = ForwardResponse::new(status, headers, body);
            if let Some(id) = request_id {
                response = response.with_request_id(id);
            }
            return Ok(Ok(response));
        }
        // The proxy's own answer: VGS's error body, its detail kept (capped).
        let detail = serde_json::from_slice::<serde_json::Value>(&body)
            .ok()
            .and_then(|doc| {
                doc["errors"][0]["detail"]
                    .as_str()
                    .map(|d| d.chars().take(300).collect::<String>())
            })
            .unwrap_or_else(|| format!("the proxy answered {status} itself"));
        let (kind, failure, fix) = match status {
            407 => (
                VaultError::InvalidCredentials,
                Failure::Final,
                "the proxy refused the access credentials: check the vault's access credentials (VGS_PROXY_USERNAME, VGS_PROXY_PASSWORD)",
            ),
            429 => (
                VaultError::RateLimited,
                Failure::Throttled,
                "the proxy is rate limiting this vault",
            ),
            404 => (
                VaultError::InvalidConfig,
                Failure::Final,
                "no outbound route of the vault serves this processor's host: add one (with REVEAL filters where the template puts aliases)",
            ),
            400..=499 => (
                VaultError::InvalidRequest,
                Failure::Final,
                "the proxy refused the request",
            ),
            _ => (
                VaultError::Upstream,
                Failure::MaybeProcessed,
                "the proxy failed",
            ),
        };
        let mut report = Report::new(kind)
            .attach(HttpStatus(status))
            .attach(Detail::new(format!("{fix}: {detail}")));
        if let Some(id) = request_id {
            report = report.attach(TraceId(id));
        }
        if let Some(wait) = retry_after {
            report = report.attach(RetryAfter(wait));
        }
        Ok(Err((report, failure)))
    }
}

#[async_trait]
impl VaultProxy for VgsProxy {
    async fn forward(&self, request: ForwardRequest) -> VaultResult<ForwardResponse> {
        let span = tracing::debug_span!(
            "vgs_forward",
            method = request.method.as_str(),
            processor = Url::parse(&request.url)
                .ok()
                .and_then(|u| u.host_str().map(str::to_owned))
                .unwrap_or_default(),
        );
        async move {
            // Everything about the request that does not depend on the card is checked
            // before a CMP lookup makes a vault call: a stand-in alias for every field.
            if matches!(request.connector_vault_id, ConnectorVaultId::Single { .. }) {
                let stand_in: Vec<(CardField, String)> = CardField::ALL
                    .iter()
                    .map(|field| (*field, "tok_stand_in".to_owned()))
                    .collect();
                self.prepare(&request, &stand_in)?;
            }
            let fields = self.fields(&request.connector_vault_id).await?;
            let (method, url, headers, body) = self.prepare(&request, &fields)?;
            self.send(method, url, headers, body).await
        }
        .instrument(span)
        .await
    }
}

/// A failure after which the request may have reached the processor and was not
/// sent again: [`VaultError::ForwardOutcomeUnknown`], the cause kept beneath it.
fn may_have_been_processed(report: Report<VaultError>, what: &str) -> Report<VaultError> {
    let cause = report.kind();
    report
        .change_context(VaultError::ForwardOutcomeUnknown)
        .attach(Detail::new(format!(
            "{what} ({cause}) after the request may have reached the processor; not sent again: it is not idempotent"
        )))
}

fn transport(error: reqwest::Error) -> (Report<VaultError>, Failure) {
    let timeout = error.is_timeout();
    let connect = error.is_connect();
    let text = describe(error);
    // An https processor is reached through CONNECT; hyper reports the proxy's
    // refusal of the tunnel as one of these (its status is not kept).
    if text.contains("tunnel error: proxy authorization required") {
        return (
            Report::new(VaultError::InvalidCredentials).attach(Detail::new(
                "the proxy refused the access credentials (407 to CONNECT): check the vault's access credentials (VGS_PROXY_USERNAME, VGS_PROXY_PASSWORD)",
            )),
            Failure::Final,
        );
    }
    if text.contains("tunnel error: unsuccessful") {
        return (
            Report::new(VaultError::Upstream).attach(Detail::new(
                "the proxy refused to open a tunnel to the processor's host (it answered CONNECT with an error: its rate limit, no route for the host, or its own failure); nothing reached the processor",
            )),
            Failure::NotSent,
        );
    }
    if timeout {
        return (
            Report::new(VaultError::Timeout).attach(Detail::new(
                "no answer through the proxy within the timeout",
            )),
            Failure::MaybeProcessed,
        );
    }
    let (failure, what) = if connect {
        (Failure::NotSent, "could not connect through the proxy")
    } else {
        (
            Failure::MaybeProcessed,
            "the connection through the proxy failed",
        )
    };
    (
        Report::new(VaultError::Transport).attach(Detail::new(format!("{what}: {text}"))),
        failure,
    )
}

/// reqwest's message chain without the URL (its query or userinfo may hold the
/// processor's credentials).
fn describe(error: reqwest::Error) -> String {
    let error = error.without_url();
    let mut text = error.to_string();
    let mut source = std::error::Error::source(&error);
    while let Some(inner) = source {
        text.push_str(": ");
        text.push_str(&inner.to_string());
        source = inner.source();
    }
    text
}

async fn read_capped(mut answer: reqwest::Response, cap: usize) -> VaultResult<Vec<u8>> {
    let mut body = Vec::new();
    loop {
        match answer.chunk().await {
            Ok(Some(chunk)) => {
                if body.len() + chunk.len() > cap {
                    return Err(
                        Report::new(VaultError::UnexpectedResponse).attach(Detail::new(format!(
                            "the processor's answer is larger than the {cap}-byte limit"
                        ))),
                    );
                }
                body.extend_from_slice(&chunk);
            }
            Ok(None) => return Ok(body),
            Err(error) => {
                return Err(
                    Report::new(VaultError::Transport).attach(Detail::new(format!(
                        "the answer through the proxy could not be read: {}",
                        describe(error)
                    ))),
                );
            }
        }
    }
}

fn short(text: &str) -> String {
    text.chars().take(40).collect()
}

/// Builds a [`VgsProxy`].
///
/// | setting | default |
/// |---|---|
/// | proxy URL | `https://{vault}.{sandbox\|live\|live-eu-1}.verygoodproxy.com:8443` from [`vault_id`](Self::vault_id) and [`environment`](Self::environment) |
/// | access credentials | none: required ([`access_credentials`](Self::access_credentials), or in the proxy URL) |
/// | CA certificate | none: required for https processors; when given it is the only root trusted (pinned) |
/// | timeouts, retries | as the vault connector's ([`Timeouts::default`], [`RetryPolicy::default`]); a non-idempotent request is never sent again once it may have been sent |
/// | redirects | never followed |
/// | largest answer read | 1 MiB |
#[derive(Default)]
pub struct VgsProxyBuilder {
    vault_id: Option<String>,
    environment: Option<Environment>,
    proxy_url: Option<String>,
    username: Option<String>,
    password: Option<SecretString>,
    certificate: Option<String>,
    timeouts: Timeouts,
    retry: RetryPolicy,
    cards: Option<CmpConnector>,
    max_response_bytes: Option<usize>,
}

impl fmt::Debug for VgsProxyBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VgsProxyBuilder")
            .field("vault_id", &self.vault_id)
            .field("environment", &self.environment)
            .field("username", &self.username)
            .field(
                "password",
                &self.password.as_ref().map(|_| vault_core::REDACTED),
            )
            .field("certificate", &self.certificate.is_some())
            .finish_non_exhaustive()
    }
}

impl VgsProxyBuilder {
    /// The vault (`tnt…`) whose proxy to use; with [`environment`](Self::environment)
    /// it makes the proxy URL.
    pub fn vault_id(mut self, vault_id: impl Into<String>) -> Self {
        self.vault_id = Some(vault_id.into());
        self
    }

    /// The VGS environment.
    pub fn environment(mut self, environment: Environment) -> Self {
        self.environment = Some(environment);
        self
    }

    /// The proxy's URL instead (`https://…:8443`, or `http` to loopback, e.g. the
    /// mock's). Credentials in it (`https://USER:PASS@…`, as VGS shows it) are taken as
    /// the access credentials and removed from the URL.
    pub fn proxy_url(mut self, url: impl Into<String>) -> Self {
        self.proxy_url = Some(url.into());
        self
    }

    /// The vault's access credentials (HTTP proxy authentication).
    pub fn access_credentials(
        mut self,
        username: impl Into<String>,
        password: SecretString,
    ) -> Self {
        self.username = Some(username.into());
        self.password = Some(password);
        self
    }

    /// The proxy's CA certificate, PEM, or base64 of the PEM (as Hyperswitch keeps it).
    pub fn certificate(mut self, certificate: impl Into<String>) -> Self {
        self.certificate = Some(certificate.into());
        self
    }

    /// Takes `proxy_url` and `certificate` from Hyperswitch's connector metadata JSON
    /// (other keys are ignored).
    pub fn metadata(mut self, json: &str) -> Result<Self, Report<VaultError>> {
        let doc: serde_json::Value = serde_json::from_str(json).map_err(|e| {
            Report::new(VaultError::InvalidConfig).attach(Detail::new(format!(
                "the connector metadata is not JSON (line {}, column {})",
                e.line(),
                e.column()
            )))
        })?;
        if let Some(url) = doc.get("proxy_url").and_then(|v| v.as_str()) {
            self.proxy_url = Some(url.to_owned());
        }
        if let Some(certificate) = doc.get("certificate").and_then(|v| v.as_str()) {
            self.certificate = Some(certificate.to_owned());
        }
        Ok(self)
    }

    /// Time limits. Default [`Timeouts::default`].
    pub fn timeouts(mut self, timeouts: Timeouts) -> Self {
        self.timeouts = timeouts;
        self
    }

    /// Retry policy. Default [`RetryPolicy::default`].
    pub fn retry(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }

    /// The CMP connector whose cards (`CRD…` ids) this proxy forwards: it reads each
    /// card's aliases. It must not see cards in clear: build it with
    /// `.scopes(["cards:read"])` (checked at [`build`](Self::build)).
    pub fn card_lookup(mut self, cmp: CmpConnector) -> Self {
        self.cards = Some(cmp);
        self
    }

    /// The largest processor answer read, in bytes. Default 1 MiB.
    pub fn max_response_bytes(mut self, bytes: usize) -> Self {
        self.max_response_bytes = Some(bytes);
        self
    }

    /// Validates everything and builds the proxy client. Makes no request.
    pub fn build(self) -> Result<VgsProxy, Report<VaultError>> {
        let config =
            |what: String| Report::new(VaultError::InvalidConfig).attach(Detail::new(what));
        let mut url = match (&self.proxy_url, &self.vault_id, self.environment) {
            (Some(url), _, _) => Url::parse(url.trim()).map_err(|e| {
                config(format!("the proxy URL is not valid ({e}); give one like https://tnt….sandbox.verygoodproxy.com:8443"))
            })?,
            (None, Some(vault), Some(env)) => {
                let vault = VaultId::new(vault.trim()).map_err(|e| e.into_report())?;
                let env = match env {
                    Environment::Sandbox => "sandbox",
                    Environment::Live => "live",
                    Environment::LiveEu1 => "live-eu-1",
                };
                Url::parse(&format!("https://{vault}.{env}.verygoodproxy.com:8443")).map_err(|e| {
                    config(format!("cannot make the proxy URL: {e}"))
                })?
            }
            _ => {
                return Err(config(
                    "the proxy is not set: give .proxy_url(…) (VGS_PROXY_URL), or .vault_id(…) and .environment(…)".to_owned(),
                ));
            }
        };
        match (url.scheme(), url.host_str()) {
            ("https", Some(_)) => {}
            ("http", Some(_)) if is_loopback(&url) => {}
            _ => {
                return Err(config(
                    "the proxy URL must be https (plain http only to loopback, e.g. vaultctl mock serve's)".to_owned(),
                ));
            }
        }
        let (mut username, mut password) = (self.username, self.password);
        if !url.username().is_empty() {
            if username.is_none() {
                username = Some(percent_decode(url.username()));
                password = url
                    .password()
                    .map(|p| SecretString::from(percent_decode(p)));
            }
            let _ = url.set_username("");
            let _ = url.set_password(None);
        }
        let (Some(username), Some(password)) = (username, password) else {
            return Err(config(
                "the proxy's access credentials are not set: give .access_credentials(…) (VGS_PROXY_USERNAME and VGS_PROXY_PASSWORD) or put them in the proxy URL".to_owned(),
            ));
        };
        let proxy = reqwest::Proxy::all(url.as_str())
            .map_err(|_| config("the proxy URL is not usable".to_owned()))?
            .basic_auth(&username, password.expose_secret());
        let mut client = reqwest::Client::builder()
            .no_proxy()
            .proxy(proxy)
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(self.timeouts.connect);
        let has_ca = self.certificate.is_some();
        if let Some(certificate) = &self.certificate {
            let pem = certificate_pem(certificate).map_err(config)?;
            let certificate = reqwest::Certificate::from_pem(pem.as_bytes()).map_err(|_| {
                config("the proxy's CA certificate is not a PEM certificate".to_owned())
            })?;
            // Pinned: the intercepting CA is the only root trusted through the proxy.
            client = client
                .tls_built_in_root_certs(false)
                .add_root_certificate(certificate);
        }
        let client = client
            .build()
            .map_err(|e| config(format!("cannot build the HTTP client: {e}")))?;
        if let Some(cards) = &self.cards {
            let scopes = cards.requested_scopes();
            if scopes.is_empty() || scopes.iter().any(|s| s == "cards:read-pci") {
                return Err(config(
                    "the CMP connector given to .card_lookup(…) could read cards in clear: build it with .scopes([\"cards:read\"]) so that the proxy's lookup sees aliases only".to_owned(),
                ));
            }
        }
        Ok(VgsProxy {
            inner: Arc::new(Inner {
                client,
                proxy: url,
                has_ca,
                timeouts: self.timeouts,
                retry: self.retry,
                max_response_bytes: self.max_response_bytes.unwrap_or(1 << 20),
                cards: self.cards,
            }),
        })
    }
}

/// PEM text, or base64 of it (Hyperswitch's metadata keeps it so).
fn certificate_pem(given: &str) -> Result<String, String> {
    let given = given.trim();
    if given.contains("-----BEGIN CERTIFICATE-----") {
        return Ok(given.to_owned());
    }
    let compact: String = given.split_whitespace().collect();
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(compact.as_bytes())
        .map_err(|_| "the proxy's CA certificate is neither PEM nor base64 of PEM".to_owned())?;
    let text = String::from_utf8(decoded).map_err(|_| {
        "the proxy's CA certificate decodes to something that is not PEM".to_owned()
    })?;
    if text.contains("-----BEGIN CERTIFICATE-----") {
        Ok(text)
    } else {
        Err("the proxy's CA certificate decodes to something that is not PEM".to_owned())
    }
}

fn percent_decode(text: &str) -> String {
    percent_encoding::percent_decode_str(text)
        .decode_utf8_lossy()
        .into_owned()
}

impl CmpConnector {
    /// A card's aliases (PAN alias, CVC alias, expiry) for the proxy: the card read in
    /// its non-PCI view. A PCI view (the card in clear) is refused.
    pub(crate) async fn card_aliases(
        &self,
        id: &vault_core::Alias,
    ) -> VaultResult<vault_core::CardAliases> {
        let id = ConnectorVaultId::Single {
            id: id.clone(),
            cvc: None,
            cvc_expires_at: None,
        };
        let response =
            vault_core::ExternalVault::retrieve(self, vault_core::RetrieveRequest::new(id)).await?;
        match response.payment_method {
            PaymentMethodData::CardAliases(aliases) => Ok(aliases),
            _ => Err(Report::new(VaultError::InvalidConfig).attach(Detail::new(
                "CMP showed this lookup the card in clear: give the proxy a CMP connector built with .scopes([\"cards:read\"])",
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ca_is_taken_as_pem_or_base64_of_pem() {
        let pem = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";
        assert_eq!(certificate_pem(pem).expect("PEM"), pem.trim());
        let b64 = base64::engine::general_purpose::STANDARD.encode(pem);
        assert_eq!(certificate_pem(&b64).expect("base64 of PEM"), pem);
        assert!(certificate_pem("bm90IGEgY2VydA==").is_err());
        assert!(certificate_pem("%%%").is_err());
    }

    #[test]
    fn userinfo_is_percent_decoded_whole() {
        assert_eq!(percent_decode("p%26ss%40x"), "p&ss@x");
        assert_eq!(percent_decode("a+b=c"), "a+b=c");
    }

    #[test]
    fn the_proxy_url_comes_from_the_vault_and_credentials_from_its_userinfo() {
        let proxy = VgsProxy::builder()
            .vault_id("tntabc12345")
            .environment(Environment::LiveEu1)
            .access_credentials("US1", SecretString::from("p".to_owned()))
            .build()
            .expect("builds");
        assert_eq!(
            proxy.proxy_url().as_str(),
            "https://tntabc12345.live-eu-1.verygoodproxy.com:8443/"
        );
        let proxy = VgsProxy::builder()
            .proxy_url("https://US1:pa%40ss@tntabc12345.sandbox.verygoodproxy.com:8443")
            .build()
            .expect("credentials in the URL");
        assert_eq!(proxy.proxy_url().username(), "", "removed from the URL");
        assert!(!format!("{proxy:?}").contains("pa@ss"));
        for bad in ["http://proxy.example.com:8080", "ftp://x", "not a url"] {
            let err = VgsProxy::builder()
                .proxy_url(bad)
                .access_credentials("u", SecretString::from("p".to_owned()))
                .build()
                .expect_err(bad);
            assert_eq!(err.kind(), VaultError::InvalidConfig, "{bad}");
        }
        let err = VgsProxy::builder()
            .proxy_url("http://127.0.0.1:9")
            .build()
            .expect_err("no credentials");
        assert!(
            err.details()[0].contains("VGS_PROXY_USERNAME"),
            "{:?}",
            err.details()
        );
    }
}
