//! `vaultctl demo`: exits 0, shows aliases and last-four masks, and never prints a
//! fixture card number, CVC or holder name, even with every log at trace.

use serde_json::Value;

use crate::support::{
    FIXTURE_PANS, assert_no_card_number, assert_success, run, stderr, stdout, vaultctl,
};

/// The fixture's CVCs and holder names.
const CVCS: [&str; 3] = ["123", "456", "7373"];
const NAMES: [&str; 2] = ["Ada Lovelace", "Grace Hopper"];

/// A CVC counts as printed when it appears as a value: quoted, after `=` or `:`, in
/// parentheses, or on a `card_cvc` line. (A bare `123` inside a port number, a
/// duration or a random alias is not a CVC.)
fn assert_no_cvc(text: &str) {
    for cvc in CVCS {
        for leak in [
            format!("\"{cvc}\""),
            format!("'{cvc}'"),
            format!("({cvc})"),
            format!("cvc={cvc}"),
            format!("cvc: {cvc}"),
            format!("Cvc({cvc}"),
        ] {
            assert!(!text.contains(&leak), "CVC printed as {leak} in:\n{text}");
        }
        for line in text.lines().filter(|l| l.contains("card_cvc")) {
            let words: Vec<&str> = line.split(|c: char| !c.is_ascii_alphanumeric()).collect();
            assert!(
                !words.contains(&cvc),
                "CVC {cvc} on a card_cvc line: {line}"
            );
        }
    }
}

#[test]
fn demo_shows_aliases_and_masks_but_never_a_card_number_or_cvc_even_at_trace() {
    let output = run(vaultctl().arg("demo").env("RUST_LOG", "trace"), "");
    assert_success(&output);
    let out = stdout(&output);
    let all = format!("{out}\n{}", stderr(&output));
    assert!(all.len() > out.len() + 1_000, "trace logs were written too");

    for mask in [
        "************1111",
        "************4444",
        "***********0005",
        "************1117",
    ] {
        assert!(out.contains(mask), "{mask} missing:\n{out}");
    }
    assert!(out.contains("tok_sandbox_"), "aliases in full:\n{out}");
    assert!(out.contains("VOLATILE"), "{out}");
    for (scenario, kind) in [
        ("wrong client secret", "InvalidCredentials"),
        ("unknown vault id", "InvalidCredentials"),
        ("unknown alias", "AliasNotFound"),
    ] {
        let line = out
            .lines()
            .find(|l| l.contains(scenario))
            .unwrap_or_else(|| panic!("{scenario} line:\n{out}"));
        assert!(line.contains(&format!("-> {kind}: ")), "{line}");
        assert!(line.contains("Fix: "), "{line}");
    }
    assert!(
        out.contains("0 records removed, 17 kept"),
        "delete never breaks another card:\n{out}"
    );
    assert!(
        out.contains("Retrieving the erased card -> AliasNotFound"),
        "{out}"
    );
    assert!(out.contains("deleted it -> kept"), "{out}");
    assert!(out.contains("4/4 cards round-trip"), "{out}");
    // The proxy step: paid with, never held.
    assert!(out.contains("processor answered 200 authorized"), "{out}");
    assert!(
        out.contains("received the card itself: number, CVC, expiry and holder name equal"),
        "{out}"
    );
    let never = out
        .lines()
        .find(|l| l.contains("never held the number"))
        .unwrap_or_else(|| panic!("the proof line:\n{out}"));
    assert!(never.contains(": 0 of the "), "{never}");
    assert!(never.contains(" and 0 of the "), "{never}");
    assert!(out.contains("1 access token fetch served"), "{out}");
    // The CMP card: its id, PAN alias and last four, already stored once, round-trip.
    let cmp = out
        .lines()
        .find(|l| l.contains("card id CRD"))
        .unwrap_or_else(|| panic!("CMP card line:\n{out}"));
    assert!(
        cmp.contains("PAN alias tok_sandbox_") && cmp.contains("last four 4444"),
        "{cmp}"
    );
    assert!(out.contains("-> already stored"), "{out}");
    assert!(out.contains("number, expiry and CVC round-trip"), "{out}");
    assert!(
        !all.contains("panicked") && !all.contains("stack backtrace"),
        "{all}"
    );

    assert_no_card_number(&all, &FIXTURE_PANS);
    assert_no_cvc(&all);
    for name in NAMES {
        assert!(!all.contains(name), "holder name {name} printed");
    }
    assert!(
        !all.contains("demo-secret"),
        "the client secret is never printed"
    );
}

#[test]
fn demo_json_is_one_document_with_aliases_under_card_field_names() {
    let output = run(vaultctl().args(["demo", "--json"]), "");
    assert_success(&output);
    let out = stdout(&output);
    let doc: Value = serde_json::from_str(&out).expect("one JSON document");
    let cards = doc["cards"].as_array().expect("cards");
    assert_eq!(cards.len(), 4);
    for card in cards {
        assert_eq!(card["round_trip"], true);
        assert_eq!(card["aliases"]["type"], "multi");
        assert!(
            card["aliases"]["card_number"]["alias"].is_string(),
            "{card}"
        );
        assert_eq!(card["card_number_last4"].as_str().map(str::len), Some(4));
    }
    assert_eq!(cards[0]["aliases"]["card_cvc"]["storage"], "VOLATILE");
    let kinds: Vec<&str> = doc["failures"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["kind"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds,
        [
            "invalid_credentials",
            "invalid_credentials",
            "alias_not_found"
        ]
    );
    assert_eq!(doc["token_fetches"], 1);
    assert_eq!(doc["deleted"]["removed"], 0);
    assert_eq!(doc["deleted"]["kept"], 17);
    assert_eq!(doc["erased"], 3);
    assert_eq!(doc["retrieve_after_erase"], "alias_not_found");
    let cmp = &doc["cmp"];
    assert!(cmp["card_id"].as_str().unwrap().starts_with("CRD"), "{cmp}");
    assert_eq!(cmp["aliases"]["type"], "single");
    assert_eq!(cmp["card_number_last4"], "4444");
    assert_eq!(cmp["already_stored"], true);
    assert_eq!(cmp["round_trip"], true);
    assert_eq!(cmp["kept_by_delete"], 1);
    assert_eq!(cmp["erased"], 1);
    assert_eq!(cmp["retrieve_after_erase"], "alias_not_found");
    let proxy = &doc["proxy"];
    assert_eq!(proxy["processor_status"], 200);
    assert_eq!(proxy["processor_received_card"], true);
    assert_eq!(proxy["values_with_card"], 0);
    assert_eq!(proxy["log_lines_with_card"], 0);
    assert!(proxy["trace_log_lines"].as_u64().unwrap() > 0, "{proxy}");
    assert_eq!(proxy["aliases"]["card_cvc"]["storage"], "VOLATILE");
    assert_eq!(proxy["values_redacted"], 5, "{proxy}");
    assert_eq!(proxy["values_revealed"], 5, "{proxy}");
    assert_no_card_number(&out, &FIXTURE_PANS);
    assert_no_cvc(&out);
}
