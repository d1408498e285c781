//! Round trips against an in-process vgs-mock: per-field and single-id, v2 and v1,
//! CVC kept volatile (checked on the mock's side) and expiring, delete, isolation.

use std::sync::Arc;
use std::time::Duration;

use vault_core::{
    AliasFormat, CardField, ConnectorVaultId, DeleteRequest, ExternalVault, InsertRequest,
    ReportExt, RetrieveRequest, Storage, TokenizationMode, VaultError,
};
use vault_vgs::{ApiGeneration, VgsConnector};
use vgs_mock::{DEMO_V1_PASSWORD, DEMO_V1_USERNAME, MockClock, MockConfig};

use crate::support::{DEMO_VAULT_ID, card, connector, mock, mock_with};

fn fields(id: &ConnectorVaultId) -> &vault_core::FieldAliases {
    match id {
        ConnectorVaultId::Multi(fields) => fields,
        ConnectorVaultId::Single { .. } => panic!("expected per-field aliases"),
    }
}

#[tokio::test]
async fn per_field_round_trip_keeps_bin_and_last_four_in_the_card_alias() {
    let mock = mock().await;
    let vault: Arc<dyn ExternalVault> = Arc::new(connector(&mock));
    let stored = vault
        .insert(InsertRequest::card(card()))
        .await
        .expect("insert");
    let fields = fields(&stored.connector_vault_id);
    assert_eq!(fields.len(), 4);
    let number = &fields[&CardField::CardNumber];
    assert_eq!(number.format, AliasFormat::FpeSixTFour);
    assert!(number.alias.as_str().starts_with("411111") && number.alias.as_str().ends_with("1111"));
    assert_ne!(number.alias.as_str(), "4111111111111111");

    let back = vault
        .retrieve(RetrieveRequest::new(stored.connector_vault_id.clone()))
        .await
        .expect("retrieve");
    assert_eq!(back.card(), Some(&card()));
}

#[tokio::test]
async fn cvc_is_stored_volatile_and_everything_else_persistent() {
    let mock = mock().await;
    let stored = connector(&mock)
        .insert(InsertRequest::card(card()))
        .await
        .expect("insert");
    for (field, alias) in fields(&stored.connector_vault_id) {
        let record = mock
            .record(DEMO_VAULT_ID, alias.alias.as_str())
            .expect("record on the mock");
        let expected = if *field == CardField::CardCvc {
            vgs_mock::Storage::Volatile
        } else {
            vgs_mock::Storage::Persistent
        };
        assert_eq!(record.storage, expected, "{field}");
        assert_eq!(
            alias.storage == Storage::Volatile,
            *field == CardField::CardCvc
        );
    }
}

#[tokio::test]
async fn single_id_mode_still_keeps_the_cvc_apart_and_volatile() {
    let mock = mock().await;
    let vault = connector(&mock);
    let stored = vault
        .insert(InsertRequest::card(card()).with_mode(TokenizationMode::SingleId))
        .await
        .expect("insert");
    let ConnectorVaultId::Single { id, cvc: Some(cvc) } = &stored.connector_vault_id else {
        panic!("single id with a cvc alias: {stored:?}");
    };
    let whole = mock
        .record(DEMO_VAULT_ID, id.as_str())
        .expect("card record");
    assert_eq!(whole.storage, vgs_mock::Storage::Persistent);
    assert!(
        !whole.value.contains("\"123\""),
        "the CVC must not be inside the persistent card record"
    );
    assert_eq!(
        mock.record(DEMO_VAULT_ID, cvc.as_str())
            .expect("cvc record")
            .storage,
        vgs_mock::Storage::Volatile
    );
    let back = vault
        .retrieve(RetrieveRequest::new(stored.connector_vault_id))
        .await
        .expect("retrieve");
    assert_eq!(back.card(), Some(&card()));
}

#[tokio::test]
async fn an_expired_cvc_comes_back_absent_not_as_an_error() {
    let clock = MockClock::manual();
    let mock = mock_with(
        MockConfig::demo()
            .with_clock(clock.clone())
            .with_token_lifetime(Duration::from_secs(86_400)),
    )
    .await;
    let vault = connector(&mock);
    let stored = vault
        .insert(InsertRequest::card(card()))
        .await
        .expect("insert");
    clock.advance(vgs_mock::VOLATILE_TTL + Duration::from_secs(1));
    let back = vault
        .retrieve(RetrieveRequest::new(stored.connector_vault_id))
        .await
        .expect("retrieve");
    let card_back = back.card().expect("card");
    assert!(card_back.cvc.is_none());
    assert_eq!(card_back.number, card().number);
}

#[tokio::test]
async fn v1_round_trip_with_access_credentials() {
    let mock = mock().await;
    let vault = VgsConnector::builder()
        .api(ApiGeneration::V1)
        .credentials(DEMO_V1_USERNAME, DEMO_V1_PASSWORD.to_owned().into())
        .vault_id(DEMO_VAULT_ID)
        .endpoint(mock.base_url())
        .build()
        .expect("connector");
    for mode in [TokenizationMode::PerField, TokenizationMode::SingleId] {
        let stored = vault
            .insert(InsertRequest::card(card()).with_mode(mode))
            .await
            .expect("insert");
        let back = vault
            .retrieve(RetrieveRequest::new(stored.connector_vault_id))
            .await
            .expect("retrieve");
        assert_eq!(back.card(), Some(&card()));
    }
    assert_eq!(mock.stats().token_requests, 0, "v1 needs no token");
    assert_eq!(vault.token_fetches(), None);
}

#[tokio::test]
async fn delete_removes_the_card_and_a_second_delete_finds_it_gone() {
    let mock = mock().await;
    let vault = connector(&mock);
    let stored = vault
        .insert(InsertRequest::card(card()))
        .await
        .expect("insert");
    let id = stored.connector_vault_id;
    let number = fields(&id)[&CardField::CardNumber].alias.clone();
    let cvc = fields(&id)[&CardField::CardCvc].alias.clone();

    let deleted = vault
        .delete(DeleteRequest::new(id.clone()))
        .await
        .expect("delete");
    assert_eq!(deleted.removed.len(), 2, "card number and CVC");
    assert!(deleted.removed.contains(&number) && deleted.removed.contains(&cvc));
    assert_eq!(deleted.retained.len(), 2, "shared expiry records stay");
    assert!(mock.record(DEMO_VAULT_ID, number.as_str()).is_none());
    assert!(mock.record(DEMO_VAULT_ID, cvc.as_str()).is_none());

    let err = vault
        .retrieve(RetrieveRequest::new(id.clone()))
        .await
        .expect_err("deleted");
    assert_eq!(err.kind(), VaultError::AliasNotFound);
    assert!(
        err.details().iter().any(|d| d.contains(number.as_str())),
        "{:?}",
        err.details()
    );

    let again = vault
        .delete(DeleteRequest::new(id))
        .await
        .expect("second delete");
    assert!(again.removed.is_empty());
    assert_eq!(again.already_gone.len(), 2);
}

#[tokio::test]
async fn deleting_one_card_leaves_another_with_the_same_expiry_intact() {
    let mock = mock().await;
    let vault = connector(&mock);
    let mut other = card();
    other.number = "5555555555554444".parse().expect("valid");
    let first = vault
        .insert(InsertRequest::card(card()))
        .await
        .expect("insert");
    let second = vault
        .insert(InsertRequest::card(other.clone()))
        .await
        .expect("insert");
    // Fingerprinting: both cards share the expiry records.
    assert_eq!(
        fields(&first.connector_vault_id)[&CardField::CardExpMonth],
        fields(&second.connector_vault_id)[&CardField::CardExpMonth]
    );
    vault
        .delete(DeleteRequest::new(first.connector_vault_id))
        .await
        .expect("delete");
    let back = vault
        .retrieve(RetrieveRequest::new(second.connector_vault_id))
        .await
        .expect("other card intact");
    assert_eq!(back.card().map(|c| &c.number), Some(&other.number));
    assert_eq!(back.card().map(|c| c.exp_month), Some(other.exp_month));
}

#[tokio::test]
async fn an_alias_from_one_vault_is_not_found_in_another() {
    let mock =
        mock_with(MockConfig::demo().with_vault("tntother0002", "other-user", "other-pass")).await;
    let home = connector(&mock);
    let stored = home
        .insert(InsertRequest::card(card()))
        .await
        .expect("insert");
    let elsewhere = crate::support::builder(&mock)
        .vault_id("tntother0002")
        .build()
        .expect("connector");
    let err = elsewhere
        .retrieve(RetrieveRequest::new(stored.connector_vault_id.clone()))
        .await
        .expect_err("isolated");
    assert_eq!(err.kind(), VaultError::AliasNotFound);
    assert!(
        home.retrieve(RetrieveRequest::new(stored.connector_vault_id))
            .await
            .is_ok()
    );
}

#[tokio::test]
async fn inserting_the_same_card_twice_returns_the_same_aliases() {
    let mock = mock().await;
    let vault = connector(&mock);
    let first = vault
        .insert(InsertRequest::card(card()))
        .await
        .expect("insert");
    let records = mock.record_count(DEMO_VAULT_ID).expect("vault");
    let second = vault
        .insert(InsertRequest::card(card()))
        .await
        .expect("insert");
    assert_eq!(first.connector_vault_id, second.connector_vault_id);
    assert_eq!(mock.record_count(DEMO_VAULT_ID), Some(records));
}

#[tokio::test]
async fn check_reports_working_credentials_and_names_what_is_wrong() {
    let mock = mock().await;
    connector(&mock)
        .check()
        .await
        .expect("demo credentials work");
    let wrong = crate::support::builder(&mock)
        .credentials(
            crate::support::DEMO_CLIENT_ID,
            "not-the-secret".to_owned().into(),
        )
        .build()
        .expect("connector");
    assert_eq!(
        wrong.check().await.expect_err("bad secret").kind(),
        VaultError::InvalidCredentials
    );
}
