//! `vaultctl migrate`: re-stores cards that Hyperswitch's VGS connector (single- or
//! multi-token, cards and network tokens) or VGS Collect left in the vault in
//! vaultlink's layout (one record per field, the CVC and cryptogram volatile), and
//! removes the old records once the new ones read back. A dry run by default;
//! resumable from its report, keyed by the old id; a report line per input line.

use std::collections::{HashMap, HashSet};
use std::fs::{File, OpenOptions};
use std::io::{self, BufRead, BufReader, IsTerminal, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::{Value, json};
use vault_core::{
    CardField, ConnectorVaultId, DeleteRequest, DeleteResponse, EraseRequest, ExpiryMonth,
    ExpiryYear, ExternalVault, FieldAliases, InsertRequest, MissingReason, PaymentMethodData,
    RecordAction, ReportExt, RetrieveRequest, RetrieveResponse, Storage, VaultError,
};

use crate::cli::MigrateArgs;
use crate::config::{Connector, Settings};
use crate::ops::{id_from_value, parse_expiry, scrub_digits};
use crate::output::{EXIT_PARTIAL, Failure, kind_name, print_json, thousands};

/// The longest input line read.
const MAX_LINE_BYTES: usize = 64 * 1024;

/// Where a payment method's old records came from, as far as its id and record tell.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Layout {
    /// Hyperswitch's single-token record (the whole card, CVC inside, persistent).
    HyperswitchSingle,
    /// Hyperswitch's multi-token card ids (every field volatile).
    HyperswitchMulti,
    /// Hyperswitch's network-token ids (every field volatile).
    HyperswitchNetworkToken,
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
            Layout::HyperswitchNetworkToken => "hyperswitch-network-token",
            Layout::Collect => "collect",
            Layout::Vaultlink => "vaultlink",
        }
    }

    /// From the id alone; a single id is Hyperswitch's unless its record turns out
    /// to be vaultlink's (told once it is read).
    fn of(id: &ConnectorVaultId) -> Layout {
        match id {
            ConnectorVaultId::Single { .. } => Layout::HyperswitchSingle,
            ConnectorVaultId::Multi(fields) => {
                let all_volatile = fields.values().all(|f| f.storage == Storage::Volatile);
                let token = fields.keys().any(CardField::is_network_token);
                let has_expiry = fields.contains_key(&CardField::CardExpMonth)
                    && fields.contains_key(&CardField::CardExpYear);
                match (all_volatile, token, has_expiry) {
                    (true, true, _) => Layout::HyperswitchNetworkToken,
                    (true, false, _) => Layout::HyperswitchMulti,
                    (false, true, _) | (false, false, true) => Layout::Vaultlink,
                    (false, false, false) => Layout::Collect,
                }
            }
        }
    }
}

/// The key lines and reports share for one old payment method: its records, whatever
/// the form the id was given in (a single id is its record; a per-field id its
/// fields' aliases and storage, not the formats or expiries it was written with).
fn key_of(id: &ConnectorVaultId) -> String {
    match id {
        ConnectorVaultId::Single { id, .. } => ConnectorVaultId::Single {
            id: id.clone(),
            cvc: None,
            cvc_expires_at: None,
        }
        .to_string(),
        ConnectorVaultId::Multi(fields) => ConnectorVaultId::Multi(
            fields
                .iter()
                .map(|(field, f)| {
                    (
                        *field,
                        vault_core::FieldAlias::new(
                            f.alias.clone(),
                            vault_core::AliasFormat::Uuid,
                            f.storage,
                        ),
                    )
                })
                .collect(),
        )
        .to_string(),
    }
}

/// Every alias an old id leads to (for a single id, its record and CVC).
fn aliases_of(id: &ConnectorVaultId) -> Vec<String> {
    id.aliases().iter().map(|a| a.as_str().to_owned()).collect()
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

/// What an earlier `--apply` run recorded, by old id.
#[derive(Default)]
struct Earlier {
    /// Old ids done with.
    migrated: HashSet<String>,
    /// Old ids stored again whose old records are still to be removed (a run cut
    /// short, or one that kept them for a reason this run lifts), with the new id.
    stored: HashMap<String, String>,
}

/// Where report lines go: the report file (`--apply`), else stdout.
struct Sink {
    out: Box<dyn Write + Send>,
    /// The report file, to make lines durable.
    file: Option<File>,
    path: Option<PathBuf>,
}

impl Sink {
    fn report(path: &Path) -> Result<Sink, Failure> {
        let file = open_report(path)?;
        let out = file.try_clone().map_err(|e| write_failure(path, &e))?;
        Ok(Sink {
            out: Box::new(out),
            file: Some(file),
            path: Some(path.to_owned()),
        })
    }

    /// Writes one line and flushes it.
    fn line(&mut self, doc: &Value) -> Result<(), Failure> {
        writeln!(self.out, "{doc}")
            .and_then(|()| self.out.flush())
            .map_err(|e| self.failure(&e))
    }

    /// Makes what was written durable (on disk, not only in the OS's cache): before
    /// anything old is removed, the new id must survive a crash.
    fn sync(&mut self) -> Result<(), Failure> {
        match &self.file {
            Some(file) => file.sync_data().map_err(|e| self.failure(&e)),
            None => Ok(()),
        }
    }

    fn failure(&self, e: &io::Error) -> Failure {
        match &self.path {
            Some(path) => write_failure(path, e),
            None => Failure::new(format!("cannot write to stdout: {e}")),
        }
    }
}

/// How a run goes: what it may do, and where it writes.
struct Run {
    vault: Arc<dyn ExternalVault>,
    apply: bool,
    keep_old: bool,
    /// With fingerprinting on, the old single-token records of cards listed here may
    /// be shared by payment methods that are not: removed only when the file lists
    /// every one.
    remove_shared: bool,
    sink: Mutex<Sink>,
}

/// `vaultctl migrate FILE`: returns the exit code (0, or [`EXIT_PARTIAL`] when some
/// lines failed).
pub(crate) async fn migrate(args: MigrateArgs) -> Result<u8, Failure> {
    let report_path = args
        .report
        .clone()
        .unwrap_or_else(|| with_suffix(&args.file, ".report.jsonl"));
    let settings = Settings::load(&args.vault)?;
    let remove_shared = args.every_holder_listed || !settings.fingerprinting.is_on();
    // A dry run reads the report too (an earlier --apply may have done some), and
    // never writes it.
    let earlier = read_report(&report_path, args.keep_old, remove_shared)?;
    let (entries, bad) = read_entries(&args.file)?;
    let connector = settings.vault().await?;
    connector
        .warm_up()
        .await
        .map_err(|report| Failure::vault("the vault cannot be reached", &report))?;
    if args.apply && !args.keep_old {
        check_fingerprinting(&connector, &settings).await?;
    }
    let vault: Arc<dyn ExternalVault> = Arc::new(connector);
    let sink = match args.apply {
        true => Sink::report(&report_path)?,
        false => Sink {
            out: Box::new(io::stdout()),
            file: None,
            path: None,
        },
    };
    let run = Arc::new(Run {
        vault,
        apply: args.apply,
        keep_old: args.keep_old,
        remove_shared,
        sink: Mutex::new(sink),
    });

    // Lines whose old ids share an alias are one group (the same records, in any
    // form): migrated together, and their old records go only after every one of
    // them is stored again. In the file's order.
    let mut resumed = 0u64;
    let mut pending: Vec<Entry> = Vec::new();
    for entry in entries {
        if earlier.migrated.contains(&key_of(&entry.id)) {
            resumed += 1;
        } else {
            pending.push(entry);
        }
    }
    let groups = group_by_shared_aliases(pending);
    let total = groups.iter().map(Vec::len).sum::<usize>() as u64 + bad.len() as u64;
    let progress = Progress::new(total, args.json);
    progress.note(&format!(
        "{} {} payment method(s) of {} in {}{}",
        if args.apply {
            "migrating"
        } else {
            "dry run: checking"
        },
        thousands(total),
        args.file.display(),
        settings.describe(),
        if resumed > 0 {
            format!(
                "; resuming: {} line(s) already migrated",
                thousands(resumed)
            )
        } else {
            String::new()
        }
    ));
    let started = Instant::now();
    let mut tally = Tally::default();
    for doc in &bad {
        lock(&run.sink).line(doc)?;
        tally.count(doc, &progress);
    }
    let stored = Arc::new(earlier.stored);
    let mut results = futures_util::stream::iter(groups)
        .map(|group| {
            let run = Arc::clone(&run);
            let stored = Arc::clone(&stored);
            async move { migrate_group(&run, group, &stored).await }
        })
        .buffer_unordered(args.concurrency as usize);
    while let Some(docs) = results.next().await {
        for doc in docs? {
            tally.count(&doc, &progress);
        }
        progress.update(&tally, started);
    }
    progress.finish();
    tally.failed_lines.sort_unstable();
    let summary = json!({
        "dry_run": !args.apply,
        "migrated": tally.migrated,
        "would_migrate": tally.would,
        "migrated_without_lost_fields": tally.lost,
        "already_vaultlink": tally.current,
        "failed": tally.failed,
        "failed_lines": tally.failed_lines,
        "resumed_past": resumed,
        "report": run.apply.then(|| report_path.display().to_string()),
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
        if tally.lost > 0 {
            line.push_str(&format!(
                "; {} came without a field the old record had already lost (\"missing\" in their lines)",
                thousands(tally.lost)
            ));
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

fn lock(sink: &Mutex<Sink>) -> std::sync::MutexGuard<'_, Sink> {
    sink.lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Lines whose old ids share an alias, grouped (union-find over aliases), each group
/// in the order of its first line.
fn group_by_shared_aliases(entries: Vec<Entry>) -> Vec<Vec<Entry>> {
    fn root(parent: &mut [usize], mut at: usize) -> usize {
        while parent[at] != at {
            parent[at] = parent[parent[at]];
            at = parent[at];
        }
        at
    }
    let mut parent: Vec<usize> = (0..entries.len()).collect();
    let mut first_with: HashMap<String, usize> = HashMap::new();
    for (index, entry) in entries.iter().enumerate() {
        for alias in aliases_of(&entry.id) {
            let other = *first_with.entry(alias).or_insert(index);
            let (a, b) = (root(&mut parent, index), root(&mut parent, other));
            if a != b {
                parent[a.max(b)] = a.min(b);
            }
        }
    }
    let mut groups: Vec<Vec<Entry>> = Vec::new();
    let mut slot_of: HashMap<usize, usize> = HashMap::new();
    for (index, entry) in entries.into_iter().enumerate() {
        let top = root(&mut parent, index);
        let next = groups.len();
        let slot = *slot_of.entry(top).or_insert(next);
        if slot == next {
            groups.push(Vec::new());
        }
        groups[slot].push(entry);
    }
    groups
}

/// Migrates a group of old payment methods (the lines naming them, by old id) and
/// writes each line's outcome as soon as it is known; returns what it wrote. Every
/// one is stored again (and that made durable) before any old record of the group
/// goes, and no old record goes that a new id of the group reads through.
async fn migrate_group(
    run: &Run,
    group: Vec<Entry>,
    stored: &HashMap<String, String>,
) -> Result<Vec<Value>, Failure> {
    let mut by_id: Vec<Vec<Entry>> = Vec::new();
    let mut slot_of: HashMap<String, usize> = HashMap::new();
    for entry in group {
        let next = by_id.len();
        let slot = *slot_of.entry(key_of(&entry.id)).or_insert(next);
        if slot == next {
            by_id.push(Vec::new());
        }
        by_id[slot].push(entry);
    }
    let mut outcomes: Vec<(Vec<Entry>, Layout, Result<Step, Failed>)> = Vec::new();
    for lines in by_id {
        let layout = Layout::of(&lines[0].id);
        let step = prepare(run, &lines, layout, stored).await;
        outcomes.push((lines, layout, step));
    }
    // Durable before anything old goes.
    if outcomes
        .iter()
        .any(|(_, _, step)| matches!(step, Ok(Step::Ready(_))))
    {
        lock(&run.sink).sync()?;
    }
    let spare: HashSet<String> = outcomes
        .iter()
        .filter_map(|(_, _, step)| match step {
            Ok(Step::Ready(ready)) => Some(aliases_of(&ready.new_id)),
            _ => None,
        })
        .flatten()
        .collect();
    let mut docs = Vec::new();
    for (lines, layout, step) in outcomes {
        let done = match step {
            Ok(Step::Ready(ready)) => finish(run, &lines, ready, &spare).await,
            Ok(Step::Done(done)) => Ok(done),
            Err(failed) => Err(failed),
        };
        let mut sink = lock(&run.sink);
        for entry in &lines {
            let doc = match &done {
                Ok(done) => done.line(entry, layout),
                Err(failed) => failed.line(entry, layout),
            };
            sink.line(&doc)?;
            docs.push(doc);
        }
    }
    Ok(docs)
}

/// After [`prepare`]: finished, or stored again and ready for its old records to go.
enum Step {
    Done(Done),
    Ready(Ready),
}

/// A payment method stored again (or found stored by an earlier run) and read back.
struct Ready {
    new_id: ConnectorVaultId,
    fingerprint: String,
    expected: Option<PaymentMethodData>,
    cvc: &'static str,
    missing: Value,
}

/// How one old payment method ended.
enum Done {
    /// Read and checked (dry run).
    Would { cvc: &'static str, missing: Value },
    /// Already vaultlink's layout.
    Current,
    /// Stored again; old records not removed yet (written to the report before the
    /// removal, so that a run cut short keeps the new id).
    Stored { new_id: String },
    /// Stored again, read back, old records handled.
    Migrated {
        new_id: String,
        fingerprint: String,
        old_records: Value,
        cvc: &'static str,
        missing: Value,
    },
}

impl Done {
    fn line(&self, entry: &Entry, layout: Layout) -> Value {
        let mut doc = base_line(entry, layout);
        match self {
            Done::Would { cvc, missing } => {
                doc["status"] = json!("would_migrate");
                doc["cvc"] = json!(cvc);
                if !missing.is_null() {
                    doc["missing"] = missing.clone();
                }
            }
            Done::Current => {
                doc["status"] = json!("already_vaultlink");
                doc["layout"] = json!(Layout::Vaultlink.name());
            }
            Done::Stored { new_id } => {
                doc["status"] = json!("stored");
                doc["connector_vault_id"] = json!(new_id);
            }
            Done::Migrated {
                new_id,
                fingerprint,
                old_records,
                cvc,
                missing,
            } => {
                doc["status"] = json!("migrated");
                doc["connector_vault_id"] = json!(new_id);
                doc["fingerprint"] = json!(fingerprint);
                doc["old_records"] = old_records.clone();
                doc["cvc"] = json!(cvc);
                if !missing.is_null() {
                    doc["missing"] = missing.clone();
                }
            }
        }
        doc
    }
}

/// Why one old payment method could not be migrated.
struct Failed {
    kind: Option<VaultError>,
    error: String,
}

impl Failed {
    fn new(kind: Option<VaultError>, error: impl Into<String>) -> Self {
        Failed {
            kind,
            error: error.into(),
        }
    }

    fn line(&self, entry: &Entry, layout: Layout) -> Value {
        let mut doc = base_line(entry, layout);
        doc["status"] = json!("failed");
        doc["error"] = json!(scrub_digits(&self.error));
        if let Some(kind) = self.kind {
            doc["kind"] = json!(kind_name(kind));
        }
        doc
    }
}

fn base_line(entry: &Entry, layout: Layout) -> Value {
    let mut doc = json!({
        "line": entry.line,
        "layout": layout.name(),
        "old": entry.given,
        "old_id": key_of(&entry.id),
    });
    if !entry.reference.is_null() {
        doc["ref"] = entry.reference.clone();
    }
    doc
}

/// Reads the old payment method, stores it again (unless an earlier run did) and
/// reads it back, then writes the `stored` lines; or says why not.
async fn prepare(
    run: &Run,
    group: &[Entry],
    layout: Layout,
    stored: &HashMap<String, String>,
) -> Result<Step, Failed> {
    let vault = run.vault.as_ref();
    let first = &group[0];
    let mut expiries = group.iter().filter_map(|e| e.expiry);
    let expiry = expiries.next();
    if expiries.any(|other| Some(other) != expiry) {
        return Err(Failed::new(
            None,
            "the lines naming this id give different expiries: correct them to the card's",
        ));
    }
    // 1. The old payment method, read in whichever layout it has; one an earlier
    //    run stored again goes on from its new id.
    let earlier = stored.get(&key_of(&first.id));
    let mut request = RetrieveRequest::new(first.id.clone());
    if let Some((month, year)) = expiry {
        request = request.with_expiry(month, year);
    }
    let old = match (vault.retrieve(request).await, earlier) {
        (Ok(old), _) => Some(old),
        // Its old records went before the run was cut short: the new id holds it.
        (Err(report), Some(_)) if report.kind() == VaultError::AliasNotFound => None,
        (Err(report), _) => {
            return Err(Failed::new(
                Some(report.kind()),
                format!("reading the old record failed: {}", report.summary()),
            ));
        }
    };
    let legacy = old.as_ref().is_some_and(|old| old.legacy_record);
    let current = match layout {
        Layout::HyperswitchSingle => old.is_some() && !legacy && earlier.is_none(),
        other => other == Layout::Vaultlink,
    };
    if current {
        return Ok(Step::Done(Done::Current));
    }
    let (expected, missing) = match old {
        Some(old) => {
            let missing = missing_json(&old);
            (Some(payment_method_to_store(old, layout)?), missing)
        }
        None => (None, Value::Null),
    };
    let cvc = expected.as_ref().map_or("as stored before", cvc_note);
    if !run.apply {
        return Ok(Step::Done(Done::Would { cvc, missing }));
    }
    // 2. Stored again in vaultlink's layout (or found stored by an earlier run), and
    //    read back.
    let (new_id, fingerprint) = match earlier {
        Some(text) => {
            let id: ConnectorVaultId = text.parse().map_err(|e| {
                Failed::new(None, format!("the report's new id for it cannot be read ({e}): correct its line in the report"))
            })?;
            let fingerprint = id.fingerprint().0;
            (id, fingerprint)
        }
        None => {
            let Some(payment_method) = &expected else {
                return Err(Failed::new(None, "nothing to store"));
            };
            let stored = vault
                .insert(InsertRequest::new(payment_method.clone()))
                .await
                .map_err(|report| {
                    Failed::new(
                        Some(report.kind()),
                        format!(
                            "storing it again failed (the old record is untouched): {}",
                            report.summary()
                        ),
                    )
                })?;
            (stored.connector_vault_id, stored.fingerprint.0)
        }
    };
    if let Err(error) = reads_back(vault, &new_id, expected.as_ref()).await {
        if earlier.is_some() {
            // Stored by an earlier run and on record: never undone here.
            return Err(Failed::new(
                None,
                format!(
                    "the new id {new_id} recorded earlier does not read back ({error}); nothing was removed: run again later"
                ),
            ));
        }
        // This run's own new records, which nothing refers to: take them back.
        let undone = match vault.delete(DeleteRequest::new(new_id.clone())).await {
            Ok(response) => response
                .records
                .iter()
                .filter(|r| r.action == RecordAction::Removed)
                .count(),
            Err(_) => 0,
        };
        return Err(Failed::new(
            None,
            format!(
                "the new records do not read back ({error}); the old record is untouched; {undone} of the new records were deleted (with fingerprinting on, records shared by value stay)"
            ),
        ));
    }
    // The new id on record before anything old goes (made durable by the group).
    if earlier.is_none() {
        let note = Done::Stored {
            new_id: new_id.to_string(),
        };
        let mut sink = lock(&run.sink);
        for entry in group {
            sink.line(&note.line(entry, layout))
                .map_err(|f| Failed::new(None, f.message))?;
        }
    }
    Ok(Step::Ready(Ready {
        new_id,
        fingerprint,
        expected,
        cvc,
        missing,
    }))
}

/// Removes the old records (sparing every alias a new id of the group uses) and reads
/// the new id once more.
async fn finish(
    run: &Run,
    group: &[Entry],
    ready: Ready,
    spare: &HashSet<String>,
) -> Result<Done, Failed> {
    let new_text = ready.new_id.to_string();
    // 3. The old records, except any a new id reads through (with fingerprinting an
    //    equal value is one record: a Collect card number, a CVC).
    let old_records = match run.keep_old {
        true => json!("kept (--keep-old)"),
        false => remove_old(run, &group[0].id, spare)
            .await
            .map_err(|error| {
                Failed::new(
                    None,
                    format!("{error}; the card is stored again as {new_text}: keep that id, and run again to remove the old records"),
                )
            })?,
    };
    // 4. Still reads: removing the old records took nothing the new id needs.
    if let Err(error) = reads_back(run.vault.as_ref(), &ready.new_id, ready.expected.as_ref()).await
    {
        return Err(Failed::new(
            None,
            format!(
                "after removing the old records the new id {new_text} no longer reads ({error}): report this as a bug"
            ),
        ));
    }
    Ok(Done::Migrated {
        new_id: new_text,
        fingerprint: ready.fingerprint,
        old_records,
        cvc: ready.cvc,
        missing: ready.missing,
    })
}

/// What to store for an old payment method: a card, or a network token.
fn payment_method_to_store(
    old: RetrieveResponse,
    layout: Layout,
) -> Result<PaymentMethodData, Failed> {
    match old.payment_method {
        card @ PaymentMethodData::Card(_) => Ok(card),
        token @ PaymentMethodData::NetworkToken(_) => Ok(token),
        PaymentMethodData::CardFields(_) if layout == Layout::Collect => Err(Failed::new(
            None,
            "the id has no expiry (VGS Collect stores number and CVC only): add \"expiry\": \"MM/YYYY\" to the line",
        )),
        other => Err(Failed::new(
            None,
            format!(
                "the old records hold {}, not a whole card or network token: nothing to migrate",
                other.kind()
            ),
        )),
    }
}

/// The fields the old record had already lost (not expired): said in the line.
fn missing_json(old: &RetrieveResponse) -> Value {
    let lost: Vec<Value> = old
        .missing
        .iter()
        .filter(|m| m.reason != MissingReason::Expired)
        .map(|m| json!({"field": m.field.as_str(), "reason": m.reason.explain()}))
        .collect();
    if lost.is_empty() {
        Value::Null
    } else {
        Value::Array(lost)
    }
}

fn cvc_note(payment_method: &PaymentMethodData) -> &'static str {
    match payment_method {
        PaymentMethodData::Card(card) if card.cvc.is_some() => {
            "stored volatile (expires within the hour)"
        }
        PaymentMethodData::NetworkToken(token) if token.cryptogram.is_some() => {
            "cryptogram stored volatile (expires within the hour)"
        }
        _ => "none",
    }
}

/// Retrieves `id` and checks it holds `expected` (when known). A CVC or cryptogram
/// the new records no longer hold, and say expired (they are volatile), is not a
/// difference.
async fn reads_back(
    vault: &dyn ExternalVault,
    id: &ConnectorVaultId,
    expected: Option<&PaymentMethodData>,
) -> Result<(), String> {
    let back = vault
        .retrieve(RetrieveRequest::new(id.clone()))
        .await
        .map_err(|report| report.summary())?;
    let expired = |field: CardField| {
        back.missing
            .iter()
            .any(|m| m.field == field && m.reason != MissingReason::Gone)
    };
    let expected = expected.map(|expected| match expected.clone() {
        PaymentMethodData::Card(mut card) if expired(CardField::CardCvc) => {
            card.cvc = None;
            PaymentMethodData::Card(card)
        }
        PaymentMethodData::NetworkToken(mut token)
            if expired(CardField::NetworkTokenCryptogram) =>
        {
            token.cryptogram = None;
            PaymentMethodData::NetworkToken(token)
        }
        other => other,
    });
    match (&back.payment_method, expected) {
        (PaymentMethodData::Card(_) | PaymentMethodData::NetworkToken(_), None) => Ok(()),
        (read, Some(expected)) if *read == expected => Ok(()),
        (PaymentMethodData::Card(_) | PaymentMethodData::NetworkToken(_), Some(_)) => {
            Err("a different payment method came back".to_owned())
        }
        (other, _) => Err(format!("{} came back", other.kind())),
    }
}

/// Removes the old records `old` leads to, sparing any alias in `used`. A
/// Hyperswitch single-token record is removed outright (erase: every alias of it;
/// it holds a persisted CVC) when no payment method outside the file can share it;
/// per-field records go through delete, which keeps what other cards may share.
async fn remove_old(
    run: &Run,
    old: &ConnectorVaultId,
    used: &HashSet<String>,
) -> Result<Value, String> {
    let vault = run.vault.as_ref();
    let shared = old
        .aliases()
        .iter()
        .filter(|a| used.contains(a.as_str()))
        .count();
    let response = match old {
        ConnectorVaultId::Single { .. } if !run.remove_shared => {
            return Ok(json!({
                "removed": 0, "kept": 1, "already_gone": 0, "shared_with_new": shared,
                "why_kept": "with fingerprinting on, payment methods with the same card data share this record, and some may not be in this file: when the file lists them all (the whole table), run again with --every-holder-listed to remove it",
            }));
        }
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
                    json!({"removed": 0, "kept": 0, "already_gone": 0, "shared_with_new": shared}),
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
    Ok(json!({
        "removed": count(|a| *a == RecordAction::Removed),
        "kept": count(|a| matches!(a, RecordAction::Kept(_))),
        "already_gone": count(|a| *a == RecordAction::AlreadyGone),
        "shared_with_new": shared,
    }))
}

/// Reads every line; bad lines become failed report lines straight away.
fn read_entries(path: &Path) -> Result<(Vec<Entry>, Vec<Value>), Failure> {
    let file = File::open(path).map_err(|e| {
        Failure::new(format!(
            "cannot read {}: {e}. Fix: check the path",
            path.display()
        ))
    })?;
    let mut reader = BufReader::new(file);
    let mut entries = Vec::new();
    let mut bad = Vec::new();
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
            // The rest of the over-long line, skipped unread.
            let _ = reader.skip_until(b'\n');
            bad.push(bad_line(
                line,
                &format!("longer than {MAX_LINE_BYTES} bytes"),
            ));
            continue;
        }
        let text = String::from_utf8_lossy(&buf);
        let text = text.trim();
        if text.is_empty() {
            continue;
        }
        match entry_of(line, text) {
            Ok(entry) => entries.push(entry),
            Err(why) => bad.push(bad_line(line, &why)),
        }
    }
    Ok((entries, bad))
}

fn bad_line(line: u64, why: &str) -> Value {
    json!({"line": line, "status": "failed", "error": scrub_digits(why)})
}

/// One input line: `{"connector_vault_id": ID, "ref": …, "expiry": "MM/YYYY"}`, or
/// the id itself with `ref` and `expiry` beside its keys. ID: Hyperswitch's
/// (`{"SingleVaultId": …}`, `{"MultiVauldIds": …}`), a compact id string,
/// vaultlink's JSON, or VGS Collect's aliases `{"card_number": ALIAS, "card_cvc": ALIAS}`.
fn entry_of(line: u64, text: &str) -> Result<Entry, String> {
    let mut doc: Value =
        serde_json::from_str(text).map_err(|e| scrub_digits(&format!("not JSON: {e}")))?;
    let mut take = |key: &str| doc.as_object_mut().and_then(|o| o.remove(key));
    let reference = take("ref").unwrap_or(Value::Null);
    let expiry = match take("expiry") {
        None | Some(Value::Null) => None,
        Some(Value::String(text)) => Some(parse_expiry(&text).map_err(|f| f.message)?),
        Some(_) => return Err("`expiry` must be a string, MM/YYYY".to_owned()),
    };
    let given = take("connector_vault_id").unwrap_or(doc);
    let id = id_from_value(given.clone(), &format!("line {line}")).map_err(|e| scrub_digits(&e))?;
    Ok(Entry {
        line,
        reference,
        given,
        id,
        expiry,
    })
}

/// What earlier `--apply` runs recorded, from their report. A `migrated` line whose
/// old records were kept for a reason this run lifts (`--keep-old` then, not now; a
/// shared record, and now `remove_shared`) counts as stored: this run removes them.
/// A last line cut off by a crash (no newline) is ignored.
fn read_report(report: &Path, keep_old: bool, remove_shared: bool) -> Result<Earlier, Failure> {
    let text = match std::fs::read(report) {
        Ok(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Earlier::default()),
        Err(e) => {
            return Err(Failure::new(format!(
                "cannot read the report {}: {e}. Fix: check the path and permissions (keep the report: it holds the new ids)",
                report.display()
            )));
        }
    };
    let complete = text.ends_with('\n');
    let lines: Vec<&str> = text.lines().collect();
    let mut earlier = Earlier::default();
    for (number, line) in lines.iter().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let doc: Value = match serde_json::from_str(line) {
            Ok(doc) => doc,
            Err(_) if !complete && number + 1 == lines.len() => break,
            Err(_) => {
                return Err(Failure::new(format!(
                    "the report {} is not a migrate report (line {} is not JSON). Fix: pass the report earlier runs wrote (it holds the new ids; a new one would not know them)",
                    report.display(),
                    number + 1
                )));
            }
        };
        let (Some(old), Some(new)) = (doc["old_id"].as_str(), doc["connector_vault_id"].as_str())
        else {
            continue;
        };
        let kept = &doc["old_records"];
        let lifted = (kept == "kept (--keep-old)" && !keep_old)
            || (!kept["why_kept"].is_null() && remove_shared);
        match doc["status"].as_str() {
            Some("migrated") if lifted => {
                earlier.migrated.remove(old);
                earlier.stored.insert(old.to_owned(), new.to_owned());
            }
            Some("migrated") => {
                earlier.stored.remove(old);
                earlier.migrated.insert(old.to_owned());
            }
            Some("stored") if !earlier.migrated.contains(old) => {
                earlier.stored.insert(old.to_owned(), new.to_owned());
            }
            _ => {}
        }
    }
    Ok(earlier)
}

/// Refuses to remove anything when the vault's fingerprinting is not what the
/// configuration says: which old records are shared depends on it.
async fn check_fingerprinting(connector: &Connector, settings: &Settings) -> Result<(), Failure> {
    let Connector::Alias(vgs) = connector else {
        return Ok(());
    };
    let found = vgs
        .probe_fingerprinting()
        .await
        .map_err(|report| Failure::vault("probing the vault's fingerprinting failed", &report))?;
    if found != settings.fingerprinting {
        return Err(Failure::new(format!(
            "the vault's fingerprinting is {found}, but the configuration says {}; which old records are shared depends on it, so nothing was changed. Fix: set VGS_FINGERPRINTING={found} (or `fingerprinting` in --config)",
            settings.fingerprinting
        )));
    }
    Ok(())
}

fn open_report(path: &Path) -> Result<File, Failure> {
    let mut file = OpenOptions::new()
        .create(true)
        .append(true)
        .read(true)
        .open(path)
        .map_err(|e| write_failure(path, &e))?;
    // A line cut off by a crash: end it, so the next line is a line of its own.
    let cut = match file.metadata() {
        Ok(meta) if meta.len() > 0 => {
            use std::io::{Seek, SeekFrom};
            let mut last = [0u8; 1];
            file.seek(SeekFrom::End(-1))
                .and_then(|_| file.read_exact(&mut last))
                .map(|()| last[0] != b'\n')
                .unwrap_or(false)
        }
        _ => false,
    };
    if cut {
        file.write_all(b"\n").map_err(|e| write_failure(path, &e))?;
    }
    Ok(file)
}

fn write_failure(path: &Path, e: &io::Error) -> Failure {
    Failure::new(format!(
        "cannot write the report {}: {e}. Fix: check the directory exists and is writable, then run again (what the report holds is not done twice)",
        path.display()
    ))
}

fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

/// The counters of a run, from the lines written.
#[derive(Default)]
struct Tally {
    migrated: u64,
    would: u64,
    lost: u64,
    current: u64,
    failed: u64,
    failed_lines: Vec<u64>,
}

impl Tally {
    fn count(&mut self, doc: &Value, progress: &Progress) {
        if !doc["missing"].is_null() {
            self.lost += 1;
        }
        match doc["status"].as_str() {
            Some("migrated") => self.migrated += 1,
            Some("would_migrate") => self.would += 1,
            Some("already_vaultlink") => self.current += 1,
            Some("stored") => {}
            _ => {
                self.failed += 1;
                let line = doc["line"].as_u64().unwrap_or_default();
                if self.failed_lines.len() < 1_000 {
                    self.failed_lines.push(line);
                }
                if let Some(error) = doc["error"].as_str() {
                    progress.note(&format!("line {line}: {error}"));
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
            "{} done, {} failed ({:.0?})",
            thousands(tally.migrated + tally.would + tally.current),
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
                eprintln!("migrate: {} lines: {message}", thousands(tally.handled()));
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_takes_its_ref_and_expiry_beside_the_id_in_either_form() {
        let wrapped = entry_of(
            1,
            r#"{"connector_vault_id": {"card_number": "4111119970481111"}, "ref": "pm_1", "expiry": "04/2030"}"#,
        )
        .expect("wrapped");
        let bare = entry_of(
            2,
            r#"{"card_number": "4111119970481111", "ref": "pm_1", "expiry": "04/2030"}"#,
        )
        .expect("bare");
        assert_eq!(wrapped.id, bare.id);
        assert_eq!(wrapped.reference, bare.reference);
        assert_eq!(wrapped.expiry, bare.expiry);
        assert!(bare.expiry.is_some());
        assert_eq!(Layout::of(&bare.id), Layout::Collect);
        let err = entry_of(3, r#"{"card_number": "4111119970481111", "card_cvc": 123}"#)
            .err()
            .expect("a CVC alias is a string");
        assert!(err.contains("card_cvc"), "{err}");
        let err = entry_of(
            4,
            r#"{"card_number": "4111119970481111", "card_cvc": "5291"}"#,
        )
        .err()
        .expect("a CVC is not an alias");
        assert!(
            err.contains("not its alias") && !err.contains("5291"),
            "{err}"
        );
    }

    #[test]
    fn lines_whose_ids_share_an_alias_are_one_group_in_file_order() {
        let entry = |line, text: &str| entry_of(line, text).expect("line");
        let groups = group_by_shared_aliases(vec![
            entry(
                1,
                r#"{"card_number": "4111119970481111", "card_cvc": "tok_sandbox_cvcA"}"#,
            ),
            entry(2, r#"{"SingleVaultId": "tok_sandbox_other"}"#),
            // The first card again, without its CVC alias.
            entry(3, r#"{"card_number": "4111119970481111"}"#),
            // Shares only the CVC alias with line 1.
            entry(
                4,
                r#"{"card_number": "5555559970484444", "card_cvc": "tok_sandbox_cvcA"}"#,
            ),
            entry(5, r#""vl1;s;tok_sandbox_other;c=tok_sandbox_cvcB""#),
        ]);
        let lines: Vec<Vec<u64>> = groups
            .iter()
            .map(|g| g.iter().map(|e| e.line).collect())
            .collect();
        assert_eq!(lines, [vec![1, 3, 4], vec![2, 5]]);
    }

    #[test]
    fn a_single_id_is_keyed_by_its_record_whatever_its_form() {
        let bare: ConnectorVaultId = "vl1;s;tok_sandbox_abc".parse().unwrap();
        let with_cvc: ConnectorVaultId = "vl1;s;tok_sandbox_abc;c=tok_sandbox_cvc".parse().unwrap();
        assert_eq!(key_of(&bare), key_of(&with_cvc));
    }
}
