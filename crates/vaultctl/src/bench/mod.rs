//! `vaultctl bench`: the connector against a bare-HTTP baseline on the mock VGS,
//! interleaved; token fetches per run and under cold concurrency; bulk import.

mod baseline;
mod driver;
mod import;
mod target;

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio::sync::Barrier;
use vault_auth::RefreshPolicy;
use vault_core::{
    Card, ConnectorVaultId, ExternalVault, InsertRequest, ReportExt, RetrieveRequest,
};

use crate::cli::{BenchArgs, BenchFlow};
use crate::output::{EXIT_FAILURE, Failure, print_json, say, thousands};

use self::baseline::Baseline;
use self::driver::{Slice, Totals, drive};
use self::target::Target;

/// The test card every operation stores and retrieves (a public test number).
const TEST_CARD: &str = r#"{"card_number":"4111111111111111","card_exp_month":"04","card_exp_year":"2030","card_cvc":"987","card_holder_name":"Ada Lovelace"}"#;

/// Runs the benchmark; returns the exit code (1 when any operation failed: the
/// numbers are then not comparable, and the output says which side failed how).
pub(crate) async fn bench(args: BenchArgs) -> Result<u8, Failure> {
    if let Some(cards) = args.import {
        return import::run(&args, cards).await;
    }
    let card: Card = serde_json::from_str(TEST_CARD)
        .map_err(|e| Failure::new(format!("the benchmark's test card does not parse: {e}")))?;
    let latency = args.latency_ms.map(Duration::from_millis);
    let target = match &args.endpoint {
        Some(endpoint) => Target::external(endpoint)?,
        None => Target::embedded(args.token_ttl.map(Duration::from_secs), latency).await?,
    };
    let requests = args
        .requests
        .unwrap_or(if latency.is_some() { 400 } else { 40_000 });
    let slices = args
        .slices
        .unwrap_or(if latency.is_some() { 4 } else { 80 })
        .max(2);
    let quiet = args.json;
    if !quiet {
        say!("vaultctl bench: {}", target.describe());
        say!(
            "{} operations per run, two runs per side, interleaved in slices of {}: connector, baseline, baseline, connector (x{}; fresh connector and client per flow and concurrency){}",
            thousands(requests),
            thousands(2 * requests / u64::from(slices)),
            slices / 2,
            if args.aa {
                "; A/A calibration: the \"connector\" is a second baseline"
            } else {
                ""
            }
        );
    }

    // Warm up both sides (connections, allocator, the mock's tables) and store the
    // card that the retrieve flow reads back.
    let setup: Arc<dyn ExternalVault> = Arc::new(target.connector()?);
    let stored = setup
        .insert(InsertRequest::card(card.clone()))
        .await
        .map_err(|r| Failure::vault("storing the test card failed", &r))?
        .connector_vault_id;
    let back = setup
        .retrieve(RetrieveRequest::new(stored.clone()))
        .await
        .map_err(|r| Failure::vault("retrieving the test card failed", &r))?;
    if back.card() != Some(&card) {
        return Err(Failure::new(
            "the test card did not round-trip through the mock. Fix: this is a vaultlink bug; please report it",
        ));
    }
    let warm_baseline = Arc::new(target.baseline().await?);
    let warmup = (requests / 10).clamp(100, 5_000);
    let top = args.concurrency.iter().copied().max().unwrap_or(1);
    for flow in &args.flow {
        let ops = Ops::new(*flow, &card, &stored);
        let _ = drive(ops.connector(&setup), warmup, top).await;
        let _ = drive(ops.baseline(&warm_baseline), warmup, top).await;
    }
    drop(warm_baseline);

    let plan = Plan {
        requests,
        slices: slices & !1,
        aa: args.aa,
    };
    let mut runs = Vec::new();
    for flow in &args.flow {
        for &concurrency in &args.concurrency {
            let run = run_pair(&target, *flow, concurrency, &plan, &card, &stored).await?;
            if !quiet {
                say!("{}", run.line());
            }
            runs.push(run);
        }
    }
    let cold = if args.cold_callers > 0 {
        Some(cold_callers(&target, args.cold_callers, &card).await?)
    } else {
        None
    };
    let stats = target.stats().await?;
    let errors: u64 =
        runs.iter().map(Run::errors).sum::<u64>() + cold.as_ref().map_or(0, |c| c.errors);

    let token_fetches_total: u64 = runs.iter().map(|r| r.token_fetches).sum();
    let expired: u64 = runs.iter().map(|r| r.expired_token_rejections).sum();
    if quiet {
        print_json(&json!({
            "runs": runs.iter().map(Run::to_json).collect::<Vec<_>>(),
            "token_fetches_total": token_fetches_total,
            "mock_token_requests": stats.token_requests,
            "expired_token_rejections": expired,
            "mock_expired_token_rejections": stats.expired_token_rejections,
            "cold_callers": cold.as_ref().map(ColdCallers::to_json),
            "token_ttl_s": target.token_lifetime().map(|l| l.as_secs()),
            "latency_ms": args.latency_ms,
            "api": target.api_name(),
            "mock": target.mock_json(),
            "machine": machine_json(),
            "slices_per_side": plan.slices,
            "errors": errors,
            "calibration_aa": args.aa,
        }));
    } else {
        say!("");
        say!("{}", table(&runs, latency));
        say!("");
        say!(
            "token fetches: {token_fetches_total} by the connectors (each warmed up once, then refreshing ahead of expiry); the mock saw {} token requests in all (warm-up and each baseline fetch one too); {} requests rejected for an expired token",
            stats.token_requests,
            stats.expired_token_rejections
        );
        if let Some(cold) = &cold {
            say!(
                "{} cold callers at once on a fresh connector: {} token fetch{} ({} failed calls)",
                thousands(u64::from(cold.callers)),
                cold.token_fetches,
                if cold.token_fetches == 1 { "" } else { "es" },
                cold.errors
            );
        }
        say!(
            "ratio = connector ops/s / baseline ops/s; {}{}",
            match latency {
                Some(l) => format!(
                    "latencies in milliseconds, {} ms added by the mock to every request; round trips = p50 / {} ms; ",
                    l.as_millis(),
                    l.as_millis()
                ),
                None => "latencies in microseconds; ".to_owned(),
            },
            target.sharing_note()
        );
    }
    if errors > 0 {
        let first = runs
            .iter()
            .find_map(Run::first_error)
            .or_else(|| cold.as_ref().and_then(|c| c.first_error.clone()))
            .unwrap_or_default();
        eprintln!(
            "error: {errors} operations failed, so the numbers are not comparable; the first: {first}. Fix: check the mock (lift its rate limit with `vaultctl mock serve --rate-limit none`)"
        );
        return Ok(EXIT_FAILURE);
    }
    Ok(0)
}

/// The two sides' operation for one flow.
struct Ops {
    flow: BenchFlow,
    card: Card,
    id: ConnectorVaultId,
}

type Op = dyn Fn() -> futures_util::future::BoxFuture<'static, Result<(), String>> + Send + Sync;

impl Ops {
    fn new(flow: BenchFlow, card: &Card, id: &ConnectorVaultId) -> Arc<Self> {
        Arc::new(Ops {
            flow,
            card: card.clone(),
            id: id.clone(),
        })
    }

    /// The connector's call: the orchestrator hands over a fresh request each time.
    fn connector(self: &Arc<Self>, vault: &Arc<dyn ExternalVault>) -> Arc<Op> {
        let ops = Arc::clone(self);
        let vault = Arc::clone(vault);
        Arc::new(move || {
            let vault = Arc::clone(&vault);
            match ops.flow {
                BenchFlow::Insert => {
                    let request = InsertRequest::card(ops.card.clone());
                    Box::pin(async move {
                        vault
                            .insert(request)
                            .await
                            .map(drop)
                            .map_err(|r| r.summary())
                    })
                }
                BenchFlow::Retrieve => {
                    let request = RetrieveRequest::new(ops.id.clone());
                    Box::pin(async move {
                        vault
                            .retrieve(request)
                            .await
                            .map(drop)
                            .map_err(|r| r.summary())
                    })
                }
            }
        })
    }

    /// The baseline's exchanges from the same inputs.
    fn baseline(self: &Arc<Self>, baseline: &Arc<Baseline>) -> Arc<Op> {
        let ops = Arc::clone(self);
        let baseline = Arc::clone(baseline);
        Arc::new(move || {
            let baseline = Arc::clone(&baseline);
            match ops.flow {
                BenchFlow::Insert => Box::pin(baseline.insert(ops.card.clone())),
                BenchFlow::Retrieve => Box::pin(baseline.retrieve(ops.id.clone())),
            }
        })
    }
}

/// How each flow and concurrency is measured.
struct Plan {
    /// Operations per run (each side runs twice).
    requests: u64,
    /// Slices per side (even).
    slices: u32,
    /// A/A calibration: a second baseline in place of the connector.
    aa: bool,
}

/// One flow at one concurrency: both sides' totals and the mock's counters.
struct Run {
    flow: BenchFlow,
    concurrency: u32,
    requests: u64,
    connector: Totals,
    baseline: Totals,
    token_fetches: u64,
    expected_token_fetches: u64,
    expired_token_rejections: u64,
    /// CPU time of the whole process during each side's slices (mock included).
    connector_cpu_ns: Option<u64>,
    baseline_cpu_ns: Option<u64>,
    /// The latency the mock added to every request (`--latency-ms`).
    latency: Option<Duration>,
}

/// Connector, baseline, baseline, connector, repeated: each side runs `2 × requests`
/// operations in `plan.slices` slices, so that drift (a build on the other core,
/// which worker thread a task lands on, the mock's tables) weighs on both sides
/// alike. Each side gets a fresh client; the connector is warmed up first as an
/// orchestrator does at start-up (`warm_up`: its token and connection), outside the
/// timing like the baseline's own token fetch, and that fetch is counted in
/// `token_fetches`. Refreshes during the runs are inside the measurement; the
/// baseline takes a new token between slices when its own is half-way through its
/// lifetime (only with a short `--token-ttl`), outside any timing.
async fn run_pair(
    target: &Target,
    flow: BenchFlow,
    concurrency: u32,
    plan: &Plan,
    card: &Card,
    id: &ConnectorVaultId,
) -> Result<Run, Failure> {
    let requests = plan.requests;
    let ops = Ops::new(flow, card, id);
    let vault: Arc<dyn ExternalVault> = Arc::new(target.connector()?);
    let mut baseline = BaselineSide::new(target, &ops).await?;
    let token_lifetime = target.token_lifetime().or(baseline.baseline.token_lifetime);
    // Calibration: a second, independent baseline stands in for the connector.
    let mut stand_in = if plan.aa {
        Some(BaselineSide::new(target, &ops).await?)
    } else {
        None
    };
    let connector_op = ops.connector(&vault);

    let start = target.stats().await?;
    if !plan.aa {
        vault
            .warm_up()
            .await
            .map_err(|r| Failure::vault("warming up the connector failed", &r))?;
    }
    let mut token_fetches = target.stats().await?.token_requests - start.token_requests;
    // CPU time of the whole process (connector or baseline, and the embedded mock).
    let (mut connector_cpu, mut baseline_cpu) = (Some(0), Some(0));
    let slices = plan.slices;
    let mut connector_slices: Vec<Slice> = Vec::with_capacity(slices as usize);
    let mut baseline_slices: Vec<Slice> = Vec::with_capacity(slices as usize);
    // 2 × requests per side, in `slices` slices each: A B B A, repeated.
    let total = 2 * requests;
    for slice in 0..2 * slices {
        let side = if matches!(slice % 4, 0 | 3) {
            Side::Connector
        } else {
            Side::Baseline
        };
        let done = match side {
            Side::Connector => connector_slices.len() as u64,
            Side::Baseline => baseline_slices.len() as u64,
        };
        let size = total * (done + 1) / u64::from(slices) - total * done / u64::from(slices);
        match side {
            Side::Connector => {
                let op = match &mut stand_in {
                    Some(stand_in) => stand_in.ready(&ops).await?,
                    None => Arc::clone(&connector_op),
                };
                let before = target.stats().await?.token_requests;
                let cpu = process_cpu_ns();
                connector_slices.push(drive(op, size, concurrency).await);
                connector_cpu = add_cpu(connector_cpu, cpu, process_cpu_ns());
                token_fetches += target.stats().await?.token_requests - before;
            }
            Side::Baseline => {
                let op = baseline.ready(&ops).await?;
                let cpu = process_cpu_ns();
                baseline_slices.push(drive(op, size, concurrency).await);
                baseline_cpu = add_cpu(baseline_cpu, cpu, process_cpu_ns());
            }
        }
    }
    let end = target.stats().await?;
    let windows: Vec<(Instant, Instant)> =
        connector_slices.iter().filter_map(|s| s.window).collect();
    let expected_token_fetches = match token_lifetime {
        Some(lifetime) if target.uses_tokens() && !plan.aa => {
            expected_fetches(&windows, lifetime, &RefreshPolicy::default())
        }
        _ => 0,
    };
    Ok(Run {
        flow,
        concurrency,
        requests,
        connector: Totals::of(connector_slices),
        baseline: Totals::of(baseline_slices),
        token_fetches,
        expected_token_fetches,
        expired_token_rejections: end.expired_token_rejections - start.expired_token_rejections,
        connector_cpu_ns: connector_cpu,
        baseline_cpu_ns: baseline_cpu,
        latency: target.latency(),
    })
}

/// CPU time this process's threads have used, in nanoseconds (Linux: the sum of
/// `/proc/self/task/*/schedstat`); `None` elsewhere.
fn process_cpu_ns() -> Option<u64> {
    let mut total = 0u64;
    for task in std::fs::read_dir("/proc/self/task").ok()? {
        let path = task.ok()?.path().join("schedstat");
        let text = std::fs::read_to_string(path).ok()?;
        total += text.split_whitespace().next()?.parse::<u64>().ok()?;
    }
    Some(total)
}

/// Adds the CPU used between two readings to a running total.
fn add_cpu(total: Option<u64>, before: Option<u64>, after: Option<u64>) -> Option<u64> {
    Some(total? + after?.checked_sub(before?)?)
}

/// The baseline of one flow and concurrency, and its operation.
struct BaselineSide {
    baseline: Arc<Baseline>,
    op: Arc<Op>,
}

impl BaselineSide {
    async fn new(target: &Target, ops: &Arc<Ops>) -> Result<Self, Failure> {
        let baseline = Arc::new(target.baseline().await?);
        let op = ops.baseline(&baseline);
        Ok(BaselineSide { baseline, op })
    }

    /// The operation for the next slice, with a token that will outlive it.
    async fn ready(&mut self, ops: &Arc<Ops>) -> Result<Arc<Op>, Failure> {
        if self.baseline.needs_new_token() {
            self.baseline = Arc::new(self.baseline.with_new_token().await?);
            self.op = ops.baseline(&self.baseline);
        }
        Ok(Arc::clone(&self.op))
    }
}

#[derive(Clone, Copy)]
enum Side {
    Connector,
    Baseline,
}

impl Run {
    fn ratio(&self) -> f64 {
        let base = self.baseline.ops_per_s();
        if base > 0.0 {
            self.connector.ops_per_s() / base
        } else {
            0.0
        }
    }

    /// Process CPU time per operation, in microseconds (Linux only).
    fn cpu_per_op(&self, cpu_ns: Option<u64>, totals: &Totals) -> Option<f64> {
        let ops = totals.operations.max(1) as f64;
        cpu_ns.map(|ns| round(ns as f64 / 1_000.0 / ops, 2))
    }

    /// Round trips per operation at the median: p50 / the added latency.
    fn round_trips(&self, totals: &Totals) -> Option<f64> {
        let latency = self.latency?.as_secs_f64() * 1e6;
        Some(round(totals.percentile_us(50.0) / latency, 2))
    }

    fn errors(&self) -> u64 {
        self.connector.errors + self.baseline.errors
    }

    fn first_error(&self) -> Option<String> {
        let side = |name: &str, totals: &Totals| {
            totals.first_error.as_ref().map(|e| {
                format!(
                    "{} {name} at concurrency {}: {e}",
                    self.flow.as_str(),
                    self.concurrency
                )
            })
        };
        side("connector", &self.connector).or_else(|| side("baseline", &self.baseline))
    }

    fn to_json(&self) -> Value {
        json!({
            "flow": self.flow.as_str(),
            "concurrency": self.concurrency,
            "requests": self.requests,
            "connector_ops_per_s": round(self.connector.ops_per_s(), 1),
            "baseline_ops_per_s": round(self.baseline.ops_per_s(), 1),
            "ratio": round(self.ratio(), 4),
            "connector_p50_us": round(self.connector.percentile_us(50.0), 1),
            "connector_p99_us": round(self.connector.percentile_us(99.0), 1),
            "baseline_p50_us": round(self.baseline.percentile_us(50.0), 1),
            "baseline_p99_us": round(self.baseline.percentile_us(99.0), 1),
            "connector_round_trips_p50": self.round_trips(&self.connector),
            "baseline_round_trips_p50": self.round_trips(&self.baseline),
            "token_fetches": self.token_fetches,
            "expected_token_fetches": self.expected_token_fetches,
            "expired_token_rejections": self.expired_token_rejections,
            "connector_seconds": round(self.connector.elapsed.as_secs_f64(), 3),
            "baseline_seconds": round(self.baseline.elapsed.as_secs_f64(), 3),
            "connector_cpu_us_per_op": self.cpu_per_op(self.connector_cpu_ns, &self.connector),
            "baseline_cpu_us_per_op": self.cpu_per_op(self.baseline_cpu_ns, &self.baseline),
            "connector_errors": self.connector.errors,
            "baseline_errors": self.baseline.errors,
        })
    }

    /// A progress line, printed as each run finishes.
    fn line(&self) -> String {
        format!(
            "  {} at concurrency {}: connector {} ops/s, baseline {} ops/s, ratio {:.3}",
            self.flow.as_str(),
            self.concurrency,
            thousands(self.connector.ops_per_s() as u64),
            thousands(self.baseline.ops_per_s() as u64),
            self.ratio()
        )
    }
}

fn table(runs: &[Run], latency: Option<Duration>) -> String {
    // With --latency-ms: milliseconds and round trips per operation.
    let (unit, scale) = match latency {
        Some(_) => ("ms", 1_000.0),
        None => ("us", 1.0),
    };
    let mut out = format!(
        "{:<9} {:>5} {:>15} {:>15} {:>7} {:>20} {:>20} {:>14}",
        "flow",
        "conc",
        "connector ops/s",
        "baseline ops/s",
        "ratio",
        format!("connector p50/p99 {unit}"),
        format!("baseline p50/p99 {unit}"),
        "token fetches"
    );
    if latency.is_some() {
        out.push_str(&format!(" {:>16}", "round trips c/b"));
    }
    let p = |totals: &Totals| {
        let digits = if latency.is_some() { 1 } else { 0 };
        format!(
            "{:.digits$} / {:.digits$}",
            totals.percentile_us(50.0) / scale,
            totals.percentile_us(99.0) / scale
        )
    };
    for run in runs {
        out.push_str(&format!(
            "\n{:<9} {:>5} {:>15} {:>15} {:>7.3} {:>20} {:>20} {:>14}",
            run.flow.as_str(),
            run.concurrency,
            thousands(run.connector.ops_per_s() as u64),
            thousands(run.baseline.ops_per_s() as u64),
            run.ratio(),
            p(&run.connector),
            p(&run.baseline),
            format!(
                "{} (exp. {})",
                run.token_fetches, run.expected_token_fetches
            ),
        ));
        if let (Some(c), Some(b)) = (
            run.round_trips(&run.connector),
            run.round_trips(&run.baseline),
        ) {
            out.push_str(&format!(" {:>16}", format!("{c:.2} / {b:.2}")));
        }
    }
    out
}

/// How many token fetches a perfect refresh-ahead cache makes while its connector
/// is used during `windows` (and idle between them): one at the first call; then one
/// each time the current token reaches its refresh age (lifetime − margin − mean
/// jitter, see [`RefreshPolicy`]) while calls go on, or at the first call after an
/// idle gap that outlasted that age.
pub(crate) fn expected_fetches(
    windows: &[(Instant, Instant)],
    lifetime: Duration,
    policy: &RefreshPolicy,
) -> u64 {
    let age = lifetime
        .saturating_sub(policy.margin(lifetime) + policy.max_jitter(lifetime) / 2)
        .max(Duration::from_millis(1));
    let mut fetches = 0;
    let mut issued: Option<Instant> = None;
    for &(start, end) in windows {
        if issued.is_none_or(|at| start >= at + age) {
            fetches += 1;
            issued = Some(start);
        }
        while let Some(at) = issued
            && at + age < end
        {
            fetches += 1;
            issued = Some(at + age);
        }
    }
    fetches
}

/// `--cold-callers`: N tasks call a fresh connector at the same instant.
struct ColdCallers {
    callers: u32,
    token_fetches: u64,
    errors: u64,
    first_error: Option<String>,
}

impl ColdCallers {
    fn to_json(&self) -> Value {
        json!({
            "callers": self.callers,
            "token_fetches": self.token_fetches,
            "errors": self.errors,
        })
    }
}

async fn cold_callers(target: &Target, callers: u32, card: &Card) -> Result<ColdCallers, Failure> {
    let vault: Arc<dyn ExternalVault> = Arc::new(target.connector()?);
    let before = target.stats().await?.token_requests;
    let barrier = Arc::new(Barrier::new(callers as usize));
    let tasks: Vec<_> = (0..callers)
        .map(|_| {
            let vault = Arc::clone(&vault);
            let barrier = Arc::clone(&barrier);
            let request = InsertRequest::card(card.clone());
            tokio::spawn(async move {
                barrier.wait().await;
                vault
                    .insert(request)
                    .await
                    .map(drop)
                    .map_err(|r| r.summary())
            })
        })
        .collect();
    let mut errors = 0;
    let mut first_error = None;
    for task in tasks {
        let outcome = task
            .await
            .unwrap_or_else(|e| Err(format!("a caller task failed: {e}")));
        if let Err(e) = outcome {
            errors += 1;
            first_error.get_or_insert(e);
        }
    }
    let token_fetches = target.stats().await?.token_requests - before;
    Ok(ColdCallers {
        callers,
        token_fetches,
        errors,
        first_error,
    })
}

/// CPUs, CPU model and memory of this machine, for the record.
pub(crate) fn machine_json() -> Value {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name"))
        .and_then(|l| l.split_once(':'))
        .map(|(_, m)| m.trim().to_owned());
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let mem_kib = meminfo
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|l| l.trim().trim_end_matches("kB").trim().parse::<u64>().ok());
    json!({
        "cpus": std::thread::available_parallelism().map(|n| n.get()).ok(),
        "cpu_model": model,
        "memory_gib": mem_kib.map(|k| round(k as f64 / 1024.0 / 1024.0, 1)),
        "os": std::env::consts::OS,
        "arch": std::env::consts::ARCH,
    })
}

fn round(value: f64, decimals: i32) -> f64 {
    let scale = 10f64.powi(decimals);
    (value * scale).round() / scale
}

#[cfg(test)]
mod tests {
    use super::*;

    const SEC: Duration = Duration::from_secs(1);

    #[test]
    fn one_fetch_when_the_runs_fit_in_one_token_lifetime() {
        let t0 = Instant::now();
        let policy = RefreshPolicy::default();
        let windows = [(t0, t0 + 10 * SEC), (t0 + 20 * SEC, t0 + 30 * SEC)];
        assert_eq!(expected_fetches(&windows, 300 * SEC, &policy), 1);
    }

    #[test]
    fn short_lifetimes_refresh_at_the_mean_refresh_age() {
        // A 10 s token: margin 5 s (half the lifetime), jitter up to 2.5 s: refreshed
        // at 3.75 s on average.
        let t0 = Instant::now();
        let policy = RefreshPolicy::default();
        let continuous = [(t0, t0 + 15 * SEC)];
        assert_eq!(expected_fetches(&continuous, 10 * SEC, &policy), 4); // 0, 3.75, 7.5, 11.25
        // An idle gap longer than the refresh age: the next call fetches at once.
        let gapped = [(t0, t0 + 2 * SEC), (t0 + 12 * SEC, t0 + 13 * SEC)];
        assert_eq!(expected_fetches(&gapped, 10 * SEC, &policy), 2);
        assert_eq!(expected_fetches(&[], 10 * SEC, &policy), 0);
    }
}
