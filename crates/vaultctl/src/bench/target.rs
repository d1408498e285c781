//! The mock `vaultctl bench` runs against: embedded in this process (rate limit
//! lifted), a `vaultctl mock serve` child process, or one at `--endpoint`; its stats.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use secrecy::SecretString;
use serde_json::{Value, json};
use vault_vgs::{ApiGeneration, VgsConnector};
use vgs_mock::{
    DEMO_CLIENT_ID, DEMO_CLIENT_SECRET, DEMO_VAULT_ID, FaultConfig, MockConfig, MockHandle, Stats,
};

use super::baseline::{Api, Baseline, bare_client};
use crate::config::{ENV_ENDPOINT, Settings};
use crate::output::Failure;

/// Where the mock runs.
enum Mock {
    /// In this process, on this runtime.
    Embedded(MockHandle),
    /// A `vaultctl mock serve` this process started (killed on drop).
    Child { _process: ChildMock },
    /// Someone else's, at this base URL.
    External,
}

/// A mock, the credentials for it, and how to read its stats.
pub(crate) struct Target {
    mock: Mock,
    base: String,
    api: Api,
    vault_id: String,
    client_id: String,
    secret: SecretString,
    /// The lifetime the mock issues tokens with, when this process configured it.
    token_lifetime: Option<Duration>,
    /// The latency the embedded mock adds to every request (`--latency-ms`).
    latency: Option<Duration>,
    stats_client: reqwest::Client,
}

impl Target {
    /// Starts the mock in this process: the demo vault and client, no rate limit,
    /// tokens valid `token_ttl` (default the mock's 300 s).
    pub(crate) async fn embedded(
        token_ttl: Option<Duration>,
        latency: Option<Duration>,
    ) -> Result<Self, Failure> {
        let mut config = MockConfig::demo().with_rate_limit_per_minute(None);
        if let Some(ttl) = token_ttl {
            config = config.with_token_lifetime(ttl);
        }
        if let Some(latency) = latency {
            config = config.with_faults(FaultConfig {
                latency_ms: u64::try_from(latency.as_millis()).unwrap_or(u64::MAX),
                ..FaultConfig::none()
            });
        }
        let lifetime = config.token_lifetime;
        let mock = vgs_mock::start(config).await.map_err(|e| {
            Failure::new(format!(
                "cannot start the embedded mock on a loopback port: {e}. Fix: check that 127.0.0.1 is available"
            ))
        })?;
        Ok(Target {
            base: mock.base_url().to_owned(),
            mock: Mock::Embedded(mock),
            api: Api::V2,
            vault_id: DEMO_VAULT_ID.to_owned(),
            client_id: DEMO_CLIENT_ID.to_owned(),
            secret: SecretString::from(DEMO_CLIENT_SECRET.to_owned()),
            token_lifetime: Some(lifetime),
            latency,
            stats_client: bare_client()?,
        })
    }

    /// Starts `vaultctl mock serve --rate-limit none` as a child process (so that
    /// this process's memory is the client's alone) and uses the demo credentials.
    pub(crate) fn child() -> Result<Self, Failure> {
        let child = ChildMock::start()?;
        Ok(Target {
            base: child.base.clone(),
            mock: Mock::Child { _process: child },
            api: Api::V2,
            vault_id: DEMO_VAULT_ID.to_owned(),
            client_id: DEMO_CLIENT_ID.to_owned(),
            secret: SecretString::from(DEMO_CLIENT_SECRET.to_owned()),
            token_lifetime: None,
            latency: None,
            stats_client: bare_client()?,
        })
    }

    /// A mock at `endpoint`, with the vault and credentials of the `VGS_*`
    /// environment variables.
    pub(crate) fn external(endpoint: &str) -> Result<Self, Failure> {
        let settings = Settings::resolve(None, |name| {
            if name == ENV_ENDPOINT {
                Some(endpoint.to_owned())
            } else {
                std::env::var(name).ok()
            }
        })?;
        let api = match settings.api_name() {
            "v1" => Api::V1,
            "v2" => Api::V2,
            other => {
                return Err(Failure::new(format!(
                    "`vaultctl bench` measures VGS's vault API v1 and v2, not `{other}`. Fix: set VGS_API=v2 or v1"
                )));
            }
        };
        Ok(Target {
            mock: Mock::External,
            base: endpoint.trim_end_matches('/').to_owned(),
            api,
            vault_id: settings.vault_id.clone(),
            client_id: settings.client_id.clone(),
            secret: settings.client_secret().clone(),
            token_lifetime: None,
            latency: None,
            stats_client: bare_client()?,
        })
    }

    /// A new connector to the mock, with a cold token cache and its own HTTP client.
    pub(crate) fn connector(&self) -> Result<VgsConnector, Failure> {
        let api = match self.api {
            Api::V1 => ApiGeneration::V1,
            Api::V2 => ApiGeneration::V2,
        };
        VgsConnector::builder()
            .credentials(self.client_id.clone(), self.secret.clone())
            .vault_id(self.vault_id.clone())
            .api(api)
            .endpoint(self.base.clone())
            .build()
            .map_err(|r| Failure::vault("building the connector failed", &r))
    }

    /// A new baseline: its own HTTP client and (API v2) its own token, fetched now.
    pub(crate) async fn baseline(&self) -> Result<Baseline, Failure> {
        Baseline::new(
            &self.base,
            self.api,
            &self.vault_id,
            &self.client_id,
            &self.secret,
        )
        .await
    }

    /// The mock's counters.
    pub(crate) async fn stats(&self) -> Result<Stats, Failure> {
        if let Mock::Embedded(mock) = &self.mock {
            return Ok(mock.stats());
        }
        let url = format!("{}/_mock/stats", self.base);
        let unreadable = |why: String| {
            Failure::new(format!(
                "cannot read the mock's counters at {url}: {why}. Fix: point --endpoint at `vaultctl mock serve`, which serves /_mock/stats"
            ))
        };
        let response = self
            .stats_client
            .get(&url)
            .send()
            .await
            .map_err(|e| unreadable(e.to_string()))?;
        if !response.status().is_success() {
            return Err(unreadable(format!("HTTP {}", response.status().as_u16())));
        }
        let body = response
            .bytes()
            .await
            .map_err(|e| unreadable(e.to_string()))?;
        serde_json::from_slice(&body).map_err(|e| unreadable(e.to_string()))
    }

    /// The token lifetime, when known without asking the mock.
    pub(crate) fn token_lifetime(&self) -> Option<Duration> {
        self.token_lifetime
    }

    /// Whether calls carry OAuth tokens (API v2).
    pub(crate) fn uses_tokens(&self) -> bool {
        self.api == Api::V2
    }

    /// The vault id.
    pub(crate) fn vault_id(&self) -> &str {
        &self.vault_id
    }

    /// `v1` or `v2`.
    pub(crate) fn api_name(&self) -> &'static str {
        match self.api {
            Api::V1 => "v1",
            Api::V2 => "v2",
        }
    }

    /// The latency the embedded mock adds to every request, if any.
    pub(crate) fn latency(&self) -> Option<Duration> {
        self.latency
    }

    /// One line: which mock, where, which API.
    pub(crate) fn describe(&self) -> String {
        let kind = match &self.mock {
            Mock::Embedded(_) => "the embedded mock (in this process, rate limit lifted)",
            Mock::Child { .. } => "a `vaultctl mock serve --rate-limit none` child process",
            Mock::External => "the mock",
        };
        let ttl = self
            .token_lifetime
            .map(|l| format!(", tokens valid {} s", l.as_secs()))
            .unwrap_or_default();
        let latency = self
            .latency
            .map(|l| format!(", {} ms added to every request", l.as_millis()))
            .unwrap_or_default();
        format!(
            "{kind} at {}, vault {}, API {}{ttl}{latency}",
            self.base,
            self.vault_id,
            self.api_name()
        )
    }

    /// Who shares the CPUs, for the footnote.
    pub(crate) fn sharing_note(&self) -> String {
        let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
        match self.mock {
            Mock::Embedded(_) => format!(
                "the mock runs in this process: mock, connector and baseline share the same {cpus} CPUs"
            ),
            _ => format!("client and mock share this machine's {cpus} CPUs"),
        }
    }

    /// The mock, for the JSON document.
    pub(crate) fn mock_json(&self) -> Value {
        let kind = match self.mock {
            Mock::Embedded(_) => "embedded",
            Mock::Child { .. } => "child_process",
            Mock::External => "external",
        };
        json!({
            "kind": kind,
            "url": self.base,
            "vault_id": self.vault_id,
            "latency_ms": self.latency.map(|l| l.as_millis() as u64),
        })
    }
}

/// `vaultctl mock serve --addr 127.0.0.1:0 --rate-limit none`, killed on drop.
struct ChildMock {
    child: Child,
    base: String,
}

impl ChildMock {
    fn start() -> Result<Self, Failure> {
        let exe = std::env::current_exe().map_err(|e| {
            Failure::new(format!("cannot find this program to start the mock: {e}"))
        })?;
        let mut child = Command::new(exe)
            .args([
                "mock",
                "serve",
                "--addr",
                "127.0.0.1:0",
                "--rate-limit",
                "none",
            ])
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| Failure::new(format!("cannot start the mock process: {e}")))?;
        let first = child.stdout.take().and_then(|stdout| {
            let mut reader = BufReader::new(stdout);
            let mut line = String::new();
            reader.read_line(&mut line).ok()?;
            // Keep draining its banner so it never blocks on a full pipe.
            std::thread::spawn(move || reader.lines().for_each(drop));
            line.trim_end()
                .strip_prefix("listening on ")
                .map(str::to_owned)
        });
        match first {
            Some(base) => Ok(ChildMock { child, base }),
            None => {
                let _ = child.kill();
                let _ = child.wait();
                Err(Failure::new(
                    "the mock process did not say where it listens. Fix: run `vaultctl mock serve --addr 127.0.0.1:0` to see why",
                ))
            }
        }
    }
}

impl Drop for ChildMock {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
