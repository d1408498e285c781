//! The in-process test harness: drives `vgs_mock::router` without a socket and checks
//! every answer against the mock's own API description (`openapi.yaml`).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, Method, Request, StatusCode, header};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};
use tower::ServiceExt;
use vgs_mock::{
    DEMO_CLIENT_ID, DEMO_CLIENT_SECRET, DEMO_V1_PASSWORD, DEMO_V1_USERNAME, MockClock, MockConfig,
    MockState, TOKEN_PATH,
};

use crate::spec::{self, Expected, Routed, Spec};

/// This crate's directory in the checkout the tests run from. Read at run time (cargo
/// sets it for every test process): a test binary built in one checkout and reused by
/// another through a shared target dir must look beside the checkout it runs in.
pub(crate) fn manifest_dir() -> std::path::PathBuf {
    std::env::var_os("CARGO_MANIFEST_DIR")
        .map_or_else(|| env!("CARGO_MANIFEST_DIR").into(), Into::into)
}

/// A fixed start for manual clocks: 2024-01-01T00:00:00Z.
pub(crate) fn epoch() -> SystemTime {
    UNIX_EPOCH + std::time::Duration::from_secs(1_704_067_200)
}

/// Second vault of [`two_vaults`].
pub(crate) const OTHER_VAULT: &str = "tntother0002";
pub(crate) const OTHER_USER: &str = "other-user";
pub(crate) const OTHER_PASSWORD: &str = "other-password";

/// How many answers the harness has checked against a schema (all tests).
static VALIDATED: AtomicUsize = AtomicUsize::new(0);

pub(crate) fn validated_count() -> usize {
    VALIDATED.load(Ordering::Relaxed)
}

/// The demo config on a manual clock, plus a second vault with its own credentials.
pub(crate) fn two_vaults() -> MockConfig {
    MockConfig::demo()
        .with_vault(OTHER_VAULT, OTHER_USER, OTHER_PASSWORD)
        .with_clock(MockClock::manual_at(epoch()))
}

/// One mock driven in-process.
pub(crate) struct Mock {
    pub(crate) state: MockState,
    app: Router,
}

/// A response, read in full.
pub(crate) struct Reply {
    pub(crate) status: StatusCode,
    pub(crate) headers: HeaderMap,
    pub(crate) body: Bytes,
}

impl Reply {
    pub(crate) fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&self.body)))
    }

    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    pub(crate) fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The `detail` of the first error (v1 or v2 shape).
    pub(crate) fn detail(&self) -> String {
        self.json()["errors"][0]["detail"]
            .as_str()
            .expect("errors[0].detail")
            .to_owned()
    }

    /// The aliases of a create answer, in item order (each item's first alias).
    pub(crate) fn aliases(&self) -> Vec<String> {
        self.json()["data"]
            .as_array()
            .expect("data array")
            .iter()
            .map(|item| {
                item["aliases"][0]["alias"]
                    .as_str()
                    .expect("alias")
                    .to_owned()
            })
            .collect()
    }
}

pub(crate) fn basic(user: &str, password: &str) -> String {
    format!("Basic {}", STANDARD.encode(format!("{user}:{password}")))
}

pub(crate) fn demo_basic() -> String {
    basic(DEMO_V1_USERNAME, DEMO_V1_PASSWORD)
}

/// One item to create: `{"value", "format", "storage"}`.
pub(crate) fn item(value: &str, format: &str, storage: &str) -> Value {
    json!({"value": value, "classifiers": ["test"], "format": format, "storage": storage})
}

impl Mock {
    pub(crate) fn new(config: MockConfig) -> Self {
        let state = MockState::new(config);
        let app = vgs_mock::router(state.clone());
        Self { state, app }
    }

    /// The demo vault and a second one, on a manual clock.
    pub(crate) fn demo() -> Self {
        Self::new(two_vaults())
    }

    pub(crate) fn clock(&self) -> &MockClock {
        self.state.clock()
    }

    /// Sends `request` and checks the answer's shape.
    pub(crate) async fn send(&self, request: Request<Body>) -> Reply {
        let method = request.method().clone();
        let path = request.uri().path().to_owned();
        let host = request
            .headers()
            .get(header::HOST)
            .and_then(|h| h.to_str().ok())
            .map(str::to_owned);
        let response = self.app.clone().oneshot(request).await.expect("infallible");
        let status = response.status();
        let headers = response.headers().clone();
        let body = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .expect("body");
        let reply = Reply {
            status,
            headers,
            body,
        };
        check_shape(&method, &path, host.as_deref(), &reply);
        reply
    }

    /// A request with optional Authorization and JSON body.
    pub(crate) async fn call(
        &self,
        method: Method,
        uri: &str,
        authorization: Option<&str>,
        body: Option<Value>,
    ) -> Reply {
        let mut builder = Request::builder().method(method).uri(uri);
        if let Some(authorization) = authorization {
            builder = builder.header(header::AUTHORIZATION, authorization);
        }
        let body = match body {
            Some(json) => {
                builder = builder.header(header::CONTENT_TYPE, "application/json");
                Body::from(json.to_string())
            }
            None => Body::empty(),
        };
        self.send(builder.body(body).expect("request")).await
    }

    /// A v1 call with the demo vault's access credentials.
    pub(crate) async fn v1(&self, method: Method, uri: &str, body: Option<Value>) -> Reply {
        self.call(method, uri, Some(&demo_basic()), body).await
    }

    /// A v2 call for `vault` under the `/v2/{vault}` prefix.
    pub(crate) async fn v2(
        &self,
        vault: &str,
        token: &str,
        method: Method,
        uri: &str,
        body: Option<Value>,
    ) -> Reply {
        let bearer = format!("Bearer {token}");
        self.call(method, &format!("/v2/{vault}{uri}"), Some(&bearer), body)
            .await
    }

    /// A token request with a form body and optional Authorization.
    pub(crate) async fn token_request(&self, authorization: Option<&str>, form: &str) -> Reply {
        let mut builder = Request::builder()
            .method(Method::POST)
            .uri(TOKEN_PATH)
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
        if let Some(authorization) = authorization {
            builder = builder.header(header::AUTHORIZATION, authorization);
        }
        self.send(builder.body(Body::from(form.to_owned())).expect("request"))
            .await
    }

    /// A token of the demo client with `scope` (None = all its scopes).
    pub(crate) async fn token(&self, scope: Option<&str>) -> String {
        let form = match scope {
            Some(scope) => format!(
                "grant_type=client_credentials&scope={}",
                scope.replace(' ', "+")
            ),
            None => "grant_type=client_credentials".to_owned(),
        };
        let reply = self
            .token_request(Some(&basic(DEMO_CLIENT_ID, DEMO_CLIENT_SECRET)), &form)
            .await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
        reply.json()["access_token"]
            .as_str()
            .expect("access_token")
            .to_owned()
    }

    /// Creates `items` in the demo vault over v1; returns their aliases in order.
    pub(crate) async fn create(&self, items: Vec<Value>) -> Vec<String> {
        let reply = self
            .v1(Method::POST, "/aliases", Some(json!({ "data": items })))
            .await;
        assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.text());
        reply.aliases()
    }

    /// Creates one PERSISTENT UUID alias of `value` in the demo vault.
    pub(crate) async fn create_one(&self, value: &str) -> String {
        self.create(vec![item(value, "UUID", "PERSISTENT")])
            .await
            .remove(0)
    }
}

/// The described path of a request: host-routed v2 calls (`tnt….vault-api…` Host,
/// paths as in v1) are described under `/v2/{vault}`.
fn described_path(path: &str, host: Option<&str>) -> String {
    let label = host
        .and_then(|h| h.split(['.', ':']).next())
        .filter(|label| label.starts_with("tnt") && label.len() > 3);
    match label {
        Some(vault) if path.starts_with("/aliases") => format!("/v2/{vault}{path}"),
        _ => path.to_owned(),
    }
}

/// The media type of a Content-Type header, without parameters.
fn media_type(reply: &Reply) -> Option<&str> {
    reply
        .header("content-type")
        .and_then(|value| value.split(';').next())
        .map(str::trim)
}

/// Checks one answer against the mock's own description (`openapi.yaml`): the
/// operation's declared status (or `default` for an error), its media type, its body
/// schema and the types of the headers it declares. An answer on a path the
/// description does not know must be the router's 404. Panics on a drift.
pub(crate) fn check_shape(method: &Method, path: &str, host: Option<&str>, reply: &Reply) {
    check_against(spec::spec(), method, path, host, reply)
        .unwrap_or_else(|e| panic!("{e}\n{}", reply.text()));
    VALIDATED.fetch_add(1, Ordering::Relaxed);
}

/// [`check_shape`] against any description; the error says what drifted.
pub(crate) fn check_against(
    spec: &Spec,
    method: &Method,
    path: &str,
    host: Option<&str>,
    reply: &Reply,
) -> Result<(), String> {
    let status = reply.status.as_u16();
    let described = described_path(path, host);
    let template = match spec.route(method.as_str(), &described) {
        Routed::Operation(template, _) => template,
        Routed::MethodNotAllowed(template) => {
            return match status {
                405 => Ok(()),
                _ => Err(format!(
                    "{method} {path}: {template} has no {method}, yet answered {status}"
                )),
            };
        }
        Routed::Undescribed => {
            let fallback = status == 404 && reply.json()["errors"][0]["detail"] == "no such route";
            return match fallback {
                true => Ok(()),
                false => Err(format!(
                    "{method} {path} answered {status} but the description has no such path"
                )),
            };
        }
    };
    let at = format!("{method} {path} ({template}) {status}");
    let response = spec
        .response(template, method.as_str(), status)
        .map_err(|e| format!("{at}: {e}"))?;
    for (name, header) in response
        .get("headers")
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
    {
        let Some(value) = reply.header(name) else {
            continue;
        };
        let header = spec.resolve(header);
        if header["schema"]["type"] == "integer" && value.parse::<i64>().is_err() {
            return Err(format!("{at}: header {name} is not an integer: {value:?}"));
        }
    }
    match spec
        .expected(template, method.as_str(), status)
        .map_err(|e| format!("{at}: {e}"))?
    {
        Expected::Empty if reply.body.is_empty() => Ok(()),
        Expected::Empty => Err(format!("{at}: the description declares no body")),
        Expected::Body { media, schema } => {
            if media_type(reply) != Some(media.as_str()) {
                return Err(format!(
                    "{at}: Content-Type {:?}, the description says {media}",
                    reply.header("content-type")
                ));
            }
            let body = if media.ends_with("json") {
                serde_json::from_slice(&reply.body)
                    .map_err(|e| format!("{at}: the body is not JSON: {e}"))?
            } else {
                String::from_utf8(reply.body.to_vec())
                    .map(Value::String)
                    .map_err(|_| format!("{at}: the body is not UTF-8 text"))?
            };
            spec.validate(&schema, &body)
                .map_err(|e| format!("{at} drifts from the description: {e}"))
        }
    }
}
