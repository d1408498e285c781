//! vault-vgs integration tests, one binary: the wire format (wiremock), the flows and
//! failure modes against an in-process vgs-mock, batches and concurrency, and the CMP
//! connector (its wire format against wiremock, its flows against the mock).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod adoption;
mod batch;
mod cmp;
mod cmp_wire;
mod concurrency;
mod failure_modes;
mod flows;
mod forward;
mod logs;
mod round_trips;
mod support;
mod token_outage;
mod transport;
mod wire;
