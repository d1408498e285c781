//! `vaultctl demo`: the embedded mock VGS on a loopback port, driven the way an
//! orchestrator drives vaultlink (`Arc<dyn ExternalVault>`), step by step.

use std::sync::Arc;

use futures_util::future::join_all;
use serde_json::{Value, json};
use vault_core::{
    Alias, Card, CardField, ConnectorAuthType, ConnectorVaultId, DeleteRequest, EraseRequest,
    ExternalVault, InsertRequest, Report, ReportExt, RetrieveRequest, VaultError,
};
use vault_vgs::{CmpConnector, VgsConnector};
use vgs_mock::{
    DEMO_CLIENT_ID, DEMO_CLIENT_SECRET, DEMO_CMP_CLIENT_ID, DEMO_CMP_CLIENT_SECRET, DEMO_VAULT_ID,
    MockConfig,
};

use crate::cli::DemoArgs;
use crate::output::{Failure, alias_table, card_label, id_json, kind_name, print_json, thousands};

/// The demo's cards: the repository's fixture (public test card numbers).
const FIXTURE_CARDS: &str = include_str!("../../../fixtures/cards.json");
/// A vault id of the right form that the mock does not know.
const UNKNOWN_VAULT_ID: &str = "tntunknown00";
/// An alias of the right form that the mock never issued.
const UNKNOWN_ALIAS: &str = "tok_sandbox_nEverIssuedByTheMock0000";

/// Prints a line of the walk-through, unless `--json`.
macro_rules! step {
    ($json:expr, $($arg:tt)*) => {
        if !$json {
            $crate::output::say!($($arg)*);
        }
    };
}
pub(crate) use step;

/// Runs the demo; fails (exit 1) only if vaultlink did not behave as the demo says.
pub(crate) async fn demo(args: DemoArgs) -> Result<(), Failure> {
    let quiet = args.json;
    let cards: Vec<Card> = serde_json::from_str(FIXTURE_CARDS)
        .map_err(|e| Failure::new(format!("fixtures/cards.json is not valid card JSON: {e}")))?;

    step!(
        quiet,
        "vaultlink demo: an orchestrator stores cards in VGS through vaultlink, against the embedded mock VGS (no account, no network)"
    );
    step!(quiet, "");

    // 1. The mock.
    let mock = vgs_mock::start(MockConfig::demo()).await.map_err(|e| {
        Failure::new(format!(
            "cannot start the embedded mock on a loopback port: {e}. Fix: check that 127.0.0.1 is available"
        ))
    })?;
    let base = mock.base_url().to_owned();
    step!(
        quiet,
        "1. Started the mock VGS at {base}: vault {DEMO_VAULT_ID}, OAuth client {DEMO_CLIENT_ID}."
    );

    // 2. The connector, from the credential envelope an orchestrator stores.
    let connector = connector_from_signature_key(DEMO_CLIENT_SECRET, DEMO_VAULT_ID, &base)?;
    let vault: Arc<dyn ExternalVault> = Arc::new(connector.clone());
    step!(
        quiet,
        "2. Built the VGS connector from Hyperswitch-style SignatureKey JSON and hold it as Arc<dyn ExternalVault>:"
    );
    step!(
        quiet,
        "     {}",
        signature_key_json("[REDACTED]", DEMO_VAULT_ID)
    );

    // 3. Insert, concurrently, as requests would arrive.
    let inserted = join_all(
        cards
            .iter()
            .map(|card| vault.insert(InsertRequest::card(card.clone()))),
    )
    .await;
    let mut ids = Vec::with_capacity(cards.len());
    for (card, result) in cards.iter().zip(inserted) {
        let stored = result.map_err(|r| {
            Failure::vault(&format!("inserting card {} failed", card_label(card)), &r)
        })?;
        ids.push(stored.connector_vault_id);
    }
    step!(
        quiet,
        "3. Inserted the {} cards of fixtures/cards.json at once; one alias per field, the CVC volatile. The alias map:",
        cards.len()
    );
    for (card, id) in cards.iter().zip(&ids) {
        step!(quiet, "     {}", card_label(card));
        step!(quiet, "{}", alias_table(id, "       ").trim_end());
    }
    step!(
        quiet,
        "   Card-number aliases (FPE_SIX_T_FOUR) keep the BIN and last four around a random middle: they are not the card numbers."
    );

    // 4. Retrieve and compare.
    let retrieved = join_all(
        ids.iter()
            .map(|id| vault.retrieve(RetrieveRequest::new(id.clone()))),
    )
    .await;
    let mut round_trips = Vec::with_capacity(cards.len());
    for (card, result) in cards.iter().zip(retrieved) {
        let response = result.map_err(|r| {
            Failure::vault(&format!("retrieving card {} failed", card_label(card)), &r)
        })?;
        round_trips.push(response.card() == Some(card));
    }
    let matched = round_trips.iter().filter(|ok| **ok).count();
    step!(
        quiet,
        "4. Retrieved them back by alias: {matched}/{} cards round-trip (number, expiry, CVC, holder name).",
        cards.len()
    );
    if matched != cards.len() {
        return Err(Failure::new(
            "a retrieved card differs from the one inserted. Fix: this is a vaultlink bug; please report it with `vaultctl -vv demo` output",
        ));
    }

    // 5. What goes wrong, typed, with the fix.
    let first = cards
        .first()
        .ok_or_else(|| Failure::new("fixtures/cards.json has no card"))?;
    let wrong_secret = connector_from_signature_key("not-the-secret", DEMO_VAULT_ID, &base)?
        .insert(InsertRequest::card(first.clone()))
        .await;
    let unknown_vault = connector_from_signature_key(DEMO_CLIENT_SECRET, UNKNOWN_VAULT_ID, &base)?
        .insert(InsertRequest::card(first.clone()))
        .await;
    let unknown_alias = vault
        .retrieve(RetrieveRequest::new(with_unknown_number_alias(&ids[0])?))
        .await;
    let scenarios = [
        (
            "wrong client secret",
            "wrong_client_secret",
            VaultError::InvalidCredentials,
            wrong_secret.err(),
        ),
        (
            "unknown vault id",
            "unknown_vault_id",
            VaultError::InvalidCredentials,
            unknown_vault.err(),
        ),
        (
            "unknown alias",
            "unknown_alias",
            VaultError::AliasNotFound,
            unknown_alias.err(),
        ),
    ];
    step!(
        quiet,
        "5. What goes wrong, as the orchestrator sees it: a typed error, its cause and the fix, one line each:"
    );
    let mut failures = Vec::new();
    for (label, key, expected, got) in &scenarios {
        let (line, kind) = describe(got.as_ref());
        step!(quiet, "     {label:<20} -> {line}");
        failures.push(json!({
            "scenario": key,
            "expected": expected.code(),
            "kind": kind.map(|k| k.code()),
            "message": got.as_ref().map(ReportExt::summary),
        }));
        if kind != Some(*expected) {
            return Err(Failure::new(format!(
                "{label}: expected {}, got {line}. Fix: this is a vaultlink bug; please report it",
                kind_name(*expected)
            )));
        }
    }

    // 6. Delete never breaks another card; erase removes a value everywhere.
    let deleted = join_all(
        ids.iter()
            .map(|id| vault.delete(DeleteRequest::new(id.clone()))),
    )
    .await;
    let (mut removed, mut already_gone, mut kept) = (0, 0, 0);
    for result in deleted {
        let response = result.map_err(|r| Failure::vault("delete failed", &r))?;
        removed += response.removed().len();
        already_gone += response.already_gone().len();
        kept += response.kept().len();
    }
    step!(
        quiet,
        "6. Deleted the {} cards: {removed} records removed, {kept} kept. The vault fingerprints values (one record per value), so a holder name, a card number saved by two customers, a CVC or an expiry may be shared with other cards: delete keeps them rather than break those cards.",
        cards.len()
    );
    let erased = vault
        .erase(EraseRequest::cardholder_data(ids[0].clone()))
        .await
        .map_err(|r| Failure::vault("erase failed", &r))?;
    let after = vault.retrieve(RetrieveRequest::new(ids[0].clone())).await;
    let (after_line, after_kind) = describe(after.as_ref().err());
    step!(
        quiet,
        "   Erased the first card's cardholder data everywhere (a right-to-erasure request): {} aliases removed (number, CVC, holder name, in every format).",
        erased.removed().len()
    );
    step!(
        quiet,
        "   Retrieving the erased card -> {}",
        after_kind.map_or(after_line, kind_name)
    );
    if after_kind != Some(VaultError::AliasNotFound) {
        return Err(Failure::new(
            "an erased card could still be retrieved. Fix: this is a vaultlink bug; please report it",
        ));
    }

    // 7. Tokens.
    let fetches = connector.token_fetches().map_or(0, |f| f.total());
    let stats = mock.stats();
    let api_calls = stats.vault(DEMO_VAULT_ID).api_requests;
    let calls = cards.len();
    let plural = if fetches == 1 { "" } else { "es" };
    step!(
        quiet,
        "7. {fetches} access token fetch{plural} served the demo connector's {calls} inserts, {calls} retrieves, {calls} deletes and the erase ({} vault API calls);",
        thousands(api_calls)
    );
    step!(
        quiet,
        "   the mock saw {} token requests in all (the wrong-secret and unknown-vault connectors fetched their own).",
        stats.token_requests
    );

    // 8. The same tenant on VGS's Card Management Platform: one card object.
    let cmp = cmp_card(&base, &cards, quiet).await?;

    // 9. Pay through the proxy: collected as aliases, paid with, never held.
    let proxy = crate::demo_proxy::pay_through_the_proxy(&cards, quiet).await?;
    step!(quiet, "");
    step!(
        quiet,
        "Done. Next: `vaultctl mock serve` runs this mock for your own calls; `vaultctl --help` lists the commands."
    );

    if args.json {
        print_json(&json!({
            "mock": { "base_url": base, "vault_id": DEMO_VAULT_ID },
            "connector": serde_json::from_str::<Value>(&signature_key_json("[REDACTED]", DEMO_VAULT_ID))
                .unwrap_or(Value::Null),
            "cards": cards.iter().zip(&ids).zip(&round_trips).map(|((card, id), ok)| json!({
                "card_number_last4": card.number.last4(),
                "card_exp_month": card.exp_month.two_digits(),
                "card_exp_year": card.exp_year.get().to_string(),
                "aliases": id_json(id),
                "round_trip": ok,
            })).collect::<Vec<_>>(),
            "failures": failures,
            "deleted": { "removed": removed, "already_gone": already_gone, "kept": kept },
            "erased": erased.removed().len(),
            "retrieve_after_erase": after_kind.map(|k| k.code()),
            "token_fetches": fetches,
            "mock_token_requests": stats.token_requests,
            "vault_api_requests": api_calls,
            "cmp": cmp,
            "proxy": proxy,
        }));
    }
    mock.stop().await;
    Ok(())
}

/// `{"auth_type":"SignatureKey","api_key":…,"key1":…,"api_secret":…}`.
fn signature_key_json(secret: &str, vault_id: &str) -> String {
    signature_key_json_of(DEMO_CLIENT_ID, secret, vault_id)
}

/// [`signature_key_json`] for any client.
fn signature_key_json_of(client_id: &str, secret: &str, vault_id: &str) -> String {
    // Written out rather than with `json!`, to keep Hyperswitch's field order.
    format!(
        r#"{{"auth_type":"SignatureKey","api_key":{},"key1":{},"api_secret":{}}}"#,
        Value::from(client_id),
        Value::from(secret),
        Value::from(vault_id)
    )
}

/// Step 8: one card through the CMP connector, built from the same kind of envelope
/// and held the same way: inserted, inserted again (already stored), retrieved in the
/// PCI view, deleted (kept: the duplicate check shares it), erased. Prints card id, PAN
/// alias and last four; never the card.
async fn cmp_card(base: &str, cards: &[Card], quiet: bool) -> Result<Value, Failure> {
    let bug = |what: &str| {
        Failure::new(format!(
            "CMP: {what}. Fix: this is a vaultlink bug; please report it with `vaultctl -vv demo` output"
        ))
    };
    // CMP's card object has no holder-name field: take a card without one.
    let card = cards
        .iter()
        .find(|c| c.holder_name.is_none() && c.cvc.is_some())
        .ok_or_else(|| {
            Failure::new("fixtures/cards.json has no card with a CVC and no holder name")
        })?
        .clone();
    let auth: ConnectorAuthType = serde_json::from_str(&signature_key_json_of(
        DEMO_CMP_CLIENT_ID,
        DEMO_CMP_CLIENT_SECRET,
        DEMO_VAULT_ID,
    ))
    .map_err(|e| Failure::new(format!("the SignatureKey JSON does not parse: {e}")))?;
    let vault: Arc<dyn ExternalVault> = Arc::new(
        CmpConnector::builder()
            .auth_type(&auth)
            .and_then(|builder| builder.endpoint(base).build())
            .map_err(|r| Failure::vault("building the CMP connector failed", &r))?,
    );
    step!(
        quiet,
        "8. CMP: one card object. The same tenant on VGS's Card Management Platform, built from a SignatureKey (CMP client {DEMO_CMP_CLIENT_ID}) and held as Arc<dyn ExternalVault> too:"
    );
    let label = card_label(&card);
    let stored = vault
        .insert(InsertRequest::card(card.clone()))
        .await
        .map_err(|r| Failure::vault(&format!("CMP: inserting card {label} failed"), &r))?;
    let id = stored.connector_vault_id.clone();
    let card_id = id
        .aliases()
        .first()
        .map(|a| a.as_str().to_owned())
        .unwrap_or_default();
    let aliases = stored
        .card_aliases
        .as_ref()
        .ok_or_else(|| bug("the insert answer has no card object"))?;
    step!(
        quiet,
        "     inserted {label}: card id {card_id}, PAN alias {}, last four {} (BIN {}; CVC kept volatile, status {})",
        aliases.pan_alias,
        aliases.last4,
        aliases.bin.as_deref().unwrap_or("?"),
        aliases.cvc_status.map_or("none", |s| s.as_str())
    );
    let again = vault
        .insert(InsertRequest::card(card.clone()))
        .await
        .map_err(|r| Failure::vault("CMP: inserting the card again failed", &r))?;
    if !again.already_stored || again.connector_vault_id != id {
        return Err(bug(
            "inserting the same card again did not return the stored card",
        ));
    }
    step!(
        quiet,
        "     inserted it again -> already stored (CMP's duplicate check answered 303): the same card id, no second card"
    );
    let back = vault
        .retrieve(RetrieveRequest::new(id.clone()))
        .await
        .map_err(|r| Failure::vault("CMP: retrieving the card failed", &r))?;
    let round_trip = back.card() == Some(&card);
    if !round_trip {
        return Err(bug("the retrieved card differs from the one inserted"));
    }
    step!(
        quiet,
        "     retrieved it by card id (PCI view, cards:read-pci): number, expiry and CVC round-trip"
    );
    let deleted = vault
        .delete(DeleteRequest::new(id.clone()))
        .await
        .map_err(|r| Failure::vault("CMP: deleting the card failed", &r))?;
    if deleted.kept().len() != 1
        || vault
            .retrieve(RetrieveRequest::new(id.clone()))
            .await
            .is_err()
    {
        return Err(bug("delete removed a card the duplicate check shares"));
    }
    step!(
        quiet,
        "     deleted it -> kept: with the duplicate check on, everyone who stores this number gets this card id (as the second insert did), so delete leaves it"
    );
    let erased = vault
        .erase(EraseRequest::cardholder_data(id.clone()))
        .await
        .map_err(|r| Failure::vault("CMP: erasing the card failed", &r))?;
    let after = vault.retrieve(RetrieveRequest::new(id.clone())).await;
    let (after_line, after_kind) = describe(after.as_ref().err());
    if after_kind != Some(VaultError::AliasNotFound) {
        return Err(bug("an erased card could still be retrieved"));
    }
    step!(
        quiet,
        "     erased it ({} card object removed, for every holder) -> retrieving it again: {}",
        erased.removed().len(),
        after_kind.map_or(after_line, kind_name)
    );
    Ok(json!({
        "card_id": card_id,
        "pan_alias": aliases.pan_alias.as_str(),
        "card_number_last4": aliases.last4,
        "bin": aliases.bin,
        "aliases": id_json(&id),
        "already_stored": again.already_stored,
        "round_trip": round_trip,
        "kept_by_delete": deleted.kept().len(),
        "erased": erased.removed().len(),
        "retrieve_after_erase": after_kind.map(|k| k.code()),
    }))
}

/// Builds the connector the way an orchestrator does: from the stored credential
/// envelope, pointed at the mock.
fn connector_from_signature_key(
    secret: &str,
    vault_id: &str,
    base: &str,
) -> Result<VgsConnector, Failure> {
    let auth: ConnectorAuthType = serde_json::from_str(&signature_key_json(secret, vault_id))
        .map_err(|e| Failure::new(format!("the SignatureKey JSON does not parse: {e}")))?;
    VgsConnector::builder()
        .auth_type(&auth)
        .and_then(|builder| builder.endpoint(base).build())
        .map_err(|r| Failure::vault("building the connector failed", &r))
}

/// A card's ids with the card-number alias replaced by one the vault never issued.
fn with_unknown_number_alias(id: &ConnectorVaultId) -> Result<ConnectorVaultId, Failure> {
    let unknown = Alias::new(UNKNOWN_ALIAS).map_err(|e| Failure::new(e.to_string()))?;
    let mut id = id.clone();
    if let ConnectorVaultId::Multi(fields) = &mut id {
        if let Some(number) = fields.get_mut(&CardField::CardNumber) {
            number.alias = unknown;
        }
    }
    Ok(id)
}

/// `InvalidCredentials: the vault rejected the credentials: … Fix: …`, and the kind.
fn describe(outcome: Option<&Report<VaultError>>) -> (String, Option<VaultError>) {
    match outcome {
        Some(report) => (
            format!("{}: {}", kind_name(report.kind()), report.summary()),
            Some(report.kind()),
        ),
        None => ("no error (the call succeeded)".to_owned(), None),
    }
}
