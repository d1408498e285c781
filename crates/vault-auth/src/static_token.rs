//! A static API token with a primary and a backup (VDMS `Authorization: TOK:<uuid>`):
//! the backup is used once the primary is rejected, and a new primary can be promoted
//! at runtime without a restart.

use std::fmt;
use std::sync::RwLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use error_stack::Report;
use vault_core::{AccessToken, VaultError};

use crate::source::{AuthScheme, CacheKey, FetchedToken, TokenSource};

/// How long the cache keeps a static token before reading it from the source again.
/// Static tokens do not expire; this only bounds how stale a cached copy can be.
pub const STATIC_TOKEN_LIFETIME: Duration = Duration::from_secs(24 * 60 * 60);

/// A long-lived API token and an optional backup with the same rights.
///
/// It serves the primary until a vault rejects it: [`TokenCache::invalidate`]
/// (called by [`TokenCache::with_token`] on a 401) calls [`TokenSource::rejected`],
/// which switches to the backup, and back to the primary if the backup is rejected in
/// turn. [`promote`](Self::promote) installs a new primary at runtime; cached copies
/// of the old one are not handed out any more.
///
/// [`TokenCache::invalidate`]: crate::TokenCache::invalidate
/// [`TokenCache::with_token`]: crate::TokenCache::with_token
///
/// ```
/// use std::sync::Arc;
/// use vault_auth::{AuthScheme, StaticTokenSource, TokenCache};
/// use vault_core::AccessToken;
///
/// let tokens = Arc::new(
///     StaticTokenSource::new("vdms", AuthScheme::Tok, AccessToken::new("primary-uuid"))
///         .with_backup(AccessToken::new("backup-uuid")),
/// );
/// let cache = TokenCache::builder(tokens.clone()).build();
/// // Later, during a rotation, without a restart:
/// tokens.promote(AccessToken::new("new-primary-uuid"));
/// ```
pub struct StaticTokenSource {
    name: String,
    scheme: AuthScheme,
    state: RwLock<State>,
    generation: AtomicU64,
}

struct State {
    primary: AccessToken,
    backup: Option<AccessToken>,
    using_backup: bool,
}

impl State {
    fn active(&self) -> &AccessToken {
        match (&self.backup, self.using_backup) {
            (Some(backup), true) => backup,
            _ => &self.primary,
        }
    }
}

impl StaticTokenSource {
    /// A source named `name` (used in its [`CacheKey`] and logs; not secret) that
    /// sends `primary` with `scheme`.
    pub fn new(name: impl Into<String>, scheme: AuthScheme, primary: AccessToken) -> Self {
        StaticTokenSource {
            name: name.into(),
            scheme,
            state: RwLock::new(State {
                primary,
                backup: None,
                using_backup: false,
            }),
            generation: AtomicU64::new(0),
        }
    }

    /// Adds a backup token, used once the primary is rejected.
    pub fn with_backup(self, backup: AccessToken) -> Self {
        self.set_backup(Some(backup));
        self
    }

    /// Makes `primary` the token in use from now on; the backup stays as it is.
    pub fn promote(&self, primary: AccessToken) {
        let mut state = self.write();
        state.primary = primary;
        state.using_backup = false;
        self.bump();
        tracing::info!(source = %self.name, "new primary static token promoted");
    }

    /// Replaces (or removes) the backup token.
    pub fn set_backup(&self, backup: Option<AccessToken>) {
        let mut state = self.write();
        state.using_backup &= backup.is_some();
        state.backup = backup;
        self.bump();
    }

    /// Whether the backup is the token in use.
    pub fn is_using_backup(&self) -> bool {
        let state = self.read();
        state.using_backup && state.backup.is_some()
    }

    fn bump(&self) {
        self.generation.fetch_add(1, Ordering::AcqRel);
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, State> {
        self.state
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, State> {
        self.state
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

#[async_trait::async_trait]
impl TokenSource for StaticTokenSource {
    async fn fetch(&self) -> Result<FetchedToken, Report<VaultError>> {
        let token = self.read().active().clone();
        Ok(FetchedToken {
            token,
            lifetime: STATIC_TOKEN_LIFETIME,
            scheme: self.scheme,
        })
    }

    fn cache_key(&self) -> CacheKey {
        CacheKey::new(format!("static:{}", self.name), self.name.clone())
    }

    fn rejected(&self, token: &AccessToken) {
        let mut state = self.write();
        if state.backup.is_none() || state.active() != token {
            return;
        }
        state.using_backup = !state.using_backup;
        let now_using = if state.using_backup {
            "backup"
        } else {
            "primary"
        };
        self.bump();
        tracing::warn!(source = %self.name, now_using, "static token rejected; switching");
    }

    fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }
}

impl fmt::Debug for StaticTokenSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = self.read();
        f.debug_struct("StaticTokenSource")
            .field("name", &self.name)
            .field("scheme", &self.scheme)
            .field("primary", &state.primary)
            .field("backup", &state.backup)
            .field("using_backup", &state.using_backup)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn rejection_switches_between_primary_and_backup() {
        let source = StaticTokenSource::new("vdms", AuthScheme::Tok, AccessToken::new("p"))
            .with_backup(AccessToken::new("b"));
        let g0 = source.generation();
        assert_eq!(
            source.fetch().await.expect("static").token.expose_secret(),
            "p"
        );
        source.rejected(&AccessToken::new("other"));
        assert!(!source.is_using_backup());
        source.rejected(&AccessToken::new("p"));
        assert!(source.is_using_backup());
        assert!(source.generation() > g0);
        assert_eq!(
            source.fetch().await.expect("static").token.expose_secret(),
            "b"
        );
        // A late rejection of the old primary does not switch back.
        source.rejected(&AccessToken::new("p"));
        assert!(source.is_using_backup());
        source.rejected(&AccessToken::new("b"));
        assert!(!source.is_using_backup());
    }

    #[test]
    fn without_backup_rejection_changes_nothing() {
        let source = StaticTokenSource::new("vdms", AuthScheme::Tok, AccessToken::new("p"));
        source.rejected(&AccessToken::new("p"));
        assert_eq!(source.generation(), 0);
        assert!(!source.is_using_backup());
    }

    #[test]
    fn debug_is_redacted() {
        let source =
            StaticTokenSource::new("vdms", AuthScheme::Tok, AccessToken::new("primary-uuid-1"))
                .with_backup(AccessToken::new("backup-uuid-2"));
        let rendered = format!("{source:?}");
        assert!(!rendered.contains("uuid"), "{rendered}");
        assert!(rendered.contains("vdms"));
    }
}
