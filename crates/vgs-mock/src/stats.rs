//! Counters behind `GET /_mock/stats` and `MockState::stats()`: token requests,
//! API requests per route and status, expired-token rejections, per-vault counts.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use serde::{Deserialize, Serialize};

use crate::lock;
use crate::route::Route;

/// The status key under which connections dropped by a reset fault are counted.
pub const RESET_KEY: &str = "reset";

/// A snapshot of the mock's counters; the JSON of `GET /_mock/stats`.
///
/// JSON field names are stable: `token_requests`, `token_successes`,
/// `token_failures`, `expired_token_rejections`, `api_requests`
/// (`{route: {status: count}}`, routes named as [`Route::as_str`], statuses as
/// decimal strings or `"reset"`), `faults_injected`, `aliases_stored`,
/// `records_stored`, `cards_stored`, `proxied_requests`, `values_revealed`,
/// `values_redacted`, `vaults` (`{vault_id: VaultStats}`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Stats {
    /// Requests to the token endpoint (all outcomes, faults included).
    pub token_requests: u64,
    /// Token requests answered 2xx.
    pub token_successes: u64,
    /// Token requests answered otherwise, or dropped by a reset fault.
    pub token_failures: u64,
    /// API v2 calls rejected (401) because their Bearer token had expired.
    pub expired_token_rejections: u64,
    /// Vault API requests (v1 and v2) by route, then by status (`"201"`, `"reset"`).
    pub api_requests: BTreeMap<Route, BTreeMap<String, u64>>,
    /// Responses (or dropped connections) that came from fault injection.
    pub faults_injected: u64,
    /// Aliases stored over all vaults (expired VOLATILE ones excluded).
    pub aliases_stored: u64,
    /// Distinct records stored over all vaults (one record may have several aliases).
    pub records_stored: u64,
    /// CMP card objects stored over all tenants.
    #[serde(default)]
    pub cards_stored: u64,
    /// Requests the proxies forwarded to an upstream (outbound and inbound).
    #[serde(default)]
    pub proxied_requests: u64,
    /// Aliases the proxies' REVEAL filters replaced with stored values.
    #[serde(default)]
    pub values_revealed: u64,
    /// Values the proxies' REDACT filters stored and replaced with aliases.
    #[serde(default)]
    pub values_redacted: u64,
    /// Per-vault counters, keyed by vault id.
    pub vaults: BTreeMap<String, VaultStats>,
}

impl Stats {
    /// API requests of `route` answered with `status`.
    pub fn api_count(&self, route: Route, status: u16) -> u64 {
        self.api_requests
            .get(&route)
            .and_then(|by_status| by_status.get(&status.to_string()))
            .copied()
            .unwrap_or(0)
    }

    /// API requests of `route` whose connection a reset fault dropped.
    pub fn api_resets(&self, route: Route) -> u64 {
        self.api_requests
            .get(&route)
            .and_then(|by_status| by_status.get(RESET_KEY))
            .copied()
            .unwrap_or(0)
    }

    /// API requests of `route`, all outcomes.
    pub fn api_total(&self, route: Route) -> u64 {
        self.api_requests
            .get(&route)
            .map_or(0, |by_status| by_status.values().sum())
    }

    /// The counters of `vault` (all zero for a vault never seen).
    pub fn vault(&self, vault: &str) -> VaultStats {
        self.vaults.get(vault).cloned().unwrap_or_default()
    }
}

/// Per-vault counters. JSON names: `create_requests`, `api_requests`,
/// `rate_limited`, `records_stored`, `aliases_stored`, `cards_stored`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct VaultStats {
    /// `POST /aliases` requests that were authenticated for this vault and admitted
    /// by its rate limit (whatever their outcome): the number of insert round trips.
    pub create_requests: u64,
    /// API requests authenticated for this vault and admitted by its rate limit.
    pub api_requests: u64,
    /// Requests refused with 429 by this vault's rate limit.
    pub rate_limited: u64,
    /// Distinct records stored now.
    pub records_stored: u64,
    /// Aliases stored now.
    pub aliases_stored: u64,
    /// CMP card objects stored now (the vault as a CMP tenant).
    #[serde(default)]
    pub cards_stored: u64,
}

/// The live counters.
#[derive(Default)]
pub(crate) struct Counters {
    token_requests: AtomicU64,
    token_successes: AtomicU64,
    token_failures: AtomicU64,
    expired_token_rejections: AtomicU64,
    faults_injected: AtomicU64,
    proxied: AtomicU64,
    revealed: AtomicU64,
    redacted: AtomicU64,
    api: Mutex<HashMap<(Route, Outcome), u64>>,
}

/// How a request ended, for the per-status counters.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum Outcome {
    Status(u16),
    Reset,
}

impl Counters {
    pub(crate) fn record(&self, route: Route, outcome: Outcome) {
        if route == Route::TokenEndpoint {
            self.token_requests.fetch_add(1, Ordering::Relaxed);
            let success =
                matches!(outcome, Outcome::Status(status) if (200..300).contains(&status));
            let counter = if success {
                &self.token_successes
            } else {
                &self.token_failures
            };
            counter.fetch_add(1, Ordering::Relaxed);
        } else {
            *lock(&self.api).entry((route, outcome)).or_default() += 1;
        }
    }

    pub(crate) fn expired_token_rejected(&self) {
        self.expired_token_rejections
            .fetch_add(1, Ordering::Relaxed);
    }

    /// One request a proxy sent upstream (or tried to), with what its request
    /// filters did.
    pub(crate) fn proxied(&self, revealed: u64, redacted: u64) {
        self.proxied.fetch_add(1, Ordering::Relaxed);
        self.filtered(revealed, redacted);
    }

    /// Values a proxy's filters revealed and redacted.
    pub(crate) fn filtered(&self, revealed: u64, redacted: u64) {
        self.revealed.fetch_add(revealed, Ordering::Relaxed);
        self.redacted.fetch_add(redacted, Ordering::Relaxed);
    }

    pub(crate) fn fault_injected(&self) {
        self.faults_injected.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn clear(&self) {
        for counter in [
            &self.token_requests,
            &self.token_successes,
            &self.token_failures,
            &self.expired_token_rejections,
            &self.faults_injected,
            &self.proxied,
            &self.revealed,
            &self.redacted,
        ] {
            counter.store(0, Ordering::Relaxed);
        }
        lock(&self.api).clear();
    }

    /// The counters part of a snapshot (store counts are filled in by the state).
    pub(crate) fn snapshot(&self) -> Stats {
        let mut api_requests: BTreeMap<Route, BTreeMap<String, u64>> = BTreeMap::new();
        for (&(route, outcome), &count) in lock(&self.api).iter() {
            let key = match outcome {
                Outcome::Status(status) => status.to_string(),
                Outcome::Reset => RESET_KEY.to_owned(),
            };
            *api_requests
                .entry(route)
                .or_default()
                .entry(key)
                .or_default() += count;
        }
        Stats {
            token_requests: self.token_requests.load(Ordering::Relaxed),
            token_successes: self.token_successes.load(Ordering::Relaxed),
            token_failures: self.token_failures.load(Ordering::Relaxed),
            expired_token_rejections: self.expired_token_rejections.load(Ordering::Relaxed),
            api_requests,
            faults_injected: self.faults_injected.load(Ordering::Relaxed),
            proxied_requests: self.proxied.load(Ordering::Relaxed),
            values_revealed: self.revealed.load(Ordering::Relaxed),
            values_redacted: self.redacted.load(Ordering::Relaxed),
            ..Stats::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_field_names_are_the_documented_ones() {
        let counters = Counters::default();
        counters.record(Route::TokenEndpoint, Outcome::Status(200));
        counters.record(Route::TokenEndpoint, Outcome::Reset);
        counters.record(Route::CreateAliases, Outcome::Status(201));
        counters.record(Route::CreateAliases, Outcome::Reset);
        let mut stats = counters.snapshot();
        stats
            .vaults
            .insert("tnt1".to_owned(), VaultStats::default());
        let json = serde_json::to_value(&stats).expect("serialises");
        let keys: Vec<&str> = json
            .as_object()
            .expect("object")
            .keys()
            .map(String::as_str)
            .collect();
        for key in [
            "token_requests",
            "token_successes",
            "token_failures",
            "expired_token_rejections",
            "api_requests",
            "faults_injected",
            "aliases_stored",
            "records_stored",
            "vaults",
        ] {
            assert!(keys.contains(&key), "missing {key} in {keys:?}");
        }
        assert_eq!(json["api_requests"]["createAliases"]["201"], 1);
        assert_eq!(json["api_requests"]["createAliases"]["reset"], 1);
        assert_eq!(json["token_successes"], 1);
        assert_eq!(json["token_failures"], 1);
        for key in [
            "create_requests",
            "api_requests",
            "rate_limited",
            "records_stored",
            "aliases_stored",
        ] {
            assert!(json["vaults"]["tnt1"].get(key).is_some(), "missing {key}");
        }
        let back: Stats = serde_json::from_value(json).expect("parses back");
        assert_eq!(back, stats);
        assert_eq!(back.api_count(Route::CreateAliases, 201), 1);
        assert_eq!(back.api_resets(Route::CreateAliases), 1);
        assert_eq!(back.api_total(Route::CreateAliases), 2);
    }
}
