//! When a cached token is refreshed: a margin proportional to its lifetime, clamped,
//! minus random jitter. Pure functions of (issued_at, lifetime, policy, jitter, now).

use std::time::{Duration, Instant};

/// The longest token lifetime the cache believes (366 days); longer ones are cut to it.
pub const MAX_LIFETIME: Duration = Duration::from_secs(366 * 24 * 60 * 60);

/// When tokens are refreshed ahead of expiry, and how long a failed fetch is remembered.
///
/// A token of lifetime `L` is refreshed `margin + jitter` before it expires, where
/// `margin = clamp(L × 10 %, 30 s, 5 min)`, never more than `L / 2`, and `jitter` is
/// drawn uniformly from `[0, margin × 50 %]` for each token so that replicas holding
/// tokens of the same age do not all refresh in the same second. A VGS token of
/// 300 s is thus refreshed between 255 s and 270 s after it was requested; a 12-hour
/// token between 11 h 52.5 min and 11 h 55 min.
///
/// After a failed fetch, the cache waits `failure_backoff` (default 1 s) before
/// trying again: callers that have no valid token get the failure at once meanwhile
/// (they fail fast instead of piling up on a dead endpoint), and a failed background
/// refresh is retried no sooner than that while the old token is still served.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RefreshPolicy {
    margin_percent: u32,
    min_margin: Duration,
    max_margin: Duration,
    jitter_percent: u32,
    failure_backoff: Duration,
}

impl Default for RefreshPolicy {
    fn default() -> Self {
        RefreshPolicy {
            margin_percent: 10,
            min_margin: Duration::from_secs(30),
            max_margin: Duration::from_secs(5 * 60),
            jitter_percent: 50,
            failure_backoff: Duration::from_secs(1),
        }
    }
}

impl RefreshPolicy {
    /// Refresh `percent` % of the lifetime ahead of expiry, clamped to
    /// `[min, max]` (defaults: 10 %, 30 s, 5 min). `percent` is capped at 50.
    pub fn with_margin(mut self, percent: u32, min: Duration, max: Duration) -> Self {
        self.margin_percent = percent.min(50);
        self.min_margin = min.min(max);
        self.max_margin = max;
        self
    }

    /// The largest jitter, in percent of the margin (default 50, capped at 100;
    /// 0 makes refresh times exact, which some tests want).
    pub fn with_jitter_percent(mut self, percent: u32) -> Self {
        self.jitter_percent = percent.min(100);
        self
    }

    /// How long a failed fetch is remembered before the next attempt (default 1 s).
    pub fn with_failure_backoff(mut self, backoff: Duration) -> Self {
        self.failure_backoff = backoff;
        self
    }

    /// How long a failed fetch is remembered before the next attempt.
    pub fn failure_backoff(&self) -> Duration {
        self.failure_backoff
    }

    /// How long before expiry a token of `lifetime` is refreshed, without jitter.
    pub fn margin(&self, lifetime: Duration) -> Duration {
        let lifetime = lifetime.min(MAX_LIFETIME);
        let proportional = lifetime * self.margin_percent / 100;
        proportional
            .clamp(self.min_margin, self.max_margin)
            .min(lifetime / 2)
    }

    /// The largest jitter for a token of `lifetime`.
    pub fn max_jitter(&self, lifetime: Duration) -> Duration {
        self.margin(lifetime) * self.jitter_percent / 100
    }

    /// The schedule of a token requested at `issued_at` (read on the monotonic clock
    /// when the request was sent) and valid for `lifetime`. `jitter` in `[0, 1)`
    /// picks where in the jitter range this token's refresh falls.
    pub fn schedule(&self, issued_at: Instant, lifetime: Duration, jitter: f64) -> TokenTimes {
        let lifetime = lifetime.min(MAX_LIFETIME);
        let jitter = if jitter.is_finite() {
            jitter.clamp(0.0, 1.0)
        } else {
            0.0
        };
        let ahead = self.margin(lifetime) + self.max_jitter(lifetime).mul_f64(jitter);
        let refresh_after = lifetime.saturating_sub(ahead);
        TokenTimes {
            issued_at,
            refresh_at: issued_at + refresh_after,
            expires_at: issued_at + lifetime,
        }
    }
}

/// When a token was requested, when it should be refreshed and when it expires.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TokenTimes {
    /// When the token request was sent.
    pub issued_at: Instant,
    /// From this instant on, the token is refreshed in the background.
    pub refresh_at: Instant,
    /// From this instant on, the token is not used any more.
    pub expires_at: Instant,
}

impl TokenTimes {
    /// What the cache should do with the token at `now`.
    pub fn freshness(&self, now: Instant) -> Freshness {
        if now >= self.expires_at {
            Freshness::Expired
        } else if now >= self.refresh_at {
            Freshness::RefreshDue
        } else {
            Freshness::Fresh
        }
    }
}

/// The state of a cached token at some instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Freshness {
    /// Valid, and not yet due for refresh.
    Fresh,
    /// Still valid, but a background refresh should start.
    RefreshDue,
    /// Not valid any more: callers must wait for a new token.
    Expired,
}

#[cfg(test)]
mod tests {
    use super::*;

    const SEC: Duration = Duration::from_secs(1);

    #[test]
    fn margin_is_ten_percent_clamped_to_30s_and_5min() {
        let policy = RefreshPolicy::default();
        assert_eq!(policy.margin(300 * SEC), 30 * SEC); // 10 % = 30 s
        assert_eq!(policy.margin(1200 * SEC), 120 * SEC); // CMP's 20 minutes
        assert_eq!(policy.margin(12 * 3600 * SEC), 300 * SEC); // GAS's 12 hours
        assert_eq!(policy.margin(100 * SEC), 30 * SEC); // raised to the minimum
        assert_eq!(policy.margin(40 * SEC), 20 * SEC); // never more than half
    }

    #[test]
    fn vgs_token_is_refreshed_between_255_and_270_seconds() {
        let policy = RefreshPolicy::default();
        let t0 = Instant::now();
        let earliest = policy.schedule(t0, 300 * SEC, 0.999_999);
        let latest = policy.schedule(t0, 300 * SEC, 0.0);
        assert_eq!(latest.refresh_at - t0, 270 * SEC);
        assert!(earliest.refresh_at - t0 >= 255 * SEC);
        assert!(earliest.refresh_at - t0 < 256 * SEC);
        assert_eq!(latest.expires_at - t0, 300 * SEC);
    }

    #[test]
    fn freshness_follows_the_schedule() {
        let policy = RefreshPolicy::default().with_jitter_percent(0);
        let t0 = Instant::now();
        let times = policy.schedule(t0, 300 * SEC, 0.5);
        assert_eq!(times.freshness(t0), Freshness::Fresh);
        assert_eq!(times.freshness(t0 + 269 * SEC), Freshness::Fresh);
        assert_eq!(times.freshness(t0 + 270 * SEC), Freshness::RefreshDue);
        assert_eq!(times.freshness(t0 + 299 * SEC), Freshness::RefreshDue);
        assert_eq!(times.freshness(t0 + 300 * SEC), Freshness::Expired);
    }

    #[test]
    fn short_and_huge_lifetimes_stay_in_range() {
        let policy = RefreshPolicy::default();
        let t0 = Instant::now();
        let short = policy.schedule(t0, 2 * SEC, 0.9);
        assert!(short.refresh_at >= t0 && short.refresh_at <= short.expires_at);
        let zero = policy.schedule(t0, Duration::ZERO, 0.5);
        assert_eq!(zero.freshness(t0), Freshness::Expired);
        let huge = policy.schedule(t0, Duration::MAX, f64::NAN);
        assert_eq!(huge.expires_at - t0, MAX_LIFETIME);
    }
}
