//! A stateful mock of VGS: the OAuth token endpoint, the vault API (v1 and v2) and the
//! Card Management Platform (CMP), written from VGS's documents only, for offline
//! tests, demos and benchmarks.
//!
//! # Use
//!
//! In-process, without a socket: `router(MockState::new(config))` and drive it with
//! `tower::ServiceExt::oneshot`. Over loopback: `start(config).await?` binds
//! `127.0.0.1:0` ([`start_on`] binds a given address, as `vaultctl mock serve` does)
//! and returns a [`MockHandle`] with the base URL, the accepted
//! credentials ([`MockHandle::config`]), [`MockHandle::stats`] and `stop`.
//! [`MockConfig::demo`] has one vault and one client, see the `DEMO_*` constants.
//!
//! # Routes
//!
//! - `POST /auth/realms/vgs/protocol/openid-connect/token` ([`TOKEN_PATH`]): Keycloak-style
//!   `client_credentials`; client auth by HTTP Basic or `client_id`/`client_secret`
//!   form fields; optional `scope` (a subset of the client's).
//! - API v1 (HTTP Basic access credentials identify the vault), per the official spec:
//!   `POST /aliases`, `GET /aliases?aliases=a,b`, `GET|PUT|DELETE /aliases/{alias}`,
//!   `POST /aliases/delete`.
//! - API v2 (Bearer token; scopes `aliases:write` to create and update,
//!   `aliases:read` to reveal, `aliases:delete` to delete): the same paths when the
//!   Host header's first label is the vault id (`tnt….sandbox.vault-api.verygoodvault.com`),
//!   or under `/v2/{vault}/` on plain loopback.
//! - CMP (Bearer token; JSON:API bodies `application/vnd.api+json`, else 415):
//!   `POST /cards` (`cards:write`; 201, or 303 with `Location: /cards/{id}` and the
//!   existing card when the tenant's duplicate check finds the PAN), `GET /cards/{id}`
//!   (`cards:read`: aliases, BIN, last four, expiry, `cvc_status`; with
//!   `cards:read-pci` also `pan` and, inside the CVC window, `cvc`),
//!   `DELETE /cards/{id}` (`cards:write`, our choice; 204). Errors are JSON:API
//!   `{"errors":[{status,code,title,detail,source:{pointer}}]}`: 400 `bad-request`, 401
//!   `unauthorized`, 403 `forbidden` (naming the scope), 404 `not-found`, 415
//!   `unsupported-media-type`, 422 `missing-required-field` / `validation-failed` /
//!   `failed-dependency` (an unknown `pan_alias`/`cvc_alias`), 429; injected 500 is
//!   JSON:API `server-error`, injected 502/503/504 a gateway HTML page.
//! - `GET /_mock/stats`, `POST /_mock/reset`, `POST /_mock/reset-stats`,
//!   `GET|POST /_mock/faults`, `POST /_mock/fail-next`: the mock's own controls.
//! - `GET /_mock/openapi.yaml`: [`OPENAPI_YAML`], the OpenAPI 3 description of every
//!   route above, for Swagger UI, schemathesis or an SDK generator.
//!
//! # Proxies
//!
//! A vault given routes ([`VaultConfig::with_routes`], a [`RouteFile`] parsed from
//! what `vgs get routes` prints) makes the mock also run VGS's two proxies, on ports
//! of their own beside the API ([`MockHandle::outbound_proxy_addr`],
//! [`MockHandle::inbound_proxy_addr`]):
//!
//! - Outbound (forward): an HTTP proxy. `Proxy-Authorization: Basic` with a vault's
//!   access credentials, else 407. Absolute-form requests for `http://` upstreams;
//!   `CONNECT` for `https://` ones, whose TLS the mock intercepts with a certificate of
//!   its own authority ([`MockHandle::proxy_authority`]; clients trust its
//!   certificate, as they trust VGS's `sandbox.pem`). The first outbound route
//!   (`destination_override_endpoint: '*'`) whose `host_endpoint` regex matches the
//!   upstream's host applies: its REQUEST filters reveal (REVEAL, or ENRICH in older
//!   files), its RESPONSE filters redact. A host no route serves is refused (404 from
//!   the proxy; our choice: aliases then never reach an upstream unrevealed).
//! - Inbound (reverse): requests go to the first inbound route serving the Host (its
//!   `destination_override_endpoint` is the upstream, path and query appended); the
//!   vault is the Host's first label if it is a vault id, else the first vault with
//!   inbound routes. REQUEST filters redact, RESPONSE filters reveal.
//! - Filters: `transformer` JSON_PATH (`$.a.b`, `[n]`, `[*]`, `['name']`), FORM_FIELD or
//!   REGEX (group 1 if any, else the match), `targets: [body]`, storage and alias
//!   format from `token_manager` and `public_token_generator`, conditions on PathInfo,
//!   ContentType, HttpMethod and Status. A body a JSON path cannot read (not JSON)
//!   passes unchanged. An alias the vault cannot reveal is left as it is (our choice;
//!   VGS does not document it). A value that cannot be redacted in the filter's format
//!   stops the request (400) rather than reach the upstream in clear.
//! - Every proxy answer carries `vgs-request-id` ([`REQUEST_ID_HEADER`]); one that came
//!   from the upstream also `VGS-Upstream-Status-Code` ([`UPSTREAM_STATUS_HEADER`]), as
//!   VGS documents, so a client tells the proxy's own errors apart; the
//!   vault's rate limit (429) and faults ([`Route::OutboundProxy`],
//!   [`Route::InboundProxy`]) apply; [`Stats`] counts proxied requests and revealed
//!   and redacted values. Logs say how many values, never which.
//! - [`StandInProcessor`] is a processor on loopback for tests and demos: it records
//!   what reaches it, over http or https (a certificate from a
//!   [`CertificateAuthority`]).
//!
//! # Behaviour (where the spec leaves a choice, ours)
//!
//! - `storage` on GET/PUT/DELETE defaults to `PERSISTENT` (the spec's default): a
//!   VOLATILE record is only found with `storage=VOLATILE`, and vice versa.
//! - Fingerprinting: one record per (vault, storage, value); the same value and
//!   format always get the same alias; another format adds an alias to the record.
//!   In a create answer the alias of the requested format comes first.
//! - Fingerprinting is a per-vault setting ([`VaultConfig::fingerprinting`], on by
//!   default); off, every create stores a new record with a new alias, even for a
//!   value already stored. Deleting an alias removes that alias; the record (the
//!   value) goes with its last alias, as VGS documents.
//! - Reveal is a per-vault setting ([`VaultConfig::reveal`], on by default); off,
//!   both reveal routes answer 403 with [`REVEAL_DISABLED`], VGS's note.
//! - API v2: a Bearer token of a service account not assigned to the vault
//!   ([`OAuthClient::vaults`]), or for a vault that does not exist, answers 401, as
//!   VGS documents (not 404). The multi-reveal also reads the alias list from `q`, as
//!   older official SDKs send it.
//! - Batches are all-or-nothing: a create or batch delete with one bad item changes
//!   nothing; a multi-reveal or batch delete with unknown aliases answers 404.
//! - Error details never contain stored values, credentials, tokens or aliases.
//! - The rate limit counts authenticated requests per vault in fixed one-minute
//!   windows of the mock's clock; 429 carries `Retry-After` and
//!   `x-ratelimit-remaining: 0`. Every answer for a known vault carries
//!   `x-ratelimit-remaining` (not a v1 401, whose vault is unknown; not when the
//!   limit is lifted with `rate_limit_per_minute: None`).
//! - Stats JSON field names are stable: see [`Stats`] and [`VaultStats`].
//! - CMP tenants: a tenant is a configured vault. CMP's host names no tenant, so a
//!   token's tenant is its OAuth client's ([`OAuthClient::tenant`]), or the first
//!   vault of the configuration for a client bound to none. CMP calls count in that
//!   vault's stats and rate limit. The duplicate-card check is per tenant
//!   ([`VaultConfig::duplicate_card_check`], on by default;
//!   [`MockState::set_duplicate_card_check`]); a 303 changes nothing (a CVC sent with
//!   the duplicate is not stored). A card keeps its CVC for [`MockConfig::cvc_window`]
//!   (one hour by default) by the mock's clock, then forgets it: `cvc` is gone from
//!   the PCI view and `cvc_status` is `expired`. Card ids are `CRD` + 22 base58
//!   characters, aliases `tok_sandbox_` + 22; the fingerprint is random per PAN and
//!   tenant (not derived from the PAN). A card's `pan_alias` and `cvc_alias` are
//!   aliases of the tenant's vault (UUID format; the CVC's volatile), so the aliases
//!   API and the proxies reveal them; `pan_alias`/`cvc_alias` in a create read
//!   existing records of the tenant's vault.
//! - Logs are at `debug`/`trace` only (one `info` line at start) and never carry
//!   values, credentials or tokens.

#![cfg_attr(test, allow(clippy::unwrap_used))]

mod aliases;
mod api;
mod clock;
mod cmp;
mod config;
mod control;
mod faults;
mod filters;
mod formats;
mod hyperswitch;
mod jsonpath;
mod processor;
mod proxy;
mod rendezvous;
mod route;
mod routes;
mod server;
mod state;
mod stats;
mod store;
mod tls;
mod token;

use std::sync::{Mutex, MutexGuard, PoisonError};

use axum::Router;
use axum::extract::Request;
use axum::http::StatusCode;
use axum::middleware;
use axum::response::Response;
use axum::routing::{get, post};

pub use crate::aliases::MAX_BATCH;
pub use crate::api::{MAX_BODY_BYTES, RATE_LIMIT_HEADER, REVEAL_DISABLED};
pub use crate::clock::MockClock;
pub use crate::config::{
    ALIAS_SCOPES, BasicCredentials, CARD_SCOPES, DEFAULT_CVC_WINDOW, DEFAULT_RATE_LIMIT_PER_MINUTE,
    DEFAULT_TOKEN_LIFETIME, DEMO_CLIENT_ID, DEMO_CLIENT_SECRET, DEMO_CMP_CLIENT_ID,
    DEMO_CMP_CLIENT_SECRET, DEMO_V1_PASSWORD, DEMO_V1_USERNAME, DEMO_VAULT_ID, MockConfig,
    OAuthClient, VaultConfig,
};
pub use crate::faults::{FAULT_HEADER, FailNext, FailWith, FaultConfig};
pub use crate::formats::AliasFormat;
pub use crate::hyperswitch::{
    HyperswitchLayout, LegacyCard, LegacyNetworkToken, LegacyStored, legacy_id_json,
};
pub use crate::processor::{Received, StandInProcessor};
pub use crate::proxy::{REQUEST_ID_HEADER, UPSTREAM_STATUS_HEADER};
pub use crate::rendezvous::Rendezvous;
pub use crate::route::Route;
pub use crate::routes::{RouteError, RouteFile};
pub use crate::server::{MockHandle, start, start_on, start_with_state};
pub use crate::state::MockState;
pub use crate::stats::{RESET_KEY, Stats, VaultStats};
pub use crate::store::{RecordView, Storage, VOLATILE_TTL};
pub use crate::tls::{CertificateAuthority, IssuedCertificate};

/// The OpenAPI 3 description of everything the mock serves (`crates/vgs-mock/openapi.yaml`):
/// the token endpoint, vault API v1 (as VGS's official spec defines it), v2, CMP and
/// the `/_mock/` controls, with the schemas the answers follow. Served at
/// `GET /_mock/openapi.yaml`; the mock's tests validate every answer against it.
pub const OPENAPI_YAML: &str = include_str!("../openapi.yaml");

/// Path of the token endpoint (Keycloak's, as VGS serves it).
pub const TOKEN_PATH: &str = "/auth/realms/vgs/protocol/openid-connect/token";

/// Builds the mock's app: the token endpoint, vault API v1 and v2, CMP, and `/_mock/*`.
pub fn router(state: MockState) -> Router {
    let alias_routes = |prefix: &str| {
        Router::new()
            .route(
                &format!("{prefix}/aliases"),
                post(aliases::create).get(aliases::reveal_many),
            )
            .route(
                &format!("{prefix}/aliases/delete"),
                post(aliases::delete_many),
            )
            .route(
                &format!("{prefix}/aliases/{{alias}}"),
                get(aliases::reveal)
                    .put(aliases::update)
                    .delete(aliases::delete),
            )
    };
    // Full paths rather than `nest`, so handlers and the fault layer see the real URI.
    let observed = Router::new()
        .route(TOKEN_PATH, post(token::token_endpoint))
        .merge(alias_routes(""))
        .merge(alias_routes("/v2/{vault}"))
        .merge(cmp::routes())
        .route_layer(middleware::from_fn_with_state(
            state.clone(),
            faults::observe,
        ));
    let control = Router::new()
        .route("/_mock/stats", get(control::stats))
        .route("/_mock/reset", post(control::reset))
        .route("/_mock/reset-stats", post(control::reset_stats))
        .route(
            "/_mock/faults",
            get(control::get_faults).post(control::set_faults),
        )
        .route("/_mock/fail-next", post(control::fail_next))
        .route("/_mock/openapi.yaml", get(control::openapi));
    observed
        .merge(control)
        .fallback(not_found)
        .with_state(state)
}

/// Unknown paths: 404 in the error shape of the API the request looks like.
async fn not_found(
    axum::extract::State(state): axum::extract::State<MockState>,
    req: Request,
) -> Response {
    let (target, href) = api::describe(&state, req.headers(), req.uri().path());
    let error = api::ApiError::new(StatusCode::NOT_FOUND, "no such route");
    api::error_response(target, &href, &error)
}

/// Locks `mutex`, ignoring poisoning: every critical section leaves its data valid.
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}
