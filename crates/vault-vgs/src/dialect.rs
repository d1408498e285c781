//! `Dialect`: what differs between the VGS APIs that share one executor (alias API v1/v2
//! and CMP): the media type of bodies, which statuses are answers, how errors map.

use std::time::Duration;

use error_stack::Report;
use vault_core::VaultError;

use crate::routing::ApiGeneration;
use crate::transformers::{self, Operation};

/// Maps an error response to a report: (status, `Retry-After`, trace id from a header,
/// body, what the call was doing). Never puts the body itself in the report.
pub(crate) type ErrorMapper =
    fn(u16, Option<Duration>, Option<String>, &[u8], Operation<'_>) -> Report<VaultError>;

/// How one VGS API speaks HTTP beyond the shared machinery (auth, timeouts, retries,
/// body cap). Retries follow the mapped error kind (`retry::Failure::of`), so an API's
/// retry rule lives in its error mapper: CMP maps its 500 to `ServerError`, which is
/// never retried, and 502/503/504 to `Upstream`, which is.
#[derive(Clone, Copy)]
pub(crate) struct Dialect {
    /// The `Content-Type` of request bodies.
    pub(crate) content_type: &'static str,
    /// Whether a status is an answer to parse (2xx; CMP also 303, its duplicate answer:
    /// redirects are never followed, so a 303 reaches the connector as is).
    pub(crate) is_answer: fn(u16) -> bool,
    /// Maps an error response.
    pub(crate) error: ErrorMapper,
}

/// The alias API (v1 and v2): JSON bodies, 2xx answers, VGS's vault error bodies.
pub(crate) const ALIASES: Dialect = Dialect {
    content_type: "application/json",
    is_answer: is_success,
    error: transformers::error_from_response,
};

impl Dialect {
    /// The dialect of an API generation.
    pub(crate) fn of(api: ApiGeneration) -> Dialect {
        match api {
            ApiGeneration::V1 | ApiGeneration::V2 => ALIASES,
            ApiGeneration::Cmp => crate::cmp::transformers::DIALECT,
        }
    }
}

fn is_success(status: u16) -> bool {
    (200..300).contains(&status)
}
