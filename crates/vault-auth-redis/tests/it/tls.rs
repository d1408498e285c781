//! `rediss://` over rustls: tokens are shared through a TLS-only Redis whose
//! certificate a private CA issued; an untrusted certificate or a plain server fails fast.

use std::time::{Duration, Instant};

use vault_auth_redis::{RedisStoreOptions, RedisTokenStore};
use vault_core::{ReportExt, VaultError};

use crate::server::{own_redis, own_tls_redis};
use crate::{TokenSequence, replica, token_endpoint, unique_prefix};

#[tokio::test]
async fn tokens_are_shared_over_rediss_with_a_private_ca() {
    let Some((redis, ca)) = own_tls_redis("rediss_shared") else {
        return;
    };
    let url = format!("rediss://127.0.0.1:{}/0", redis.port());
    let prefix = unique_prefix("rediss_shared");
    let server = token_endpoint(TokenSequence::new(300).prefixed(&prefix), 1).await;
    let options = RedisStoreOptions::new()
        .prefix(&prefix)
        .tls_root_certificate(ca);
    let (first, store) = replica(&server, &url, options.clone()).await;
    let (second, _) = replica(&server, &url, options).await;
    let token = first.get().await.unwrap();
    assert_eq!(
        second.get().await.unwrap().access_token(),
        token.access_token()
    );
    assert_eq!(second.fetch_stats().total(), 0);
    assert_eq!(store.stats().errors, 0);
    server.verify().await;
}

#[tokio::test]
async fn rediss_refuses_a_certificate_it_cannot_trust_or_a_plain_server() {
    let Some((redis, ca)) = own_tls_redis("rediss_untrusted") else {
        return;
    };
    // The system's roots do not know the test CA.
    let url = format!("rediss://127.0.0.1:{}/0", redis.port());
    let started = Instant::now();
    let err = RedisTokenStore::connect(&url, RedisStoreOptions::new())
        .await
        .unwrap_err();
    assert_eq!(err.kind(), VaultError::Transport, "{err:?}");
    assert!(started.elapsed() < Duration::from_secs(3));

    // A CA for a redis:// URL is a configuration mistake, said at once.
    let err = RedisTokenStore::connect(
        &format!("redis://127.0.0.1:{}/0", redis.port()),
        RedisStoreOptions::new().tls_root_certificate(ca.clone()),
    )
    .await
    .unwrap_err();
    assert_eq!(err.kind(), VaultError::InvalidConfig, "{err:?}");

    // TLS to a server that speaks plain Redis: an error within the bound, no hang.
    let Some(plain) = own_redis("rediss_untrusted", &[]) else {
        return;
    };
    let started = Instant::now();
    let err = RedisTokenStore::connect(
        &format!("rediss://127.0.0.1:{}/0", plain.port()),
        RedisStoreOptions::new()
            .tls_root_certificate(ca)
            .connect_timeout(Duration::from_secs(1)),
    )
    .await
    .unwrap_err();
    assert!(
        matches!(err.kind(), VaultError::Transport | VaultError::Timeout),
        "{err:?}"
    );
    assert!(started.elapsed() < Duration::from_secs(3));
}
