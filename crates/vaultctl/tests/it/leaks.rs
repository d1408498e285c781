//! One place that looks for leaks everywhere at once: every `tracing` event at TRACE,
//! every rendering (`{:?}`, `{:#?}`, `{}`, `summary()`) of results and error reports
//! across the flows and failure modes, the stdout and stderr of `vaultctl` runs, and
//! the messages of panics in spawned tasks. No card number, CVC, client secret,
//! access password or access token may appear in any of them.

use std::io::Write as _;
use std::sync::Arc;

use vault_core::{
    Alias, Card, ConnectorVaultId, DeleteRequest, ExternalVault, InsertRequest, ReportExt,
    RetrieveRequest, TokenizationMode,
};
use vault_vgs::{ApiGeneration, VgsConnector};
use vgs_mock::{FailWith, MockConfig, Route};

use crate::support::{TempDir, run, stderr, stdout, vaultctl};

/// Cards with CVCs that appear nowhere else (ports, counts), so a hit is a leak.
const CARDS: [(&str, &str); 3] = [
    ("4111111111111111", "8362"),
    ("5555555555554444", "7194"),
    ("378282246310005", "6027"),
];
const HOLDER: &str = "Hedy Lamarr";

fn card(i: usize) -> Card {
    let (number, cvc) = CARDS[i];
    serde_json::from_value(serde_json::json!({
        "card_number": number, "card_exp_month": "09", "card_exp_year": "2031",
        "card_cvc": cvc, "card_holder_name": HOLDER,
    }))
    .expect("test card")
}

fn card_json(i: usize) -> String {
    let (number, cvc) = CARDS[i];
    format!(
        r#"{{"card_number":"{number}","card_exp_month":"09","card_exp_year":"2031","card_cvc":"{cvc}","card_holder_name":"{HOLDER}"}}"#
    )
}

/// Where `needle` stands alone (not inside a longer run of letters or digits).
fn stands_alone(haystack: &str, needle: &str) -> bool {
    haystack.match_indices(needle).any(|(at, _)| {
        let before = haystack[..at].chars().next_back();
        let after = haystack[at + needle.len()..].chars().next();
        !before.is_some_and(char::is_alphanumeric) && !after.is_some_and(char::is_alphanumeric)
    })
}

fn connector(mock: &vgs_mock::MockHandle, api: ApiGeneration, secret: &str) -> VgsConnector {
    let (id, secret) = match api {
        ApiGeneration::V1 => (
            vgs_mock::DEMO_V1_USERNAME,
            vgs_mock::DEMO_V1_PASSWORD.to_owned(),
        ),
        _ => (vgs_mock::DEMO_CLIENT_ID, secret.to_owned()),
    };
    VgsConnector::builder()
        .api(api)
        .credentials(id, secret.into())
        .vault_id(vgs_mock::DEMO_VAULT_ID)
        .endpoint(mock.base_url())
        .build()
        .expect("connector")
}

fn render_report(out: &mut Vec<String>, report: &vault_core::Report<vault_core::VaultError>) {
    out.push(format!("{report:?}"));
    out.push(format!("{report:#?}"));
    out.push(format!("{report}"));
    out.push(report.summary());
}

/// Library flows and failure modes, in process: renders everything they return.
async fn library_flows(mock: &vgs_mock::MockHandle, out: &mut Vec<String>) {
    for api in [ApiGeneration::V2, ApiGeneration::V1] {
        let vault: Arc<dyn ExternalVault> =
            Arc::new(connector(mock, api, vgs_mock::DEMO_CLIENT_SECRET));
        for mode in [TokenizationMode::PerField, TokenizationMode::SingleId] {
            let stored = vault
                .insert(InsertRequest::card(card(0)).with_mode(mode))
                .await
                .expect("insert");
            out.push(format!("{stored:?} {stored:#?}"));
            let back = vault
                .retrieve(RetrieveRequest::new(stored.connector_vault_id.clone()))
                .await
                .expect("retrieve");
            assert_eq!(back.card(), Some(&card(0)));
            out.push(format!("{back:?} {back:#?}"));
            let deleted = vault
                .delete(DeleteRequest::new(stored.connector_vault_id))
                .await
                .expect("delete");
            out.push(format!("{deleted:?}"));
        }
    }
    let vgs = connector(mock, ApiGeneration::V2, vgs_mock::DEMO_CLIENT_SECRET);
    let batch = vgs
        .insert_many((0..3).map(|i| InsertRequest::card(card(i))).collect())
        .await;
    out.push(format!("{batch:?}"));

    // Failure modes: each injected once, the report rendered every way.
    for (route, with) in [
        (Route::CreateAliases, FailWith::Status(400)),
        (Route::CreateAliases, FailWith::Status(403)),
        (Route::CreateAliases, FailWith::Status(404)),
        (Route::CreateAliases, FailWith::Status(500)),
    ] {
        mock.fail_next(route, 3, with);
        let report = vgs
            .insert(InsertRequest::card(card(1)))
            .await
            .expect_err("injected failure");
        render_report(out, &report);
    }
    mock.fail_next(Route::CreateAliases, 2, FailWith::Status(401));
    render_report(
        out,
        &vgs.insert(InsertRequest::card(card(1)))
            .await
            .expect_err("401 twice"),
    );
    mock.fail_next(Route::RevealAlias, 3, FailWith::Reset);
    let id = ConnectorVaultId::Single {
        id: Alias::new("tok_sandbox_gone").expect("alias"),
        cvc: None,
        cvc_expires_at: None,
    };
    render_report(
        out,
        &vgs.retrieve(RetrieveRequest::new(id))
            .await
            .expect_err("resets"),
    );
    let wrong = connector(mock, ApiGeneration::V2, "not-the-demo-secret");
    render_report(
        out,
        &wrong
            .insert(InsertRequest::card(card(2)))
            .await
            .expect_err("bad secret"),
    );
    out.push(format!("{wrong:?} {vgs:?}"));
}

/// Panics in spawned tasks: the panic message (what a crash reporter records).
async fn spawned_panics(mock: &vgs_mock::MockHandle, out: &mut Vec<String>) {
    let vault = connector(mock, ApiGeneration::V2, vgs_mock::DEMO_CLIENT_SECRET);
    let failing = tokio::spawn(async move {
        let id = ConnectorVaultId::Single {
            id: Alias::new("tok_sandbox_none").expect("alias"),
            cvc: None,
            cvc_expires_at: None,
        };
        vault
            .retrieve(RetrieveRequest::new(id))
            .await
            .expect("an orchestrator that unwraps")
    });
    let carrying = tokio::spawn(async move {
        let card = card(2);
        panic!("could not authorize {card:?}");
    });
    for task in [failing.await.map(|_| ()), carrying.await] {
        let payload = task.expect_err("the task panicked").into_panic();
        let message = payload
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| payload.downcast_ref::<&str>().map(|s| (*s).to_owned()))
            .expect("a panic message");
        out.push(message);
    }
}

/// `vaultctl` runs at TRACE against the same mock: stdout and stderr.
fn cli_runs(mock: &vgs_mock::MockHandle, out: &mut Vec<String>) {
    let dir = TempDir::new("leaks");
    let command = |args: &[&str], secret: &str| {
        let mut command = vaultctl();
        command
            .args(args)
            .env("RUST_LOG", "trace")
            .env("VGS_ENDPOINT", mock.base_url())
            .env("VGS_VAULT_ID", vgs_mock::DEMO_VAULT_ID)
            .env("VGS_CLIENT_ID", vgs_mock::DEMO_CLIENT_ID)
            .env("VGS_CLIENT_SECRET", secret);
        command
    };
    let mut keep = |output: std::process::Output| {
        out.push(stdout(&output));
        out.push(stderr(&output));
        output
    };
    keep(run(
        &mut command(&["check"], vgs_mock::DEMO_CLIENT_SECRET),
        "",
    ));
    keep(run(&mut command(&["check"], "not-the-demo-secret"), ""));
    let inserted = keep(run(
        &mut command(&["insert", "--json"], vgs_mock::DEMO_CLIENT_SECRET),
        &card_json(1),
    ));
    let id_file = dir.0.join("id.json");
    std::fs::write(&id_file, &inserted.stdout).expect("write id");
    let id = id_file.to_str().expect("utf-8 path");
    keep(run(
        &mut command(&["retrieve", "--id", id], vgs_mock::DEMO_CLIENT_SECRET),
        "",
    ));
    keep(run(
        &mut command(
            &["retrieve", "--id", id, "--json"],
            vgs_mock::DEMO_CLIENT_SECRET,
        ),
        "",
    ));
    keep(run(
        &mut command(&["delete", "--id", id], vgs_mock::DEMO_CLIENT_SECRET),
        "",
    ));
    keep(run(
        &mut command(
            &["erase", "--yes", "--id", id],
            vgs_mock::DEMO_CLIENT_SECRET,
        ),
        "",
    ));
    // The card without its erased fields: the missing lines name fields, not values.
    keep(run(
        &mut command(
            &["retrieve", "--reveal", "--id", id],
            vgs_mock::DEMO_CLIENT_SECRET,
        ),
        "",
    ));
    keep(run(
        &mut command(&["insert"], vgs_mock::DEMO_CLIENT_SECRET),
        r#"{"card_number":"4111111111111112","card_exp_month":"09","card_exp_year":"2031","card_cvc":"8362"}"#,
    ));
    let lines = dir.0.join("cards.jsonl");
    let mut file = std::fs::File::create(&lines).expect("cards file");
    for i in 0..3 {
        writeln!(file, "{}", card_json(i)).expect("write card");
    }
    writeln!(
        file,
        r#"{{"card_number":"{}","card_exp_month":"13","card_exp_year":"2031"}}"#,
        CARDS[0].0
    )
    .expect("bad line");
    drop(file);
    let out_file = dir.0.join("aliases.jsonl");
    keep(run(
        &mut command(
            &[
                "import",
                lines.to_str().expect("utf-8"),
                "--out",
                out_file.to_str().expect("utf-8"),
            ],
            vgs_mock::DEMO_CLIENT_SECRET,
        ),
        "",
    ));
    keep(run(
        &mut command(&["demo"], vgs_mock::DEMO_CLIENT_SECRET),
        "",
    ));
    out.push(std::fs::read_to_string(&out_file).expect("import output"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_card_data_or_secret_appears_in_logs_renderings_cli_output_or_panics() {
    let logs = vaultlink_tests::logs::LogCapture::everything();
    let mock = vgs_mock::start(MockConfig::demo()).await.expect("mock");
    let mut out = Vec::new();
    library_flows(&mock, &mut out).await;
    spawned_panics(&mock, &mut out).await;
    let cli_mock = vgs_mock::start(MockConfig::demo())
        .await
        .expect("mock for the CLI");
    let cli_mock_for_thread = &cli_mock;
    let mut cli_out = Vec::new();
    tokio::task::block_in_place(|| cli_runs(cli_mock_for_thread, &mut cli_out));
    out.extend(cli_out);

    let logs = logs.text();
    assert!(
        logs.contains("vault_id=tntdemo00001"),
        "TRACE logs were captured"
    );
    let everything = format!("{logs}\n{}", out.join("\n"));
    let mut secrets: Vec<String> = vec![
        vgs_mock::DEMO_CLIENT_SECRET.to_owned(),
        vgs_mock::DEMO_V1_PASSWORD.to_owned(),
        "not-the-demo-secret".to_owned(),
        HOLDER.to_owned(),
        "4111111111111112".to_owned(),
    ];
    secrets.extend(CARDS.iter().map(|(number, _)| (*number).to_owned()));
    secrets.extend(mock.state().issued_tokens());
    secrets.extend(cli_mock.state().issued_tokens());
    assert!(
        mock.state().issued_tokens().len() >= 2,
        "tokens were issued and are checked"
    );
    for secret in &secrets {
        assert!(
            !everything.contains(secret.as_str()),
            "a secret leaked ({} characters)",
            secret.len()
        );
    }
    for (_, cvc) in CARDS {
        assert!(!stands_alone(&everything, cvc), "CVC {cvc} leaked");
    }
}
