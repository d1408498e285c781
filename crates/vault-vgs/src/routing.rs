//! Routing: which URLs a vault id, an environment and an API generation lead to.
//! Hosts are built with the `url` crate from a validated vault id, never by replacing
//! placeholders in a string; plain `http` is allowed only to loopback addresses.

use std::net::IpAddr;

use error_stack::Report;
use url::{Host, Url};
use vault_core::{Detail, Environment, VaultError, VaultId};

/// VGS's OAuth token endpoint (Keycloak), used by API v2.
pub const VGS_TOKEN_URL: &str =
    "https://auth.verygoodsecurity.com/auth/realms/vgs/protocol/openid-connect/token";

/// The token endpoint's path, also under a custom endpoint.
pub(crate) const TOKEN_PATH: &str = "/auth/realms/vgs/protocol/openid-connect/token";

/// Which VGS vault API the connector speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ApiGeneration {
    /// Vault API v1 (the official OpenAPI spec): HTTP Basic access credentials to
    /// `https://api.{sandbox|live|live-eu-1}.verygoodvault.com`.
    V1,
    /// Vault API v2 (what Hyperswitch calls), the default: an OAuth bearer token from
    /// VGS's token endpoint (client id and secret as HTTP Basic) to
    /// `https://{vault_id}.{sandbox|live}.vault-api.verygoodvault.com`.
    #[default]
    V2,
    /// The Card Management Platform (a card is one object with a card id): an OAuth
    /// bearer token (client id and secret as form fields) to `https://sandbox.vgsapi.com`
    /// or `https://vgsapi.com` (no live-eu-1 host). Spoken by
    /// [`CmpConnector`](crate::CmpConnector), not by `VgsConnector`.
    Cmp,
}

/// Where requests go: VGS itself, or a custom base URL (the mock, a forward proxy).
///
/// A custom endpoint serves every API under one base: the token endpoint at
/// `{base}/auth/realms/vgs/protocol/openid-connect/token`, API v1 at
/// `{base}/aliases`, API v2 for vault `V` at `{base}/v2/V/aliases`, and CMP at
/// `{base}/cards` (the layout `vgs-mock` and `vaultctl mock serve` use).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Endpoint {
    /// VGS's own hosts for an environment.
    Vgs(Environment),
    /// A custom base URL: `https`, or `http` to a loopback address only.
    Custom(Url),
}

impl Endpoint {
    /// Parses and checks a custom base URL: it must be `https`, or `http` to a loopback
    /// address (127.0.0.0/8, ::1, `localhost`), with no credentials, query or fragment.
    pub fn custom(base: &str) -> Result<Self, Report<VaultError>> {
        checked_url(base).map(Endpoint::Custom)
    }
}

/// Parses a URL the connector will send credentials or card data to: `https`, or
/// `http` to loopback only; no credentials, query or fragment.
pub(crate) fn checked_url(base: &str) -> Result<Url, Report<VaultError>> {
    {
        let invalid = |why: String| Report::new(VaultError::InvalidConfig).attach(Detail::new(why));
        let url = Url::parse(base).map_err(|e| {
            invalid(format!(
                "endpoint is not a valid URL ({e}); give a base like https://proxy.example.com or http://127.0.0.1:8080"
            ))
        })?;
        if !url.username().is_empty() || url.password().is_some() {
            return Err(invalid(
                "endpoint must not carry credentials in the URL; configure them separately"
                    .to_owned(),
            ));
        }
        if url.query().is_some() || url.fragment().is_some() {
            return Err(invalid(
                "endpoint must not have a query or fragment".to_owned(),
            ));
        }
        match url.scheme() {
            "https" => {}
            "http" if is_loopback(&url) => {}
            "http" => {
                return Err(invalid(format!(
                    "endpoint {} uses plain http to a non-loopback host; card data must travel over https (http is allowed only to 127.0.0.1, ::1 or localhost)",
                    url.host_str().unwrap_or("?")
                )));
            }
            other => {
                return Err(invalid(format!(
                    "endpoint scheme `{other}` is not supported; use https"
                )));
            }
        }
        Ok(url)
    }
}

pub(crate) fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(Host::Ipv4(ip)) => IpAddr::V4(ip).is_loopback(),
        Some(Host::Ipv6(ip)) => IpAddr::V6(ip).is_loopback(),
        Some(Host::Domain(domain)) => domain.eq_ignore_ascii_case("localhost"),
        None => false,
    }
}

/// The URLs one connector uses, computed once at build time.
#[derive(Debug, Clone)]
pub(crate) struct Routes {
    /// The collection every route hangs below: `…/aliases` for this vault (API v1,
    /// v2), or `…/cards` (CMP).
    pub(crate) aliases: Url,
    /// The token endpoint (API v2 and CMP).
    pub(crate) token: Option<Url>,
}

impl Routes {
    pub(crate) fn new(
        api: ApiGeneration,
        endpoint: &Endpoint,
        vault_id: &VaultId,
        token_override: Option<Url>,
    ) -> Result<Self, Report<VaultError>> {
        let config = |why: String| Report::new(VaultError::InvalidConfig).attach(Detail::new(why));
        let aliases = match (api, endpoint) {
            (ApiGeneration::V1, Endpoint::Vgs(env)) => {
                let mut url =
                    Url::parse("https://api.verygoodvault.com/aliases").expect("static URL parses");
                let host = format!("api.{}.verygoodvault.com", env.as_str());
                url.set_host(Some(&host))
                    .map_err(|e| config(format!("cannot build the v1 host: {e}")))?;
                url
            }
            (ApiGeneration::V2, Endpoint::Vgs(env)) => {
                let env = match env {
                    Environment::Sandbox => "sandbox",
                    Environment::Live => "live",
                    Environment::LiveEu1 => {
                        return Err(config(
                            "API v2 has no live-eu-1 host; use environment live, or API v1 for live-eu-1".to_owned(),
                        ));
                    }
                };
                let mut url = Url::parse("https://vault-api.verygoodvault.com/aliases")
                    .expect("static URL parses");
                // The vault id was validated (`tnt` + lowercase letters/digits), so it is
                // exactly one DNS label; set_host validates the whole host again.
                let host = format!("{}.{env}.vault-api.verygoodvault.com", vault_id.as_str());
                url.set_host(Some(&host))
                    .map_err(|e| config(format!("cannot build the v2 host: {e}")))?;
                url
            }
            (ApiGeneration::Cmp, Endpoint::Vgs(env)) => match env {
                Environment::Sandbox => {
                    Url::parse("https://sandbox.vgsapi.com/cards").expect("static URL parses")
                }
                Environment::Live => {
                    Url::parse("https://vgsapi.com/cards").expect("static URL parses")
                }
                Environment::LiveEu1 => {
                    return Err(config(
                        "CMP has no live-eu-1 host (only https://sandbox.vgsapi.com and https://vgsapi.com); use environment sandbox or live".to_owned(),
                    ));
                }
            },
            (ApiGeneration::V1, Endpoint::Custom(base)) => join(base, &["aliases"]),
            (ApiGeneration::V2, Endpoint::Custom(base)) => {
                join(base, &["v2", vault_id.as_str(), "aliases"])
            }
            (ApiGeneration::Cmp, Endpoint::Custom(base)) => join(base, &["cards"]),
        };
        let token = match api {
            ApiGeneration::V1 => None,
            ApiGeneration::V2 | ApiGeneration::Cmp => Some(match (token_override, endpoint) {
                (Some(url), _) => url,
                (None, Endpoint::Vgs(_)) => Url::parse(VGS_TOKEN_URL).expect("static URL parses"),
                (None, Endpoint::Custom(base)) => {
                    let segments: Vec<&str> =
                        TOKEN_PATH.trim_start_matches('/').split('/').collect();
                    join(base, &segments)
                }
            }),
        };
        Ok(Routes { aliases, token })
    }

    /// `…/aliases/{alias}`, with the alias as one escaped path segment.
    pub(crate) fn alias(&self, alias: &str) -> Url {
        join(&self.aliases, &[alias])
    }
}

/// Appends path segments to a base URL (each percent-encoded as one segment).
fn join(base: &Url, segments: &[&str]) -> Url {
    let mut url = base.clone();
    {
        let mut path = url
            .path_segments_mut()
            .expect("http(s) URLs can have path segments");
        path.pop_if_empty();
        path.extend(segments);
    }
    url
}

#[cfg(test)]
mod tests {
    use vault_core::ReportExt;

    use super::*;

    fn vault() -> VaultId {
        VaultId::new("tntabc12345").expect("valid")
    }

    #[test]
    fn v2_host_is_built_from_the_vault_id_and_environment() {
        let routes = Routes::new(
            ApiGeneration::V2,
            &Endpoint::Vgs(Environment::Sandbox),
            &vault(),
            None,
        )
        .expect("routes");
        assert_eq!(
            routes.aliases.as_str(),
            "https://tntabc12345.sandbox.vault-api.verygoodvault.com/aliases"
        );
        assert_eq!(routes.token.as_ref().map(Url::as_str), Some(VGS_TOKEN_URL));
        let live = Routes::new(
            ApiGeneration::V2,
            &Endpoint::Vgs(Environment::Live),
            &vault(),
            None,
        )
        .expect("routes");
        assert_eq!(
            live.aliases.host_str(),
            Some("tntabc12345.live.vault-api.verygoodvault.com")
        );
        let eu = Routes::new(
            ApiGeneration::V2,
            &Endpoint::Vgs(Environment::LiveEu1),
            &vault(),
            None,
        )
        .expect_err("no v2 eu");
        assert_eq!(eu.kind(), VaultError::InvalidConfig);
    }

    #[test]
    fn v1_hosts_follow_the_spec_servers() {
        for (env, host) in [
            (Environment::Sandbox, "api.sandbox.verygoodvault.com"),
            (Environment::Live, "api.live.verygoodvault.com"),
            (Environment::LiveEu1, "api.live-eu-1.verygoodvault.com"),
        ] {
            let routes = Routes::new(ApiGeneration::V1, &Endpoint::Vgs(env), &vault(), None)
                .expect("routes");
            assert_eq!(routes.aliases.as_str(), format!("https://{host}/aliases"));
            assert!(routes.token.is_none());
        }
    }

    #[test]
    fn custom_endpoint_layout() {
        let base = Endpoint::custom("http://127.0.0.1:8080/").expect("loopback http");
        let v2 = Routes::new(ApiGeneration::V2, &base, &vault(), None).expect("routes");
        assert_eq!(
            v2.aliases.as_str(),
            "http://127.0.0.1:8080/v2/tntabc12345/aliases"
        );
        assert_eq!(
            v2.token.as_ref().map(Url::as_str),
            Some("http://127.0.0.1:8080/auth/realms/vgs/protocol/openid-connect/token")
        );
        assert_eq!(
            v2.alias("tok_sandbox_x").as_str(),
            "http://127.0.0.1:8080/v2/tntabc12345/aliases/tok_sandbox_x"
        );
        let v1 = Routes::new(
            ApiGeneration::V1,
            &Endpoint::custom("https://proxy.example.com/vgs").expect("https"),
            &vault(),
            None,
        )
        .expect("routes");
        assert_eq!(v1.aliases.as_str(), "https://proxy.example.com/vgs/aliases");
    }

    #[test]
    fn plain_http_is_refused_off_loopback() {
        for ok in [
            "http://127.0.0.1:1",
            "http://127.8.9.10",
            "http://[::1]:80",
            "http://localhost:3000",
            "https://10.0.0.1",
        ] {
            assert!(Endpoint::custom(ok).is_ok(), "{ok}");
        }
        let err = Endpoint::custom("http://10.0.0.1:8080").expect_err("private http");
        assert_eq!(err.kind(), VaultError::InvalidConfig);
        assert!(
            err.details()[0].contains("plain http to a non-loopback host"),
            "{:?}",
            err.details()
        );
        for bad in [
            "http://localhost.evil.com",
            "ftp://127.0.0.1",
            "not a url",
            "https://user:pw@host",
            "https://h/?x=1",
        ] {
            assert!(Endpoint::custom(bad).is_err(), "{bad}");
        }
    }
}
