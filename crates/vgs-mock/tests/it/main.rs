//! Integration tests of vgs-mock as one binary: the token endpoint, API v1 and v2,
//! behaviour, faults, stats, the served mock, the spec contract and its curl examples,
//! and the CMP routes.

#![allow(clippy::unwrap_used)]

mod behaviour;
mod cmp;
mod contract;
mod curl_examples;
mod faults;
mod formats;
mod server;
mod spec;
mod stats;
mod support;
mod token;
mod v1;
mod v2;
