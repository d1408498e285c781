//! How a payment orchestrator links vaultlink in: the VGS connector built from the
//! credential envelope it stores, held as `Arc<dyn ExternalVault>`, aliases kept instead
//! of cards. Runs against the embedded mock: `cargo run --example orchestrator -p vaultctl`.

use std::sync::Arc;

use vault_core::{
    Card, ConnectorAuthType, DeleteRequest, EraseRequest, ExternalVault, InsertRequest, ReportExt,
    RetrieveRequest, VaultError,
};
use vault_vgs::VgsConnector;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    // A mock VGS on a loopback port. Against VGS itself, drop the mock and replace
    // `.endpoint(..)` below with `.environment(Environment::Sandbox)` (or `Live`).
    let mock = vgs_mock::start(vgs_mock::MockConfig::demo()).await?;

    // Per merchant account, the orchestrator stores Hyperswitch's credential envelope:
    // api_key = OAuth client id, key1 = client secret, api_secret = vault id.
    let auth: ConnectorAuthType = serde_json::from_str(
        r#"{"auth_type":"SignatureKey","api_key":"demo-client","key1":"demo-secret","api_secret":"tntdemo00001"}"#,
    )?;
    let vault: Arc<dyn ExternalVault> = Arc::new(
        VgsConnector::builder()
            .auth_type(&auth)?
            .endpoint(mock.base_url())
            .build()?,
    );
    // At start-up: fetch the token and open the connection now (wrong credentials or
    // vault id show here, not at the first payment).
    vault.warm_up().await?;

    // At checkout: the card goes in, one alias per field comes back (the CVC volatile).
    // Store `connector_vault_id` (aliases only) in your database, never the card.
    let card: Card = serde_json::from_str(
        r#"{"card_number":"4111111111111111","card_exp_month":"04","card_exp_year":"2030","card_cvc":"123"}"#,
    )?;
    let stored = vault.insert(InsertRequest::card(card.clone())).await?;
    let aliases = stored.connector_vault_id;
    println!("stored {card:?}\n  as {aliases:?}"); // Debug shows ************1111, never the number or CVC

    // At authorization: the aliases turn back into the card.
    let retrieved = vault
        .retrieve(RetrieveRequest::new(aliases.clone()))
        .await?;
    assert_eq!(retrieved.card(), Some(&card));
    println!("retrieved {:?}", retrieved.card());

    // When the customer removes the card: forget the aliases and delete. VGS keeps one
    // record per value, which other cards may share, so delete removes only what is
    // this card's own and says what it kept and why.
    let deleted = vault.delete(DeleteRequest::new(aliases.clone())).await?;
    for record in &deleted.records {
        println!("delete: {} {:?}", record.part, record.action);
    }

    // A right-to-erasure request: the cardholder data goes from the vault, for every
    // card holding it. Errors are typed, with a fix.
    vault
        .erase(EraseRequest::cardholder_data(aliases.clone()))
        .await?;
    match vault.retrieve(RetrieveRequest::new(aliases)).await {
        Err(report) if report.kind() == VaultError::AliasNotFound => {
            println!("after erase: {}", report.summary());
        }
        other => return Err(format!("expected AliasNotFound after erase, got {other:?}").into()),
    }
    mock.stop().await;
    Ok(())
}
