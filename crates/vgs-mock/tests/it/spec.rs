//! The official VGS vault API v1 spec, read at test time from `shared/vgs/`, and a
//! small validator for the OpenAPI 3.0 schema subset it uses (strict: an unknown
//! keyword or an undeclared property fails, so a drift cannot pass silently).

use std::sync::OnceLock;

use serde_json::{Map, Value, json};
use yaml_rust2::{Yaml, YamlLoader};

/// The spec as JSON.
pub(crate) struct Spec {
    pub(crate) root: Value,
}

/// Path of the spec, from this crate's directory.
pub(crate) fn spec_path() -> String {
    format!(
        "{}/../../../shared/vgs/vault-api-v1.openapi.yaml",
        env!("CARGO_MANIFEST_DIR")
    )
}

/// The spec, parsed once.
pub(crate) fn spec() -> &'static Spec {
    static SPEC: OnceLock<Spec> = OnceLock::new();
    SPEC.get_or_init(|| {
        let path = spec_path();
        let text = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("cannot read the VGS spec at {path}: {e}"));
        let docs = YamlLoader::load_from_str(&text).expect("the spec is valid YAML");
        Spec {
            root: yaml_to_json(&docs[0]),
        }
    })
}

fn yaml_to_json(yaml: &Yaml) -> Value {
    match yaml {
        Yaml::Real(text) => text
            .parse::<f64>()
            .ok()
            .and_then(serde_json::Number::from_f64)
            .map_or(Value::Null, Value::Number),
        Yaml::Integer(i) => json!(i),
        Yaml::String(s) => Value::String(s.clone()),
        Yaml::Boolean(b) => Value::Bool(*b),
        Yaml::Array(items) => Value::Array(items.iter().map(yaml_to_json).collect()),
        Yaml::Hash(hash) => {
            let mut map = Map::new();
            for (key, value) in hash {
                let key = match key {
                    Yaml::String(s) => s.clone(),
                    Yaml::Integer(i) => i.to_string(),
                    other => panic!("unexpected YAML key {other:?}"),
                };
                map.insert(key, yaml_to_json(value));
            }
            Value::Object(map)
        }
        Yaml::Null => Value::Null,
        Yaml::Alias(_) | Yaml::BadValue => panic!("unsupported YAML node {yaml:?}"),
    }
}

/// What the spec says a response may be.
pub(crate) enum Expected {
    /// A JSON body matching this schema.
    Json(Value),
    /// No body.
    Empty,
}

impl Spec {
    /// Follows a local `$ref` such as `#/components/schemas/RevealedData`.
    pub(crate) fn resolve<'a>(&'a self, value: &'a Value) -> &'a Value {
        match value.get("$ref").and_then(Value::as_str) {
            Some(reference) => {
                let pointer = reference
                    .strip_prefix('#')
                    .unwrap_or_else(|| panic!("non-local $ref {reference}"));
                let target = self
                    .root
                    .pointer(pointer)
                    .unwrap_or_else(|| panic!("dangling $ref {reference}"));
                self.resolve(target)
            }
            None => value,
        }
    }

    /// The spec's operation for `method` on the path template `path`.
    pub(crate) fn operation(&self, path: &str, method: &str) -> &Value {
        self.root["paths"]
            .get(path)
            .and_then(|item| item.get(method.to_ascii_lowercase()))
            .unwrap_or_else(|| panic!("the spec has no {method} {path}"))
    }

    /// What a `status` answer to `method path` must look like. Error statuses the
    /// operation does not declare (and no `default`) must still have the spec's
    /// general error shape (its "Errors" section); undeclared successes fail.
    pub(crate) fn expected(
        &self,
        path: &str,
        method: &str,
        status: u16,
    ) -> Result<Expected, String> {
        let responses = &self.operation(path, method)["responses"];
        // `default` is the spec's error answer ("Something went wrong"): it never
        // stands for an undeclared success.
        let declared = responses
            .get(status.to_string())
            .or_else(|| (status >= 400).then(|| responses.get("default")).flatten());
        let response = match declared {
            Some(response) => self.resolve(response),
            None if status >= 400 => {
                self.resolve(&self.root["components"]["responses"]["ApiErrorsResponse"])
            }
            None => return Err(format!("{method} {path} does not declare status {status}")),
        };
        match response.pointer("/content/application~1json/schema") {
            Some(schema) => Ok(Expected::Json(schema.clone())),
            None if status >= 400 => {
                // e.g. deleteAliases' bare "404: Not Found": the general error shape.
                let general =
                    self.resolve(&self.root["components"]["responses"]["ApiErrorsResponse"]);
                let schema = general
                    .pointer("/content/application~1json/schema")
                    .expect("ApiErrorsResponse has a schema");
                Ok(Expected::Json(schema.clone()))
            }
            None => Ok(Expected::Empty),
        }
    }

    /// Validates `instance` against `schema`; the error names the JSON path.
    pub(crate) fn validate(&self, schema: &Value, instance: &Value) -> Result<(), String> {
        self.check(schema, instance, "$")
    }

    fn check(&self, schema: &Value, instance: &Value, at: &str) -> Result<(), String> {
        let nullable = schema.get("nullable") == Some(&Value::Bool(true));
        if instance.is_null() && nullable {
            return Ok(());
        }
        if schema.get("$ref").is_some() {
            // OpenAPI 3.0: siblings of $ref other than `nullable` are ignored.
            return self.check(self.resolve(schema), instance, at);
        }
        let object = schema
            .as_object()
            .ok_or_else(|| format!("{at}: schema is not an object"))?;
        for keyword in object.keys() {
            let known = matches!(
                keyword.as_str(),
                "type"
                    | "properties"
                    | "required"
                    | "items"
                    | "minItems"
                    | "maxItems"
                    | "enum"
                    | "nullable"
                    | "format"
                    | "additionalProperties"
                    | "description"
                    | "example"
                    | "default"
            ) || keyword.starts_with("x-");
            if !known {
                return Err(format!("{at}: the validator does not support `{keyword}`"));
            }
        }
        if let Some(kind) = object.get("type").and_then(Value::as_str) {
            let ok = match kind {
                "object" => instance.is_object(),
                "array" => instance.is_array(),
                "string" => instance.is_string(),
                "integer" => instance.is_i64() || instance.is_u64(),
                "number" => instance.is_number(),
                "boolean" => instance.is_boolean(),
                other => return Err(format!("{at}: unknown type {other}")),
            };
            if !ok {
                return Err(format!("{at}: expected {kind}, got {instance}"));
            }
        }
        if let Some(allowed) = object.get("enum").and_then(Value::as_array) {
            if !allowed.contains(instance) {
                return Err(format!("{at}: {instance} is not one of {allowed:?}"));
            }
        }
        if object.get("format").and_then(Value::as_str) == Some("date-time") {
            let text = instance.as_str().unwrap_or_default();
            if !is_rfc3339(text) {
                return Err(format!("{at}: {text:?} is not an RFC 3339 date-time"));
            }
        }
        if let Some(items) = instance.as_array() {
            if let Some(min) = object.get("minItems").and_then(Value::as_u64) {
                if (items.len() as u64) < min {
                    return Err(format!("{at}: fewer than {min} items"));
                }
            }
            if let Some(max) = object.get("maxItems").and_then(Value::as_u64) {
                if items.len() as u64 > max {
                    return Err(format!("{at}: more than {max} items"));
                }
            }
            if let Some(item_schema) = object.get("items") {
                for (i, item) in items.iter().enumerate() {
                    self.check(item_schema, item, &format!("{at}[{i}]"))?;
                }
            }
        }
        if let Some(fields) = instance.as_object() {
            let properties = object.get("properties").and_then(Value::as_object);
            for required in object
                .get("required")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                let name = required.as_str().unwrap_or_default();
                if !fields.contains_key(name) {
                    return Err(format!("{at}: missing required `{name}`"));
                }
            }
            for (name, value) in fields {
                let path = format!("{at}.{name}");
                match (
                    properties.and_then(|p| p.get(name)),
                    object.get("additionalProperties"),
                ) {
                    (Some(property), _) => self.check(property, value, &path)?,
                    (None, Some(Value::Bool(true))) => {}
                    (None, Some(extra)) if extra.is_object() => self.check(extra, value, &path)?,
                    // Strict: a field the spec does not declare is a drift.
                    (None, _) => return Err(format!("{path}: not declared by the spec")),
                }
            }
        }
        Ok(())
    }
}

/// `2019-05-15T12:30:45Z`, optionally with fractions and/or an offset.
fn is_rfc3339(text: &str) -> bool {
    let bytes = text.as_bytes();
    let digits = |range: std::ops::Range<usize>| {
        bytes
            .get(range)
            .is_some_and(|b| b.iter().all(u8::is_ascii_digit))
    };
    let shape = bytes.len() >= 20
        && digits(0..4)
        && bytes[4] == b'-'
        && digits(5..7)
        && bytes[7] == b'-'
        && digits(8..10)
        && matches!(bytes[10], b'T' | b't')
        && digits(11..13)
        && bytes[13] == b':'
        && digits(14..16)
        && bytes[16] == b':'
        && digits(17..19);
    if !shape {
        return false;
    }
    let mut rest = &text[19..];
    if let Some(fraction) = rest.strip_prefix('.') {
        let end = fraction
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(fraction.len());
        if end == 0 {
            return false;
        }
        rest = &fraction[end..];
    }
    rest == "Z"
        || rest == "z"
        || (rest.len() == 6 && matches!(&rest[..1], "+" | "-") && &rest[3..4] == ":")
}

/// The v2 error body of REFERENCE.md (`{"errors":[{status,code,detail}],"trace_id"}`),
/// which the v1 spec does not cover.
pub(crate) fn v2_error_schema() -> Value {
    json!({
        "type": "object",
        "required": ["errors", "trace_id"],
        "properties": {
            "errors": {
                "type": "array",
                "minItems": 1,
                "items": {
                    "type": "object",
                    "required": ["status", "code", "detail"],
                    "properties": {
                        "status": {"type": "integer"},
                        "code": {"type": "string"},
                        "detail": {"type": "string"}
                    }
                }
            },
            "trace_id": {"type": "string"}
        }
    })
}

/// Keycloak's token answers, as REFERENCE.md describes them (extra fields allowed).
pub(crate) fn token_schema(success: bool) -> Value {
    if success {
        json!({
            "type": "object",
            "required": ["access_token", "expires_in", "token_type"],
            "additionalProperties": true,
            "properties": {
                "access_token": {"type": "string"},
                "expires_in": {"type": "integer"},
                "token_type": {"type": "string", "enum": ["Bearer"]}
            }
        })
    } else {
        json!({
            "type": "object",
            "required": ["error", "error_description"],
            "properties": {
                "error": {"type": "string"},
                "error_description": {"type": "string"}
            }
        })
    }
}

#[test]
fn rfc3339_shapes() {
    assert!(is_rfc3339("2019-05-15T12:30:45Z"));
    assert!(is_rfc3339("2019-05-15T12:30:45.123+02:00"));
    assert!(!is_rfc3339("2019-05-15 12:30:45"));
    assert!(!is_rfc3339("yesterday"));
}
