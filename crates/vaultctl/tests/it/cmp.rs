//! `--api cmp` (or `VGS_API=cmp`): check, insert, retrieve `id=CRD…`, delete against CMP
//! on `vaultctl mock serve`, beside the alias API; masked unless `--reveal`.

use std::process::Command;

use serde_json::Value;

use crate::support::{
    CARD, MockServer, assert_no_card_number, assert_one_line_failure, assert_success, run, stderr,
    stdout,
};

/// CMP's card object has no holder name: the card of `CARD` without it.
const CMP_CARD: &str = r#"{"card_number":"4111111111111111","card_exp_month":"04","card_exp_year":"2030","card_cvc":"987"}"#;

/// `vaultctl` with the mock's CMP service account.
fn cmp(mock: &MockServer) -> Command {
    let mut command = mock.vaultctl();
    command
        .env("VGS_CLIENT_ID", vgs_mock::DEMO_CMP_CLIENT_ID)
        .env("VGS_CLIENT_SECRET", vgs_mock::DEMO_CMP_CLIENT_SECRET);
    command
}

#[test]
fn a_cmp_card_round_trips_through_the_command_line_by_its_card_id() {
    let mock = MockServer::start();
    let output = run(cmp(&mock).args(["check", "--api", "cmp"]), "");
    assert_success(&output);
    assert!(
        stdout(&output).contains("cards:read"),
        "{}",
        stdout(&output)
    );

    let output = run(
        cmp(&mock).args(["insert", "--api", "cmp", "--json"]),
        CMP_CARD,
    );
    assert_success(&output);
    let stored: Value = serde_json::from_str(&stdout(&output)).expect("JSON");
    assert_eq!(stored["type"], "single");
    let id = stored["id"].as_str().expect("card id").to_owned();
    assert!(id.starts_with("CRD"), "{stored}");
    assert_eq!(stored["card_aliases"]["last4"], "1111");
    assert!(stored["card_aliases"]["pan_alias"].is_string());

    // Again, in words: the duplicate check's answer.
    let output = run(cmp(&mock).args(["insert", "--api", "cmp"]), CMP_CARD);
    assert_success(&output);
    assert!(
        stdout(&output).contains("already stored"),
        "{}",
        stdout(&output)
    );
    assert!(stdout(&output).contains(&id), "{}", stdout(&output));

    // VGS_API=cmp works as --api does; the card is masked unless --reveal.
    let output = run(
        cmp(&mock)
            .env("VGS_API", "cmp")
            .args(["retrieve", &format!("id={id}")]),
        "",
    );
    assert_success(&output);
    let out = stdout(&output);
    assert!(out.contains("************1111"), "{out}");
    assert_no_card_number(&format!("{out}{}", stderr(&output)), &["4111111111111111"]);
    let output = run(
        cmp(&mock).args([
            "retrieve", "--api", "cmp", "--reveal", "--json", "--id", "-",
        ]),
        &stored.to_string(),
    );
    assert_success(&output);
    let card: Value = serde_json::from_str(&stdout(&output)).expect("card JSON");
    assert_eq!(card["card_number"], "4111111111111111");
    assert_eq!(card["card_cvc"], "987");

    // The duplicate check is on: delete keeps the card (others may hold its id).
    let output = run(
        cmp(&mock).args(["delete", "--api", "cmp", &format!("id={id}")]),
        "",
    );
    assert_success(&output);
    assert!(
        stdout(&output).contains(&format!("kept          card object {id}")),
        "{}",
        stdout(&output)
    );
    // With the tenant's check off (VGS_FINGERPRINTING=off), delete removes it.
    let output = run(
        cmp(&mock).env("VGS_FINGERPRINTING", "off").args([
            "delete",
            "--api",
            "cmp",
            &format!("id={id}"),
        ]),
        "",
    );
    assert_success(&output);
    assert!(
        stdout(&output).contains(&format!("removed       card object {id}")),
        "{}",
        stdout(&output)
    );
    let output = run(
        cmp(&mock).args(["retrieve", "--api", "cmp", &format!("id={id}")]),
        "",
    );
    let line = assert_one_line_failure(&output);
    assert!(line.contains(&format!("card {id} not found")), "{line}");
}

#[test]
fn cmp_refusals_are_one_line_with_the_fix() {
    let mock = MockServer::start();
    // A holder name: CMP's card object has no field for it.
    let output = run(cmp(&mock).args(["insert", "--api", "cmp"]), CARD);
    let line = assert_one_line_failure(&output);
    assert!(line.contains("holder name"), "{line}");
    // Commands of the alias API only.
    let output = run(
        cmp(&mock).args([
            "import",
            "cards.jsonl",
            "--out",
            "out.jsonl",
            "--api",
            "cmp",
        ]),
        "",
    );
    let line = assert_one_line_failure(&output);
    assert!(line.contains("alias API only"), "{line}");
    let output = run(cmp(&mock).args(["check", "--api", "v3"]), "");
    let line = assert_one_line_failure(&output);
    assert!(line.contains("v2, v1 or cmp"), "{line}");
}
