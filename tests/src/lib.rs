//! Shared helpers for vaultlink's end-to-end suite; the tests themselves live in
//! `e2e/` and compile as one binary.
