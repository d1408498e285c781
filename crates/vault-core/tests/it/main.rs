//! vault-core integration tests, one binary: property tests of every parser and
//! validator (never a panic, always a typed error, never card data in a message).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod properties;
