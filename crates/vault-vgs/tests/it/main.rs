//! vault-vgs integration tests, one binary: the wire format (wiremock), the flows and
//! failure modes against an in-process vgs-mock, batches and concurrency.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;
mod wire;
