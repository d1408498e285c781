//! Adopting vaultlink where Hyperswitch's VGS connector (or VGS Collect) stored the
//! cards: their records read back, field subsets, network tokens, compact ids.

use std::time::Duration;

use vault_core::{Alias, AliasFormat, ExternalVault};
use vault_core::{
    CardField, CardFields, CardNumber, ConnectorVaultId, Cryptogram, Cvc, DeleteRequest,
    ExpiryMonth, ExpiryYear, FieldAlias, FieldAliases, InsertRequest, MissingReason, NetworkToken,
    PaymentMethodData, RecordAction, ReportExt, RetrieveRequest, Storage, VaultError,
};
use vgs_mock::{HyperswitchLayout, LegacyCard, LegacyStored, MockClock, MockConfig};

use crate::support::{card, connector, mock, mock_with};

const VAULT: &str = vgs_mock::DEMO_VAULT_ID;

fn legacy(cvc: Option<&str>) -> LegacyCard {
    LegacyCard {
        card_number: "4111111111111111".to_owned(),
        card_exp_month: "04".to_owned(),
        card_exp_year: "2030".to_owned(),
        card_cvc: cvc.map(str::to_owned),
    }
}

fn store(
    mock: &vgs_mock::MockHandle,
    card: &LegacyCard,
    layout: HyperswitchLayout,
) -> LegacyStored {
    mock.state()
        .store_legacy_card(VAULT, card, layout)
        .expect("demo vault")
        .expect("stored")
}

fn alias(text: &str) -> Alias {
    Alias::new(text).expect("alias")
}

/// `value` stored as one persistent record with Hyperswitch's classifier, as a
/// single id.
fn single_record(mock: &vgs_mock::MockHandle, value: &str) -> ConnectorVaultId {
    let alias = mock
        .state()
        .store_value(
            VAULT,
            value,
            &["data"],
            vgs_mock::AliasFormat::Uuid,
            vgs_mock::Storage::Persistent,
        )
        .expect("vault")
        .expect("stored");
    ConnectorVaultId::Single {
        id: Alias::new(&alias).unwrap(),
        cvc: None,
        cvc_expires_at: None,
    }
}

/// A mock on a manual clock (whole seconds, as the vault's `created_at`), with tokens
/// that outlive its advances, and a connector that sees the same time.
async fn clocked() -> (MockClock, vgs_mock::MockHandle, vault_vgs::VgsConnector) {
    let clock = MockClock::manual_at(std::time::UNIX_EPOCH + Duration::from_secs(1_704_067_200));
    let mock = mock_with(
        MockConfig::demo()
            .with_clock(clock.clone())
            .with_token_lifetime(Duration::from_secs(86_400)),
    )
    .await;
    let vault = crate::support::builder(&mock)
        .wall_clock(std::sync::Arc::new(crate::support::WallOf(clock.clone())))
        .build()
        .expect("connector");
    (clock, mock, vault)
}

/// A network token of the public test kind.
fn network_token() -> NetworkToken {
    NetworkToken::new(
        CardNumber::new("4895370012003478").unwrap(),
        ExpiryMonth::new(12).unwrap(),
        ExpiryYear::new(2031).unwrap(),
    )
}

/// The id Hyperswitch kept, read as vaultlink does (through its `VaultIdType`).
fn id_of(stored: &LegacyStored) -> ConnectorVaultId {
    let json = vgs_mock::legacy_id_json(stored);
    match stored {
        LegacyStored::Collect {
            card_number,
            card_cvc,
        } => {
            let mut fields = FieldAliases::new();
            fields.insert(
                CardField::CardNumber,
                FieldAlias::new(
                    alias(card_number),
                    AliasFormat::FpeSixTFour,
                    Storage::Persistent,
                ),
            );
            if let Some(cvc) = card_cvc {
                fields.insert(
                    CardField::CardCvc,
                    FieldAlias::new(alias(cvc), AliasFormat::Uuid, Storage::Volatile),
                );
            }
            ConnectorVaultId::Multi(fields)
        }
        _ => {
            let id: vault_core::hyperswitch::VaultIdType =
                serde_json::from_value(json).expect("VaultIdType");
            ConnectorVaultId::try_from(&id).expect("id")
        }
    }
}

#[tokio::test]
async fn a_hyperswitch_single_token_record_reads_with_the_cvc_inside() {
    let mock = mock().await;
    let vault = connector(&mock);
    for cvc in [Some("123"), None] {
        let stored = store(&mock, &legacy(cvc), HyperswitchLayout::SingleToken);
        let back = vault
            .retrieve(RetrieveRequest::new(id_of(&stored)))
            .await
            .expect("retrieve");
        let card = back.card().expect("card");
        assert_eq!(card.number.expose_secret(), "4111111111111111");
        assert_eq!((card.exp_month.get(), card.exp_year.get()), (4, 2030));
        assert_eq!(card.cvc.as_ref().map(Cvc::expose_secret), cvc);
        assert!(back.missing.is_empty());
        assert!(back.legacy_record, "Hyperswitch's layout is flagged");
    }
    // Without the `card_cvc` key too (older Hyperswitch data): still flagged.
    let id = single_record(
        &mock,
        r#"{"card_number":"5555555555554444","card_exp_month":"11","card_exp_year":"2029"}"#,
    );
    let back = vault
        .retrieve(RetrieveRequest::new(id))
        .await
        .expect("retrieve");
    assert!(back.legacy_record);
    // vaultlink's own single-id record is not.
    let own = vault
        .insert(InsertRequest::card(card()).with_mode(vault_core::TokenizationMode::SingleId))
        .await
        .expect("insert");
    let back = vault
        .retrieve(RetrieveRequest::new(own.connector_vault_id))
        .await
        .expect("retrieve");
    assert!(!back.legacy_record);
}

#[tokio::test]
async fn a_record_that_is_no_card_at_all_is_refused_without_its_value() {
    let mock = mock().await;
    let vault = connector(&mock);
    let id = single_record(&mock, r#"{"number":"4111111111111111","expiry":"04/30"}"#);
    let err = vault
        .retrieve(RetrieveRequest::new(id))
        .await
        .expect_err("not a card");
    assert_eq!(err.kind(), VaultError::UnexpectedResponse);
    let text = format!("{err:?}{}", err.summary());
    assert!(
        text.contains("written by Hyperswitch's VGS connector"),
        "{text}"
    );
    assert!(!text.contains("4111111111111111"), "{text}");
}

#[tokio::test]
async fn a_hyperswitch_multi_token_card_reads_until_its_volatile_fields_expire() {
    let (clock, mock, vault) = clocked().await;
    let stored = store(&mock, &legacy(Some("321")), HyperswitchLayout::MultiToken);
    let id = id_of(&stored);
    let back = vault
        .retrieve(RetrieveRequest::new(id.clone()))
        .await
        .expect("retrieve");
    let card = back.card().expect("card");
    assert_eq!(card.number.expose_secret(), "4111111111111111");
    assert_eq!(card.cvc.as_ref().map(Cvc::expose_secret), Some("321"));
    // Every field is volatile: read at once, one request each, no persistent reveal.
    let stats = mock.stats();
    assert_eq!(stats.api_count(vgs_mock::Route::RevealAlias, 200), 4);
    assert_eq!(
        stats.api_count(vgs_mock::Route::RevealMultipleAliases, 200),
        0
    );

    clock.advance(vgs_mock::VOLATILE_TTL + Duration::from_secs(1));
    let err = vault
        .retrieve(RetrieveRequest::new(id))
        .await
        .expect_err("gone after its hour");
    assert_eq!(err.kind(), VaultError::AliasNotFound);
    let text = err.summary();
    assert!(text.contains("card_number record"), "{text}");
    assert!(text.contains("stored volatile"), "{text}");
}

#[tokio::test]
async fn a_collected_card_reads_with_the_expiry_the_caller_kept() {
    let mock = mock().await;
    let vault = connector(&mock);
    let stored = store(&mock, &legacy(Some("456")), HyperswitchLayout::Collect);
    let id = id_of(&stored);
    let month = ExpiryMonth::new(4).unwrap();
    let year = ExpiryYear::new(2030).unwrap();
    let back = vault
        .retrieve(RetrieveRequest::new(id.clone()).with_expiry(month, year))
        .await
        .expect("retrieve");
    let card = back.card().expect("a whole card");
    assert_eq!(card.number.expose_secret(), "4111111111111111");
    assert_eq!((card.exp_month, card.exp_year), (month, year));
    assert_eq!(card.cvc.as_ref().map(Cvc::expose_secret), Some("456"));

    // Without the expiry: the fields the vault holds, never a card made up.
    let partial = vault
        .retrieve(RetrieveRequest::new(id))
        .await
        .expect("retrieve");
    assert!(partial.card().is_none());
    let fields = partial.card_fields().expect("fields");
    assert!(fields.number.is_some() && fields.cvc.is_some());
    assert!(fields.exp_month.is_none() && fields.exp_year.is_none());
}

#[tokio::test]
async fn a_cvc_alone_joins_a_stored_card() {
    let mock = mock().await;
    let vault = connector(&mock);
    let mut without = card();
    without.cvc = None;
    let stored = vault
        .insert(InsertRequest::card(without.clone()))
        .await
        .expect("insert");
    assert!(
        stored
            .connector_vault_id
            .field(CardField::CardCvc)
            .is_none()
    );
    let records = mock.record_count(VAULT).expect("vault");

    let cvc = Cvc::new("852").unwrap();
    let with_cvc = vault
        .insert(InsertRequest::cvc_for(
            stored.connector_vault_id.clone(),
            cvc.clone(),
        ))
        .await
        .expect("cvc");
    // One record more (the CVC), and every other alias unchanged.
    assert_eq!(mock.record_count(VAULT), Some(records + 1));
    let cvc_alias = with_cvc
        .connector_vault_id
        .field(CardField::CardCvc)
        .expect("cvc alias");
    assert_eq!(cvc_alias.storage, Storage::Volatile);
    for field in [
        CardField::CardNumber,
        CardField::CardExpMonth,
        CardField::CardExpYear,
    ] {
        assert_eq!(
            with_cvc.connector_vault_id.field(field),
            stored.connector_vault_id.field(field)
        );
    }
    assert_eq!(with_cvc.fingerprint, stored.fingerprint);
    let back = vault
        .retrieve(RetrieveRequest::new(with_cvc.connector_vault_id))
        .await
        .expect("retrieve");
    assert_eq!(back.card(), Some(&without.with_cvc(cvc)));

    // A single-id card takes a new CVC too; anything but a CVC is refused unsent.
    let single = vault
        .insert(InsertRequest::card(card()).with_mode(vault_core::TokenizationMode::SingleId))
        .await
        .expect("single");
    let renewed = vault
        .insert(InsertRequest::cvc_for(
            single.connector_vault_id.clone(),
            Cvc::new("963").unwrap(),
        ))
        .await
        .expect("cvc for single");
    let ConnectorVaultId::Single { cvc: Some(_), .. } = &renewed.connector_vault_id else {
        panic!("{:?}", renewed.connector_vault_id)
    };
    let back = vault
        .retrieve(RetrieveRequest::new(renewed.connector_vault_id))
        .await
        .expect("retrieve");
    assert_eq!(
        back.card()
            .and_then(|c| c.cvc.as_ref())
            .map(Cvc::expose_secret),
        Some("963")
    );
    let mut request = InsertRequest::card_fields(CardFields::number(
        CardNumber::new("5555555555554444").unwrap(),
    ));
    request.for_card = Some(single.connector_vault_id);
    let before = mock.stats().api_count(vgs_mock::Route::CreateAliases, 200);
    let err = vault.insert(request).await.expect_err("not a cvc");
    assert_eq!(err.kind(), VaultError::InvalidRequest);
    assert_eq!(
        mock.stats().api_count(vgs_mock::Route::CreateAliases, 200),
        before
    );
}

#[tokio::test]
async fn a_card_number_alone_is_stored_and_read_as_card_fields() {
    let mock = mock().await;
    let vault = connector(&mock);
    let number = CardNumber::new("5555555555554444").unwrap();
    let stored = vault
        .insert(InsertRequest::card_fields(CardFields::number(
            number.clone(),
        )))
        .await
        .expect("insert");
    let ConnectorVaultId::Multi(fields) = &stored.connector_vault_id else {
        panic!("per field")
    };
    assert_eq!(
        fields.keys().copied().collect::<Vec<_>>(),
        [CardField::CardNumber]
    );
    assert_eq!(
        stored.fingerprint.0,
        fields[&CardField::CardNumber].alias.as_str()
    );
    let back = vault
        .retrieve(RetrieveRequest::new(stored.connector_vault_id))
        .await
        .expect("retrieve");
    assert_eq!(back.card_fields(), Some(&CardFields::number(number)));

    let empty = vault
        .insert(InsertRequest::card_fields(CardFields::new()))
        .await
        .expect_err("empty");
    assert_eq!(empty.kind(), VaultError::InvalidRequest);
    let single = vault
        .insert(
            InsertRequest::card_fields(CardFields::cvc(Cvc::new("123").unwrap()))
                .with_mode(vault_core::TokenizationMode::SingleId),
        )
        .await
        .expect_err("single-id subsets");
    assert!(
        single.summary().contains("per field"),
        "{}",
        single.summary()
    );
    let token = network_token();
    let single = vault
        .insert(
            InsertRequest::network_token(token).with_mode(vault_core::TokenizationMode::SingleId),
        )
        .await
        .expect_err("single-id tokens");
    assert_eq!(single.kind(), VaultError::InvalidRequest);
    // A CVC alone is fingerprinted by its id, never by the CVC's alias (which every
    // card with that CVC shares).
    let cvc_only = vault
        .insert(InsertRequest::card_fields(CardFields::cvc(
            Cvc::new("123").unwrap(),
        )))
        .await
        .expect("cvc alone");
    let cvc_alias = cvc_only
        .connector_vault_id
        .field(CardField::CardCvc)
        .unwrap();
    assert_ne!(cvc_only.fingerprint.0, cvc_alias.alias.as_str());
    assert_eq!(
        cvc_only.fingerprint.0,
        cvc_only.connector_vault_id.to_string()
    );
}

#[tokio::test]
async fn a_network_token_is_a_payment_method_with_a_volatile_cryptogram() {
    let (clock, _mock, vault) = clocked().await;
    let token =
        network_token().with_cryptogram(Cryptogram::new("AgAAAAAABk4DWZ4C28yUQAAAAAA=").unwrap());
    let stored = vault
        .insert(InsertRequest::network_token(token.clone()))
        .await
        .expect("insert");
    let id = &stored.connector_vault_id;
    let storage = |field| id.field(field).map(|f| f.storage);
    assert_eq!(storage(CardField::NetworkToken), Some(Storage::Persistent));
    assert_eq!(
        storage(CardField::NetworkTokenExpMonth),
        Some(Storage::Persistent)
    );
    assert_eq!(
        storage(CardField::NetworkTokenCryptogram),
        Some(Storage::Volatile)
    );
    assert_eq!(
        stored.fingerprint.0,
        id.field(CardField::NetworkToken).unwrap().alias.as_str()
    );
    let back = vault
        .retrieve(RetrieveRequest::new(id.clone()))
        .await
        .expect("retrieve");
    assert_eq!(back.network_token(), Some(&token));

    clock.advance(vgs_mock::VOLATILE_TTL + Duration::from_secs(1));
    let later = vault
        .retrieve(RetrieveRequest::new(id.clone()))
        .await
        .expect("token and expiry stay");
    let kept = later.network_token().expect("token");
    assert!(kept.cryptogram.is_none());
    assert_eq!(kept.token, token.token);
    assert_eq!(
        later
            .missing
            .iter()
            .map(|m| (m.field, m.reason))
            .collect::<Vec<_>>(),
        [(CardField::NetworkTokenCryptogram, MissingReason::Expired)]
    );

    let deleted = vault
        .delete(DeleteRequest::new(id.clone()))
        .await
        .expect("delete");
    // With fingerprinting on, a token's records are shared by value like a card's:
    // delete reports each and keeps it (erase removes them).
    assert_eq!(deleted.records.len(), 4);
    assert!(deleted.records.iter().all(|r| r.action
        == RecordAction::Kept(vault_core::KeptBecause::SharedByValue)
        || r.action == RecordAction::AlreadyGone));
}

#[tokio::test]
async fn every_id_the_connector_returns_round_trips_through_its_compact_string() {
    let mock = mock().await;
    let vault = connector(&mock);
    let ids = [
        vault
            .insert(InsertRequest::card(card()))
            .await
            .expect("card"),
        vault
            .insert(InsertRequest::card(card()).with_mode(vault_core::TokenizationMode::SingleId))
            .await
            .expect("single"),
    ];
    for stored in ids {
        let text = stored.connector_vault_id.to_string();
        assert!(text.starts_with("vl1;"), "{text}");
        let back: ConnectorVaultId = text.parse().expect("parses");
        assert_eq!(back, stored.connector_vault_id);
        // And it still retrieves.
        let card_back = vault
            .retrieve(RetrieveRequest::new(back))
            .await
            .expect("retrieve");
        assert!(matches!(
            card_back.payment_method,
            PaymentMethodData::Card(_)
        ));
    }
}

#[tokio::test]
async fn a_hyperswitch_network_token_reads_from_its_volatile_records() {
    let mock = mock().await;
    let vault = connector(&mock);
    let put = |value: &str, classifier: &str| {
        mock.state()
            .store_value(
                VAULT,
                value,
                &[classifier],
                vgs_mock::AliasFormat::Uuid,
                vgs_mock::Storage::Volatile,
            )
            .expect("vault")
            .expect("stored")
    };
    // As Hyperswitch's connector stores NetworkTokenData: every value volatile.
    let json = serde_json::json!({"MultiVauldIds": {"NetworkToken": {
        "tokenized_network_token": put("4895370012003478", "payment_token"),
        "tokenized_network_token_exp_year": put("2031", "token_expiry_year"),
        "tokenized_network_token_exp_month": put("12", "token_expiry_month"),
        "tokenized_cryptogram": put("AgAAAAAABk4DWZ4C28yUQAAAAAA=", "token_cryptogram"),
    }}});
    let id: vault_core::hyperswitch::VaultIdType = serde_json::from_value(json).unwrap();
    let back = vault
        .retrieve(RetrieveRequest::new(
            ConnectorVaultId::try_from(&id).unwrap(),
        ))
        .await
        .expect("retrieve");
    let token = back.network_token().expect("network token");
    assert_eq!(token.token.expose_secret(), "4895370012003478");
    assert_eq!((token.exp_month.get(), token.exp_year.get()), (12, 2031));
    assert_eq!(
        token.cryptogram.as_ref().map(Cryptogram::expose_secret),
        Some("AgAAAAAABk4DWZ4C28yUQAAAAAA=")
    );
}

#[tokio::test]
async fn a_new_cvc_for_a_hyperswitch_record_wins_until_it_expires_then_the_old_one_reads() {
    let (clock, mock, vault) = clocked().await;
    let stored = store(&mock, &legacy(Some("111")), HyperswitchLayout::SingleToken);
    let renewed = vault
        .insert(InsertRequest::cvc_for(
            id_of(&stored),
            Cvc::new("222").unwrap(),
        ))
        .await
        .expect("cvc");
    let read = |id: ConnectorVaultId| {
        let vault = vault.clone();
        async move {
            vault
                .retrieve(RetrieveRequest::new(id))
                .await
                .expect("retrieve")
        }
    };
    let back = read(renewed.connector_vault_id.clone()).await;
    assert_eq!(
        back.card()
            .and_then(|c| c.cvc.as_ref())
            .map(Cvc::expose_secret),
        Some("222")
    );
    clock.advance(vgs_mock::VOLATILE_TTL + Duration::from_secs(1));
    let later = read(renewed.connector_vault_id).await;
    // The record's own CVC is there: the card is not reported without one.
    assert_eq!(
        later
            .card()
            .and_then(|c| c.cvc.as_ref())
            .map(Cvc::expose_secret),
        Some("111")
    );
    assert!(later.missing.is_empty(), "{:?}", later.missing);
}
