//! Whether Redis is answering: one warning per outage, calls answered at once while it
//! is down with one retry per interval, and the counters behind `RedisStoreStats`.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use vault_auth::Clock;

/// What the store has counted since it was created.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct RedisStoreStats {
    /// Times Redis went from answering to failing: each logged one warning.
    pub outages: u64,
    /// Redis calls that failed: timeouts, connection errors, unexpected replies.
    pub errors: u64,
    /// Calls answered at once, without trying Redis, while it was down.
    pub skipped: u64,
    /// Stored values that could not be read (another encryption key, none, or not a
    /// token value): each read as a miss.
    pub unreadable: u64,
}

pub(crate) struct Health {
    clock: Arc<dyn Clock>,
    retry_interval: Duration,
    /// `Some(when to try again)` while Redis is down.
    down: Mutex<Option<DownSince>>,
    value_warned: AtomicBool,
    outages: AtomicU64,
    errors: AtomicU64,
    skipped: AtomicU64,
    unreadable: AtomicU64,
}

#[derive(Clone, Copy)]
struct DownSince {
    since: Instant,
    retry_at: Instant,
}

impl Health {
    pub(crate) fn new(clock: Arc<dyn Clock>, retry_interval: Duration) -> Self {
        Health {
            clock,
            retry_interval,
            down: Mutex::new(None),
            value_warned: AtomicBool::new(false),
            outages: AtomicU64::new(0),
            errors: AtomicU64::new(0),
            skipped: AtomicU64::new(0),
            unreadable: AtomicU64::new(0),
        }
    }

    fn down(&self) -> std::sync::MutexGuard<'_, Option<DownSince>> {
        self.down.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Whether a call may try Redis: always while it is up; while it is down, one
    /// call per retry interval (the others are answered at once and counted).
    pub(crate) fn admit(&self) -> bool {
        let mut down = self.down();
        let Some(state) = down.as_mut() else {
            return true;
        };
        let now = self.clock.now();
        if now >= state.retry_at {
            state.retry_at = now + self.retry_interval;
            return true;
        }
        drop(down);
        self.skipped.fetch_add(1, Ordering::Relaxed);
        false
    }

    /// Whether Redis is taken to be answering.
    pub(crate) fn is_up(&self) -> bool {
        self.down().is_none()
    }

    /// A call reached Redis and got a well-formed answer.
    pub(crate) fn answered(&self) {
        let was_down = self.down().take();
        if let Some(state) = was_down {
            tracing::info!(
                down_for_ms = self
                    .clock
                    .now()
                    .saturating_duration_since(state.since)
                    .as_millis(),
                "Redis token store answers again: tokens are shared across processes again"
            );
        }
    }

    /// A call could not reach Redis, or it did not answer in time.
    pub(crate) fn unavailable(&self, op: &'static str, cause: &str) {
        self.errors.fetch_add(1, Ordering::Relaxed);
        let now = self.clock.now();
        let mut down = self.down();
        if down.is_none() {
            *down = Some(DownSince {
                since: now,
                retry_at: now + self.retry_interval,
            });
            drop(down);
            self.outages.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(
                op,
                cause,
                retry_in_ms = self.retry_interval.as_millis(),
                "Redis token store unavailable: each process fetches its own tokens \
                 (single flight within the process) until Redis answers again"
            );
        } else {
            tracing::debug!(op, cause, "Redis token store still unavailable");
        }
    }

    /// Redis answered with something this store does not expect (a value of another
    /// type under its key, say): counted, warned about once until values read well.
    pub(crate) fn unexpected_reply(&self, op: &'static str, cause: &str) {
        self.errors.fetch_add(1, Ordering::Relaxed);
        self.warn_value_once(op, cause);
    }

    /// A stored value could not be read: counted, warned about once until values
    /// read well again.
    pub(crate) fn unreadable_value(&self, cause: &'static str) {
        self.unreadable.fetch_add(1, Ordering::Relaxed);
        self.warn_value_once("get", cause);
    }

    /// A stored value was read: the next unreadable one is warned about again.
    pub(crate) fn value_read(&self) {
        self.value_warned.store(false, Ordering::Relaxed);
    }

    fn warn_value_once(&self, op: &'static str, cause: &str) {
        if self.value_warned.swap(true, Ordering::Relaxed) {
            tracing::debug!(op, cause, "Redis token store value not usable");
        } else {
            tracing::warn!(
                op,
                cause,
                "Redis token store holds a value this process cannot use; it reads as a \
                 miss and is replaced by the next token fetched (do all processes use \
                 the same encryption key?)"
            );
        }
    }

    pub(crate) fn stats(&self) -> RedisStoreStats {
        RedisStoreStats {
            outages: self.outages.load(Ordering::Relaxed),
            errors: self.errors.load(Ordering::Relaxed),
            skipped: self.skipped.load(Ordering::Relaxed),
            unreadable: self.unreadable.load(Ordering::Relaxed),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use vault_auth::ManualClock;

    #[test]
    fn down_redis_is_tried_once_per_interval_and_counted_once_per_outage() {
        let clock = Arc::new(ManualClock::new());
        let health = Health::new(clock.clone(), Duration::from_secs(5));
        assert!(health.admit() && health.is_up());
        health.unavailable("get", "timeout");
        health.unavailable("put", "timeout");
        assert!(!health.is_up());
        assert!(!health.admit());
        clock.advance(Duration::from_secs(5));
        assert!(health.admit(), "one call tries again");
        assert!(!health.admit(), "the others do not, meanwhile");
        health.unavailable("get", "refused");
        clock.advance(Duration::from_secs(5));
        assert!(health.admit());
        health.answered();
        assert!(health.is_up() && health.admit() && health.admit());
        health.unavailable("get", "refused");
        let stats = health.stats();
        assert_eq!(stats.outages, 2);
        assert_eq!(stats.errors, 4);
        assert_eq!(stats.skipped, 2);
    }
}
