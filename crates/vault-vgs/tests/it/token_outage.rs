//! Token endpoint outages with a valid token cached: calls keep working until the token
//! really expires, then fail fast instead of piling up, and one fetch restores service.
//! A hanging token endpoint never holds callers past their timeout. Time is the
//! connector's injected clock, never a sleep.

use std::sync::Arc;
use std::time::Duration;

use futures_util::future::join_all;
use vault_auth::ManualClock;
use vault_core::{ExternalVault, InsertRequest, ReportExt, VaultError};
use vault_vgs::{Timeouts, VgsConnector};
use vgs_mock::{FaultConfig, Route};

use crate::support::{builder, cards, mock};

fn token_endpoint_down() -> FaultConfig {
    FaultConfig {
        p_5xx: 1.0,
        routes: vec![Route::TokenEndpoint],
        ..FaultConfig::default()
    }
}

async fn insert_all(vault: &VgsConnector, n: usize) -> Vec<Result<(), VaultError>> {
    join_all(cards(n).into_iter().map(|card| async move {
        vault
            .insert(InsertRequest::card(card))
            .await
            .map(|_| ())
            .map_err(|e| e.kind())
    }))
    .await
}

#[tokio::test]
async fn calls_survive_a_token_outage_until_expiry_then_fail_fast_then_recover_with_one_fetch() {
    let mock = mock().await;
    let clock = Arc::new(ManualClock::new());
    let vault = builder(&mock)
        .clock(clock.clone())
        .build()
        .expect("connector");
    vault.check().await.expect("first token");
    assert_eq!(mock.stats().token_requests, 1);

    // The endpoint goes down; we pass the refresh point (10% margin + jitter before the
    // 300 s expiry): background refreshes fail, calls keep using the valid token.
    mock.set_faults(token_endpoint_down());
    clock.advance(Duration::from_secs(290));
    assert!(
        insert_all(&vault, 20).await.iter().all(Result::is_ok),
        "old token still valid"
    );
    let during = mock.stats().token_requests;
    assert!(
        (2..=3).contains(&during),
        "a background refresh was tried, not one per call: {during}"
    );

    // Past the real expiry: every call fails at once with the token endpoint's error,
    // and the 50 callers do not each hammer the endpoint.
    clock.advance(Duration::from_secs(11));
    let failed = insert_all(&vault, 50).await;
    assert!(
        failed.iter().all(|r| *r == Err(VaultError::Upstream)),
        "{failed:?}"
    );
    let after_expiry = mock.stats().token_requests;
    assert!(
        after_expiry - during <= 1,
        "callers piled onto the token endpoint: {}",
        after_expiry - during
    );

    // The endpoint is back: after the short failure backoff one fetch serves everyone.
    mock.set_faults(FaultConfig::none());
    clock.advance(Duration::from_secs(2));
    assert!(insert_all(&vault, 50).await.iter().all(Result::is_ok));
    assert_eq!(mock.stats().token_requests, after_expiry + 1);
}

#[tokio::test]
async fn a_hanging_token_endpoint_never_blocks_callers_past_their_timeout() {
    let mock = mock().await;
    mock.set_faults(FaultConfig {
        token_delay_ms: 60_000,
        ..FaultConfig::default()
    });
    let vault = builder(&mock)
        .timeouts(Timeouts {
            total: Duration::from_millis(300),
            ..Timeouts::default()
        })
        .build()
        .expect("connector");
    let outcomes = tokio::time::timeout(Duration::from_secs(30), insert_all(&vault, 20))
        .await
        .expect("callers were released by their own timeout");
    assert!(
        outcomes.iter().all(|r| *r == Err(VaultError::Timeout)),
        "{outcomes:?}"
    );
    let vault: Arc<dyn ExternalVault> = Arc::new(vault);
    let err = vault
        .insert(InsertRequest::card(cards(1).remove(0)))
        .await
        .expect_err("still hanging");
    assert!(err.is_retryable());
}
