//! Shared test fixtures: credentials, the test card, token bodies and id builders.

use base64::Engine;
use vault_core::{
    Alias, AliasFormat, Card, CardField, ConnectorVaultId, FieldAlias, FieldAliases, Storage,
};

pub(crate) const CLIENT_ID: &str = "ACclient42";
pub(crate) const CLIENT_SECRET: &str = "client-secret-Zq81";
pub(crate) const VAULT: &str = "tntabc12345";

pub(crate) fn basic(id: &str, secret: &str) -> String {
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{id}:{secret}"))
    )
}

pub(crate) fn card() -> Card {
    serde_json::from_str(
        r#"{"card_number":"4111111111111111","card_exp_month":"04","card_exp_year":"2030","card_cvc":"123"}"#,
    )
    .expect("test card")
}

pub(crate) use vaultlink_tests::tokens::token_body;

pub(crate) fn multi_id(
    number: &str,
    month: &str,
    year: &str,
    cvc: Option<&str>,
) -> ConnectorVaultId {
    let field = |alias: &str, format, storage| {
        FieldAlias::new(Alias::new(alias).expect("alias"), format, storage)
    };
    let mut fields = FieldAliases::new();
    fields.insert(
        CardField::CardNumber,
        field(number, AliasFormat::FpeSixTFour, Storage::Persistent),
    );
    fields.insert(
        CardField::CardExpMonth,
        field(month, AliasFormat::Uuid, Storage::Persistent),
    );
    fields.insert(
        CardField::CardExpYear,
        field(year, AliasFormat::Uuid, Storage::Persistent),
    );
    if let Some(cvc) = cvc {
        fields.insert(
            CardField::CardCvc,
            field(cvc, AliasFormat::Uuid, Storage::Volatile),
        );
    }
    ConnectorVaultId::Multi(fields)
}

pub(crate) use vgs_mock::{DEMO_CLIENT_ID, DEMO_CLIENT_SECRET, DEMO_VAULT_ID};

/// A mock VGS on loopback with the demo vault and client.
pub(crate) async fn mock() -> vgs_mock::MockHandle {
    mock_with(vgs_mock::MockConfig::demo()).await
}

pub(crate) async fn mock_with(config: vgs_mock::MockConfig) -> vgs_mock::MockHandle {
    vgs_mock::start(config)
        .await
        .expect("mock starts on loopback")
}

/// A v2 connector for the demo vault of `mock`, with quick retries.
pub(crate) fn builder(mock: &vgs_mock::MockHandle) -> vault_vgs::VgsConnectorBuilder {
    vault_vgs::VgsConnector::builder()
        .credentials(DEMO_CLIENT_ID, DEMO_CLIENT_SECRET.to_owned().into())
        .vault_id(DEMO_VAULT_ID)
        .endpoint(mock.base_url())
        .retry(vault_vgs::RetryPolicy {
            base_backoff: std::time::Duration::from_millis(5),
            max_backoff: std::time::Duration::from_millis(20),
            ..vault_vgs::RetryPolicy::default()
        })
}

pub(crate) fn connector(mock: &vgs_mock::MockHandle) -> vault_vgs::VgsConnector {
    builder(mock).build().expect("connector")
}

/// `n` distinct generated test cards, each with a CVC.
pub(crate) fn cards(n: usize) -> Vec<Card> {
    (0..n as u64).map(vaultlink_tests::card).collect()
}

/// The mock's clock as the connector's wall clock: both see the same time.
#[derive(Debug)]
pub(crate) struct WallOf(pub(crate) vgs_mock::MockClock);

impl vault_core::WallClock for WallOf {
    fn now(&self) -> std::time::SystemTime {
        self.0.now()
    }
}
