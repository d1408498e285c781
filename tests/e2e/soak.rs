//! Fault soak: thousands of mixed operations from 32 tasks against a mock VGS that
//! fails often (5xx, dropped connections, 429, latency), with the vault's
//! fingerprinting on and off. Pairs of customers save the same card, so deletes meet
//! shared records. No card is lost or broken by another's delete, none comes back
//! wrong, nothing is stored twice, nothing hangs; with fingerprinting off, nothing
//! deleted is readable and an insert that may have landed is never re-sent.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rand::{Rng, SeedableRng};
use vault_core::{
    Card, ConnectorVaultId, DeleteRequest, ExternalVault, InsertRequest, RecordAction, ReportExt,
    RetrieveRequest, VaultError,
};
use vault_vgs::{Fingerprinting, Timeouts, VgsConnector};
use vaultlink_tests::card;
use vgs_mock::{FaultConfig, MockConfig, Route};

const TASKS: u64 = 32;
const TOTAL_TIMEOUT: Duration = Duration::from_secs(10);

/// Operations per setting: 5,000 (10,000 over both) in release builds; fewer in debug
/// builds, where every request costs several times more CPU, with the same invariants.
fn operations() -> u64 {
    if cfg!(debug_assertions) { 2_000 } else { 5_000 }
}

/// The card saved under ledger entry `index`: entries `2k` and `2k + 1` are two
/// customers saving the same card (same number, expiry and CVC).
fn card_of(index: u64) -> Card {
    card(index / 2)
}

#[derive(Default)]
struct Ledger {
    /// Reported stored and not (maybe) deleted since.
    stored: HashMap<u64, ConnectorVaultId>,
    /// Reported deleted.
    deleted: HashMap<u64, ConnectorVaultId>,
    ok: BTreeMap<&'static str, u64>,
    failed: BTreeMap<(&'static str, &'static str), u64>,
    /// A retrieve that returned a card other than the one stored.
    wrong_card: u64,
    /// An error that was not retryable though only transient faults were injected.
    unexpected: Vec<String>,
    /// Calls that did not finish within the total timeout (plus slack).
    hung: u64,
    /// A delete that removed a record fingerprinting may share, or kept one without
    /// fingerprinting.
    removed_shared: u64,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_card_is_lost_or_wrong_under_faults_with_fingerprinting() {
    soak(Fingerprinting::On).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_card_is_lost_or_wrong_under_faults_without_fingerprinting() {
    soak(Fingerprinting::Off).await;
}

async fn soak(fingerprinting: Fingerprinting) {
    let mock = vgs_mock::start(
        MockConfig::demo()
            .with_rate_limit_per_minute(None)
            .with_fingerprinting(fingerprinting.is_on()),
    )
    .await
    .unwrap();
    let vault: Arc<dyn ExternalVault> = Arc::new(
        VgsConnector::builder()
            .credentials(
                vgs_mock::DEMO_CLIENT_ID,
                vgs_mock::DEMO_CLIENT_SECRET.to_owned().into(),
            )
            .vault_id(vgs_mock::DEMO_VAULT_ID)
            .endpoint(mock.base_url())
            .timeouts(Timeouts {
                total: TOTAL_TIMEOUT,
                ..Timeouts::default()
            })
            .fingerprinting(fingerprinting)
            .build()
            .unwrap(),
    );
    // A token first, then faults on every vault route (the token endpoint's outages
    // have their own tests).
    let warm_up = vault
        .retrieve(RetrieveRequest::new(ConnectorVaultId::Single {
            id: vault_core::Alias::new("tok_warm_up").unwrap(),
            cvc: None,
            cvc_expires_at: None,
        }))
        .await
        .unwrap_err();
    assert_eq!(warm_up.kind(), VaultError::AliasNotFound);
    mock.set_faults(FaultConfig {
        p_5xx: 0.10,
        p_reset: 0.05,
        p_429: 0.02,
        retry_after_secs: 1,
        latency_jitter_ms: 50,
        routes: Route::ALL
            .into_iter()
            .filter(|r| *r != Route::TokenEndpoint)
            .collect(),
        seed: Some(20261124),
        ..FaultConfig::default()
    });

    let ledger = Arc::new(Mutex::new(Ledger::default()));
    let per_task = operations() / TASKS;
    let tasks: Vec<_> = (0..TASKS)
        .map(|task| {
            let vault = Arc::clone(&vault);
            let ledger = Arc::clone(&ledger);
            tokio::spawn(async move {
                let mut rng = rand::rngs::StdRng::seed_from_u64(task);
                let mut mine: Vec<u64> = Vec::new();
                for n in 0..per_task {
                    let roll = rng.random_range(0..10);
                    let op = if mine.is_empty() || roll < 4 {
                        "insert"
                    } else if roll < 8 {
                        "retrieve"
                    } else {
                        "delete"
                    };
                    let index = match op {
                        "insert" => task * per_task + n,
                        _ => mine[rng.random_range(0..mine.len())],
                    };
                    let outcome = run(&*vault, op, index, &ledger, fingerprinting).await;
                    let mut ledger = ledger.lock().unwrap();
                    match outcome {
                        Some(Ok(())) => {
                            *ledger.ok.entry(op).or_default() += 1;
                            match op {
                                "insert" => mine.push(index),
                                "delete" => mine.retain(|i| *i != index),
                                _ => {}
                            }
                        }
                        Some(Err(report)) => {
                            *ledger.failed.entry((op, report.kind().code())).or_default() += 1;
                            // Without fingerprinting an insert that may have landed is
                            // not re-sent: that is this error, and expected here.
                            let expected = fingerprinting == Fingerprinting::Off
                                && report.kind() == VaultError::InsertOutcomeUnknown;
                            if !report.is_retryable() && !expected {
                                ledger
                                    .unexpected
                                    .push(format!("{op}: {}", report.summary()));
                            }
                            if op == "delete" {
                                // Unknown how much was removed: neither stored nor deleted.
                                ledger.stored.remove(&index);
                                mine.retain(|i| *i != index);
                            }
                        }
                        None => ledger.hung += 1,
                    }
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }

    mock.set_faults(FaultConfig::none());
    let ledger = Arc::try_unwrap(ledger).ok().unwrap().into_inner().unwrap();
    let stats = mock.stats();
    println!(
        "soak (fingerprinting {fingerprinting}): {} operations; ok {:?}; failed {:?}; faults injected {}; vault requests {:?}",
        operations(),
        ledger.ok,
        ledger.failed,
        stats.faults_injected,
        stats.api_requests
    );
    assert_eq!(ledger.hung, 0, "no call may run past its total timeout");
    assert_eq!(ledger.wrong_card, 0, "a retrieve returned another card");
    assert!(
        ledger.unexpected.is_empty(),
        "non-retryable errors under transient faults: {:?}",
        ledger.unexpected
    );
    assert!(
        stats.faults_injected > operations() / 10,
        "the faults did happen"
    );
    assert!(ledger.ok["insert"] > 0 && ledger.ok["retrieve"] > 0 && ledger.ok["delete"] > 0);

    assert_eq!(
        ledger.removed_shared, 0,
        "a delete removed a shared record or kept an own one"
    );

    // Every card reported stored reads back as itself, whatever was deleted around it
    // (its twin's delete included).
    for (index, id) in &ledger.stored {
        let back = vault
            .retrieve(RetrieveRequest::new(id.clone()))
            .await
            .unwrap_or_else(|e| panic!("card {index} broke: {}", e.summary()));
        assert!(back.missing.is_empty(), "card {index}: {:?}", back.missing);
        assert_eq!(back.card(), Some(&card_of(*index)), "card {index}");
    }
    for (index, id) in &ledger.deleted {
        let back = vault.retrieve(RetrieveRequest::new(id.clone())).await;
        match fingerprinting {
            // Kept: its records may be others' too (they are, for a twin).
            Fingerprinting::On => assert_eq!(back.unwrap().card(), Some(&card_of(*index))),
            // Its own records, removed.
            Fingerprinting::Off => {
                assert_eq!(back.unwrap_err().kind(), VaultError::AliasNotFound)
            }
        }
    }
    let inserts_sent = ledger.ok["insert"]
        + ledger
            .failed
            .iter()
            .filter(|((op, _), _)| *op == "insert")
            .map(|(_, n)| n)
            .sum::<u64>();
    let records = mock.record_count(vgs_mock::DEMO_VAULT_ID).unwrap() as u64;
    let bound = match fingerprinting {
        // Fingerprinting kept retried inserts from storing a value twice: at most one
        // record per distinct value ever sent (a number and a CVC per distinct card,
        // twins share them; expiry months and years are shared by all).
        Fingerprinting::On => 2 * inserts_sent + 12 + 5,
        // Every insert is sent once, whatever happened to it (a 429 refused it before
        // processing, so that one alone may be sent again): no insert that may have
        // landed is re-sent. Each stores its own four records.
        Fingerprinting::Off => {
            let sent_once: u64 =
                stats
                    .api_requests
                    .get(&Route::CreateAliases)
                    .map_or(0, |by_status| {
                        by_status
                            .iter()
                            .filter(|(status, _)| *status != "429")
                            .map(|(_, n)| n)
                            .sum()
                    });
            assert_eq!(
                sent_once, inserts_sent,
                "create attempts (429s aside) for {inserts_sent} inserts: one was re-sent"
            );
            4 * stats.api_count(Route::CreateAliases, 201)
        }
    };
    assert!(records <= bound, "{records} records for at most {bound}");
}

/// Runs one operation within the total timeout (plus slack); `None` if it hung.
async fn run(
    vault: &dyn ExternalVault,
    op: &'static str,
    index: u64,
    ledger: &Mutex<Ledger>,
    fingerprinting: Fingerprinting,
) -> Option<Result<(), vault_core::Report<VaultError>>> {
    let work = async {
        match op {
            "insert" => {
                let stored = vault.insert(InsertRequest::card(card_of(index))).await?;
                ledger
                    .lock()
                    .unwrap()
                    .stored
                    .insert(index, stored.connector_vault_id);
                Ok(())
            }
            "retrieve" => {
                let Some(id) = ledger.lock().unwrap().stored.get(&index).cloned() else {
                    return Ok(());
                };
                let back = vault.retrieve(RetrieveRequest::new(id)).await?;
                if back.card() != Some(&card_of(index)) {
                    ledger.lock().unwrap().wrong_card += 1;
                }
                Ok(())
            }
            _ => {
                let Some(id) = ledger.lock().unwrap().stored.get(&index).cloned() else {
                    return Ok(());
                };
                let deleted = vault.delete(DeleteRequest::new(id.clone())).await?;
                let mut ledger = ledger.lock().unwrap();
                let removed = deleted
                    .records
                    .iter()
                    .filter(|r| r.action == RecordAction::Removed)
                    .count();
                let wrong = match fingerprinting {
                    Fingerprinting::On => removed > 0,
                    // Every record is the card's own: all go (or were gone already).
                    Fingerprinting::Off => !deleted.kept().is_empty(),
                };
                if wrong {
                    ledger.removed_shared += 1;
                }
                ledger.stored.remove(&index);
                ledger.deleted.insert(index, id);
                Ok(())
            }
        }
    };
    tokio::time::timeout(TOTAL_TIMEOUT + Duration::from_secs(2), work)
        .await
        .ok()
}
