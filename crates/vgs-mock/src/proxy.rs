//! VGS's two proxies, configured by route files. The outbound (forward) proxy takes
//! HTTP proxy requests authenticated with a vault's access credentials: absolute-form
//! for `http://` upstreams, CONNECT with TLS interception (the mock's certificate
//! authority) for `https://` ones; matching routes' REQUEST filters reveal aliases,
//! RESPONSE filters redact. The inbound (reverse) proxy forwards to the matching
//! inbound route's upstream, REQUEST filters redacting and RESPONSE filters revealing.

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, Request, StatusCode, header};
use axum::response::{IntoResponse, Response};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::TokioIo;
use rand::Rng;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::api::{self, ApiError, Target};
use crate::filters::{self, Counts};
use crate::route::Route;
use crate::routes::{Direction, Facts, Phase, ProxyRoute};
use crate::server::ConnectionKiller;
use crate::state::{MockState, VaultSlot};
use crate::stats::Outcome;
use crate::tls::CertificateAuthority;

/// The header VGS adds to every proxied answer.
pub const REQUEST_ID_HEADER: &str = "vgs-request-id";
/// The header VGS adds to an answer that came from the upstream: the upstream's status.
pub const UPSTREAM_STATUS_HEADER: &str = "vgs-upstream-status-code";
/// How long an upstream may take.
const UPSTREAM_TIMEOUT: Duration = Duration::from_secs(30);

/// The running proxies.
pub(crate) struct Proxies {
    pub(crate) outbound: SocketAddr,
    pub(crate) inbound: SocketAddr,
    pub(crate) authority: Arc<CertificateAuthority>,
    pub(crate) tasks: Vec<JoinHandle<()>>,
}

/// What every proxied exchange needs.
struct Context {
    state: MockState,
    authority: Arc<CertificateAuthority>,
    client: reqwest::Client,
}

/// Starts both proxies on `ip` (free ports), until `shutdown` turns true.
pub(crate) async fn start(
    state: MockState,
    ip: IpAddr,
    shutdown: watch::Receiver<bool>,
) -> io::Result<Proxies> {
    let authority =
        Arc::new(CertificateAuthority::generate("vgs-mock proxy CA").map_err(io::Error::other)?);
    let mut client = reqwest::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(UPSTREAM_TIMEOUT);
    // Upstreams the tests stand up present certificates of the mock's own authority,
    // or of one the configuration names.
    let extra: Vec<String> = std::iter::once(authority.certificate_pem().to_owned())
        .chain(state.config().upstream_ca_pem.iter().cloned())
        .collect();
    for pem in &extra {
        let certificate = reqwest::Certificate::from_pem(pem.as_bytes())
            .map_err(|e| io::Error::other(format!("an upstream CA certificate is not PEM: {e}")))?;
        client = client.add_root_certificate(certificate);
    }
    let client = client.build().map_err(io::Error::other)?;
    let context = Arc::new(Context {
        state,
        authority: Arc::clone(&authority),
        client,
    });
    let outbound_listener = TcpListener::bind((ip, 0)).await?;
    let inbound_listener = TcpListener::bind((ip, 0)).await?;
    let outbound = outbound_listener.local_addr()?;
    let inbound = inbound_listener.local_addr()?;
    let tasks = vec![
        tokio::spawn(accept(
            outbound_listener,
            Arc::clone(&context),
            Side::Outbound,
            shutdown.clone(),
        )),
        tokio::spawn(accept(inbound_listener, context, Side::Inbound, shutdown)),
    ];
    tracing::info!(%outbound, %inbound, "vgs-mock proxies listening");
    Ok(Proxies {
        outbound,
        inbound,
        authority,
        tasks,
    })
}

#[derive(Clone, Copy)]
enum Side {
    Outbound,
    Inbound,
}

async fn accept(
    listener: TcpListener,
    context: Arc<Context>,
    side: Side,
    mut shutdown: watch::Receiver<bool>,
) {
    loop {
        tokio::select! {
            _ = shutdown.changed() => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    tokio::spawn(connection(stream, Arc::clone(&context), side, shutdown.clone()));
                }
                Err(error) => {
                    tracing::debug!(%error, "proxy accept failed");
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            },
        }
    }
}

async fn connection(
    stream: TcpStream,
    context: Arc<Context>,
    side: Side,
    mut shutdown: watch::Receiver<bool>,
) {
    let _ = stream.set_nodelay(true);
    let killer = ConnectionKiller::new();
    let on_request = killer.clone();
    let service = hyper::service::service_fn(move |request: Request<Incoming>| {
        let context = Arc::clone(&context);
        let killer = on_request.clone();
        async move {
            let response = match side {
                Side::Outbound => outbound(&context, request.map(Body::new), &killer).await,
                Side::Inbound => inbound(&context, request.map(Body::new), &killer).await,
            };
            Ok::<_, std::convert::Infallible>(response)
        }
    });
    let connection = http1::Builder::new()
        .serve_connection(TokioIo::new(stream), service)
        .with_upgrades();
    tokio::select! {
        result = connection => {
            if let Err(error) = result {
                tracing::trace!(%error, "proxy connection ended with an error");
            }
        }
        () = killer.killed() => tracing::debug!("proxy connection dropped by a reset fault"),
        _ = shutdown.changed() => {}
    }
}

// ---------------------------------------------------------------------------------
// Outbound
// ---------------------------------------------------------------------------------

async fn outbound(
    context: &Arc<Context>,
    request: Request<Body>,
    killer: &ConnectionKiller,
) -> Response {
    let state = &context.state;
    let Some(vault) = proxy_vault(state, request.headers()) else {
        let mut response = proxy_error(
            StatusCode::PROXY_AUTHENTICATION_REQUIRED,
            "the outbound proxy needs a vault's access credentials as Proxy-Authorization: Basic",
        );
        response.headers_mut().insert(
            header::PROXY_AUTHENTICATE,
            HeaderValue::from_static("Basic realm=\"vgs-outbound-proxy\""),
        );
        state
            .counters()
            .record(Route::OutboundProxy, Outcome::Status(407));
        return response;
    };
    if request.method() == Method::CONNECT {
        return connect(context, request, vault);
    }
    let uri = request.uri().clone();
    if uri.scheme_str() != Some("http") || uri.authority().is_none() {
        return proxy_error(
            StatusCode::BAD_REQUEST,
            "send the upstream's absolute http:// URL (a proxy request), or CONNECT for https",
        );
    }
    let url = match reqwest::Url::parse(&uri.to_string()) {
        Ok(url) => url,
        Err(_) => return proxy_error(StatusCode::BAD_REQUEST, "the request URL is not valid"),
    };
    exchange(context, &vault, Route::OutboundProxy, url, request, killer).await
}

/// The vault whose access credentials the proxy request carries.
fn proxy_vault(state: &MockState, headers: &HeaderMap) -> Option<Arc<VaultSlot>> {
    let value = headers.get(header::PROXY_AUTHORIZATION)?;
    let mut as_authorization = HeaderMap::new();
    as_authorization.insert(header::AUTHORIZATION, value.clone());
    let (user, password) = api::basic_credentials(&as_authorization)?.ok()?;
    state.vault_for_v1(&user, &password).cloned()
}

/// `CONNECT host:port`: 200, then TLS with a certificate for `host` from the mock's
/// authority, then every request inside goes to `https://host:port`.
fn connect(context: &Arc<Context>, mut request: Request<Body>, vault: Arc<VaultSlot>) -> Response {
    let Some(authority) = request.uri().authority().cloned() else {
        return proxy_error(StatusCode::BAD_REQUEST, "CONNECT needs host:port");
    };
    let host = authority
        .host()
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_owned();
    let config = match context.authority.server_config(&host) {
        Ok(config) => config,
        Err(why) => return proxy_error(StatusCode::BAD_GATEWAY, &why),
    };
    let upgrade = hyper::upgrade::on(&mut request);
    let context = Arc::clone(context);
    tokio::spawn(async move {
        let upgraded = match upgrade.await {
            Ok(upgraded) => upgraded,
            Err(error) => {
                tracing::debug!(%error, "CONNECT upgrade failed");
                return;
            }
        };
        let acceptor = tokio_rustls::TlsAcceptor::from(config);
        let tls = match acceptor.accept(TokioIo::new(upgraded)).await {
            Ok(tls) => tls,
            Err(error) => {
                tracing::debug!(%error, host = host.as_str(), "TLS interception failed (does the client trust the mock's CA?)");
                return;
            }
        };
        let killer = ConnectionKiller::new();
        let on_request = killer.clone();
        let base = format!("https://{authority}");
        let service = hyper::service::service_fn(move |inner: Request<Incoming>| {
            let context = Arc::clone(&context);
            let vault = Arc::clone(&vault);
            let killer = on_request.clone();
            let base = base.clone();
            async move {
                let inner = inner.map(Body::new);
                let target = inner
                    .uri()
                    .path_and_query()
                    .map_or("/", |p| p.as_str())
                    .to_owned();
                let response = match reqwest::Url::parse(&format!("{base}{target}")) {
                    Ok(url) => {
                        exchange(&context, &vault, Route::OutboundProxy, url, inner, &killer).await
                    }
                    Err(_) => proxy_error(StatusCode::BAD_REQUEST, "the request URL is not valid"),
                };
                Ok::<_, std::convert::Infallible>(response)
            }
        });
        let connection = http1::Builder::new().serve_connection(TokioIo::new(tls), service);
        tokio::select! {
            result = connection => {
                if let Err(error) = result {
                    tracing::trace!(%error, "intercepted connection ended with an error");
                }
            }
            () = killer.killed() => tracing::debug!("intercepted connection dropped by a reset fault"),
        }
    });
    StatusCode::OK.into_response()
}

// ---------------------------------------------------------------------------------
// Inbound
// ---------------------------------------------------------------------------------

async fn inbound(
    context: &Arc<Context>,
    request: Request<Body>,
    killer: &ConnectionKiller,
) -> Response {
    let state = &context.state;
    let host = request
        .headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or_default();
    let host = host.rsplit_once(':').map_or(host, |(name, port)| {
        if port.bytes().all(|b| b.is_ascii_digit()) {
            name
        } else {
            host
        }
    });
    // VGS's inbound host names the vault (`tnt….sandbox.verygoodproxy.com`); on
    // loopback, the first vault with inbound routes.
    let label = host.split('.').next().unwrap_or_default();
    let vault = state.vault(label).cloned().or_else(|| {
        state
            .vaults()
            .find(|v| {
                v.routes
                    .as_ref()
                    .is_some_and(|r| r.inbound().next().is_some())
            })
            .cloned()
    });
    let Some(vault) = vault else {
        return proxy_error(StatusCode::NOT_FOUND, "no vault has inbound routes");
    };
    let Some(route) = vault
        .routes
        .as_ref()
        .and_then(|routes| routes.inbound().find(|r| r.serves(host)).cloned())
    else {
        state
            .counters()
            .record(Route::InboundProxy, Outcome::Status(404));
        return proxy_error(
            StatusCode::NOT_FOUND,
            &format!("no inbound route of vault {} serves host {host}", vault.id),
        );
    };
    let Direction::Inbound(base) = &route.direction else {
        unreachable!("inbound() yields inbound routes");
    };
    let target = request.uri().path_and_query().map_or("/", |p| p.as_str());
    let url = match reqwest::Url::parse(&format!("{}{target}", base.as_str().trim_end_matches('/')))
    {
        Ok(url) => url,
        Err(_) => return proxy_error(StatusCode::BAD_REQUEST, "the request URL is not valid"),
    };
    exchange(context, &vault, Route::InboundProxy, url, request, killer).await
}

// ---------------------------------------------------------------------------------
// One proxied exchange
// ---------------------------------------------------------------------------------

/// Faults, the rate limit, the route's REQUEST filters, the upstream, its RESPONSE
/// filters; counted under `route`.
async fn exchange(
    context: &Context,
    vault: &Arc<VaultSlot>,
    route: Route,
    url: reqwest::Url,
    request: Request<Body>,
    killer: &ConnectionKiller,
) -> Response {
    let state = &context.state;
    if let Some(response) = crate::faults::before_proxy(state, route, killer).await {
        return response;
    }
    let now = state.now();
    if let Err(limited) = vault.admit(state, now) {
        let mut response = proxy_error(
            StatusCode::TOO_MANY_REQUESTS,
            "rate limit exceeded: too many requests for this vault in the last minute",
        );
        let secs = limited.retry_after.as_secs_f64().ceil().max(1.0) as u64;
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        state.counters().record(route, Outcome::Status(429));
        return response;
    }
    let host = url.host_str().unwrap_or_default().to_owned();
    let proxy_route: Option<ProxyRoute> = vault.routes.as_ref().and_then(|routes| match route {
        Route::InboundProxy => routes
            .inbound()
            .find(|r| r.serves(request_host(&request)))
            .cloned(),
        _ => routes.outbound().find(|r| r.serves(&host)).cloned(),
    });
    if proxy_route.is_none() {
        // Our choice (VGS documents none): a request no route serves is refused, not
        // forwarded, so aliases meant to be revealed never reach an upstream as they are.
        state.counters().record(route, Outcome::Status(404));
        return proxy_error(
            StatusCode::NOT_FOUND,
            &format!("no route of vault {} serves host {host}", vault.id),
        );
    }
    let (parts, body) = request.into_parts();
    let body = match api::read_limited(body, api::MAX_BODY_BYTES).await {
        Ok(body) => body,
        Err(_) => {
            return proxy_error(
                StatusCode::PAYLOAD_TOO_LARGE,
                "the request body is too large or could not be read",
            );
        }
    };
    let content_type = parts
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let facts = Facts {
        path: url.path(),
        method: parts.method.as_str(),
        content_type: &content_type,
        status: None,
    };
    let mut counts = Counts::default();
    let filtered = run_filters(
        proxy_route.as_ref(),
        Phase::Request,
        &facts,
        body,
        vault,
        now,
        &mut counts,
    );
    let body = match filtered {
        Ok(body) => body,
        Err(why) => {
            state.counters().record(route, Outcome::Status(400));
            return proxy_error(StatusCode::BAD_REQUEST, &why);
        }
    };

    let mut upstream = context
        .client
        .request(parts.method.clone(), url.clone())
        .body(body);
    for (name, value) in &parts.headers {
        if !hop_by_hop(name) && name != header::HOST && name != header::CONTENT_LENGTH {
            upstream = upstream.header(name, value);
        }
    }
    let answer = match upstream.send().await {
        Ok(answer) => answer,
        Err(error) => {
            state.counters().record(route, Outcome::Status(502));
            let what = if error.is_timeout() {
                "did not answer in time"
            } else {
                "could not be reached"
            };
            return proxy_error(
                StatusCode::BAD_GATEWAY,
                &format!("the upstream {host} {what}"),
            );
        }
    };
    let status = answer.status();
    let headers = answer.headers().clone();
    let body = match answer.bytes().await {
        Ok(body) => body,
        Err(_) => {
            state.counters().record(route, Outcome::Status(502));
            return proxy_error(
                StatusCode::BAD_GATEWAY,
                &format!("the upstream {host}'s answer could not be read"),
            );
        }
    };
    let answer_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let facts = Facts {
        content_type: &answer_type,
        status: Some(status.as_u16()),
        ..facts
    };
    let filtered = run_filters(
        proxy_route.as_ref(),
        Phase::Response,
        &facts,
        body,
        vault,
        state.now(),
        &mut counts,
    );
    let body = match filtered {
        Ok(body) => body,
        Err(why) => {
            state.counters().record(route, Outcome::Status(502));
            return proxy_error(StatusCode::BAD_GATEWAY, &why);
        }
    };
    state.counters().proxied(counts.revealed, counts.redacted);
    state
        .counters()
        .record(route, Outcome::Status(status.as_u16()));
    tracing::debug!(
        proxy = route.as_str(),
        vault = vault.id.as_str(),
        host = host.as_str(),
        route = proxy_route
            .as_ref()
            .map_or("(none matched)", ProxyRoute::label),
        status = status.as_u16(),
        revealed = counts.revealed,
        redacted = counts.redacted,
        unrevealed = counts.unrevealed,
        "proxied"
    );
    let mut response = (status, Body::from(body)).into_response();
    for (name, value) in &headers {
        if !hop_by_hop(name) && name != header::CONTENT_LENGTH {
            response.headers_mut().append(name, value.clone());
        }
    }
    let headers = response.headers_mut();
    headers.insert(REQUEST_ID_HEADER, request_id());
    // VGS's: the status the upstream gave, on every answer that came from it (a proxy
    // error has none).
    headers.insert(UPSTREAM_STATUS_HEADER, HeaderValue::from(status.as_u16()));
    response
}

/// The route's filters of `phase` over `body` (none without a route), adding what
/// they did to `counts`.
fn run_filters(
    route: Option<&ProxyRoute>,
    phase: Phase,
    facts: &Facts<'_>,
    body: bytes::Bytes,
    vault: &VaultSlot,
    now: std::time::SystemTime,
    counts: &mut Counts,
) -> Result<bytes::Bytes, String> {
    let Some(route) = route else {
        return Ok(body);
    };
    let (body, done) = filters::apply(&route.filters, phase, facts, body, &vault.store, now)?;
    counts.redacted += done.redacted;
    counts.revealed += done.revealed;
    counts.unrevealed += done.unrevealed;
    Ok(body)
}

fn request_host(request: &Request<Body>) -> &str {
    let host = request
        .headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or_default();
    host.rsplit_once(':').map_or(host, |(name, _)| name)
}

/// Headers of one hop, never forwarded (RFC 9110 section 7.6.1, plus proxy auth).
fn hop_by_hop(name: &HeaderName) -> bool {
    matches!(
        name.as_str(),
        "connection"
            | "proxy-connection"
            | "keep-alive"
            | "proxy-authorization"
            | "proxy-authenticate"
            | "te"
            | "trailer"
            | "transfer-encoding"
            | "upgrade"
    )
}

fn request_id() -> HeaderValue {
    let id: [u8; 16] = rand::rng().random();
    let text: String = id.iter().map(|b| format!("{b:02x}")).collect();
    HeaderValue::from_str(&text).expect("hex is a header value")
}

/// An error of the proxy itself (not the upstream's), in the vault API's error shape,
/// with a request id.
pub(crate) fn proxy_error(status: StatusCode, detail: &str) -> Response {
    let mut response = api::error_response(Target::V1, "proxy", &ApiError::new(status, detail));
    response
        .headers_mut()
        .insert(REQUEST_ID_HEADER, request_id());
    response
}
