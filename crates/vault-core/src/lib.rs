//! vault-core: the `ExternalVault` trait a payment orchestrator calls, the card and
//! credential types it passes (validated, secrets redacted), and `VaultError`.
//! It knows no HTTP client, no JSON library and no particular vault.
//!
//! ```
//! use std::sync::Arc;
//! use vault_core::{Card, CardNumber, Cvc, ExpiryMonth, ExpiryYear, ExternalVault, InsertRequest};
//!
//! async fn store(vault: Arc<dyn ExternalVault>) -> vault_core::VaultResult<()> {
//!     let card = Card::new(
//!         CardNumber::new("4111 1111 1111 1111").map_err(|e| e.into_report())?,
//!         ExpiryMonth::new(4).map_err(|e| e.into_report())?,
//!         ExpiryYear::new(2030).map_err(|e| e.into_report())?,
//!     )
//!     .with_cvc(Cvc::new("123").map_err(|e| e.into_report())?);
//!     let stored = vault.insert(InsertRequest::card(card)).await?;
//!     println!("{:?}", stored.connector_vault_id); // aliases, never the card
//!     Ok(())
//! }
//! ```

#![deny(missing_docs)]

mod auth;
mod card;
mod card_object;
mod clock;
pub mod compact;
mod error;
mod flow;
mod forward;
#[cfg(feature = "hyperswitch")]
pub mod hyperswitch;
mod payment_method;
mod secret;
mod validation;
mod vault;

pub use auth::{ConnectorAuthType, SignatureKey};
#[cfg(feature = "serde")]
pub use card::RevealedCard;
pub use card::{Card, CardHolderName, CardNumber, Cvc, ExpiryMonth, ExpiryYear, luhn_valid};
pub use card_object::{CardAliases, CvcStatus};
pub use clock::{SystemWallClock, WallClock};
pub use error::{
    Attempt, Detail, HttpStatus, ReportExt, RetryAfter, TraceId, VaultError, VaultResult,
};
pub use flow::{
    CardField, ConnectorVaultId, Delete, DeleteRequest, DeleteResponse, DeleteScope, EraseRequest,
    ExternalVault, FieldAlias, FieldAliases, Fingerprint, Flow, Insert, InsertRequest,
    InsertResponse, KeptBecause, MissingField, MissingReason, PaymentMethodData, RecordAction,
    RecordOutcome, Retrieve, RetrieveRequest, RetrieveResponse, StoredPart, TokenizationMode,
    whole_seconds,
};
pub use forward::{
    BodyEncoding, ForwardRequest, ForwardResponse, PLACEHOLDERS, TemplateError, VaultProxy,
    fill_template, without_secrets,
};
pub use payment_method::{CardFields, Cryptogram, NetworkToken};
pub use secret::{AccessToken, ClientId, ClientSecret, Password, REDACTED};
pub use validation::{Quoted, ValidationError};
pub use vault::{Alias, AliasFormat, Environment, Storage, VaultId};

/// Re-exported so implementors need not depend on these crates' versions directly.
pub use async_trait::async_trait;
/// Re-exported `error_stack::Report`.
pub use error_stack::Report;
/// Re-exported `secrecy` for `SecretString` in [`ConnectorAuthType`].
pub use secrecy;
