//! `WallClock`: the calendar time a connector compares stored expiries with, injected
//! so that tests move time instead of sleeping.

use std::fmt;
use std::time::SystemTime;

/// The current calendar time. Expiries stored in ids (a CVC's hour) outlive the
/// process, so they are wall-clock times, not monotonic instants.
pub trait WallClock: Send + Sync + fmt::Debug {
    /// Now.
    fn now(&self) -> SystemTime;
}

/// The system's wall clock ([`SystemTime::now`]).
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemWallClock;

impl WallClock for SystemWallClock {
    fn now(&self) -> SystemTime {
        SystemTime::now()
    }
}
