//! Round trips: the requests a flow makes go out together when nothing orders them.
//! The mock's rendezvous holds the next N vault calls until all N are in flight, so
//! a connector that sent them one after another would leave it unmet (its first
//! call waits out the bound alone). `warm_up` takes the token fetch and the
//! connection out of the first call.

use std::time::Duration;

use vault_core::{
    CardField, ConnectorVaultId, DeleteRequest, EraseRequest, ExternalVault, InsertRequest,
    RetrieveRequest, TokenizationMode,
};
use vault_vgs::{CmpConnector, Fingerprinting};
use vgs_mock::{DEMO_CMP_CLIENT_ID, DEMO_CMP_CLIENT_SECRET, DEMO_VAULT_ID};

use crate::support::{builder, card, cards, connector, mock};

/// Long enough that a concurrent client always fills it, and shorter than the
/// connector's 5 s per-attempt timeout, so that a sequential client's first call gives
/// up waiting (the rendezvous is missed) before a retry of it could fill the place.
const BOUND: Duration = Duration::from_secs(3);

/// A connector and a card it stored (per field, with a CVC).
async fn stored(mock: &vgs_mock::MockHandle) -> (vault_vgs::VgsConnector, ConnectorVaultId) {
    let vault = connector(mock);
    let id = vault
        .insert(InsertRequest::card(card()))
        .await
        .unwrap()
        .connector_vault_id;
    (vault, id)
}

#[tokio::test]
async fn a_retrieve_sends_the_persistent_reveal_and_the_cvc_at_once() {
    let mock = mock().await;
    let (vault, id) = stored(&mock).await;
    let before = mock.stats().vault(DEMO_VAULT_ID).api_requests;
    let rendezvous = mock.rendezvous(2, BOUND);
    let back = vault.retrieve(RetrieveRequest::new(id)).await.unwrap();
    assert_eq!(back.card(), Some(&card()));
    assert!(rendezvous.met(), "both reads were in flight at once");
    assert_eq!(
        mock.stats().vault(DEMO_VAULT_ID).api_requests - before,
        2,
        "two requests, one round trip"
    );
}

#[tokio::test]
async fn a_single_id_card_reads_its_record_and_its_cvc_at_once() {
    let mock = mock().await;
    let vault = connector(&mock);
    let id = vault
        .insert(InsertRequest::card(card()).with_mode(TokenizationMode::SingleId))
        .await
        .unwrap()
        .connector_vault_id;
    assert!(matches!(id, ConnectorVaultId::Single { cvc: Some(_), .. }));
    let rendezvous = mock.rendezvous(2, BOUND);
    let back = vault.retrieve(RetrieveRequest::new(id)).await.unwrap();
    assert_eq!(back.card(), Some(&card()));
    assert!(rendezvous.met());
}

#[tokio::test]
async fn retrieve_many_reads_the_cvcs_with_the_batched_reveals() {
    let mock = mock().await;
    let vault = connector(&mock);
    let stored: Vec<ConnectorVaultId> = vault
        .insert_many(cards(3).into_iter().map(InsertRequest::card).collect())
        .await
        .into_iter()
        .map(|r| r.unwrap().connector_vault_id)
        .collect();
    // One batched reveal of the 12 persistent values, three CVC reads: 4 at once
    // (the default batch concurrency is 4).
    let rendezvous = mock.rendezvous(4, BOUND);
    let back = vault.retrieve_many(stored).await;
    assert!(
        back.iter()
            .all(|r| r.as_ref().unwrap().card().unwrap().cvc.is_some())
    );
    assert!(rendezvous.met());
}

#[tokio::test]
async fn erase_reads_every_record_at_once_then_deletes_at_once() {
    let mock = mock().await;
    let (vault, id) = stored(&mock).await;
    // The cardholder data this card has (number, CVC, holder name): read together.
    let ConnectorVaultId::Multi(fields) = &id else {
        panic!("per field");
    };
    let wanted = [
        CardField::CardNumber,
        CardField::CardCvc,
        CardField::CardHolderName,
    ]
    .iter()
    .filter(|f| fields.contains_key(f))
    .count();
    assert!(wanted >= 2, "a number and a CVC at least");
    let reads = mock.rendezvous(wanted, BOUND);
    let erased = vault
        .erase(EraseRequest::cardholder_data(id.clone()))
        .await
        .unwrap();
    assert!(reads.met(), "the reads went out together");
    assert_eq!(erased.removed().len(), wanted);
}

#[tokio::test]
async fn without_fingerprinting_a_delete_removes_every_record_at_once() {
    let mock = vgs_mock::start(vgs_mock::MockConfig::demo().with_fingerprinting(false))
        .await
        .unwrap();
    let vault = builder(&mock)
        .fingerprinting(Fingerprinting::Off)
        .build()
        .unwrap();
    let id = vault
        .insert(InsertRequest::card(card()))
        .await
        .unwrap()
        .connector_vault_id;
    let records = id.aliases().len();
    let deletes = mock.rendezvous(records, BOUND);
    let deleted = vault.delete(DeleteRequest::new(id)).await.unwrap();
    assert_eq!(deleted.removed().len(), records);
    assert!(deletes.met());
}

#[tokio::test]
async fn warm_up_fetches_the_token_so_the_first_call_does_not() {
    let mock = mock().await;
    let vault = connector(&mock);
    let tokens = mock.stats().token_requests;
    vault.warm_up().await.unwrap();
    assert_eq!(
        mock.stats().token_requests,
        tokens + 1,
        "warm_up fetched it"
    );
    vault.insert(InsertRequest::card(card())).await.unwrap();
    assert_eq!(
        mock.stats().token_requests,
        tokens + 1,
        "the first call found a token"
    );
    // Through the trait object too, and for CMP.
    let cmp: Box<dyn ExternalVault> = Box::new(
        CmpConnector::builder()
            .credentials(
                DEMO_CMP_CLIENT_ID,
                secrecy::SecretString::from(DEMO_CMP_CLIENT_SECRET.to_owned()),
            )
            .vault_id(DEMO_VAULT_ID)
            .endpoint(mock.base_url())
            .build()
            .unwrap(),
    );
    let tokens = mock.stats().token_requests;
    cmp.warm_up().await.unwrap();
    assert_eq!(mock.stats().token_requests, tokens + 1);
    // Wrong credentials show at warm-up, not at the first payment.
    let wrong = builder(&mock)
        .credentials(
            vgs_mock::DEMO_CLIENT_ID,
            secrecy::SecretString::from("not-the-secret".to_owned()),
        )
        .build()
        .unwrap();
    let err = wrong.warm_up().await.unwrap_err();
    assert_eq!(
        vault_core::ReportExt::kind(&err),
        vault_core::VaultError::InvalidCredentials
    );
}
