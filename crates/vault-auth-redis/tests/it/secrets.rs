//! No token, client secret, password, client id or encryption key in Redis keys, in
//! sealed values, in TRACE logs or in `Debug` output.

use base64::Engine as _;
use vault_auth::TokenStore;
use vault_auth_redis::{EncryptionKey, RedisStoreOptions};

use crate::server::own_redis;
use crate::{
    CLIENT_ID, CLIENT_SECRET, LogCapture, TokenSequence, all_keys, inspect, replica,
    token_endpoint, unique_prefix,
};

const REDIS_PASSWORD: &str = "redis-pa55word-x";

#[tokio::test]
async fn no_token_secret_or_key_appears_in_redis_keys_values_or_trace_logs() {
    let Some(redis) = own_redis("no_secrets", &["--requirepass", REDIS_PASSWORD]) else {
        return;
    };
    let (logs, _guard) = LogCapture::install();
    let url = format!("redis://:{REDIS_PASSWORD}@127.0.0.1:{}/0", redis.port());
    let prefix = unique_prefix("no_secrets");
    let server = token_endpoint(TokenSequence::new(300).prefixed(&prefix), 2).await;
    let key_bytes: [u8; 32] = rand::random();
    let key_base64 = base64::engine::general_purpose::STANDARD.encode(key_bytes);
    let options = RedisStoreOptions::new()
        .prefix(&prefix)
        .encryption_key(EncryptionKey::from_base64(&key_base64).unwrap());
    let (cache, store) = replica(&server, &url, options.clone()).await;
    let (other, _) = replica(&server, &url, options).await;

    // Fetch, share, reject (remove from Redis), fetch again, share again.
    let first = cache.get().await.unwrap();
    other.get().await.unwrap();
    assert!(cache.invalidate(first.access_token()).await);
    let second = cache.get().await.unwrap();
    other.invalidate(first.access_token()).await;
    assert_eq!(
        other.get().await.unwrap().access_token(),
        second.access_token()
    );
    assert_eq!(
        store.get(cache.key()).await.unwrap().unwrap().token,
        *second.access_token()
    );

    let tokens = [
        first.access_token().expose_secret().to_owned(),
        second.access_token().expose_secret().to_owned(),
    ];
    let host = server.address().to_string();
    let secrets = [
        tokens[0].as_str(),
        tokens[1].as_str(),
        CLIENT_SECRET,
        REDIS_PASSWORD,
        key_base64.as_str(),
    ];

    let keys = all_keys(&url).await;
    assert!(!keys.is_empty());
    let mut raw = inspect(&url).await;
    for redis_key in &keys {
        for secret in secrets
            .iter()
            .chain([&CLIENT_ID, &host.as_str(), &"aliases"])
        {
            assert!(!redis_key.contains(secret), "{redis_key} holds {secret}");
        }
        let value: Vec<u8> = redis::cmd("GET")
            .arg(redis_key)
            .query_async(&mut raw)
            .await
            .unwrap();
        for secret in secrets {
            assert!(
                !value.windows(secret.len()).any(|w| w == secret.as_bytes()),
                "the value of {redis_key} holds a secret"
            );
        }
    }

    let rendered = format!("{store:?} {store:#?} {cache:?} {:?}", store.stats());
    let text = logs.text();
    assert!(text.contains("TRACE"), "TRACE logs were captured");
    assert!(text.contains("token store hit"), "the store logged");
    for secret in secrets {
        assert!(!text.contains(secret), "logs hold a secret:\n{text}");
        assert!(
            !rendered.contains(secret),
            "Debug holds a secret: {rendered}"
        );
    }
    assert!(!rendered.contains(&format!("{key_bytes:?}")));
    server.verify().await;
}
