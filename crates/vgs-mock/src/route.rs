//! The mock's routes as one enum: the key for per-route stats and for deterministic
//! faults. JSON names are the spec's `operationId`s (and `token`, and ours for CMP).

use std::fmt;

use axum::http::Method;
use serde::{Deserialize, Serialize};

/// A route of the mock that stats count and faults can target. API routes cover
/// both API generations (v1 and v2 share one route per operation).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Route {
    /// `POST /auth/realms/vgs/protocol/openid-connect/token` (JSON name `token`).
    #[serde(rename = "token")]
    TokenEndpoint,
    /// `POST /aliases` (`createAliases`).
    #[serde(rename = "createAliases")]
    CreateAliases,
    /// `GET /aliases?aliases=…` (`revealMultipleAliases`).
    #[serde(rename = "revealMultipleAliases")]
    RevealMultipleAliases,
    /// `GET /aliases/{alias}` (`revealAlias`).
    #[serde(rename = "revealAlias")]
    RevealAlias,
    /// `PUT /aliases/{alias}` (`updateAlias`).
    #[serde(rename = "updateAlias")]
    UpdateAlias,
    /// `DELETE /aliases/{alias}` (`deleteAlias`).
    #[serde(rename = "deleteAlias")]
    DeleteAlias,
    /// `POST /aliases/delete` (`deleteAliases`).
    #[serde(rename = "deleteAliases")]
    DeleteAliases,
    /// CMP `POST /cards` (`createCard`).
    #[serde(rename = "createCard")]
    CreateCard,
    /// CMP `GET /cards/{id}` (`getCard`).
    #[serde(rename = "getCard")]
    GetCard,
    /// CMP `DELETE /cards/{id}` (`deleteCard`).
    #[serde(rename = "deleteCard")]
    DeleteCard,
    /// A request through the outbound (forward) proxy (`outboundProxy`).
    #[serde(rename = "outboundProxy")]
    OutboundProxy,
    /// A request through the inbound (reverse) proxy (`inboundProxy`).
    #[serde(rename = "inboundProxy")]
    InboundProxy,
}

impl Route {
    /// Every route: the token endpoint, the alias API's, CMP's, then the proxies'.
    pub const ALL: [Route; 12] = [
        Route::TokenEndpoint,
        Route::CreateAliases,
        Route::RevealMultipleAliases,
        Route::RevealAlias,
        Route::UpdateAlias,
        Route::DeleteAlias,
        Route::DeleteAliases,
        Route::CreateCard,
        Route::GetCard,
        Route::DeleteCard,
        Route::OutboundProxy,
        Route::InboundProxy,
    ];

    /// Whether this is a CMP route (`/cards…`), which the vault API spec does not cover.
    pub fn is_cmp(self) -> bool {
        matches!(self, Route::CreateCard | Route::GetCard | Route::DeleteCard)
    }

    /// Whether this is one of the proxies (not a route of the API port).
    pub fn is_proxy(self) -> bool {
        matches!(self, Route::OutboundProxy | Route::InboundProxy)
    }

    /// The stable name used in JSON (stats keys, fault settings).
    pub fn as_str(self) -> &'static str {
        match self {
            Route::TokenEndpoint => "token",
            Route::CreateAliases => "createAliases",
            Route::RevealMultipleAliases => "revealMultipleAliases",
            Route::RevealAlias => "revealAlias",
            Route::UpdateAlias => "updateAlias",
            Route::DeleteAlias => "deleteAlias",
            Route::DeleteAliases => "deleteAliases",
            Route::CreateCard => "createCard",
            Route::GetCard => "getCard",
            Route::DeleteCard => "deleteCard",
            Route::OutboundProxy => "outboundProxy",
            Route::InboundProxy => "inboundProxy",
        }
    }

    /// The route of a request, from its method and the router's matched path.
    pub(crate) fn from_request(method: &Method, matched_path: &str) -> Option<Route> {
        if matched_path == crate::TOKEN_PATH {
            return (method == Method::POST).then_some(Route::TokenEndpoint);
        }
        let path = matched_path
            .strip_prefix("/v2/{vault}")
            .unwrap_or(matched_path);
        let route = match (path, method.as_str()) {
            ("/aliases", "POST") => Route::CreateAliases,
            ("/aliases", "GET") => Route::RevealMultipleAliases,
            ("/aliases/delete", "POST") => Route::DeleteAliases,
            ("/aliases/{alias}", "GET") => Route::RevealAlias,
            ("/aliases/{alias}", "PUT") => Route::UpdateAlias,
            ("/aliases/{alias}", "DELETE") => Route::DeleteAlias,
            ("/cards", "POST") => Route::CreateCard,
            ("/cards/{id}", "GET") => Route::GetCard,
            ("/cards/{id}", "DELETE") => Route::DeleteCard,
            _ => return None,
        };
        Some(route)
    }
}

impl fmt::Display for Route {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_names_are_the_spec_operation_ids() {
        for route in Route::ALL {
            let json = serde_json::to_string(&route).expect("serialises");
            assert_eq!(json, format!("\"{}\"", route.as_str()));
            let back: Route = serde_json::from_str(&json).expect("parses");
            assert_eq!(back, route);
        }
    }

    #[test]
    fn v1_and_v2_paths_map_to_the_same_route() {
        for prefix in ["", "/v2/{vault}"] {
            let path = format!("{prefix}/aliases/{{alias}}");
            assert_eq!(
                Route::from_request(&Method::DELETE, &path),
                Some(Route::DeleteAlias)
            );
            let path = format!("{prefix}/aliases/delete");
            assert_eq!(
                Route::from_request(&Method::POST, &path),
                Some(Route::DeleteAliases)
            );
        }
        assert_eq!(Route::from_request(&Method::GET, "/_mock/stats"), None);
        assert_eq!(
            Route::from_request(&Method::GET, "/cards/{id}"),
            Some(Route::GetCard)
        );
        assert!(Route::CreateCard.is_cmp() && !Route::CreateAliases.is_cmp());
    }
}
