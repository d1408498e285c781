//! The contract an orchestrator relies on, checked through `Arc<dyn ExternalVault>` with
//! an in-memory vault written here (a test double, not shipped as a connector).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use vault_core::{
    Alias, AliasFormat, Card, CardField, ConnectorAuthType, ConnectorVaultId, DeleteRequest,
    DeleteResponse, DeleteScope, ExternalVault, FieldAlias, InsertRequest, InsertResponse,
    PaymentMethodData, RecordAction, RecordOutcome, Report, ReportExt, RetrieveRequest,
    RetrieveResponse, Storage, StoredPart, TokenizationMode, VaultError, VaultResult, async_trait,
};

/// Stores each card field under a fresh alias, keeps the card whole for single-id mode.
#[derive(Default)]
struct InMemoryVault {
    next: AtomicU64,
    fields: Mutex<HashMap<Alias, String>>,
    cards: Mutex<HashMap<Alias, Card>>,
}

impl InMemoryVault {
    fn alias(&self) -> Alias {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        Alias::new(&format!("tok_test_{n}")).unwrap()
    }

    fn put(&self, value: &str, storage: Storage) -> FieldAlias {
        let alias = self.alias();
        self.fields
            .lock()
            .unwrap()
            .insert(alias.clone(), value.to_owned());
        FieldAlias::new(alias, AliasFormat::Uuid, storage)
    }

    fn get(&self, alias: &Alias) -> VaultResult<String> {
        self.fields
            .lock()
            .unwrap()
            .get(alias)
            .cloned()
            .ok_or_else(|| Report::new(VaultError::AliasNotFound))
    }
}

#[async_trait]
impl ExternalVault for InMemoryVault {
    async fn insert(&self, request: InsertRequest) -> VaultResult<InsertResponse> {
        let PaymentMethodData::Card(card) = request.payment_method else {
            return Err(Report::new(VaultError::InvalidRequest));
        };
        let id = match request.mode {
            TokenizationMode::PerField => {
                let mut fields = vault_core::FieldAliases::new();
                fields.insert(
                    CardField::CardNumber,
                    self.put(card.number.expose_secret(), Storage::Persistent),
                );
                fields.insert(
                    CardField::CardExpMonth,
                    self.put(&card.exp_month.to_string(), Storage::Persistent),
                );
                fields.insert(
                    CardField::CardExpYear,
                    self.put(&card.exp_year.to_string(), Storage::Persistent),
                );
                if let Some(cvc) = &card.cvc {
                    fields.insert(
                        CardField::CardCvc,
                        self.put(cvc.expose_secret(), Storage::Volatile),
                    );
                }
                ConnectorVaultId::Multi(fields)
            }
            TokenizationMode::SingleId => {
                let id = self.alias();
                let cvc = card
                    .cvc
                    .as_ref()
                    .map(|c| self.put(c.expose_secret(), Storage::Volatile).alias);
                let mut whole = card.clone();
                whole.cvc = None;
                self.cards.lock().unwrap().insert(id.clone(), whole);
                ConnectorVaultId::Single {
                    id,
                    cvc,
                    cvc_expires_at: None,
                }
            }
        };
        Ok(InsertResponse::new(id))
    }

    async fn retrieve(&self, request: RetrieveRequest) -> VaultResult<RetrieveResponse> {
        let card = match &request.connector_vault_id {
            ConnectorVaultId::Multi(fields) => {
                let value = |field| -> VaultResult<String> {
                    let alias = &fields
                        .get(&field)
                        .ok_or_else(|| Report::new(VaultError::InvalidRequest))?
                        .alias;
                    self.get(alias)
                };
                let mut card = Card::new(
                    value(CardField::CardNumber)?
                        .parse()
                        .map_err(|e: vault_core::ValidationError| e.into_report())?,
                    value(CardField::CardExpMonth)?
                        .parse()
                        .map_err(|e: vault_core::ValidationError| e.into_report())?,
                    value(CardField::CardExpYear)?
                        .parse()
                        .map_err(|e: vault_core::ValidationError| e.into_report())?,
                );
                if let Some(cvc) = fields.get(&CardField::CardCvc) {
                    card.cvc = self.get(&cvc.alias).ok().and_then(|v| v.parse().ok());
                }
                card
            }
            ConnectorVaultId::Single { id, cvc, .. } => {
                let mut card = self
                    .cards
                    .lock()
                    .unwrap()
                    .get(id)
                    .cloned()
                    .ok_or_else(|| Report::new(VaultError::AliasNotFound))?;
                card.cvc = cvc
                    .as_ref()
                    .and_then(|a| self.get(a).ok())
                    .and_then(|v| v.parse().ok());
                card
            }
        };
        Ok(RetrieveResponse::new(PaymentMethodData::Card(card)))
    }

    async fn delete(&self, request: DeleteRequest) -> VaultResult<DeleteResponse> {
        // Every record here is one card's own (no deduplication): all go.
        let mut records = Vec::new();
        for alias in request.connector_vault_id.aliases() {
            let hit = self.fields.lock().unwrap().remove(alias).is_some()
                | self.cards.lock().unwrap().remove(alias).is_some();
            let action = if hit {
                RecordAction::Removed
            } else {
                RecordAction::AlreadyGone
            };
            records.push(RecordOutcome::new(
                StoredPart::WholeCard,
                alias.clone(),
                Storage::Persistent,
                action,
            ));
        }
        Ok(DeleteResponse::new(DeleteScope::PaymentMethod, records))
    }
}

fn card_from_json(json: &str) -> Card {
    serde_json::from_str(json).expect("fixture card parses")
}

/// What an orchestrator's payment path does: store, keep the id, retrieve, delete.
async fn payment_path(vault: Arc<dyn ExternalVault>, mode: TokenizationMode) {
    let card = card_from_json(
        r#"{"card_number":"4111 1111 1111 1111","card_exp_month":"04","card_exp_year":"2030","card_cvc":"123"}"#,
    );
    let stored = vault
        .insert(InsertRequest::card(card.clone()).with_mode(mode))
        .await
        .unwrap();
    let rendered = format!("{stored:?}");
    assert!(
        !rendered.contains("4111111111111111") && !rendered.contains("\"123\""),
        "{rendered}"
    );

    let back = vault
        .retrieve(RetrieveRequest::new(stored.connector_vault_id.clone()))
        .await
        .unwrap();
    assert_eq!(back.card(), Some(&card));

    let deleted = vault
        .delete(DeleteRequest::new(stored.connector_vault_id.clone()))
        .await
        .unwrap();
    assert_eq!(
        deleted.removed().len(),
        stored.connector_vault_id.aliases().len()
    );
    assert!(deleted.already_gone().is_empty());

    let err = vault
        .retrieve(RetrieveRequest::new(stored.connector_vault_id.clone()))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), VaultError::AliasNotFound);
    assert!(!err.is_retryable());

    let again = vault
        .delete(DeleteRequest::new(stored.connector_vault_id))
        .await
        .unwrap();
    assert!(again.removed().is_empty());
}

#[tokio::test]
async fn per_field_round_trip_through_dyn_vault() {
    let vault: Arc<dyn ExternalVault> = Arc::new(InMemoryVault::default());
    payment_path(vault, TokenizationMode::PerField).await;
}

#[tokio::test]
async fn single_id_round_trip_through_dyn_vault() {
    let vault: Arc<dyn ExternalVault> = Arc::new(InMemoryVault::default());
    payment_path(vault, TokenizationMode::SingleId).await;
}

#[tokio::test]
async fn dyn_vault_is_shared_across_tasks() {
    let vault: Arc<dyn ExternalVault> = Arc::new(InMemoryVault::default());
    let tasks: Vec<_> = (0..16)
        .map(|_| tokio::spawn(payment_path(Arc::clone(&vault), TokenizationMode::PerField)))
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
}

#[test]
fn orchestrator_credentials_parse_from_hyperswitch_json() {
    let auth: ConnectorAuthType = serde_json::from_str(
        r#"{"auth_type":"SignatureKey","api_key":"client-1","key1":"very-secret-1","api_secret":"tntabc12345"}"#,
    )
    .unwrap();
    let key = auth.signature_key().unwrap();
    assert_eq!(
        key.api_secret
            .parse::<vault_core::VaultId>()
            .unwrap()
            .as_str(),
        "tntabc12345"
    );
    assert!(!format!("{auth:?}{key:?}").contains("very-secret-1"));
}
