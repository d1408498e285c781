//! The baseline of `vaultctl bench`: the connector's HTTP requests made with a bare
//! `reqwest::Client` and one token fetched beforehand. The floor no connector can beat.
//! Request bodies and URLs are built per call, byte for byte as the connector does.

use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine as _;
use reqwest::header::{AUTHORIZATION, CONTENT_TYPE, HeaderValue};
use reqwest::{Client, Method, Url};
use secrecy::{ExposeSecret, SecretString};
use serde::Serialize;
use vault_auth::{OAuth2Source, TokenSource};
use vault_core::{AliasFormat, Card, CardField, ClientId, ClientSecret, ConnectorVaultId, Storage};
use vgs_mock::TOKEN_PATH;

use crate::output::Failure;

/// The classifier the connector puts on every value beside the field name.
const CLASSIFIER: &str = "vaultlink";

/// Which API the baseline speaks: API v1 sends HTTP Basic access credentials, API v2 a
/// Bearer token fetched once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Api {
    /// Vault API v1: `{base}/aliases`, HTTP Basic.
    V1,
    /// Vault API v2: `{base}/v2/{vault}/aliases`, Bearer token.
    V2,
}

/// Bare HTTP calls with a fixed `Authorization` header.
pub(crate) struct Baseline {
    client: Client,
    authorization: HeaderValue,
    aliases: Url,
    /// The fetched token's lifetime (API v2).
    pub(crate) token_lifetime: Option<Duration>,
    /// Where its token came from (API v2), to take a new one between slices.
    source: Option<Arc<OAuth2Source>>,
    fetched_at: Instant,
}

/// The HTTP client both sides use the settings of: no redirects, no proxy,
/// TCP_NODELAY, the connector's idle timeout. (The connector builds its own.)
pub(crate) fn bare_client() -> Result<Client, Failure> {
    Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .tcp_nodelay(true)
        .pool_idle_timeout(Duration::from_secs(60))
        .no_proxy()
        .build()
        .map_err(|e| Failure::new(format!("cannot build an HTTP client: {e}")))
}

/// `{base}/aliases` (v1) or `{base}/v2/{vault}/aliases` (v2), as the connector routes a
/// custom endpoint.
pub(crate) fn aliases_url(base: &str, api: Api, vault_id: &str) -> Result<Url, Failure> {
    let mut url = Url::parse(base).map_err(|e| {
        Failure::new(format!(
            "the endpoint {base} is not a URL: {e}. Fix: give one like http://127.0.0.1:8080"
        ))
    })?;
    {
        let mut path = url.path_segments_mut().map_err(|()| {
            Failure::new(format!(
                "the endpoint {base} cannot have a path. Fix: give an http(s) URL"
            ))
        })?;
        path.pop_if_empty();
        match api {
            Api::V1 => path.push("aliases"),
            Api::V2 => path.extend(["v2", vault_id, "aliases"]),
        };
    }
    Ok(url)
}

impl Baseline {
    /// Prepares the baseline: the Basic header (v1), or one token fetched now from the
    /// mock's token endpoint (v2), outside any timing.
    pub(crate) async fn new(
        base: &str,
        api: Api,
        vault_id: &str,
        client_id: &str,
        secret: &SecretString,
    ) -> Result<Self, Failure> {
        let client = bare_client()?;
        let aliases = aliases_url(base, api, vault_id)?;
        match api {
            Api::V1 => Ok(Baseline {
                client,
                authorization: basic_header(client_id, secret)?,
                aliases,
                token_lifetime: None,
                source: None,
                fetched_at: Instant::now(),
            }),
            Api::V2 => {
                let token_url = format!("{}{TOKEN_PATH}", base.trim_end_matches('/'));
                let source = OAuth2Source::client_credentials(
                    token_url.as_str(),
                    ClientId::new(client_id),
                    ClientSecret::from(secret.clone()),
                )
                .http_client(client.clone())
                .build()
                .map_err(|r| Failure::vault("the baseline's token source", &r))?;
                Baseline::with_token(client, aliases, Arc::new(source)).await
            }
        }
    }

    /// A baseline sending a token fetched now from `source`.
    async fn with_token(
        client: Client,
        aliases: Url,
        source: Arc<OAuth2Source>,
    ) -> Result<Self, Failure> {
        let fetched_at = Instant::now();
        let fetched = source
            .fetch()
            .await
            .map_err(|r| Failure::vault("the baseline's token fetch failed", &r))?;
        let authorization = fetched
            .scheme
            .header_value(&fetched.token)
            .map_err(|r| Failure::vault("the baseline's token", &r))?;
        Ok(Baseline {
            client,
            authorization,
            aliases,
            token_lifetime: Some(fetched.lifetime),
            source: Some(source),
            fetched_at,
        })
    }

    /// Whether its token is past half its lifetime: with `--token-ttl`, the next
    /// slice must not outlive it (the floor never waits for a token).
    pub(crate) fn needs_new_token(&self) -> bool {
        self.token_lifetime
            .is_some_and(|lifetime| self.fetched_at.elapsed() >= lifetime / 2)
    }

    /// The same baseline (same client and connections) with a token fetched now.
    pub(crate) async fn with_new_token(&self) -> Result<Self, Failure> {
        match &self.source {
            Some(source) => {
                Baseline::with_token(
                    self.client.clone(),
                    self.aliases.clone(),
                    Arc::clone(source),
                )
                .await
            }
            None => Err(Failure::new(
                "the baseline has no token to renew (API v1 sends access credentials)",
            )),
        }
    }

    /// The connector's insert of `card`: one `POST /aliases` with its five values.
    pub(crate) async fn insert(self: Arc<Self>, card: Card) -> Result<(), String> {
        let body = insert_body(&card);
        self.send(Method::POST, self.aliases.clone(), Some(body))
            .await
    }

    /// The connector's retrieve of `id`: a multi-reveal of the persistent aliases,
    /// then the volatile CVC, one after the other.
    /// The connector's retrieve requests, sent as a hand-written client would: the
    /// persistent multi-reveal and the volatile CVC read at once.
    pub(crate) async fn retrieve(self: Arc<Self>, id: ConnectorVaultId) -> Result<(), String> {
        let urls = retrieve_urls(&self.aliases, &id)?;
        let sent = futures_util::future::join_all(
            urls.into_iter()
                .map(|url| self.send(Method::GET, url, None)),
        )
        .await;
        sent.into_iter().collect()
    }

    async fn send(&self, method: Method, url: Url, body: Option<Vec<u8>>) -> Result<(), String> {
        let mut request = self
            .client
            .request(method, url)
            .header(AUTHORIZATION, self.authorization.clone());
        if let Some(body) = body {
            request = request
                .header(CONTENT_TYPE, HeaderValue::from_static("application/json"))
                .body(body);
        }
        let response = request.send().await.map_err(|e| e.to_string())?;
        let status = response.status();
        let body = response.bytes().await.map_err(|e| e.to_string())?;
        if status.is_success() {
            Ok(())
        } else {
            Err(format!(
                "the mock answered HTTP {} ({} bytes)",
                status.as_u16(),
                body.len()
            ))
        }
    }
}

fn basic_header(client_id: &str, secret: &SecretString) -> Result<HeaderValue, Failure> {
    let encoded = base64::engine::general_purpose::STANDARD
        .encode(format!("{client_id}:{}", secret.expose_secret()));
    let mut header = HeaderValue::try_from(format!("Basic {encoded}")).map_err(|_| {
        Failure::new("the access credentials contain characters not allowed in a header")
    })?;
    header.set_sensitive(true);
    Ok(header)
}

/// `POST /aliases` body.
#[derive(Serialize)]
struct CreateAliases<'a> {
    data: Vec<CreateAlias<'a>>,
}

/// One value to store.
#[derive(Serialize)]
struct CreateAlias<'a> {
    value: &'a str,
    classifiers: [&'static str; 2],
    format: &'static str,
    storage: &'static str,
}

/// The JSON the connector sends to store `card` field by field (number, expiry
/// month, expiry year, CVC, holder name; the CVC volatile), serialised now.
pub(crate) fn insert_body(card: &Card) -> Vec<u8> {
    let month = card.exp_month.two_digits();
    let year = card.exp_year.get().to_string();
    let value = |value, field: CardField, format: AliasFormat, storage: Storage| CreateAlias {
        value,
        classifiers: [CLASSIFIER, field.as_str()],
        format: format.as_str(),
        storage: storage.as_str(),
    };
    let mut data = Vec::with_capacity(5);
    data.push(value(
        card.number.expose_secret(),
        CardField::CardNumber,
        AliasFormat::FpeSixTFour,
        Storage::Persistent,
    ));
    data.push(value(
        &month,
        CardField::CardExpMonth,
        AliasFormat::Uuid,
        Storage::Persistent,
    ));
    data.push(value(
        &year,
        CardField::CardExpYear,
        AliasFormat::Uuid,
        Storage::Persistent,
    ));
    if let Some(cvc) = &card.cvc {
        data.push(value(
            cvc.expose_secret(),
            CardField::CardCvc,
            AliasFormat::Uuid,
            Storage::Volatile,
        ));
    }
    if let Some(name) = &card.holder_name {
        data.push(value(
            name.expose_secret(),
            CardField::CardHolderName,
            AliasFormat::Uuid,
            Storage::Persistent,
        ));
    }
    // Serialising borrowed strings cannot fail.
    serde_json::to_vec(&CreateAliases { data }).unwrap_or_default()
}

/// The URLs the connector GETs to retrieve a per-field card, in its order: the
/// persistent aliases in one multi-reveal, then the CVC from volatile storage.
fn retrieve_urls(aliases: &Url, id: &ConnectorVaultId) -> Result<Vec<Url>, String> {
    let ConnectorVaultId::Multi(fields) = id else {
        return Err("the baseline retrieves per-field cards only".to_owned());
    };
    let persistent: Vec<&str> = fields
        .values()
        .filter(|f| f.storage == Storage::Persistent)
        .map(|f| f.alias.as_str())
        .collect();
    let mut urls = Vec::with_capacity(2);
    let mut many = aliases.clone();
    many.query_pairs_mut()
        .append_pair("aliases", &persistent.join(","));
    urls.push(many);
    if let Some(cvc) = fields.get(&CardField::CardCvc) {
        let mut one = aliases.clone();
        if let Ok(mut path) = one.path_segments_mut() {
            path.pop_if_empty().push(cvc.alias.as_str());
        }
        one.query_pairs_mut()
            .append_pair("storage", Storage::Volatile.as_str());
        urls.push(one);
    }
    Ok(urls)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
    use tokio::net::TcpListener;
    use vault_core::{Alias, ExternalVault, FieldAlias, InsertRequest, RetrieveRequest};
    use vault_vgs::{ApiGeneration, VgsConnector};

    use super::*;

    /// One request as it arrived: `METHOD target`, the headers we compare, the body.
    #[derive(Debug, PartialEq, Eq)]
    struct Seen {
        line: String,
        authorization: Option<String>,
        content_type: Option<String>,
        body: Vec<u8>,
    }

    /// An HTTP/1.1 server that serves connections concurrently and records the
    /// requests. Each request takes the first unused answer whose request-line prefix
    /// matches (`""` matches any), so requests sent at once get the right answer
    /// whatever their order. The task ends once every answer was given and returns
    /// the requests sorted by request line (arrival order is not the client's).
    async fn capture(
        answers: Vec<(&'static str, u16, String)>,
    ) -> (String, tokio::task::JoinHandle<Vec<Seen>>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let expected = answers.len();
        let shared = std::sync::Arc::new(tokio::sync::Mutex::new((
            answers.into_iter().map(Some).collect::<Vec<_>>(),
            Vec::new(),
        )));
        let (done_tx, mut done) = tokio::sync::watch::channel(0usize);
        let task = tokio::spawn(async move {
            let accept = {
                let shared = std::sync::Arc::clone(&shared);
                tokio::spawn(async move {
                    loop {
                        let (stream, _) = listener.accept().await.unwrap();
                        let shared = std::sync::Arc::clone(&shared);
                        let done_tx = done_tx.clone();
                        tokio::spawn(async move {
                            let mut stream = BufReader::new(stream);
                            while let Some(request) = read_request(&mut stream).await {
                                let mut state = shared.lock().await;
                                let (status, body) = state
                                    .0
                                    .iter_mut()
                                    .find(|a| {
                                        a.as_ref().is_some_and(|(prefix, _, _)| {
                                            request.line.starts_with(prefix)
                                        })
                                    })
                                    .and_then(Option::take)
                                    .map(|(_, status, body)| (status, body))
                                    .expect("an answer for every request");
                                state.1.push(request);
                                let seen = state.1.len();
                                drop(state);
                                let answer = format!(
                                    "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
                                    body.len()
                                );
                                stream.get_mut().write_all(answer.as_bytes()).await.unwrap();
                                done_tx.send_replace(seen);
                            }
                        });
                    }
                })
            };
            done.wait_for(|seen| *seen >= expected).await.unwrap();
            accept.abort();
            let mut seen = std::mem::take(&mut shared.lock().await.1);
            seen.sort_by(|a, b| a.line.cmp(&b.line));
            seen
        });
        (base, task)
    }

    /// One request from a keep-alive connection; `None` once it closes.
    async fn read_request(stream: &mut BufReader<tokio::net::TcpStream>) -> Option<Seen> {
        let mut line = String::new();
        if stream.read_line(&mut line).await.ok()? == 0 {
            return None;
        }
        let mut request = Seen {
            line: line.trim_end().trim_end_matches(" HTTP/1.1").to_owned(),
            authorization: None,
            content_type: None,
            body: Vec::new(),
        };
        let mut length = 0;
        loop {
            let mut header = String::new();
            stream.read_line(&mut header).await.ok()?;
            let header = header.trim_end();
            if header.is_empty() {
                break;
            }
            let (name, value) = header.split_once(": ")?;
            match name.to_ascii_lowercase().as_str() {
                "content-length" => length = value.parse().ok()?,
                "authorization" => request.authorization = Some(value.to_owned()),
                "content-type" => request.content_type = Some(value.to_owned()),
                _ => {}
            }
        }
        request.body = vec![0; length];
        stream.read_exact(&mut request.body).await.ok()?;
        Some(request)
    }

    fn card() -> Card {
        serde_json::from_str(
            r#"{"card_number":"4111111111111111","card_exp_month":"4","card_exp_year":"2030","card_cvc":"987","card_holder_name":"Ada Lovelace"}"#,
        )
        .unwrap()
    }

    fn connector(base: &str) -> VgsConnector {
        VgsConnector::builder()
            .credentials("user", SecretString::from("pass".to_owned()))
            .vault_id("tntbench1")
            .api(ApiGeneration::V1)
            .endpoint(base)
            .build()
            .unwrap()
    }

    async fn baseline(base: &str) -> Arc<Baseline> {
        let secret = SecretString::from("pass".to_owned());
        Arc::new(
            Baseline::new(base, Api::V1, "tntbench1", "user", &secret)
                .await
                .unwrap(),
        )
    }

    #[tokio::test]
    async fn the_baseline_insert_sends_the_connectors_request_byte_for_byte() {
        let refused = (
            400,
            r#"{"errors":[{"status":400,"detail":"x"}]}"#.to_owned(),
        );
        let (base, server) = capture(vec![("", refused.0, refused.1.clone())]).await;
        let _ = connector(&base)
            .insert(InsertRequest::card(card()))
            .await
            .expect_err("refused");
        let by_connector = server.await.unwrap();

        let (base, server) = capture(vec![("", refused.0, refused.1)]).await;
        let _ = baseline(&base).await.insert(card()).await;
        let by_baseline = server.await.unwrap();

        assert_eq!(by_connector.len(), 1);
        assert_eq!(by_connector, by_baseline);
        let body = String::from_utf8(by_baseline[0].body.clone()).unwrap();
        assert!(body.starts_with(r#"{"data":[{"value":"4111111111111111","classifiers":["vaultlink","card_number"],"format":"FPE_SIX_T_FOUR","storage":"PERSISTENT"}"#), "{body}");

        // Without CVC and holder name the body has three values, no nulls.
        let mut bare = card();
        bare.cvc = None;
        bare.holder_name = None;
        let body = String::from_utf8(insert_body(&bare)).unwrap();
        assert_eq!(body.matches("\"value\"").count(), 3, "{body}");
        assert!(!body.contains("null"), "{body}");
    }

    #[tokio::test]
    async fn the_baseline_retrieve_makes_the_connectors_requests() {
        let field = |alias: &str, storage| {
            FieldAlias::new(Alias::new(alias).unwrap(), AliasFormat::Uuid, storage)
        };
        let id = ConnectorVaultId::Multi(BTreeMap::from([
            (
                CardField::CardNumber,
                field("4111110000001111", Storage::Persistent),
            ),
            (CardField::CardExpMonth, field("tok_m", Storage::Persistent)),
            (CardField::CardExpYear, field("tok_y", Storage::Persistent)),
            (CardField::CardCvc, field("tok_c", Storage::Volatile)),
            (
                CardField::CardHolderName,
                field("tok_h", Storage::Persistent),
            ),
        ]));
        let answers = || {
            vec![
                (
                    "GET /aliases?",
                    200,
                    r#"{"data":{"4111110000001111":{"value":"4111111111111111"},"tok_m":{"value":"04"},"tok_y":{"value":"2030"},"tok_h":{"value":"Ada Lovelace"}}}"#.to_owned(),
                ),
                (
                    "GET /aliases/tok_c",
                    200,
                    r#"{"data":[{"value":"987"}]}"#.to_owned(),
                ),
            ]
        };
        let (base, server) = capture(answers()).await;
        let card_back = connector(&base)
            .retrieve(RetrieveRequest::new(id.clone()))
            .await
            .unwrap();
        assert_eq!(card_back.card(), Some(&card()));
        let by_connector = server.await.unwrap();

        let (base, server) = capture(answers()).await;
        baseline(&base).await.retrieve(id).await.unwrap();
        let by_baseline = server.await.unwrap();

        assert_eq!(by_connector.len(), 2);
        assert_eq!(by_connector, by_baseline);
        // Sorted by request line: the CVC read, then the multi-reveal.
        assert_eq!(by_baseline[0].line, "GET /aliases/tok_c?storage=VOLATILE");
        assert_eq!(
            by_baseline[1].line,
            "GET /aliases?aliases=4111110000001111%2Ctok_m%2Ctok_y%2Ctok_h"
        );
    }

    #[test]
    fn routes_follow_the_connectors_custom_endpoint_layout() {
        let v2 = aliases_url("http://127.0.0.1:9/", Api::V2, "tntabc1").unwrap();
        assert_eq!(v2.as_str(), "http://127.0.0.1:9/v2/tntabc1/aliases");
        let v1 = aliases_url("http://127.0.0.1:9", Api::V1, "tntabc1").unwrap();
        assert_eq!(v1.as_str(), "http://127.0.0.1:9/aliases");
    }
}
