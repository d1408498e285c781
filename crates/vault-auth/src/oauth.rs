//! OAuth2 token sources: `client_credentials` (RFC 6749 §4.4) and `password` (§4.3),
//! with HTTP Basic or form client authentication, configurable scope delimiter,
//! no redirects and explicit timeouts.

use std::fmt;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use error_stack::Report;
use reqwest::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE, HeaderValue, RETRY_AFTER};
use tracing::Instrument as _;
use url::{Url, form_urlencoded};
use vault_core::{ClientId, ClientSecret, Detail, HttpStatus, Password, VaultError};

use crate::source::{AuthScheme, CacheKey, FetchedToken, TokenSource};
use crate::wire::{self, ErrorContext};

/// Default connect timeout of the token call.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Default total timeout of the token call (connect, send, answer, body).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
/// Lifetime assumed when a token response has no `expires_in`: 5 minutes, the
/// default of VGS service accounts and the shortest lifetime seen in the seeds.
pub const DEFAULT_LIFETIME: Duration = Duration::from_secs(300);
/// Largest token response body read; a longer one is an unexpected response.
const MAX_BODY: usize = 64 * 1024;

/// How the client authenticates to the token endpoint (RFC 6749 §2.3.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ClientAuth {
    /// `Authorization: Basic base64(urlencode(client_id) ":" urlencode(client_secret))`.
    /// How VGS is called; the default.
    #[default]
    Basic,
    /// `client_id` and `client_secret` as form fields of the body (VDMS, VGS CMP).
    Form,
}

/// How several scopes are joined in the `scope` field.
///
/// Both put a list on the wire that a server which form-decodes the body reads as
/// space-delimited (RFC 6749 §3.3); they differ in the raw bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ScopeDelimiter {
    /// Space, sent percent-encoded: `scope=aliases%3Aread%20aliases%3Awrite`. The default.
    #[default]
    Space,
    /// A literal `+`, byte for byte as providers like VDMS document it:
    /// `scope=ec.rules+ec.purge`.
    Plus,
}

impl ScopeDelimiter {
    fn wire(self) -> &'static str {
        match self {
            ScopeDelimiter::Space => "%20",
            ScopeDelimiter::Plus => "+",
        }
    }
}

#[derive(Clone)]
enum Grant {
    ClientCredentials,
    Password {
        username: String,
        password: Password,
    },
}

impl Grant {
    fn name(&self) -> &'static str {
        match self {
            Grant::ClientCredentials => "client_credentials",
            Grant::Password { .. } => "password",
        }
    }
}

/// Gets tokens from an OAuth2 token endpoint with the `client_credentials` or the
/// `password` grant. Build one with [`OAuth2Source::client_credentials`] or
/// [`OAuth2Source::password`]; wrap it in a [`TokenCache`](crate::TokenCache).
///
/// ```no_run
/// # async fn demo() -> vault_core::VaultResult<()> {
/// use vault_auth::{OAuth2Source, TokenSource};
/// use vault_core::{ClientId, ClientSecret};
///
/// let source = OAuth2Source::client_credentials(
///     "https://auth.verygoodsecurity.com/auth/realms/vgs/protocol/openid-connect/token",
///     ClientId::new("ACabc123"),
///     ClientSecret::new("…"),
/// )
/// .scopes(["aliases:read", "aliases:write"])
/// .build()?;
/// let token = source.fetch().await?;
/// # Ok(()) }
/// ```
pub struct OAuth2Source {
    token_url: Url,
    endpoint: String,
    client_id: ClientId,
    client_secret: Option<ClientSecret>,
    client_auth: ClientAuth,
    grant: Grant,
    scopes: Vec<String>,
    scope_delimiter: ScopeDelimiter,
    default_lifetime: Duration,
    timeout: Duration,
    http: reqwest::Client,
}

impl OAuth2Source {
    /// A `client_credentials` source (RFC 6749 §4.4) for `token_url`.
    pub fn client_credentials(
        token_url: impl Into<String>,
        client_id: ClientId,
        client_secret: ClientSecret,
    ) -> OAuth2SourceBuilder {
        OAuth2SourceBuilder::new(
            token_url.into(),
            client_id,
            Some(client_secret),
            Grant::ClientCredentials,
        )
    }

    /// A `password` grant source (RFC 6749 §4.3) for `username`: the body carries
    /// `client_id`, `username` and `password` (Vista GAS style). Add
    /// [`client_secret`](OAuth2SourceBuilder::client_secret) for a confidential client.
    pub fn password(
        token_url: impl Into<String>,
        client_id: ClientId,
        username: impl Into<String>,
        password: Password,
    ) -> OAuth2SourceBuilder {
        OAuth2SourceBuilder::new(
            token_url.into(),
            client_id,
            None,
            Grant::Password {
                username: username.into(),
                password,
            },
        )
    }

    /// The form body of the token request. Holds the secret with form client auth or
    /// the password grant: never log it.
    fn body(&self) -> String {
        let mut body = String::with_capacity(128);
        let mut field = |name: &str, value: &str| {
            if !body.is_empty() {
                body.push('&');
            }
            body.push_str(name);
            body.push('=');
            body.extend(form_urlencoded::byte_serialize(value.as_bytes()));
        };
        field("grant_type", self.grant.name());
        match (&self.client_secret, self.client_auth) {
            (Some(secret), ClientAuth::Form) => {
                field("client_id", self.client_id.as_str());
                field("client_secret", secret.expose_secret());
            }
            (None, _) => field("client_id", self.client_id.as_str()),
            (Some(_), ClientAuth::Basic) => {}
        }
        if let Grant::Password { username, password } = &self.grant {
            field("username", username);
            field("password", password.expose_secret());
        }
        if !self.scopes.is_empty() {
            let joined: Vec<String> = self
                .scopes
                .iter()
                .map(|s| form_urlencoded::byte_serialize(s.as_bytes()).collect())
                .collect();
            body.push_str("&scope=");
            body.push_str(&joined.join(self.scope_delimiter.wire()));
        }
        body
    }

    /// `Basic …` for HTTP Basic client authentication, marked sensitive.
    fn basic_header(&self) -> Option<Result<HeaderValue, Report<VaultError>>> {
        let secret = self.client_secret.as_ref()?;
        if self.client_auth != ClientAuth::Basic {
            return None;
        }
        let encode = |v: &str| form_urlencoded::byte_serialize(v.as_bytes()).collect::<String>();
        let credentials = format!(
            "{}:{}",
            encode(self.client_id.as_str()),
            encode(secret.expose_secret())
        );
        let header = HeaderValue::from_str(&format!("Basic {}", BASE64.encode(credentials)))
            .map(|mut value| {
                value.set_sensitive(true);
                value
            })
            .map_err(|_| {
                // Unreachable: base64 output is always a valid header value.
                Report::new(VaultError::InvalidConfig).attach(Detail::new(
                    "the client credentials cannot be put in a header",
                ))
            });
        Some(header)
    }

    fn error_context<'a>(&'a self, secrets: &'a [&'a str]) -> ErrorContext<'a> {
        ErrorContext {
            endpoint: &self.endpoint,
            client_id: self.client_id.as_str(),
            scopes: &self.scopes,
            secrets,
        }
    }

    async fn fetch_inner(&self) -> Result<FetchedToken, Report<VaultError>> {
        let mut secrets: Vec<&str> = Vec::with_capacity(2);
        if let Some(secret) = &self.client_secret {
            secrets.push(secret.expose_secret());
        }
        if let Grant::Password { password, .. } = &self.grant {
            secrets.push(password.expose_secret());
        }
        let ctx = self.error_context(&secrets);

        let mut request = self
            .http
            .post(self.token_url.clone())
            .timeout(self.timeout)
            .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
            .header(ACCEPT, "application/json")
            .body(self.body());
        if let Some(basic) = self.basic_header() {
            request = request.header(AUTHORIZATION, basic?);
        }
        tracing::trace!("sending token request");
        let mut response = request.send().await.map_err(|e| self.transport_error(e))?;
        let status = response.status().as_u16();
        let retry_after = response
            .headers()
            .get(RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);

        let mut body = Vec::new();
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|e| self.transport_error(e).attach(HttpStatus(status)))?
        {
            if body.len() + chunk.len() > MAX_BODY {
                return Err(Report::new(VaultError::UnexpectedResponse)
                    .attach(Detail::new(format!(
                        "the token endpoint {} answered with a body larger than {MAX_BODY} bytes",
                        self.endpoint
                    )))
                    .attach(HttpStatus(status)));
            }
            body.extend_from_slice(&chunk);
        }

        if !(200..300).contains(&status) {
            let report = wire::map_error_response(status, &body, retry_after.as_deref(), &ctx);
            tracing::warn!(
                status,
                kind = report.current_context().code(),
                "token endpoint refused the token request"
            );
            return Err(report);
        }
        let parsed = wire::parse_token_response(status, &body, self.default_lifetime, &ctx)?;
        match parsed.token_type.as_deref() {
            None => {}
            Some(t) if t.eq_ignore_ascii_case("bearer") => {}
            Some(other) => {
                let other: String = other.chars().take(32).filter(|c| !c.is_control()).collect();
                return Err(Report::new(VaultError::UnexpectedResponse)
                    .attach(Detail::new(format!(
                        "the token endpoint {} issued a token of type `{other}`; only Bearer tokens are supported",
                        self.endpoint
                    )))
                    .attach(HttpStatus(status)));
            }
        }
        tracing::debug!(
            status,
            lifetime_secs = parsed.lifetime.as_secs(),
            "access token fetched"
        );
        Ok(FetchedToken {
            token: parsed.token,
            lifetime: parsed.lifetime,
            scheme: AuthScheme::Bearer,
        })
    }

    fn transport_error(&self, error: reqwest::Error) -> Report<VaultError> {
        let error = error.without_url();
        let cause = innermost_cause(&error);
        if error.is_timeout() {
            Report::new(VaultError::Timeout).attach(Detail::new(format!(
                "the token endpoint {} did not answer within {} ms",
                self.endpoint,
                self.timeout.as_millis()
            )))
        } else if error.is_connect() {
            Report::new(VaultError::Transport).attach(Detail::new(format!(
                "could not connect to the token endpoint {}: {cause}",
                self.endpoint
            )))
        } else {
            Report::new(VaultError::Transport).attach(Detail::new(format!(
                "the token call to {} failed: {cause}",
                self.endpoint
            )))
        }
    }
}

fn innermost_cause(error: &(dyn std::error::Error + 'static)) -> String {
    let mut current = error;
    while let Some(next) = current.source() {
        current = next;
    }
    current.to_string()
}

#[async_trait::async_trait]
impl TokenSource for OAuth2Source {
    async fn fetch(&self) -> Result<FetchedToken, Report<VaultError>> {
        let span = tracing::debug_span!(
            "vault_auth.fetch_token",
            endpoint = %self.endpoint,
            client_id = %self.client_id,
            grant = self.grant.name(),
            scopes = %self.scopes.join(" "),
        );
        self.fetch_inner().instrument(span).await
    }

    fn cache_key(&self) -> CacheKey {
        let key = CacheKey::new(self.token_url.as_str(), self.client_id.as_str())
            .with_scopes(self.scopes.iter().cloned());
        match &self.grant {
            Grant::Password { username, .. } => key.with_subject(username.clone()),
            Grant::ClientCredentials => key,
        }
    }
}

impl fmt::Debug for OAuth2Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut s = f.debug_struct("OAuth2Source");
        s.field("endpoint", &self.endpoint)
            .field("grant", &self.grant.name())
            .field("client_id", &self.client_id)
            .field("client_secret", &self.client_secret)
            .field("client_auth", &self.client_auth);
        if let Grant::Password { username, password } = &self.grant {
            s.field("username", username).field("password", password);
        }
        s.field("scopes", &self.scopes)
            .field("scope_delimiter", &self.scope_delimiter)
            .field("default_lifetime", &self.default_lifetime)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

/// Builds an [`OAuth2Source`]. Defaults: [`ClientAuth::Basic`] (when there is a client
/// secret), no scopes, [`ScopeDelimiter::Space`], a lifetime of
/// [`DEFAULT_LIFETIME`] (300 s) when the response has no `expires_in`, a connect
/// timeout of [`DEFAULT_CONNECT_TIMEOUT`] (5 s), a total timeout of
/// [`DEFAULT_TIMEOUT`] (10 s), and an HTTP client of its own that follows no redirect.
pub struct OAuth2SourceBuilder {
    token_url: String,
    client_id: ClientId,
    client_secret: Option<ClientSecret>,
    client_auth: ClientAuth,
    grant: Grant,
    scopes: Vec<String>,
    scope_delimiter: ScopeDelimiter,
    default_lifetime: Duration,
    connect_timeout: Duration,
    timeout: Duration,
    http: Option<reqwest::Client>,
}

impl OAuth2SourceBuilder {
    fn new(
        token_url: String,
        client_id: ClientId,
        client_secret: Option<ClientSecret>,
        grant: Grant,
    ) -> Self {
        OAuth2SourceBuilder {
            token_url,
            client_id,
            client_secret,
            client_auth: ClientAuth::default(),
            grant,
            scopes: Vec::new(),
            scope_delimiter: ScopeDelimiter::default(),
            default_lifetime: DEFAULT_LIFETIME,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            timeout: DEFAULT_TIMEOUT,
            http: None,
        }
    }

    /// How the client id and secret are sent (default [`ClientAuth::Basic`]). Without
    /// a client secret (a public client) `client_id` always goes in the form body.
    pub fn client_auth(mut self, client_auth: ClientAuth) -> Self {
        self.client_auth = client_auth;
        self
    }

    /// A client secret, for a confidential client using the password grant.
    pub fn client_secret(mut self, secret: ClientSecret) -> Self {
        self.client_secret = Some(secret);
        self
    }

    /// The scopes to request, in this order (default: none, no `scope` field).
    pub fn scopes<I, S>(mut self, scopes: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.scopes = scopes.into_iter().map(Into::into).collect();
        self
    }

    /// How scopes are joined (default [`ScopeDelimiter::Space`]).
    pub fn scope_delimiter(mut self, delimiter: ScopeDelimiter) -> Self {
        self.scope_delimiter = delimiter;
        self
    }

    /// The lifetime assumed when a token response has no `expires_in`
    /// (default [`DEFAULT_LIFETIME`], 300 s).
    pub fn default_lifetime(mut self, lifetime: Duration) -> Self {
        self.default_lifetime = lifetime;
        self
    }

    /// The connect timeout of the token call (default 5 s). Ignored with
    /// [`http_client`](Self::http_client): the given client's own applies.
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// The total timeout of the token call, from sending to the end of the answer
    /// (default 10 s). Applies to an injected client too.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Uses a shared `reqwest::Client` instead of building one. Build it with
    /// `redirect(reqwest::redirect::Policy::none())`: a client that follows
    /// redirects would send the credentials on to wherever the endpoint points.
    pub fn http_client(mut self, client: reqwest::Client) -> Self {
        self.http = Some(client);
        self
    }

    /// Checks the configuration and builds the source. Fails with
    /// [`VaultError::InvalidConfig`] for a URL that is not `https` (plain `http` is
    /// allowed to loopback hosts only) or carries user info, an empty client id,
    /// an empty scope or one with whitespace, or a zero timeout or lifetime.
    pub fn build(self) -> Result<OAuth2Source, Report<VaultError>> {
        let invalid =
            |text: String| Report::new(VaultError::InvalidConfig).attach(Detail::new(text));
        let token_url = Url::parse(self.token_url.trim())
            .map_err(|e| invalid(format!("the token URL is not a valid URL: {e}")))?;
        let host = token_url.host_str().unwrap_or_default();
        match token_url.scheme() {
            "https" => {}
            "http" if is_loopback(&token_url) => {}
            "http" => {
                return Err(invalid(format!(
                    "the token URL must use https (plain http is allowed to loopback hosts only), got http://{host}"
                )));
            }
            other => {
                return Err(invalid(format!(
                    "the token URL must use https, got the scheme `{other}`"
                )));
            }
        }
        if host.is_empty() {
            return Err(invalid("the token URL has no host".to_owned()));
        }
        if !token_url.username().is_empty() || token_url.password().is_some() {
            return Err(invalid(
                "the token URL must not carry user info; give the client id and secret separately"
                    .to_owned(),
            ));
        }
        if self.client_id.as_str().trim().is_empty() {
            return Err(invalid("the OAuth client id is empty".to_owned()));
        }
        if let Grant::Password { username, .. } = &self.grant
            && username.trim().is_empty()
        {
            return Err(invalid("the password grant's username is empty".to_owned()));
        }
        for scope in &self.scopes {
            if scope.is_empty() || scope.chars().any(|c| c.is_whitespace() || c.is_control()) {
                return Err(invalid(format!(
                    "the scope `{}` is not valid: scopes are non-empty and hold no whitespace; give each scope separately",
                    scope.escape_debug()
                )));
            }
        }
        if self.timeout.is_zero() || self.connect_timeout.is_zero() {
            return Err(invalid(
                "the token call timeouts must be greater than zero".to_owned(),
            ));
        }
        if self.default_lifetime < Duration::from_secs(1) {
            return Err(invalid(
                "the default token lifetime must be at least 1 s".to_owned(),
            ));
        }
        let http = match self.http {
            Some(client) => client,
            None => reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .connect_timeout(self.connect_timeout)
                .timeout(self.timeout)
                .build()
                .map_err(|e| {
                    invalid(format!(
                        "the HTTP client for the token call could not be built: {}",
                        innermost_cause(&e)
                    ))
                })?,
        };
        let mut endpoint = format!("{}://{}", token_url.scheme(), host);
        if let Some(port) = token_url.port() {
            endpoint.push_str(&format!(":{port}"));
        }
        endpoint.push_str(token_url.path());
        Ok(OAuth2Source {
            token_url,
            endpoint,
            client_id: self.client_id,
            client_secret: self.client_secret,
            client_auth: self.client_auth,
            grant: self.grant,
            scopes: self.scopes,
            scope_delimiter: self.scope_delimiter,
            default_lifetime: self.default_lifetime,
            timeout: self.timeout,
            http,
        })
    }
}

fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(domain)) => domain.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

impl fmt::Debug for OAuth2SourceBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OAuth2SourceBuilder")
            .field("token_url", &self.token_url)
            .field("grant", &self.grant.name())
            .field("client_id", &self.client_id)
            .field("client_secret", &self.client_secret)
            .field("scopes", &self.scopes)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use vault_core::ReportExt;

    fn source(url: &str) -> Result<OAuth2Source, Report<VaultError>> {
        OAuth2Source::client_credentials(url, ClientId::new("id"), ClientSecret::new("s")).build()
    }

    #[test]
    fn plain_http_only_to_loopback() {
        assert!(source("https://auth.example/token").is_ok());
        assert!(source("http://127.0.0.1:8080/token").is_ok());
        assert!(source("http://localhost/token").is_ok());
        assert!(source("http://[::1]:9/token").is_ok());
        let err = source("http://auth.example/token").expect_err("plain http");
        assert_eq!(err.kind(), VaultError::InvalidConfig);
        assert!(err.details()[0].contains("must use https"));
        assert!(source("ftp://auth.example/token").is_err());
        assert!(source("not a url").is_err());
        assert!(source("https://user:pw@auth.example/token").is_err());
    }

    #[test]
    fn scopes_with_whitespace_are_refused() {
        let err = OAuth2Source::client_credentials(
            "https://a.example/t",
            ClientId::new("id"),
            ClientSecret::new("s"),
        )
        .scopes(["aliases:read aliases:write"])
        .build()
        .expect_err("space in scope");
        assert!(err.details()[0].contains("give each scope separately"));
    }

    #[test]
    fn debug_of_source_and_builder_is_redacted() {
        let builder = OAuth2Source::password(
            "https://gas.example/token",
            ClientId::new("vista"),
            "alice",
            Password::new("hunter2-pass"),
        )
        .client_secret(ClientSecret::new("sup3r-s3cret"));
        let rendered = format!("{builder:?}");
        let source = builder.build().expect("valid");
        let rendered = format!("{rendered} {source:?} {source:#?}");
        assert!(!rendered.contains("hunter2"), "{rendered}");
        assert!(!rendered.contains("sup3r"), "{rendered}");
        assert!(rendered.contains("alice") && rendered.contains("vista"));
    }

    #[test]
    fn cache_key_holds_endpoint_client_user_and_scopes() {
        let source = OAuth2Source::password(
            "https://gas.example/token",
            ClientId::new("vista"),
            "alice",
            Password::new("hunter2-pass"),
        )
        .scopes(["b", "a"])
        .build()
        .expect("valid");
        assert_eq!(
            source.cache_key().to_string(),
            "https://gas.example/token client=vista user=alice scopes=a b"
        );
    }
}
