//! `MockState`: the shared state behind the router (vaults with their stores and
//! rate-limit windows, tokens, counters, faults) and its Rust-side inspection API.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use crate::clock::MockClock;
use crate::cmp::CardStore;
use crate::config::{BasicCredentials, MockConfig};
use crate::faults::{FailWith, FaultConfig, Faults};
use crate::lock;
use crate::rendezvous::Rendezvous;
use crate::route::Route;
use crate::stats::{Counters, Stats, VaultStats};
use crate::store::{RecordView, VaultStore};
use crate::token::Tokens;

/// Length of a rate-limit window.
const RATE_WINDOW: Duration = Duration::from_secs(60);
/// Sentinel of `rate_limit` for "unlimited".
const UNLIMITED: u64 = u64::MAX;

/// The mock's state, shared by the router, the server and the tests (cheap to
/// clone: every clone sees the same vaults, tokens, counters and faults).
#[derive(Clone)]
pub struct MockState {
    inner: Arc<Inner>,
}

struct Inner {
    config: MockConfig,
    vaults: HashMap<String, Arc<VaultSlot>>,
    tokens: Tokens,
    counters: Counters,
    faults: Faults,
    /// The armed rendezvous of API calls, if any ([`MockState::rendezvous`]).
    rendezvous: Mutex<Option<Rendezvous>>,
    rate_limit: AtomicU64,
    /// Vault assignments changed at runtime ([`MockState::assign_client`]).
    assignments: Mutex<HashMap<String, Vec<String>>>,
}

impl MockState {
    /// State for `config`: empty vaults, no tokens, zero counters.
    pub fn new(config: MockConfig) -> Self {
        let vaults = config
            .vaults
            .iter()
            .map(|vault| {
                let slot = VaultSlot {
                    id: vault.id.clone(),
                    v1_credentials: vault.v1_credentials.clone(),
                    store: Mutex::new(VaultStore::new(vault.fingerprinting)),
                    reveal: vault.reveal,
                    routes: vault.routes.clone().map(Arc::new),
                    cards: Mutex::new(CardStore::default()),
                    duplicate_card_check: AtomicBool::new(vault.duplicate_card_check),
                    rate: Mutex::new(None),
                    create_requests: AtomicU64::new(0),
                    api_requests: AtomicU64::new(0),
                    rate_limited: AtomicU64::new(0),
                };
                (vault.id.clone(), Arc::new(slot))
            })
            .collect();
        let rate_limit = AtomicU64::new(config.rate_limit_per_minute.map_or(UNLIMITED, u64::from));
        Self {
            inner: Arc::new(Inner {
                faults: Faults::new(config.faults.clone()),
                rendezvous: Mutex::new(None),
                config,
                vaults,
                tokens: Tokens::default(),
                counters: Counters::default(),
                rate_limit,
                assignments: Mutex::new(HashMap::new()),
            }),
        }
    }

    /// The configuration the mock was built with (credentials it accepts included).
    pub fn config(&self) -> &MockConfig {
        &self.inner.config
    }

    /// The mock's clock (advance it when it is manual).
    pub fn clock(&self) -> &MockClock {
        &self.inner.config.clock
    }

    /// A snapshot of the counters and of what is stored now.
    pub fn stats(&self) -> Stats {
        let now = self.now();
        let mut stats = self.inner.counters.snapshot();
        for (id, vault) in &self.inner.vaults {
            let (records, aliases) = lock(&vault.store).counts(now);
            let (records, aliases) = (records as u64, aliases as u64);
            let cards = lock(&vault.cards).len() as u64;
            stats.records_stored += records;
            stats.aliases_stored += aliases;
            stats.cards_stored += cards;
            stats.vaults.insert(
                id.clone(),
                VaultStats {
                    create_requests: vault.create_requests.load(Ordering::Relaxed),
                    api_requests: vault.api_requests.load(Ordering::Relaxed),
                    rate_limited: vault.rate_limited.load(Ordering::Relaxed),
                    records_stored: records,
                    aliases_stored: aliases,
                    cards_stored: cards,
                },
            );
        }
        stats
    }

    /// Clears stored records, issued tokens, counters, rate-limit windows and queued
    /// deterministic faults. Configuration and random fault settings stay.
    pub fn reset(&self) {
        for vault in self.inner.vaults.values() {
            lock(&vault.store).clear();
            lock(&vault.cards).clear();
            *lock(&vault.rate) = None;
        }
        self.inner.tokens.clear();
        self.inner.faults.clear_queue();
        self.reset_stats();
    }

    /// Zeroes the counters only (stored records and tokens stay).
    pub fn reset_stats(&self) {
        self.inner.counters.clear();
        for vault in self.inner.vaults.values() {
            vault.create_requests.store(0, Ordering::Relaxed);
            vault.api_requests.store(0, Ordering::Relaxed);
            vault.rate_limited.store(0, Ordering::Relaxed);
        }
    }

    /// The record behind `alias` in `vault`, whatever its storage; `None` if the vault
    /// or alias is unknown, or the record expired.
    pub fn record(&self, vault: &str, alias: &str) -> Option<RecordView> {
        let slot = self.vault(vault)?;
        let now = self.now();
        lock(&slot.store).view(alias, now)
    }

    /// Removes `alias` from `vault` whatever its storage, as an operator would in
    /// VGS's dashboard (the record goes with its last alias); false if not found.
    pub fn delete_alias(&self, vault: &str, alias: &str) -> bool {
        let Some(slot) = self.vault(vault) else {
            return false;
        };
        let now = self.now();
        let mut store = lock(&slot.store);
        store.delete(alias, crate::Storage::Persistent, now)
            || store.delete(alias, crate::Storage::Volatile, now)
    }

    /// Stores one value in `vault` as `POST /aliases` would (fingerprinting, format
    /// checks and all), without a request: how tests lay out records written by other
    /// clients. The alias, or why it was refused; `None` for an unknown vault.
    pub fn store_value(
        &self,
        vault: &str,
        value: &str,
        classifiers: &[&str],
        format: crate::AliasFormat,
        storage: crate::Storage,
    ) -> Option<Result<String, String>> {
        let slot = self.vault(vault)?;
        let now = self.now();
        let item = crate::store::CreateItem::New {
            value: value.to_owned(),
            classifiers: classifiers.iter().map(|c| (*c).to_owned()).collect(),
            format,
            storage,
        };
        let created = lock(&slot.store).create(vec![item], now);
        Some(match created {
            Ok(mut records) => records
                .pop()
                .and_then(|record| record.aliases.into_iter().next())
                .map(|alias| alias.alias)
                .ok_or_else(|| "the store returned no alias".to_owned()),
            Err(e) => Err(format!("{e:?}")),
        })
    }

    /// Distinct records stored in `vault` now; `None` for an unknown vault.
    pub fn record_count(&self, vault: &str) -> Option<usize> {
        let slot = self.vault(vault)?;
        let now = self.now();
        Some(lock(&slot.store).counts(now).0)
    }

    /// Turns CMP's duplicate-card check of tenant `vault` on or off; false for an
    /// unknown vault.
    pub fn set_duplicate_card_check(&self, vault: &str, on: bool) -> bool {
        match self.vault(vault) {
            Some(slot) => {
                slot.duplicate_card_check.store(on, Ordering::Relaxed);
                true
            }
            None => false,
        }
    }

    /// CMP cards stored in tenant `vault` now; `None` for an unknown vault.
    pub fn card_count(&self, vault: &str) -> Option<usize> {
        Some(lock(&self.vault(vault)?.cards).len())
    }

    /// The random fault settings in force.
    pub fn faults(&self) -> FaultConfig {
        self.inner.faults.config()
    }

    /// Replaces the random fault settings (probabilities are clamped to 0..=1).
    pub fn set_faults(&self, mut faults: FaultConfig) {
        faults.p_5xx = faults.p_5xx.clamp(0.0, 1.0);
        faults.p_reset = faults.p_reset.clamp(0.0, 1.0);
        faults.p_429 = faults.p_429.clamp(0.0, 1.0);
        self.inner.faults.set(faults);
    }

    /// Makes the next `count` calls of `route` fail `with` (queued after earlier ones).
    pub fn fail_next(&self, route: Route, count: u32, with: FailWith) {
        self.inner.faults.fail_next(route, count, with);
    }

    /// Arms a rendezvous: the next `count` vault API calls (alias API and CMP; not
    /// the token endpoint, not the proxies) each wait until all `count` have arrived,
    /// at most `wait`. Proves that a client sends calls concurrently, without timing.
    pub fn rendezvous(&self, count: usize, wait: Duration) -> Rendezvous {
        let rendezvous = Rendezvous::new(count, wait);
        *lock(&self.inner.rendezvous) = Some(rendezvous.clone());
        rendezvous
    }

    /// The armed rendezvous this call takes a place in, if any.
    pub(crate) fn join_rendezvous(&self) -> Option<Rendezvous> {
        let mut armed = lock(&self.inner.rendezvous);
        let rendezvous = armed.clone()?;
        if rendezvous.join() {
            Some(rendezvous)
        } else {
            *armed = None;
            None
        }
    }

    /// Changes the per-vault rate limit; `None` = unlimited.
    pub fn set_rate_limit_per_minute(&self, limit: Option<u32>) {
        let value = limit.map_or(UNLIMITED, u64::from);
        self.inner.rate_limit.store(value, Ordering::Relaxed);
    }

    /// The per-vault rate limit in force; `None` = unlimited.
    pub fn rate_limit_per_minute(&self) -> Option<u32> {
        u32::try_from(self.inner.rate_limit.load(Ordering::Relaxed)).ok()
    }

    pub(crate) fn now(&self) -> SystemTime {
        self.inner.config.clock.now()
    }

    pub(crate) fn vault(&self, id: &str) -> Option<&Arc<VaultSlot>> {
        self.inner.vaults.get(id)
    }

    /// Every vault, in configuration order.
    pub(crate) fn vaults(&self) -> impl Iterator<Item = &Arc<VaultSlot>> {
        self.inner
            .config
            .vaults
            .iter()
            .filter_map(|vault| self.inner.vaults.get(&vault.id))
    }

    /// The CMP tenant of an OAuth client: the vault it is bound to, else the first
    /// vault of the configuration.
    pub(crate) fn cmp_tenant(&self, client_id: &str) -> Option<&Arc<VaultSlot>> {
        let config = &self.inner.config;
        let bound = config
            .clients
            .iter()
            .find(|client| client.id == client_id)
            .and_then(|client| client.tenant.as_deref());
        let tenant = bound.or_else(|| config.vaults.first().map(|v| v.id.as_str()))?;
        self.vault(tenant)
    }

    /// Assigns OAuth client `client_id` to exactly `vaults` on API v2 (VGS: the
    /// service account's vault list); false for an unknown client.
    pub fn assign_client(&self, client_id: &str, vaults: &[&str]) -> bool {
        let mut assignments = lock(&self.inner.assignments);
        if !self.inner.config.clients.iter().any(|c| c.id == client_id) {
            return false;
        }
        assignments.insert(
            client_id.to_owned(),
            vaults.iter().map(|v| (*v).to_owned()).collect(),
        );
        true
    }

    /// Whether the OAuth client may use `vault` on API v2 (it exists and the client is
    /// assigned to it).
    pub(crate) fn assigned(&self, client_id: &str, vault: &str) -> bool {
        if self.vault(vault).is_none() {
            return false;
        }
        if let Some(vaults) = lock(&self.inner.assignments).get(client_id) {
            return vaults.iter().any(|v| v == vault);
        }
        self.inner
            .config
            .clients
            .iter()
            .find(|client| client.id == client_id)
            .is_some_and(|client| client.is_assigned_to(vault))
    }

    /// The vault whose v1 access credentials these are.
    pub(crate) fn vault_for_v1(&self, username: &str, password: &str) -> Option<&Arc<VaultSlot>> {
        self.inner.vaults.values().find(|vault| {
            vault
                .v1_credentials
                .iter()
                .any(|c| c.username == username && c.password == password)
        })
    }

    /// The access tokens the mock has issued (and still remembers). A test aid: leak
    /// tests use it to prove that clients never print or log a token. The mock's
    /// tokens grant nothing outside the mock.
    pub fn issued_tokens(&self) -> Vec<String> {
        self.inner.tokens.issued()
    }

    pub(crate) fn tokens(&self) -> &Tokens {
        &self.inner.tokens
    }

    pub(crate) fn counters(&self) -> &Counters {
        &self.inner.counters
    }

    pub(crate) fn faults_engine(&self) -> &Faults {
        &self.inner.faults
    }
}

/// A vault at runtime.
pub(crate) struct VaultSlot {
    pub(crate) id: String,
    v1_credentials: Vec<BasicCredentials>,
    pub(crate) store: Mutex<VaultStore>,
    /// The tenant's CMP card objects.
    pub(crate) cards: Mutex<CardStore>,
    /// Whether CMP's duplicate-card check is on for this tenant.
    pub(crate) duplicate_card_check: AtomicBool,
    /// Whether values may be revealed.
    pub(crate) reveal: bool,
    /// The vault's proxy routes, if it has any.
    pub(crate) routes: Option<Arc<crate::routes::RouteFile>>,
    /// The current window: (start, requests admitted in it).
    rate: Mutex<Option<(SystemTime, u32)>>,
    pub(crate) create_requests: AtomicU64,
    api_requests: AtomicU64,
    rate_limited: AtomicU64,
}

/// A refused request: retry after this long.
pub(crate) struct RateLimited {
    pub(crate) retry_after: Duration,
}

impl VaultSlot {
    /// Admits one request under `limit` per minute; `Ok(remaining)` (None if
    /// unlimited) or `Err` when the window is used up.
    pub(crate) fn admit(
        &self,
        state: &MockState,
        now: SystemTime,
    ) -> Result<Option<u32>, RateLimited> {
        let Some(limit) = state.rate_limit_per_minute() else {
            self.api_requests.fetch_add(1, Ordering::Relaxed);
            return Ok(None);
        };
        let mut window = lock(&self.rate);
        let (start, used) = current_window(&mut window, now);
        if *used >= limit {
            let retry_after = (*start + RATE_WINDOW)
                .duration_since(now)
                .unwrap_or(Duration::ZERO);
            drop(window);
            self.rate_limited.fetch_add(1, Ordering::Relaxed);
            return Err(RateLimited { retry_after });
        }
        *used += 1;
        let remaining = limit - *used;
        drop(window);
        self.api_requests.fetch_add(1, Ordering::Relaxed);
        Ok(Some(remaining))
    }

    /// The remaining budget without using any (for answers to unauthenticated calls).
    pub(crate) fn remaining(&self, state: &MockState, now: SystemTime) -> Option<u32> {
        let limit = state.rate_limit_per_minute()?;
        let mut window = lock(&self.rate);
        let (_, used) = current_window(&mut window, now);
        Some(limit.saturating_sub(*used))
    }
}

/// The window containing `now`, starting a new one when the old one is over.
fn current_window(
    window: &mut Option<(SystemTime, u32)>,
    now: SystemTime,
) -> &mut (SystemTime, u32) {
    let stale = match window {
        Some((start, _)) => now < *start || now >= *start + RATE_WINDOW,
        None => true,
    };
    if stale {
        *window = Some((now, 0));
    }
    window.as_mut().expect("set just above")
}
