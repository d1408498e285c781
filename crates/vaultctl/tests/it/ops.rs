//! `vaultctl check`, `insert`, `retrieve` and `delete` against `vaultctl mock serve`:
//! round trips, masking, `--reveal`, JSON for scripts, and one-line errors.

use serde_json::Value;

use crate::support::{
    CARD, MockServer, TempDir, assert_no_card_number, assert_one_line_failure, assert_success, run,
    stderr, stdout, vaultctl,
};

#[test]
fn check_reports_that_credentials_scope_and_vault_work() {
    let mock = MockServer::start();
    let output = run(mock.vaultctl().arg("check"), "");
    assert_success(&output);
    let out = stdout(&output);
    for finding in ["credentials  ok", "scope        ok", "vault        ok"] {
        assert!(out.contains(finding), "{finding}:\n{out}");
    }
    let output = run(mock.vaultctl().args(["check", "--json"]), "");
    assert_success(&output);
    let doc: Value = serde_json::from_str(&stdout(&output)).expect("JSON");
    assert_eq!(doc["credentials"], "ok");
    assert_eq!(doc["vault"], "ok");
    assert_eq!(doc["token_fetches"], 1);
}

#[test]
fn check_with_a_wrong_secret_is_one_line_and_never_echoes_the_secret() {
    let mock = MockServer::start();
    let output = run(
        mock.vaultctl()
            .env("VGS_CLIENT_SECRET", "wrong-secret-Zq81")
            .arg("check"),
        "",
    );
    let line = assert_one_line_failure(&output);
    assert!(line.contains("InvalidCredentials"), "{line}");
    assert!(
        stdout(&output).contains("credentials  failed"),
        "{}",
        stdout(&output)
    );
    let all = format!("{}{}", stdout(&output), stderr(&output));
    assert!(!all.contains("wrong-secret-Zq81"), "{all}");

    // --json: the findings and the error as one document on stdout.
    let output = run(
        mock.vaultctl()
            .env("VGS_CLIENT_SECRET", "wrong-secret-Zq81")
            .args(["check", "--json"]),
        "",
    );
    assert_eq!(output.status.code(), Some(1));
    let doc: Value = serde_json::from_str(&stdout(&output)).expect("JSON");
    assert_eq!(doc["error"]["kind"], "invalid_credentials");
    assert_eq!(doc["check"]["credentials"], "failed");
}

#[test]
fn check_with_an_unknown_vault_says_the_vault_refused_the_token() {
    let mock = MockServer::start();
    let output = run(
        mock.vaultctl()
            .env("VGS_VAULT_ID", "tntunknown00")
            .arg("check"),
        "",
    );
    let line = assert_one_line_failure(&output);
    assert!(line.contains("InvalidCredentials"), "{line}");
    assert!(
        line.contains("not assigned to vault tntunknown00"),
        "{line}"
    );
    let out = stdout(&output);
    assert!(out.contains("credentials  ok"), "{out}");
    assert!(out.contains("vault        refused"), "{out}");
}

#[test]
fn missing_settings_name_the_variable_to_set() {
    let output = run(vaultctl().arg("check"), "");
    let line = assert_one_line_failure(&output);
    assert!(line.contains("VGS_CLIENT_ID is not set"), "{line}");
    let output = run(
        vaultctl()
            .env("VGS_CLIENT_ID", "a")
            .env("VGS_CLIENT_SECRET", "b")
            .env("VGS_VAULT_ID", "tntabc1")
            .arg("check"),
        "",
    );
    let line = assert_one_line_failure(&output);
    assert!(line.contains("VGS_ENVIRONMENT"), "{line}");
}

#[test]
fn insert_retrieve_delete_round_trip_through_the_cli() {
    let mock = MockServer::start();
    let dir = TempDir::new("round-trip");

    // insert --json: the aliases under the card field names, no card data.
    let output = run(mock.vaultctl().args(["insert", "--json"]), CARD);
    assert_success(&output);
    let id_json = stdout(&output);
    assert_no_card_number(&id_json, &["4111111111111111"]);
    let id: Value = serde_json::from_str(&id_json).expect("JSON");
    assert_eq!(id["type"], "multi");
    assert_eq!(id["card_cvc"]["storage"], "VOLATILE");
    let alias = |field: &str| id[field]["alias"].as_str().expect("alias").to_owned();
    let id_file = dir.path("id.json");
    std::fs::write(&id_file, &id_json).unwrap();

    // Human insert output: masked card, aliases in full.
    let output = run(mock.vaultctl().arg("insert"), CARD);
    assert_success(&output);
    assert!(
        stdout(&output).contains("************1111"),
        "{}",
        stdout(&output)
    );
    assert_no_card_number(&stdout(&output), &["4111111111111111"]);

    // retrieve --id FILE: masked by default.
    let output = run(mock.vaultctl().args(["retrieve", "--id"]).arg(&id_file), "");
    assert_success(&output);
    let out = stdout(&output);
    assert!(out.contains("************1111"), "{out}");
    assert_no_card_number(&out, &["4111111111111111"]);
    assert!(!out.contains("987") && !out.contains("Ada"), "{out}");

    // retrieve --reveal --json from stdin: the card JSON insert took.
    let output = run(
        mock.vaultctl()
            .args(["retrieve", "--id", "-", "--reveal", "--json"]),
        &id_json,
    );
    assert_success(&output);
    let revealed: Value = serde_json::from_str(&stdout(&output)).expect("JSON");
    let original: Value = serde_json::from_str(CARD).unwrap();
    assert_eq!(revealed, original);

    // retrieve FIELD=ALIAS…, masked JSON.
    let output = run(
        mock.vaultctl().args([
            "retrieve".to_owned(),
            "--json".to_owned(),
            format!("card_number={}", alias("card_number")),
            format!("month={}", alias("card_exp_month")),
            format!("year={}", alias("card_exp_year")),
            format!("cvc={}", alias("card_cvc")),
        ]),
        "",
    );
    assert_success(&output);
    let masked: Value = serde_json::from_str(&stdout(&output)).expect("JSON");
    assert_eq!(masked["card_number"], "************1111");
    assert_eq!(masked["card_exp_month"], "04");
    assert_eq!(masked["card_cvc"], "[REDACTED]");

    // A bare alias (an incident lookup): its field is unknown, so the value is masked
    // (a card number keeps its last four) unless --reveal; a CVC is found in volatile
    // storage and shows only its length.
    let output = run(
        mock.vaultctl()
            .args(["retrieve", &alias("card_number"), &alias("card_cvc")]),
        "",
    );
    assert_success(&output);
    let text = stdout(&output);
    assert!(text.contains("************1111  (PERSISTENT)"), "{text}");
    assert!(
        text.contains("[REDACTED] (3 characters; --reveal shows it)  (VOLATILE)"),
        "{text}"
    );
    assert_no_card_number(&text, &["4111111111111111"]);
    // The CVC is not shown (an alias's random digits may happen to hold "987").
    assert!(!text.split_whitespace().any(|word| word == "987"), "{text}");
    let output = run(
        mock.vaultctl()
            .args(["retrieve", "--reveal", "--json", &alias("card_number")]),
        "",
    );
    assert_success(&output);
    let revealed: Value = serde_json::from_str(&stdout(&output)).expect("JSON");
    assert_eq!(revealed[alias("card_number")]["value"], "4111111111111111");
    let output = run(
        mock.vaultctl()
            .args(["retrieve", "tok_sandbox_neverissued"]),
        "",
    );
    let line = assert_one_line_failure(&output);
    assert!(
        line.contains("AliasNotFound") || line.contains("not found"),
        "{line}"
    );

    // delete: with fingerprinting on (the default), every per-field record may be
    // another card's too, so all are kept, each with why; the card still reads.
    let output = run(
        mock.vaultctl()
            .args(["delete", "--json", "--id"])
            .arg(&id_file),
        "",
    );
    assert_success(&output);
    let deleted: Value = serde_json::from_str(&stdout(&output)).expect("JSON");
    assert_eq!(deleted["scope"], "payment_method");
    let records = deleted["records"].as_array().unwrap();
    assert_eq!(records.len(), 5, "{deleted}");
    assert!(
        records
            .iter()
            .all(|r| r["action"] == "kept" && r["reason"] == "shared_by_value"),
        "{deleted}"
    );
    let output = run(mock.vaultctl().args(["retrieve", "--id"]).arg(&id_file), "");
    assert_success(&output);

    // erase: refused without --yes (it affects every holder), then the values go.
    let output = run(mock.vaultctl().args(["erase", "--id"]).arg(&id_file), "");
    let line = assert_one_line_failure(&output);
    assert!(
        line.contains("every stored card holding an equal value"),
        "{line}"
    );
    assert!(line.contains("--yes"), "{line}");
    let output = run(
        mock.vaultctl()
            .args(["erase", "--yes", "--json", "--id"])
            .arg(&id_file),
        "",
    );
    assert_success(&output);
    let erased: Value = serde_json::from_str(&stdout(&output)).expect("JSON");
    assert_eq!(erased["scope"], "every_holder");
    let parts: Vec<&str> = erased["records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["part"].as_str().unwrap())
        .collect();
    assert_eq!(
        parts,
        ["card_number", "card_cvc", "card_holder_name"],
        "{erased}"
    );
    let output = run(mock.vaultctl().args(["retrieve", "--id"]).arg(&id_file), "");
    let line = assert_one_line_failure(&output);
    assert!(line.contains("alias was not found"), "{line}");
    assert!(line.contains("card_number record"), "{line}");
}

#[test]
fn insert_rejects_unknown_fields_by_name_and_bad_cards_without_echoing_them() {
    let mock = MockServer::start();
    let output = run(
        mock.vaultctl().arg("insert"),
        r#"{"card_number":"4111111111111111","card_exp_month":"04","card_exp_year":"2030","card_colour":"blue"}"#,
    );
    let line = assert_one_line_failure(&output);
    assert!(line.contains("unknown field `card_colour`"), "{line}");

    let output = run(
        mock.vaultctl().arg("insert"),
        r#"{"card_number":"4111111111111112","card_exp_month":"04","card_exp_year":"2030"}"#,
    );
    let line = assert_one_line_failure(&output);
    assert!(line.contains("Luhn"), "{line}");
    assert_no_card_number(&line, &["4111111111111112"]);

    let output = run(
        mock.vaultctl().args(["insert", "--json"]),
        "\"4111111111111111\"",
    );
    assert_eq!(output.status.code(), Some(1));
    assert_no_card_number(
        &format!("{}{}", stdout(&output), stderr(&output)),
        &["4111111111111111"],
    );
}

#[test]
fn a_config_file_supplies_the_settings() {
    let mock = MockServer::start();
    let dir = TempDir::new("config");
    let config = dir.path("vault.toml");
    std::fs::write(
        &config,
        format!(
            "client_id = \"demo-client\"\nclient_secret = \"demo-secret\"\nvault_id = \"tntdemo00001\"\nendpoint = \"{}\"\napi = \"v2\"\n",
            mock.base_url
        ),
    )
    .unwrap();
    let output = run(vaultctl().arg("check").arg("--config").arg(&config), "");
    assert_success(&output);
    assert!(stdout(&output).contains("all good"), "{}", stdout(&output));
}

#[test]
fn api_v1_with_access_credentials_works_too() {
    let mock = MockServer::start();
    let output = run(
        mock.vaultctl()
            .env("VGS_API", "v1")
            .env("VGS_CLIENT_ID", "demo-user")
            .env("VGS_CLIENT_SECRET", "demo-password")
            .args(["insert", "--json"]),
        CARD,
    );
    assert_success(&output);
    let output = run(
        mock.vaultctl()
            .env("VGS_API", "v1")
            .env("VGS_CLIENT_ID", "demo-user")
            .env("VGS_CLIENT_SECRET", "demo-password")
            .args(["retrieve", "--json", "--id", "-"]),
        &stdout(&output),
    );
    assert_success(&output);
    assert!(
        stdout(&output).contains("************1111"),
        "{}",
        stdout(&output)
    );
}
