//! vault-vgs: the VGS connector. An [`ExternalVault`](vault_core::ExternalVault) that
//! stores each card field under its own alias (the CVC volatile) in a VGS vault, with
//! single-flight tokens, retries and typed errors.
//!
//! ```no_run
//! use std::sync::Arc;
//! use vault_core::{ConnectorAuthType, Environment, ExternalVault};
//! use vault_vgs::VgsConnector;
//!
//! # fn build(auth_json: &str) -> Result<(), Box<dyn std::error::Error>> {
//! let auth: ConnectorAuthType = serde_json::from_str(auth_json)?;
//! let vault: Arc<dyn ExternalVault> = Arc::new(
//!     VgsConnector::builder()
//!         .auth_type(&auth)?
//!         .environment(Environment::Sandbox)
//!         .build()?,
//! );
//! # Ok(()) }
//! ```
//!
//! Layout, after Hyperswitch's connectors: `connector` wires the flows, `transformers`
//! holds VGS's JSON as `pub(crate)` types and pure conversions, `http` is the one
//! place that executes HTTP (timeouts, retries, 401 handling), `routing` builds URLs.
//! `cmp` is the Card Management Platform flavour ([`CmpConnector`]: a card is one
//! object with a card id), built on the same executor, tokens and routing; `dialect`
//! is what differs between the APIs (media type, answers, error mapping).

#![deny(missing_docs)]

mod auth;
#[doc(hidden)]
pub mod bench_support;
mod cmp;
mod collect;
mod config;
mod connector;
mod dialect;
mod forward;
mod http;
mod retry;
mod routing;
mod transformers;

pub use cmp::{CmpConnector, CmpConnectorBuilder};
pub use collect::card_id_from_collected;
pub use config::{Fingerprinting, Timeouts, VgsConnectorBuilder};
pub use connector::VgsConnector;
pub use forward::{VgsProxy, VgsProxyBuilder};
pub use retry::RetryPolicy;
pub use routing::{ApiGeneration, Endpoint, VGS_TOKEN_URL};
