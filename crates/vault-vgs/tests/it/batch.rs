//! Batches: values packed 20 to a request (counted by the mock), per-item results, and
//! a failed request failing only its own items.

use vault_core::{InsertRequest, ReportExt, VaultError};
use vgs_mock::{FailWith, Route};

use crate::support::{DEMO_VAULT_ID, cards, connector, mock};

#[tokio::test]
async fn forty_five_cards_with_cvc_take_nine_insert_requests() {
    let mock = mock().await;
    let vault = connector(&mock);
    let cards = cards(45);
    let results = vault
        .insert_many(cards.iter().cloned().map(InsertRequest::card).collect())
        .await;
    assert_eq!(results.len(), 45);
    let ids: Vec<_> = results
        .into_iter()
        .map(|r| r.expect("stored").connector_vault_id)
        .collect();
    assert_eq!(
        mock.stats().vault(DEMO_VAULT_ID).create_requests,
        9,
        "180 values / 20 per request"
    );

    let back = vault.retrieve_many(ids).await;
    for (card, result) in cards.iter().zip(back) {
        assert_eq!(result.expect("retrieved").card(), Some(card));
    }
    let stats = mock.stats();
    // 135 persistent values in 7 reveals of up to 20, and one volatile CVC each.
    assert_eq!(stats.api_total(Route::RevealMultipleAliases), 7);
    assert_eq!(stats.api_total(Route::RevealAlias), 45);
    assert_eq!(stats.token_requests, 1);
}

#[tokio::test]
async fn a_failed_chunk_fails_only_its_items() {
    let mock = mock().await;
    let vault = connector(&mock);
    let cards = cards(45);
    mock.fail_next(Route::CreateAliases, 1, FailWith::Status(400));
    let results = vault
        .insert_many(cards.iter().cloned().map(InsertRequest::card).collect())
        .await;
    let failed: Vec<_> = results
        .iter()
        .enumerate()
        .filter(|(_, r)| r.is_err())
        .map(|(i, _)| i)
        .collect();
    assert_eq!(
        failed.len(),
        5,
        "one request of 20 values holds exactly 5 cards"
    );
    assert!(
        failed.windows(2).all(|w| w[1] == w[0] + 1),
        "the failed cards are one chunk: {failed:?}"
    );
    for index in &failed {
        let err = results[*index].as_ref().expect_err("failed");
        assert_eq!(err.kind(), VaultError::InvalidRequest);
        assert!(
            err.details().iter().any(|d| d.contains("batch")),
            "{:?}",
            err.details()
        );
    }
    let stored: Vec<_> = results
        .into_iter()
        .filter_map(Result::ok)
        .map(|r| r.connector_vault_id)
        .collect();
    assert_eq!(stored.len(), 40);
    for result in vault.retrieve_many(stored).await {
        result.expect("every reported success is retrievable");
    }
}

#[tokio::test]
async fn a_bad_card_in_a_batch_does_not_fail_the_others() {
    let mock = mock().await;
    let vault = connector(&mock);
    let mut requests: Vec<_> = cards(3).into_iter().map(InsertRequest::card).collect();
    requests.push(InsertRequest::card(crate::support::card()));
    let results = vault.insert_many(requests).await;
    assert!(results.iter().all(Result::is_ok));
    assert_eq!(mock.stats().vault(DEMO_VAULT_ID).create_requests, 1);
}
