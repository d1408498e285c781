//! Cards collected through VGS's inbound proxy: the checkout form reaches the
//! orchestrator with aliases where the card was (the route's REDACT filters), and
//! [`card_id_from_collected`] turns that form into the id the orchestrator keeps, in
//! the layout [`VgsConnector`](crate::VgsConnector) stores cards, so the same id
//! retrieves, forwards and deletes like one the connector inserted.

use error_stack::Report;
use vault_core::{
    Alias, AliasFormat, CardField, ConnectorVaultId, Detail, FieldAlias, FieldAliases, Storage,
    VaultError, VaultResult,
};

/// The card's id from a JSON form that VGS's inbound proxy redacted: the aliases under
/// Hyperswitch's field names, `card_number`, `card_exp_month`, `card_exp_year`, and
/// optionally `card_cvc` and `card_holder_name` (other keys are ignored).
///
/// The route's REDACT filters must store them as the connector does: `card_number`
/// PERSISTENT with `card_number_format` (the connector's default, FPE_SIX_T_FOUR), the
/// CVC VOLATILE and every other field PERSISTENT, both with VGS's default generator
/// (UUID, `tok_…`). A field that did not come back as an alias (a route without a
/// filter for it) is an error naming the field, never quoting the value. A card number
/// in a length-preserving numeric format (FPE_SIX_T_FOUR) is Luhn-valid digits, as
/// the card itself is: a route that forgot to redact it cannot be caught here, so
/// test the route (the mock runs route files), or use ALPHANUMERIC_SIX_T_FOUR, which
/// is checked.
pub fn card_id_from_collected(
    form: &[u8],
    card_number_format: AliasFormat,
) -> VaultResult<ConnectorVaultId> {
    let invalid = |what: String| Report::new(VaultError::InvalidRequest).attach(Detail::new(what));
    let form: serde_json::Value = serde_json::from_slice(form).map_err(|e| {
        invalid(format!(
            "the collected form is not JSON (line {}, column {})",
            e.line(),
            e.column()
        ))
    })?;
    if !form.is_object() {
        return Err(invalid(
            "the collected form is not a JSON object of card fields".to_owned(),
        ));
    }
    let layout = [
        (
            CardField::CardNumber,
            card_number_format,
            Storage::Persistent,
        ),
        (
            CardField::CardExpMonth,
            AliasFormat::Uuid,
            Storage::Persistent,
        ),
        (
            CardField::CardExpYear,
            AliasFormat::Uuid,
            Storage::Persistent,
        ),
        (
            CardField::CardHolderName,
            AliasFormat::Uuid,
            Storage::Persistent,
        ),
        (CardField::CardCvc, AliasFormat::Uuid, Storage::Volatile),
    ];
    let mut fields = FieldAliases::new();
    for (field, format, storage) in layout {
        let required = matches!(
            field,
            CardField::CardNumber | CardField::CardExpMonth | CardField::CardExpYear
        );
        let value = match form.get(field.as_str()) {
            None | Some(serde_json::Value::Null) if !required => continue,
            None | Some(serde_json::Value::Null) => {
                return Err(invalid(format!(
                    "the collected form has no {field}: the checkout form must send it"
                )));
            }
            Some(value) => value,
        };
        let not_redacted = || {
            invalid(format!(
                "{field} in the collected form is not an alias: give the inbound route a REDACT filter for $.{field} ({} {})",
                storage.as_str(),
                format.as_str()
            ))
        };
        let text = value.as_str().ok_or_else(not_redacted)?;
        if !looks_like_an_alias(format, text) {
            return Err(not_redacted());
        }
        let alias = Alias::new(text).map_err(|_| not_redacted())?;
        fields.insert(field, FieldAlias::new(alias, format, storage));
    }
    Ok(ConnectorVaultId::Multi(fields))
}

/// Whether `text` has the shape of an alias in `format`. A value the route did not
/// redact fails this for every format an alias can be told from a value by: UUID
/// (`tok_…`), the alphanumeric card formats (they hold letters, or fail Luhn), RAW_UUID,
/// GENERIC_T_FOUR, VGS_FIXED_LEN_GENERIC. The length-preserving numeric formats
/// (FPE_SIX_T_FOUR, the default, FPE_T_FOUR, PFPT, NUM_LENGTH_PRESERVING, …) are
/// Luhn-valid digits like the card itself: there nothing can tell, and `true`.
fn looks_like_an_alias(format: AliasFormat, text: &str) -> bool {
    match format {
        AliasFormat::Uuid | AliasFormat::GenericTFour => text.starts_with("tok_"),
        AliasFormat::VgsFixedLenGeneric => text.starts_with("vgs"),
        AliasFormat::RawUuid => {
            text.len() == 36
                && text
                    .char_indices()
                    .all(|(i, c)| matches!(i, 8 | 13 | 18 | 23) == (c == '-'))
        }
        AliasFormat::AlphanumericSixTFour | AliasFormat::FpeAlphanumericAccNumTFour => {
            text.bytes().any(|b| b.is_ascii_alphabetic())
        }
        AliasFormat::NonLuhnFpeAlphanumeric => {
            text.bytes().any(|b| b.is_ascii_alphabetic()) || !vault_core::luhn_valid(text)
        }
        _ => true,
    }
}

#[cfg(test)]
mod tests {
    use vault_core::ReportExt;

    use super::*;

    #[test]
    fn a_redacted_form_becomes_the_connectors_layout_and_a_value_left_in_is_refused() {
        let form = br#"{"card_number": "411111DgKyX41111", "card_exp_month": "tok_sandbox_a", "card_exp_year": "tok_sandbox_b", "card_cvc": "tok_sandbox_c", "amount": 5}"#;
        let id = card_id_from_collected(form, AliasFormat::AlphanumericSixTFour).expect("id");
        let ConnectorVaultId::Multi(fields) = id else {
            panic!("per field");
        };
        assert_eq!(fields.len(), 4, "no holder name, `amount` ignored");
        assert_eq!(
            fields[&CardField::CardNumber].format,
            AliasFormat::AlphanumericSixTFour
        );
        assert_eq!(fields[&CardField::CardCvc].storage, Storage::Volatile);
        assert_eq!(fields[&CardField::CardExpYear].storage, Storage::Persistent);

        let left_in = br#"{"card_number": "411111DgKyX41111", "card_exp_month": "tok_a", "card_exp_year": "tok_b", "card_cvc": "737"}"#;
        let err = card_id_from_collected(left_in, AliasFormat::FpeSixTFour).expect_err("cvc");
        assert_eq!(err.kind(), VaultError::InvalidRequest);
        let text = err.summary();
        assert!(
            text.contains("card_cvc") && text.contains("REDACT"),
            "{text}"
        );
        assert!(!text.contains("737"), "the value is never quoted: {text}");

        // A card number left in clear, with a format that tells: refused by name.
        let pan_left = br#"{"card_number": "4111111111111111", "card_exp_month": "tok_a", "card_exp_year": "tok_b"}"#;
        let err = card_id_from_collected(pan_left, AliasFormat::AlphanumericSixTFour)
            .expect_err("not redacted");
        assert!(err.summary().contains("card_number"), "{}", err.summary());
        assert!(!err.summary().contains("4111111111111111"));
        assert!(looks_like_an_alias(
            AliasFormat::RawUuid,
            "0f8b6a2c-1d3e-4f5a-9b7c-2e1d0c9b8a7f"
        ));
        assert!(!looks_like_an_alias(
            AliasFormat::RawUuid,
            "4111111111111111"
        ));
        assert!(!looks_like_an_alias(
            AliasFormat::NonLuhnFpeAlphanumeric,
            "4111111111111111"
        ));

        for (bad, names) in [
            (
                &br#"{"card_exp_month": "tok_a", "card_exp_year": "tok_b"}"#[..],
                "card_number",
            ),
            (
                br#"{"card_number": 4111, "card_exp_month": "tok_a", "card_exp_year": "tok_b"}"#,
                "card_number",
            ),
            (br#"[1]"#, "JSON object"),
            (br#"{"#, "not JSON"),
        ] {
            let err = card_id_from_collected(bad, AliasFormat::FpeSixTFour).expect_err(names);
            assert!(err.summary().contains(names), "{}", err.summary());
        }
    }
}
