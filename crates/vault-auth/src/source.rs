//! The `TokenSource` trait (where access tokens come from), the token it returns, and
//! the `CacheKey` that names it: endpoint, client id, user and scopes, no secret.

use std::fmt;
use std::time::Duration;

use error_stack::Report;
use reqwest::header::HeaderValue;
use vault_core::{AccessToken, Detail, VaultError};

/// Where access tokens come from: an OAuth2 token endpoint, a static token, or
/// anything a connector needs. Object safe; used as `Arc<dyn TokenSource>` by the
/// [`TokenCache`](crate::TokenCache), which decides when to call [`fetch`](Self::fetch).
#[async_trait::async_trait]
pub trait TokenSource: Send + Sync + fmt::Debug {
    /// Gets a new token. Errors are [`VaultError`] kinds: invalid credentials,
    /// forbidden (scope), retryable (timeout, transport, 5xx, 429), and so on.
    async fn fetch(&self) -> Result<FetchedToken, Report<VaultError>>;

    /// The name of the tokens this source issues: one cached token per key.
    fn cache_key(&self) -> CacheKey;

    /// A vault rejected `token` with 401. The cache calls this from
    /// [`TokenCache::invalidate`](crate::TokenCache::invalidate); a source with a
    /// fallback (a backup static token) switches to it here. Default: nothing.
    fn rejected(&self, token: &AccessToken) {
        let _ = token;
    }

    /// A number that changes whenever the source's credentials change at runtime
    /// (a new primary static token): a cached token of another generation is not
    /// used any more. Default: always 0.
    fn generation(&self) -> u64 {
        0
    }
}

/// How a token is put into the `Authorization` header of vault calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum AuthScheme {
    /// `Authorization: Bearer <token>` (OAuth2, RFC 6750).
    Bearer,
    /// `Authorization: TOK:<token>` (VDMS static REST API tokens).
    Tok,
}

impl AuthScheme {
    fn prefix(self) -> &'static str {
        match self {
            AuthScheme::Bearer => "Bearer ",
            AuthScheme::Tok => "TOK:",
        }
    }

    /// The `Authorization` header value for `token`, marked sensitive (so `http`'s
    /// own `Debug` hides it too). Fails if the token holds characters not allowed
    /// in a header.
    pub fn header_value(self, token: &AccessToken) -> Result<HeaderValue, Report<VaultError>> {
        let mut value =
            HeaderValue::from_str(&format!("{}{}", self.prefix(), token.expose_secret())).map_err(
                |_| {
                    Report::new(VaultError::UnexpectedResponse).attach(Detail::new(
                    "the access token contains characters that are not allowed in an HTTP header",
                ))
                },
            )?;
        value.set_sensitive(true);
        Ok(value)
    }
}

/// A token just obtained from a [`TokenSource`].
#[derive(Clone)]
pub struct FetchedToken {
    /// The token.
    pub token: AccessToken,
    /// How long it is valid, counted from when the request for it was sent.
    pub lifetime: Duration,
    /// How it is sent to the vault.
    pub scheme: AuthScheme,
}

impl fmt::Debug for FetchedToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FetchedToken")
            .field("token", &self.token)
            .field("lifetime", &self.lifetime)
            .field("scheme", &self.scheme)
            .finish()
    }
}

/// What a cached token is filed under: token endpoint, client id, user (password
/// grant) and scopes. Holds no secret, so it can be logged and used as a store key.
///
/// Scopes are sorted and deduplicated: `["b", "a"]` and `["a", "b"]` name one token.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CacheKey {
    endpoint: String,
    client_id: String,
    subject: Option<String>,
    scopes: Vec<String>,
}

impl CacheKey {
    /// A key for tokens from `endpoint` (a URL or a name such as `static:vdms`) for
    /// `client_id`.
    pub fn new(endpoint: impl Into<String>, client_id: impl Into<String>) -> Self {
        CacheKey {
            endpoint: endpoint.into(),
            client_id: client_id.into(),
            subject: None,
            scopes: Vec::new(),
        }
    }

    /// The same key for tokens issued to one user (password grant).
    pub fn with_subject(mut self, subject: impl Into<String>) -> Self {
        self.subject = Some(subject.into());
        self
    }

    /// The same key for tokens with these scopes.
    pub fn with_scopes<I, S>(mut self, scopes: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let mut scopes: Vec<String> = scopes.into_iter().map(Into::into).collect();
        scopes.sort();
        scopes.dedup();
        self.scopes = scopes;
        self
    }

    /// The token endpoint (or source name).
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// The client id.
    pub fn client_id(&self) -> &str {
        &self.client_id
    }

    /// The user the tokens are issued to, for the password grant.
    pub fn subject(&self) -> Option<&str> {
        self.subject.as_deref()
    }

    /// The scopes, sorted.
    pub fn scopes(&self) -> &[String] {
        &self.scopes
    }
}

impl fmt::Display for CacheKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} client={}", self.endpoint, self.client_id)?;
        if let Some(subject) = &self.subject {
            write!(f, " user={subject}")?;
        }
        write!(f, " scopes={}", self.scopes.join(" "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_values_use_the_scheme_and_are_sensitive() {
        let token = AccessToken::new("abc.def");
        let bearer = AuthScheme::Bearer.header_value(&token).expect("valid");
        assert_eq!(bearer.to_str().expect("ascii"), "Bearer abc.def");
        assert!(bearer.is_sensitive());
        let tok = AuthScheme::Tok
            .header_value(&AccessToken::new("6f1c"))
            .expect("valid");
        assert_eq!(tok.to_str().expect("ascii"), "TOK:6f1c");
        assert!(!format!("{bearer:?}").contains("abc.def"));
    }

    #[test]
    fn a_token_with_a_newline_is_refused() {
        let err = AuthScheme::Bearer
            .header_value(&AccessToken::new("abc\ndef"))
            .expect_err("newline");
        assert_eq!(*err.current_context(), VaultError::UnexpectedResponse);
    }

    #[test]
    fn scope_order_does_not_change_the_key() {
        let a = CacheKey::new("https://auth/token", "c").with_scopes(["b", "a", "a"]);
        let b = CacheKey::new("https://auth/token", "c").with_scopes(["a", "b"]);
        assert_eq!(a, b);
        assert_eq!(a.to_string(), "https://auth/token client=c scopes=a b");
    }

    #[test]
    fn fetched_token_debug_is_redacted() {
        let fetched = FetchedToken {
            token: AccessToken::new("tok-secret-1"),
            lifetime: Duration::from_secs(300),
            scheme: AuthScheme::Bearer,
        };
        let rendered = format!("{fetched:?}");
        assert!(!rendered.contains("tok-secret-1"), "{rendered}");
        assert!(rendered.contains(vault_core::REDACTED));
    }
}
