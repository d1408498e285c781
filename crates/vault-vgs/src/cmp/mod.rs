//! The VGS Card Management Platform (CMP) flavour of the connector: a card is one object
//! with a card id. Shares the token layer, routing, executor and retries with the rest.

mod connector;
pub(crate) mod transformers;

pub use connector::{CmpConnector, CmpConnectorBuilder};
