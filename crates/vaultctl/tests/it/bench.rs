//! `vaultctl bench`: one JSON document with the documented fields, one token fetch
//! per run and for a crowd of cold callers, exact request counts for an import, no
//! expired-token rejections with short-lived tokens. Never timings.

use serde_json::Value;

use crate::support::{MockServer, assert_success, run, stdout, vaultctl};

/// Runs `vaultctl bench ARGS --json`; returns its one JSON document.
fn bench_json(command: &mut std::process::Command) -> Value {
    let output = run(command.arg("--json"), "");
    assert_success(&output);
    let text = stdout(&output);
    // Exactly one document: the whole of stdout parses as one value.
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("not one JSON document ({e}):\n{text}"))
}

const RUN_FIELDS: [&str; 11] = [
    "flow",
    "concurrency",
    "requests",
    "connector_ops_per_s",
    "baseline_ops_per_s",
    "ratio",
    "connector_p50_us",
    "connector_p99_us",
    "baseline_p50_us",
    "baseline_p99_us",
    "token_fetches",
];

#[test]
fn a_fast_run_reports_every_flow_and_one_token_fetch_per_run() {
    let doc = bench_json(vaultctl().args([
        "bench",
        "--requests",
        "50",
        "--concurrency",
        "1,4",
        "--cold-callers",
        "100",
    ]));
    let runs = doc["runs"].as_array().expect("runs");
    let seen: Vec<(&str, u64)> = runs
        .iter()
        .map(|r| {
            (
                r["flow"].as_str().unwrap(),
                r["concurrency"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        seen,
        [
            ("insert", 1),
            ("insert", 4),
            ("retrieve", 1),
            ("retrieve", 4)
        ]
    );
    for run in runs {
        for field in RUN_FIELDS {
            assert!(run.get(field).is_some(), "no `{field}` in {run}");
        }
        assert_eq!(run["requests"], 50);
        assert!(run["ratio"].as_f64().unwrap() > 0.0, "{run}");
        // A fresh connector per run, warmed up: one fetch, and a 300 s token outlives
        // the run.
        assert_eq!(run["token_fetches"], 1, "{run}");
        assert_eq!(run["expected_token_fetches"], 1, "{run}");
        assert_eq!(run["connector_errors"], 0, "{run}");
        assert_eq!(run["baseline_errors"], 0, "{run}");
    }
    assert_eq!(doc["token_fetches_total"], 4);
    // Warm-up connector, one per run, the baselines' and the cold callers' fetches.
    assert!(doc["mock_token_requests"].as_u64().unwrap() >= 4);
    assert_eq!(doc["cold_callers"]["callers"], 100);
    assert_eq!(doc["cold_callers"]["token_fetches"], 1);
    assert_eq!(doc["cold_callers"]["errors"], 0);
    assert_eq!(doc["expired_token_rejections"], 0);
    assert_eq!(doc["errors"], 0);
}

#[test]
fn short_lived_tokens_are_refreshed_before_the_mock_rejects_one() {
    // 2 s tokens are refreshed from 0.5 s to 1 s after they were fetched.
    let doc = bench_json(vaultctl().args([
        "bench",
        "--token-ttl",
        "2",
        "--flow",
        "insert",
        "--concurrency",
        "4",
        "--requests",
        "1500",
        "--cold-callers",
        "0",
    ]));
    let run = &doc["runs"][0];
    assert_eq!(run["connector_errors"], 0, "{run}");
    assert_eq!(run["baseline_errors"], 0, "{run}");
    // One fetch per refresh period of the slices the connector ran (the bench
    // computes the expectation from its slices' windows), within ±1 as documented.
    let fetches = run["token_fetches"].as_i64().unwrap();
    let expected = run["expected_token_fetches"].as_i64().unwrap();
    assert!(expected >= 1, "{run}");
    assert!((fetches - expected).abs() <= 1, "{run}");
    assert_eq!(run["expired_token_rejections"], 0, "{run}");
    assert_eq!(doc["mock_expired_token_rejections"], 0, "{doc}");
    assert_eq!(doc["token_ttl_s"], 2);
}

#[test]
fn an_import_of_100_cards_makes_exactly_20_requests() {
    let doc = bench_json(vaultctl().args(["bench", "--import", "100"]));
    let import = &doc["import"];
    assert_eq!(import["cards"], 100);
    assert_eq!(import["values"], 400);
    assert_eq!(import["stored"], 100);
    assert_eq!(import["failed"], 0);
    // ceil(400 values / 20 per request)
    assert_eq!(import["requests"], 20);
    assert_eq!(import["expected_requests"], 20);
    assert_eq!(import["token_fetches"], 1);
    if cfg!(target_os = "linux") {
        assert!(import["peak_rss_kib"].as_u64().unwrap() > 0);
    }
    assert_eq!(doc["mock"]["kind"], "child_process");
}

#[test]
fn an_external_mock_is_measured_through_its_stats_route() {
    let mock = MockServer::start_with(&["--rate-limit", "none"]);
    let doc = bench_json(mock.vaultctl().args([
        "bench",
        "--endpoint",
        &mock.base_url,
        "--flow",
        "retrieve",
        "--concurrency",
        "2",
        "--requests",
        "20",
        "--cold-callers",
        "10",
    ]));
    assert_eq!(doc["mock"]["kind"], "external");
    assert_eq!(doc["runs"][0]["token_fetches"], 1);
    assert_eq!(doc["cold_callers"]["token_fetches"], 1);
    let stats = mock.stats();
    assert_eq!(stats["token_requests"], doc["mock_token_requests"]);
}

#[test]
fn a_batch_that_is_not_a_multiple_of_five_is_refused() {
    let output = run(
        vaultctl().args(["bench", "--import", "10", "--import-batch", "7"]),
        "",
    );
    assert_eq!(output.status.code(), Some(1));
    assert!(
        crate::support::stderr(&output).contains("multiple of 5"),
        "{}",
        crate::support::stderr(&output)
    );
}

#[test]
fn latency_runs_report_round_trips_per_operation_for_both_sides() {
    let doc = bench_json(vaultctl().args([
        "bench",
        "--latency-ms",
        "5",
        "--requests",
        "8",
        "--slices",
        "2",
        "--concurrency",
        "1",
        "--cold-callers",
        "0",
    ]));
    assert_eq!(doc["latency_ms"], 5);
    assert_eq!(doc["mock"]["latency_ms"], 5);
    for run in doc["runs"].as_array().expect("runs") {
        assert_eq!(run["requests"], 8);
        assert_eq!(run["connector_errors"], 0, "{run}");
        // Every operation waits for at least one delayed answer: at least one round
        // trip each (a lower bound the mock guarantees, not a timing).
        for side in ["connector_round_trips_p50", "baseline_round_trips_p50"] {
            let round_trips = run[side]
                .as_f64()
                .unwrap_or_else(|| panic!("{side}: {run}"));
            assert!(round_trips >= 1.0, "{side} {round_trips}: {run}");
        }
        assert_eq!(run["token_fetches"], 1, "warmed up once: {run}");
    }
}
