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

use std::sync::Arc;

use vault_auth::{OAuth2Source, TokenCache, TokenStore};
use vault_auth_redis::{RedisStoreOptions, RedisTokenStore};
use vault_core::{ClientId, ClientSecret};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer};

pub(crate) const CLIENT_ID: &str = "ACredis42";
pub(crate) const CLIENT_SECRET: &str = "redis-test-client-s3cret";

pub(crate) use vaultlink_tests::logs::LogCapture;
pub(crate) use vaultlink_tests::tokens::TokenSequence;

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
