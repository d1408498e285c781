//! How the connector authorizes vault calls: a bearer token from vault-auth's
//! single-flight cache (API v2), or the vault's HTTP Basic access credentials (v1).

use std::sync::Arc;

use base64::Engine;
use error_stack::Report;
use reqwest::header::HeaderValue;
use secrecy::ExposeSecret;
use vault_auth::{CachedToken, ClientAuth, FetchStats, OAuth2Source, TokenCache};
use vault_core::{ClientId, ClientSecret, Detail, VaultError, VaultResult};

use crate::config::VgsConnectorBuilder;
use crate::routing::{ApiGeneration, Routes};

/// Produces the `Authorization` header of each vault call.
pub(crate) enum Authorizer {
    /// API v1: the same Basic header every time (marked sensitive).
    Basic(HeaderValue),
    /// API v2: a cached OAuth token.
    Bearer(TokenCache),
}

/// The credential one attempt used, so a 401 can invalidate exactly it.
pub(crate) enum Credential {
    Basic(HeaderValue),
    Bearer(Arc<CachedToken>),
}

impl Credential {
    pub(crate) fn header(&self) -> &HeaderValue {
        match self {
            Credential::Basic(header) => header,
            Credential::Bearer(token) => token.authorization(),
        }
    }
}

impl Authorizer {
    pub(crate) fn new(
        builder: &VgsConnectorBuilder,
        routes: &Routes,
        client: reqwest::Client,
    ) -> Result<Self, Report<VaultError>> {
        let id = builder.client_id.as_deref().unwrap_or_default().trim();
        let secret = builder.secret.as_ref().ok_or_else(|| {
            Report::new(VaultError::InvalidConfig)
                .attach(Detail::new("the credentials are not set"))
        })?;
        match (builder.api, &routes.token) {
            (ApiGeneration::V2 | ApiGeneration::Cmp, Some(token_url)) => {
                // CMP documents the client id and secret as form fields; for API v2
                // they go as HTTP Basic (RFC 6749's preferred client authentication,
                // which VGS's token endpoint takes). Hyperswitch's VGS connector sends
                // them as form fields instead (`client_id` and `client_secret` in the
                // body; its docs page says Basic, its code does not): the endpoint
                // takes both, see vault-auth's `ClientAuth`.
                let client_auth = match builder.api {
                    ApiGeneration::Cmp => ClientAuth::Form,
                    _ => ClientAuth::Basic,
                };
                let source = OAuth2Source::client_credentials(
                    token_url.as_str(),
                    ClientId::new(id),
                    ClientSecret::from(secret.clone()),
                )
                .client_auth(client_auth)
                .scopes(builder.scopes.iter().cloned())
                .http_client(client)
                .build()?;
                let mut cache = TokenCache::builder(Arc::new(source));
                if let Some(clock) = &builder.clock {
                    cache = cache.clock(Arc::clone(clock));
                }
                if let Some(store) = &builder.token_store {
                    cache = cache.store(Arc::clone(store));
                }
                Ok(Authorizer::Bearer(cache.build()))
            }
            _ => {
                let encoded = base64::engine::general_purpose::STANDARD
                    .encode(format!("{id}:{}", secret.expose_secret()));
                let mut header =
                    HeaderValue::try_from(format!("Basic {encoded}")).map_err(|_| {
                        Report::new(VaultError::InvalidConfig).attach(Detail::new(
                            "the access credentials contain characters not allowed in a header",
                        ))
                    })?;
                header.set_sensitive(true);
                Ok(Authorizer::Basic(header))
            }
        }
    }

    /// The credential for the next attempt (may wait on the single token fetch).
    pub(crate) async fn credential(&self) -> VaultResult<Credential> {
        match self {
            Authorizer::Basic(header) => Ok(Credential::Basic(header.clone())),
            Authorizer::Bearer(cache) => cache.get().await.map(Credential::Bearer),
        }
    }

    /// Whether a 401 can be cured by fetching a new credential.
    pub(crate) fn can_refresh(&self) -> bool {
        matches!(self, Authorizer::Bearer(_))
    }

    /// Drops exactly the token a vault rejected (a newer one is kept).
    pub(crate) async fn invalidate(&self, credential: Credential) {
        if let (Authorizer::Bearer(cache), Credential::Bearer(token)) = (self, credential) {
            cache.invalidate(token.access_token()).await;
        }
    }

    /// Token fetch counts (API v2 only).
    pub(crate) fn fetch_stats(&self) -> Option<FetchStats> {
        match self {
            Authorizer::Basic(_) => None,
            Authorizer::Bearer(cache) => Some(cache.fetch_stats()),
        }
    }
}
