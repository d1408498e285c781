//! `VaultError`, the kinds of failure a caller can act on, and the safe attachments
//! (HTTP status, VGS trace id, attempt, retry-after, detail, hint) that travel with it.

use std::fmt;
use std::time::Duration;

use error_stack::Report;

/// What went wrong with a vault call, as a caller can act on it.
///
/// The variant says what kind of failure it was and whether retrying can help
/// ([`VaultError::is_retryable`]); the specifics travel as attachments on the
/// [`Report`] ([`HttpStatus`], [`TraceId`], [`Attempt`], [`RetryAfter`], [`Detail`]).
/// No variant and no attachment ever holds card data or a secret.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, thiserror::Error)]
#[non_exhaustive]
pub enum VaultError {
    /// The connector's configuration is wrong (a vault id, an endpoint, a credential
    /// variant). Fix the configuration; retrying the same call cannot help.
    #[error("the vault connector configuration is invalid")]
    InvalidConfig,
    /// The request itself is wrong (a card number that fails validation, a batch too
    /// large, a field the vault rejected).
    #[error("the vault request is invalid")]
    InvalidRequest,
    /// The credentials were rejected (bad client id/secret, expired or revoked token,
    /// or a service account not assigned to the vault).
    #[error("the vault rejected the credentials")]
    InvalidCredentials,
    /// The credentials are valid but lack a permission (an OAuth scope, a route).
    #[error("the credentials are not allowed to do this (missing scope or permission)")]
    Forbidden,
    /// The credentials may read aliases, but the vault is not configured to reveal
    /// values (VGS enables reveal per vault, on request).
    #[error("revealing values is not enabled for this vault")]
    RevealDisabled,
    /// The vault (tenant) does not exist in this environment.
    #[error("the vault was not found")]
    VaultNotFound,
    /// An alias (or vault-side id) is unknown to the vault, or its value expired.
    #[error("the alias was not found in the vault")]
    AliasNotFound,
    /// The vault is rate limiting this client; see the [`RetryAfter`] attachment.
    #[error("the vault is rate limiting requests")]
    RateLimited,
    /// The call did not finish within its time budget.
    #[error("the vault call timed out")]
    Timeout,
    /// The connection failed (refused, reset, TLS, DNS).
    #[error("the connection to the vault failed")]
    Transport,
    /// The vault answered with a server error (5xx).
    #[error("the vault answered with a server error")]
    Upstream,
    /// The vault answered with a server error that it says must not be retried (VGS
    /// CMP's 500 `server-error`): the same request may fail the same way, or repeat a
    /// change that was partly made. Check whether it took effect before sending it
    /// again.
    #[error("the vault answered with a server error that must not be retried")]
    ServerError,
    /// The vault answered with something the connector cannot understand.
    #[error("the vault answered with an unexpected response")]
    UnexpectedResponse,
    /// An insert failed after it may have reached the vault (a timeout, a reset
    /// connection, a 5xx), and sending it again is not safe: the vault does not
    /// deduplicate values (fingerprinting off), so a second request could store the
    /// card twice. The card may or may not be stored; if it is, its aliases were lost.
    #[error("the insert may or may not have stored the card")]
    InsertOutcomeUnknown,
    /// A request sent through the vault's proxy failed after it may have reached the
    /// processor (a timeout, a dropped connection, the proxy's 5xx, an answer that
    /// could not be read), and it is not idempotent, so it was not sent again: the
    /// payment may or may not have been made.
    #[error("the request may or may not have reached the processor")]
    ForwardOutcomeUnknown,
}

impl VaultError {
    /// Every kind, for exhaustive documentation and tests.
    pub const ALL: [VaultError; 15] = [
        VaultError::InvalidConfig,
        VaultError::InvalidRequest,
        VaultError::InvalidCredentials,
        VaultError::Forbidden,
        VaultError::RevealDisabled,
        VaultError::VaultNotFound,
        VaultError::AliasNotFound,
        VaultError::RateLimited,
        VaultError::Timeout,
        VaultError::Transport,
        VaultError::Upstream,
        VaultError::ServerError,
        VaultError::UnexpectedResponse,
        VaultError::InsertOutcomeUnknown,
        VaultError::ForwardOutcomeUnknown,
    ];

    /// Whether the same call may succeed if made again later, unchanged.
    pub const fn is_retryable(&self) -> bool {
        matches!(
            self,
            VaultError::RateLimited
                | VaultError::Timeout
                | VaultError::Transport
                | VaultError::Upstream
        )
    }

    /// True for [`VaultError::Timeout`].
    pub const fn is_timeout(&self) -> bool {
        matches!(self, VaultError::Timeout)
    }

    /// A short, stable, machine-readable name (`"invalid_credentials"`), for logs,
    /// metrics and `--json` output.
    pub const fn code(&self) -> &'static str {
        match self {
            VaultError::InvalidConfig => "invalid_config",
            VaultError::InvalidRequest => "invalid_request",
            VaultError::InvalidCredentials => "invalid_credentials",
            VaultError::Forbidden => "forbidden",
            VaultError::RevealDisabled => "reveal_disabled",
            VaultError::VaultNotFound => "vault_not_found",
            VaultError::AliasNotFound => "alias_not_found",
            VaultError::RateLimited => "rate_limited",
            VaultError::Timeout => "timeout",
            VaultError::Transport => "transport",
            VaultError::Upstream => "upstream",
            VaultError::ServerError => "server_error",
            VaultError::UnexpectedResponse => "unexpected_response",
            VaultError::InsertOutcomeUnknown => "insert_outcome_unknown",
            VaultError::ForwardOutcomeUnknown => "forward_outcome_unknown",
        }
    }

    /// What the person operating the connector should do about this kind of failure.
    pub const fn fix(&self) -> &'static str {
        match self {
            VaultError::InvalidConfig => {
                "correct the connector configuration named in the detail (vault id, environment, endpoint or credential variant)"
            }
            VaultError::InvalidRequest => {
                "correct the request data named in the detail; sending it again unchanged will fail again"
            }
            VaultError::InvalidCredentials => {
                "check the client id and client secret (or access credentials) for this vault and environment, and that the service account is assigned to this vault (VGS answers 401 otherwise); rotate them in the VGS dashboard if they were revoked"
            }
            VaultError::Forbidden => {
                "grant the missing scope (for example aliases:write) to the service account in the VGS dashboard"
            }
            VaultError::RevealDisabled => {
                "ask VGS (your account manager, or support@verygoodsecurity.com) to enable reveal for this vault; until then values can only reach a processor through VGS's proxy"
            }
            VaultError::VaultNotFound => {
                "check the vault id (tnt…) and that the environment matches it: sandbox ids do not work live"
            }
            VaultError::AliasNotFound => {
                "check the alias and the vault it came from; volatile values (CVC) expire after one hour"
            }
            VaultError::RateLimited => {
                "slow down: wait for the Retry-After time; VGS allows 3,000 requests per minute per vault"
            }
            VaultError::Timeout => {
                "retry later; if it persists raise the timeouts or check connectivity to the vault"
            }
            VaultError::Transport => {
                "retry later; if it persists check network access, proxies and TLS to the vault host"
            }
            VaultError::Upstream => {
                "retry later; if it persists contact VGS support with the trace id"
            }
            VaultError::ServerError => {
                "do not resend the same request blindly: check whether it took effect (e.g. retrieve the card), then contact VGS support with the trace id if it persists"
            }
            VaultError::UnexpectedResponse => {
                "check the endpoint points at a VGS vault API; report the trace id if it does"
            }
            VaultError::InsertOutcomeUnknown => {
                "insert the card again to get aliases (the vault may then hold it twice), and give VGS support the trace id to remove a record stored without its aliases; or turn fingerprinting on for the vault so inserts can be retried safely"
            }
            VaultError::ForwardOutcomeUnknown => {
                "do not send it again blindly: ask the processor whether it was processed (by the request's idempotency key, or its id in the processor's dashboard), and give VGS support the vgs-request-id if the proxy failed"
            }
        }
    }
}

/// The `Result` of every vault call.
pub type VaultResult<T> = Result<T, Report<VaultError>>;

/// HTTP status of the response that caused the error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HttpStatus(pub u16);

impl fmt::Display for HttpStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "HTTP status {}", self.0)
    }
}

/// VGS's `trace_id` for the failed call: what VGS support asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TraceId(pub String);

impl fmt::Display for TraceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "trace id {}", self.0)
    }
}

/// The attempt (1-based) on which the error happened, or after how many attempts
/// the connector gave up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Attempt(pub u32);

impl fmt::Display for Attempt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "attempt {}", self.0)
    }
}

/// How long the vault asked the client to wait before trying again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryAfter(pub Duration);

impl fmt::Display for RetryAfter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "retry after {} ms", self.0.as_millis())
    }
}

/// A human-readable explanation: what exactly was wrong. Never holds card data or a
/// secret; text from a remote party is capped at [`Detail::MAX_LEN`] characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Detail(String);

impl Detail {
    /// The longest detail kept; longer text is cut and marked with `…`.
    pub const MAX_LEN: usize = 512;

    /// Wraps a detail, capping its length.
    pub fn new(text: impl Into<String>) -> Self {
        let mut text = text.into();
        if text.chars().count() > Self::MAX_LEN {
            text = text.chars().take(Self::MAX_LEN).collect();
            text.push('…');
        }
        Detail(text)
    }

    /// The text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Detail {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Safe accessors for what a [`Report<VaultError>`] carries.
///
/// ```
/// use error_stack::Report;
/// use vault_core::{HttpStatus, ReportExt, VaultError};
///
/// let report = Report::new(VaultError::VaultNotFound).attach(HttpStatus(404));
/// assert_eq!(report.http_status(), Some(404));
/// assert!(!report.is_retryable());
/// ```
pub trait ReportExt {
    /// The kind of failure.
    fn kind(&self) -> VaultError;
    /// Whether retrying can help.
    fn is_retryable(&self) -> bool {
        self.kind().is_retryable()
    }
    /// The last HTTP status attached, if any.
    fn http_status(&self) -> Option<u16>;
    /// The VGS trace id attached, if any.
    fn trace_id(&self) -> Option<&str>;
    /// The attempt number attached, if any (the latest one).
    fn attempt(&self) -> Option<u32>;
    /// The wait the vault asked for, if any.
    fn retry_after(&self) -> Option<Duration>;
    /// The details attached, innermost first.
    fn details(&self) -> Vec<&str>;
    /// One line for a person: the kind, the details and the fix, e.g.
    /// `the vault was not found: vault id tntabc does not exist (HTTP status 404). Fix: …`.
    fn summary(&self) -> String;
}

fn find<T: Send + Sync + 'static>(report: &Report<VaultError>) -> Option<&T> {
    report.frames().find_map(|frame| frame.downcast_ref::<T>())
}

impl ReportExt for Report<VaultError> {
    fn kind(&self) -> VaultError {
        *self.current_context()
    }

    fn http_status(&self) -> Option<u16> {
        find::<HttpStatus>(self).map(|s| s.0)
    }

    fn trace_id(&self) -> Option<&str> {
        find::<TraceId>(self).map(|t| t.0.as_str())
    }

    fn attempt(&self) -> Option<u32> {
        find::<Attempt>(self).map(|a| a.0)
    }

    fn retry_after(&self) -> Option<Duration> {
        find::<RetryAfter>(self).map(|r| r.0)
    }

    fn details(&self) -> Vec<&str> {
        let mut details: Vec<&str> = self
            .frames()
            .filter_map(|frame| frame.downcast_ref::<Detail>())
            .map(Detail::as_str)
            .collect();
        details.reverse();
        details
    }

    fn summary(&self) -> String {
        let kind = self.kind();
        let mut line = kind.to_string();
        let details = self.details();
        if !details.is_empty() {
            line.push_str(": ");
            line.push_str(&details.join("; "));
        }
        let mut facts = Vec::new();
        if let Some(status) = self.http_status() {
            facts.push(format!("HTTP {status}"));
        }
        if let Some(trace) = self.trace_id() {
            facts.push(format!("trace id {trace}"));
        }
        if let Some(attempt) = self.attempt() {
            facts.push(format!("attempt {attempt}"));
        }
        if !facts.is_empty() {
            line.push_str(&format!(" ({})", facts.join(", ")));
        }
        line.push_str(". Fix: ");
        line.push_str(kind.fix());
        line
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_transient_kinds_are_retryable() {
        let retryable: Vec<_> = VaultError::ALL
            .iter()
            .filter(|k| k.is_retryable())
            .copied()
            .collect();
        assert_eq!(
            retryable,
            vec![
                VaultError::RateLimited,
                VaultError::Timeout,
                VaultError::Transport,
                VaultError::Upstream
            ]
        );
    }

    #[test]
    fn codes_are_unique_and_snake_case() {
        let mut codes: Vec<_> = VaultError::ALL.iter().map(VaultError::code).collect();
        assert!(
            codes
                .iter()
                .all(|c| c.chars().all(|ch| ch.is_ascii_lowercase() || ch == '_'))
        );
        codes.sort_unstable();
        codes.dedup();
        assert_eq!(codes.len(), VaultError::ALL.len());
    }

    #[test]
    fn report_accessors_read_attachments() {
        let report = Report::new(VaultError::RateLimited)
            .attach(HttpStatus(429))
            .attach(TraceId("abc123".into()))
            .attach(RetryAfter(Duration::from_secs(2)))
            .attach(Detail::new("slow down"))
            .attach(Attempt(3));
        assert_eq!(report.kind(), VaultError::RateLimited);
        assert!(ReportExt::is_retryable(&report));
        assert_eq!(report.http_status(), Some(429));
        assert_eq!(report.trace_id(), Some("abc123"));
        assert_eq!(report.retry_after(), Some(Duration::from_secs(2)));
        assert_eq!(report.attempt(), Some(3));
        assert_eq!(report.details(), vec!["slow down"]);
        let summary = report.summary();
        assert!(summary.starts_with("the vault is rate limiting requests: slow down"));
        assert!(summary.contains("HTTP 429"));
        assert!(summary.contains("trace id abc123"));
        assert!(summary.contains("Fix: slow down"));
    }

    #[test]
    fn detail_is_capped() {
        let detail = Detail::new("x".repeat(10_000));
        assert_eq!(detail.as_str().chars().count(), Detail::MAX_LEN + 1);
        assert!(detail.as_str().ends_with('…'));
    }

    #[test]
    fn summary_without_attachments_still_has_a_fix() {
        let report = Report::new(VaultError::VaultNotFound);
        assert_eq!(
            report.summary(),
            format!(
                "the vault was not found. Fix: {}",
                VaultError::VaultNotFound.fix()
            )
        );
    }
}
