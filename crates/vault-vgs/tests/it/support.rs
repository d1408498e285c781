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

pub(crate) fn token_body(token: &str, expires_in: u64) -> serde_json::Value {
    serde_json::json!({"access_token": token, "expires_in": expires_in, "token_type": "Bearer", "not-before-policy": 0})
}

pub(crate) fn multi_id(
    number: &str,
    month: &str,
    year: &str,
    cvc: Option<&str>,
) -> ConnectorVaultId {
    let field = |alias: &str, format, storage| FieldAlias {
        alias: Alias::new(alias).expect("alias"),
        format,
        storage,
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

/// Test cards: valid numbers of every length VGS sees, distinct numbers.
pub(crate) fn cards(n: usize) -> Vec<Card> {
    (0..n)
        .map(|i| {
            let mut digits: Vec<u32> = format!("4{:014}", 100_000_000 + i as u64 * 7919)
                .chars()
                .map(|c| c.to_digit(10).expect("digit"))
                .collect();
            digits.push(luhn_check_digit(&digits));
            let number: String = digits
                .iter()
                .map(|d| char::from_digit(*d, 10).expect("digit"))
                .collect();
            serde_json::from_value(serde_json::json!({
                "card_number": number,
                "card_exp_month": format!("{:02}", i % 12 + 1),
                "card_exp_year": format!("{}", 2030 + i % 5),
                "card_cvc": format!("{:03}", i % 1000),
            }))
            .expect("generated card is valid")
        })
        .collect()
}

fn luhn_check_digit(digits: &[u32]) -> u32 {
    let sum: u32 = digits
        .iter()
        .rev()
        .enumerate()
        .map(|(i, &d)| {
            if i % 2 == 0 {
                let x = d * 2;
                if x > 9 { x - 9 } else { x }
            } else {
                d
            }
        })
        .sum();
    (10 - sum % 10) % 10
}
