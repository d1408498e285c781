//! Token endpoint answers for wiremock: Keycloak-like bodies and a sequence of fresh
//! tokens (`tok-1`, `tok-2`, …), so tests can count and tell tokens apart.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use serde_json::json;
use wiremock::{Request, Respond, ResponseTemplate};

/// A Keycloak-like token response.
pub fn token_body(token: &str, lifetime: u64) -> serde_json::Value {
    json!({
        "access_token": token,
        "expires_in": lifetime,
        "refresh_expires_in": 0,
        "token_type": "Bearer",
        "not-before-policy": 0,
        "scope": "aliases:read aliases:write"
    })
}

/// Answers every token request with a new token: `<prefix>-1`, `<prefix>-2`, …
pub struct TokenSequence {
    prefix: String,
    issued: AtomicUsize,
    lifetime: u64,
    delay: Duration,
}

impl TokenSequence {
    /// Tokens `tok-1`, `tok-2`, … living `lifetime` seconds.
    pub fn new(lifetime: u64) -> Self {
        TokenSequence {
            prefix: "tok".to_owned(),
            issued: AtomicUsize::new(0),
            lifetime,
            delay: Duration::ZERO,
        }
    }

    /// Another prefix, so that tokens of different tests never meet.
    pub fn prefixed(mut self, prefix: &str) -> Self {
        prefix.clone_into(&mut self.prefix);
        self
    }

    /// Answers only after `delay`, so that concurrent callers truly overlap.
    pub fn delayed(mut self, delay: Duration) -> Self {
        self.delay = delay;
        self
    }
}

impl Respond for TokenSequence {
    fn respond(&self, _: &Request) -> ResponseTemplate {
        let n = self.issued.fetch_add(1, Ordering::SeqCst) + 1;
        ResponseTemplate::new(200)
            .set_body_json(token_body(&format!("{}-{n}", self.prefix), self.lifetime))
            .set_delay(self.delay)
    }
}
