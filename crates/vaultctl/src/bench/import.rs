//! `vaultctl bench --import N`: N generated cards through `insert_many` in batches,
//! generated lazily so memory stays flat; cards/s, requests made, peak RSS.

use std::time::Instant;

use serde_json::json;
use vault_core::{Card, CardNumber, Cvc, ExpiryMonth, ExpiryYear, InsertRequest, ReportExt};

use super::machine_json;
use super::target::Target;
use crate::cli::BenchArgs;
use crate::output::{EXIT_FAILURE, Failure, print_json, say, thousands};

/// Values stored per generated card: number, expiry month, expiry year, CVC.
const VALUES_PER_CARD: u64 = 4;
/// Values per `POST /aliases` (VGS's limit, which the connector fills).
const VALUES_PER_REQUEST: u64 = 20;

/// Runs the import; exit code 1 if any card failed or the request count is off.
pub(crate) async fn run(args: &BenchArgs, cards: u64) -> Result<u8, Failure> {
    let batch = u64::from(args.import_batch);
    if batch % 5 != 0 {
        return Err(Failure::new(format!(
            "--import-batch {batch} is not a multiple of 5: each batch's 4 values per card are packed 20 to a request, so a batch of a multiple of 5 cards fills every request. Fix: give e.g. --import-batch 500"
        )));
    }
    let target = match &args.endpoint {
        Some(endpoint) => Target::external(endpoint)?,
        None => Target::child()?,
    };
    let quiet = args.json;
    if !quiet {
        say!("vaultctl bench --import: {}", target.describe());
        say!(
            "storing {} generated cards ({} values) through insert_many, {} cards a call",
            thousands(cards),
            thousands(cards * VALUES_PER_CARD),
            thousands(batch)
        );
    }
    let connector = target.connector()?;
    let before = target.stats().await?;
    let started = Instant::now();
    let (mut stored, mut failed) = (0u64, 0u64);
    let mut first_error = None;
    let mut next = 0u64;
    while next < cards {
        let end = (next + batch).min(cards);
        let requests = (next..end)
            .map(|n| test_card(n).map(InsertRequest::card))
            .collect::<Result<Vec<_>, _>>()?;
        for result in connector.insert_many(requests).await {
            match result {
                Ok(_) => stored += 1,
                Err(report) => {
                    failed += 1;
                    first_error.get_or_insert_with(|| report.summary());
                }
            }
        }
        next = end;
    }
    let elapsed = started.elapsed();
    let after = target.stats().await?;
    let vault = target.vault_id();
    let requests = after.vault(vault).create_requests - before.vault(vault).create_requests;
    let values = cards * VALUES_PER_CARD;
    let expected_requests = values.div_ceil(VALUES_PER_REQUEST);
    let cards_per_s = cards as f64 / elapsed.as_secs_f64().max(1e-9);
    let peak_rss_kib = peak_rss_kib();
    let token_fetches = after.token_requests - before.token_requests;

    if quiet {
        print_json(&json!({
            "import": {
                "cards": cards,
                "values": values,
                "batch": batch,
                "stored": stored,
                "failed": failed,
                "requests": requests,
                "expected_requests": expected_requests,
                "cards_per_s": (cards_per_s * 10.0).round() / 10.0,
                "requests_per_s": ((requests as f64 / elapsed.as_secs_f64().max(1e-9)) * 10.0).round() / 10.0,
                "elapsed_s": (elapsed.as_secs_f64() * 1000.0).round() / 1000.0,
                "peak_rss_kib": peak_rss_kib,
                "token_fetches": token_fetches,
            },
            "api": target.api_name(),
            "mock": target.mock_json(),
            "machine": machine_json(),
        }));
    } else {
        say!(
            "stored {} cards ({} failed) in {:.2} s: {} cards/s, {} requests/s",
            thousands(stored),
            thousands(failed),
            elapsed.as_secs_f64(),
            thousands(cards_per_s as u64),
            thousands((requests as f64 / elapsed.as_secs_f64().max(1e-9)) as u64)
        );
        say!(
            "create requests: {} (ceil({} values / 20) = {}); token fetches: {token_fetches}",
            thousands(requests),
            thousands(values),
            thousands(expected_requests)
        );
        say!(
            "peak RSS of this process: {}",
            peak_rss_kib.map_or("unknown (no /proc/self/status)".to_owned(), |k| format!(
                "{:.1} MiB",
                k as f64 / 1024.0
            ))
        );
    }
    if failed > 0 || requests != expected_requests {
        eprintln!(
            "error: {failed} cards failed{}; {requests} requests for {expected_requests} expected. Fix: lift the mock's rate limit (`vaultctl mock serve --rate-limit none`) and check its faults are off",
            first_error
                .map(|e| format!(" (the first: {e})"))
                .unwrap_or_default()
        );
        return Ok(EXIT_FAILURE);
    }
    Ok(0)
}

/// The `n`-th generated card: a Luhn-valid 16-digit number from `n`, expiry and CVC
/// derived from `n` (no holder name: 4 values a card).
pub(crate) fn test_card(n: u64) -> Result<Card, Failure> {
    let invalid = |e: vault_core::ValidationError| {
        Failure::new(format!("generated test card {n} is not valid: {e}"))
    };
    let body = format!("4000{:011}", n % 100_000_000_000);
    let sum: u32 = body
        .bytes()
        .rev()
        .enumerate()
        .map(|(i, b)| {
            let d = u32::from(b - b'0');
            if i % 2 == 0 {
                let d = d * 2;
                if d > 9 { d - 9 } else { d }
            } else {
                d
            }
        })
        .sum();
    let number = format!("{body}{}", (10 - sum % 10) % 10);
    let month = u32::try_from(n % 12).unwrap_or(0) + 1;
    let year = 2030 + u32::try_from(n % 5).unwrap_or(0);
    Ok(Card::new(
        CardNumber::new(&number).map_err(invalid)?,
        ExpiryMonth::new(month).map_err(invalid)?,
        ExpiryYear::new(year).map_err(invalid)?,
    )
    .with_cvc(Cvc::new(&format!("{:03}", n % 1000)).map_err(invalid)?))
}

/// This process's peak resident set size (`VmHWM`), in KiB; Linux only.
fn peak_rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_cards_are_valid_and_distinct() {
        let a = test_card(0).expect("valid");
        let b = test_card(1).expect("valid");
        assert_eq!(a.number.expose_secret(), "4000000000000002");
        assert_ne!(a.number.expose_secret(), b.number.expose_secret());
        assert!(test_card(99_999_999_999).is_ok());
    }

    #[test]
    fn peak_rss_is_read_on_linux() {
        if cfg!(target_os = "linux") {
            assert!(peak_rss_kib().is_some_and(|k| k > 0));
        }
    }
}
