//! The injectable clock behind token expiry, VOLATILE expiry and rate-limit windows:
//! real wall time by default, or a manual clock that tests move with `advance`.

use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::lock;

/// The mock's notion of "now".
///
/// `MockClock::system()` (the default) reads the wall clock. `MockClock::manual()`
/// stands still until [`MockClock::advance`] moves it, so tests of expiry need no
/// sleeps. Clones share the same time: keep one in the test and give one to the
/// [`MockConfig`](crate::MockConfig).
#[derive(Clone, Default)]
pub struct MockClock {
    manual: Option<Arc<Mutex<SystemTime>>>,
}

impl MockClock {
    /// The real wall clock.
    pub fn system() -> Self {
        Self { manual: None }
    }

    /// A manual clock frozen at the current wall time.
    pub fn manual() -> Self {
        Self::manual_at(SystemTime::now())
    }

    /// A manual clock frozen at `start`.
    pub fn manual_at(start: SystemTime) -> Self {
        Self {
            manual: Some(Arc::new(Mutex::new(start))),
        }
    }

    /// Whether this clock only moves when [`advance`](Self::advance) is called.
    pub fn is_manual(&self) -> bool {
        self.manual.is_some()
    }

    /// The current time.
    pub fn now(&self) -> SystemTime {
        match &self.manual {
            Some(time) => *lock(time),
            None => SystemTime::now(),
        }
    }

    /// Moves a manual clock forward by `by`.
    ///
    /// # Panics
    /// On the system clock, which cannot be moved: that is a mistake in the test.
    pub fn advance(&self, by: Duration) {
        let time = self
            .manual
            .as_ref()
            .expect("MockClock::advance needs a clock made with MockClock::manual()");
        let mut time = lock(time);
        *time += by;
    }
}

impl fmt::Debug for MockClock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.manual {
            Some(_) => write!(f, "MockClock::manual({})", rfc3339(self.now())),
            None => f.write_str("MockClock::system"),
        }
    }
}

/// Formats `time` as RFC 3339 in UTC with second precision (`2019-05-15T12:30:45Z`),
/// the shape of the spec's `created_at` examples.
pub(crate) fn rfc3339(time: SystemTime) -> String {
    // Times before 1970 do not occur in the mock; clamp rather than fail.
    let secs = time
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| since.as_secs());
    let days = i64::try_from(secs / 86_400).unwrap_or(i64::MAX / 2);
    let rem = secs % 86_400;
    let (year, month, day) = civil_from_days(days);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        (rem % 3600) / 60,
        rem % 60
    )
}

/// Days since 1970-01-01 to (year, month, day), after Howard Hinnant's `civil_from_days`.
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    // day is 1..=31 and month 1..=12 by construction.
    (
        year,
        u32::try_from(month).unwrap_or(1),
        u32::try_from(day).unwrap_or(1),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_matches_known_instants() {
        assert_eq!(rfc3339(UNIX_EPOCH), "1970-01-01T00:00:00Z");
        let spec_example = UNIX_EPOCH + Duration::from_secs(1_557_923_445);
        assert_eq!(rfc3339(spec_example), "2019-05-15T12:30:45Z");
        let leap_day = UNIX_EPOCH + Duration::from_secs(951_782_400);
        assert_eq!(rfc3339(leap_day), "2000-02-29T00:00:00Z");
    }

    #[test]
    fn manual_clock_moves_only_when_advanced_and_clones_share_time() {
        let clock = MockClock::manual_at(UNIX_EPOCH);
        let copy = clock.clone();
        assert_eq!(clock.now(), UNIX_EPOCH);
        copy.advance(Duration::from_secs(90));
        assert_eq!(clock.now(), UNIX_EPOCH + Duration::from_secs(90));
        assert!(clock.is_manual());
        assert!(!MockClock::system().is_manual());
    }

    #[test]
    #[should_panic(expected = "needs a clock made with MockClock::manual")]
    fn advancing_the_system_clock_is_a_test_bug() {
        MockClock::system().advance(Duration::from_secs(1));
    }
}
