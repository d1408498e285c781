//! vault-vgs integration tests, one binary: the wire format (wiremock), the flows and
//! failure modes against an in-process vgs-mock, batches and concurrency.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod batch;
mod concurrency;
mod failure_modes;
mod flows;
mod logs;
mod support;
mod token_outage;
mod transport;
mod wire;
