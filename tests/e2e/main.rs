//! vaultlink's end-to-end suite: the orchestrator's view of the whole path, compiled
//! as one test binary with one module per concern.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod cmp_swap;
mod orchestrator_contract;
mod pay_through_proxy;
mod proxy_logs;
mod soak;
mod vgs_orchestrator;
