//! Fault soak: thousands of mixed operations from 32 tasks against a mock VGS that
//! fails often (5xx, dropped connections, 429, latency). No card is lost, none comes
//! back wrong, nothing deleted is readable, nothing is stored twice, nothing hangs.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rand::{Rng, SeedableRng};
use vault_core::{
    ConnectorVaultId, DeleteRequest, ExternalVault, InsertRequest, ReportExt, RetrieveRequest,
    VaultError,
};
use vault_vgs::{Timeouts, VgsConnector};
use vaultlink_tests::card;
use vgs_mock::{FaultConfig, MockConfig, Route};

const TASKS: u64 = 32;
const TOTAL_TIMEOUT: Duration = Duration::from_secs(10);

/// Operations in all: the 10,000 in release builds; fewer in debug builds,
/// where every request costs several times more CPU, with the same invariants.
fn operations() -> u64 {
    if cfg!(debug_assertions) {
        4_000
    } else {
        10_000
    }
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
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_card_is_lost_or_wrong_under_faults() {
    let mock = vgs_mock::start(MockConfig::demo().with_rate_limit_per_minute(None))
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
            .build()
            .unwrap(),
    );
    // A token first, then faults on every vault route (the token endpoint's outages
    // have their own tests).
    let warm_up = vault
        .retrieve(RetrieveRequest::new(ConnectorVaultId::Single {
            id: vault_core::Alias::new("tok_warm_up").unwrap(),
            cvc: None,
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
                    let outcome = run(&*vault, op, index, &ledger).await;
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
                            if !report.is_retryable() {
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
        "soak: {} operations; ok {:?}; failed {:?}; faults injected {}; vault requests {:?}",
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

    // Every card reported stored reads back as itself; nothing reported deleted reads.
    for (index, id) in &ledger.stored {
        let back = vault
            .retrieve(RetrieveRequest::new(id.clone()))
            .await
            .unwrap();
        assert_eq!(back.card(), Some(&card(*index)), "card {index}");
    }
    for id in ledger.deleted.values() {
        let err = vault
            .retrieve(RetrieveRequest::new(id.clone()))
            .await
            .unwrap_err();
        assert_eq!(err.kind(), VaultError::AliasNotFound);
    }
    // Fingerprinting kept retried inserts from storing a value twice: the vault holds
    // at most one record per distinct value ever sent (card numbers and CVCs are
    // distinct per card, expiry months and years are shared).
    let inserts_sent = ledger.ok["insert"]
        + ledger
            .failed
            .iter()
            .filter(|((op, _), _)| *op == "insert")
            .map(|(_, n)| n)
            .sum::<u64>();
    let distinct_values = 2 * inserts_sent + 12 + 5;
    let records = mock.record_count(vgs_mock::DEMO_VAULT_ID).unwrap() as u64;
    assert!(
        records <= distinct_values,
        "{records} records for at most {distinct_values} distinct values"
    );
}

/// Runs one operation within the total timeout (plus slack); `None` if it hung.
async fn run(
    vault: &dyn ExternalVault,
    op: &'static str,
    index: u64,
    ledger: &Mutex<Ledger>,
) -> Option<Result<(), vault_core::Report<VaultError>>> {
    let work = async {
        match op {
            "insert" => {
                let stored = vault.insert(InsertRequest::card(card(index))).await?;
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
                if back.card() != Some(&card(index)) {
                    ledger.lock().unwrap().wrong_card += 1;
                }
                Ok(())
            }
            _ => {
                let Some(id) = ledger.lock().unwrap().stored.get(&index).cloned() else {
                    return Ok(());
                };
                vault.delete(DeleteRequest::new(id.clone())).await?;
                let mut ledger = ledger.lock().unwrap();
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
