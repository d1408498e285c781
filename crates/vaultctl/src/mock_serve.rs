//! `vaultctl mock serve`: the mock VGS in the foreground on a given address, until
//! Ctrl-C or SIGTERM. The first stdout line is exactly `listening on http://ADDR`.

use std::time::Duration;

use vault_core::VaultId;
use vgs_mock::{
    ALIAS_SCOPES, BasicCredentials, CARD_SCOPES, DEMO_CLIENT_ID, DEMO_CLIENT_SECRET,
    DEMO_CMP_CLIENT_ID, DEMO_CMP_CLIENT_SECRET, DEMO_V1_PASSWORD, DEMO_V1_USERNAME, DEMO_VAULT_ID,
    FaultConfig, MockConfig, RouteFile, TOKEN_PATH, VaultConfig,
};

use crate::cli::ServeArgs;
use crate::output::{Failure, say};

/// Builds the mock's configuration from the flags; the demo's where none are given.
pub(crate) fn mock_config(args: &ServeArgs) -> Result<MockConfig, Failure> {
    let vault_ids: Vec<String> = if args.vault_ids.is_empty() {
        vec![DEMO_VAULT_ID.to_owned()]
    } else {
        args.vault_ids.clone()
    };
    for id in &vault_ids {
        VaultId::new(id).map_err(|e| {
            Failure::new(format!("--vault-id: {e}. Fix: give ids like tntabc12345"))
        })?;
    }
    let username = args.username.as_deref().unwrap_or(DEMO_V1_USERNAME);
    let password = args.password.as_deref().unwrap_or(DEMO_V1_PASSWORD);
    let mut config = MockConfig::new();
    let routes = args.routes.as_deref().map(load_routes).transpose()?;
    for (i, id) in vault_ids.iter().enumerate() {
        let mut vault = VaultConfig::new(id)
            .with_fingerprinting(args.fingerprinting.0)
            .with_reveal(args.reveal.0);
        // v1 access credentials identify one vault (the outbound proxy's credentials
        // too): they and the routes go to the first one.
        if i == 0 {
            vault = vault.with_v1_credentials(BasicCredentials::new(username, password));
            if let Some(routes) = routes.clone() {
                vault = vault.with_routes(routes);
            }
        }
        config.vaults.push(vault);
    }
    config = config.with_client(
        args.client_id.as_deref().unwrap_or(DEMO_CLIENT_ID),
        args.client_secret.as_deref().unwrap_or(DEMO_CLIENT_SECRET),
        &ALIAS_SCOPES,
    );
    // CMP beside the alias API: the demo's CMP service account, for the first vault.
    config = config.with_cmp_client(
        DEMO_CMP_CLIENT_ID,
        DEMO_CMP_CLIENT_SECRET,
        &CARD_SCOPES,
        &vault_ids[0],
    );
    if let Some(ttl) = args.token_ttl {
        if ttl == 0 {
            return Err(Failure::new(
                "--token-ttl must be at least 1 second. Fix: give a lifetime in seconds, e.g. --token-ttl 60",
            ));
        }
        config = config.with_token_lifetime(Duration::from_secs(ttl));
    }
    let faults = FaultConfig {
        p_5xx: args.fault_5xx,
        p_reset: args.fault_reset,
        p_429: args.fault_429,
        latency_ms: args.latency_ms,
        ..FaultConfig::default()
    };
    faults.validate().map_err(|why| {
        Failure::new(format!(
            "fault settings are not valid: {why}. Fix: give probabilities between 0 and 1, e.g. --fault-5xx 0.05"
        ))
    })?;
    Ok(config
        .with_faults(faults)
        .with_rate_limit_per_minute(args.rate_limit.0))
}

/// Runs the mock until Ctrl-C or SIGTERM, then stops it and returns.
pub(crate) async fn serve(args: ServeArgs) -> Result<(), Failure> {
    let config = mock_config(&args)?;
    // Listen for the signals before saying we listen: a script may send SIGTERM as
    // soon as it has read the first line.
    let shutdown = shutdown_signal()?;
    let mock = vgs_mock::start_on(args.addr, config).await.map_err(|e| {
        Failure::new(format!(
            "cannot listen on {}: {e}. Fix: choose a free port, e.g. --addr 127.0.0.1:0",
            args.addr
        ))
    })?;
    // Seeded before the first line: whoever read it finds the ids written.
    let seeded = match &args.seed_hyperswitch {
        Some(path) => {
            let first = mock
                .config()
                .vaults
                .first()
                .map_or(DEMO_VAULT_ID, |v| v.id.as_str());
            Some(seed_legacy(mock.state(), first, path)?)
        }
        None => None,
    };
    let base = mock.base_url().to_owned();
    // Scripts read this first line to learn the port: nothing may come before it.
    say!("listening on {base}");
    let ca_file = proxy_lines(&mock, &args)?;
    if let (Some(path), Some(count)) = (&args.seed_hyperswitch, seeded) {
        say!(
            "seeded:            {count} test payment methods as Hyperswitch (single-/multi-token cards, a network token) and VGS Collect stored them; ids in {} (vaultctl migrate {})",
            path.display(),
            path.display()
        );
    }
    let config = mock.config();
    let first_vault = config.vaults.first().map_or("", |v| v.id.as_str());
    let vaults: Vec<&str> = config.vaults.iter().map(|v| v.id.as_str()).collect();
    say!(
        "vaults:            {} (fingerprinting {}, reveal {})",
        vaults.join(", "),
        args.fingerprinting,
        args.reveal
    );
    for client in config.clients.iter().filter(|c| c.tenant.is_none()) {
        say!(
            "API v2 client:     {} / {} (scopes {})",
            client.id,
            client.secret,
            client.scopes.join(" ")
        );
    }
    for vault in &config.vaults {
        for creds in &vault.v1_credentials {
            say!(
                "API v1 access:     {} / {} (vault {})",
                creds.username,
                creds.password,
                vault.id
            );
        }
    }
    for client in config.clients.iter().filter(|c| c.tenant.is_some()) {
        say!(
            "CMP client:        {} / {} (scopes {}; tenant {})",
            client.id,
            client.secret,
            client.scopes.join(" "),
            client.tenant.as_deref().unwrap_or_default()
        );
    }
    let faults = &config.faults;
    say!(
        "token lifetime:    {} s; rate limit {}; faults: 5xx {}, reset {}, 429 {}, latency {} ms",
        config.token_lifetime.as_secs(),
        config
            .rate_limit_per_minute
            .map_or("none".to_owned(), |n| format!(
                "{n} requests/minute per vault"
            )),
        faults.p_5xx,
        faults.p_reset,
        faults.p_429,
        faults.latency_ms
    );
    say!("routes:");
    say!(
        "  POST            {base}{TOKEN_PATH}  (OAuth client_credentials; client id and secret as HTTP Basic)"
    );
    say!("  POST, GET       {base}/v2/{{vault}}/aliases           (API v2, Bearer token)");
    say!("  GET, PUT, DEL   {base}/v2/{{vault}}/aliases/{{alias}}");
    say!(
        "  POST, GET       {base}/aliases                      (API v1, HTTP Basic access credentials)"
    );
    say!("  GET, PUT, DEL   {base}/aliases/{{alias}}");
    say!(
        "  POST            {base}/cards                        (CMP, Bearer token; application/vnd.api+json)"
    );
    say!("  GET, DEL        {base}/cards/{{id}}");
    say!("  GET             {base}/_mock/stats                  (token and API request counters)");
    say!(
        "  GET             {base}/_mock/openapi.yaml           (OpenAPI 3 description of every route, for Swagger UI, schemathesis, SDK generators)"
    );
    if let Some(client) = config.clients.first() {
        say!("use it:");
        say!(
            "  export VGS_ENDPOINT={base} VGS_VAULT_ID={first_vault} VGS_CLIENT_ID={} VGS_CLIENT_SECRET={}",
            client.id,
            client.secret
        );
        say!("  vaultctl check");
    }
    if let Some(client) = config.clients.iter().find(|c| c.tenant.is_some()) {
        say!(
            "  VGS_CLIENT_ID={} VGS_CLIENT_SECRET={} vaultctl check --api cmp   (CMP)",
            client.id,
            client.secret
        );
    }
    say!("Ctrl-C or SIGTERM stops it");

    let signal = shutdown.await;
    eprintln!("{signal}: stopping the mock");
    mock.stop().await;
    if let Some(path) = ca_file {
        let _ = std::fs::remove_file(path);
    }
    Ok(())
}

/// What `--seed-hyperswitch` lays out: public test cards and a network token.
const SEED: &str = include_str!("../../../fixtures/hyperswitch/seed.json");

/// Stores the seed cards in `vault` in each legacy layout (and a network token) and
/// writes their ids to
/// `path` as `vaultctl migrate` reads them; returns how many were stored.
fn seed_legacy(
    state: &vgs_mock::MockState,
    vault: &str,
    path: &std::path::Path,
) -> Result<usize, Failure> {
    use vgs_mock::{HyperswitchLayout, LegacyCard, LegacyStored};
    let seed: serde_json::Value = serde_json::from_str(SEED).map_err(|e| {
        Failure::new(format!(
            "fixtures/hyperswitch/seed.json is not JSON: {e}. Fix: report this"
        ))
    })?;
    let text = |v: &serde_json::Value| v.as_str().map(str::to_owned);
    let cards: Vec<LegacyCard> = seed["cards"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|card| {
            Some(LegacyCard {
                card_number: text(&card["card_number"])?,
                card_exp_month: text(&card["card_exp_month"])?,
                card_exp_year: text(&card["card_exp_year"])?,
                card_cvc: text(&card["card_cvc"]),
            })
        })
        .collect();
    let refused = |what: &str| {
        Failure::new(format!(
            "the mock could not store a seed {what} in {vault}. Fix: report this"
        ))
    };
    let mut lines = String::new();
    let mut count = 0;
    let mut push = |stored: &LegacyStored, expiry: Option<String>, lines: &mut String| {
        count += 1;
        let mut line = serde_json::json!({
            "ref": format!("seed-{count}"),
            "connector_vault_id": vgs_mock::legacy_id_json(stored),
        });
        if let Some(expiry) = expiry {
            line["expiry"] = serde_json::Value::from(expiry);
        }
        lines.push_str(&line.to_string());
        lines.push('\n');
    };
    for layout in HyperswitchLayout::ALL {
        for card in &cards {
            let stored = state
                .store_legacy_card(vault, card, layout)
                .and_then(Result::ok)
                .ok_or_else(|| refused("card"))?;
            // Collect keeps no expiry: the merchant's line carries it.
            let expiry = matches!(stored, LegacyStored::Collect { .. })
                .then(|| format!("{}/{}", card.card_exp_month, card.card_exp_year));
            push(&stored, expiry, &mut lines);
        }
    }
    // And a network token, as Hyperswitch's connector stores NetworkTokenData.
    let token = &seed["network_token"];
    let token = vgs_mock::LegacyNetworkToken {
        token: text(&token["token"]).unwrap_or_default(),
        exp_month: text(&token["exp_month"]).unwrap_or_default(),
        exp_year: text(&token["exp_year"]).unwrap_or_default(),
        cryptogram: text(&token["cryptogram"]),
    };
    let stored = state
        .store_legacy_network_token(vault, &token)
        .and_then(Result::ok)
        .ok_or_else(|| refused("network token"))?;
    push(&stored, None, &mut lines);
    std::fs::write(path, lines).map_err(|e| {
        Failure::new(format!("cannot write --seed-hyperswitch {}: {e}. Fix: check the directory exists and is writable", path.display()))
    })?;
    Ok(count)
}

/// Reads and parses `--routes`; a refusal names the file, the line and the field.
fn load_routes(path: &std::path::Path) -> Result<RouteFile, Failure> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        Failure::new(format!(
            "cannot read --routes {}: {e}. Fix: check the path",
            path.display()
        ))
    })?;
    RouteFile::parse(&text).map_err(|error| {
        Failure::new(format!(
            "--routes {}: {error}. Fix: correct that field (the format is what `vgs get routes` prints)",
            path.display()
        ))
    })
}

/// With routes, the proxies' lines (second and third): where they listen, the
/// outbound proxy's credentials and the CA certificate (written to a file) that a
/// client must trust for https upstreams. Returns the file, removed at exit.
fn proxy_lines(
    mock: &vgs_mock::MockHandle,
    args: &ServeArgs,
) -> Result<Option<std::path::PathBuf>, Failure> {
    let (Some(outbound), Some(inbound), Some(authority)) = (
        mock.outbound_proxy_addr(),
        mock.inbound_proxy_addr(),
        mock.proxy_authority(),
    ) else {
        return Ok(None);
    };
    // A name no other process uses, created afresh (never another file's contents).
    let path = std::env::temp_dir().join(format!(
        "vgs-mock-proxy-ca-{}-{}.pem",
        std::process::id(),
        outbound.port()
    ));
    let written = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&path)
        .and_then(|mut file| {
            use std::io::Write as _;
            file.write_all(authority.certificate_pem().as_bytes())
        });
    written.map_err(|e| {
        Failure::new(format!(
            "cannot write the proxy CA certificate to {}: {e}. Fix: make the temporary directory writable (TMPDIR)",
            path.display()
        ))
    })?;
    let username = args.username.as_deref().unwrap_or(DEMO_V1_USERNAME);
    let password = args.password.as_deref().unwrap_or(DEMO_V1_PASSWORD);
    // Credentials percent-encoded, so that the URL parses whatever they hold.
    let mut url = reqwest::Url::parse(&format!("http://{outbound}"))
        .map_err(|e| Failure::new(format!("cannot make the proxy URL: {e}")))?;
    let _ = url.set_username(username);
    let _ = url.set_password(Some(password));
    say!(
        "outbound proxy: {} CA certificate: {} (an HTTP proxy; it intercepts TLS to https upstreams, so clients trust that certificate)",
        url.as_str().trim_end_matches('/'),
        path.display()
    );
    say!("inbound proxy: http://{inbound} (forwards to the routes' upstreams)");
    Ok(Some(path))
}

/// Installs the Ctrl-C (SIGINT) and, on Unix, SIGTERM handlers now; the returned
/// future waits for either and says which.
fn shutdown_signal() -> Result<impl Future<Output = &'static str>, Failure> {
    #[cfg(unix)]
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .map_err(|e| Failure::new(format!("cannot handle SIGTERM: {e}")))?;
    // `ctrl_c()` registers its handler on first poll: poll it once now.
    let mut interrupt = Box::pin(tokio::signal::ctrl_c());
    let _ = futures_util::FutureExt::now_or_never(&mut interrupt);
    Ok(async move {
        #[cfg(unix)]
        {
            tokio::select! {
                _ = interrupt => "interrupted",
                _ = term.recv() => "terminated",
            }
        }
        #[cfg(not(unix))]
        {
            let _ = interrupt.await;
            "interrupted"
        }
    })
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;
    use crate::cli::{Cli, Command, MockCommand};

    fn serve_args(flags: &[&str]) -> ServeArgs {
        let mut argv = vec!["vaultctl", "mock", "serve"];
        argv.extend_from_slice(flags);
        match Cli::try_parse_from(argv).expect("parses").command {
            Command::Mock(MockCommand::Serve(args)) => args,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn no_flags_serve_the_demo_vault_and_credentials() {
        let config = mock_config(&serve_args(&[])).expect("valid");
        assert_eq!(config.vaults.len(), 1);
        assert_eq!(config.vaults[0].id, DEMO_VAULT_ID);
        assert_eq!(config.clients[0].id, DEMO_CLIENT_ID);
        assert_eq!(config.clients[1].id, DEMO_CMP_CLIENT_ID);
        assert_eq!(config.clients[1].tenant.as_deref(), Some(DEMO_VAULT_ID));
        assert_eq!(config.faults, FaultConfig::default());
        assert_eq!(config.rate_limit_per_minute, Some(3_000));
    }

    #[test]
    fn the_rate_limit_can_be_lifted_for_benchmarks() {
        let config = mock_config(&serve_args(&["--rate-limit", "none"])).expect("valid");
        assert_eq!(config.rate_limit_per_minute, None);
        let config = mock_config(&serve_args(&["--rate-limit", "600"])).expect("valid");
        assert_eq!(config.rate_limit_per_minute, Some(600));
        let cli = Cli::try_parse_from(["vaultctl", "mock", "serve", "--rate-limit", "0"]);
        assert!(cli.is_err());
    }

    #[test]
    fn flags_set_vaults_credentials_lifetime_and_faults() {
        let config = mock_config(&serve_args(&[
            "--vault-id",
            "tntone1",
            "--vault-id",
            "tnttwo2",
            "--client-id",
            "cid",
            "--client-secret",
            "csecret",
            "--token-ttl",
            "60",
            "--fault-5xx",
            "0.1",
            "--latency-ms",
            "5",
        ]))
        .expect("valid");
        assert_eq!(config.vaults.len(), 2);
        assert_eq!(config.vaults[1].v1_credentials.len(), 0);
        assert_eq!(config.clients[0].secret, "csecret");
        assert_eq!(config.token_lifetime, Duration::from_secs(60));
        assert_eq!(config.faults.p_5xx, 0.1);
        assert_eq!(config.faults.latency_ms, 5);
    }

    #[test]
    fn bad_vault_ids_and_probabilities_are_refused() {
        assert!(mock_config(&serve_args(&["--vault-id", "vault1"])).is_err());
        let err = mock_config(&serve_args(&["--fault-429", "2"])).expect_err("p > 1");
        assert!(err.message.contains("between 0 and 1"), "{}", err.message);
    }
}
