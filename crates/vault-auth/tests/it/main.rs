//! vault-auth integration tests, one binary: token sources against a wiremock token
//! endpoint, the token cache, static tokens, and secrets kept out of Debug and logs.
#![allow(clippy::unwrap_used)]

mod cache;
mod oauth;
mod secrets;
mod static_token;

use std::cell::RefCell;
use std::io;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Once};
use std::time::Duration;

use serde_json::json;
use vault_auth::{OAuth2Source, OAuth2SourceBuilder, RefreshPolicy};
use vault_core::{ClientId, ClientSecret};
use wiremock::{MockServer, Request, Respond, ResponseTemplate};

pub(crate) const CLIENT_ID: &str = "ACclient42";
pub(crate) const CLIENT_SECRET: &str = "sup3r-s3cret-value";

/// A Keycloak-like token response.
pub(crate) fn token_body(token: &str, lifetime: u64) -> serde_json::Value {
    json!({
        "access_token": token,
        "expires_in": lifetime,
        "refresh_expires_in": 0,
        "token_type": "Bearer",
        "not-before-policy": 0,
        "scope": "aliases:read aliases:write"
    })
}

/// Answers every token request with a new token: `tok-1`, `tok-2`, …
pub(crate) struct TokenSequence {
    issued: AtomicUsize,
    lifetime: u64,
    delay: Duration,
}

impl TokenSequence {
    pub(crate) fn new(lifetime: u64) -> Self {
        TokenSequence {
            issued: AtomicUsize::new(0),
            lifetime,
            delay: Duration::ZERO,
        }
    }

    /// Answers only after `delay`, so that concurrent callers truly overlap.
    pub(crate) fn delayed(mut self, delay: Duration) -> Self {
        self.delay = delay;
        self
    }
}

impl Respond for TokenSequence {
    fn respond(&self, _: &Request) -> ResponseTemplate {
        let n = self.issued.fetch_add(1, Ordering::SeqCst) + 1;
        ResponseTemplate::new(200)
            .set_body_json(token_body(&format!("tok-{n}"), self.lifetime))
            .set_delay(self.delay)
    }
}

/// Answers with the given responses in turn, repeating the last one.
pub(crate) struct Script {
    responses: Vec<ResponseTemplate>,
    next: AtomicUsize,
}

impl Script {
    pub(crate) fn new(responses: Vec<ResponseTemplate>) -> Self {
        Script {
            responses,
            next: AtomicUsize::new(0),
        }
    }
}

impl Respond for Script {
    fn respond(&self, _: &Request) -> ResponseTemplate {
        let i = self.next.fetch_add(1, Ordering::SeqCst);
        self.responses[i.min(self.responses.len() - 1)].clone()
    }
}

/// A VGS-style client_credentials source for the mock's `/token`.
pub(crate) fn vgs_source(server: &MockServer) -> OAuth2SourceBuilder {
    OAuth2Source::client_credentials(
        format!("{}/token", server.uri()),
        ClientId::new(CLIENT_ID),
        ClientSecret::new(CLIENT_SECRET),
    )
}

/// The default policy without jitter: a 300 s token is refreshed at exactly 270 s.
pub(crate) fn no_jitter() -> RefreshPolicy {
    RefreshPolicy::default().with_jitter_percent(0)
}

/// What `tracing` writes on this thread while installed, for asserting what logs
/// never contain.
///
/// A TRACE-level fmt subscriber is installed once as the global default, writing to
/// the buffer of the thread that emitted the event (and nowhere when that thread is
/// not capturing). A global subscriber, unlike a scoped one, cannot miss events of
/// callsites another test thread registered first. Use a current-thread runtime so
/// that spawned tasks log on the test's thread.
#[derive(Clone, Default)]
pub(crate) struct LogCapture(Arc<Mutex<Vec<u8>>>);

thread_local! {
    static CAPTURING: RefCell<Option<LogCapture>> = const { RefCell::new(None) };
}

/// Stops the capture on this thread when dropped.
pub(crate) struct CaptureGuard(());

impl Drop for CaptureGuard {
    fn drop(&mut self) {
        CAPTURING.with(|c| c.borrow_mut().take());
    }
}

impl LogCapture {
    pub(crate) fn install() -> (LogCapture, CaptureGuard) {
        static GLOBAL: Once = Once::new();
        GLOBAL.call_once(|| {
            let subscriber = tracing_subscriber::fmt()
                .with_writer(|| ThreadWriter)
                .with_max_level(tracing::Level::TRACE)
                .finish();
            tracing::subscriber::set_global_default(subscriber).unwrap();
        });
        let capture = LogCapture::default();
        CAPTURING.with(|c| *c.borrow_mut() = Some(capture.clone()));
        (capture, CaptureGuard(()))
    }

    pub(crate) fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

/// Writes into the capture of the current thread, if any.
struct ThreadWriter;

impl io::Write for ThreadWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        CAPTURING.with(|c| {
            if let Some(capture) = &*c.borrow() {
                capture.0.lock().unwrap().extend_from_slice(buf);
            }
        });
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}
