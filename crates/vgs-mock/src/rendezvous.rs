//! A rendezvous for API calls: the next `count` calls each wait until all `count`
//! have arrived before any is handled. A client that sends them one after another
//! never fills it (the first call waits out the bound, then goes on, and the
//! rendezvous says it was missed), so a test proves that calls were in flight at the
//! same time without measuring time.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::watch;

/// One armed rendezvous; see [`MockHandle::rendezvous`](crate::MockHandle::rendezvous).
#[derive(Clone)]
pub struct Rendezvous {
    inner: Arc<Shared>,
}

struct Shared {
    count: usize,
    wait: Duration,
    arrived: Mutex<Arrivals>,
    full: watch::Sender<bool>,
}

#[derive(Default)]
struct Arrivals {
    calls: usize,
    /// A call gave up waiting before the others came.
    missed: bool,
}

impl Rendezvous {
    pub(crate) fn new(count: usize, wait: Duration) -> Self {
        let (full, _) = watch::channel(count == 0);
        Rendezvous {
            inner: Arc::new(Shared {
                count,
                wait,
                arrived: Mutex::new(Arrivals::default()),
                full,
            }),
        }
    }

    /// Whether all `count` calls were waiting at once (none gave up).
    pub fn met(&self) -> bool {
        let arrived = lock(&self.inner.arrived);
        arrived.calls >= self.inner.count && !arrived.missed
    }

    /// How many calls have arrived so far.
    pub fn arrived(&self) -> usize {
        lock(&self.inner.arrived).calls
    }

    /// Takes a place (`false`: already full, the call is not part of it).
    pub(crate) fn join(&self) -> bool {
        let mut arrived = lock(&self.inner.arrived);
        if arrived.calls >= self.inner.count {
            return false;
        }
        arrived.calls += 1;
        if arrived.calls == self.inner.count {
            self.inner.full.send_replace(true);
        }
        true
    }

    /// Waits until every place is taken, at most the bound; a call that waited the
    /// bound out marks the rendezvous missed and goes on.
    pub(crate) async fn wait(&self) {
        let mut full = self.inner.full.subscribe();
        let filled = tokio::time::timeout(self.inner.wait, full.wait_for(|full| *full)).await;
        if !matches!(filled, Ok(Ok(_))) {
            lock(&self.inner.arrived).missed = true;
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn two_calls_at_once_meet_and_a_third_is_not_held() {
        let rendezvous = Rendezvous::new(2, Duration::from_secs(30));
        assert!(rendezvous.join());
        let first = tokio::spawn({
            let r = rendezvous.clone();
            async move { r.wait().await }
        });
        assert!(rendezvous.join());
        rendezvous.wait().await;
        first.await.unwrap();
        assert!(rendezvous.met());
        assert!(!rendezvous.join(), "full: later calls pass");
        assert_eq!(rendezvous.arrived(), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn a_call_alone_waits_out_the_bound_and_the_rendezvous_is_missed() {
        let rendezvous = Rendezvous::new(2, Duration::from_secs(5));
        assert!(rendezvous.join());
        rendezvous.wait().await; // paused clock: the bound passes at once
        assert!(rendezvous.join());
        rendezvous.wait().await;
        assert!(!rendezvous.met(), "the second came after the first gave up");
    }
}
