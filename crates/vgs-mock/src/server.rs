//! Serving the router on `127.0.0.1:0`: our own accept loop (so that a reset fault
//! can drop one connection mid-request) and `MockHandle`, the running mock.

use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::http::Request;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::TokioIo;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, watch};
use tokio::task::JoinHandle;
use tower::ServiceExt;

use crate::clock::MockClock;
use crate::config::MockConfig;
use crate::faults::{FailWith, FaultConfig};
use crate::route::Route;
use crate::state::MockState;
use crate::stats::Stats;
use crate::store::RecordView;

/// Put in each request's extensions by the server: lets a reset fault drop the
/// connection the request came on.
#[derive(Clone)]
pub(crate) struct ConnectionKiller(Arc<Notify>);

impl ConnectionKiller {
    pub(crate) fn new() -> Self {
        ConnectionKiller(Arc::new(Notify::new()))
    }

    pub(crate) fn kill(&self) {
        self.0.notify_one();
    }

    /// Completes once [`kill`](Self::kill) was called.
    pub(crate) async fn killed(&self) {
        self.0.notified().await;
    }
}

/// Starts a mock for `config` on `127.0.0.1` with a free port.
///
/// Must be called within a Tokio runtime; the mock runs until [`MockHandle::stop`]
/// or until the handle is dropped.
/// To bind a given address, use [`start_on`].
pub async fn start(config: MockConfig) -> io::Result<MockHandle> {
    start_with_state(MockState::new(config)).await
}

/// Starts a mock for `config` on `addr`, e.g. `127.0.0.1:8080` (`vaultctl mock
/// serve --addr`); port 0 picks a free port, and [`MockHandle::addr`] tells which.
///
/// The mock speaks plain HTTP with the configured credentials: bind it to loopback
/// unless you know why not. Must be called within a Tokio runtime.
pub async fn start_on(addr: SocketAddr, config: MockConfig) -> io::Result<MockHandle> {
    serve(TcpListener::bind(addr).await?, MockState::new(config)).await
}

/// Starts serving an existing state (e.g. one a test also drives in-process).
pub async fn start_with_state(state: MockState) -> io::Result<MockHandle> {
    serve(TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await?, state).await
}

async fn serve(listener: TcpListener, state: MockState) -> io::Result<MockHandle> {
    let addr = listener.local_addr()?;
    let (shutdown, watch_shutdown) = watch::channel(false);
    // The proxies run when a vault has routes: on the API's address, ports of their own.
    let proxies = match state.vaults().any(|vault| vault.routes.is_some()) {
        true => Some(crate::proxy::start(state.clone(), addr.ip(), watch_shutdown.clone()).await?),
        false => None,
    };
    let app = crate::router(state.clone());
    let task = tokio::spawn(accept_loop(listener, app, watch_shutdown));
    tracing::info!(%addr, "vgs-mock listening");
    Ok(MockHandle {
        addr,
        base_url: format!("http://{addr}"),
        state,
        shutdown,
        task: Some(task),
        proxies,
    })
}

async fn accept_loop(listener: TcpListener, app: Router, mut shutdown: watch::Receiver<bool>) {
    loop {
        tokio::select! {
            _ = shutdown.changed() => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    tokio::spawn(serve_connection(stream, app.clone(), shutdown.clone()));
                }
                Err(error) => {
                    // E.g. out of file descriptors: back off instead of spinning.
                    tracing::debug!(%error, "accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                }
            },
        }
    }
}

async fn serve_connection(stream: TcpStream, app: Router, mut shutdown: watch::Receiver<bool>) {
    // Small requests and answers: don't let Nagle delay them.
    let _ = stream.set_nodelay(true);
    let killer = ConnectionKiller::new();
    let on_request = killer.clone();
    let service = hyper::service::service_fn(move |request: Request<Incoming>| {
        let mut request = request.map(Body::new);
        request.extensions_mut().insert(on_request.clone());
        app.clone().oneshot(request)
    });
    let connection = http1::Builder::new().serve_connection(TokioIo::new(stream), service);
    tokio::select! {
        result = connection => {
            if let Err(error) = result {
                tracing::trace!(%error, "connection ended with an error");
            }
        }
        // Dropping the connection future closes the socket without an answer.
        () = killer.0.notified() => tracing::debug!("connection dropped by a reset fault"),
        _ = shutdown.changed() => {}
    }
}

/// A running mock: its address, the credentials it accepts, its state; stops when
/// dropped or with [`stop`](Self::stop).
pub struct MockHandle {
    addr: SocketAddr,
    base_url: String,
    state: MockState,
    shutdown: watch::Sender<bool>,
    task: Option<JoinHandle<()>>,
    proxies: Option<crate::proxy::Proxies>,
}

impl MockHandle {
    /// The socket address (127.0.0.1 unless started with [`start_on`]).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT`: the base URL of API v1 and of the token endpoint.
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// The token endpoint URL.
    pub fn token_url(&self) -> String {
        format!("{}{}", self.base_url, crate::TOKEN_PATH)
    }

    /// The base URL of API v2 for `vault` on loopback: `http://127.0.0.1:PORT/v2/{vault}`.
    /// (API v2 is also served at the base URL when the Host header's first label is
    /// the vault id, as in `{vault}.sandbox.vault-api.verygoodvault.com`.)
    pub fn v2_url(&self, vault: &str) -> String {
        format!("{}/v2/{vault}", self.base_url)
    }

    /// The outbound (forward) proxy's address, when a vault has routes. Clients send
    /// proxy requests there with a vault's access credentials (HTTP proxy Basic auth).
    pub fn outbound_proxy_addr(&self) -> Option<SocketAddr> {
        self.proxies.as_ref().map(|p| p.outbound)
    }

    /// The inbound (reverse) proxy's address, when a vault has routes.
    pub fn inbound_proxy_addr(&self) -> Option<SocketAddr> {
        self.proxies.as_ref().map(|p| p.inbound)
    }

    /// The certificate authority the outbound proxy intercepts TLS with (clients of
    /// https upstreams must trust its certificate), when the proxies run.
    pub fn proxy_authority(&self) -> Option<&crate::tls::CertificateAuthority> {
        self.proxies.as_ref().map(|p| &*p.authority)
    }

    /// The configuration, i.e. the vaults and credentials the mock accepts.
    pub fn config(&self) -> &MockConfig {
        self.state.config()
    }

    /// The shared state (same as the server's).
    pub fn state(&self) -> &MockState {
        &self.state
    }

    /// The mock's clock.
    pub fn clock(&self) -> &MockClock {
        self.state.clock()
    }

    /// A snapshot of the counters (same data as `GET /_mock/stats`).
    pub fn stats(&self) -> Stats {
        self.state.stats()
    }

    /// The record behind `alias` in `vault`, see [`MockState::record`].
    pub fn record(&self, vault: &str, alias: &str) -> Option<RecordView> {
        self.state.record(vault, alias)
    }

    /// Distinct records stored in `vault`, see [`MockState::record_count`].
    pub fn record_count(&self, vault: &str) -> Option<usize> {
        self.state.record_count(vault)
    }

    /// Replaces the random fault settings.
    pub fn set_faults(&self, faults: FaultConfig) {
        self.state.set_faults(faults);
    }

    /// Makes the next `count` calls of `route` fail `with`.
    pub fn fail_next(&self, route: Route, count: u32, with: FailWith) {
        self.state.fail_next(route, count, with);
    }

    /// Arms a rendezvous of the next `count` vault API calls, see
    /// [`MockState::rendezvous`].
    pub fn rendezvous(&self, count: usize, wait: std::time::Duration) -> crate::Rendezvous {
        self.state.rendezvous(count, wait)
    }

    /// Clears state, see [`MockState::reset`].
    pub fn reset(&self) {
        self.state.reset();
    }

    /// Stops accepting, drops open connections and waits for the server task.
    pub async fn stop(mut self) {
        let _ = self.shutdown.send(true);
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
        if let Some(proxies) = self.proxies.take() {
            for task in proxies.tasks {
                let _ = task.await;
            }
        }
    }
}

impl Drop for MockHandle {
    fn drop(&mut self) {
        let _ = self.shutdown.send(true);
    }
}

impl std::fmt::Debug for MockHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MockHandle")
            .field("base_url", &self.base_url)
            .field("config", self.state.config())
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn start_on_binds_the_given_address_and_reports_the_port() {
        let mock = start_on((Ipv4Addr::LOCALHOST, 0).into(), MockConfig::demo())
            .await
            .unwrap();
        assert!(mock.addr().ip().is_loopback());
        assert_ne!(mock.addr().port(), 0);
        assert_eq!(mock.base_url(), format!("http://{}", mock.addr()));
        // Serving: the stats route answers over the socket.
        let body = reqwest::get(format!("{}/_mock/stats", mock.base_url()))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let stats: Stats = serde_json::from_str(&body).unwrap();
        assert_eq!(stats.token_requests, 0);
        // The same port cannot be bound twice while the mock runs.
        let taken = start_on(mock.addr(), MockConfig::demo()).await;
        assert!(taken.is_err());
        mock.stop().await;
    }
}
