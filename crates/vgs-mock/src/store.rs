//! One vault's records and the alias operations shared by API v1 and v2: create
//! (with fingerprinting), reveal, update classifiers, delete, VOLATILE expiry.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};

use crate::clock::rfc3339;
use crate::formats::{self, AliasFormat, FormatError};

/// How long a VOLATILE record lives (the spec: "in-memory data store for one hour").
pub const VOLATILE_TTL: Duration = Duration::from_secs(3600);
/// How many candidate aliases to try before giving up on a unique one.
const MAX_ALIAS_ATTEMPTS: usize = 64;
/// How often (by the mock's clock) expired VOLATILE records are swept away.
const SWEEP_EVERY: Duration = Duration::from_secs(60);

/// Where a record lives: the spec's `storage` enum.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Storage {
    /// Kept until deleted (the default).
    #[default]
    Persistent,
    /// Kept in memory for one hour ([`VOLATILE_TTL`]).
    Volatile,
}

impl Storage {
    /// The spec's spelling, `PERSISTENT` or `VOLATILE`.
    pub fn as_str(self) -> &'static str {
        match self {
            Storage::Persistent => "PERSISTENT",
            Storage::Volatile => "VOLATILE",
        }
    }

    /// Parses the spec's spelling (exactly).
    pub fn parse(text: &str) -> Option<Storage> {
        match text {
            "PERSISTENT" => Some(Storage::Persistent),
            "VOLATILE" => Some(Storage::Volatile),
            _ => None,
        }
    }
}

/// A stored record as seen from Rust (for tests asserting what the mock holds).
/// `Debug` hides the value.
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct RecordView {
    /// The stored value.
    pub value: String,
    /// Where it is stored.
    pub storage: Storage,
    /// The format of the alias the view was looked up by.
    pub format: AliasFormat,
    /// Every alias of the record, in creation order.
    pub aliases: Vec<(String, AliasFormat)>,
    /// Its classifiers.
    pub classifiers: Vec<String>,
    /// When it was created (by the mock's clock).
    pub created_at: SystemTime,
}

impl fmt::Debug for RecordView {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RecordView")
            .field("value", &"[redacted]")
            .field("storage", &self.storage)
            .field("format", &self.format)
            .field("aliases", &self.aliases)
            .field("classifiers", &self.classifiers)
            .field("created_at", &rfc3339(self.created_at))
            .finish()
    }
}

/// The spec's `RevealedData`, as sent on the wire.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct RevealedData {
    pub(crate) value: String,
    pub(crate) classifiers: Vec<String>,
    pub(crate) aliases: Vec<AliasDto>,
    pub(crate) created_at: String,
    pub(crate) storage: Storage,
}

/// The spec's `AliasDto`.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct AliasDto {
    pub(crate) alias: String,
    pub(crate) format: AliasFormat,
}

/// One item of a create request, already validated for shape.
#[derive(Debug, Clone)]
pub(crate) enum CreateItem {
    /// Store `value` (or find it by fingerprint) and return its alias in `format`.
    New {
        value: String,
        classifiers: Vec<String>,
        format: AliasFormat,
        storage: Storage,
    },
    /// Give the data behind an existing alias an alias in `format`.
    Reference {
        alias: String,
        format: AliasFormat,
        storage: Storage,
    },
}

/// Why an alias operation failed; each maps to one HTTP status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum StoreError {
    /// 400 with this detail (never containing a stored value).
    Invalid(String),
    /// 404 with this detail.
    NotFound(String),
}

impl From<FormatError> for StoreError {
    fn from(FormatError(detail): FormatError) -> Self {
        StoreError::Invalid(detail)
    }
}

struct Record {
    value: Arc<str>,
    classifiers: Vec<String>,
    aliases: Vec<(String, AliasFormat)>,
    created_at: SystemTime,
    storage: Storage,
}

impl Record {
    fn expired(&self, now: SystemTime) -> bool {
        self.storage == Storage::Volatile && now >= self.created_at + VOLATILE_TTL
    }

    /// The wire shape; the alias `first` (the one the caller asked for) leads the list.
    fn revealed(&self, first: Option<&str>) -> RevealedData {
        let mut aliases: Vec<AliasDto> = self
            .aliases
            .iter()
            .map(|(alias, format)| AliasDto {
                alias: alias.clone(),
                format: *format,
            })
            .collect();
        if let Some(at) = first.and_then(|first| aliases.iter().position(|a| a.alias == first)) {
            let lead = aliases.remove(at);
            aliases.insert(0, lead);
        }
        RevealedData {
            value: self.value.to_string(),
            classifiers: self.classifiers.clone(),
            aliases,
            created_at: rfc3339(self.created_at),
            storage: self.storage,
        }
    }

    fn alias_in(&self, format: AliasFormat) -> Option<&str> {
        self.aliases
            .iter()
            .find(|(_, f)| *f == format)
            .map(|(alias, _)| alias.as_str())
    }
}

/// The records of one vault. Aliases are unique across both storages of a vault.
pub(crate) struct VaultStore {
    /// The vault's fingerprinting setting: on, the same value (and storage) is one
    /// record, and the same value and format one alias; off, every create makes a new
    /// record and alias.
    fingerprinting: bool,
    next_id: u64,
    records: HashMap<u64, Record>,
    by_alias: HashMap<String, u64>,
    /// Fingerprints: (storage, value) -> record. Same value + storage = same record,
    /// so the same value + format always gets the same alias.
    fingerprints: HashMap<(Storage, Arc<str>), u64>,
    next_sweep: Option<SystemTime>,
}

impl Default for VaultStore {
    fn default() -> Self {
        VaultStore::new(true)
    }
}

impl VaultStore {
    /// An empty store with fingerprinting on or off.
    pub(crate) fn new(fingerprinting: bool) -> Self {
        VaultStore {
            fingerprinting,
            next_id: 0,
            records: HashMap::new(),
            by_alias: HashMap::new(),
            fingerprints: HashMap::new(),
            next_sweep: None,
        }
    }

    /// Drops everything (the fingerprinting setting stays).
    pub(crate) fn clear(&mut self) {
        *self = VaultStore::new(self.fingerprinting);
    }

    /// Stores the items (all or none) and returns one `RevealedData` per item, in order.
    pub(crate) fn create(
        &mut self,
        items: Vec<CreateItem>,
        now: SystemTime,
    ) -> Result<Vec<RevealedData>, StoreError> {
        self.sweep(now, false);
        self.validate(&items, now)?;
        let mut out = Vec::with_capacity(items.len());
        for item in items {
            let (id, alias) = match item {
                CreateItem::New {
                    value,
                    classifiers,
                    format,
                    storage,
                } => self.store_value(value, classifiers, format, storage, now)?,
                CreateItem::Reference {
                    alias,
                    format,
                    storage,
                } => {
                    let id = self
                        .live_id(&alias, storage, now)
                        .expect("validate() checked the reference");
                    let alias = self.alias_for(id, format)?;
                    (id, alias)
                }
            };
            let record = self.records.get(&id).expect("just stored");
            out.push(record.revealed(Some(&alias)));
        }
        Ok(out)
    }

    /// Everything that can fail for a reason of the request, checked before any write.
    fn validate(&self, items: &[CreateItem], now: SystemTime) -> Result<(), StoreError> {
        let mut referenced = HashSet::new();
        for (i, item) in items.iter().enumerate() {
            match item {
                CreateItem::New { value, format, .. } => {
                    formats::check(*format, value).map_err(|FormatError(detail)| {
                        StoreError::Invalid(format!("data[{i}]: {detail}"))
                    })?
                }
                CreateItem::Reference {
                    alias,
                    format,
                    storage,
                } => {
                    if !referenced.insert(alias.as_str()) {
                        return Err(StoreError::Invalid(format!(
                            "data[{i}]: the same alias is referenced more than once"
                        )));
                    }
                    let id = self.live_id(alias, *storage, now).ok_or_else(|| {
                        StoreError::NotFound(format!(
                            "data[{i}]: the referenced alias was not found in {} storage",
                            storage.as_str()
                        ))
                    })?;
                    let record = &self.records[&id];
                    formats::check(*format, &record.value).map_err(|FormatError(detail)| {
                        StoreError::Invalid(format!("data[{i}]: {detail}"))
                    })?;
                }
            }
        }
        Ok(())
    }

    fn store_value(
        &mut self,
        value: String,
        classifiers: Vec<String>,
        format: AliasFormat,
        storage: Storage,
        now: SystemTime,
    ) -> Result<(u64, String), StoreError> {
        let value: Arc<str> = value.into();
        let key = (storage, Arc::clone(&value));
        let known = match self.fingerprinting {
            true => self.fingerprints.get(&key).copied(),
            false => None,
        };
        if let Some(id) = known {
            if self.records[&id].expired(now) {
                self.remove_record(id);
            } else {
                let record = self
                    .records
                    .get_mut(&id)
                    .expect("fingerprint points at a record");
                for classifier in classifiers {
                    if !record.classifiers.contains(&classifier) {
                        record.classifiers.push(classifier);
                    }
                }
                let alias = self.alias_for(id, format)?;
                return Ok((id, alias));
            }
        }
        let id = self.next_id;
        self.next_id += 1;
        let mut unique = Vec::with_capacity(classifiers.len());
        for classifier in classifiers {
            if !unique.contains(&classifier) {
                unique.push(classifier);
            }
        }
        self.records.insert(
            id,
            Record {
                value,
                classifiers: unique,
                aliases: Vec::new(),
                created_at: now,
                storage,
            },
        );
        if self.fingerprinting {
            self.fingerprints.insert(key, id);
        }
        match self.alias_for(id, format) {
            Ok(alias) => Ok((id, alias)),
            Err(error) => {
                self.remove_record(id);
                Err(error)
            }
        }
    }

    /// The record's alias in `format`, made (unique, never equal to the value) if missing.
    fn alias_for(&mut self, id: u64, format: AliasFormat) -> Result<String, StoreError> {
        let record = self.records.get(&id).expect("caller holds a live id");
        if let Some(alias) = record.alias_in(format) {
            return Ok(alias.to_owned());
        }
        let value = Arc::clone(&record.value);
        let mut rng = rand::rng();
        for _ in 0..MAX_ALIAS_ATTEMPTS {
            let alias = formats::generate(format, &value, &mut rng)?;
            if *alias != *value && !self.by_alias.contains_key(&alias) {
                self.by_alias.insert(alias.clone(), id);
                let record = self.records.get_mut(&id).expect("caller holds a live id");
                record.aliases.push((alias.clone(), format));
                return Ok(alias);
            }
        }
        Err(StoreError::Invalid(format!(
            "no unique {format} alias is left for this value; use a longer value or another format"
        )))
    }

    /// The record behind `alias` if it is in `storage` and not expired.
    fn live_id(&self, alias: &str, storage: Storage, now: SystemTime) -> Option<u64> {
        let id = *self.by_alias.get(alias)?;
        let record = &self.records[&id];
        (record.storage == storage && !record.expired(now)).then_some(id)
    }

    /// Reveals one alias.
    pub(crate) fn reveal(
        &mut self,
        alias: &str,
        storage: Storage,
        now: SystemTime,
    ) -> Option<RevealedData> {
        self.sweep(now, false);
        let id = self.live_id(alias, storage, now)?;
        Some(self.records[&id].revealed(Some(alias)))
    }

    /// Reveals several aliases; all must exist, else the count of missing ones.
    pub(crate) fn reveal_many(
        &mut self,
        aliases: &[String],
        storage: Storage,
        now: SystemTime,
    ) -> Result<Vec<(String, RevealedData)>, usize> {
        self.sweep(now, false);
        let mut found = Vec::with_capacity(aliases.len());
        let mut missing = 0;
        for alias in aliases {
            match self.live_id(alias, storage, now) {
                Some(id) => found.push((alias.clone(), self.records[&id].revealed(Some(alias)))),
                None => missing += 1,
            }
        }
        if missing == 0 {
            Ok(found)
        } else {
            Err(missing)
        }
    }

    /// Replaces the classifiers of the record behind `alias`; false if not found.
    pub(crate) fn update(
        &mut self,
        alias: &str,
        storage: Storage,
        classifiers: Vec<String>,
        now: SystemTime,
    ) -> bool {
        self.sweep(now, false);
        let Some(id) = self.live_id(alias, storage, now) else {
            return false;
        };
        let record = self.records.get_mut(&id).expect("live id");
        record.classifiers.clear();
        for classifier in classifiers {
            if !record.classifiers.contains(&classifier) {
                record.classifiers.push(classifier);
            }
        }
        true
    }

    /// Removes one alias (the record goes with its last alias); false if not found.
    pub(crate) fn delete(&mut self, alias: &str, storage: Storage, now: SystemTime) -> bool {
        self.sweep(now, false);
        let Some(id) = self.live_id(alias, storage, now) else {
            return false;
        };
        self.remove_alias(id, alias);
        true
    }

    /// Removes several aliases, all or none; else the count of missing ones.
    pub(crate) fn delete_many(
        &mut self,
        aliases: &[String],
        storage: Storage,
        now: SystemTime,
    ) -> Result<(), usize> {
        self.sweep(now, false);
        let missing = aliases
            .iter()
            .filter(|alias| self.live_id(alias, storage, now).is_none())
            .count();
        if missing > 0 {
            return Err(missing);
        }
        for alias in aliases {
            // A repeated alias is gone after its first mention.
            if let Some(&id) = self.by_alias.get(alias.as_str()) {
                self.remove_alias(id, alias);
            }
        }
        Ok(())
    }

    /// The record behind `alias` in either storage, for Rust-side inspection.
    pub(crate) fn view(&self, alias: &str, now: SystemTime) -> Option<RecordView> {
        let id = *self.by_alias.get(alias)?;
        let record = &self.records[&id];
        if record.expired(now) {
            return None;
        }
        Some(RecordView {
            value: record.value.to_string(),
            storage: record.storage,
            format: record
                .aliases
                .iter()
                .find(|(a, _)| a == alias)
                .map(|(_, format)| *format)
                .expect("by_alias and the record agree"),
            aliases: record.aliases.clone(),
            classifiers: record.classifiers.clone(),
            created_at: record.created_at,
        })
    }

    /// (records, aliases) alive now; sweeps expired VOLATILE records first.
    pub(crate) fn counts(&mut self, now: SystemTime) -> (usize, usize) {
        self.sweep(now, true);
        (self.records.len(), self.by_alias.len())
    }

    fn remove_alias(&mut self, id: u64, alias: &str) {
        self.by_alias.remove(alias);
        let record = self.records.get_mut(&id).expect("alias points at a record");
        record.aliases.retain(|(a, _)| a != alias);
        if record.aliases.is_empty() {
            self.remove_record(id);
        }
    }

    fn remove_record(&mut self, id: u64) {
        if let Some(record) = self.records.remove(&id) {
            for (alias, _) in &record.aliases {
                self.by_alias.remove(alias);
            }
            self.fingerprints.remove(&(record.storage, record.value));
        }
    }

    /// Removes expired VOLATILE records, at most once per [`SWEEP_EVERY`] unless `force`.
    fn sweep(&mut self, now: SystemTime, force: bool) {
        if !force && self.next_sweep.is_some_and(|next| now < next) {
            return;
        }
        self.next_sweep = Some(now + SWEEP_EVERY);
        let expired: Vec<u64> = self
            .records
            .iter()
            .filter(|(_, record)| record.expired(now))
            .map(|(&id, _)| id)
            .collect();
        for id in expired {
            self.remove_record(id);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::UNIX_EPOCH;

    fn new_item(value: &str, format: AliasFormat, storage: Storage) -> CreateItem {
        CreateItem::New {
            value: value.to_owned(),
            classifiers: vec!["c".to_owned()],
            format,
            storage,
        }
    }

    fn first_alias(data: &RevealedData) -> String {
        data.aliases[0].alias.clone()
    }

    #[test]
    fn same_value_and_format_gets_the_same_alias_and_record() {
        let mut store = VaultStore::default();
        let now = UNIX_EPOCH;
        let a = store
            .create(
                vec![new_item("v", AliasFormat::Uuid, Storage::Persistent)],
                now,
            )
            .expect("stored");
        let b = store
            .create(
                vec![
                    new_item("v", AliasFormat::Uuid, Storage::Persistent),
                    new_item("v", AliasFormat::RawUuid, Storage::Persistent),
                ],
                now,
            )
            .expect("stored");
        assert_eq!(first_alias(&a[0]), first_alias(&b[0]));
        assert_eq!(b[1].aliases[0].format, AliasFormat::RawUuid);
        assert_eq!(b[1].aliases.len(), 2, "one record, two aliases");
        assert_eq!(store.counts(now), (1, 2));
    }

    #[test]
    fn without_fingerprinting_every_create_is_a_new_record() {
        let mut store = VaultStore::new(false);
        let now = UNIX_EPOCH;
        let item = || new_item("v", AliasFormat::Uuid, Storage::Persistent);
        let first = store.create(vec![item(), item()], now).expect("stored");
        let again = store.create(vec![item()], now).expect("stored");
        let aliases = [&first[0], &first[1], &again[0]].map(first_alias);
        assert!(aliases[0] != aliases[1] && aliases[1] != aliases[2] && aliases[0] != aliases[2]);
        assert_eq!(store.counts(now), (3, 3));
        // Deleting one leaves the others (and their value) in place.
        assert!(store.delete(&aliases[0], Storage::Persistent, now));
        assert_eq!(
            store
                .reveal(&aliases[1], Storage::Persistent, now)
                .expect("kept")
                .value,
            "v"
        );
        store.clear();
        let after = store.create(vec![item(), item()], now).expect("stored");
        assert_ne!(
            first_alias(&after[0]),
            first_alias(&after[1]),
            "the setting survives clear"
        );
    }

    #[test]
    fn a_failing_item_stores_nothing() {
        let mut store = VaultStore::default();
        let result = store.create(
            vec![
                new_item("v", AliasFormat::Uuid, Storage::Persistent),
                new_item("not a card", AliasFormat::FpeSixTFour, Storage::Persistent),
            ],
            UNIX_EPOCH,
        );
        assert!(matches!(result, Err(StoreError::Invalid(d)) if d.starts_with("data[1]")));
        assert_eq!(store.counts(UNIX_EPOCH), (0, 0));
    }

    #[test]
    fn volatile_records_expire_after_an_hour() {
        let mut store = VaultStore::default();
        let t0 = UNIX_EPOCH;
        let data = store
            .create(
                vec![new_item("123", AliasFormat::Uuid, Storage::Volatile)],
                t0,
            )
            .expect("stored");
        let alias = first_alias(&data[0]);
        let almost = t0 + VOLATILE_TTL - Duration::from_secs(1);
        assert!(store.reveal(&alias, Storage::Volatile, almost).is_some());
        assert!(store.reveal(&alias, Storage::Persistent, almost).is_none());
        assert!(
            store
                .reveal(&alias, Storage::Volatile, t0 + VOLATILE_TTL)
                .is_none()
        );
        assert_eq!(store.counts(t0 + VOLATILE_TTL), (0, 0));
    }

    #[test]
    fn deleting_the_last_alias_forgets_the_fingerprint() {
        let mut store = VaultStore::default();
        let now = UNIX_EPOCH;
        let first = store
            .create(
                vec![new_item("v", AliasFormat::Uuid, Storage::Persistent)],
                now,
            )
            .expect("stored");
        let alias = first_alias(&first[0]);
        assert!(store.delete(&alias, Storage::Persistent, now));
        assert!(!store.delete(&alias, Storage::Persistent, now));
        let again = store
            .create(
                vec![new_item("v", AliasFormat::Uuid, Storage::Persistent)],
                now,
            )
            .expect("stored");
        assert_ne!(first_alias(&again[0]), alias);
    }

    #[test]
    fn record_view_debug_hides_the_value() {
        let mut store = VaultStore::default();
        let data = store
            .create(
                vec![new_item(
                    "4111111111111111",
                    AliasFormat::FpeSixTFour,
                    Storage::Persistent,
                )],
                UNIX_EPOCH,
            )
            .expect("stored");
        let view = store
            .view(&first_alias(&data[0]), UNIX_EPOCH)
            .expect("found");
        assert_eq!(view.value, "4111111111111111");
        let printed = format!("{view:?}");
        assert!(!printed.contains("4111111111111111"), "{printed}");
    }
}
