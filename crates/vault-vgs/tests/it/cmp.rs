//! The CMP connector against the in-process vgs-mock: create, duplicate 303, PCI and
//! non-PCI retrieve, CVC expiry on the mock's manual clock, delete (kept while the
//! duplicate check shares the card) and erase, 422, and CMP's
//! retry rule (500 once, 503 until it passes) proven by the mock's request counts.

use std::time::Duration;

use vault_core::{
    Alias, Card, CardAliases, ConnectorVaultId, CvcStatus, DeleteRequest, DeleteScope,
    EraseRequest, ExpiryMonth, ExpiryYear, ExternalVault, InsertRequest, KeptBecause,
    PaymentMethodData, RecordAction, ReportExt, RetrieveRequest, StoredPart, VaultError,
};
use vault_vgs::{CmpConnector, CmpConnectorBuilder, RetryPolicy};
use vgs_mock::{
    DEMO_CMP_CLIENT_ID, DEMO_CMP_CLIENT_SECRET, DEMO_VAULT_ID, FailWith, MockClock, MockConfig,
    Route,
};

use crate::support::{card, mock_with};

const NON_PCI: &str = "cmp-non-pci";
const NON_PCI_SECRET: &str = "cmp-non-pci-secret";

fn config() -> MockConfig {
    MockConfig::demo().with_cmp_client(
        NON_PCI,
        NON_PCI_SECRET,
        &["cards:write", "cards:read"],
        DEMO_VAULT_ID,
    )
}

fn builder(mock: &vgs_mock::MockHandle) -> CmpConnectorBuilder {
    CmpConnector::builder()
        .credentials(DEMO_CMP_CLIENT_ID, DEMO_CMP_CLIENT_SECRET.to_owned().into())
        .vault_id(DEMO_VAULT_ID)
        .endpoint(mock.base_url())
        .retry(RetryPolicy {
            base_backoff: Duration::from_millis(1),
            max_backoff: Duration::from_millis(5),
            ..RetryPolicy::default()
        })
}

fn pci(mock: &vgs_mock::MockHandle) -> CmpConnector {
    builder(mock).build().expect("connector")
}

fn non_pci(mock: &vgs_mock::MockHandle) -> CmpConnector {
    builder(mock)
        .credentials(NON_PCI, NON_PCI_SECRET.to_owned().into())
        .build()
        .expect("connector")
}

fn card_id(id: &ConnectorVaultId) -> &Alias {
    match id {
        ConnectorVaultId::Single { id, cvc: None, .. } => id,
        other => panic!("a CMP card is one id: {other:?}"),
    }
}

#[tokio::test]
async fn a_card_round_trips_as_one_object_with_its_aliases() {
    let mock = mock_with(config()).await;
    let vault = pci(&mock);
    let stored = vault
        .insert(InsertRequest::card(card()))
        .await
        .expect("insert");
    let id = card_id(&stored.connector_vault_id).clone();
    assert!(id.as_str().starts_with("CRD"), "{id}");
    assert!(!stored.already_stored);
    // The vault's own fingerprint, not the card id it would fall back to.
    assert!(!stored.fingerprint.0.is_empty());
    assert_ne!(stored.fingerprint.0, id.as_str());
    let aliases = stored.card_aliases.expect("card object");
    assert!(aliases.pan_alias.as_str().starts_with("tok_sandbox_"));
    assert_eq!(
        (aliases.bin.as_deref(), aliases.last4.as_str()),
        (Some("411111"), "1111")
    );
    assert_eq!(aliases.cvc_status, Some(CvcStatus::Active));

    let back = vault
        .retrieve(RetrieveRequest::new(stored.connector_vault_id.clone()))
        .await
        .expect("retrieve");
    assert_eq!(
        back.card(),
        Some(&card()),
        "PCI view: number, expiry and CVC"
    );
    assert_eq!(mock.stats().token_requests, 1);
    assert_eq!(mock.state().card_count(DEMO_VAULT_ID), Some(1));
}

#[tokio::test]
async fn the_same_pan_again_is_already_stored_with_the_same_card_id() {
    let mock = mock_with(config()).await;
    let vault = pci(&mock);
    let first = vault
        .insert(InsertRequest::card(card()))
        .await
        .expect("first");
    let again = vault
        .insert(InsertRequest::card(card()))
        .await
        .expect("303 is a success");
    assert!(again.already_stored);
    assert_eq!(again.connector_vault_id, first.connector_vault_id);
    assert_eq!(again.fingerprint, first.fingerprint);
    assert_eq!(mock.stats().api_count(Route::CreateCard, 303), 1);
    assert_eq!(mock.state().card_count(DEMO_VAULT_ID), Some(1));

    mock.state().set_duplicate_card_check(DEMO_VAULT_ID, false);
    let third = vault
        .insert(InsertRequest::card(card()))
        .await
        .expect("201");
    assert!(!third.already_stored);
    assert_ne!(third.connector_vault_id, first.connector_vault_id);
}

#[tokio::test]
async fn without_read_pci_retrieve_returns_typed_aliases_not_an_empty_card() {
    let mock = mock_with(config()).await;
    let stored = pci(&mock)
        .insert(InsertRequest::card(card()))
        .await
        .expect("insert");
    let view = non_pci(&mock)
        .retrieve(RetrieveRequest::new(stored.connector_vault_id.clone()))
        .await
        .expect("non-PCI view is a success");
    assert!(view.card().is_none());
    let PaymentMethodData::CardAliases(aliases) = &view.payment_method else {
        panic!("{view:?}");
    };
    assert_eq!(Some(aliases), stored.card_aliases.as_ref());
    assert_eq!(aliases.exp_month.get(), 4);
    assert_eq!(aliases.exp_year.get(), 2030);
    assert!(!format!("{view:?}").contains("4111111111111111"));
}

#[tokio::test]
async fn the_cvc_comes_back_while_its_window_is_open_then_is_none_and_expired() {
    let clock = MockClock::manual();
    let mock = mock_with(
        config()
            .with_clock(clock.clone())
            .with_cvc_window(Duration::from_secs(3600))
            .with_token_lifetime(Duration::from_secs(4 * 3600)),
    )
    .await;
    let vault = pci(&mock);
    let stored = vault
        .insert(InsertRequest::card(card()))
        .await
        .expect("insert");
    let id = stored.connector_vault_id;
    clock.advance(Duration::from_secs(3599));
    let back = vault
        .retrieve(RetrieveRequest::new(id.clone()))
        .await
        .expect("open");
    assert!(back.card().and_then(|c| c.cvc.as_ref()).is_some());

    clock.advance(Duration::from_secs(1));
    let back = vault
        .retrieve(RetrieveRequest::new(id.clone()))
        .await
        .expect("closed");
    let card_back = back.card().expect("the card itself stays");
    assert!(
        card_back.cvc.is_none(),
        "an expired CVC is None, not an error"
    );
    assert_eq!(card_back.number, card().number);
    let aliases = non_pci(&mock)
        .retrieve(RetrieveRequest::new(id))
        .await
        .expect("non-pci");
    assert_eq!(
        aliases.card_aliases().and_then(|a| a.cvc_status),
        Some(CvcStatus::Expired)
    );
}

#[tokio::test]
async fn with_the_duplicate_check_off_delete_removes_the_card_and_it_is_then_not_found() {
    let mock = mock_with(config()).await;
    mock.state().set_duplicate_card_check(DEMO_VAULT_ID, false);
    let vault = builder(&mock)
        .duplicate_card_check(false)
        .build()
        .expect("connector");
    let id = vault
        .insert(InsertRequest::card(card()))
        .await
        .expect("insert")
        .connector_vault_id;
    let deleted = vault
        .delete(DeleteRequest::new(id.clone()))
        .await
        .expect("delete");
    assert_eq!(deleted.removed(), [card_id(&id)]);
    assert_eq!(deleted.records[0].part, StoredPart::CardObject);
    let err = vault
        .retrieve(RetrieveRequest::new(id.clone()))
        .await
        .expect_err("gone");
    assert_eq!(err.kind(), VaultError::AliasNotFound);
    assert!(
        err.summary().contains(card_id(&id).as_str()),
        "{}",
        err.summary()
    );
    let again = vault
        .delete(DeleteRequest::new(id.clone()))
        .await
        .expect("idempotent");
    assert_eq!(again.already_gone(), [card_id(&id)]);
    assert_eq!(mock.stats().api_count(Route::DeleteCard, 204), 1);
    assert_eq!(mock.stats().api_count(Route::DeleteCard, 404), 1);
}

#[tokio::test]
async fn with_the_duplicate_check_on_delete_keeps_the_shared_card_and_erase_removes_it() {
    let mock = mock_with(config()).await;
    let vault = pci(&mock);
    // Two customers save the same card: CMP gives both the same card id (303).
    let first = vault
        .insert(InsertRequest::card(card()))
        .await
        .expect("insert");
    let second = vault
        .insert(InsertRequest::card(card()))
        .await
        .expect("insert");
    assert!(second.already_stored);
    assert_eq!(first.connector_vault_id, second.connector_vault_id);

    let deleted = vault
        .delete(DeleteRequest::new(first.connector_vault_id.clone()))
        .await
        .expect("delete");
    assert_eq!(deleted.scope, DeleteScope::PaymentMethod);
    assert_eq!(
        deleted.records[0].action,
        RecordAction::Kept(KeptBecause::SharedByValue)
    );
    assert_eq!(mock.stats().api_total(Route::DeleteCard), 0, "nothing sent");
    let back = vault
        .retrieve(RetrieveRequest::new(second.connector_vault_id.clone()))
        .await
        .expect("the other customer's card still reads");
    assert_eq!(back.card(), Some(&card()));

    let erased = vault
        .erase(EraseRequest::cardholder_data(
            first.connector_vault_id.clone(),
        ))
        .await
        .expect("erase");
    assert_eq!(erased.scope, DeleteScope::EveryHolder);
    assert_eq!(erased.removed(), [card_id(&first.connector_vault_id)]);
    let err = vault
        .retrieve(RetrieveRequest::new(second.connector_vault_id))
        .await
        .expect_err("erased for every holder");
    assert_eq!(err.kind(), VaultError::AliasNotFound);
}

#[tokio::test]
async fn a_pan_alias_unknown_to_the_vault_is_a_422_naming_code_and_field() {
    let mock = mock_with(config()).await;
    let aliases = CardAliases::new(
        Alias::new("tok_sandbox_neverIssued").expect("alias"),
        "1111",
        ExpiryMonth::new(4).expect("month"),
        ExpiryYear::new(2030).expect("year"),
    )
    .expect("aliases");
    let request = InsertRequest::new(PaymentMethodData::CardAliases(aliases));
    let err = pci(&mock).insert(request).await.expect_err("422");
    assert_eq!(
        (err.kind(), err.http_status()),
        (VaultError::InvalidRequest, Some(422))
    );
    assert!(
        err.summary()
            .contains("code failed-dependency, field pan_alias"),
        "{}",
        err.summary()
    );
    assert_eq!(
        mock.stats().api_total(Route::CreateCard),
        1,
        "4xx is not retried"
    );
}

#[tokio::test]
async fn a_holder_name_is_refused_before_anything_is_sent() {
    let mock = mock_with(config()).await;
    let named: Card = serde_json::from_str(
        r#"{"card_number":"4111111111111111","card_exp_month":"04","card_exp_year":"2030","card_holder_name":"Ada Lovelace"}"#,
    )
    .expect("card");
    let err = pci(&mock)
        .insert(InsertRequest::card(named))
        .await
        .expect_err("name");
    assert_eq!(err.kind(), VaultError::InvalidRequest);
    assert!(err.summary().contains("holder name"), "{}", err.summary());
    assert_eq!(mock.stats().api_total(Route::CreateCard), 0);
}

#[tokio::test]
async fn a_500_is_sent_once_and_a_503_is_retried_until_it_passes() {
    let mock = mock_with(config()).await;
    let vault = pci(&mock);
    mock.fail_next(Route::CreateCard, 1, FailWith::Status(500));
    let err = vault
        .insert(InsertRequest::card(card()))
        .await
        .expect_err("500");
    assert_eq!(err.kind(), VaultError::ServerError);
    assert!(!err.is_retryable());
    assert_eq!(
        mock.stats().api_total(Route::CreateCard),
        1,
        "CMP: never retry a 500"
    );

    mock.fail_next(Route::CreateCard, 2, FailWith::Status(503));
    let stored = vault
        .insert(InsertRequest::card(card()))
        .await
        .expect("third attempt passes");
    assert!(!stored.already_stored);
    let stats = mock.stats();
    assert_eq!(stats.api_count(Route::CreateCard, 503), 2);
    assert_eq!(stats.api_count(Route::CreateCard, 201), 1);
    assert_eq!(stats.api_total(Route::CreateCard), 4);

    mock.fail_next(Route::GetCard, 3, FailWith::Status(503));
    let err = vault
        .retrieve(RetrieveRequest::new(stored.connector_vault_id))
        .await
        .expect_err("3 attempts, all 503");
    assert_eq!((err.kind(), err.attempt()), (VaultError::Upstream, Some(3)));
    assert_eq!(mock.stats().api_count(Route::GetCard, 503), 3);
}

#[tokio::test]
async fn a_missing_scope_is_forbidden_and_named() {
    let mock = mock_with(config()).await;
    let reader = builder(&mock)
        .scopes(["cards:read"])
        .build()
        .expect("connector");
    let err = reader
        .insert(InsertRequest::card(card()))
        .await
        .expect_err("403");
    assert_eq!(err.kind(), VaultError::Forbidden);
    assert!(err.summary().contains("cards:write"), "{}", err.summary());
    // Asking for a scope the client was not granted fails at the token endpoint.
    let greedy = non_pci(&mock);
    let greedy = CmpConnector::builder()
        .credentials(NON_PCI, NON_PCI_SECRET.to_owned().into())
        .vault_id(greedy.vault_id().as_str())
        .endpoint(mock.base_url())
        .scopes(["cards:read-pci"])
        .build()
        .expect("connector");
    let err = greedy.check().await.expect_err("invalid_scope");
    assert_eq!(err.kind(), VaultError::Forbidden);
    assert!(pci(&mock).check().await.is_ok());
}

#[tokio::test]
async fn a_token_cmp_rejects_with_401_is_replaced_once() {
    let clock = MockClock::manual();
    let mock = mock_with(config().with_clock(clock.clone())).await;
    let vault = pci(&mock);
    let id = vault
        .insert(InsertRequest::card(card()))
        .await
        .expect("insert")
        .connector_vault_id;
    // The mock's token expires; the connector's clock still thinks it valid.
    clock.advance(Duration::from_secs(301));
    vault
        .retrieve(RetrieveRequest::new(id))
        .await
        .expect("a fresh token after the 401");
    let stats = mock.stats();
    assert_eq!(stats.token_requests, 2);
    assert_eq!(stats.expired_token_rejections, 1);
    assert_eq!(stats.api_count(Route::GetCard, 401), 1);
}

#[tokio::test]
async fn a_wrong_cmp_secret_is_invalid_credentials() {
    let mock = mock_with(config()).await;
    let vault = builder(&mock)
        .credentials(DEMO_CMP_CLIENT_ID, "wrong-secret".to_owned().into())
        .build()
        .expect("connector");
    let err = vault
        .insert(InsertRequest::card(card()))
        .await
        .expect_err("401");
    assert_eq!(err.kind(), VaultError::InvalidCredentials);
    assert_eq!(mock.stats().token_requests, 1);
    assert_eq!(mock.stats().api_total(Route::CreateCard), 0);
}
