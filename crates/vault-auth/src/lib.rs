//! vault-auth: access tokens for vault connectors: OAuth2 grants and static tokens
//! ([`TokenSource`]), fetched once and refreshed ahead by a shared [`TokenCache`].
//!
//! ```no_run
//! # async fn demo() -> vault_core::VaultResult<()> {
//! use std::sync::Arc;
//! use vault_auth::{OAuth2Source, TokenCache};
//! use vault_core::{ClientId, ClientSecret};
//!
//! let source = OAuth2Source::client_credentials(
//!     "https://auth.verygoodsecurity.com/auth/realms/vgs/protocol/openid-connect/token",
//!     ClientId::new("ACabc123"),
//!     ClientSecret::new("…"),
//! )
//! .build()?;
//! let cache = TokenCache::builder(Arc::new(source)).build();
//! // Every task shares `cache` (clone it); one fetch serves them all.
//! let token = cache.get().await?;
//! let header = token.authorization().clone(); // `Bearer …`, marked sensitive
//! # Ok(()) }
//! ```
//!
//! Secrets (client secret, password, tokens) are `vault_core` secret types: the
//! `Debug` of every type here is redacted and no log event carries them.

#![deny(missing_docs)]

mod cache;
mod clock;
mod oauth;
mod schedule;
mod source;
mod static_token;
mod store;
mod wire;

pub use cache::{CachedToken, DEFAULT_FETCH_TIMEOUT, FetchStats, TokenCache, TokenCacheBuilder};
pub use clock::{Clock, ManualClock, SystemClock};
pub use oauth::{
    ClientAuth, DEFAULT_CONNECT_TIMEOUT, DEFAULT_LIFETIME, DEFAULT_TIMEOUT, OAuth2Source,
    OAuth2SourceBuilder, ScopeDelimiter,
};
pub use schedule::{Freshness, MAX_LIFETIME, RefreshPolicy, TokenTimes};
pub use source::{AuthScheme, CacheKey, FetchedToken, TokenSource};
pub use static_token::{STATIC_TOKEN_LIFETIME, StaticTokenSource};
pub use store::{InMemoryTokenStore, StoreLock, StoredToken, TokenStore};
