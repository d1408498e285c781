//! What vaultctl prints: `Failure` (one line with the cause and the fix, an exit code),
//! masked card views and the alias table. Nothing here prints a card number or a CVC.

use std::fmt::Write as _;

use serde_json::{Value, json};
use vault_core::{Card, ConnectorVaultId, REDACTED, Report, ReportExt, VaultError};

/// Writes one line to stdout; a closed pipe (`vaultctl … | head`) is not an error.
macro_rules! say {
    () => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout().lock());
    }};
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout().lock(), $($arg)*);
    }};
}
pub(crate) use say;

/// Exit code of a failed command.
pub(crate) const EXIT_FAILURE: u8 = 1;
/// Exit code of an import that finished with some lines failed.
pub(crate) const EXIT_PARTIAL: u8 = 3;

/// Why a command failed: one line for a person (cause, then `Fix: …`), the vault error
/// kind when there is one, and the exit code.
#[derive(Debug)]
pub(crate) struct Failure {
    /// The line printed after `error: `.
    pub(crate) message: String,
    /// The vault error kind, for `--json` and scripts.
    pub(crate) kind: Option<VaultError>,
    /// The process exit code.
    pub(crate) code: u8,
    /// More JSON to put in the `--json` error document (e.g. `check`'s findings).
    pub(crate) extra: Option<(&'static str, Value)>,
}

impl Failure {
    /// A failure that is not a vault error; `message` should end with the fix.
    pub(crate) fn new(message: impl Into<String>) -> Self {
        Failure {
            message: message.into(),
            kind: None,
            code: EXIT_FAILURE,
            extra: None,
        }
    }

    /// A vault call failed: `what` (e.g. "insert failed"), then the report's summary,
    /// which names the cause and ends with the fix. Never the report's `Debug`.
    pub(crate) fn vault(what: &str, report: &Report<VaultError>) -> Self {
        Failure {
            message: format!("{what}: {}", report.summary()),
            kind: Some(report.kind()),
            code: EXIT_FAILURE,
            extra: None,
        }
    }

    /// Adds JSON for the `--json` error document.
    pub(crate) fn with_extra(mut self, key: &'static str, value: Value) -> Self {
        self.extra = Some((key, value));
        self
    }

    /// The `--json` error document.
    pub(crate) fn to_json(&self) -> Value {
        let mut error = json!({
            "message": self.message,
            "kind": self.kind.map(|k| k.code()),
            "retryable": self.kind.is_some_and(|k| k.is_retryable()),
        });
        if let Some(kind) = self.kind {
            error["fix"] = Value::from(kind.fix());
        }
        let mut doc = json!({ "error": error });
        if let Some((key, value)) = &self.extra {
            doc[*key] = value.clone();
        }
        doc
    }
}

/// The kind's name as people read it in the docs (`InvalidCredentials`).
pub(crate) fn kind_name(kind: VaultError) -> String {
    format!("{kind:?}")
}

/// Prints `value` as one pretty JSON document on stdout.
pub(crate) fn print_json(value: &Value) {
    match serde_json::to_string_pretty(value) {
        Ok(text) => say!("{text}"),
        Err(error) => eprintln!("error: cannot render JSON: {error}"),
    }
}

/// The card as JSON with the number masked to its last four and the CVC and holder
/// name redacted; absent fields are left out.
pub(crate) fn masked_card_json(card: &Card) -> Value {
    let mut doc = json!({
        "card_number": card.number.masked(),
        "card_exp_month": card.exp_month.two_digits(),
        "card_exp_year": card.exp_year.get().to_string(),
    });
    if card.cvc.is_some() {
        doc["card_cvc"] = Value::from(REDACTED);
    }
    if card.holder_name.is_some() {
        doc["card_holder_name"] = Value::from(REDACTED);
    }
    doc
}

/// `************1111  04/2030`: how a card is named in human output.
pub(crate) fn card_label(card: &Card) -> String {
    format!(
        "{}  {}/{}",
        card.number.masked(),
        card.exp_month.two_digits(),
        card.exp_year.get()
    )
}

/// The alias map of one stored card, one field a line, each line starting with
/// `indent`: field, alias (in full: aliases are not secret), format, storage.
pub(crate) fn alias_table(id: &ConnectorVaultId, indent: &str) -> String {
    let mut out = String::new();
    match id {
        ConnectorVaultId::Multi(fields) => {
            for (field, alias) in fields {
                let _ = writeln!(
                    out,
                    "{indent}{:<17} {:<36} {:<15} {}",
                    field.as_str(),
                    alias.alias.as_str(),
                    alias.format.as_str(),
                    alias.storage.as_str()
                );
            }
        }
        ConnectorVaultId::Single { id, cvc, .. } => {
            let _ = writeln!(out, "{indent}{:<17} {}", "id", id.as_str());
            if let Some(cvc) = cvc {
                let _ = writeln!(out, "{indent}{:<17} {} VOLATILE", "card_cvc", cvc.as_str());
            }
        }
    }
    out
}

/// The aliases as JSON: [`ConnectorVaultId`]'s own form, `{"type":"multi",
/// "card_number":{"alias":…,"format":…,"storage":…},…}`.
pub(crate) fn id_json(id: &ConnectorVaultId) -> Value {
    serde_json::to_value(id).unwrap_or_else(|error| json!({ "unrenderable": error.to_string() }))
}

/// Groups digits with commas: `12,345`.
pub(crate) fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn card() -> Card {
        serde_json::from_str(
            r#"{"card_number":"4111111111111111","card_exp_month":"4","card_exp_year":"2030","card_cvc":"987","card_holder_name":"Ada Lovelace"}"#,
        )
        .expect("card")
    }

    #[test]
    fn masked_card_shows_last_four_and_expiry_only() {
        let text = masked_card_json(&card()).to_string();
        assert!(!text.contains("4111111111111111"), "{text}");
        assert!(!text.contains("987"), "{text}");
        assert!(!text.contains("Ada"), "{text}");
        assert!(text.contains("************1111"), "{text}");
        assert!(
            text.contains("\"04\"") && text.contains("\"2030\""),
            "{text}"
        );
        assert_eq!(card_label(&card()), "************1111  04/2030");
    }

    #[test]
    fn failure_json_names_the_kind_and_the_fix() {
        let report = Report::new(VaultError::AliasNotFound);
        let failure = Failure::vault("retrieve failed", &report);
        let doc = failure.to_json();
        assert_eq!(doc["error"]["kind"], "alias_not_found");
        assert_eq!(doc["error"]["retryable"], false);
        assert!(
            failure
                .message
                .starts_with("retrieve failed: the alias was not found")
        );
        assert!(failure.message.contains("Fix: "));
        assert_eq!(kind_name(VaultError::AliasNotFound), "AliasNotFound");
    }

    #[test]
    fn thousands_are_grouped() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(997), "997");
        assert_eq!(thousands(1000), "1,000");
        assert_eq!(thousands(1234567), "1,234,567");
    }
}
