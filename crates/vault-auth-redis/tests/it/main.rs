//! vault-auth-redis integration tests, one binary: `RedisTokenStore` against a real
//! `redis-server` (spawned from PATH, or `REDIS_URL`) and a wiremock token endpoint.
#![allow(clippy::unwrap_used)]

mod encryption;
mod fallback;
mod lock;
mod secrets;
mod server;
mod share;
mod tls;

use std::cell::RefCell;
use std::io;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Once};
use std::time::Duration;

use serde_json::json;
use vault_auth::{OAuth2Source, TokenCache, TokenStore};
use vault_auth_redis::{RedisStoreOptions, RedisTokenStore};
use vault_core::{ClientId, ClientSecret};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

pub(crate) const CLIENT_ID: &str = "ACredis42";
pub(crate) const CLIENT_SECRET: &str = "redis-test-client-s3cret";

/// Answers every token request with a new token: `<prefix>-1`, `<prefix>-2`, …
/// (each test gives its own prefix, so tokens never meet across tests).
pub(crate) struct TokenSequence {
    prefix: String,
    issued: AtomicUsize,
    lifetime: u64,
    delay: Duration,
}

impl TokenSequence {
    pub(crate) fn new(prefix: &str, lifetime: u64) -> Self {
        TokenSequence {
            prefix: prefix.to_owned(),
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
            .set_body_json(json!({
                "access_token": format!("{}-{n}", self.prefix),
                "expires_in": self.lifetime,
                "token_type": "Bearer",
                "scope": "aliases:read aliases:write"
            }))
            .set_delay(self.delay)
    }
}

/// A wiremock token endpoint that must be called exactly `expected` times.
pub(crate) async fn token_endpoint(tokens: TokenSequence, expected: u64) -> MockServer {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/token"))
        .respond_with(tokens)
        .expect(expected)
        .mount(&server)
        .await;
    server
}

/// A cache as one replica builds it: its own source and its own store (connection).
pub(crate) async fn replica(
    server: &MockServer,
    redis_url: &str,
    options: RedisStoreOptions,
) -> (TokenCache, Arc<RedisTokenStore>) {
    let store = RedisTokenStore::connect(redis_url, options).await.unwrap();
    let source = OAuth2Source::client_credentials(
        format!("{}/token", server.uri()),
        ClientId::new(CLIENT_ID),
        ClientSecret::new(CLIENT_SECRET),
    )
    .scopes(["aliases:read", "aliases:write"])
    .build()
    .unwrap();
    let cache = TokenCache::builder(Arc::new(source))
        .store(store.clone() as Arc<dyn TokenStore>)
        .build();
    (cache, store)
}

/// A prefix no other test (or earlier run against the same Redis) uses.
pub(crate) fn unique_prefix(test: &str) -> String {
    format!("it-{test}-{:08x}", rand::random::<u32>())
}

/// A plain connection for looking at (and tampering with) what the store wrote.
pub(crate) async fn inspect(redis_url: &str) -> redis::aio::MultiplexedConnection {
    redis::Client::open(redis_url)
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap()
}

/// Every key in the Redis, by `SCAN`.
pub(crate) async fn all_keys(redis_url: &str) -> Vec<String> {
    let mut connection = inspect(redis_url).await;
    let mut keys = Vec::new();
    let mut cursor: u64 = 0;
    loop {
        let (next, batch): (u64, Vec<String>) = redis::cmd("SCAN")
            .arg(cursor)
            .arg("COUNT")
            .arg(1000)
            .query_async(&mut connection)
            .await
            .unwrap();
        keys.extend(batch);
        if next == 0 {
            return keys;
        }
        cursor = next;
    }
}

/// What `tracing` writes on this thread while installed, for asserting what logs
/// contain and never contain.
///
/// A TRACE-level fmt subscriber is installed once as the global default, writing to
/// the buffer of the thread that emitted the event (and nowhere when that thread is
/// not capturing). Use a current-thread runtime so that spawned tasks (the cache's
/// fetch, the connection's) log on the test's thread.
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
                .with_ansi(false)
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

    /// The WARN lines logged so far.
    pub(crate) fn warnings(&self) -> Vec<String> {
        self.text()
            .lines()
            .filter(|line| line.contains(" WARN "))
            .map(str::to_owned)
            .collect()
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
