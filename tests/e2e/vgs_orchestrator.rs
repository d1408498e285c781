//! The whole path as a payment orchestrator sees it: credentials in Hyperswitch's JSON,
//! one `Arc<dyn ExternalVault>` built from them, cards in, aliases out, cards back,
//! against the mock VGS on loopback.

use std::sync::Arc;

use vault_core::{
    Card, ConnectorAuthType, ConnectorVaultId, DeleteRequest, Environment, EraseRequest,
    ExternalVault, InsertRequest, ReportExt, RetrieveRequest, VaultError,
};
use vault_vgs::VgsConnector;

/// What an orchestrator stores per merchant connector account.
fn merchant_account_credentials(secret: &str) -> String {
    format!(
        r#"{{"auth_type":"SignatureKey","api_key":"{}","key1":"{secret}","api_secret":"{}"}}"#,
        vgs_mock::DEMO_CLIENT_ID,
        vgs_mock::DEMO_VAULT_ID
    )
}

/// The orchestrator's connector factory: the only place that knows it is VGS.
fn vault_for(credentials_json: &str, endpoint: &str) -> Arc<dyn ExternalVault> {
    let auth: ConnectorAuthType = serde_json::from_str(credentials_json).unwrap();
    Arc::new(
        VgsConnector::builder()
            .auth_type(&auth)
            .unwrap()
            .environment(Environment::Sandbox)
            .endpoint(endpoint)
            .build()
            .unwrap(),
    )
}

fn fixture_cards() -> Vec<Card> {
    let json = include_str!("../../fixtures/cards.json");
    serde_json::from_str(json).unwrap()
}

#[tokio::test]
async fn orchestrator_stores_and_reads_back_fixture_cards_through_dyn_vault() {
    let mock = vgs_mock::start(vgs_mock::MockConfig::demo()).await.unwrap();
    let vault = vault_for(
        &merchant_account_credentials(vgs_mock::DEMO_CLIENT_SECRET),
        mock.base_url(),
    );

    let mut kept: Vec<(Card, ConnectorVaultId)> = Vec::new();
    for card in fixture_cards() {
        let stored = vault
            .insert(InsertRequest::card(card.clone()))
            .await
            .unwrap();
        // What the orchestrator keeps in its own database: no card data in it.
        let row = format!("{:?}", stored.connector_vault_id);
        assert!(!row.contains(card.number.expose_secret()), "{row}");
        kept.push((card, stored.connector_vault_id));
    }
    for (card, id) in &kept {
        let back = vault
            .retrieve(RetrieveRequest::new(id.clone()))
            .await
            .unwrap();
        assert_eq!(back.card(), Some(card));
    }
    for (card, id) in &kept {
        // Fingerprinting is on: every per-field record may be another card's too, so
        // delete keeps them all (and says so); the card still reads.
        let deleted = vault.delete(DeleteRequest::new(id.clone())).await.unwrap();
        assert!(deleted.removed().is_empty(), "{deleted:?}");
        assert_eq!(deleted.kept().len(), id.aliases().len());
        let back = vault
            .retrieve(RetrieveRequest::new(id.clone()))
            .await
            .unwrap();
        assert_eq!(back.card(), Some(card));
        // Erasing the cardholder data removes it everywhere.
        let erased = vault
            .erase(EraseRequest::cardholder_data(id.clone()))
            .await
            .unwrap();
        assert!(!erased.removed().is_empty());
        let err = vault
            .retrieve(RetrieveRequest::new(id.clone()))
            .await
            .unwrap_err();
        assert_eq!(err.kind(), VaultError::AliasNotFound);
    }
    assert_eq!(mock.stats().token_requests, 1);
}

#[tokio::test]
async fn orchestrator_sees_a_typed_error_for_a_rotated_secret() {
    let mock = vgs_mock::start(vgs_mock::MockConfig::demo()).await.unwrap();
    let vault = vault_for(
        &merchant_account_credentials("rotated-away"),
        mock.base_url(),
    );
    let card = fixture_cards().remove(0);
    let err = vault.insert(InsertRequest::card(card)).await.unwrap_err();
    assert_eq!(err.kind(), VaultError::InvalidCredentials);
    assert!(err.summary().contains("client secret"), "{}", err.summary());
}

#[test]
fn orchestrator_gets_a_clear_error_for_the_wrong_credential_variant() {
    let auth: ConnectorAuthType =
        serde_json::from_str(r#"{"auth_type":"HeaderKey","api_key":"k"}"#).unwrap();
    let err = VgsConnector::builder().auth_type(&auth).unwrap_err();
    assert_eq!(err.kind(), VaultError::InvalidConfig);
    assert!(err.summary().contains("SignatureKey"), "{}", err.summary());
}
