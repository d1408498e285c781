//! The load driver of `vaultctl bench`: N tasks share one counter of operations and
//! loop until it is used up, timing every operation; then percentiles and rates.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// What one slice (one side's run of `requests` operations) measured.
#[derive(Debug, Default)]
pub(crate) struct Slice {
    /// Wall time from the first task's start to the last task's end.
    pub(crate) elapsed: Duration,
    /// Every operation's duration, in nanoseconds (unsorted).
    pub(crate) latencies_ns: Vec<u64>,
    /// Operations that failed.
    pub(crate) errors: u64,
    /// The first failure's one-line description.
    pub(crate) first_error: Option<String>,
    /// When the slice started and ended.
    pub(crate) window: Option<(Instant, Instant)>,
}

/// Runs `requests` calls of `op` from `concurrency` tasks on the current runtime.
/// Each task takes the next operation number from a shared counter, so the tasks
/// stay busy until the very end whatever their individual speed.
pub(crate) async fn drive<F, Fut>(op: Arc<F>, requests: u64, concurrency: u32) -> Slice
where
    F: Fn() -> Fut + Send + Sync + ?Sized + 'static,
    Fut: Future<Output = Result<(), String>> + Send + 'static,
{
    let next = Arc::new(AtomicU64::new(0));
    let per_task = usize::try_from(requests / u64::from(concurrency.max(1)) + 1).unwrap_or(0);
    let started = Instant::now();
    let tasks: Vec<_> = (0..concurrency.max(1))
        .map(|_| {
            let op = Arc::clone(&op);
            let next = Arc::clone(&next);
            tokio::spawn(async move {
                let mut latencies = Vec::with_capacity(per_task);
                let mut errors = 0u64;
                let mut first_error = None;
                while next.fetch_add(1, Ordering::Relaxed) < requests {
                    let at = Instant::now();
                    let outcome = op().await;
                    latencies.push(nanos(at.elapsed()));
                    if let Err(error) = outcome {
                        errors += 1;
                        first_error.get_or_insert(error);
                    }
                }
                (latencies, errors, first_error)
            })
        })
        .collect();
    let mut slice = Slice {
        latencies_ns: Vec::with_capacity(usize::try_from(requests).unwrap_or(0)),
        ..Slice::default()
    };
    for task in tasks {
        match task.await {
            Ok((latencies, errors, first_error)) => {
                slice.latencies_ns.extend(latencies);
                slice.errors += errors;
                if slice.first_error.is_none() {
                    slice.first_error = first_error;
                }
            }
            Err(error) => {
                slice.errors += 1;
                slice
                    .first_error
                    .get_or_insert_with(|| format!("a benchmark task failed: {error}"));
            }
        }
    }
    let ended = Instant::now();
    slice.elapsed = ended - started;
    slice.window = Some((started, ended));
    slice
}

fn nanos(duration: Duration) -> u64 {
    u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX)
}

/// One side's slices taken together.
#[derive(Debug, Default)]
pub(crate) struct Totals {
    /// Operations run.
    pub(crate) operations: u64,
    /// Sum of the slices' wall times.
    pub(crate) elapsed: Duration,
    /// All latencies, sorted.
    pub(crate) sorted_ns: Vec<u64>,
    /// Failed operations.
    pub(crate) errors: u64,
    /// The first failure.
    pub(crate) first_error: Option<String>,
}

impl Totals {
    /// Sums `slices`.
    pub(crate) fn of(slices: Vec<Slice>) -> Self {
        let mut totals = Totals::default();
        for slice in slices {
            totals.operations += slice.latencies_ns.len() as u64;
            totals.elapsed += slice.elapsed;
            totals.errors += slice.errors;
            if totals.first_error.is_none() {
                totals.first_error = slice.first_error;
            }
            totals.sorted_ns.extend(slice.latencies_ns);
        }
        totals.sorted_ns.sort_unstable();
        totals
    }

    /// Operations per second over the slices' summed wall time.
    pub(crate) fn ops_per_s(&self) -> f64 {
        let secs = self.elapsed.as_secs_f64();
        if secs > 0.0 {
            self.operations as f64 / secs
        } else {
            0.0
        }
    }

    /// The `p`-th percentile latency (0 < p ≤ 100) in microseconds, nearest rank.
    pub(crate) fn percentile_us(&self, p: f64) -> f64 {
        percentile(&self.sorted_ns, p) as f64 / 1_000.0
    }
}

/// Nearest-rank percentile of sorted values; 0 for none.
pub(crate) fn percentile(sorted: &[u64], p: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let rank = (p / 100.0 * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let values: Vec<u64> = (1..=100).collect();
        assert_eq!(percentile(&values, 50.0), 50);
        assert_eq!(percentile(&values, 99.0), 99);
        assert_eq!(percentile(&values, 100.0), 100);
        assert_eq!(percentile(&[7], 99.0), 7);
        assert_eq!(percentile(&[], 50.0), 0);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn every_operation_runs_exactly_once_whatever_the_concurrency() {
        for concurrency in [1, 3, 64] {
            let calls = Arc::new(AtomicU64::new(0));
            let counted = Arc::clone(&calls);
            let op = Arc::new(move || {
                let calls = Arc::clone(&counted);
                async move {
                    let n = calls.fetch_add(1, Ordering::Relaxed);
                    if n % 10 == 0 {
                        Err(format!("call {n} failed"))
                    } else {
                        Ok(())
                    }
                }
            });
            let slice = drive(op, 100, concurrency).await;
            assert_eq!(calls.load(Ordering::Relaxed), 100);
            assert_eq!(slice.latencies_ns.len(), 100);
            assert_eq!(slice.errors, 10);
            assert!(slice.first_error.is_some());
            let totals = Totals::of(vec![slice]);
            assert_eq!(totals.operations, 100);
            assert!(totals.ops_per_s() > 0.0);
        }
    }
}
