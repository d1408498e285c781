//! Retry policy: which failures are retried, and the capped exponential backoff with
//! full jitter between attempts, as pure functions of (attempt, policy, random draw).

use std::time::Duration;

use vault_core::VaultError;

/// How failed calls are retried. Defaults: 3 attempts in all, backoff starting at
/// 50 ms and capped at 1 s (full jitter), inserts retried (see
/// [`RetryPolicy::retry_inserts`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in all, including the first (1 = no retries). Default 3.
    pub max_attempts: u32,
    /// The first backoff's upper bound; doubles per attempt. Default 50 ms.
    pub base_backoff: Duration,
    /// The largest backoff. Default 1 s.
    pub max_backoff: Duration,
    /// Whether an insert that may have reached the vault is sent again after a 5xx, a
    /// reset connection or a timeout, **when the vault deduplicates values**
    /// ([`Fingerprinting::On`](crate::Fingerprinting), or CMP's duplicate-card check):
    /// a re-send then returns the aliases of the first attempt instead of storing the
    /// card twice. Default `true`. With fingerprinting off such an insert is never
    /// re-sent, whatever this says: it fails with
    /// [`VaultError::InsertOutcomeUnknown`]. An insert is always retried when it
    /// provably never reached the vault (connection refused) or was refused before
    /// processing (429).
    pub retry_inserts: bool,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 3,
            base_backoff: Duration::from_millis(50),
            max_backoff: Duration::from_secs(1),
            retry_inserts: true,
        }
    }
}

impl RetryPolicy {
    /// No retries at all.
    pub fn none() -> Self {
        RetryPolicy {
            max_attempts: 1,
            ..RetryPolicy::default()
        }
    }

    /// The wait before attempt `next_attempt` (2 for the first retry): a uniform draw
    /// in `[0, min(max_backoff, base_backoff * 2^(next_attempt - 2))]` ("full jitter"),
    /// where `unit` is a random number in `[0, 1)`.
    pub fn backoff(&self, next_attempt: u32, unit: f64) -> Duration {
        let exponent = next_attempt.saturating_sub(2).min(20);
        let ceiling = self
            .base_backoff
            .saturating_mul(1u32 << exponent)
            .min(self.max_backoff);
        ceiling.mul_f64(unit.clamp(0.0, 1.0))
    }
}

/// How a failed attempt ended, as far as retrying is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Failure {
    /// The request never left: connection refused, DNS, TLS handshake.
    NotSent,
    /// It may have reached the vault: reset mid-request, timeout, 5xx.
    MaybeProcessed,
    /// The vault refused it before processing (429).
    Throttled,
    /// Retrying cannot help (4xx, bad response).
    Final,
}

impl Failure {
    /// Classifies an error kind (transport errors are split by the caller into
    /// `NotSent` / `MaybeProcessed`).
    pub(crate) fn of(kind: VaultError) -> Self {
        match kind {
            VaultError::RateLimited => Failure::Throttled,
            VaultError::Upstream | VaultError::Timeout | VaultError::Transport => {
                Failure::MaybeProcessed
            }
            _ => Failure::Final,
        }
    }

    /// Whether an attempt that failed like this may be made again.
    pub(crate) fn retryable(self, resend: Resend, policy: &RetryPolicy) -> bool {
        match self {
            Failure::Final => false,
            Failure::NotSent | Failure::Throttled => true,
            Failure::MaybeProcessed => match resend {
                Resend::Always => true,
                Resend::Deduplicated => policy.retry_inserts,
                Resend::Never => false,
            },
        }
    }
}

/// Whether a request that may have reached the vault can be sent again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Resend {
    /// Repeating it changes nothing (GET, PUT, DELETE).
    Always,
    /// A create the vault deduplicates (fingerprinting, duplicate-card check): a
    /// repeat returns the first attempt's result; sent again per
    /// [`RetryPolicy::retry_inserts`].
    Deduplicated,
    /// A create the vault does not deduplicate: a repeat could store it twice.
    Never,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_exponentially_and_is_capped() {
        let policy = RetryPolicy::default();
        assert_eq!(
            policy.backoff(2, 0.999_999),
            Duration::from_millis(50).mul_f64(0.999_999)
        );
        assert_eq!(policy.backoff(3, 1.0), Duration::from_millis(100));
        assert_eq!(policy.backoff(4, 1.0), Duration::from_millis(200));
        assert_eq!(policy.backoff(30, 1.0), Duration::from_secs(1));
        assert_eq!(policy.backoff(3, 0.0), Duration::ZERO);
        assert_eq!(policy.backoff(3, 0.5), Duration::from_millis(50));
    }

    #[test]
    fn inserts_are_retried_only_when_safe() {
        let strict = RetryPolicy {
            retry_inserts: false,
            ..RetryPolicy::default()
        };
        let lenient = RetryPolicy::default();
        assert!(Failure::NotSent.retryable(Resend::Never, &strict));
        assert!(Failure::Throttled.retryable(Resend::Never, &strict));
        assert!(!Failure::MaybeProcessed.retryable(Resend::Deduplicated, &strict));
        assert!(Failure::MaybeProcessed.retryable(Resend::Deduplicated, &lenient));
        assert!(!Failure::MaybeProcessed.retryable(Resend::Never, &lenient));
        assert!(Failure::MaybeProcessed.retryable(Resend::Always, &strict));
        assert!(!Failure::Final.retryable(Resend::Always, &lenient));
        assert_eq!(Failure::of(VaultError::AliasNotFound), Failure::Final);
        assert_eq!(Failure::of(VaultError::Upstream), Failure::MaybeProcessed);
    }
}
