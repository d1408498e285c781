//! Issue #17's reproductions through the command line, against `vaultctl mock serve`
//! with fingerprinting on and off: deleting one card never breaks another that shares
//! its values, a vanished field is printed (exit 3), never dropped, and `check` says
//! which fingerprinting setting it found.

use serde_json::{Value, json};

use crate::support::{MockServer, TempDir, assert_success, run, stderr, stdout};

/// A card of "John Smith" with this number.
fn johns(number: &str) -> String {
    json!({"card_number": number, "card_exp_month": "04", "card_exp_year": "2030",
           "card_cvc": "987", "card_holder_name": "John Smith"})
    .to_string()
}

/// Inserts `card`; returns the path of its id file.
fn insert(
    mock: &MockServer,
    dir: &TempDir,
    name: &str,
    card: &str,
    env: &[(&str, &str)],
) -> String {
    let output = run(
        mock.vaultctl()
            .envs(env.iter().copied())
            .args(["insert", "--json"]),
        card,
    );
    assert_success(&output);
    let path = dir.path(name);
    std::fs::write(&path, stdout(&output)).unwrap();
    path.to_string_lossy().into_owned()
}

#[test]
fn deleting_a_card_never_breaks_another_that_shares_its_values_on_the_command_line() {
    for setting in ["on", "off"] {
        let mock = MockServer::start_with(&["--fingerprinting", setting]);
        let dir = TempDir::new(&format!("shared-{setting}"));
        let env = [("VGS_FINGERPRINTING", setting)];
        // A and B: other numbers, the same holder. C and D: the same card, saved twice.
        let a = insert(&mock, &dir, "a.json", &johns("4111111111111111"), &env);
        let b = insert(&mock, &dir, "b.json", &johns("5555555555554444"), &env);
        let c = insert(&mock, &dir, "c.json", &johns("6011111111111117"), &env);
        let d = insert(&mock, &dir, "d.json", &johns("6011111111111117"), &env);
        for deleted in [&a, &c] {
            let output = run(
                mock.vaultctl().envs(env).args(["delete", "--id", deleted]),
                "",
            );
            assert_success(&output);
            let out = stdout(&output);
            match setting {
                "on" => assert!(out.contains("kept") && !out.contains("removed "), "{out}"),
                _ => assert!(out.contains("removed") && !out.contains("kept "), "{out}"),
            }
        }
        for (kept, number) in [(&b, "5555555555554444"), (&d, "6011111111111117")] {
            let output = run(
                mock.vaultctl()
                    .envs(env)
                    .args(["retrieve", "--reveal", "--json", "--id", kept]),
                "",
            );
            assert_success(&output);
            let card: Value = serde_json::from_str(&stdout(&output)).expect("card");
            assert_eq!(card["card_number"], number, "{setting}");
            assert_eq!(
                card["card_holder_name"], "John Smith",
                "{setting}: the name stays"
            );
            assert!(card.get("missing").is_none(), "{setting}: {card}");
        }
    }
}

#[test]
fn a_field_whose_record_vanished_is_printed_and_exits_3() {
    let mock = MockServer::start();
    let dir = TempDir::new("vanished");
    let a = insert(&mock, &dir, "a.json", &johns("4111111111111111"), &[]);
    let b = insert(&mock, &dir, "b.json", &johns("5555555555554444"), &[]);
    // A right-to-erasure request for A's holder name: B holds the same name.
    let output = run(
        mock.vaultctl()
            .args(["erase", "--yes", "--fields", "card_holder_name", "--id", &a]),
        "",
    );
    assert_success(&output);
    assert!(
        stdout(&output).contains("everywhere"),
        "{}",
        stdout(&output)
    );
    let output = run(mock.vaultctl().args(["retrieve", "--id", &b]), "");
    assert_eq!(output.status.code(), Some(3), "{}", stderr(&output));
    let out = stdout(&output);
    assert!(out.contains("************4444"), "{out}");
    assert!(
        out.contains("card_holder_name  (missing: the record is gone from the vault"),
        "{out}"
    );
    assert!(
        stderr(&output).contains("without card_holder_name"),
        "{}",
        stderr(&output)
    );
    let output = run(mock.vaultctl().args(["retrieve", "--json", "--id", &b]), "");
    assert_eq!(output.status.code(), Some(3));
    let doc: Value = serde_json::from_str(&stdout(&output)).expect("JSON");
    assert_eq!(doc["missing"][0]["field"], "card_holder_name");
    assert_eq!(doc["missing"][0]["reason"], "gone");
}

#[test]
fn check_probes_fingerprinting_and_says_when_the_setting_disagrees() {
    let mock = MockServer::start_with(&["--fingerprinting", "off"]);
    let output = run(mock.vaultctl().args(["check", "--json"]), "");
    assert_success(&output);
    let doc: Value = serde_json::from_str(&stdout(&output)).expect("JSON");
    assert_eq!(doc["fingerprinting"]["found"], "off");
    assert_eq!(doc["fingerprinting"]["configured"], "on");
    let output = run(mock.vaultctl().arg("check"), "");
    assert_success(&output);
    let out = stdout(&output);
    assert!(out.contains("VGS_FINGERPRINTING=off"), "{out}");
    let output = run(
        mock.vaultctl()
            .env("VGS_FINGERPRINTING", "off")
            .arg("check"),
        "",
    );
    assert!(
        stdout(&output).contains("(as configured)"),
        "{}",
        stdout(&output)
    );
    // The probe leaves nothing behind.
    let stats = mock.stats();
    assert_eq!(stats["records_stored"], 0, "{stats}");
    let output = run(
        mock.vaultctl()
            .env("VGS_FINGERPRINTING", "maybe")
            .arg("check"),
        "",
    );
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stderr(&output).contains("neither on nor off"),
        "{}",
        stderr(&output)
    );
}
