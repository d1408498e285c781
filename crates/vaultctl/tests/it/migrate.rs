//! `vaultctl migrate`: cards Hyperswitch's VGS connector (single- and multi-token) and
//! VGS Collect left in the vault are re-stored in vaultlink's layout; a dry run
//! changes nothing; the old records go only once the new ones read back; a second run
//! resumes; bad lines are reported per line without card data.

use serde_json::Value;

use crate::support::{MockServer, TempDir, assert_no_card_number, run, stderr, stdout};

/// The card numbers `mock serve --seed-hyperswitch` lays out.
const SEED_PANS: [&str; 4] = [
    "4111111111111111",
    "5555555555554444",
    "378282246310005",
    "6011111111111117",
];

fn lines(text: &str) -> Vec<Value> {
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

#[test]
fn hyperswitch_and_collect_cards_move_to_vaultlinks_layout_and_a_second_run_resumes() {
    let dir = TempDir::new("migrate");
    let seed = dir.path("seed.jsonl");
    let mut mock = MockServer::start_with(&["--seed-hyperswitch", seed.to_str().unwrap()]);
    let mut banner = String::new();
    std::io::BufRead::read_line(&mut mock.stdout, &mut banner).unwrap();
    assert!(banner.contains("12 test cards"), "{banner}");
    let input = std::fs::read_to_string(&seed).expect("seed file");
    assert_eq!(input.lines().count(), 12);

    // A dry run reads every old record and changes nothing.
    let dry = run(mock.vaultctl().arg("migrate").arg(&seed), "");
    assert_eq!(dry.status.code(), Some(0), "{}", stderr(&dry));
    let report = lines(&stdout(&dry));
    assert_eq!(report.len(), 12);
    assert!(
        report.iter().all(|l| l["status"] == "would_migrate"),
        "{report:?}"
    );
    let layouts: Vec<&str> = report
        .iter()
        .map(|l| l["layout"].as_str().unwrap())
        .collect();
    assert_eq!(
        layouts
            .iter()
            .filter(|l| **l == "hyperswitch-single-token")
            .count(),
        4
    );
    assert_eq!(
        layouts
            .iter()
            .filter(|l| **l == "hyperswitch-multi-token")
            .count(),
        4
    );
    assert_eq!(layouts.iter().filter(|l| **l == "collect").count(), 4);
    // In the file's order.
    let order: Vec<u64> = report.iter().map(|l| l["line"].as_u64().unwrap()).collect();
    assert_eq!(order, (1..=12).collect::<Vec<_>>());
    assert!(
        stderr(&dry).contains("12 would migrate"),
        "{}",
        stderr(&dry)
    );
    assert!(!dir.path("seed.jsonl.report.jsonl").exists());
    // The old records are untouched: Hyperswitch's first id still reads.
    let old = dir.path("old.json");
    std::fs::write(&old, report[0]["old"].to_string()).unwrap();
    let still = run(mock.vaultctl().args(["retrieve", "--id"]).arg(&old), "");
    assert_eq!(still.status.code(), Some(0), "{}", stderr(&still));

    // --apply: every card stored again, read back, old records removed.
    let applied = run(mock.vaultctl().arg("migrate").arg(&seed).arg("--apply"), "");
    assert_eq!(applied.status.code(), Some(0), "{}", stderr(&applied));
    assert!(
        stderr(&applied).contains("12 migrated"),
        "{}",
        stderr(&applied)
    );
    let report_text = std::fs::read_to_string(dir.path("seed.jsonl.report.jsonl")).expect("report");
    let report = lines(&report_text);
    assert_eq!(report.len(), 12);
    for line in &report {
        assert_eq!(line["status"], "migrated", "{line}");
        let id = line["connector_vault_id"].as_str().unwrap();
        assert!(id.starts_with("vl1;m;"), "{line}");
        assert!(!line["fingerprint"].as_str().unwrap().is_empty());
        // The new id is what `retrieve --id` takes: it reveals the seeded card.
        let id_file = dir.path("id.txt");
        std::fs::write(&id_file, id).unwrap();
        let back = run(
            mock.vaultctl()
                .args(["retrieve", "--json", "--reveal", "--id"])
                .arg(&id_file),
            "",
        );
        assert_eq!(back.status.code(), Some(0), "{}", stderr(&back));
        let card: Value = serde_json::from_str(&stdout(&back)).unwrap();
        assert!(
            SEED_PANS.contains(&card["card_number"].as_str().unwrap()),
            "{card}"
        );
        // Per field, the CVC volatile: the new id says so.
        if id.contains(";c=") {
            assert!(id.contains(",V,UUID"), "{id}");
        }
        if line["layout"] == "hyperswitch-single-token" {
            assert_eq!(line["old_records"]["removed"], 1, "{line}");
            // The old record is gone: Hyperswitch's id no longer reads.
            let old = dir.path("old.json");
            std::fs::write(&old, line["old"].to_string()).unwrap();
            let gone = run(mock.vaultctl().args(["retrieve", "--id"]).arg(&old), "");
            assert_eq!(gone.status.code(), Some(1), "{}", stdout(&gone));
            assert!(stderr(&gone).contains("not found"), "{}", stderr(&gone));
        }
    }
    assert_no_card_number(&report_text, &SEED_PANS);
    assert_no_card_number(&stderr(&applied), &SEED_PANS);

    // Again: everything is done; nothing is stored twice.
    let again = run(mock.vaultctl().arg("migrate").arg(&seed).arg("--apply"), "");
    assert_eq!(again.status.code(), Some(0), "{}", stderr(&again));
    let said = stderr(&again);
    assert!(
        said.contains("resuming: 12 line(s) already migrated"),
        "{said}"
    );
    assert!(said.contains("0 migrated"), "{said}");
    let after = std::fs::read_to_string(dir.path("seed.jsonl.report.jsonl")).unwrap();
    assert_eq!(after.lines().count(), 12);
}

#[test]
fn bad_lines_are_reported_per_line_and_the_rest_migrates() {
    let dir = TempDir::new("migrate-bad");
    let seed = dir.path("seed.jsonl");
    let mock = MockServer::start_with(&["--seed-hyperswitch", seed.to_str().unwrap()]);
    let good = std::fs::read_to_string(&seed).unwrap();
    let first_single = good.lines().next().unwrap().to_owned();
    let collect: Value = serde_json::from_str(good.lines().nth(8).unwrap()).unwrap();
    let mut no_expiry = collect.clone();
    no_expiry.as_object_mut().unwrap().remove("expiry");
    let input = [
        first_single.clone(),
        "{\"connector_vault_id\": {\"SingleVaultId\": \"tok_sandbox_neverIssued000000000000\"}}"
            .to_owned(),
        "{\"card_number\": \"4111111111111111\", \"card_exp_month\": \"04\"".to_owned(),
        no_expiry.to_string(),
        // The same old id twice: migrated once, both lines reported.
        first_single,
    ]
    .join("\n");
    let file = dir.path("input.jsonl");
    std::fs::write(&file, input).unwrap();
    let output = run(mock.vaultctl().arg("migrate").arg(&file).arg("--apply"), "");
    assert_eq!(output.status.code(), Some(3), "{}", stderr(&output));
    let said = stderr(&output);
    assert!(said.contains("2 migrated"), "{said}");
    assert!(said.contains("3 failed (lines 2, 3, 4)"), "{said}");
    let report = lines(&std::fs::read_to_string(dir.path("input.jsonl.report.jsonl")).unwrap());
    let by_line = |n: u64| {
        report
            .iter()
            .find(|l| l["line"] == n)
            .unwrap_or_else(|| panic!("line {n}"))
    };
    assert_eq!(by_line(1)["status"], "migrated");
    assert_eq!(by_line(5)["status"], "migrated");
    assert_eq!(
        by_line(1)["connector_vault_id"],
        by_line(5)["connector_vault_id"]
    );
    assert_eq!(by_line(2)["kind"], "AliasNotFound");
    assert!(by_line(3)["error"].as_str().unwrap().contains("not JSON"));
    assert!(
        by_line(4)["error"]
            .as_str()
            .unwrap()
            .contains("add \"expiry\""),
        "{}",
        by_line(4)
    );
    assert_no_card_number(&said, &SEED_PANS);
    assert_no_card_number(
        &report.iter().map(Value::to_string).collect::<String>(),
        &SEED_PANS,
    );
}

#[test]
fn a_collected_card_retrieves_with_its_expiry_and_migrate_logs_no_card_data_at_trace() {
    let dir = TempDir::new("migrate-collect");
    let seed = dir.path("seed.jsonl");
    let mock = MockServer::start_with(&["--seed-hyperswitch", seed.to_str().unwrap()]);
    let seeded = std::fs::read_to_string(&seed).unwrap();
    // Line 9: the first VGS Collect card (4111 1111 1111 1111, 04/2030, CVC 123).
    let line: Value = serde_json::from_str(seeded.lines().nth(8).unwrap()).unwrap();
    assert_eq!(line["expiry"], "04/2030");
    let id = dir.path("collect.json");
    std::fs::write(&id, line["connector_vault_id"].to_string()).unwrap();

    // Without the expiry: the fields the vault holds, masked.
    let fields = run(mock.vaultctl().args(["retrieve", "--id"]).arg(&id), "");
    assert_eq!(fields.status.code(), Some(0), "{}", stderr(&fields));
    let shown = stdout(&fields);
    assert!(shown.contains("card fields"), "{shown}");
    assert!(shown.contains("************1111"), "{shown}");
    assert!(!shown.contains("card_exp_month"), "{shown}");
    assert_no_card_number(&shown, &SEED_PANS);

    // With it: the whole card.
    let whole = run(
        mock.vaultctl()
            .args([
                "retrieve", "--json", "--reveal", "--expiry", "04/2030", "--id",
            ])
            .arg(&id),
        "",
    );
    assert_eq!(whole.status.code(), Some(0), "{}", stderr(&whole));
    let card: Value = serde_json::from_str(&stdout(&whole)).unwrap();
    assert_eq!(card["card_number"], "4111111111111111");
    assert_eq!(card["card_exp_year"], "2030");
    assert_eq!(card["card_cvc"], "123");
    let bad = run(
        mock.vaultctl()
            .args(["retrieve", "--expiry", "13/2030", "--id"])
            .arg(&id),
        "",
    );
    assert_eq!(bad.status.code(), Some(1));
    assert!(stderr(&bad).contains("expiry month"), "{}", stderr(&bad));

    // The whole migration at TRACE: no card number in any output.
    let traced = run(
        mock.vaultctl()
            .args(["-vv", "migrate", "--apply"])
            .arg(&seed)
            .env("RUST_LOG", "trace"),
        "",
    );
    assert_eq!(traced.status.code(), Some(0), "{}", stderr(&traced));
    let everything = format!("{}{}", stdout(&traced), stderr(&traced));
    assert!(everything.lines().count() > 50, "TRACE logs were written");
    assert_no_card_number(&everything, &SEED_PANS);
    assert!(!everything.contains("AgAAAAAABk4"));
}
