//! The one place that executes HTTP: authorization, per-attempt and total timeouts,
//! retries with backoff, `Retry-After`, 401 -> invalidate and retry once, a capped
//! body read, and the mapping of every failure to a typed `VaultError`.

use std::sync::atomic::{AtomicI64, Ordering};

use bytes::Bytes;
use error_stack::Report;
use reqwest::header::{
    AUTHORIZATION, CONTENT_TYPE, HeaderMap, HeaderName, HeaderValue, LOCATION, RETRY_AFTER,
};
use reqwest::{Method, StatusCode};
use tokio::time::Instant;
use tracing::{Span, debug, trace};
use url::Url;
use vault_core::{Attempt, Detail, ReportExt, VaultError, VaultResult};

use crate::auth::{Authorizer, Credential};
use crate::config::Timeouts;
use crate::dialect::Dialect;
use crate::retry::{Failure, Resend, RetryPolicy};
use crate::transformers::{Operation, parse_retry_after};

/// How long a vault that refused a freshly fetched token keeps the connector from
/// invalidating tokens on its 401s.
const FRESH_TOKEN_REFUSAL_MEMORY: std::time::Duration = std::time::Duration::from_secs(30);

/// How close to the call's deadline a timeout counts as the deadline's (timers fire
/// a little late or early, never exactly on it).
const DEADLINE_SLACK: std::time::Duration = std::time::Duration::from_millis(5);

/// VGS's rate-limit header, read after every answer.
const X_RATELIMIT_REMAINING: HeaderName = HeaderName::from_static("x-ratelimit-remaining");
/// Where VGS (and the mock) put the trace id of a failed request.
const VGS_REQUEST_ID: HeaderName = HeaderName::from_static("vgs-request-id");
const X_TRACE_ID: HeaderName = HeaderName::from_static("x-trace-id");

/// One HTTP exchange to make (and perhaps repeat).
pub(crate) struct Call<'a> {
    pub(crate) method: Method,
    pub(crate) url: Url,
    pub(crate) body: Option<Bytes>,
    /// Whether it may be sent again after it may have reached the vault.
    pub(crate) resend: Resend,
    /// What a 404 means.
    pub(crate) operation: Operation<'a>,
}

/// A successful answer's body (read up to the cap).
pub(crate) struct Answer {
    pub(crate) body: Bytes,
    /// The status (2xx, or a non-2xx the dialect takes as an answer, e.g. CMP's 303).
    pub(crate) status: u16,
    /// The `Location` header, if any (CMP's 303 names the existing card there).
    pub(crate) location: Option<String>,
}

/// Executes calls for one connector.
pub(crate) struct Executor {
    pub(crate) client: reqwest::Client,
    pub(crate) authorizer: Authorizer,
    pub(crate) timeouts: Timeouts,
    pub(crate) retry: RetryPolicy,
    pub(crate) max_response_bytes: usize,
    /// The last `x-ratelimit-remaining` seen (-1: none yet).
    pub(crate) rate_limit_remaining: AtomicI64,
    /// Media type, answers and error mapping of the API spoken.
    pub(crate) dialect: Dialect,
    /// When the vault last refused a token fetched for the retry after a 401.
    pub(crate) fresh_token_refused: std::sync::Mutex<Option<Instant>>,
}

enum AttemptError {
    /// The vault said 401 to this credential.
    Unauthorized(Report<VaultError>, Credential),
    /// Anything else, with how retryable it is.
    Failed(Report<VaultError>, Failure),
}

impl Executor {
    /// Makes the call, retrying per the policy within the total timeout. The current
    /// span gets `attempt`, `status` and `trace_id` recorded.
    pub(crate) async fn execute(&self, call: Call<'_>) -> VaultResult<Answer> {
        let deadline = Instant::now() + self.timeouts.total;
        let mut attempt = 1u32;
        let mut reauthorized = false;
        loop {
            let (report, failure) = match self.attempt(&call, attempt, deadline).await {
                Ok(answer) => return Ok(answer),
                Err(AttemptError::Unauthorized(report, credential)) => {
                    if reauthorized && self.authorizer.can_refresh() {
                        // A token fetched just now was refused too: the token is not
                        // the problem. Remember it, so that the next calls do not throw
                        // away a token other vaults of this service account accept.
                        *self
                            .fresh_token_refused
                            .lock()
                            .unwrap_or_else(|p| p.into_inner()) = Some(Instant::now());
                        return Err(report
                            .attach(Detail::new(
                                "the vault refused a freshly fetched token too: the service account is likely not assigned to this vault",
                            ))
                            .attach(Attempt(attempt)));
                    }
                    if reauthorized || !self.authorizer.can_refresh() {
                        return Err(report.attach(Attempt(attempt)));
                    }
                    let refused_lately = self
                        .fresh_token_refused
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .is_some_and(|at| at.elapsed() < FRESH_TOKEN_REFUSAL_MEMORY);
                    if refused_lately {
                        return Err(report
                            .attach(Detail::new(
                                "the vault refused a freshly fetched token moments ago; the token was kept (it is not the problem)",
                            ))
                            .attach(Attempt(attempt)));
                    }
                    // The token was rejected: drop exactly that one and try once more
                    // with a fresh token. This retry does not count against the policy.
                    debug!(
                        attempt,
                        "vault answered 401; invalidating the token and retrying once"
                    );
                    self.authorizer.invalidate(credential).await;
                    reauthorized = true;
                    attempt += 1;
                    continue;
                }
                Err(AttemptError::Failed(report, failure)) => (report, failure),
            };
            if Instant::now() >= deadline {
                return Err(outcome_unknown(report, failure, call.resend).attach(Attempt(attempt)));
            }
            let retries_used = attempt - u32::from(reauthorized);
            if retries_used >= self.retry.max_attempts
                || !failure.retryable(call.resend, &self.retry)
            {
                return Err(outcome_unknown(report, failure, call.resend).attach(Attempt(attempt)));
            }
            let mut wait = self.retry.backoff(retries_used + 1, rand::random::<f64>());
            if let Some(after) = report.retry_after() {
                wait = wait.max(after);
            }
            if Instant::now() + wait >= deadline {
                return Err(outcome_unknown(report, failure, call.resend)
                    .attach(Detail::new(format!(
                        "gave up: the next retry (in {} ms) would pass the total timeout",
                        wait.as_millis()
                    )))
                    .attach(Attempt(attempt)));
            }
            debug!(
                attempt,
                kind = report.kind().code(),
                wait_ms = wait.as_millis() as u64,
                "retrying vault call"
            );
            tokio::time::sleep(wait).await;
            attempt += 1;
        }
    }

    /// One attempt, finished by `deadline` (the call's total timeout).
    ///
    /// It arms at most one timer: reqwest's, for the exchange, set to the attempt
    /// timeout or the time left before `deadline`, whichever is shorter. The wait for
    /// a token is bounded by `deadline` too, but a cached token is ready at once, and
    /// `tokio::time::timeout` arms no timer for a future that is ready when first
    /// polled. (A second timer per call made the runtime wake its timer driver twice
    /// per request: measurable on the payment path, see docs/benchmarks.md.)
    async fn attempt(
        &self,
        call: &Call<'_>,
        attempt: u32,
        deadline: Instant,
    ) -> Result<Answer, AttemptError> {
        let span = Span::current();
        span.record("attempt", attempt);
        let credential = match tokio::time::timeout_at(deadline, self.authorizer.credential()).await
        {
            Ok(credential) => {
                credential.map_err(|report| AttemptError::Failed(report, Failure::Final))?
            }
            Err(_) => return Err(self.total_timeout("waiting for an access token", false)),
        };
        let remaining = deadline.saturating_duration_since(Instant::now());
        if remaining.is_zero() {
            return Err(self.total_timeout("before the request was sent", false));
        }
        let mut request = self
            .client
            .request(call.method.clone(), call.url.clone())
            .timeout(remaining.min(self.timeouts.per_attempt))
            .header(AUTHORIZATION, credential.header().clone());
        if let Some(body) = &call.body {
            request = request
                .header(
                    CONTENT_TYPE,
                    HeaderValue::from_static(self.dialect.content_type),
                )
                .body(body.clone());
        }
        // A timeout at the call's deadline is the total timeout (final); any other
        // (the attempt's, or the connect timeout) is an attempt that may be retried.
        let failed = |error: reqwest::Error| {
            if error.is_timeout() && Instant::now() + DEADLINE_SLACK >= deadline {
                self.total_timeout("waiting for the vault's answer", true)
            } else {
                transport_error(error)
            }
        };
        let response = request.send().await.map_err(failed)?;
        let status = response.status();
        span.record("status", status.as_u16());
        self.watch_rate_limit(response.headers());
        if (self.dialect.is_answer)(status.as_u16()) {
            let location = status
                .is_redirection()
                .then(|| response.headers().get(LOCATION))
                .flatten()
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned);
            let body = read_capped(response, self.max_response_bytes, failed).await?;
            trace!(
                status = status.as_u16(),
                bytes = body.len(),
                "vault answered"
            );
            return Ok(Answer {
                body,
                status: status.as_u16(),
                location,
            });
        }
        // Only a failure needs these headers.
        let retry_after = response
            .headers()
            .get(RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(parse_retry_after);
        let header_trace = response
            .headers()
            .get(VGS_REQUEST_ID)
            .or_else(|| response.headers().get(X_TRACE_ID))
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let body = read_capped(response, self.max_response_bytes, failed).await?;
        let report = (self.dialect.error)(
            status.as_u16(),
            retry_after,
            header_trace,
            &body,
            call.operation,
        );
        if let Some(trace_id) = report.trace_id() {
            span.record("trace_id", trace_id);
        }
        if status == StatusCode::UNAUTHORIZED {
            return Err(AttemptError::Unauthorized(report, credential));
        }
        let failure = Failure::of(report.kind());
        Err(AttemptError::Failed(report, failure))
    }

    /// The call ran out of its total time budget (`while` it was doing what). Once the
    /// request was `sent` it may have been processed: a create that the vault does not
    /// deduplicate then becomes `InsertOutcomeUnknown` (no time is left to retry anyway).
    fn total_timeout(&self, while_: &str, sent: bool) -> AttemptError {
        AttemptError::Failed(
            Report::new(VaultError::Timeout).attach(Detail::new(format!(
                "the call did not finish within its total timeout of {} ms ({while_})",
                self.timeouts.total.as_millis()
            ))),
            if sent {
                Failure::MaybeProcessed
            } else {
                Failure::Final
            },
        )
    }

    fn watch_rate_limit(&self, headers: &HeaderMap) {
        if let Some(remaining) = headers
            .get(X_RATELIMIT_REMAINING)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<i64>().ok())
        {
            self.rate_limit_remaining
                .store(remaining, Ordering::Relaxed);
            if remaining < 100 {
                debug!(remaining, "vault rate limit nearly used up");
            }
        }
    }
}

/// A create that may have reached a vault that does not deduplicate values, given up
/// on: whether it stored anything is unknown, and sending it again could store it
/// twice, so it becomes [`VaultError::InsertOutcomeUnknown`] (never retryable) with the
/// original failure kept beneath it.
fn outcome_unknown(
    report: Report<VaultError>,
    failure: Failure,
    resend: Resend,
) -> Report<VaultError> {
    if failure != Failure::MaybeProcessed || resend != Resend::Never {
        return report;
    }
    let cause = report.kind();
    report
        .change_context(VaultError::InsertOutcomeUnknown)
        .attach(Detail::new(format!(
            "the insert failed ({cause}) after it may have reached the vault, and it was not sent again: the vault's fingerprinting is off, so a second request could store the card twice. The card may be stored without its aliases having reached you"
        )))
}

fn transport_error(error: reqwest::Error) -> AttemptError {
    if error.is_timeout() {
        return AttemptError::Failed(
            Report::new(VaultError::Timeout).attach(Detail::new(
                "the vault did not answer within the attempt timeout",
            )),
            Failure::MaybeProcessed,
        );
    }
    // A connect error means the request never left this process.
    let (failure, what) = if error.is_connect() {
        (Failure::NotSent, "could not connect to the vault")
    } else {
        (
            Failure::MaybeProcessed,
            "the connection to the vault failed mid-request",
        )
    };
    // reqwest's message names the URL and the OS error, never headers or bodies.
    let detail = format!("{what}: {}", describe(error));
    AttemptError::Failed(
        Report::new(VaultError::Transport).attach(Detail::new(detail)),
        failure,
    )
}

fn describe(error: reqwest::Error) -> String {
    let error = error.without_url();
    let mut text = error.to_string();
    let mut source = std::error::Error::source(&error);
    while let Some(inner) = source {
        text.push_str(": ");
        text.push_str(&inner.to_string());
        source = inner.source();
    }
    text
}

async fn read_capped(
    mut response: reqwest::Response,
    cap: usize,
    failed: impl Fn(reqwest::Error) -> AttemptError,
) -> Result<Bytes, AttemptError> {
    if response
        .content_length()
        .is_some_and(|len| len > cap as u64)
    {
        return Err(too_large(cap));
    }
    // A small answer usually arrives as one chunk: keep it as it is, without a copy.
    let first = match response.chunk().await {
        Ok(Some(chunk)) => chunk,
        Ok(None) => return Ok(Bytes::new()),
        Err(e) => return Err(failed(e)),
    };
    if first.len() > cap {
        return Err(too_large(cap));
    }
    let mut body = Vec::new();
    let mut next = match response.chunk().await {
        Ok(Some(second)) => second,
        Ok(None) => return Ok(first),
        Err(e) => return Err(failed(e)),
    };
    body.reserve(response.content_length().unwrap_or(0) as usize);
    body.extend_from_slice(&first);
    loop {
        // Refused before it is copied: the buffer never holds more than the cap.
        if body.len() + next.len() > cap {
            return Err(too_large(cap));
        }
        body.extend_from_slice(&next);
        next = match response.chunk().await {
            Ok(Some(chunk)) => chunk,
            Ok(None) => return Ok(Bytes::from(body)),
            Err(e) => return Err(failed(e)),
        };
    }
}

fn too_large(cap: usize) -> AttemptError {
    AttemptError::Failed(
        Report::new(VaultError::UnexpectedResponse).attach(Detail::new(format!(
            "the vault's response is larger than the {cap}-byte limit; it was not read"
        ))),
        Failure::Final,
    )
}
