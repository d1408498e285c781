//! `vaultctl import`: streams a JSON-lines card file through `insert_many` in batches,
//! appending each stored card's aliases to `--out` as it goes; resumable; flat memory.

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::{self, BufRead, BufReader, BufWriter, IsTerminal, Read, Seek, SeekFrom, Write};
use std::path::Path;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};
use serde::Deserialize;
use serde_json::json;
use vault_core::{InsertRequest, ReportExt, VaultError};
use vault_vgs::VgsConnector;

use crate::cli::ImportArgs;
use crate::config::Settings;
use crate::ops::card_from_json;
use crate::output::{EXIT_PARTIAL, Failure, id_json, kind_name, print_json, say, thousands};

/// The longest input line read; a longer one is reported and skipped, unread.
const MAX_LINE_BYTES: usize = 64 * 1024;
/// How often a plain progress line is printed when stderr is not a terminal.
const PLAIN_PROGRESS_EVERY: Duration = Duration::from_secs(2);
/// How many times a batch's items that failed for a passing reason are sent again.
const RETRY_ROUNDS: u32 = 8;
/// How many failed line numbers the summary lists (stderr has every one).
const LISTED_FAILURES: usize = 1_000;

/// One line of `--out`, as far as `--resume` needs to read it.
#[derive(Deserialize)]
struct OutLine {
    line: u64,
}

/// Why a run ended before the end of the file.
enum Stop {
    /// `--strict` and a bad line.
    Strict { line: u64, why: String },
    /// A failure every other line would share (credentials, scope, vault id).
    Fatal { line: u64, failure: Failure },
}

/// The counters of a run.
#[derive(Default)]
struct Tally {
    stored: u64,
    failed: u64,
    skipped: u64,
    blank: u64,
    failed_lines: Vec<u64>,
    lines_read: u64,
    bytes_read: u64,
}

impl Tally {
    fn fail(&mut self, line: u64) {
        self.failed += 1;
        if self.failed_lines.len() < LISTED_FAILURES {
            self.failed_lines.push(line);
        }
    }
}

/// `vaultctl import FILE --out OUT`. Returns the exit code: 0 when every line was
/// stored (or skipped), [`EXIT_PARTIAL`] when some failed.
pub(crate) async fn import(args: ImportArgs) -> Result<u8, Failure> {
    let settings = Settings::load(&args.vault)?;
    let connector = settings.connector().await?;
    let input = File::open(&args.file).map_err(|e| {
        Failure::new(format!(
            "cannot read {}: {e}. Fix: check the path",
            args.file.display()
        ))
    })?;
    let input_len = input.metadata().map(|m| m.len()).unwrap_or(0);
    let done = prepare_out(&args.out, args.resume)?;
    let out = OpenOptions::new()
        .create(true)
        .append(true)
        .open(&args.out)
        .map_err(|e| {
            Failure::new(format!(
                "cannot write {}: {e}. Fix: check the directory exists and is writable",
                args.out.display()
            ))
        })?;
    let mut out = BufWriter::new(out);
    let mut progress = Progress::new(input_len, args.json);
    progress.note(&format!(
        "importing {} into {} ({} cards a batch{})",
        args.file.display(),
        settings.describe(),
        args.batch,
        if done.len > 0 {
            format!("; resuming: {} lines already stored", thousands(done.len))
        } else {
            String::new()
        }
    ));

    let started = Instant::now();
    let mut tally = Tally::default();
    let mut reader = BufReader::with_capacity(256 * 1024, input);
    let mut buf = Vec::new();
    let mut batch: Vec<(u64, String, InsertRequest)> = Vec::with_capacity(args.batch as usize);
    let mut stop = None;
    loop {
        let (line, fits) = match next_line(&mut reader, &mut buf, &mut tally.bytes_read) {
            Ok(Some(fits)) => {
                tally.lines_read += 1;
                (tally.lines_read, fits)
            }
            Ok(None) => break,
            Err(e) => {
                let failure = Failure::new(format!(
                    "cannot read {} after line {}: {e}. Fix: check the file, then run again with --resume",
                    args.file.display(),
                    tally.lines_read
                ));
                stop = Some(Stop::Fatal {
                    line: tally.lines_read + 1,
                    failure,
                });
                break;
            }
        };
        if done.contains(line) {
            tally.skipped += 1;
            continue;
        }
        let parsed = if !fits {
            Err(format!("longer than {} KiB", MAX_LINE_BYTES / 1024))
        } else if buf.iter().all(u8::is_ascii_whitespace) {
            tally.blank += 1;
            continue;
        } else {
            card_from_json(&buf).map_err(|why| single_line_position(&why))
        };
        match parsed {
            Ok(card) => {
                let last4 = card.number.last4().to_owned();
                batch.push((line, last4, InsertRequest::card(card)));
            }
            Err(why) => {
                tally.fail(line);
                progress.note(&format!("line {line}: {why}"));
                if args.strict {
                    stop = Some(Stop::Strict { line, why });
                    break;
                }
            }
        }
        if batch.len() >= args.batch as usize {
            if let Some(fatal) =
                store(&connector, &mut batch, &mut out, &mut tally, &mut progress).await?
            {
                stop = Some(fatal);
                break;
            }
            progress.update(&tally, started);
        }
    }
    // What was read before a stop is still stored: nothing valid is dropped.
    if !matches!(stop, Some(Stop::Fatal { .. })) && !batch.is_empty() {
        if let Some(fatal) =
            store(&connector, &mut batch, &mut out, &mut tally, &mut progress).await?
        {
            stop = Some(fatal);
        }
    }
    out.flush().map_err(|e| write_failure(&args.out, &e))?;
    let _ = out.get_ref().sync_data();
    progress.finish(&tally);

    let elapsed = started.elapsed();
    let fetches = connector.token_fetches().map(|f| f.total());
    let summary = json!({
        "stored": tally.stored,
        "failed": tally.failed,
        "failed_lines": tally.failed_lines,
        "skipped": tally.skipped,
        "blank": tally.blank,
        "lines_read": tally.lines_read,
        "token_fetches": fetches,
        "elapsed_ms": u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX),
        "out": args.out.display().to_string(),
        "complete": stop.is_none(),
    });
    let line = summary_line(&tally, fetches, elapsed, &args.out);
    match stop {
        None => {
            if args.json {
                print_json(&summary);
            } else {
                say!("{line}");
            }
            Ok(if tally.failed > 0 { EXIT_PARTIAL } else { 0 })
        }
        Some(stop) => {
            if !args.json {
                say!("{line}");
            }
            let failure = match stop {
                Stop::Strict { line, why } => Failure::new(format!(
                    "import stopped at line {line} (--strict): {why}. Fix: correct line {line} and run again with --resume"
                )),
                Stop::Fatal { line, mut failure } => {
                    failure.message = format!(
                        "import stopped at line {line}: {}. What was stored is in {}; after fixing, run again with --resume",
                        failure.message,
                        args.out.display()
                    );
                    failure
                }
            };
            Err(failure.with_extra("import", summary))
        }
    }
}

/// Stores a batch and appends the stored cards to `out` (flushed); reports failed
/// lines. Items that failed for a passing reason (rate limit, 5xx, network) are sent
/// again after the vault's `Retry-After` or a backoff, up to [`RETRY_ROUNDS`] times:
/// a migration paces itself to the vault's limit instead of failing thousands of lines.
/// Returns a stop when the failure would repeat for every line.
async fn store(
    connector: &VgsConnector,
    batch: &mut Vec<(u64, String, InsertRequest)>,
    out: &mut BufWriter<File>,
    tally: &mut Tally,
    progress: &mut Progress,
) -> Result<Option<Stop>, Failure> {
    let mut pending = std::mem::take(batch);
    let mut round = 0;
    loop {
        let requests = pending
            .iter()
            .map(|(_, _, request)| request.clone())
            .collect();
        let results = connector.insert_many(requests).await;
        let mut fatal = None;
        let mut again = Vec::new();
        let mut wait = Duration::ZERO;
        let mut why = None;
        for ((line, last4, request), result) in pending.into_iter().zip(results) {
            match result {
                Ok(stored) => {
                    let record = json!({
                        "line": line,
                        "card_number_last4": last4,
                        "aliases": id_json(&stored.connector_vault_id),
                    });
                    writeln!(out, "{record}").map_err(|e| write_failure_path(&e))?;
                    tally.stored += 1;
                }
                Err(report) if report.is_retryable() && round < RETRY_ROUNDS => {
                    let backoff = Duration::from_secs(1 << round.min(5));
                    wait = wait.max(report.retry_after().unwrap_or(backoff));
                    why.get_or_insert_with(|| kind_name(report.kind()));
                    again.push((line, last4, request));
                }
                Err(report) => {
                    tally.fail(line);
                    if is_fatal(report.kind()) {
                        fatal.get_or_insert_with(|| Stop::Fatal {
                            line,
                            failure: Failure::vault("the vault refused the batch", &report),
                        });
                    } else {
                        progress.note(&format!("line {line}: {}", report.summary()));
                    }
                }
            }
        }
        out.flush().map_err(|e| write_failure_path(&e))?;
        if fatal.is_some() {
            // Not stored, not retried: a --resume run picks these lines up again.
            for (line, _, _) in &again {
                tally.fail(*line);
            }
            return Ok(fatal);
        }
        if again.is_empty() {
            return Ok(None);
        }
        round += 1;
        progress.note(&format!(
            "{} cards not stored yet ({}); sending them again in {} s (round {round} of {RETRY_ROUNDS})",
            again.len(),
            why.unwrap_or_default(),
            wait.as_secs_f64().ceil()
        ));
        tokio::time::sleep(wait).await;
        pending = again;
    }
}

/// Failures that every remaining line would share.
fn is_fatal(kind: VaultError) -> bool {
    matches!(
        kind,
        VaultError::InvalidCredentials
            | VaultError::Forbidden
            | VaultError::VaultNotFound
            | VaultError::InvalidConfig
    )
}

fn write_failure(path: &Path, e: &io::Error) -> Failure {
    Failure::new(format!(
        "cannot write {}: {e}. Fix: free disk space or check permissions, then run again with --resume",
        path.display()
    ))
}

fn write_failure_path(e: &io::Error) -> Failure {
    Failure::new(format!(
        "cannot write the --out file: {e}. Fix: free disk space or check permissions, then run again with --resume"
    ))
}

/// `997 stored, 3 failed (lines 17, 500, 998), 0 skipped; 1 token fetch; 1.2 s`.
fn summary_line(tally: &Tally, fetches: Option<u64>, elapsed: Duration, out: &Path) -> String {
    let mut line = format!(
        "import finished: {} stored, {} failed",
        tally.stored, tally.failed
    );
    if tally.failed > 0 {
        const SHOWN: usize = 20;
        let shown: Vec<String> = tally
            .failed_lines
            .iter()
            .take(SHOWN)
            .map(u64::to_string)
            .collect();
        let more = tally.failed.saturating_sub(shown.len() as u64);
        let more = if more > 0 {
            format!(" and {more} more")
        } else {
            String::new()
        };
        line.push_str(&format!(
            " (lines {}{more}; reasons on stderr)",
            shown.join(", ")
        ));
    }
    line.push_str(&format!(", {} skipped", tally.skipped));
    if let Some(fetches) = fetches {
        let s = if fetches == 1 { "" } else { "es" };
        line.push_str(&format!("; {fetches} token fetch{s}"));
    }
    let secs = elapsed.as_secs_f64();
    line.push_str(&format!("; {secs:.1} s"));
    if secs > 0.0 && tally.stored > 0 {
        line.push_str(&format!(
            " ({} cards/s)",
            thousands((tally.stored as f64 / secs) as u64)
        ));
    }
    line.push_str(&format!("; aliases in {}", out.display()));
    line
}

/// `… at line 1 column 34` (serde_json's position within the one-line document) is
/// confusing next to the file's line number: keep only the column.
fn single_line_position(why: &str) -> String {
    match why.rfind(" at line 1 column ") {
        Some(at) => format!(
            "{} (column {})",
            &why[..at],
            &why[at + " at line 1 column ".len()..]
        ),
        None => why.to_owned(),
    }
}

/// Reads the next line into `buf` (without the newline). `Some(true)`: a line;
/// `Some(false)`: a line longer than [`MAX_LINE_BYTES`], skipped unread; `None`: end.
fn next_line(
    reader: &mut impl BufRead,
    buf: &mut Vec<u8>,
    bytes: &mut u64,
) -> io::Result<Option<bool>> {
    buf.clear();
    let mut fits = true;
    let mut any = false;
    loop {
        let available = match reader.fill_buf() {
            Ok(available) => available,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if available.is_empty() {
            return Ok(any.then_some(fits));
        }
        any = true;
        let newline = available.iter().position(|&b| b == b'\n');
        let chunk = &available[..newline.unwrap_or(available.len())];
        if fits {
            if buf.len() + chunk.len() > MAX_LINE_BYTES {
                fits = false;
                buf.clear();
            } else {
                buf.extend_from_slice(chunk);
            }
        }
        let used = newline.map_or(available.len(), |i| i + 1);
        reader.consume(used);
        *bytes += used as u64;
        if newline.is_some() {
            return Ok(Some(fits));
        }
    }
}

/// Line numbers already stored, as ranges: memory grows with the number of gaps
/// (failed lines), not with the file.
#[derive(Default)]
struct LineSet {
    ranges: BTreeMap<u64, u64>,
    len: u64,
}

impl LineSet {
    fn contains(&self, line: u64) -> bool {
        self.ranges
            .range(..=line)
            .next_back()
            .is_some_and(|(_, end)| *end >= line)
    }

    fn insert(&mut self, line: u64) {
        if self.contains(line) {
            return;
        }
        let start = self
            .ranges
            .range(..line)
            .next_back()
            .filter(|(_, end)| **end + 1 == line)
            .map_or(line, |(start, _)| *start);
        let end = self.ranges.remove(&(line + 1)).unwrap_or(line);
        self.ranges.insert(start, end);
        self.len += 1;
    }
}

/// Checks `--out` and, for `--resume`, reads which lines it already holds. Without
/// `--resume` an existing non-empty file is refused: it holds the only copy of
/// stored cards' aliases. An incomplete last line (a crash mid-write) is cut off.
fn prepare_out(out: &Path, resume: bool) -> Result<LineSet, Failure> {
    let mut done = LineSet::default();
    let mut file = match OpenOptions::new().read(true).write(true).open(out) {
        Ok(file) => file,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(done),
        Err(e) => {
            return Err(Failure::new(format!(
                "cannot open {}: {e}. Fix: check its permissions",
                out.display()
            )));
        }
    };
    let len = file.metadata().map(|m| m.len()).unwrap_or(0);
    if len == 0 {
        return Ok(done);
    }
    if !resume {
        return Err(Failure::new(format!(
            "{} already exists and holds aliases of stored cards. Fix: pass --resume to continue that run, or choose another --out (it is never overwritten)",
            out.display()
        )));
    }
    let mut reader = BufReader::new(&mut file);
    let mut buf = Vec::new();
    let mut offset = 0u64;
    let mut complete_up_to = 0u64;
    let mut number = 0u64;
    loop {
        buf.clear();
        let read = reader
            .by_ref()
            .take(MAX_LINE_BYTES as u64 * 4)
            .read_until(b'\n', &mut buf)
            .map_err(|e| Failure::new(format!("cannot read {}: {e}", out.display())))?;
        if read == 0 {
            break;
        }
        number += 1;
        offset += read as u64;
        if buf.last() != Some(&b'\n') {
            if read as u64 == MAX_LINE_BYTES as u64 * 4 {
                return Err(Failure::new(format!(
                    "{} line {number} is far longer than a line of `vaultctl import` output. Fix: give --out the file an earlier import wrote, or another path",
                    out.display()
                )));
            }
            break; // the incomplete last line, cut below
        }
        complete_up_to = offset;
        if buf.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let record: OutLine = serde_json::from_slice(&buf).map_err(|_| {
            Failure::new(format!(
                "{} line {number} is not a line of `vaultctl import` output. Fix: give --out the file an earlier import wrote, or another path",
                out.display()
            ))
        })?;
        done.insert(record.line);
    }
    if complete_up_to < len {
        drop(reader);
        file.set_len(complete_up_to)
            .and_then(|()| file.seek(SeekFrom::End(0)).map(|_| ()))
            .map_err(|e| write_failure(out, &e))?;
        eprintln!(
            "{}: removed an incomplete last line (an earlier run was interrupted while writing it); that card is imported again",
            out.display()
        );
    }
    Ok(done)
}

/// Progress on stderr: a bar on a terminal, a plain line every few seconds otherwise.
struct Progress {
    bar: Option<ProgressBar>,
    input_len: u64,
    last_plain: Instant,
    quiet: bool,
}

impl Progress {
    fn new(input_len: u64, json: bool) -> Self {
        let bar = io::stderr().is_terminal().then(|| {
            let bar = ProgressBar::new(input_len);
            let style = ProgressStyle::with_template(
                "{spinner} [{elapsed_precise}] {wide_bar} {percent:>3}% {msg} ETA {eta}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar());
            bar.set_style(style);
            bar.enable_steady_tick(Duration::from_millis(200));
            bar
        });
        Progress {
            bar,
            input_len,
            last_plain: Instant::now(),
            quiet: json,
        }
    }

    /// A message for the person watching (a failed line, the start line).
    fn note(&self, text: &str) {
        match &self.bar {
            Some(bar) => bar.println(text),
            None => eprintln!("{text}"),
        }
    }

    fn update(&mut self, tally: &Tally, started: Instant) {
        let rate = rate(tally.stored, started.elapsed());
        match &self.bar {
            Some(bar) => {
                bar.set_position(tally.bytes_read);
                bar.set_message(format!(
                    "{} stored, {} failed, {}/s",
                    thousands(tally.stored),
                    thousands(tally.failed),
                    thousands(rate)
                ));
            }
            None => {
                if self.last_plain.elapsed() >= PLAIN_PROGRESS_EVERY && !self.quiet {
                    self.last_plain = Instant::now();
                    let percent = (tally.bytes_read * 100)
                        .checked_div(self.input_len)
                        .unwrap_or(100);
                    eprintln!(
                        "import: line {}, {percent}% of the file: {} stored, {} failed, {} cards/s",
                        thousands(tally.lines_read),
                        thousands(tally.stored),
                        thousands(tally.failed),
                        thousands(rate)
                    );
                }
            }
        }
    }

    fn finish(&mut self, tally: &Tally) {
        if let Some(bar) = self.bar.take() {
            bar.set_position(tally.bytes_read);
            bar.finish_and_clear();
        }
    }
}

fn rate(count: u64, elapsed: Duration) -> u64 {
    let secs = elapsed.as_secs_f64();
    if secs > 0.0 {
        (count as f64 / secs) as u64
    } else {
        0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_set_merges_ranges_and_answers_membership() {
        let mut set = LineSet::default();
        for line in (1..=1000).filter(|n| ![17, 500, 998].contains(n)) {
            set.insert(line);
        }
        set.insert(5); // again: no change
        assert_eq!(set.len, 997);
        assert_eq!(set.ranges.len(), 4, "one range per gap, not per line");
        assert!(set.contains(1) && set.contains(16) && set.contains(18) && set.contains(1000));
        assert!(
            !set.contains(17) && !set.contains(500) && !set.contains(998) && !set.contains(1001)
        );
        set.insert(17); // fills the gap: two ranges merge
        assert_eq!(set.ranges.len(), 3);
    }

    #[test]
    fn long_lines_are_skipped_unread_and_the_next_line_is_intact() {
        let mut input = vec![b'x'; MAX_LINE_BYTES + 10];
        input.extend_from_slice(b"\n{\"a\":1}\nlast");
        let mut reader = BufReader::with_capacity(1024, input.as_slice());
        let mut buf = Vec::new();
        let mut bytes = 0;
        assert_eq!(
            next_line(&mut reader, &mut buf, &mut bytes).unwrap(),
            Some(false)
        );
        assert!(buf.is_empty());
        assert_eq!(
            next_line(&mut reader, &mut buf, &mut bytes).unwrap(),
            Some(true)
        );
        assert_eq!(buf, b"{\"a\":1}");
        assert_eq!(
            next_line(&mut reader, &mut buf, &mut bytes).unwrap(),
            Some(true)
        );
        assert_eq!(buf, b"last");
        assert_eq!(next_line(&mut reader, &mut buf, &mut bytes).unwrap(), None);
        assert_eq!(bytes, input.len() as u64);
    }

    #[test]
    fn positions_name_the_column_only() {
        assert_eq!(
            single_line_position("expected `,` or `}` at line 1 column 34"),
            "expected `,` or `}` (column 34)"
        );
        assert_eq!(single_line_position("it is empty"), "it is empty");
    }

    #[test]
    fn resume_reads_stored_lines_and_cuts_an_incomplete_last_line() {
        let dir = std::env::temp_dir().join(format!("vaultctl-import-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let out = dir.join("aliases.jsonl");
        std::fs::write(
            &out,
            "{\"line\":1,\"aliases\":{}}\n{\"line\":3,\"aliases\":{}}\n{\"line\":4,\"ali",
        )
        .unwrap();
        assert!(
            prepare_out(&out, false).is_err(),
            "never overwritten without --resume"
        );
        let done = prepare_out(&out, true).unwrap();
        assert!(done.contains(1) && done.contains(3));
        assert!(!done.contains(2) && !done.contains(4));
        let left = std::fs::read_to_string(&out).unwrap();
        assert!(left.ends_with("\"line\":3,\"aliases\":{}}\n"), "{left}");
        std::fs::write(&out, "not json\n").unwrap();
        assert!(prepare_out(&out, true).is_err());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
