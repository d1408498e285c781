//! The operator's single-card commands against a vault: `insert` (card JSON on
//! stdin), `retrieve` and `delete` (by `--id` JSON or `FIELD=ALIAS`), and `check`.

use std::io::{IsTerminal, Read};

use secrecy::ExposeSecret;
use serde_json::{Value, json};
use vault_core::{
    Alias, AliasFormat, Card, CardAliases, CardField, ConnectorVaultId, DeleteRequest,
    DeleteResponse, DeleteScope, EraseRequest, ExternalVault, FieldAlias, FieldAliases,
    InsertRequest, MissingField, MissingReason, REDACTED, RecordAction, ReportExt, RetrieveRequest,
    RevealedCard, Storage, VaultError,
};
use vault_core::{CardNumber, ExpiryMonth, ExpiryYear, PaymentMethodData, RetrieveResponse};
use vault_vgs::{ApiGeneration, Fingerprinting};

use crate::cli::{CheckArgs, DeleteArgs, EraseArgs, InsertArgs, RetrieveArgs};
use crate::config::{ENV_FINGERPRINTING, Settings};
use crate::output::{
    EXIT_PARTIAL, Failure, alias_table, card_label, id_json, kind_name, masked_card_json,
    print_json, say, thousands,
};

/// The largest card JSON read from stdin, and the largest `--id` document.
const MAX_INPUT_BYTES: u64 = 64 * 1024;

/// The fields a card JSON may have, for error messages.
pub(crate) const CARD_FIELDS_HELP: &str = "one JSON object with card_number, card_exp_month and card_exp_year, and optionally card_cvc and card_holder_name";

/// `vaultctl insert`: one card from stdin into the vault; prints its aliases.
pub(crate) async fn insert(args: InsertArgs) -> Result<(), Failure> {
    let settings = Settings::load(&args.vault)?;
    let connector = settings.vault().await?;
    if std::io::stdin().is_terminal() {
        eprintln!("reading card JSON from stdin (end with Ctrl-D)…");
    }
    let input = read_limited(std::io::stdin(), "stdin")?;
    let card = card_from_json(&input).map_err(|why| {
        Failure::new(format!(
            "stdin is not valid card JSON: {why}. Fix: give {CARD_FIELDS_HELP}"
        ))
    })?;
    let label = card_label(&card);
    let stored = connector
        .insert(InsertRequest::card(card))
        .await
        .map_err(|report| Failure::vault("insert failed", &report))?;
    let id = stored.connector_vault_id;
    if args.json {
        let mut doc = id_json(&id);
        // A card object (CMP): its aliases beside the id; `retrieve --id` ignores them.
        if let Some(aliases) = &stored.card_aliases {
            doc["card_aliases"] = card_aliases_json(aliases);
        }
        if stored.already_stored {
            doc["already_stored"] = Value::Bool(true);
        }
        print_json(&doc);
    } else {
        say!("stored card {label} in {}", settings.describe());
        say!("{}", alias_table(&id, "  ").trim_end());
        if let Some(aliases) = &stored.card_aliases {
            say!("{}", card_aliases_table(aliases, "  ").trim_end());
        }
        if stored.already_stored {
            say!(
                "already stored: the vault's duplicate check found this card number; this is the existing card"
            );
        }
        say!(
            "keep these aliases instead of the card; `vaultctl insert --json` prints them as JSON for `vaultctl retrieve --id -`"
        );
    }
    Ok(())
}

/// Parses one card JSON object (Hyperswitch's field names, validated). The reason
/// for a refusal never quotes card data: the input must be an object (serde would
/// quote a bare string), and any run of 12 or more digits is hidden.
pub(crate) fn card_from_json(input: &[u8]) -> Result<Card, String> {
    let first = input.iter().find(|b| !b.is_ascii_whitespace());
    if first != Some(&b'{') {
        return Err(match first {
            None => "it is empty".to_owned(),
            Some(_) => "it is not a JSON object".to_owned(),
        });
    }
    serde_json::from_slice(input).map_err(|e| scrub_digits(&e.to_string()))
}

/// Replaces every run of 12 or more digits (ignoring spaces and dashes inside it)
/// with `[digits hidden]`: a card number never reaches an error message.
pub(crate) fn scrub_digits(text: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < chars.len() {
        if chars[i].is_ascii_digit() {
            let mut end = i;
            let mut digits = 0;
            let mut last_digit = i;
            while end < chars.len()
                && (chars[end].is_ascii_digit() || matches!(chars[end], ' ' | '-'))
            {
                if chars[end].is_ascii_digit() {
                    digits += 1;
                    last_digit = end;
                }
                end += 1;
            }
            if digits >= 12 {
                out.push_str("[digits hidden]");
            } else {
                out.extend(&chars[i..=last_digit]);
            }
            i = last_digit + 1;
        } else {
            out.push(chars[i]);
            i += 1;
        }
    }
    out
}

/// `vaultctl retrieve`: the card behind a card's aliases, masked unless `--reveal`.
/// Every stored field that did not come back is printed with why; the exit code is
/// [`EXIT_PARTIAL`] when one is known to be gone (not a CVC that expired, or may have).
pub(crate) async fn retrieve(args: RetrieveArgs) -> Result<u8, Failure> {
    if args.id.is_none() && args.aliases.iter().all(|a| !a.contains('=')) {
        return reveal_bare(args).await.map(|()| 0);
    }
    let id = load_id(args.id.as_deref(), &args.aliases, Purpose::Retrieve)?;
    let settings = Settings::load(&args.vault)?;
    let connector = settings.vault().await?;
    let mut request = RetrieveRequest::new(id);
    if let Some(expiry) = &args.expiry {
        let (month, year) = parse_expiry(expiry)?;
        request = request.with_expiry(month, year);
    }
    let response = connector
        .retrieve(request)
        .await
        .map_err(|report| Failure::vault("retrieve failed", &report))?;
    if let Some(aliases) = response.card_aliases() {
        // CMP's non-PCI view: nothing secret to mask or reveal.
        if args.json {
            print_json(&json!({ "card_aliases": card_aliases_json(aliases) }));
        } else {
            say!("{}", card_aliases_table(aliases, "").trim_end());
            say!(
                "(the vault showed the card's aliases only: these credentials may not see the card in clear, e.g. a CMP service account without cards:read-pci)"
            );
        }
        return Ok(0);
    }
    let Some(card) = response.card() else {
        return print_fields(&response, args.reveal, args.json);
    };
    let missing = &response.missing;
    let missing_of = |field: CardField| missing.iter().find(|m| m.field == field);
    let cvc_absent = |field: Option<&MissingField>| match field {
        Some(m) => format!("(missing: {})", m.reason.explain()),
        None => "(none: not stored)".to_owned(),
    };
    match (args.reveal, args.json) {
        (true, true) => match serde_json::to_value(RevealedCard(card)) {
            Ok(mut doc) => {
                // Only when something is missing: the document is otherwise exactly
                // the card JSON `insert` takes.
                if !missing.is_empty() {
                    doc["missing"] = missing_json(missing);
                }
                print_json(&doc)
            }
            Err(e) => return Err(Failure::new(format!("cannot render the card: {e}"))),
        },
        (true, false) => {
            say!("{:<17} {}", "card_number", card.number.expose_secret());
            say!("{:<17} {}", "card_exp_month", card.exp_month.two_digits());
            say!("{:<17} {}", "card_exp_year", card.exp_year.get());
            match &card.cvc {
                Some(cvc) => say!("{:<17} {}", "card_cvc", cvc.expose_secret()),
                None => say!(
                    "{:<17} {}",
                    "card_cvc",
                    cvc_absent(missing_of(CardField::CardCvc))
                ),
            }
            if let Some(name) = &card.holder_name {
                say!("{:<17} {}", "card_holder_name", name.expose_secret());
            }
        }
        (false, true) => {
            let mut doc = masked_card_json(card);
            if !missing.is_empty() {
                doc["missing"] = missing_json(missing);
            }
            print_json(&doc)
        }
        (false, false) => {
            say!("{:<17} {}", "card_number", card.number.masked());
            say!("{:<17} {}", "card_exp_month", card.exp_month.two_digits());
            say!("{:<17} {}", "card_exp_year", card.exp_year.get());
            match &card.cvc {
                Some(_) => say!("{:<17} {REDACTED} (present; --reveal shows it)", "card_cvc"),
                None => say!(
                    "{:<17} {}",
                    "card_cvc",
                    cvc_absent(missing_of(CardField::CardCvc))
                ),
            }
            if card.holder_name.is_some() {
                say!(
                    "{:<17} {REDACTED} (present; --reveal shows it)",
                    "card_holder_name"
                );
            }
        }
    }
    if !args.json {
        for field in missing.iter().filter(|m| m.field != CardField::CardCvc) {
            say!(
                "{:<17} (missing: {}; alias {})",
                field.field.as_str(),
                field.reason.explain(),
                field.alias
            );
        }
    }
    if response.is_complete() {
        return Ok(0);
    }
    let lost: Vec<&str> = missing
        .iter()
        .filter(|m| m.reason == MissingReason::Gone)
        .map(|m| m.field.as_str())
        .collect();
    eprintln!(
        "warning: the card came back without {}: see the missing lines above; exit code {EXIT_PARTIAL}",
        lost.join(", ")
    );
    Ok(EXIT_PARTIAL)
}

/// `MM/YYYY` (or `MM/YY`) as an expiry month and year.
pub(crate) fn parse_expiry(text: &str) -> Result<(ExpiryMonth, ExpiryYear), Failure> {
    let fix = "Fix: give the expiry as MM/YYYY, e.g. --expiry 04/2030";
    let (month, year) = text
        .split_once('/')
        .ok_or_else(|| Failure::new(format!("--expiry has no `/`. {fix}")))?;
    let month: ExpiryMonth = month
        .trim()
        .parse()
        .map_err(|e| Failure::new(format!("{e}. {fix}")))?;
    let year: ExpiryYear = year
        .trim()
        .parse()
        .map_err(|e| Failure::new(format!("{e}. {fix}")))?;
    Ok((month, year))
}

/// A payment method that is not a whole card (a network token; a card's fields
/// when the id holds only some), one field a line or as JSON, masked unless
/// `reveal`. Missing fields are listed; the exit code is partial when one is gone.
fn print_fields(response: &RetrieveResponse, reveal: bool, json: bool) -> Result<u8, Failure> {
    let shown = |number: &CardNumber| {
        if reveal {
            number.expose_secret().to_owned()
        } else {
            number.masked()
        }
    };
    let secret = |value: &str| {
        if reveal {
            value.to_owned()
        } else {
            REDACTED.to_owned()
        }
    };
    let mut lines: Vec<(&str, String)> = Vec::new();
    let kind = response.payment_method.kind();
    match &response.payment_method {
        PaymentMethodData::NetworkToken(token) => {
            lines.push(("network_token", shown(&token.token)));
            lines.push(("network_token_exp_month", token.exp_month.two_digits()));
            lines.push(("network_token_exp_year", token.exp_year.get().to_string()));
            if let Some(cryptogram) = &token.cryptogram {
                lines.push(("cryptogram", secret(cryptogram.expose_secret())));
            }
        }
        PaymentMethodData::CardFields(fields) => {
            if let Some(number) = &fields.number {
                lines.push(("card_number", shown(number)));
            }
            if let Some(month) = &fields.exp_month {
                lines.push(("card_exp_month", month.two_digits()));
            }
            if let Some(year) = &fields.exp_year {
                lines.push(("card_exp_year", year.get().to_string()));
            }
            if let Some(cvc) = &fields.cvc {
                lines.push(("card_cvc", secret(cvc.expose_secret())));
            }
            if let Some(name) = &fields.holder_name {
                lines.push(("card_holder_name", secret(name.expose_secret())));
            }
        }
        _ => {
            return Err(Failure::new(format!(
                "the vault returned {kind}, which this vaultctl cannot show. Fix: use a vaultctl version that knows it"
            )));
        }
    }
    let missing = &response.missing;
    if json {
        let mut doc = serde_json::Map::new();
        for (name, value) in &lines {
            doc.insert((*name).to_owned(), Value::from(value.as_str()));
        }
        if !missing.is_empty() {
            doc.insert("missing".to_owned(), missing_json(missing));
        }
        print_json(&Value::Object(doc));
    } else {
        say!("({kind}: the id holds these fields)");
        for (name, value) in &lines {
            say!("{name:<23} {value}");
        }
        for field in missing {
            say!(
                "{:<23} (missing: {}; alias {})",
                field.field.as_str(),
                field.reason.explain(),
                field.alias
            );
        }
    }
    Ok(if response.is_complete() {
        0
    } else {
        EXIT_PARTIAL
    })
}

/// The missing fields as JSON: `[{"field","alias","reason"}]`.
fn missing_json(missing: &[MissingField]) -> Value {
    missing
        .iter()
        .map(|m| {
            json!({
                "field": m.field.as_str(),
                "alias": m.alias.as_str(),
                "reason": m.reason.code(),
                "explanation": m.reason.explain(),
            })
        })
        .collect()
}

/// `vaultctl retrieve ALIAS…`: the value behind each bare alias (persistent storage
/// first, then volatile), for lookups during an incident. Its field is unknown, so the
/// value is masked unless `--reveal`: a run of 12 or more digits shows its last four,
/// anything else only its length.
async fn reveal_bare(args: RetrieveArgs) -> Result<(), Failure> {
    let aliases = args
        .aliases
        .iter()
        .map(|a| {
            Alias::new(a.trim()).map_err(|e| {
                Failure::new(format!("{e}. Fix: pass aliases as the vault returned them"))
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    let settings = Settings::load(&args.vault)?;
    let connector = settings.connector().await?;
    let mut found = Vec::with_capacity(aliases.len());
    for alias in &aliases {
        let persistent = connector.reveal(alias, Storage::Persistent).await;
        let (value, storage) = match persistent {
            Ok(value) => (value, Storage::Persistent),
            Err(report) if report.kind() == VaultError::AliasNotFound => {
                let value = connector
                    .reveal(alias, Storage::Volatile)
                    .await
                    .map_err(|report| Failure::vault("retrieve failed", &report))?;
                (value, Storage::Volatile)
            }
            Err(report) => return Err(Failure::vault("retrieve failed", &report)),
        };
        let shown = if args.reveal {
            value.expose_secret().to_owned()
        } else {
            mask_value(value.expose_secret())
        };
        found.push((alias, storage, shown));
    }
    if args.json {
        let doc: serde_json::Map<String, Value> = found
            .iter()
            .map(|(alias, storage, shown)| {
                (
                    alias.to_string(),
                    serde_json::json!({"value": shown, "storage": storage.as_str()}),
                )
            })
            .collect();
        print_json(&Value::Object(doc));
    } else {
        for (alias, storage, shown) in &found {
            say!("{alias}  {shown}  ({storage})");
        }
    }
    Ok(())
}

/// A value of unknown field, masked: a card-number-like run of digits keeps its last
/// four, anything else shows only its length.
fn mask_value(value: &str) -> String {
    let digits = value.chars().filter(char::is_ascii_digit).count();
    if digits >= 12 && value.len() == digits {
        format!(
            "{}{}",
            "*".repeat(value.len() - 4),
            &value[value.len() - 4..]
        )
    } else {
        format!(
            "{REDACTED} ({} characters; --reveal shows it)",
            value.chars().count()
        )
    }
}

/// `vaultctl delete`: removes the card's own records; reports what was kept and why.
pub(crate) async fn delete(args: DeleteArgs) -> Result<(), Failure> {
    let id = load_id(args.id.as_deref(), &args.aliases, Purpose::Delete)?;
    let settings = Settings::load(&args.vault)?;
    let connector = settings.vault().await?;
    let deleted = connector
        .delete(DeleteRequest::new(id))
        .await
        .map_err(|report| Failure::vault("delete failed", &report))?;
    report_deletion(&deleted, &settings, args.json);
    Ok(())
}

/// `vaultctl erase`: removes the values from the vault everywhere, after `--yes`.
pub(crate) async fn erase(args: EraseArgs) -> Result<(), Failure> {
    let id = load_id(args.id.as_deref(), &args.aliases, Purpose::Delete)?;
    let mut fields = Vec::new();
    for name in args
        .fields
        .iter()
        .map(|f| f.trim())
        .filter(|f| !f.is_empty())
    {
        fields.push(field_named(name).ok_or_else(|| {
            Failure::new(format!(
                "--fields: `{}` is not a card field. Fix: give card_number, card_cvc, card_holder_name, card_exp_month or card_exp_year, comma separated",
                short(name)
            ))
        })?);
    }
    if fields.is_empty() {
        return Err(Failure::new(
            "--fields names no field. Fix: e.g. --fields card_number",
        ));
    }
    let names: Vec<&str> = fields.iter().map(CardField::as_str).collect();
    if !args.yes {
        return Err(Failure::new(format!(
            "erase removes the values of {} from the vault everywhere: every stored card holding an equal value loses it too. Fix: add --yes to confirm, or use `vaultctl delete` to forget this card only",
            names.join(", ")
        )));
    }
    let settings = Settings::load(&args.vault)?;
    let connector = settings.vault().await?;
    let erased = connector
        .erase(EraseRequest::fields(id, fields))
        .await
        .map_err(|report| Failure::vault("erase failed", &report))?;
    report_deletion(&erased, &settings, args.json);
    Ok(())
}

/// Prints what a delete or erase did with every record, and why.
fn report_deletion(result: &DeleteResponse, settings: &Settings, json: bool) {
    let everywhere = result.scope == DeleteScope::EveryHolder;
    let erase = result.scope != DeleteScope::PaymentMethod;
    if json {
        let records: Vec<Value> = result
            .records
            .iter()
            .map(|r| {
                let (action, reason) = match r.action {
                    RecordAction::Removed => ("removed", None),
                    RecordAction::AlreadyGone => ("already_gone", None),
                    RecordAction::Kept(why) => ("kept", Some(why)),
                    _ => ("unknown", None),
                };
                json!({
                    "part": r.part.to_string(),
                    "alias": r.alias.as_str(),
                    "storage": r.storage.as_str(),
                    "action": action,
                    "reason": reason.map(|why| why.code()),
                    "explanation": reason.map(|why| why.explain()),
                })
            })
            .collect();
        let scope = match result.scope {
            DeleteScope::PaymentMethod => "payment_method",
            DeleteScope::EveryHolder => "every_holder",
            _ => "reachable_records",
        };
        print_json(&json!({ "scope": scope, "records": records }));
        return;
    }
    match (erase, everywhere) {
        (true, true) => say!(
            "erased from {} everywhere: the vault keeps one record per value, so every stored card holding these values has lost them",
            settings.describe()
        ),
        (true, false) => say!(
            "erased this card's records of these values from {}: the vault keeps separate records here (fingerprinting off, or a record of the card's own), so equal values other cards stored are theirs and stay",
            settings.describe()
        ),
        _ => say!("deleted from {}", settings.describe()),
    }
    for record in &result.records {
        let what = format!("{} {}", record.part, record.alias);
        match record.action {
            RecordAction::Removed => say!("  removed       {what}"),
            RecordAction::AlreadyGone => {
                say!("  already gone  {what} (deleted before, or a CVC that expired)")
            }
            RecordAction::Kept(why) => say!("  kept          {what}: {}", why.explain()),
            _ => say!("  unchanged     {what}"),
        }
    }
    if !result.kept().is_empty() {
        say!(
            "the kept records stay while other cards may use them; `vaultctl erase` removes values everywhere (a right-to-erasure request)"
        );
    }
}

/// A card field by its name (or the short names `retrieve` accepts).
fn field_named(name: &str) -> Option<CardField> {
    Some(match name {
        "card_number" | "number" => CardField::CardNumber,
        "card_exp_month" | "month" | "exp_month" => CardField::CardExpMonth,
        "card_exp_year" | "year" | "exp_year" => CardField::CardExpYear,
        "card_cvc" | "cvc" => CardField::CardCvc,
        "card_holder_name" | "holder" | "holder_name" => CardField::CardHolderName,
        _ => return None,
    })
}

/// `vaultctl check`: a token and one vault call; says what works and what does not.
pub(crate) async fn check(args: CheckArgs) -> Result<(), Failure> {
    let settings = Settings::load(&args.vault)?;
    let connector = settings.vault().await?;
    if !args.json {
        say!("checking {}", settings.describe());
    }
    let outcome = connector.check().await;
    let fetches = connector.token_fetches();
    let token_ok = fetches.is_some_and(|f| f.ok > 0);
    let failed = outcome.as_ref().err().map(ReportExt::kind);
    let v1 = settings.api == ApiGeneration::V1;

    let (credentials, scope, vault) = match failed {
        None => ("ok", "ok", "ok"),
        // A token was issued, then the vault refused it: VGS's answer for a service
        // account not assigned to the vault, or a vault that does not exist.
        Some(VaultError::InvalidCredentials) if token_ok => ("ok", "not checked", "refused"),
        Some(VaultError::InvalidCredentials) => ("failed", "not checked", "not checked"),
        Some(VaultError::Forbidden) => ("ok", "failed", "not checked"),
        Some(VaultError::VaultNotFound) => ("ok", "not checked", "failed"),
        Some(_) if token_ok => ("ok", "not checked", "not reached"),
        Some(_) => ("not checked", "not checked", "not reached"),
    };
    let credentials_note = match (credentials, v1) {
        ("ok", false) => format!("a token was issued to client {}", settings.client_id),
        ("ok", true) => format!(
            "the vault accepted the access credentials of {}",
            settings.client_id
        ),
        ("failed", _) => format!("client {} or its secret was refused", settings.client_id),
        _ => String::new(),
    };
    let scope_note = match scope {
        "ok" if settings.api == ApiGeneration::Cmp => {
            "CMP answered a card read (cards:read)".to_owned()
        }
        "ok" => "the vault answered a reveal (aliases:read)".to_owned(),
        "failed" => "the service account lacks a scope".to_owned(),
        _ => String::new(),
    };
    let vault_note = match vault {
        "ok" if settings.api == ApiGeneration::Cmp => format!(
            "CMP answered at {} (the tenant is the service account's, {} by the settings)",
            settings.location, settings.vault_id
        ),
        "ok" => format!("{} exists at {}", settings.vault_id, settings.location),
        "failed" => format!("{} is unknown at {}", settings.vault_id, settings.location),
        "refused" => format!(
            "{} refused the token: the service account is not assigned to it, or it does not exist at {}",
            settings.vault_id, settings.location
        ),
        "not reached" => format!("{} did not answer", settings.location),
        _ => String::new(),
    };
    // The alias API's fingerprinting decides what delete may remove and whether an
    // insert may be re-sent: find out what the vault does, and compare.
    let probe = match outcome {
        Ok(()) => connector.probe_fingerprinting().await,
        Err(_) => None,
    };
    let configured = settings.fingerprinting;
    let (fingerprinting, fingerprinting_note) = match &probe {
        None if settings.api == ApiGeneration::Cmp => (
            "not probed".to_owned(),
            format!(
                "CMP's duplicate-card check is taken as {configured} ({ENV_FINGERPRINTING}); probing it would store a card"
            ),
        ),
        None => ("not probed".to_owned(), String::new()),
        Some(Ok(found)) if *found == configured => (
            found.to_string(),
            format!("{} (as configured)", probe_meaning(*found)),
        ),
        Some(Ok(found)) => (
            found.to_string(),
            format!(
                "{}, but vaultctl is configured for {configured}: set {ENV_FINGERPRINTING}={found} (or `fingerprinting = \"{found}\"`), and the same in your connector's builder",
                probe_meaning(*found)
            ),
        ),
        Some(Err(report)) => (
            "not probed".to_owned(),
            format!(
                "the probe (store a test value twice, then delete it) failed: {} (it needs aliases:write and aliases:delete)",
                report.kind()
            ),
        ),
    };
    let findings = json!({
        "vault_id": settings.vault_id,
        "location": settings.location.to_string(),
        "api": settings.api_name(),
        "client_id": settings.client_id,
        "credentials": credentials,
        "scope": scope,
        "vault": vault,
        "token_fetches": fetches.map(|f| f.total()),
        "rate_limit_remaining": connector.rate_limit_remaining(),
        "fingerprinting": {"found": fingerprinting, "configured": configured.as_str()},
    });
    if args.json {
        if outcome.is_ok() {
            print_json(&findings);
        }
    } else {
        for (what, state, note) in [
            ("credentials", credentials, credentials_note),
            ("scope", scope, scope_note),
            ("vault", vault, vault_note),
        ] {
            say!("{}", format!("  {what:<12} {state:<12} {note}").trim_end());
        }
        if outcome.is_ok() {
            say!(
                "{}",
                format!(
                    "  {:<12} {fingerprinting:<12} {fingerprinting_note}",
                    "fingerprint"
                )
                .trim_end()
            );
        }
        if let Some(remaining) = connector.rate_limit_remaining() {
            say!(
                "  {:<12} {} requests left this minute",
                "rate limit",
                thousands(remaining)
            );
        }
    }
    match outcome {
        Ok(()) => {
            if !args.json {
                say!("all good: this vault and these credentials work");
            }
            Ok(())
        }
        Err(report) => Err(Failure::vault(
            &format!("check failed ({})", kind_name(report.kind())),
            &report,
        )
        .with_extra("check", findings)),
    }
}

/// What a probe's finding means, for `check`.
fn probe_meaning(found: Fingerprinting) -> &'static str {
    match found {
        Fingerprinting::On => {
            "the vault returned the same alias for the same value twice: equal values share records"
        }
        Fingerprinting::Off => {
            "the vault returned a new alias for the same value: every insert stores new records"
        }
    }
}

/// A card object's aliases as JSON (nothing secret in them).
fn card_aliases_json(aliases: &CardAliases) -> Value {
    json!({
        "pan_alias": aliases.pan_alias.as_str(),
        "cvc_alias": aliases.cvc_alias.as_ref().map(Alias::as_str),
        "cvc_status": aliases.cvc_status.map(|s| s.as_str()),
        "bin": aliases.bin,
        "last4": aliases.last4,
        "card_exp_month": aliases.exp_month.two_digits(),
        "card_exp_year": aliases.exp_year.get().to_string(),
    })
}

/// A card object's aliases, one a line.
fn card_aliases_table(aliases: &CardAliases, indent: &str) -> String {
    let mut out = format!("{indent}{:<17} {}\n", "pan_alias", aliases.pan_alias);
    if let Some(cvc) = &aliases.cvc_alias {
        let status = aliases.cvc_status.map_or("", |s| s.as_str());
        out.push_str(&format!(
            "{indent}{:<17} {cvc} (cvc_status {status})\n",
            "cvc_alias"
        ));
    }
    if let Some(bin) = &aliases.bin {
        out.push_str(&format!("{indent}{:<17} {bin}\n", "bin"));
    }
    out.push_str(&format!("{indent}{:<17} {}\n", "last4", aliases.last4));
    out.push_str(&format!(
        "{indent}{:<17} {}/{}\n",
        "expiry",
        aliases.exp_month.two_digits(),
        aliases.exp_year.get()
    ));
    out
}

/// What the aliases are for: retrieve needs a whole card, delete takes any part.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Purpose {
    /// `vaultctl retrieve`.
    Retrieve,
    /// `vaultctl delete`.
    Delete,
}

/// The card's aliases from `--id FILE|-` or from `FIELD=ALIAS` arguments.
pub(crate) fn load_id(
    id: Option<&str>,
    aliases: &[String],
    purpose: Purpose,
) -> Result<ConnectorVaultId, Failure> {
    match id {
        Some("-") => parse_id_json(&read_limited(std::io::stdin(), "stdin")?, "stdin"),
        Some(path) => {
            let file = std::fs::File::open(path).map_err(|e| {
                Failure::new(format!("cannot read --id {path}: {e}. Fix: check the path"))
            })?;
            parse_id_json(&read_limited(file, path)?, path)
        }
        None => id_from_arguments(aliases, purpose),
    }
}

/// Parses what `insert --json` printed, one line of `import`'s output (whose
/// `aliases` field holds the same), a compact id (`vl1;…`), or an id Hyperswitch
/// kept (`{"SingleVaultId": …}`, `{"MultiVauldIds": …}`).
pub(crate) fn parse_id_json(input: &[u8], source: &str) -> Result<ConnectorVaultId, Failure> {
    let fix = "Fix: pass the JSON `vaultctl insert --json` printed, one line of `vaultctl import`'s --out file, a compact id (vl1;…) or a Hyperswitch connector_vault_id";
    if let Some(text) = std::str::from_utf8(input)
        .ok()
        .map(str::trim)
        .filter(|t| t.starts_with("vl"))
    {
        return text
            .parse()
            .map_err(|e| Failure::new(format!("{source}: {e}. {fix}")));
    }
    let mut doc: Value = serde_json::from_slice(input)
        .map_err(|e| Failure::new(format!("{source} is not JSON: {e}. {fix}")))?;
    id_from_value(doc.take(), source)
        .map_err(|e| Failure::new(format!("{}. {fix}", scrub_digits(&e))))
}

/// A card's id from JSON: vaultlink's (`{"type": …}`, or an `aliases` field that
/// holds it), a compact id string, an id Hyperswitch kept (`VaultIdType`), or VGS
/// Collect's aliases.
pub(crate) fn id_from_value(mut doc: Value, source: &str) -> Result<ConnectorVaultId, String> {
    if let Value::String(text) = &doc {
        return text.parse().map_err(|e| format!("{source}: {e}"));
    }
    if let Some(id) = collect_id(&doc) {
        return id.map_err(|e| format!("{source}: {e}"));
    }
    if doc.get("SingleVaultId").is_some() || doc.get("MultiVauldIds").is_some() {
        let id: vault_core::hyperswitch::VaultIdType = serde_json::from_value(doc)
            .map_err(|e| format!("{source} is not a Hyperswitch connector_vault_id: {e}"))?;
        return ConnectorVaultId::try_from(&id).map_err(|e| format!("{source}: {e}"));
    }
    if doc.get("type").is_none() {
        if let Some(aliases) = doc.get_mut("aliases") {
            doc = aliases.take();
        }
    }
    serde_json::from_value(doc).map_err(|e| format!("{source} does not hold a card's aliases: {e}"))
}

/// VGS Collect's aliases `{"card_number": ALIAS, "card_cvc": ALIAS?}` as a per-field
/// id (number persistent, CVC volatile); `None` if `doc` is not that shape.
pub(crate) fn collect_id(doc: &Value) -> Option<Result<ConnectorVaultId, String>> {
    let object = doc.as_object()?;
    let number = object.get("card_number")?.as_str()?;
    if object.contains_key("type") || object.keys().any(|k| k != "card_number" && k != "card_cvc") {
        return None;
    }
    let alias =
        |text: &str, what: &str| vault_core::Alias::new(text).map_err(|e| format!("{what}: {e}"));
    let mut fields = FieldAliases::new();
    let number = match alias(number, "card_number") {
        Ok(number) => number,
        Err(e) => return Some(Err(e)),
    };
    fields.insert(
        CardField::CardNumber,
        vault_core::FieldAlias::new(
            number,
            vault_core::AliasFormat::FpeSixTFour,
            Storage::Persistent,
        ),
    );
    let cvc = match object.get("card_cvc") {
        None | Some(Value::Null) => None,
        Some(Value::String(cvc))
            if (3..=4).contains(&cvc.len()) && cvc.bytes().all(|b| b.is_ascii_digit()) =>
        {
            return Some(Err(
                "card_cvc holds 3 or 4 digits: a CVC, not its alias; give the alias VGS returned for it".to_owned(),
            ));
        }
        Some(Value::String(cvc)) => Some(cvc),
        Some(_) => {
            return Some(Err(
                "card_cvc must be the CVC's alias as a string (never the CVC itself)".to_owned(),
            ));
        }
    };
    if let Some(cvc) = cvc {
        match alias(cvc, "card_cvc") {
            Ok(cvc) => {
                fields.insert(
                    CardField::CardCvc,
                    vault_core::FieldAlias::new(
                        cvc,
                        vault_core::AliasFormat::Uuid,
                        Storage::Volatile,
                    ),
                );
            }
            Err(e) => return Some(Err(e)),
        }
    }
    Some(Ok(ConnectorVaultId::Multi(fields)))
}

/// Builds the id from `FIELD=ALIAS` arguments.
fn id_from_arguments(arguments: &[String], purpose: Purpose) -> Result<ConnectorVaultId, Failure> {
    let usage = "Fix: name each alias's field, e.g. card_number=ALIAS card_exp_month=ALIAS card_exp_year=ALIAS [card_cvc=ALIAS] [card_holder_name=ALIAS], or pass `--id FILE` with the JSON `vaultctl insert --json` printed";
    let mut fields = FieldAliases::new();
    let mut whole: Option<Alias> = None;
    for argument in arguments {
        let Some((name, alias)) = argument.split_once('=') else {
            return Err(Failure::new(format!(
                "`{}` does not say which card field it is. {usage}",
                short(argument)
            )));
        };
        let alias = Alias::new(alias.trim()).map_err(|e| Failure::new(format!("{e}. {usage}")))?;
        let name = name.trim();
        if name == "id" {
            if whole.replace(alias).is_some() {
                return Err(Failure::new(format!("id= is given twice. {usage}")));
            }
            continue;
        }
        let Some(field) = field_named(name) else {
            return Err(Failure::new(format!(
                "`{}` is not a card field. {usage}",
                short(name)
            )));
        };
        // The format is not needed to retrieve or delete; the storage is: a CVC is
        // always kept volatile, everything else persistent.
        let storage = if field == CardField::CardCvc {
            Storage::Volatile
        } else {
            Storage::Persistent
        };
        let entry = FieldAlias::new(alias, AliasFormat::Uuid, storage);
        if fields.insert(field, entry).is_some() {
            return Err(Failure::new(format!("{field} is given twice. {usage}")));
        }
    }
    if let Some(id) = whole {
        let cvc = fields.remove(&CardField::CardCvc).map(|f| f.alias);
        if let Some(field) = fields.keys().next() {
            return Err(Failure::new(format!(
                "id= (a card stored whole) cannot be combined with {field}=; only card_cvc= can. {usage}"
            )));
        }
        return Ok(ConnectorVaultId::Single {
            id,
            cvc,
            cvc_expires_at: None,
        });
    }
    if purpose == Purpose::Retrieve {
        for required in [
            CardField::CardNumber,
            CardField::CardExpMonth,
            CardField::CardExpYear,
        ] {
            if !fields.contains_key(&required) {
                return Err(Failure::new(format!(
                    "retrieve needs the alias of {required} to rebuild the card. {usage}"
                )));
            }
        }
    }
    if fields.is_empty() {
        return Err(Failure::new(format!("no aliases given. {usage}")));
    }
    Ok(ConnectorVaultId::Multi(fields))
}

/// At most 40 characters of user input, for quoting it in an error; a long run of
/// digits (possibly a card number typed in the wrong place) is not quoted at all.
fn short(input: &str) -> String {
    let digits = input.chars().filter(char::is_ascii_digit).count();
    if digits >= 12 {
        return "(an argument with 12 or more digits)".to_owned();
    }
    input.chars().take(40).collect()
}

/// Reads at most [`MAX_INPUT_BYTES`].
pub(crate) fn read_limited(reader: impl Read, source: &str) -> Result<Vec<u8>, Failure> {
    let mut input = Vec::new();
    reader
        .take(MAX_INPUT_BYTES + 1)
        .read_to_end(&mut input)
        .map_err(|e| Failure::new(format!("cannot read {source}: {e}")))?;
    if input.len() as u64 > MAX_INPUT_BYTES {
        return Err(Failure::new(format!(
            "{source} is larger than {} KiB. Fix: give one JSON document",
            MAX_INPUT_BYTES / 1024
        )));
    }
    Ok(input)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn card_errors_never_quote_card_numbers() {
        let err = card_from_json(br#""4111111111111111""#).expect_err("not an object");
        assert_eq!(err, "it is not a JSON object");
        let err = card_from_json(br#"{"4111 1111 1111 1111": 1}"#).expect_err("unknown key");
        assert!(err.contains("unknown field `[digits hidden]`"), "{err}");
        let err = card_from_json(
            br#"{"card_number":"4111111111111112","card_exp_month":"04","card_exp_year":"2030"}"#,
        )
        .expect_err("luhn");
        assert!(err.contains("Luhn"), "{err}");
        assert_eq!(
            scrub_digits("line 17, column 12 of 2030"),
            "line 17, column 12 of 2030"
        );
        assert_eq!(
            scrub_digits("a 4111-1111-1111-1111 b"),
            "a [digits hidden] b"
        );
        card_from_json(
            br#" {"card_number":"4111111111111111","card_exp_month":4,"card_exp_year":30}"#,
        )
        .expect("valid");
    }

    #[test]
    fn field_aliases_build_a_per_field_id_with_a_volatile_cvc() {
        let id = id_from_arguments(
            &args(&[
                "card_number=4111110000001111",
                "month=tok_a",
                "year=tok_b",
                "cvc=tok_c",
            ]),
            Purpose::Retrieve,
        )
        .expect("valid");
        let ConnectorVaultId::Multi(fields) = id else {
            panic!("multi");
        };
        assert_eq!(fields.len(), 4);
        assert_eq!(fields[&CardField::CardCvc].storage, Storage::Volatile);
        assert_eq!(fields[&CardField::CardNumber].storage, Storage::Persistent);
    }

    #[test]
    fn bare_or_incomplete_aliases_are_refused_with_the_fix() {
        let err = id_from_arguments(&args(&["tok_a"]), Purpose::Retrieve).expect_err("bare");
        assert!(
            err.message.contains("does not say which card field"),
            "{}",
            err.message
        );
        assert!(err.message.contains("Fix:"));
        let err =
            id_from_arguments(&args(&["number=tok_a"]), Purpose::Retrieve).expect_err("partial");
        assert!(err.message.contains("card_exp_month"), "{}", err.message);
        // Delete takes any part of a card.
        id_from_arguments(&args(&["number=tok_a"]), Purpose::Delete).expect("delete a part");
        let err = id_from_arguments(&args(&["pan=4111111111111111"]), Purpose::Delete)
            .expect_err("field");
        assert!(!err.message.contains("4111111111111111"), "{}", err.message);
    }

    #[test]
    fn a_whole_record_id_takes_only_a_cvc_besides() {
        let id = id_from_arguments(&args(&["id=tok_w", "cvc=tok_c"]), Purpose::Retrieve)
            .expect("single");
        assert!(matches!(id, ConnectorVaultId::Single { cvc: Some(_), .. }));
        assert!(
            id_from_arguments(&args(&["id=tok_w", "number=tok_n"]), Purpose::Retrieve).is_err()
        );
    }

    #[test]
    fn insert_json_and_import_lines_both_parse_as_ids() {
        let id = id_from_arguments(
            &args(&["number=tok_n", "month=tok_m", "year=tok_y"]),
            Purpose::Retrieve,
        )
        .expect("id");
        let printed = id_json(&id).to_string();
        assert!(printed.contains("\"card_number\""), "{printed}");
        assert_eq!(
            parse_id_json(printed.as_bytes(), "t").expect("insert json"),
            id
        );
        let line = format!(r#"{{"line":7,"card_number_last4":"1111","aliases":{printed}}}"#);
        assert_eq!(
            parse_id_json(line.as_bytes(), "t").expect("import line"),
            id
        );
        assert!(parse_id_json(b"{\"line\":7}", "t").is_err());
    }
}
