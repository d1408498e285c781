//! Many orchestrator tasks at once through one shared connector: everything
//! round-trips, and one token serves them all.

use std::sync::Arc;

use vault_core::{ExternalVault, InsertRequest, RetrieveRequest};

use crate::support::{cards, connector, mock};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_concurrent_inserts_then_retrieves_round_trip_on_one_token() {
    let mock = mock().await;
    let vault: Arc<dyn ExternalVault> = Arc::new(connector(&mock));
    let cards = cards(200);
    let tasks: Vec<_> = cards
        .iter()
        .cloned()
        .map(|card| {
            let vault = Arc::clone(&vault);
            tokio::spawn(async move {
                let stored = vault
                    .insert(InsertRequest::card(card.clone()))
                    .await
                    .expect("insert");
                (card, stored.connector_vault_id)
            })
        })
        .collect();
    let mut stored = Vec::new();
    for task in tasks {
        stored.push(task.await.expect("task"));
    }
    let tasks: Vec<_> = stored
        .into_iter()
        .map(|(card, id)| {
            let vault = Arc::clone(&vault);
            tokio::spawn(async move {
                let back = vault
                    .retrieve(RetrieveRequest::new(id))
                    .await
                    .expect("retrieve");
                assert_eq!(back.card(), Some(&card));
            })
        })
        .collect();
    for task in tasks {
        task.await.expect("task");
    }
    assert_eq!(
        mock.stats().token_requests,
        1,
        "single flight: one token for 400 calls"
    );
}
