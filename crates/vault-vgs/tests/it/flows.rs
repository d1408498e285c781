//! Round trips against an in-process vgs-mock: per-field and single-id, v2 and v1,
//! CVC kept volatile (checked on the mock's side) and expiring, delete that never
//! breaks another card (fingerprinting on and off), erase, missing fields, isolation.

use std::sync::Arc;
use std::time::Duration;

use vault_core::{
    AliasFormat, CardField, ConnectorVaultId, DeleteRequest, DeleteScope, EraseRequest,
    ExternalVault, InsertRequest, KeptBecause, MissingReason, RecordAction, ReportExt,
    RetrieveRequest, Storage, StoredPart, TokenizationMode, VaultError,
};
use vault_vgs::{ApiGeneration, Fingerprinting, VgsConnector};
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
    let ConnectorVaultId::Single {
        id, cvc: Some(cvc), ..
    } = &stored.connector_vault_id
    else {
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

/// A mock whose vault has fingerprinting off, and a connector configured so.
async fn unfingerprinted() -> (vgs_mock::MockHandle, VgsConnector) {
    let mock = mock_with(MockConfig::demo().with_fingerprinting(false)).await;
    let vault = crate::support::builder(&mock)
        .fingerprinting(Fingerprinting::Off)
        .build()
        .expect("connector");
    (mock, vault)
}

#[tokio::test]
async fn without_fingerprinting_delete_removes_every_record_and_a_second_finds_them_gone() {
    let (mock, vault) = unfingerprinted().await;
    let stored = vault
        .insert(InsertRequest::card(card()))
        .await
        .expect("insert");
    let id = stored.connector_vault_id;
    let aliases: Vec<_> = fields(&id).values().map(|f| f.alias.clone()).collect();

    let deleted = vault
        .delete(DeleteRequest::new(id.clone()))
        .await
        .expect("delete");
    assert_eq!(deleted.scope, DeleteScope::PaymentMethod);
    assert_eq!(
        deleted.removed().len(),
        4,
        "number, expiry month and year, CVC"
    );
    assert!(deleted.kept().is_empty());
    for alias in &aliases {
        assert!(
            mock.record(DEMO_VAULT_ID, alias.as_str()).is_none(),
            "{alias}"
        );
    }
    let number = &fields(&id)[&CardField::CardNumber].alias;
    let err = vault
        .retrieve(RetrieveRequest::new(id.clone()))
        .await
        .expect_err("deleted");
    assert_eq!(err.kind(), VaultError::AliasNotFound);
    assert!(
        err.details()
            .iter()
            .any(|d| d.contains(number.as_str()) && d.contains("card_number")),
        "{:?}",
        err.details()
    );

    let again = vault
        .delete(DeleteRequest::new(id))
        .await
        .expect("second delete");
    assert!(again.removed().is_empty());
    assert_eq!(again.already_gone().len(), 4);
}

/// The card of the first reproduction: another number, the same holder.
fn holder_card(number: &str) -> vault_core::Card {
    let mut card = card();
    card.number = number.parse().expect("valid");
    card.holder_name = Some("John Smith".parse().expect("valid"));
    card
}

#[tokio::test]
async fn deleting_a_card_never_breaks_another_that_shares_its_values() {
    // Issue #17's reproductions, with fingerprinting on (the default) and off: A and B
    // share a holder name, C and D a card number (one card saved by two customers);
    // all four share expiry and CVC.
    for fingerprinting in [Fingerprinting::On, Fingerprinting::Off] {
        let mock = mock_with(MockConfig::demo().with_fingerprinting(fingerprinting.is_on())).await;
        let vault = crate::support::builder(&mock)
            .fingerprinting(fingerprinting)
            .build()
            .expect("connector");
        let a = holder_card("4111111111111111");
        let b = holder_card("5555555555554444");
        let c = card();
        let d = card();
        let mut ids = Vec::new();
        for card in [&a, &b, &c, &d] {
            let stored = vault
                .insert(InsertRequest::card(card.clone()))
                .await
                .expect("insert");
            ids.push(stored.connector_vault_id);
        }
        let shared = |x: usize, y: usize, field| fields(&ids[x])[&field] == fields(&ids[y])[&field];
        assert_eq!(
            shared(0, 1, CardField::CardHolderName),
            fingerprinting.is_on()
        );
        assert_eq!(shared(2, 3, CardField::CardNumber), fingerprinting.is_on());

        let deleted_a = vault
            .delete(DeleteRequest::new(ids[0].clone()))
            .await
            .expect("delete A");
        let deleted_c = vault
            .delete(DeleteRequest::new(ids[2].clone()))
            .await
            .expect("delete C");
        for deleted in [&deleted_a, &deleted_c] {
            match fingerprinting {
                Fingerprinting::On => {
                    assert!(
                        deleted.removed().is_empty(),
                        "{fingerprinting}: {deleted:?}"
                    );
                    assert!(
                        deleted
                            .records
                            .iter()
                            .all(|r| r.action == RecordAction::Kept(KeptBecause::SharedByValue))
                    );
                }
                Fingerprinting::Off => {
                    assert!(deleted.kept().is_empty(), "{fingerprinting}: {deleted:?}");
                    assert_eq!(deleted.removed().len(), deleted.records.len());
                }
            }
        }
        for (id, expected) in [(&ids[1], &b), (&ids[3], &d)] {
            let back = vault
                .retrieve(RetrieveRequest::new(id.clone()))
                .await
                .unwrap_or_else(|e| panic!("{fingerprinting}: the other card broke: {e:?}"));
            assert!(
                back.missing.is_empty(),
                "{fingerprinting}: {:?}",
                back.missing
            );
            assert_eq!(back.card(), Some(expected), "{fingerprinting}");
        }
    }
}

#[tokio::test]
async fn a_single_id_record_is_the_cards_own_and_delete_removes_it_even_with_fingerprinting() {
    let mock = mock().await;
    let vault = connector(&mock);
    let insert = || vault.insert(InsertRequest::card(card()).with_mode(TokenizationMode::SingleId));
    let first = insert().await.expect("insert").connector_vault_id;
    let second = insert().await.expect("insert").connector_vault_id;
    let record = |id: &ConnectorVaultId| match id {
        ConnectorVaultId::Single { id, .. } => id.clone(),
        ConnectorVaultId::Multi(_) => panic!("single id expected"),
    };
    assert_ne!(
        record(&first),
        record(&second),
        "equal cards, records of their own"
    );
    let deleted = vault
        .delete(DeleteRequest::new(first.clone()))
        .await
        .expect("delete");
    let actions: Vec<_> = deleted.records.iter().map(|r| (r.part, r.action)).collect();
    assert_eq!(
        actions,
        [
            (StoredPart::WholeCard, RecordAction::Removed),
            (
                StoredPart::Field(CardField::CardCvc),
                RecordAction::Kept(KeptBecause::SharedByValue)
            ),
        ]
    );
    assert!(
        mock.record(DEMO_VAULT_ID, record(&first).as_str())
            .is_none()
    );
    let back = vault
        .retrieve(RetrieveRequest::new(second))
        .await
        .expect("the other card reads");
    assert_eq!(back.card(), Some(&card()), "CVC included: it was kept");
}

#[tokio::test]
async fn erase_removes_a_value_everywhere_and_says_so() {
    let mock = mock().await;
    let vault = connector(&mock);
    let c = vault
        .insert(InsertRequest::card(card()))
        .await
        .expect("insert");
    let d = vault
        .insert(InsertRequest::card(card()))
        .await
        .expect("insert");
    // The same number also has an alias in another format (another connector's).
    let other_format = crate::support::builder(&mock)
        .card_number_format(AliasFormat::Uuid)
        .build()
        .expect("connector");
    let e = other_format
        .insert(InsertRequest::card(card()))
        .await
        .expect("insert");
    let number_aliases: Vec<_> = [&c, &e]
        .iter()
        .map(|s| {
            fields(&s.connector_vault_id)[&CardField::CardNumber]
                .alias
                .clone()
        })
        .collect();
    assert_ne!(number_aliases[0], number_aliases[1]);

    let erased = vault
        .erase(EraseRequest::fields(
            c.connector_vault_id.clone(),
            [CardField::CardNumber],
        ))
        .await
        .expect("erase");
    assert_eq!(erased.scope, DeleteScope::EveryHolder);
    let removed: Vec<_> = erased.removed().into_iter().cloned().collect();
    for alias in &number_aliases {
        assert!(removed.contains(alias), "{alias} in {removed:?}");
        assert!(mock.record(DEMO_VAULT_ID, alias.as_str()).is_none());
    }
    assert!(
        erased
            .records
            .iter()
            .all(|r| r.part == StoredPart::Field(CardField::CardNumber))
    );
    // Every holder of that number lost it; what was not named stays.
    for id in [&d.connector_vault_id, &e.connector_vault_id] {
        let err = vault
            .retrieve(RetrieveRequest::new(id.clone()))
            .await
            .expect_err("number erased");
        assert_eq!(err.kind(), VaultError::AliasNotFound);
    }
    let month = &fields(&d.connector_vault_id)[&CardField::CardExpMonth].alias;
    assert!(mock.record(DEMO_VAULT_ID, month.as_str()).is_some());
    let again = vault
        .erase(EraseRequest::fields(
            c.connector_vault_id,
            [CardField::CardNumber],
        ))
        .await
        .expect("erase again");
    assert_eq!(again.already_gone().len(), 1);
}

#[tokio::test]
async fn without_shared_records_erase_says_it_reached_only_this_cards_records() {
    // Fingerprinting off: another card's equal number is a record of its own, which
    // erase cannot find; the answer says so instead of claiming "everywhere".
    let (_mock, vault) = unfingerprinted().await;
    let c = vault
        .insert(InsertRequest::card(card()))
        .await
        .expect("insert");
    let d = vault
        .insert(InsertRequest::card(card()))
        .await
        .expect("insert");
    let erased = vault
        .erase(EraseRequest::cardholder_data(c.connector_vault_id.clone()))
        .await
        .expect("erase");
    assert_eq!(erased.scope, DeleteScope::ReachableRecords);
    assert!(!erased.removed().is_empty());
    let back = vault
        .retrieve(RetrieveRequest::new(d.connector_vault_id))
        .await
        .expect("the other card's own records stay");
    assert_eq!(back.card().map(|c| &c.number), Some(&card().number));

    // A single-id record is one card's own, whatever the vault's setting.
    let mock = mock().await;
    let vault = connector(&mock);
    let single = vault
        .insert(InsertRequest::card(card()).with_mode(TokenizationMode::SingleId))
        .await
        .expect("insert");
    let erased = vault
        .erase(EraseRequest::cardholder_data(single.connector_vault_id))
        .await
        .expect("erase");
    assert_eq!(erased.scope, DeleteScope::ReachableRecords);
}

#[tokio::test]
async fn a_field_whose_record_vanished_is_reported_never_dropped() {
    let mock = mock().await;
    let vault = connector(&mock);
    let a = vault
        .insert(InsertRequest::card(holder_card("4111111111111111")))
        .await
        .expect("insert");
    let holder = fields(&a.connector_vault_id)[&CardField::CardHolderName]
        .alias
        .clone();
    let cvc = fields(&a.connector_vault_id)[&CardField::CardCvc]
        .alias
        .clone();
    // Someone erases the holder name and the CVC (e.g. in the dashboard).
    assert!(mock.state().delete_alias(DEMO_VAULT_ID, holder.as_str()));
    assert!(mock.state().delete_alias(DEMO_VAULT_ID, cvc.as_str()));
    let back = vault
        .retrieve(RetrieveRequest::new(a.connector_vault_id))
        .await
        .expect("number and expiry are there");
    let card = back.card().expect("card");
    assert!(card.holder_name.is_none() && card.cvc.is_none());
    assert!(!back.is_complete());
    let missing: Vec<_> = back.missing.iter().map(|m| (m.field, m.reason)).collect();
    assert_eq!(
        missing,
        // In field order.
        [
            (CardField::CardCvc, MissingReason::Gone),
            (CardField::CardHolderName, MissingReason::Gone),
        ]
    );
}

#[tokio::test]
async fn a_cvc_past_its_hour_is_expired_not_gone() {
    // Whole seconds: the mock's `created_at` has no fraction.
    let clock = MockClock::manual_at(std::time::UNIX_EPOCH + Duration::from_secs(1_704_067_200));
    let mock = mock_with(MockConfig::demo().with_clock(clock.clone())).await;
    let vault = crate::support::builder(&mock)
        .wall_clock(Arc::new(crate::support::WallOf(clock.clone())))
        .build()
        .expect("connector");
    let stored = vault
        .insert(InsertRequest::card(card()))
        .await
        .expect("insert");
    let cvc = &fields(&stored.connector_vault_id)[&CardField::CardCvc];
    assert_eq!(
        cvc.expires_at,
        Some(clock.now() + Duration::from_secs(3600))
    );
    clock.advance(Duration::from_secs(3600));
    let back = vault
        .retrieve(RetrieveRequest::new(stored.connector_vault_id.clone()))
        .await
        .expect("retrieve");
    assert_eq!(back.card().and_then(|c| c.cvc.as_ref()), None);
    assert!(back.is_complete(), "an expired CVC is documented, not lost");
    assert_eq!(back.missing[0].reason, MissingReason::Expired);

    // A card stored 50 minutes after an equal CVC shares its record: its CVC goes
    // when that record's hour ends, and it is reported as expired then, not gone.
    let first = vault
        .insert(InsertRequest::card(card()))
        .await
        .expect("insert");
    clock.advance(Duration::from_secs(50 * 60));
    let later = vault
        .insert(InsertRequest::card(card()))
        .await
        .expect("insert");
    let later_cvc = &fields(&later.connector_vault_id)[&CardField::CardCvc];
    assert_eq!(
        later_cvc,
        &fields(&first.connector_vault_id)[&CardField::CardCvc]
    );
    assert_eq!(
        later_cvc.expires_at,
        Some(clock.now() + Duration::from_secs(600))
    );
    clock.advance(Duration::from_secs(600));
    let back = vault
        .retrieve(RetrieveRequest::new(later.connector_vault_id))
        .await
        .expect("retrieve");
    assert_eq!(back.missing[0].reason, MissingReason::Expired);
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
    // The same records; a CVC's expiry may be estimated tighter the second time
    // (the vault's creation time, at second resolution, can only be used once it
    // is not after the request was sent).
    assert_eq!(
        first.connector_vault_id.aliases(),
        second.connector_vault_id.aliases()
    );
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
