//! Fault injection (random 5xx, dropped connections, 429, latency, a slow token
//! endpoint; and "fail the next N calls of route R") and the middleware that applies
//! it and counts every request's outcome.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::Response;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};

use crate::api::{self, ApiError};
use crate::lock;
use crate::route::Route;
use crate::server::ConnectionKiller;
use crate::state::MockState;
use crate::stats::Outcome;
use crate::token;

/// Header set on every response that fault injection produced: `status`, `429`,
/// `reset` (in-process only, see [`FailWith::Reset`]) or `delay`.
pub const FAULT_HEADER: &str = "x-vgs-mock-fault";

/// Random faults; the JSON body of `POST /_mock/faults` (missing fields take the
/// defaults: nothing injected, 5xx status 503, `Retry-After: 1`).
///
/// For each request of a targeted route the mock waits `latency_ms` plus a random
/// `0..=latency_jitter_ms`, then drops the connection with probability `p_reset`,
/// else answers `status_5xx` with probability `p_5xx`, else 429 with `Retry-After`
/// with probability `p_429`, else handles the request. Token requests also wait
/// `token_delay_ms` (a hanging token endpoint), whatever `routes` says.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FaultConfig {
    /// Probability (0..=1) of answering `status_5xx` instead of handling the request.
    pub p_5xx: f64,
    /// The 5xx status sent by `p_5xx` (default 503).
    pub status_5xx: u16,
    /// Probability (0..=1) of dropping the connection without an answer.
    pub p_reset: f64,
    /// Probability (0..=1) of answering 429 with `Retry-After`.
    pub p_429: f64,
    /// `Retry-After` seconds of injected 429s (default 1).
    pub retry_after_secs: u32,
    /// Fixed added latency, milliseconds.
    pub latency_ms: u64,
    /// Random added latency on top, up to this many milliseconds.
    pub latency_jitter_ms: u64,
    /// Extra delay of every token-endpoint answer, milliseconds (simulates a hang).
    pub token_delay_ms: u64,
    /// Routes the random faults and latency apply to; empty = all routes.
    pub routes: Vec<Route>,
    /// Seed of the fault dice, for reproducible runs; `None` = from the OS.
    pub seed: Option<u64>,
}

impl Default for FaultConfig {
    fn default() -> Self {
        Self {
            p_5xx: 0.0,
            status_5xx: 503,
            p_reset: 0.0,
            p_429: 0.0,
            retry_after_secs: 1,
            latency_ms: 0,
            latency_jitter_ms: 0,
            token_delay_ms: 0,
            routes: Vec::new(),
            seed: None,
        }
    }
}

impl FaultConfig {
    /// No faults (the default).
    pub fn none() -> Self {
        Self::default()
    }

    /// Checks probabilities are within 0..=1 and `status_5xx` is a 5xx.
    pub fn validate(&self) -> Result<(), String> {
        for (name, p) in [
            ("p_5xx", self.p_5xx),
            ("p_reset", self.p_reset),
            ("p_429", self.p_429),
        ] {
            if !(0.0..=1.0).contains(&p) {
                return Err(format!("{name} must be between 0 and 1"));
            }
        }
        if !(500..600).contains(&self.status_5xx) {
            return Err("status_5xx must be a 5xx status".to_owned());
        }
        Ok(())
    }

    fn is_active(&self) -> bool {
        self.p_5xx > 0.0
            || self.p_reset > 0.0
            || self.p_429 > 0.0
            || self.latency_ms > 0
            || self.latency_jitter_ms > 0
            || self.token_delay_ms > 0
    }

    fn targets(&self, route: Route) -> bool {
        self.routes.is_empty() || self.routes.contains(&route)
    }
}

/// What a deterministic fault does to a call. JSON: `{"status":503}`, `"reset"`,
/// `{"delay_ms":2000}`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FailWith {
    /// Answer this status (with the route's error body; 429 gets `Retry-After`).
    Status(u16),
    /// Drop the connection without an answer: the client sees a closed connection.
    /// Needs a served mock ([`start`](crate::start)); in-process ([`router`](crate::router))
    /// there is no connection, so the call answers 502 with `x-vgs-mock-fault: reset`.
    Reset,
    /// Wait this long, then handle the call normally.
    #[serde(rename = "delay_ms", with = "millis")]
    Delay(Duration),
}

mod millis {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(value: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(u64::try_from(value.as_millis()).unwrap_or(u64::MAX))
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        u64::deserialize(d).map(Duration::from_millis)
    }
}

/// The body of `POST /_mock/fail-next`: `{"route":"token","count":2,"with":{"status":503}}`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FailNext {
    /// The route whose next calls fail.
    pub route: Route,
    /// How many calls.
    pub count: u32,
    /// How they fail.
    pub with: FailWith,
}

/// What the middleware does to one call.
enum Action {
    Proceed,
    Status(u16),
    Reset,
}

struct Decision {
    delay: Duration,
    action: Action,
    injected: bool,
}

/// The live fault settings.
pub(crate) struct Faults {
    /// Fast path: whether random settings are active, whether anything is queued.
    config_active: AtomicBool,
    queued: AtomicBool,
    config: Mutex<FaultConfig>,
    rng: Mutex<StdRng>,
    queue: Mutex<HashMap<Route, VecDeque<(u32, FailWith)>>>,
}

impl Faults {
    pub(crate) fn new(config: FaultConfig) -> Self {
        let faults = Self {
            config_active: AtomicBool::new(false),
            queued: AtomicBool::new(false),
            config: Mutex::new(FaultConfig::default()),
            rng: Mutex::new(StdRng::from_os_rng()),
            queue: Mutex::new(HashMap::new()),
        };
        faults.set(config);
        faults
    }

    pub(crate) fn config(&self) -> FaultConfig {
        lock(&self.config).clone()
    }

    pub(crate) fn set(&self, config: FaultConfig) {
        if let Some(seed) = config.seed {
            *lock(&self.rng) = StdRng::seed_from_u64(seed);
        }
        let active = config.is_active();
        *lock(&self.config) = config;
        self.config_active.store(active, Ordering::Release);
    }

    pub(crate) fn fail_next(&self, route: Route, count: u32, with: FailWith) {
        if count == 0 {
            return;
        }
        let mut queue = lock(&self.queue);
        queue.entry(route).or_default().push_back((count, with));
        self.queued.store(true, Ordering::Release);
    }

    /// Forgets queued deterministic faults (random settings stay).
    pub(crate) fn clear_queue(&self) {
        let mut queue = lock(&self.queue);
        queue.clear();
        self.queued.store(false, Ordering::Release);
    }

    fn decide(&self, route: Route) -> Decision {
        let proceed = Decision {
            delay: Duration::ZERO,
            action: Action::Proceed,
            injected: false,
        };
        let queued = self.queued.load(Ordering::Acquire);
        if !queued && !self.config_active.load(Ordering::Acquire) {
            return proceed;
        }
        if let Some(with) = queued.then(|| self.pop(route)).flatten() {
            let (delay, action) = match with {
                FailWith::Status(status) => (Duration::ZERO, Action::Status(status)),
                FailWith::Reset => (Duration::ZERO, Action::Reset),
                FailWith::Delay(delay) => (delay, Action::Proceed),
            };
            return Decision {
                delay,
                action,
                injected: true,
            };
        }
        let config = lock(&self.config).clone();
        let mut delay = Duration::ZERO;
        if route == Route::TokenEndpoint {
            delay += Duration::from_millis(config.token_delay_ms);
        }
        if !config.targets(route) {
            return Decision { delay, ..proceed };
        }
        // Always draw the same numbers per call so a seed replays the same run.
        let (jitter, reset, error, throttle) = {
            let mut rng = lock(&self.rng);
            let jitter = rng.random_range(0..=config.latency_jitter_ms);
            (
                jitter,
                rng.random::<f64>(),
                rng.random::<f64>(),
                rng.random::<f64>(),
            )
        };
        delay += Duration::from_millis(config.latency_ms + jitter);
        let action = if reset < config.p_reset {
            Action::Reset
        } else if error < config.p_5xx {
            Action::Status(config.status_5xx)
        } else if throttle < config.p_429 {
            Action::Status(429)
        } else {
            Action::Proceed
        };
        let injected = !matches!(action, Action::Proceed);
        Decision {
            delay,
            action,
            injected,
        }
    }

    fn pop(&self, route: Route) -> Option<FailWith> {
        let mut queue = lock(&self.queue);
        let entries = queue.get_mut(&route)?;
        let (left, with) = entries.front_mut()?;
        let with = *with;
        *left -= 1;
        if *left == 0 {
            entries.pop_front();
            if entries.is_empty() {
                queue.remove(&route);
            }
        }
        if queue.is_empty() {
            self.queued.store(false, Ordering::Release);
        }
        Some(with)
    }

    fn retry_after_secs(&self) -> u32 {
        lock(&self.config).retry_after_secs
    }
}

/// Middleware on the token and API routes: applies faults, then counts the outcome.
pub(crate) async fn observe(State(state): State<MockState>, req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .and_then(|path| Route::from_request(req.method(), path.as_str()));
    let Some(route) = route else {
        return next.run(req).await;
    };
    if route != Route::TokenEndpoint {
        if let Some(rendezvous) = state.join_rendezvous() {
            rendezvous.wait().await;
        }
    }
    let decision = state.faults_engine().decide(route);
    if decision.injected {
        state.counters().fault_injected();
    }
    if !decision.delay.is_zero() {
        tokio::time::sleep(decision.delay).await;
    }
    let mut response = match decision.action {
        Action::Proceed => {
            let mut response = next.run(req).await;
            if decision.injected {
                response
                    .headers_mut()
                    .insert(FAULT_HEADER, HeaderValue::from_static("delay"));
            }
            response
        }
        Action::Status(status) => fault_response(&state, route, &req, status),
        Action::Reset => {
            state.counters().record(route, Outcome::Reset);
            tracing::debug!(route = route.as_str(), "fault: dropping the connection");
            if let Some(killer) = req.extensions().get::<ConnectionKiller>() {
                killer.kill();
                // The connection task drops this future together with the connection.
                return std::future::pending::<Response>().await;
            }
            let mut response = fault_response(&state, route, &req, 502);
            response
                .headers_mut()
                .insert(FAULT_HEADER, HeaderValue::from_static("reset"));
            return response;
        }
    };
    let status = response.status().as_u16();
    state.counters().record(route, Outcome::Status(status));
    tracing::trace!(route = route.as_str(), status, "handled");
    if decision.injected && !response.headers().contains_key(FAULT_HEADER) {
        response
            .headers_mut()
            .insert(FAULT_HEADER, HeaderValue::from_static("status"));
    }
    response
}

/// Faults for one proxied request: the answer to give instead (an injected status),
/// or `None` to proceed. A reset drops the proxy connection and never returns.
pub(crate) async fn before_proxy(
    state: &MockState,
    route: Route,
    killer: &ConnectionKiller,
) -> Option<Response> {
    let decision = state.faults_engine().decide(route);
    if decision.injected {
        state.counters().fault_injected();
    }
    if !decision.delay.is_zero() {
        tokio::time::sleep(decision.delay).await;
    }
    match decision.action {
        Action::Proceed => None,
        Action::Status(status) => {
            let code = StatusCode::from_u16(status).unwrap_or(StatusCode::SERVICE_UNAVAILABLE);
            let mut response = crate::proxy::proxy_error(code, "injected fault");
            if code == StatusCode::TOO_MANY_REQUESTS {
                let retry_after = state.faults_engine().retry_after_secs();
                response
                    .headers_mut()
                    .insert("retry-after", HeaderValue::from(retry_after));
            }
            response
                .headers_mut()
                .insert(FAULT_HEADER, HeaderValue::from_static("status"));
            state.counters().record(route, Outcome::Status(status));
            Some(response)
        }
        Action::Reset => {
            state.counters().record(route, Outcome::Reset);
            tracing::debug!(
                route = route.as_str(),
                "fault: dropping the proxy connection"
            );
            killer.kill();
            std::future::pending::<Option<Response>>().await
        }
    }
}

/// The answer of an injected status, shaped like the route's real errors.
fn fault_response(state: &MockState, route: Route, req: &Request, status: u16) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::SERVICE_UNAVAILABLE);
    let retry_after = state.faults_engine().retry_after_secs();
    let mut response = if route == Route::TokenEndpoint {
        token::fault_response(status)
    } else if route.is_cmp() {
        crate::cmp::fault_response(status)
    } else {
        let (target, href) = api::describe(state, req.headers(), req.uri().path());
        let detail = "injected fault".to_owned();
        api::error_response(target, &href, &ApiError { status, detail })
    };
    if status == StatusCode::TOO_MANY_REQUESTS {
        let headers = response.headers_mut();
        headers.insert("retry-after", HeaderValue::from(retry_after));
        if route != Route::TokenEndpoint {
            headers.insert(api::RATE_LIMIT_HEADER, HeaderValue::from(0));
        }
    }
    response
        .headers_mut()
        .insert(FAULT_HEADER, HeaderValue::from_static("status"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outcomes(faults: &Faults, n: usize) -> Vec<&'static str> {
        (0..n)
            .map(|_| match faults.decide(Route::CreateAliases).action {
                Action::Proceed => "ok",
                Action::Status(429) => "429",
                Action::Status(_) => "5xx",
                Action::Reset => "reset",
            })
            .collect()
    }

    #[test]
    fn a_seed_replays_the_same_faults() {
        let config = FaultConfig {
            p_5xx: 0.3,
            p_reset: 0.2,
            p_429: 0.3,
            seed: Some(42),
            ..FaultConfig::default()
        };
        let first = outcomes(&Faults::new(config.clone()), 50);
        let second = outcomes(&Faults::new(config), 50);
        assert_eq!(first, second);
        for kind in ["ok", "429", "5xx", "reset"] {
            assert!(first.contains(&kind), "{kind} never drawn in {first:?}");
        }
    }

    #[test]
    fn queued_faults_run_out_then_calls_proceed() {
        let faults = Faults::new(FaultConfig::none());
        faults.fail_next(Route::CreateAliases, 2, FailWith::Status(500));
        faults.fail_next(Route::CreateAliases, 1, FailWith::Reset);
        assert_eq!(outcomes(&faults, 4), ["5xx", "5xx", "reset", "ok"]);
        assert!(!faults.queued.load(Ordering::Acquire));
        assert!(matches!(
            faults.decide(Route::TokenEndpoint).action,
            Action::Proceed
        ));
    }

    #[test]
    fn faults_only_hit_the_targeted_routes() {
        let faults = Faults::new(FaultConfig {
            p_5xx: 1.0,
            routes: vec![Route::TokenEndpoint],
            ..FaultConfig::default()
        });
        assert!(matches!(
            faults.decide(Route::TokenEndpoint).action,
            Action::Status(503)
        ));
        assert!(matches!(
            faults.decide(Route::RevealAlias).action,
            Action::Proceed
        ));
    }

    #[test]
    fn fail_with_json_shapes() {
        let json = serde_json::to_string(&[
            FailWith::Status(503),
            FailWith::Reset,
            FailWith::Delay(Duration::from_millis(1500)),
        ])
        .expect("serialises");
        assert_eq!(json, r#"[{"status":503},"reset",{"delay_ms":1500}]"#);
        let next: FailNext =
            serde_json::from_str(r#"{"route":"token","count":2,"with":{"status":503}}"#)
                .expect("parses");
        assert_eq!(next.route, Route::TokenEndpoint);
        assert_eq!(next.with, FailWith::Status(503));
    }

    #[test]
    fn out_of_range_settings_are_refused() {
        let bad = FaultConfig {
            p_429: 1.5,
            ..FaultConfig::default()
        };
        assert!(bad.validate().is_err());
        let bad = FaultConfig {
            status_5xx: 404,
            ..FaultConfig::default()
        };
        assert!(bad.validate().is_err());
        assert!(FaultConfig::none().validate().is_ok());
    }
}
