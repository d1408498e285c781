//! Applying a route's filters to a body: REDACT stores each selected value in the
//! vault and puts its alias in its place; REVEAL puts the stored value in place of
//! each selected alias (an alias the vault cannot reveal is left as it is). Logs say
//! how many values, never which.

use std::borrow::Cow;
use std::sync::Mutex;
use std::time::SystemTime;

use bytes::Bytes;
use serde_json::Value;

use crate::lock;
use crate::routes::{Facts, Filter, Operation, Phase, Transformer};
use crate::store::{CreateItem, VaultStore};

/// What the filters did to one body.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Counts {
    pub(crate) redacted: u64,
    pub(crate) revealed: u64,
    /// Aliases a REVEAL filter selected that the vault does not hold (left as is).
    pub(crate) unrevealed: u64,
}

/// Runs the filters of `phase` whose condition holds over `body`; the new body, or why
/// a value could not be redacted (the request must then not go on with the value).
pub(crate) fn apply(
    filters: &[Filter],
    phase: Phase,
    facts: &Facts<'_>,
    body: Bytes,
    store: &Mutex<VaultStore>,
    now: SystemTime,
) -> Result<(Bytes, Counts), String> {
    let mut counts = Counts::default();
    let mut body = body;
    for filter in filters.iter().filter(|f| f.phase == phase) {
        if !filter.condition.as_ref().is_none_or(|c| c.holds(facts)) {
            continue;
        }
        let mut one = |value: &str| transform(filter, value, store, now, &mut counts);
        body = match &filter.transformer {
            Transformer::JsonPath(paths) => {
                let Ok(mut doc) = serde_json::from_slice::<Value>(&body) else {
                    // Not JSON: a JSON path selects nothing in it.
                    continue;
                };
                let mut failure = None;
                let mut changed = false;
                for path in paths {
                    path.for_each_mut(&mut doc, &mut |node| {
                        let text = match node {
                            Value::String(text) => Cow::Owned(std::mem::take(text)),
                            Value::Number(n) => Cow::Owned(n.to_string()),
                            _ => return,
                        };
                        match one(&text) {
                            Ok(Some(new)) => {
                                *node = Value::String(new);
                                changed = true;
                            }
                            Ok(None) => {
                                if let Value::String(slot) = node {
                                    *slot = text.into_owned();
                                }
                            }
                            Err(why) => {
                                if let Value::String(slot) = node {
                                    *slot = text.into_owned();
                                }
                                failure.get_or_insert(why);
                            }
                        }
                    });
                }
                if let Some(why) = failure {
                    return Err(why);
                }
                if !changed {
                    continue;
                }
                Bytes::from(serde_json::to_vec(&doc).expect("JSON values serialise"))
            }
            Transformer::FormField(names) => {
                let Ok(text) = std::str::from_utf8(&body) else {
                    continue;
                };
                let mut pairs: Vec<(String, String)> = form_urlencoded::parse(text.as_bytes())
                    .map(|(k, v)| (k.into_owned(), v.into_owned()))
                    .collect();
                let mut changed = false;
                for (key, value) in &mut pairs {
                    if names.iter().any(|n| n == key) {
                        if let Some(new) = one(value)? {
                            *value = new;
                            changed = true;
                        }
                    }
                }
                if !changed {
                    continue;
                }
                let mut out = form_urlencoded::Serializer::new(String::new());
                for (key, value) in &pairs {
                    out.append_pair(key, value);
                }
                Bytes::from(out.finish())
            }
            Transformer::Regex(patterns) => {
                let Ok(text) = std::str::from_utf8(&body) else {
                    continue;
                };
                let mut text = text.to_owned();
                for pattern in patterns {
                    let mut failure = None;
                    let replaced = pattern.replace_all(&text, |caps: &regex::Captures<'_>| {
                        let whole = caps.get(0).expect("a match has group 0");
                        let part = caps.get(1).unwrap_or(whole);
                        let new = match one(part.as_str()) {
                            Ok(new) => new.unwrap_or_else(|| part.as_str().to_owned()),
                            Err(why) => {
                                failure.get_or_insert(why);
                                part.as_str().to_owned()
                            }
                        };
                        let start = part.start() - whole.start();
                        let end = part.end() - whole.start();
                        let whole = whole.as_str();
                        format!("{}{new}{}", &whole[..start], &whole[end..])
                    });
                    if let Some(why) = failure {
                        return Err(why);
                    }
                    text = replaced.into_owned();
                }
                Bytes::from(text)
            }
        };
    }
    Ok((body, counts))
}

/// One selected value through one filter: `Some(new)` to put in its place.
fn transform(
    filter: &Filter,
    value: &str,
    store: &Mutex<VaultStore>,
    now: SystemTime,
    counts: &mut Counts,
) -> Result<Option<String>, String> {
    match filter.operation {
        // Nothing to protect in an empty value (an optional field left blank).
        Operation::Redact if value.is_empty() => Ok(None),
        Operation::Redact => {
            let item = CreateItem::New {
                value: value.to_owned(),
                classifiers: vec!["proxy".to_owned()],
                format: filter.format,
                storage: filter.storage,
            };
            let stored = lock(store).create(vec![item], now).map_err(|e| match e {
                crate::store::StoreError::Invalid(detail)
                | crate::store::StoreError::NotFound(detail) => {
                    format!(
                        "a value could not be redacted as {}: {}",
                        filter.format.as_str(),
                        detail.trim_start_matches("data[0]: ")
                    )
                }
            })?;
            counts.redacted += 1;
            Ok(stored
                .first()
                .and_then(|d| d.aliases.first())
                .map(|a| a.alias.clone()))
        }
        Operation::Reveal => match lock(store).reveal(value, filter.storage, now) {
            Some(record) => {
                counts.revealed += 1;
                Ok(Some(record.value))
            }
            None => {
                counts.unrevealed += 1;
                Ok(None)
            }
        },
    }
}
