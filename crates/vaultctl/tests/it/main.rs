//! vaultctl's process tests: the real binary, run as a user or a script would, against
//! `vaultctl mock serve` in a separate process on loopback. One test binary, one
//! module per command.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod bench;
mod cmp;
mod demo;
mod forward;
mod import;
mod import_faults;
mod leaks;
mod migrate;
mod mock_serve;
mod ops;
mod replicas;
mod shared;
mod support;
