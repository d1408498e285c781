//! vault-auth integration tests, one binary: token sources against a wiremock token
//! endpoint, the token cache, static tokens, and secrets kept out of Debug and logs.
#![allow(clippy::unwrap_used)]

mod cache;
mod oauth;
mod secrets;
mod static_token;

use std::sync::atomic::{AtomicUsize, Ordering};

use vault_auth::{OAuth2Source, OAuth2SourceBuilder, RefreshPolicy};
use vault_core::{ClientId, ClientSecret};
use wiremock::{MockServer, Request, Respond, ResponseTemplate};

pub(crate) const CLIENT_ID: &str = "ACclient42";
pub(crate) const CLIENT_SECRET: &str = "sup3r-s3cret-value";

pub(crate) use vaultlink_tests::logs::LogCapture;
pub(crate) use vaultlink_tests::tokens::{TokenSequence, token_body};

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
