//! The alias handlers, one per spec operation, shared by API v1 and v2: they parse
//! and validate requests, call the vault's store and shape the answers.

use std::collections::HashMap;
use std::sync::atomic::Ordering;

use axum::body::Body;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde::ser::Serializer;
use serde_json::{Map, Value};

use crate::api::{ApiError, Caller, json_response, read_json_body};
use crate::formats::AliasFormat;
use crate::lock;
use crate::state::MockState;
use crate::store::{CreateItem, RevealedData, Storage};

/// Most values (or aliases) one create or batch-delete request may carry.
pub const MAX_BATCH: usize = 20;
const SCOPE_READ: &str = "aliases:read";
const SCOPE_WRITE: &str = "aliases:write";
const SCOPE_DELETE: &str = "aliases:delete";

#[derive(Serialize)]
struct DataList<'a> {
    data: &'a [RevealedData],
}

/// `{"data": {alias: RevealedData, …}}`, keys in request order.
struct DataMap<'a>(&'a [(String, RevealedData)]);

impl Serialize for DataMap<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        struct Inner<'a>(&'a [(String, RevealedData)]);
        impl Serialize for Inner<'_> {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.collect_map(self.0.iter().map(|(alias, data)| (alias, data)))
            }
        }
        #[derive(Serialize)]
        struct Wrapper<'a> {
            data: Inner<'a>,
        }
        Wrapper {
            data: Inner(self.0),
        }
        .serialize(serializer)
    }
}

/// `POST /aliases` (`createAliases`): 201 with one `RevealedData` per item, in order.
pub(crate) async fn create(
    caller: Caller,
    State(state): State<MockState>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    caller.vault.create_requests.fetch_add(1, Ordering::Relaxed);
    let result = async {
        caller.require_scope(SCOPE_WRITE)?;
        let json = read_json_body(&headers, body).await?;
        let items = parse_create(&json)?;
        let now = state.now();
        let data = lock(&caller.vault.store).create(items, now)?;
        Ok(json_response(
            StatusCode::CREATED,
            &DataList { data: &data },
        ))
    }
    .await;
    caller.respond(result)
}

/// `GET /aliases?aliases=a,b[&storage=]` (`revealMultipleAliases`): 200 with a map.
pub(crate) async fn reveal_many(
    caller: Caller,
    State(state): State<MockState>,
    RawQuery(query): RawQuery,
) -> Response {
    let result = (|| {
        caller.require_scope(SCOPE_READ)?;
        caller.require_reveal()?;
        let params = query_params(query.as_deref());
        // `q` is the parameter's name in older official SDKs (Ruby 0.0.27–0.0.35 send
        // `?q=a,b`); VGS's current spec names it `aliases`.
        let Some(list) = params.get("aliases").or_else(|| params.get("q")) else {
            return Err(ApiError::bad_request(
                "query parameter `aliases` is required: a comma-separated list of aliases",
            ));
        };
        // The spec's own curl example writes `?aliases=a,b?storage=PERSISTENT`; an
        // alias never contains `?`, so a `?storage=` suffix is read as the parameter.
        let (list, suffix_storage) = match list.split_once("?storage=") {
            Some((list, storage)) => (list, Some(storage)),
            None => (list.as_str(), None),
        };
        let storage = match params.get("storage").map(String::as_str).or(suffix_storage) {
            Some(text) => parse_storage(text)?,
            None => Storage::Persistent,
        };
        let mut aliases: Vec<String> = Vec::new();
        for alias in list.split(',').map(str::trim).filter(|a| !a.is_empty()) {
            if !aliases.iter().any(|a| a == alias) {
                aliases.push(alias.to_owned());
            }
        }
        if aliases.is_empty() {
            return Err(ApiError::bad_request(
                "query parameter `aliases` lists no alias",
            ));
        }
        let now = state.now();
        let found = lock(&caller.vault.store)
            .reveal_many(&aliases, storage, now)
            .map_err(|missing| {
                ApiError::not_found(format!(
                    "{missing} of {} aliases not found in {} storage",
                    aliases.len(),
                    storage.as_str()
                ))
            })?;
        Ok(json_response(StatusCode::OK, &DataMap(&found)))
    })();
    caller.respond(result)
}

/// `GET /aliases/{alias}[?storage=]` (`revealAlias`): 200 with exactly one item.
pub(crate) async fn reveal(
    caller: Caller,
    State(state): State<MockState>,
    path: Result<Path<HashMap<String, String>>, PathRejection>,
    RawQuery(query): RawQuery,
) -> Response {
    let result = (|| {
        caller.require_scope(SCOPE_READ)?;
        caller.require_reveal()?;
        let alias = path_alias(path)?;
        let storage = storage_param(query.as_deref())?;
        let now = state.now();
        let data = lock(&caller.vault.store)
            .reveal(&alias, storage, now)
            .ok_or_else(|| not_found(storage))?;
        Ok(json_response(StatusCode::OK, &DataList { data: &[data] }))
    })();
    caller.respond(result)
}

/// `PUT /aliases/{alias}` (`updateAlias`): replaces the classifiers, 204.
pub(crate) async fn update(
    caller: Caller,
    State(state): State<MockState>,
    path: Result<Path<HashMap<String, String>>, PathRejection>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let result = async {
        caller.require_scope(SCOPE_WRITE)?;
        let alias = path_alias(path)?;
        let storage = storage_param(query.as_deref())?;
        let json = read_json_body(&headers, body).await?;
        let classifiers = json
            .get("data")
            .and_then(Value::as_object)
            .and_then(|data| data.get("classifiers"))
            .ok_or_else(|| ApiError::bad_request("body must be {\"data\":{\"classifiers\":[…]}}"))
            .and_then(|value| string_list(value, "data.classifiers"))?;
        let now = state.now();
        if lock(&caller.vault.store).update(&alias, storage, classifiers, now) {
            Ok(StatusCode::NO_CONTENT.into_response())
        } else {
            Err(not_found(storage))
        }
    }
    .await;
    caller.respond(result)
}

/// `DELETE /aliases/{alias}[?storage=]` (`deleteAlias`): removes the alias, 204.
pub(crate) async fn delete(
    caller: Caller,
    State(state): State<MockState>,
    path: Result<Path<HashMap<String, String>>, PathRejection>,
    RawQuery(query): RawQuery,
) -> Response {
    let result = (|| {
        caller.require_scope(SCOPE_DELETE)?;
        let alias = path_alias(path)?;
        let storage = storage_param(query.as_deref())?;
        let now = state.now();
        if lock(&caller.vault.store).delete(&alias, storage, now) {
            Ok(StatusCode::NO_CONTENT.into_response())
        } else {
            Err(not_found(storage))
        }
    })();
    caller.respond(result)
}

/// `POST /aliases/delete` (`deleteAliases`): `{"data":[…],"storage":…}`, all or
/// nothing: 204, or 404 when any alias is unknown (then nothing is deleted).
pub(crate) async fn delete_many(
    caller: Caller,
    State(state): State<MockState>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let result = async {
        caller.require_scope(SCOPE_DELETE)?;
        let json = read_json_body(&headers, body).await?;
        let object = json
            .as_object()
            .ok_or_else(|| ApiError::bad_request("body must be {\"data\":[…],\"storage\":…}"))?;
        let aliases = object
            .get("data")
            .ok_or_else(|| ApiError::bad_request("`data` is required: a list of aliases"))
            .and_then(|value| string_list(value, "data"))?;
        if aliases.is_empty() {
            return Err(ApiError::bad_request("`data` must list at least one alias"));
        }
        if aliases.len() > MAX_BATCH {
            return Err(too_many());
        }
        let storage = optional_storage(object, "storage")?;
        let now = state.now();
        lock(&caller.vault.store)
            .delete_many(&aliases, storage, now)
            .map_err(|missing| {
                ApiError::not_found(format!(
                    "{missing} of {} aliases not found in {} storage; none was deleted",
                    aliases.len(),
                    storage.as_str()
                ))
            })?;
        Ok(StatusCode::NO_CONTENT.into_response())
    }
    .await;
    caller.respond(result)
}

fn too_many() -> ApiError {
    ApiError::bad_request(format!("Too many values (limit: {MAX_BATCH})"))
}

fn not_found(storage: Storage) -> ApiError {
    ApiError::not_found(format!("alias not found in {} storage", storage.as_str()))
}

/// The create body: `{"data":[{value|alias, format, storage?, classifiers?}…]}`.
fn parse_create(json: &Value) -> Result<Vec<CreateItem>, ApiError> {
    let data = json
        .get("data")
        .and_then(Value::as_array)
        .ok_or_else(|| ApiError::bad_request("`data` must be an array of 1 to 20 items"))?;
    if data.is_empty() {
        return Err(ApiError::bad_request(
            "`data` must contain at least one item",
        ));
    }
    if data.len() > MAX_BATCH {
        return Err(too_many());
    }
    data.iter()
        .enumerate()
        .map(|(i, item)| parse_item(i, item))
        .collect()
}

fn parse_item(i: usize, item: &Value) -> Result<CreateItem, ApiError> {
    let object = item
        .as_object()
        .ok_or_else(|| ApiError::bad_request(format!("data[{i}] must be an object")))?;
    let format = match object.get("format") {
        None => {
            return Err(ApiError::bad_request(format!(
                "data[{i}].format is required"
            )));
        }
        // The schema marks the format nullable; null means the default, UUID.
        Some(Value::Null) => AliasFormat::Uuid,
        Some(Value::String(name)) => AliasFormat::parse(name).ok_or_else(|| {
            ApiError::bad_request(format!(
                "data[{i}].format is not one of the spec's alias formats"
            ))
        })?,
        Some(_) => {
            return Err(ApiError::bad_request(format!(
                "data[{i}].format must be a string"
            )));
        }
    };
    let storage = optional_storage(object, "storage").map_err(|_| {
        ApiError::bad_request(format!("data[{i}].storage must be PERSISTENT or VOLATILE"))
    })?;
    match (object.get("value"), object.get("alias")) {
        (Some(_), Some(_)) => Err(ApiError::bad_request(format!(
            "data[{i}] has both `value` and `alias`: give one"
        ))),
        (Some(value), None) => {
            let value = match value {
                Value::String(text) => text.clone(),
                // The spec's own request example sends a number (`value: 122105155`).
                Value::Number(number) => number.to_string(),
                _ => {
                    return Err(ApiError::bad_request(format!(
                        "data[{i}].value must be a string"
                    )));
                }
            };
            let classifiers = match object.get("classifiers") {
                None | Some(Value::Null) => Vec::new(),
                Some(value) => string_list(value, &format!("data[{i}].classifiers"))?,
            };
            Ok(CreateItem::New {
                value,
                classifiers,
                format,
                storage,
            })
        }
        (None, Some(Value::String(alias))) => Ok(CreateItem::Reference {
            alias: alias.clone(),
            format,
            storage,
        }),
        (None, Some(_)) => Err(ApiError::bad_request(format!(
            "data[{i}].alias must be a string"
        ))),
        (None, None) => Err(ApiError::bad_request(format!(
            "data[{i}] needs `value` (to store) or `alias` (to reference stored data)"
        ))),
    }
}

fn string_list(value: &Value, name: &str) -> Result<Vec<String>, ApiError> {
    let invalid = || ApiError::bad_request(format!("{name} must be an array of strings"));
    value
        .as_array()
        .ok_or_else(invalid)?
        .iter()
        .map(|item| item.as_str().map(str::to_owned).ok_or_else(invalid))
        .collect()
}

fn optional_storage(object: &Map<String, Value>, key: &str) -> Result<Storage, ApiError> {
    match object.get(key) {
        None | Some(Value::Null) => Ok(Storage::Persistent),
        Some(Value::String(text)) => parse_storage(text),
        Some(_) => Err(ApiError::bad_request(
            "storage must be PERSISTENT or VOLATILE",
        )),
    }
}

fn parse_storage(text: &str) -> Result<Storage, ApiError> {
    Storage::parse(text)
        .ok_or_else(|| ApiError::bad_request("storage must be PERSISTENT or VOLATILE"))
}

/// The `storage` query parameter; absent means PERSISTENT (the spec's default).
fn storage_param(query: Option<&str>) -> Result<Storage, ApiError> {
    match query_params(query).get("storage") {
        Some(text) => parse_storage(text),
        None => Ok(Storage::Persistent),
    }
}

fn query_params(query: Option<&str>) -> HashMap<String, String> {
    let mut params = HashMap::new();
    for (key, value) in form_urlencoded::parse(query.unwrap_or_default().as_bytes()) {
        params
            .entry(key.into_owned())
            .or_insert_with(|| value.into_owned());
    }
    params
}

fn path_alias(
    path: Result<Path<HashMap<String, String>>, PathRejection>,
) -> Result<String, ApiError> {
    path.ok()
        .and_then(|Path(mut params)| params.remove("alias"))
        .ok_or_else(|| ApiError::bad_request("the alias in the path is not valid UTF-8"))
}
