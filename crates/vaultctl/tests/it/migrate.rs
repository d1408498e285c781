//! `vaultctl migrate`: cards Hyperswitch's VGS connector (single- and multi-token) and
//! VGS Collect left in the vault are re-stored in vaultlink's layout; a dry run
//! changes nothing; the old records go only once the new ones read back, and a
//! single-token record others may share only when the file lists every holder; a
//! second run resumes by old id, and finishes what a run cut short had stored; bad
//! lines are reported per line without card data.

use std::path::Path;

use serde_json::Value;

use crate::support::{MockServer, TempDir, assert_no_card_number, run, stderr, stdout};

/// The card numbers `mock serve --seed-hyperswitch` lays out.
const SEED_PANS: [&str; 4] = [
    "4111111111111111",
    "5555555555554444",
    "378282246310005",
    "6011111111111117",
];

/// Their CVCs (the fourth card has none).
const SEED_CVCS: [&str; 3] = ["5291", "6408", "7735"];

fn lines(text: &str) -> Vec<Value> {
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

fn with_status<'a>(report: &'a [Value], status: &str) -> Vec<&'a Value> {
    report.iter().filter(|l| l["status"] == status).collect()
}

/// Neither a seeded card number nor a CVC as a value (quoted, or after `=`).
fn assert_no_card_data(text: &str) {
    assert_no_card_number(text, &SEED_PANS);
    for cvc in SEED_CVCS {
        for form in [format!("\"{cvc}\""), format!("={cvc}"), format!("'{cvc}'")] {
            assert!(!text.contains(&form), "CVC {cvc} printed in:\n{text}");
        }
    }
}

fn migrate(mock: &MockServer, args: &[&str], file: &Path) -> std::process::Output {
    run(mock.vaultctl().arg("migrate").arg(file).args(args), "")
}

fn retrieve_json(mock: &MockServer, dir: &TempDir, id: &Value) -> std::process::Output {
    let file = dir.path("id.json");
    std::fs::write(&file, id.to_string()).unwrap();
    run(
        mock.vaultctl()
            .args(["retrieve", "--json", "--reveal", "--id"])
            .arg(&file),
        "",
    )
}

/// The summary: the last line on stderr.
fn summary(stderr: &str) -> &str {
    stderr.lines().last().unwrap_or_default()
}

fn seeded(flags: &[&str], name: &str) -> (TempDir, std::path::PathBuf, MockServer) {
    let dir = TempDir::new(name);
    let seed = dir.path("seed.jsonl");
    let mut all = vec!["--seed-hyperswitch", seed.to_str().unwrap()];
    all.extend_from_slice(flags);
    let mock = MockServer::start_with(&all);
    (dir, seed, mock)
}

#[test]
fn hyperswitch_and_collect_cards_move_to_vaultlinks_layout_and_a_second_run_resumes() {
    let (dir, seed, mut mock) = seeded(&[], "migrate");
    let mut banner = String::new();
    std::io::BufRead::read_line(&mut mock.stdout, &mut banner).unwrap();
    assert!(banner.contains("13 test payment methods"), "{banner}");
    let input = std::fs::read_to_string(&seed).expect("seed file");
    assert_eq!(input.lines().count(), 13);

    // A dry run reads every old record and changes nothing.
    let dry = migrate(&mock, &[], &seed);
    assert_eq!(dry.status.code(), Some(0), "{}", stderr(&dry));
    let report = lines(&stdout(&dry));
    assert_eq!(report.len(), 13);
    assert_eq!(
        with_status(&report, "would_migrate").len(),
        13,
        "{report:?}"
    );
    let layout = |name: &str| report.iter().filter(|l| l["layout"] == name).count();
    assert_eq!(layout("hyperswitch-single-token"), 4);
    assert_eq!(layout("hyperswitch-multi-token"), 4);
    assert_eq!(layout("collect"), 4);
    assert_eq!(layout("hyperswitch-network-token"), 1);
    let mut order: Vec<u64> = report.iter().map(|l| l["line"].as_u64().unwrap()).collect();
    order.sort_unstable();
    assert_eq!(order, (1..=13).collect::<Vec<_>>());
    assert!(
        stderr(&dry).contains("13 would migrate"),
        "{}",
        stderr(&dry)
    );
    assert!(!dir.path("seed.jsonl.report.jsonl").exists());
    let first_old = report.iter().find(|l| l["line"] == 1).unwrap()["old"].clone();
    let still = retrieve_json(&mock, &dir, &first_old);
    assert_eq!(
        still.status.code(),
        Some(0),
        "untouched: {}",
        stderr(&still)
    );

    // --apply, the file listing every holder: every card stored again, read back,
    // each line "stored" then "migrated", old single-token records removed.
    let applied = migrate(&mock, &["--apply", "--every-holder-listed"], &seed);
    assert_eq!(applied.status.code(), Some(0), "{}", stderr(&applied));
    assert!(
        stderr(&applied).contains("13 migrated"),
        "{}",
        stderr(&applied)
    );
    let report_path = dir.path("seed.jsonl.report.jsonl");
    let report_text = std::fs::read_to_string(&report_path).expect("report");
    let report = lines(&report_text);
    assert_eq!(with_status(&report, "stored").len(), 13);
    let migrated = with_status(&report, "migrated");
    assert_eq!(migrated.len(), 13);
    for line in &migrated {
        if line["layout"] == "hyperswitch-network-token" {
            // Token and expiry persistent now, the cryptogram volatile.
            let id = line["connector_vault_id"].as_str().unwrap();
            let parsed: vault_core::ConnectorVaultId = id.parse().expect("compact id");
            let storage = |field| parsed.field(field).map(|f| f.storage);
            use vault_core::{CardField, Storage};
            assert_eq!(
                storage(CardField::NetworkToken),
                Some(Storage::Persistent),
                "{id}"
            );
            assert_eq!(
                storage(CardField::NetworkTokenExpMonth),
                Some(Storage::Persistent)
            );
            assert_eq!(
                storage(CardField::NetworkTokenCryptogram),
                Some(Storage::Volatile)
            );
            let back = run(
                mock.vaultctl()
                    .args(["retrieve", "--json", "--reveal", "--id"])
                    .arg({
                        let file = dir.path("token.txt");
                        std::fs::write(&file, id).unwrap();
                        file
                    }),
                "",
            );
            assert_eq!(back.status.code(), Some(0), "{}", stderr(&back));
            let token: Value = serde_json::from_str(&stdout(&back)).unwrap();
            assert_eq!(token["network_token"], "4895370012003478");
            assert_eq!(token["cryptogram"], "AgAAAAAABk4DWZ4C28yUQAAAAAA=");
            continue;
        }
        let id = line["connector_vault_id"].as_str().unwrap();
        assert!(id.starts_with("vl1;m;"), "{line}");
        assert!(!line["fingerprint"].as_str().unwrap().is_empty());
        // The new id is what `retrieve --id` takes: it reveals the seeded card, its
        // CVC kept volatile.
        let back = retrieve_json(&mock, &dir, &Value::from(id));
        assert_eq!(back.status.code(), Some(0), "{}", stderr(&back));
        let card: Value = serde_json::from_str(&stdout(&back)).unwrap();
        assert!(
            SEED_PANS.contains(&card["card_number"].as_str().unwrap()),
            "{card}"
        );
        if id.contains(";c=") {
            assert!(id.contains(",V,UUID"), "{id}");
        }
        if line["layout"] == "hyperswitch-single-token" {
            assert_eq!(line["old_records"]["removed"], 1, "{line}");
            let gone = retrieve_json(&mock, &dir, &line["old"]);
            assert_eq!(gone.status.code(), Some(1), "{}", stdout(&gone));
            assert!(stderr(&gone).contains("not found"), "{}", stderr(&gone));
        }
    }
    assert_no_card_data(&report_text);
    assert_no_card_data(&stderr(&applied));

    // Again, the file reordered: every old id is done; nothing is stored twice.
    let mut reordered: Vec<&str> = input.lines().collect();
    reordered.reverse();
    std::fs::write(&seed, reordered.join("\n\n")).unwrap();
    let again = migrate(&mock, &["--apply", "--every-holder-listed"], &seed);
    assert_eq!(again.status.code(), Some(0), "{}", stderr(&again));
    let said = stderr(&again);
    assert!(
        said.contains("resuming: 13 line(s) already migrated"),
        "{said}"
    );
    assert!(summary(&said).starts_with("0 migrated,"), "{said}");
    assert_eq!(std::fs::read_to_string(&report_path).unwrap(), report_text);

    // A run cut short after storing (its report has "stored" lines only) is finished
    // from the ids it recorded: the same new ids, nothing stored again.
    let cut: Vec<&str> = report_text
        .lines()
        .filter(|l| l.contains("\"status\":\"stored\""))
        .collect();
    std::fs::write(&report_path, cut.join("\n") + "\n").unwrap();
    let finish = migrate(&mock, &["--apply", "--every-holder-listed"], &seed);
    assert_eq!(finish.status.code(), Some(0), "{}", stderr(&finish));
    assert!(
        stderr(&finish).contains("13 migrated"),
        "{}",
        stderr(&finish)
    );
    let finished = lines(&std::fs::read_to_string(&report_path).unwrap());
    for line in with_status(&finished, "migrated") {
        let stored = finished
            .iter()
            .find(|l| l["status"] == "stored" && l["old_id"] == line["old_id"])
            .expect("its stored line");
        assert_eq!(line["connector_vault_id"], stored["connector_vault_id"]);
    }
    assert_eq!(
        with_status(&finished, "stored").len(),
        13,
        "no new stored lines"
    );
}

#[test]
fn a_shared_single_token_record_is_kept_unless_every_holder_is_listed_or_fingerprinting_is_off() {
    let (dir, seed, mock) = seeded(&[], "migrate-shared");
    let applied = migrate(&mock, &["--apply"], &seed);
    assert_eq!(applied.status.code(), Some(0), "{}", stderr(&applied));
    let report = lines(&std::fs::read_to_string(dir.path("seed.jsonl.report.jsonl")).unwrap());
    let singles = with_status(&report, "migrated")
        .into_iter()
        .filter(|l| l["layout"] == "hyperswitch-single-token")
        .count();
    assert_eq!(singles, 4);
    for line in with_status(&report, "migrated") {
        if line["layout"] == "hyperswitch-single-token" {
            assert_eq!(line["old_records"]["kept"], 1, "{line}");
            assert!(
                line["old_records"]["why_kept"]
                    .as_str()
                    .unwrap()
                    .contains("--every-holder-listed"),
                "{line}"
            );
            // Kept: Hyperswitch's id still reads.
            let still = retrieve_json(&mock, &dir, &line["old"]);
            assert_eq!(still.status.code(), Some(0), "{}", stderr(&still));
        }
    }
    // A report cut off mid-line by a crash does not stop the next run.
    let report_path = dir.path("seed.jsonl.report.jsonl");
    let mut cut = std::fs::read_to_string(&report_path).unwrap();
    cut.push_str("{\"line\": 3, \"status\": \"mig");
    std::fs::write(&report_path, &cut).unwrap();
    // Once the file is known to list every holder, a run removes what was kept, and
    // only that: the other nine are done.
    let lifted = migrate(&mock, &["--apply", "--every-holder-listed"], &seed);
    assert_eq!(lifted.status.code(), Some(0), "{}", stderr(&lifted));
    let said = stderr(&lifted);
    assert!(
        said.contains("resuming: 9 line(s) already migrated"),
        "{said}"
    );
    assert!(summary(&said).starts_with("4 migrated,"), "{said}");
    let text = std::fs::read_to_string(&report_path).unwrap();
    let report = lines(
        &text
            .lines()
            .filter(|l| !l.ends_with("\"mig"))
            .collect::<Vec<_>>()
            .join("\n"),
    );
    let removed: Vec<&Value> = with_status(&report, "migrated")
        .into_iter()
        .filter(|l| l["layout"] == "hyperswitch-single-token" && l["old_records"]["removed"] == 1)
        .collect();
    assert_eq!(removed.len(), 4);
    for line in removed {
        let gone = retrieve_json(&mock, &dir, &line["old"]);
        assert_eq!(gone.status.code(), Some(1), "{}", stdout(&gone));
    }

    // The vault's fingerprinting is off but the configuration says on: --apply stops
    // before changing anything.
    let (dir, seed, mock) = seeded(&["--fingerprinting", "off"], "migrate-mismatch");
    let refused = migrate(&mock, &["--apply"], &seed);
    assert_eq!(refused.status.code(), Some(1), "{}", stderr(&refused));
    assert!(
        stderr(&refused).contains("VGS_FINGERPRINTING=off"),
        "{}",
        stderr(&refused)
    );
    assert!(
        std::fs::read_to_string(dir.path("seed.jsonl.report.jsonl"))
            .unwrap_or_default()
            .is_empty()
    );

    // With fingerprinting off every record is its card's own: all old records go.
    // The first Collect card is listed once more without its CVC alias: the same
    // records in another form, migrated in one group (apart, the first to finish
    // would remove what the other still reads).
    let (dir, seed, mock) = seeded(&["--fingerprinting", "off"], "migrate-unshared");
    let mut input = std::fs::read_to_string(&seed).unwrap();
    let collect: Value = serde_json::from_str(input.lines().nth(8).unwrap()).unwrap();
    let mut no_cvc = collect.clone();
    no_cvc["connector_vault_id"]
        .as_object_mut()
        .unwrap()
        .remove("card_cvc");
    input.push_str(&format!("{no_cvc}\n"));
    std::fs::write(&seed, input).unwrap();
    let applied = run(
        mock.vaultctl()
            .env("VGS_FINGERPRINTING", "off")
            .arg("migrate")
            .arg(&seed)
            .arg("--apply"),
        "",
    );
    assert_eq!(applied.status.code(), Some(0), "{}", stderr(&applied));
    let report = lines(&std::fs::read_to_string(dir.path("seed.jsonl.report.jsonl")).unwrap());
    let migrated = with_status(&report, "migrated");
    assert_eq!(migrated.len(), 14, "{report:?}");
    for line in migrated {
        let old = &line["old_records"];
        match line["layout"].as_str().unwrap() {
            "hyperswitch-single-token" => assert_eq!(old["removed"], 1, "{line}"),
            // Number, month, year and (for three of the four) the CVC.
            "hyperswitch-multi-token" => {
                assert!(old["removed"].as_u64().unwrap() >= 3, "{line}");
                assert_eq!(old["kept"], 0, "{line}");
            }
            // Collect: without fingerprinting the new records are new ones, so the
            // old number (and CVC) go.
            "hyperswitch-network-token" => assert_eq!(old["removed"], 4, "{line}"),
            // (The card listed twice: the second form finds the number already gone.)
            "collect" => {
                let handled =
                    old["removed"].as_u64().unwrap() + old["already_gone"].as_u64().unwrap();
                assert!(handled >= 1, "{line}");
                assert_eq!(old["shared_with_new"], 0, "{line}");
            }
            other => panic!("{other}: {line}"),
        }
        let gone = retrieve_json(&mock, &dir, &line["old"]);
        assert_ne!(gone.status.code(), Some(0), "old id still reads: {line}");
    }
}

#[test]
fn bad_lines_are_reported_per_line_and_the_rest_migrates() {
    let (dir, seed, mock) = seeded(&[], "migrate-bad");
    let good = std::fs::read_to_string(&seed).unwrap();
    let first_single = good.lines().next().unwrap().to_owned();
    let collect: Value = serde_json::from_str(good.lines().nth(8).unwrap()).unwrap();
    let mut no_expiry = collect.clone();
    no_expiry.as_object_mut().unwrap().remove("expiry");
    let mut conflicting = collect.clone();
    conflicting["expiry"] = Value::from("05/2031");
    let input = [
        first_single.clone(),
        "{\"connector_vault_id\": {\"SingleVaultId\": \"tok_sandbox_neverIssued000000000000\"}}"
            .to_owned(),
        "{\"card_number\": \"4111111111111111\", \"card_exp_month\": \"04\"".to_owned(),
        no_expiry.to_string(),
        // The same old id twice: migrated once, both lines reported.
        first_single,
        collect.to_string(),
        conflicting.to_string(),
    ]
    .join("\n");
    let file = dir.path("input.jsonl");
    std::fs::write(&file, input).unwrap();
    let output = migrate(&mock, &["--apply"], &file);
    assert_eq!(output.status.code(), Some(3), "{}", stderr(&output));
    let said = stderr(&output);
    assert!(said.contains("2 migrated"), "{said}");
    // Lines 4, 6 and 7 name the same Collect card: one group, and 6 and 7 disagree on
    // its expiry, so all three fail.
    assert!(said.contains("5 failed (lines 2, 3, 4, 6, 7)"), "{said}");
    let report = lines(&std::fs::read_to_string(dir.path("input.jsonl.report.jsonl")).unwrap());
    let by_line = |n: u64| {
        report
            .iter()
            .rev()
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
        by_line(7)["error"]
            .as_str()
            .unwrap()
            .contains("different expiries"),
        "{}",
        by_line(7)
    );
    assert_no_card_data(&said);
    assert_no_card_data(&report.iter().map(Value::to_string).collect::<String>());

    // A Collect card without its expiry says how to give it.
    std::fs::write(&file, no_expiry.to_string()).unwrap();
    let alone = migrate(&mock, &[], &file);
    assert_eq!(alone.status.code(), Some(3));
    let line = &lines(&stdout(&alone))[0];
    assert!(
        line["error"].as_str().unwrap().contains("add \"expiry\""),
        "{line}"
    );
}

#[test]
fn a_collected_card_retrieves_with_its_expiry_and_migrate_logs_no_card_data_at_trace() {
    let (dir, seed, mock) = seeded(&[], "migrate-collect");
    let seeded = std::fs::read_to_string(&seed).unwrap();
    // Line 9: the first VGS Collect card (4111 1111 1111 1111, 04/2030, CVC 5291).
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
    assert_no_card_data(&shown);

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
    assert_eq!(card["card_cvc"], "5291");
    let bad = run(
        mock.vaultctl()
            .args(["retrieve", "--expiry", "13/2030", "--id"])
            .arg(&id),
        "",
    );
    assert_eq!(bad.status.code(), Some(1));
    assert!(stderr(&bad).contains("expiry month"), "{}", stderr(&bad));

    // The whole migration at TRACE: no card data in any output.
    let traced = run(
        mock.vaultctl()
            .args(["-vv", "migrate", "--apply", "--every-holder-listed"])
            .arg(&seed)
            .env("RUST_LOG", "trace"),
        "",
    );
    assert_eq!(traced.status.code(), Some(0), "{}", stderr(&traced));
    let everything = format!("{}{}", stdout(&traced), stderr(&traced));
    assert!(everything.lines().count() > 50, "TRACE logs were written");
    assert_no_card_data(&everything);
    assert!(
        !everything.contains("AgAAAAAABk4"),
        "the seeded cryptogram leaked"
    );
    let report = std::fs::read_to_string(dir.path("seed.jsonl.report.jsonl")).unwrap();
    assert_no_card_data(&report);
    // The assertions above saw the output of a migration that ran.
    assert!(report.contains("\"status\":\"migrated\""));
}
