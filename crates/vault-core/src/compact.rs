//! The compact, versioned string form of a [`ConnectorVaultId`], for orchestrators
//! that keep one `connector_vault_id` text column per payment method (as Hyperswitch
//! does).
//!
//! ```text
//! id      = "vl1;" ( single / multi )
//! single  = "s;" alias [ ";c=" alias [ "," expiry ] ]
//! multi   = "m" 1*( ";" field "=" alias "," storage "," format [ "," expiry ] )
//! field   = "n" / "m" / "y" / "c" / "h"          ; card number, expiry month and
//!                                                 ; year, CVC, holder name
//!         / "t" / "tm" / "ty" / "tc"             ; network token, its expiry month
//!                                                 ; and year, cryptogram
//! storage = "P" / "V"                             ; PERSISTENT / VOLATILE
//! format  = a VGS alias format name               ; UUID, FPE_SIX_T_FOUR, ...
//! expiry  = [ "<" ] 1*12DIGIT                     ; when a volatile value goes, in
//!                                                 ; Unix seconds ("<": at the latest)
//! ```
//!
//! For example `vl1;m;n=4111119970481111,P,FPE_SIX_T_FOUR;m=tok_sandbox_…,P,UUID;
//! y=tok_sandbox_…,P,UUID;c=tok_sandbox_…,V,UUID,1796596382` (one line). Aliases
//! never contain `;`, `,` or `=`, so the form needs no escaping; fields are written
//! in a fixed order, so equal ids give equal strings. Parsing validates every part
//! (aliases, formats, no field twice) and never quotes the input in its errors: a card
//! number pasted in the wrong place is not echoed. Expiries are whole seconds (as in
//! the JSON form); a single id's CVC expiry is written only with its CVC. The `vl1`
//! prefix versions the form: a later vaultlink reads `vl1` forever.

use std::fmt;
use std::str::FromStr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::flow::{CardField, ConnectorVaultId, FieldAlias, FieldAliases};
use crate::validation::ValidationError;
use crate::vault::{Alias, AliasFormat, Storage};

const PREFIX: &str = "vl1;";

impl CardField {
    /// The field's code in the compact id string.
    const fn code(&self) -> &'static str {
        match self {
            CardField::CardNumber => "n",
            CardField::CardExpMonth => "m",
            CardField::CardExpYear => "y",
            CardField::CardCvc => "c",
            CardField::CardHolderName => "h",
            CardField::NetworkToken => "t",
            CardField::NetworkTokenExpMonth => "tm",
            CardField::NetworkTokenExpYear => "ty",
            CardField::NetworkTokenCryptogram => "tc",
        }
    }

    fn from_code(code: &str) -> Option<CardField> {
        CardField::EVERY.iter().copied().find(|f| f.code() == code)
    }
}

fn write_expiry(f: &mut fmt::Formatter<'_>, at: SystemTime, exact: bool) -> fmt::Result {
    let secs = at.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let bound = if exact { "" } else { "<" };
    write!(f, ",{bound}{secs}")
}

impl fmt::Display for ConnectorVaultId {
    /// The compact string form (see the [module docs](crate::compact)).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(PREFIX)?;
        match self {
            ConnectorVaultId::Single {
                id,
                cvc,
                cvc_expires_at,
            } => {
                write!(f, "s;{id}")?;
                if let Some(cvc) = cvc {
                    write!(f, ";c={cvc}")?;
                    if let Some(at) = cvc_expires_at {
                        // A single id's CVC expiry is always an upper bound.
                        write_expiry(f, *at, false)?;
                    }
                }
                Ok(())
            }
            ConnectorVaultId::Multi(fields) => {
                f.write_str("m")?;
                for (field, alias) in fields {
                    let storage = match alias.storage {
                        Storage::Persistent => "P",
                        Storage::Volatile => "V",
                    };
                    write!(
                        f,
                        ";{}={},{storage},{}",
                        field.code(),
                        alias.alias,
                        alias.format
                    )?;
                    if let Some(at) = alias.expires_at {
                        write_expiry(f, at, alias.expiry_exact)?;
                    }
                }
                Ok(())
            }
        }
    }
}

fn invalid(reason: impl Into<String>) -> ValidationError {
    ValidationError::VaultIdString(reason.into())
}

fn alias(text: &str, what: &str) -> Result<Alias, ValidationError> {
    Alias::new(text).map_err(|_| {
        invalid(format!(
            "the {what} is not an alias (1 to 128 letters, digits and - _ . :)"
        ))
    })
}

/// `[<]digits` -> (time, exact).
fn expiry(text: &str, what: &str) -> Result<(SystemTime, bool), ValidationError> {
    let (exact, digits) = match text.strip_prefix('<') {
        Some(rest) => (false, rest),
        None => (true, text),
    };
    let secs: u64 = digits
        .bytes()
        .all(|b| b.is_ascii_digit())
        .then(|| digits.parse().ok())
        .flatten()
        .filter(|_| (1..=12).contains(&digits.len()))
        .ok_or_else(|| {
            invalid(format!(
                "the expiry of the {what} is not Unix seconds (up to 12 digits, `<` first for \"at the latest\")"
            ))
        })?;
    Ok((UNIX_EPOCH + Duration::from_secs(secs), exact))
}

impl FromStr for ConnectorVaultId {
    type Err = ValidationError;

    /// Reads the compact string form, validating every part.
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let body = text.strip_prefix(PREFIX).ok_or_else(|| {
            let version = text
                .strip_prefix("vl")
                .and_then(|rest| rest.split_once(';'))
                .and_then(|(digits, _)| digits.parse::<u32>().ok());
            if version.is_some_and(|v| v > 1) {
                invalid("it is a later version of the form than this vaultlink reads (vl1); upgrade vaultlink")
            } else {
                invalid("it does not start with `vl1;` (write ids with ConnectorVaultId's Display, or keep the JSON form)")
            }
        })?;
        let mut parts = body.split(';');
        match parts.next() {
            Some("s") => {
                let id = parts
                    .next()
                    .ok_or_else(|| invalid("a single id needs its record's alias after `s;`"))?;
                let id = alias(id, "record id")?;
                let (cvc, cvc_expires_at) = match parts.next() {
                    None => (None, None),
                    Some(entry) => {
                        let rest = entry.strip_prefix("c=").ok_or_else(|| {
                            invalid("after a single id's record only `c=` (its CVC) may follow")
                        })?;
                        let mut items = rest.split(',');
                        let cvc = alias(items.next().unwrap_or_default(), "CVC alias")?;
                        let at = items
                            .next()
                            .map(|t| expiry(t, "CVC"))
                            .transpose()?
                            .map(|(at, _)| at);
                        if items.next().is_some() {
                            return Err(invalid(
                                "the CVC entry has more than an alias and an expiry",
                            ));
                        }
                        (Some(cvc), at)
                    }
                };
                if parts.next().is_some() {
                    return Err(invalid("a single id has a record and at most a CVC"));
                }
                Ok(ConnectorVaultId::Single {
                    id,
                    cvc,
                    cvc_expires_at,
                })
            }
            Some("m") => {
                let mut fields = FieldAliases::new();
                for (index, entry) in parts.enumerate() {
                    let number = index + 1;
                    let (code, rest) = entry.split_once('=').ok_or_else(|| {
                        invalid(format!(
                            "entry {number} is not `field=alias,storage,format`"
                        ))
                    })?;
                    let field = CardField::from_code(code).ok_or_else(|| {
                        invalid(format!(
                            "entry {number} names no field (n m y c h t tm ty tc)"
                        ))
                    })?;
                    let mut items = rest.split(',');
                    let what = field.as_str();
                    let value = alias(items.next().unwrap_or_default(), &format!("{what} alias"))?;
                    let storage = match items.next() {
                        Some("P") => Storage::Persistent,
                        Some("V") => Storage::Volatile,
                        _ => {
                            return Err(invalid(format!(
                                "the storage of {what} is not P (persistent) or V (volatile)"
                            )));
                        }
                    };
                    let format: AliasFormat =
                        items.next().unwrap_or_default().parse().map_err(|_| {
                            invalid(format!("the format of {what} is not a VGS alias format"))
                        })?;
                    let mut stored = FieldAlias::new(value, format, storage);
                    if let Some(text) = items.next() {
                        let (at, exact) = expiry(text, what)?;
                        stored = stored.expiring_at(at, exact);
                    }
                    if items.next().is_some() {
                        return Err(invalid(format!(
                            "the entry of {what} has more than four parts"
                        )));
                    }
                    if fields.insert(field, stored).is_some() {
                        return Err(invalid(format!("{what} appears twice")));
                    }
                }
                if fields.is_empty() {
                    return Err(invalid("a per-field id needs at least one field after `m`"));
                }
                Ok(ConnectorVaultId::Multi(fields))
            }
            _ => Err(invalid(
                "after `vl1;` comes `s` (one record) or `m` (per field)",
            )),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn multi() -> ConnectorVaultId {
        let mut fields = FieldAliases::new();
        fields.insert(
            CardField::CardNumber,
            FieldAlias::new(
                Alias::new("4111119970481111").unwrap(),
                AliasFormat::FpeSixTFour,
                Storage::Persistent,
            ),
        );
        fields.insert(
            CardField::CardCvc,
            FieldAlias::new(
                Alias::new("tok_sandbox_X26NGsT6XPF8emqZH4qWU7").unwrap(),
                AliasFormat::Uuid,
                Storage::Volatile,
            )
            .expiring_at(UNIX_EPOCH + Duration::from_secs(1_796_596_382), false),
        );
        ConnectorVaultId::Multi(fields)
    }

    #[test]
    fn the_form_is_as_documented_and_reads_back() {
        let id = multi();
        let text = id.to_string();
        assert_eq!(
            text,
            "vl1;m;n=4111119970481111,P,FPE_SIX_T_FOUR;c=tok_sandbox_X26NGsT6XPF8emqZH4qWU7,V,UUID,<1796596382"
        );
        assert_eq!(text.parse::<ConnectorVaultId>(), Ok(id));
        let single = ConnectorVaultId::Single {
            id: Alias::new("tok_sandbox_abc").unwrap(),
            cvc: Some(Alias::new("tok_sandbox_cvc").unwrap()),
            cvc_expires_at: Some(UNIX_EPOCH + Duration::from_secs(1_700_000_000)),
        };
        assert_eq!(
            single.to_string(),
            "vl1;s;tok_sandbox_abc;c=tok_sandbox_cvc,<1700000000"
        );
        assert_eq!(single.to_string().parse::<ConnectorVaultId>(), Ok(single));
    }

    #[test]
    fn bad_strings_say_what_is_wrong_without_quoting_them() {
        let pan = "4111111111111111";
        for (text, says) in [
            (pan, "does not start with `vl1;`"),
            ("vl2;m;n=a,P,UUID", "later version"),
            ("vl1m;n=a,P,UUID", "does not start with `vl1;`"),
            ("vl0;m;n=a,P,UUID", "does not start with `vl1;`"),
            ("vl1;m;c=a,V,UUID,1234567890123", "expiry of the card_cvc"),
            ("vl1;x", "`s` (one record) or `m`"),
            ("vl1;m", "at least one field"),
            ("vl1;m;q=a,P,UUID", "entry 1 names no field"),
            ("vl1;m;n=a,P,UUID;n=b,P,UUID", "card_number appears twice"),
            ("vl1;m;n=a,X,UUID", "storage of card_number"),
            ("vl1;m;n=a,P,NOPE", "format of card_number"),
            ("vl1;m;c=a,V,UUID,soon", "expiry of the card_cvc"),
            (
                "vl1;m;n=4111 1111 1111 1111,P,UUID",
                "card_number alias is not an alias",
            ),
            ("vl1;s;a;x=b", "only `c=`"),
            ("vl1;s", "record's alias"),
        ] {
            let err = text.parse::<ConnectorVaultId>().expect_err(text);
            let message = err.to_string();
            assert!(message.contains(says), "{text}: {message}");
            assert!(!message.contains("4111"), "{text}: {message}");
            assert_eq!(err.kind(), crate::VaultError::InvalidRequest);
        }
    }

    fn alias_text() -> impl Strategy<Value = String> {
        "[A-Za-z0-9_.:-]{1,40}"
    }

    proptest! {
        #[test]
        fn every_id_round_trips(
            entries in proptest::collection::btree_map(
                0..CardField::EVERY.len(),
                (alias_text(), 0..AliasFormat::ALL.len(), any::<bool>(), proptest::option::of((0u64..4_000_000_000, any::<bool>()))),
                1..9,
            ),
            single in proptest::option::of((alias_text(), proptest::option::of((alias_text(), proptest::option::of(0u64..4_000_000_000))))),
        ) {
            let id = match single {
                Some((id, cvc)) => ConnectorVaultId::Single {
                    id: Alias::new(&id).unwrap(),
                    cvc_expires_at: cvc.as_ref().and_then(|(_, at)| *at).map(|s| UNIX_EPOCH + Duration::from_secs(s)),
                    cvc: cvc.map(|(a, _)| Alias::new(&a).unwrap()),
                },
                None => ConnectorVaultId::Multi(entries.into_iter().map(|(field, (alias, format, volatile, expiry))| {
                    let storage = if volatile { Storage::Volatile } else { Storage::Persistent };
                    let mut stored = FieldAlias::new(Alias::new(&alias).unwrap(), AliasFormat::ALL[format], storage);
                    if let Some((secs, exact)) = expiry {
                        stored = stored.expiring_at(UNIX_EPOCH + Duration::from_secs(secs), exact);
                    }
                    (CardField::EVERY[field], stored)
                }).collect()),
            };
            let text = id.to_string();
            prop_assert_eq!(text.parse::<ConnectorVaultId>(), Ok(id));
        }

        #[test]
        fn any_text_is_refused_or_read_to_an_id_that_round_trips(text in "vl1;[ms];[ -~]{0,80}") {
            if let Ok(id) = text.parse::<ConnectorVaultId>() {
                prop_assert_eq!(id.to_string().parse::<ConnectorVaultId>(), Ok(id));
            }
        }
    }
}
