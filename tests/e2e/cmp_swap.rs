//! The orchestrator links CMP exactly as it links the alias connector: the same calling
//! code runs over `Arc<dyn ExternalVault>` built for either product from the same kind
//! of `SignatureKey` credentials; only the factory knows which one it built.

use std::sync::Arc;

use vault_core::{
    Card, ConnectorAuthType, ConnectorVaultId, DeleteRequest, Environment, EraseRequest,
    ExternalVault, InsertRequest, ReportExt, RetrieveRequest, VaultError,
};
use vault_vgs::{CmpConnector, VgsConnector};

/// Which VGS product the merchant's tenant is on: configuration, not code.
#[derive(Clone, Copy, Debug)]
enum Product {
    AliasVault,
    CardManagementPlatform,
}

/// The orchestrator's connector factory: the only place that knows the product.
fn vault_for(product: Product, credentials_json: &str, endpoint: &str) -> Arc<dyn ExternalVault> {
    let auth: ConnectorAuthType = serde_json::from_str(credentials_json).unwrap();
    match product {
        Product::AliasVault => Arc::new(
            VgsConnector::builder()
                .auth_type(&auth)
                .unwrap()
                .environment(Environment::Sandbox)
                .endpoint(endpoint)
                .build()
                .unwrap(),
        ),
        Product::CardManagementPlatform => Arc::new(
            CmpConnector::builder()
                .auth_type(&auth)
                .unwrap()
                .environment(Environment::Sandbox)
                .endpoint(endpoint)
                .build()
                .unwrap(),
        ),
    }
}

fn credentials(client_id: &str, secret: &str) -> String {
    format!(
        r#"{{"auth_type":"SignatureKey","api_key":"{client_id}","key1":"{secret}","api_secret":"{}"}}"#,
        vgs_mock::DEMO_VAULT_ID
    )
}

/// The orchestrator's payment code, unchanged whatever the vault: keep the vault id
/// instead of the card, read the card back at authorization, delete it when the
/// customer removes it, erase it on a right-to-erasure request. Returns what it kept, for the test to inspect.
async fn store_authorize_forget(
    vault: Arc<dyn ExternalVault>,
    cards: &[Card],
) -> Vec<ConnectorVaultId> {
    let mut kept = Vec::new();
    for card in cards {
        let stored = vault
            .insert(InsertRequest::card(card.clone()))
            .await
            .unwrap();
        let row = format!("{:?}", stored.connector_vault_id);
        assert!(!row.contains(card.number.expose_secret()), "{row}");
        kept.push(stored.connector_vault_id);
    }
    for (card, id) in cards.iter().zip(&kept) {
        let back = vault
            .retrieve(RetrieveRequest::new(id.clone()))
            .await
            .unwrap();
        assert_eq!(back.card(), Some(card));
    }
    for (card, id) in cards.iter().zip(&kept) {
        // The customer removes the card: delete never breaks another customer's card,
        // so what the vault shares by value is kept, and the card may still read.
        let deleted = vault.delete(DeleteRequest::new(id.clone())).await.unwrap();
        assert_eq!(deleted.records.len(), id.aliases().len());
        let after = vault.retrieve(RetrieveRequest::new(id.clone())).await;
        match deleted.kept().is_empty() {
            true => assert_eq!(after.unwrap_err().kind(), VaultError::AliasNotFound),
            false => assert_eq!(after.unwrap().card(), Some(card)),
        }
        // A right-to-erasure request: the values go, for every holder.
        vault
            .erase(EraseRequest::cardholder_data(id.clone()))
            .await
            .unwrap();
        let err = vault
            .retrieve(RetrieveRequest::new(id.clone()))
            .await
            .unwrap_err();
        assert_eq!(err.kind(), VaultError::AliasNotFound);
    }
    kept
}

#[tokio::test]
async fn the_same_orchestrator_code_runs_on_the_alias_vault_and_on_cmp() {
    let mock = vgs_mock::start(vgs_mock::MockConfig::demo()).await.unwrap();
    let cards: Vec<Card> = (0..3).map(vaultlink_tests::card).collect();
    let accounts = [
        (
            Product::AliasVault,
            credentials(vgs_mock::DEMO_CLIENT_ID, vgs_mock::DEMO_CLIENT_SECRET),
        ),
        (
            Product::CardManagementPlatform,
            credentials(
                vgs_mock::DEMO_CMP_CLIENT_ID,
                vgs_mock::DEMO_CMP_CLIENT_SECRET,
            ),
        ),
    ];
    let mut kept_by_product = Vec::new();
    for (product, credentials) in &accounts {
        let vault = vault_for(*product, credentials, mock.base_url());
        kept_by_product.push(store_authorize_forget(vault, &cards).await);
    }

    // Behind the same trait, each product kept its own shape of id.
    assert!(
        kept_by_product[0]
            .iter()
            .all(|id| matches!(id, ConnectorVaultId::Multi(_))),
        "the alias vault keeps one alias per field"
    );
    assert!(
        kept_by_product[1].iter().all(|id| matches!(
            id,
            ConnectorVaultId::Single { id, cvc: None, .. } if id.as_str().starts_with("CRD")
        )),
        "CMP keeps one card id"
    );
    let stats = mock.stats();
    assert_eq!(stats.api_total(vgs_mock::Route::CreateCard), 3);
    assert_eq!(stats.cards_stored, 0, "every CMP card was deleted");
    assert_eq!(stats.token_requests, 2, "one token per connector");
}
