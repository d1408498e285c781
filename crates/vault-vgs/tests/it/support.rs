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
