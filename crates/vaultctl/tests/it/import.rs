//! `vaultctl import`: a 1,000-line file with 3 bad lines stores 997, names the 3
//! line numbers, writes only aliases, resumes, refuses to overwrite, and `--strict`.

use std::fmt::Write as _;

use serde_json::Value;

use crate::support::{MockServer, TempDir, assert_success, run, stderr, stdout, test_pan};

/// The bad lines of [`cards_file`].
const BAD_LINES: [u64; 3] = [17, 500, 998];

/// 1,000 cards, one a line; lines 17, 500 and 998 are bad in three different ways.
fn cards_file(lines: u64) -> String {
    let mut text = String::new();
    for n in 1..=lines {
        let line = match n {
            17 => {
                r#"{"card_number":"4111111111111112","card_exp_month":"04","card_exp_year":"2030"}"#
                    .to_owned()
            }
            500 => format!(
                r#"{{"card_number":"{}","card_exp_month":"04","card_exp_year":"2030","card_colour":"blue"}}"#,
                test_pan(n)
            ),
            998 => format!(r#"{{"card_number":"{}","card_exp_month":"04""#, test_pan(n)),
            _ => format!(
                r#"{{"card_number":"{}","card_exp_month":"{}","card_exp_year":"20{}","card_cvc":"{:03}"}}"#,
                test_pan(n),
                n % 12 + 1,
                30 + n % 5,
                n % 1000
            ),
        };
        writeln!(text, "{line}").unwrap();
    }
    text
}

#[test]
fn a_thousand_lines_with_three_bad_store_997_and_name_the_lines() {
    let mock = MockServer::start();
    let dir = TempDir::new("import");
    let input = dir.path("cards.jsonl");
    let out = dir.path("aliases.jsonl");
    std::fs::write(&input, cards_file(1_000)).unwrap();

    let output = run(
        mock.vaultctl()
            .arg("import")
            .arg(&input)
            .arg("--out")
            .arg(&out),
        "",
    );
    assert_eq!(
        output.status.code(),
        Some(3),
        "partial success:\n{}\n{}",
        stdout(&output),
        stderr(&output)
    );
    let summary = stdout(&output);
    assert!(
        summary.contains("997 stored, 3 failed (lines 17, 500, 998"),
        "{summary}"
    );
    assert!(summary.contains("1 token fetch;"), "{summary}");
    let err = stderr(&output);
    assert!(
        err.contains("line 17: card number fails the Luhn check"),
        "{err}"
    );
    assert!(
        err.contains("line 500: unknown field `card_colour`"),
        "{err}"
    );
    assert!(err.contains("line 998: EOF while parsing"), "{err}");

    // --out: one line per stored card, aliases and last four only.
    let written = std::fs::read_to_string(&out).unwrap();
    let lines: Vec<Value> = written
        .lines()
        .map(|l| serde_json::from_str(l).expect("JSON line"))
        .collect();
    assert_eq!(lines.len(), 997);
    let numbers: Vec<u64> = lines.iter().map(|l| l["line"].as_u64().unwrap()).collect();
    assert!(BAD_LINES.iter().all(|bad| !numbers.contains(bad)));
    assert_eq!(lines[0]["card_number_last4"], test_pan(1)[12..]);
    assert_eq!(lines[0]["aliases"]["card_cvc"]["storage"], "VOLATILE");
    for n in [1, 2, 999, 1000] {
        assert!(
            !written.contains(&test_pan(n)),
            "card number of line {n} in --out"
        );
    }
    assert!(
        !err.contains(&test_pan(500)) && !err.contains(&test_pan(998)),
        "{err}"
    );

    // An --out line is what `retrieve --id -` takes.
    let line_42 = written
        .lines()
        .zip(&numbers)
        .find_map(|(text, n)| (*n == 42).then_some(text))
        .unwrap();
    let output = run(
        mock.vaultctl()
            .args(["retrieve", "--id", "-", "--reveal", "--json"]),
        line_42,
    );
    assert_success(&output);
    let card: Value = serde_json::from_str(&stdout(&output)).unwrap();
    assert_eq!(card["card_number"], test_pan(42));

    // --resume: the 997 are skipped, the 3 bad lines fail again, nothing is duplicated.
    let output = run(
        mock.vaultctl()
            .args(["import", "--json", "--resume"])
            .arg(&input)
            .arg("--out")
            .arg(&out),
        "",
    );
    assert_eq!(output.status.code(), Some(3));
    let doc: Value = serde_json::from_str(&stdout(&output)).expect("JSON summary");
    assert_eq!(doc["stored"], 0);
    assert_eq!(doc["skipped"], 997);
    assert_eq!(doc["failed"], 3);
    assert_eq!(doc["failed_lines"], serde_json::json!(BAD_LINES));
    assert_eq!(std::fs::read_to_string(&out).unwrap().lines().count(), 997);
}

#[test]
fn an_existing_out_file_is_never_overwritten_and_strict_stops_at_the_first_bad_line() {
    let mock = MockServer::start();
    let dir = TempDir::new("import-strict");
    let input = dir.path("cards.jsonl");
    let out = dir.path("aliases.jsonl");
    std::fs::write(&input, cards_file(30)).unwrap();

    let output = run(
        mock.vaultctl()
            .args(["import", "--strict", "--batch", "5"])
            .arg(&input)
            .arg("--out")
            .arg(&out),
        "",
    );
    assert_eq!(output.status.code(), Some(1));
    let err = stderr(&output);
    assert!(
        err.contains("import stopped at line 17 (--strict)"),
        "{err}"
    );
    assert!(err.contains("--resume"), "{err}");
    assert!(
        stdout(&output).contains("16 stored, 1 failed"),
        "{}",
        stdout(&output)
    );
    assert_eq!(
        std::fs::read_to_string(&out).unwrap().lines().count(),
        16,
        "what was stored is kept"
    );

    let output = run(
        mock.vaultctl()
            .arg("import")
            .arg(&input)
            .arg("--out")
            .arg(&out),
        "",
    );
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stderr(&output).contains("already exists"),
        "{}",
        stderr(&output)
    );
    assert_eq!(std::fs::read_to_string(&out).unwrap().lines().count(), 16);

    let output = run(
        mock.vaultctl()
            .args(["import", "--resume"])
            .arg(&input)
            .arg("--out")
            .arg(&out),
        "",
    );
    assert_eq!(output.status.code(), Some(3));
    assert!(
        stdout(&output).contains("13 stored, 1 failed (lines 17"),
        "{}",
        stdout(&output)
    );
    assert!(
        stdout(&output).contains("16 skipped"),
        "{}",
        stdout(&output)
    );
    assert_eq!(std::fs::read_to_string(&out).unwrap().lines().count(), 29);
}

#[test]
fn wrong_credentials_stop_the_run_at_once() {
    let mock = MockServer::start();
    let dir = TempDir::new("import-creds");
    let input = dir.path("cards.jsonl");
    let out = dir.path("aliases.jsonl");
    std::fs::write(&input, cards_file(50)).unwrap();
    let output = run(
        mock.vaultctl()
            .env("VGS_CLIENT_SECRET", "wrong")
            .args(["import", "--batch", "10"])
            .arg(&input)
            .arg("--out")
            .arg(&out),
        "",
    );
    assert_eq!(output.status.code(), Some(1));
    let err = stderr(&output);
    assert!(err.contains("import stopped at line 1: "), "{err}");
    assert!(
        err.contains("InvalidCredentials") || err.contains("rejected the credentials"),
        "{err}"
    );
    assert_eq!(
        err.lines().filter(|l| l.starts_with("line ")).count(),
        0,
        "not one error per line:\n{err}"
    );
}

#[test]
fn a_rate_limited_import_waits_for_the_vault_and_stores_everything() {
    let mock = MockServer::start_with(&["--fault-429", "0.5"]);
    let dir = TempDir::new("import-429");
    let input = dir.path("cards.jsonl");
    let out = dir.path("aliases.jsonl");
    let cards: String = cards_file(16)
        .lines()
        .take(16)
        .map(|l| format!("{l}\n"))
        .collect();
    std::fs::write(&input, cards).unwrap();
    let output = run(
        mock.vaultctl()
            .args(["import", "--json", "--batch", "8"])
            .arg(&input)
            .arg("--out")
            .arg(&out),
        "",
    );
    assert_success(&output);
    let doc: Value = serde_json::from_str(&stdout(&output)).expect("JSON summary");
    assert_eq!(doc["stored"], 16, "{doc}\n{}", stderr(&output));
    assert_eq!(doc["failed"], 0);
    assert_eq!(std::fs::read_to_string(&out).unwrap().lines().count(), 16);
}
