//! Integration tests of vgs-mock as one binary: the token endpoint, API v1 and v2,
//! behaviour, faults, stats, the served mock, the contract with the mock's own API
//! description (`openapi.yaml`) and its curl examples, that description against VGS's
//! official spec, and the CMP routes.

#![allow(clippy::unwrap_used)]

mod behaviour;
mod cmp;
mod contract;
mod curl_examples;
mod faults;
mod formats;
mod official;
mod proxy;
mod server;
mod spec;
mod stats;
mod support;
mod token;
mod v1;
mod v2;
