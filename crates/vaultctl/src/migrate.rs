//! `vaultctl migrate`: re-stores cards that Hyperswitch's VGS connector (single- or
//! multi-token) or VGS Collect left in the vault in vaultlink's layout (one record per
//! field, the CVC volatile), and removes the old records once the new ones read back.
//! A dry run by default; resumable; a report line per input line.

use std::collections::{HashMap, HashSet};
use std::fs::{File, OpenOptions};
use std::io::{self, BufRead, BufReader, BufWriter, IsTerminal, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::{Value, json};
use vault_core::{
    Card, CardField, ConnectorVaultId, DeleteRequest, DeleteResponse, EraseRequest, ExpiryMonth,
    ExpiryYear, ExternalVault, FieldAliases, InsertRequest, PaymentMethodData, RecordAction,
    ReportExt, RetrieveRequest, Storage, VaultError,
};

use crate::cli::MigrateArgs;
use crate::config::Settings;
use crate::ops::{id_from_value, parse_expiry, scrub_digits};
use crate::output::{EXIT_PARTIAL, Failure, kind_name, print_json, say, thousands};

/// The longest input line read.
const MAX_LINE_BYTES: usize = 64 * 1024;

/// Where a card's old records came from, as far as its id and record tell.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Layout {
    /// Hyperswitch's single-token record (the whole card, CVC inside, persistent).
    HyperswitchSingle,
    /// Hyperswitch's multi-token ids (every field volatile).
    HyperswitchMulti,
    /// VGS Collect's aliases (number, and CVC), the expiry from the input line.
    Collect,
    /// Already vaultlink's layout: nothing to do.
    Vaultlink,
}

impl Layout {
    fn name(self) -> &'static str {
        match self {
            Layout::HyperswitchSingle => "hyperswitch-single-token",
            Layout::HyperswitchMulti => "hyperswitch-multi-token",
            Layout::Collect => "collect",
            Layout::Vaultlink => "vaultlink",
        }
    }

    /// From the id alone; a single id is Hyperswitch's unless its record is
    /// vaultlink's (told once it is read).
    fn of(id: &ConnectorVaultId) -> Layout {
        match id {
            ConnectorVaultId::Single { .. } => Layout::HyperswitchSingle,
            ConnectorVaultId::Multi(fields) => {
                let has_expiry = fields.contains_key(&CardField::CardExpMonth)
                    && fields.contains_key(&CardField::CardExpYear);
                let all_volatile = fields.values().all(|f| f.storage == Storage::Volatile);
                match (all_volatile, has_expiry) {
                    (true, _) => Layout::HyperswitchMulti,
                    (false, false) => Layout::Collect,
                    (false, true) => Layout::Vaultlink,
                }
            }
        }
    }
}

/// One input line, read.
struct Entry {
    line: u64,
    /// The caller's own key for the payment method, echoed in the report.
    reference: Value,
    /// The id as given, echoed in the report.
    given: Value,
    id: ConnectorVaultId,
    expiry: Option<(ExpiryMonth, ExpiryYear)>,
}

/// What became of one input line.
struct Outcome {
    line: u64,
    doc: Value,
    migrated: bool,
}

/// `vaultctl migrate FILE`: returns the exit code (0, or [`EXIT_PARTIAL`] when some
/// lines failed).
pub(crate) async fn migrate(args: MigrateArgs) -> Result<u8, Failure> {
    let report_path = args
        .report
        .clone()
        .unwrap_or_else(|| with_suffix(&args.file, ".report.jsonl"));
    let done = if args.apply {
        migrated_lines(&report_path)?
    } else {
        HashSet::new()
    };
    let (entries, mut outcomes, skipped) = read_entries(&args.file, &done)?;
    let settings = Settings::load(&args.vault)?;
    let vault: Arc<dyn ExternalVault> = Arc::new(settings.vault().await?);
    vault
        .warm_up()
        .await
        .map_err(|report| Failure::vault("the vault cannot be reached", &report))?;

    let mut report = match args.apply {
        true => Some(open_report(&report_path)?),
        false => None,
    };
    let total = entries.len() as u64 + outcomes.len() as u64;
    let progress = Progress::new(total, args.json);
    progress.note(&format!(
        "{} {} card(s) of {} into {}{}",
        if args.apply {
            "migrating"
        } else {
            "dry run: checking"
        },
        thousands(total),
        args.file.display(),
        settings.describe(),
        if skipped > 0 {
            format!(
                "; resuming: {} line(s) already migrated",
                thousands(skipped)
            )
        } else {
            String::new()
        }
    ));
    // Lines naming the same old id are one group: migrated together, and the old
    // records go only after the last of them (they are shared).
    let mut groups: Vec<Vec<Entry>> = Vec::new();
    let mut group_of: HashMap<String, usize> = HashMap::new();
    for entry in entries {
        let next = groups.len();
        let index = *group_of.entry(entry.id.to_string()).or_insert(next);
        if index == next {
            groups.push(Vec::new());
        }
        groups[index].push(entry);
    }
    let started = Instant::now();
    let keep_old = args.keep_old;
    let apply = args.apply;
    // In the file's order (of each old id's first line), a few at once.
    let mut results = futures_util::stream::iter(groups)
        .map(|group| {
            let vault = Arc::clone(&vault);
            async move { migrate_group(vault.as_ref(), group, apply, keep_old).await }
        })
        .buffered(args.concurrency as usize);
    let mut tally = Tally::default();
    let mut write = |outcome: &Outcome, tally: &mut Tally| -> Result<(), Failure> {
        tally.count(outcome);
        if let Some(out) = report.as_mut() {
            writeln!(out, "{}", outcome.doc)
                .and_then(|()| out.flush())
                .map_err(|e| write_failure(&report_path, &e))?;
        } else if !args.json {
            say!("{}", outcome.doc);
        }
        if let Some(error) = outcome.doc.get("error").and_then(Value::as_str) {
            progress.note(&format!("line {}: {error}", outcome.line));
        }
        Ok(())
    };
    for outcome in outcomes.drain(..) {
        write(&outcome, &mut tally)?;
    }
    while let Some(group) = results.next().await {
        for outcome in group {
            write(&outcome, &mut tally)?;
        }
        progress.update(&tally, started);
    }
    progress.finish();
    tally.failed_lines.sort_unstable();
    let summary = json!({
        "dry_run": !args.apply,
        "migrated": tally.migrated,
        "would_migrate": tally.would,
        "already_vaultlink": tally.current,
        "failed": tally.failed,
        "failed_lines": tally.failed_lines,
        "resumed_past": skipped,
        "report": args.apply.then(|| report_path.display().to_string()),
        "elapsed_ms": started.elapsed().as_millis() as u64,
    });
    if args.json {
        print_json(&summary);
    } else {
        let verb = if args.apply {
            "migrated"
        } else {
            "would migrate"
        };
        let count = if args.apply {
            tally.migrated
        } else {
            tally.would
        };
        let mut line = format!(
            "{} {verb}, {} already in vaultlink's layout, {} failed",
            thousands(count),
            thousands(tally.current),
            thousands(tally.failed)
        );
        if !tally.failed_lines.is_empty() {
            let lines: Vec<String> = tally.failed_lines.iter().map(u64::to_string).collect();
            line.push_str(&format!(" (lines {})", lines.join(", ")));
        }
        if args.apply {
            line.push_str(&format!("; report: {}", report_path.display()));
        } else {
            line.push_str("; nothing was changed: run again with --apply to migrate");
        }
        eprintln!("{line}");
    }
    Ok(if tally.failed > 0 { EXIT_PARTIAL } else { 0 })
}

/// Migrates one old id (every line naming it); one outcome per line.
async fn migrate_group(
    vault: &dyn ExternalVault,
    group: Vec<Entry>,
    apply: bool,
    keep_old: bool,
) -> Vec<Outcome> {
    let first = &group[0];
    let layout = Layout::of(&first.id);
    let fail = |group: &[Entry], kind: Option<VaultError>, error: String| {
        group
            .iter()
            .map(|entry| outcome(entry, "failed", layout, kind, Some(&error), None))
            .collect::<Vec<_>>()
    };
    // 1. The old card, read in whichever layout it has.
    let mut request = RetrieveRequest::new(first.id.clone());
    if let Some((month, year)) = group.iter().find_map(|e| e.expiry) {
        request = request.with_expiry(month, year);
    }
    let old = match vault.retrieve(request).await {
        Ok(old) => old,
        Err(report) => {
            return fail(
                &group,
                Some(report.kind()),
                format!("reading the old record failed: {}", report.summary()),
            );
        }
    };
    let legacy = old.legacy_record;
    let card = match old.payment_method {
        PaymentMethodData::Card(card) => card,
        PaymentMethodData::CardFields(_) if layout == Layout::Collect => {
            return fail(
                &group,
                None,
                "the id has no expiry (VGS Collect stores number and CVC only): add \"expiry\": \"MM/YYYY\" to the line".to_owned(),
            );
        }
        other => {
            return fail(
                &group,
                None,
                format!(
                    "the old record holds {}, not a card: nothing to migrate",
                    other.kind()
                ),
            );
        }
    };
    // A single id's record tells whose it is.
    let current = match layout {
        Layout::HyperswitchSingle => !legacy,
        other => other == Layout::Vaultlink,
    };
    if current {
        return group
            .iter()
            .map(|entry| {
                outcome(
                    entry,
                    "already_vaultlink",
                    Layout::Vaultlink,
                    None,
                    None,
                    None,
                )
            })
            .collect();
    }
    if !apply {
        let cvc = cvc_note(&card);
        return group
            .iter()
            .map(|entry| {
                let mut doc = outcome(entry, "would_migrate", layout, None, None, None);
                doc.doc["cvc"] = Value::from(cvc);
                doc
            })
            .collect();
    }
    // 2. Stored again in vaultlink's layout, and read back.
    let stored = match vault.insert(InsertRequest::card(card.clone())).await {
        Ok(stored) => stored,
        Err(report) => {
            return fail(
                &group,
                Some(report.kind()),
                format!(
                    "storing the card again failed (the old record is untouched): {}",
                    report.summary()
                ),
            );
        }
    };
    let new_id = stored.connector_vault_id;
    if let Err(error) = reads_back(vault, &new_id, &card).await {
        return fail(
            &group,
            None,
            format!(
                "the new records do not read back ({error}); the old record is untouched, the new id was {new_id}"
            ),
        );
    }
    // 3. The old records, except any the new id reads through (with fingerprinting an
    //    equal value is one record: a Collect card number, a CVC).
    let removal = match keep_old {
        true => Ok(json!("kept (--keep-old)")),
        false => remove_old(vault, &first.id, &new_id).await,
    };
    let removal = match removal {
        Ok(removal) => removal,
        Err(error) => {
            return fail(
                &group,
                None,
                format!("{error}; the card is migrated to {new_id}: keep that id"),
            );
        }
    };
    // 4. Still reads: removing the old records took nothing the new id needs.
    if let Err(error) = reads_back(vault, &new_id, &card).await {
        return fail(
            &group,
            None,
            format!(
                "after removing the old records the new id no longer reads ({error}); this is a bug: report it with the new id {new_id}"
            ),
        );
    }
    group
        .iter()
        .map(|entry| {
            let mut done = outcome(entry, "migrated", layout, None, None, Some(&new_id));
            done.doc["fingerprint"] = Value::from(stored.fingerprint.0.as_str());
            done.doc["old_records"] = removal.clone();
            done.doc["cvc"] = Value::from(cvc_note(&card));
            done.migrated = true;
            done
        })
        .collect()
}

fn cvc_note(card: &Card) -> &'static str {
    match card.cvc {
        Some(_) => "stored volatile (expires within the hour)",
        None => "none",
    }
}

/// Retrieves `id` and checks it is `card`.
async fn reads_back(
    vault: &dyn ExternalVault,
    id: &ConnectorVaultId,
    card: &Card,
) -> Result<(), String> {
    let back = vault
        .retrieve(RetrieveRequest::new(id.clone()))
        .await
        .map_err(|report| report.summary())?;
    match back.card() {
        Some(read) if read == card => Ok(()),
        Some(_) => Err("a different card came back".to_owned()),
        None => Err(format!(
            "{} came back, not a card",
            back.payment_method.kind()
        )),
    }
}

/// Removes the old records `old` leads to, sparing any alias `new` uses. A
/// Hyperswitch single-token record is removed outright (erase: every alias of it;
/// it holds a persisted CVC, and every payment method sharing it is in this group);
/// per-field records go through delete, which keeps what other cards may share.
async fn remove_old(
    vault: &dyn ExternalVault,
    old: &ConnectorVaultId,
    new: &ConnectorVaultId,
) -> Result<Value, String> {
    let used: HashSet<&str> = new.aliases().into_iter().map(|a| a.as_str()).collect();
    let response = match old {
        ConnectorVaultId::Single { id, .. } => {
            let record = ConnectorVaultId::Single {
                id: id.clone(),
                cvc: None,
                cvc_expires_at: None,
            };
            vault
                .erase(EraseRequest::fields(record, [CardField::CardNumber]))
                .await
        }
        ConnectorVaultId::Multi(fields) => {
            let spare: FieldAliases = fields
                .iter()
                .filter(|(_, f)| !used.contains(f.alias.as_str()))
                .map(|(field, f)| (*field, f.clone()))
                .collect();
            if spare.is_empty() {
                return Ok(
                    json!({"removed": 0, "kept": 0, "already_gone": 0, "shared_with_new": fields.len()}),
                );
            }
            vault
                .delete(DeleteRequest::new(ConnectorVaultId::Multi(spare)))
                .await
        }
    };
    let response: DeleteResponse = response
        .map_err(|report| format!("removing the old records failed: {}", report.summary()))?;
    let count = |wanted: fn(&RecordAction) -> bool| {
        response
            .records
            .iter()
            .filter(|r| wanted(&r.action))
            .count()
    };
    let shared = old
        .aliases()
        .iter()
        .filter(|a| used.contains(a.as_str()))
        .count();
    Ok(json!({
        "removed": count(|a| *a == RecordAction::Removed),
        "kept": count(|a| matches!(a, RecordAction::Kept(_))),
        "already_gone": count(|a| *a == RecordAction::AlreadyGone),
        "shared_with_new": shared,
    }))
}

fn outcome(
    entry: &Entry,
    status: &str,
    layout: Layout,
    kind: Option<VaultError>,
    error: Option<&str>,
    new_id: Option<&ConnectorVaultId>,
) -> Outcome {
    let mut doc = json!({
        "line": entry.line,
        "status": status,
        "layout": layout.name(),
        "old": entry.given,
    });
    if !entry.reference.is_null() {
        doc["ref"] = entry.reference.clone();
    }
    if let Some(id) = new_id {
        doc["connector_vault_id"] = Value::from(id.to_string());
    }
    if let Some(error) = error {
        doc["error"] = Value::from(error);
    }
    if let Some(kind) = kind {
        doc["kind"] = Value::from(kind_name(kind));
    }
    Outcome {
        line: entry.line,
        doc,
        migrated: false,
    }
}

/// Reads every line; lines already migrated (in `done`) are skipped, bad lines become
/// failed outcomes straight away. Returns the entries, those outcomes and the count
/// skipped.
fn read_entries(
    path: &Path,
    done: &HashSet<u64>,
) -> Result<(Vec<Entry>, Vec<Outcome>, u64), Failure> {
    let file = File::open(path).map_err(|e| {
        Failure::new(format!(
            "cannot read {}: {e}. Fix: check the path",
            path.display()
        ))
    })?;
    let mut reader = BufReader::new(file);
    let mut entries = Vec::new();
    let mut bad = Vec::new();
    let mut skipped = 0;
    let mut buf = Vec::new();
    let mut line = 0u64;
    loop {
        buf.clear();
        let read = (&mut reader)
            .take(MAX_LINE_BYTES as u64 + 1)
            .read_until(b'\n', &mut buf)
            .map_err(|e| {
                Failure::new(format!(
                    "cannot read {} after line {line}: {e}",
                    path.display()
                ))
            })?;
        if read == 0 {
            break;
        }
        line += 1;
        if buf.len() > MAX_LINE_BYTES && !buf.ends_with(b"\n") {
            // Skip the rest of the over-long line.
            let mut rest = Vec::new();
            let _ = reader.read_until(b'\n', &mut rest);
            bad.push(bad_line(
                line,
                format!("longer than {MAX_LINE_BYTES} bytes"),
            ));
            continue;
        }
        let text = String::from_utf8_lossy(&buf);
        let text = text.trim();
        if text.is_empty() || done.contains(&line) {
            skipped += u64::from(!text.is_empty());
            continue;
        }
        match entry_of(line, text) {
            Ok(entry) => entries.push(entry),
            Err(why) => bad.push(bad_line(line, why)),
        }
    }
    Ok((entries, bad, skipped))
}

fn bad_line(line: u64, why: String) -> Outcome {
    Outcome {
        line,
        doc: json!({"line": line, "status": "failed", "error": why}),
        migrated: false,
    }
}

/// One input line: `{"connector_vault_id": ID, "ref": …, "expiry": "MM/YYYY"}`, or
/// the id alone. ID: Hyperswitch's (`{"SingleVaultId": …}`, `{"MultiVauldIds": …}`),
/// a compact id string, or vaultlink's JSON; VGS Collect's aliases as
/// `{"card_number": ALIAS, "card_cvc": ALIAS}`.
fn entry_of(line: u64, text: &str) -> Result<Entry, String> {
    let mut doc: Value =
        serde_json::from_str(text).map_err(|e| scrub_digits(&format!("not JSON: {e}")))?;
    let (given, reference, expiry) = match doc.get_mut("connector_vault_id") {
        Some(id) => {
            let id = id.take();
            let reference = doc.get_mut("ref").map(Value::take).unwrap_or(Value::Null);
            let expiry = match doc.get("expiry") {
                None | Some(Value::Null) => None,
                Some(Value::String(text)) => Some(parse_expiry(text).map_err(|f| f.message)?),
                Some(_) => return Err("`expiry` must be a string, MM/YYYY".to_owned()),
            };
            (id, reference, expiry)
        }
        None => (doc, Value::Null, None),
    };
    let id = id_from_value(given.clone(), &format!("line {line}")).map_err(|e| scrub_digits(&e))?;
    Ok(Entry {
        line,
        reference,
        given,
        id,
        expiry,
    })
}

/// The lines an earlier `--apply` run migrated, from its report.
fn migrated_lines(report: &Path) -> Result<HashSet<u64>, Failure> {
    let file = match File::open(report) {
        Ok(file) => file,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(HashSet::new()),
        Err(e) => {
            return Err(Failure::new(format!(
                "cannot read the report {}: {e}. Fix: check the path, or pass another --report",
                report.display()
            )));
        }
    };
    let mut done = HashSet::new();
    for (number, text) in BufReader::new(file).lines().enumerate() {
        let text = text.map_err(|e| {
            Failure::new(format!("cannot read the report {}: {e}", report.display()))
        })?;
        if text.trim().is_empty() {
            continue;
        }
        let doc: Value = serde_json::from_str(&text).map_err(|_| {
            Failure::new(format!(
                "the report {} is not a migrate report (line {} is not JSON). Fix: pass the report of an earlier run, or a new path with --report",
                report.display(),
                number + 1
            ))
        })?;
        if doc["status"] == "migrated" {
            if let Some(line) = doc["line"].as_u64() {
                done.insert(line);
            }
        }
    }
    Ok(done)
}

fn open_report(path: &Path) -> Result<BufWriter<File>, Failure> {
    OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map(BufWriter::new)
        .map_err(|e| write_failure(path, &e))
}

fn write_failure(path: &Path, e: &io::Error) -> Failure {
    Failure::new(format!(
        "cannot write the report {}: {e}. Fix: check the directory exists and is writable, then run again (lines already migrated are skipped)",
        path.display()
    ))
}

fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

/// The counters of a run.
#[derive(Default)]
struct Tally {
    migrated: u64,
    would: u64,
    current: u64,
    failed: u64,
    failed_lines: Vec<u64>,
}

impl Tally {
    fn count(&mut self, outcome: &Outcome) {
        match outcome.doc["status"].as_str() {
            _ if outcome.migrated => self.migrated += 1,
            Some("would_migrate") => self.would += 1,
            Some("already_vaultlink") => self.current += 1,
            _ => {
                self.failed += 1;
                if self.failed_lines.len() < 1_000 {
                    self.failed_lines.push(outcome.line);
                }
            }
        }
    }

    fn handled(&self) -> u64 {
        self.migrated + self.would + self.current + self.failed
    }
}

/// Progress on stderr: a bar on a terminal, a line every few seconds otherwise.
struct Progress {
    bar: Option<ProgressBar>,
    last: std::cell::Cell<Instant>,
    quiet: bool,
}

impl Progress {
    fn new(total: u64, quiet: bool) -> Self {
        let bar = io::stderr().is_terminal().then(|| {
            let bar = ProgressBar::new(total);
            if let Ok(style) = ProgressStyle::with_template(
                "{spinner} [{elapsed_precise}] {wide_bar} {pos}/{len} {msg}",
            ) {
                bar.set_style(style);
            }
            bar
        });
        Progress {
            bar,
            last: std::cell::Cell::new(Instant::now()),
            quiet,
        }
    }

    fn note(&self, text: &str) {
        match &self.bar {
            Some(bar) => bar.println(text),
            None if !self.quiet => eprintln!("{text}"),
            None => {}
        }
    }

    fn update(&self, tally: &Tally, started: Instant) {
        let message = format!(
            "{} migrated, {} failed ({:.0?})",
            thousands(tally.migrated + tally.would),
            thousands(tally.failed),
            started.elapsed()
        );
        match &self.bar {
            Some(bar) => {
                bar.set_position(tally.handled());
                bar.set_message(message);
            }
            None if !self.quiet && self.last.get().elapsed() >= Duration::from_secs(2) => {
                self.last.set(Instant::now());
                eprintln!(
                    "migrate: {} lines done: {message}",
                    thousands(tally.handled())
                );
            }
            None => {}
        }
    }

    fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}
