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
use bytes::Bytes;

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
    let watch = shutdown.clone();
    let service = hyper::service::service_fn(move |request: Request<Incoming>| {
        let context = Arc::clone(&context);
        let killer = on_request.clone();
        let shutdown = watch.clone();
        async move {
            let request = request.map(Body::new);
            let route = match side {
                Side::Outbound => Route::OutboundProxy,
                Side::Inbound => Route::InboundProxy,
            };
            let response = match side {
                Side::Outbound => outbound(&context, request, &killer, shutdown).await,
                Side::Inbound => inbound(&context, request, &killer).await,
            };
            Ok::<_, std::convert::Infallible>(counted(&context.state, route, response))
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

/// Marks an answer already counted (a fault's, which counts itself), or not to count
/// (a CONNECT's 200: the requests inside the tunnel count).
#[derive(Clone, Copy)]
struct Uncounted;

/// Counts every answer of a proxy, in one place, under `route`.
fn counted(state: &MockState, route: Route, response: Response) -> Response {
    if response.extensions().get::<Uncounted>().is_none() {
        state
            .counters()
            .record(route, Outcome::Status(response.status().as_u16()));
    }
    response
}

// ---------------------------------------------------------------------------------
// Outbound
// ---------------------------------------------------------------------------------

async fn outbound(
    context: &Arc<Context>,
    request: Request<Body>,
    killer: &ConnectionKiller,
    shutdown: watch::Receiver<bool>,
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
        return response;
    };
    if request.method() == Method::CONNECT {
        return connect(context, request, vault, shutdown);
    }
    let uri = request.uri().clone();
    if uri.scheme_str() != Some("http") || uri.authority().is_none() {
        return proxy_error(
            StatusCode::BAD_REQUEST,
            "send the upstream's absolute http:// URL (a proxy request), or CONNECT for https",
        );
    }
    let Ok(url) = reqwest::Url::parse(&uri.to_string()) else {
        return proxy_error(StatusCode::BAD_REQUEST, "the request URL is not valid");
    };
    let host = url.host_str().unwrap_or_default().to_owned();
    let Some(route) = vault
        .routes
        .as_ref()
        .and_then(|routes| routes.outbound().find(|r| r.serves(&host)).cloned())
    else {
        return no_route(&vault, &host);
    };
    let path = url.path().to_owned();
    exchange(
        context,
        &vault,
        &route,
        Route::OutboundProxy,
        url,
        &path,
        request,
        killer,
    )
    .await
}

/// A request no route serves: refused (our choice, VGS documents none), so aliases meant
/// to be revealed never reach an upstream as they are.
fn no_route(vault: &VaultSlot, host: &str) -> Response {
    proxy_error(
        StatusCode::NOT_FOUND,
        &format!("no route of vault {} serves host {host}", vault.id),
    )
}

/// The vault whose access credentials the proxy request carries.
fn proxy_vault(state: &MockState, headers: &HeaderMap) -> Option<Arc<VaultSlot>> {
    let (user, password) = api::basic_pair(headers.get(header::PROXY_AUTHORIZATION)?)?;
    state.vault_for_v1(&user, &password).cloned()
}

/// `CONNECT host:port`: 200, then TLS with a certificate for `host` from the mock's
/// authority, then every request inside goes to `https://host:port`.
fn connect(
    context: &Arc<Context>,
    mut request: Request<Body>,
    vault: Arc<VaultSlot>,
    mut shutdown: watch::Receiver<bool>,
) -> Response {
    let Some(authority) = request.uri().authority().cloned() else {
        return proxy_error(StatusCode::BAD_REQUEST, "CONNECT needs host:port");
    };
    let host = authority
        .host()
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_owned();
    let Some(route) = vault
        .routes
        .as_ref()
        .and_then(|routes| routes.outbound().find(|r| r.serves(&host)).cloned())
    else {
        return no_route(&vault, &host);
    };
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
            let route = route.clone();
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
                        let path = url.path().to_owned();
                        exchange(
                            &context,
                            &vault,
                            &route,
                            Route::OutboundProxy,
                            url,
                            &path,
                            inner,
                            &killer,
                        )
                        .await
                    }
                    Err(_) => proxy_error(StatusCode::BAD_REQUEST, "the request URL is not valid"),
                };
                Ok::<_, std::convert::Infallible>(counted(
                    &context.state,
                    Route::OutboundProxy,
                    response,
                ))
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
            _ = shutdown.changed() => {}
        }
    });
    let mut response = StatusCode::OK.into_response();
    response.extensions_mut().insert(Uncounted);
    response
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
    let host = host_of(request.headers());
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
    // A route's host_endpoint names VGS's inbound host (`(.*)\.verygoodproxy\.com`):
    // on a loopback address the mock has no such name, so there the first inbound
    // route serves (our choice).
    let loopback = host == "localhost" || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback());
    let Some(route) = vault.routes.as_ref().and_then(|routes| {
        routes
            .inbound()
            .find(|r| loopback || r.serves(&host))
            .cloned()
    }) else {
        return proxy_error(
            StatusCode::NOT_FOUND,
            &format!("no inbound route of vault {} serves host {host}", vault.id),
        );
    };
    let Direction::Inbound(base) = &route.direction else {
        unreachable!("inbound() yields inbound routes");
    };
    // Conditions test the client's path, not the upstream's (which has the base's).
    let path = request.uri().path().to_owned();
    let target = request.uri().path_and_query().map_or("/", |p| p.as_str());
    let Ok(url) = reqwest::Url::parse(&format!("{}{target}", base.as_str().trim_end_matches('/')))
    else {
        return proxy_error(StatusCode::BAD_REQUEST, "the request URL is not valid");
    };
    exchange(
        context,
        &vault,
        &route,
        Route::InboundProxy,
        url,
        &path,
        request,
        killer,
    )
    .await
}

/// The Host header's name, without a port (`[::1]:80` -> `::1`).
fn host_of(headers: &HeaderMap) -> String {
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or_default();
    let name = match host.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or_default(),
        None => host.rsplit_once(':').map_or(host, |(name, _)| name),
    };
    name.to_ascii_lowercase()
}

// ---------------------------------------------------------------------------------
// One proxied exchange
// ---------------------------------------------------------------------------------

/// Faults, the rate limit, the route's REQUEST filters, the upstream, its RESPONSE
/// filters. `path` is what the filters' PathInfo conditions test (the client's).
#[allow(clippy::too_many_arguments)]
async fn exchange(
    context: &Context,
    vault: &Arc<VaultSlot>,
    proxy_route: &ProxyRoute,
    route: Route,
    url: reqwest::Url,
    path: &str,
    request: Request<Body>,
    killer: &ConnectionKiller,
) -> Response {
    let state = &context.state;
    if let Some(mut response) = crate::faults::before_proxy(state, route, killer).await {
        response.extensions_mut().insert(Uncounted);
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
        return response;
    }
    let host = url.host_str().unwrap_or_default().to_owned();
    let (parts, body) = request.into_parts();
    // Filters read plain bodies: a compressed one would pass them in clear.
    if parts
        .headers
        .get(header::CONTENT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|e| !e.trim().eq_ignore_ascii_case("identity"))
    {
        return proxy_error(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "the proxy's filters read uncompressed bodies only: send the body without Content-Encoding",
        );
    }
    let Ok(body) = api::read_limited(body, api::MAX_BODY_BYTES).await else {
        return proxy_error(
            StatusCode::PAYLOAD_TOO_LARGE,
            "the request body is too large or could not be read",
        );
    };
    let content_type = header_text(&parts.headers, header::CONTENT_TYPE);
    let facts = Facts {
        path,
        method: parts.method.as_str(),
        content_type: &content_type,
        status: None,
    };
    let mut counts = Counts::default();
    let body = match run_filters(
        proxy_route,
        Phase::Request,
        &facts,
        body,
        vault,
        now,
        &mut counts,
    ) {
        Ok(body) => body,
        Err(why) => return proxy_error(StatusCode::BAD_REQUEST, &why),
    };

    let mut upstream = context
        .client
        .request(parts.method.clone(), url.clone())
        .body(body);
    let dropped = connection_listed(&parts.headers);
    for (name, value) in &parts.headers {
        if forwardable(name, &dropped)
            && name != header::HOST
            && name != header::ACCEPT_ENCODING
            // The filters may have changed the body's length.
            && name != header::CONTENT_LENGTH
        {
            upstream = upstream.header(name, value);
        }
    }
    // Answers the filters can read: uncompressed.
    upstream = upstream.header(header::ACCEPT_ENCODING, "identity");
    let answer = upstream.send().await;
    // The request went (or was tried): it counts, with the values revealed into it.
    state.counters().proxied(counts.revealed, counts.redacted);
    let mut counts = Counts::default();
    let answer = match answer {
        Ok(answer) => answer,
        Err(error) => {
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
    let Ok(body) = read_answer(answer).await else {
        return proxy_error(
            StatusCode::BAD_GATEWAY,
            &format!(
                "the upstream {host}'s answer could not be read, or is larger than {} bytes",
                api::MAX_BODY_BYTES
            ),
        );
    };
    if headers
        .get(header::CONTENT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|e| !e.trim().eq_ignore_ascii_case("identity"))
    {
        return proxy_error(
            StatusCode::BAD_GATEWAY,
            &format!("the upstream {host} answered a compressed body the filters cannot read"),
        );
    }
    let answer_type = header_text(&headers, header::CONTENT_TYPE);
    let facts = Facts {
        content_type: &answer_type,
        status: Some(status.as_u16()),
        ..facts
    };
    let body = match run_filters(
        proxy_route,
        Phase::Response,
        &facts,
        body,
        vault,
        state.now(),
        &mut counts,
    ) {
        Ok(body) => body,
        Err(why) => return proxy_error(StatusCode::BAD_GATEWAY, &why),
    };
    state.counters().filtered(counts.revealed, counts.redacted);
    tracing::debug!(
        proxy = route.as_str(),
        vault = vault.id.as_str(),
        host = host.as_str(),
        route = proxy_route.label(),
        status = status.as_u16(),
        "proxied"
    );
    let mut response = (status, Body::from(body)).into_response();
    let dropped = connection_listed(&headers);
    for (name, value) in &headers {
        if forwardable(name, &dropped) && name != header::CONTENT_LENGTH {
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

/// The route's filters of `phase` over `body`, adding what they did to `counts`.
fn run_filters(
    route: &ProxyRoute,
    phase: Phase,
    facts: &Facts<'_>,
    body: Bytes,
    vault: &VaultSlot,
    now: std::time::SystemTime,
    counts: &mut Counts,
) -> Result<Bytes, String> {
    let (body, done) = filters::apply(&route.filters, phase, facts, body, &vault.store, now)?;
    counts.redacted += done.redacted;
    counts.revealed += done.revealed;
    counts.unrevealed += done.unrevealed;
    if done.unrevealed > 0 {
        tracing::debug!(
            unrevealed = done.unrevealed,
            "aliases the vault does not hold were left as they are"
        );
    }
    Ok(body)
}

/// An upstream's answer body, at most [`api::MAX_BODY_BYTES`].
async fn read_answer(mut answer: reqwest::Response) -> Result<Bytes, ()> {
    let mut body = Vec::new();
    while let Some(chunk) = answer.chunk().await.map_err(|_| ())? {
        if body.len() + chunk.len() > api::MAX_BODY_BYTES {
            return Err(());
        }
        body.extend_from_slice(&chunk);
    }
    Ok(Bytes::from(body))
}

fn header_text(headers: &HeaderMap, name: HeaderName) -> String {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned()
}

/// The headers a `Connection` header names: of this hop only.
fn connection_listed(headers: &HeaderMap) -> Vec<String> {
    headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|name| name.trim().to_ascii_lowercase())
        .filter(|name| !name.is_empty())
        .collect()
}

/// Whether a header goes on to the next hop: not hop-by-hop (RFC 9110 section
/// 7.6.1), not proxy authentication, not named by `Connection`.
fn forwardable(name: &HeaderName, connection_listed: &[String]) -> bool {
    !matches!(
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
    ) && !connection_listed
        .iter()
        .any(|listed| listed == name.as_str())
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
