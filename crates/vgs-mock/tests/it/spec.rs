//! API descriptions as JSON: the mock's own (`crates/vgs-mock/openapi.yaml`, the one
//! every answer is checked against) and, where it is at hand, VGS's official v1 spec;
//! plus a small validator for the OpenAPI 3.0 schema subset they use (strict: an
//! unknown keyword or an undeclared property fails, so a drift cannot pass silently).

use std::sync::OnceLock;

use serde_json::{Map, Value, json};
use yaml_rust2::{Yaml, YamlLoader};

/// An OpenAPI document as JSON.
pub(crate) struct Spec {
    pub(crate) root: Value,
}

/// The mock's own description, parsed once.
pub(crate) fn spec() -> &'static Spec {
    static SPEC: OnceLock<Spec> = OnceLock::new();
    SPEC.get_or_init(|| Spec::parse(vgs_mock::OPENAPI_YAML).expect("openapi.yaml parses"))
}

fn yaml_to_json(yaml: &Yaml) -> Result<Value, String> {
    Ok(match yaml {
        Yaml::Real(text) => text
            .parse::<f64>()
            .ok()
            .and_then(serde_json::Number::from_f64)
            .map_or(Value::Null, Value::Number),
        Yaml::Integer(i) => json!(i),
        Yaml::String(s) => Value::String(s.clone()),
        Yaml::Boolean(b) => Value::Bool(*b),
        Yaml::Array(items) => {
            Value::Array(items.iter().map(yaml_to_json).collect::<Result<_, _>>()?)
        }
        Yaml::Hash(hash) => {
            let mut map = Map::new();
            for (key, value) in hash {
                let key = match key {
                    Yaml::String(s) => s.clone(),
                    Yaml::Integer(i) => i.to_string(),
                    other => return Err(format!("unexpected YAML key {other:?}")),
                };
                map.insert(key, yaml_to_json(value)?);
            }
            Value::Object(map)
        }
        Yaml::Null => Value::Null,
        Yaml::Alias(_) | Yaml::BadValue => return Err(format!("unsupported YAML node {yaml:?}")),
    })
}

/// What a description says an answer may be.
#[derive(Debug)]
pub(crate) enum Expected {
    /// A body of this media type matching this schema.
    Body { media: String, schema: Value },
    /// No body.
    Empty,
}

impl Expected {
    /// The schema of a JSON body (panics otherwise: for tests that know the answer).
    pub(crate) fn json_schema(self) -> Value {
        match self {
            Expected::Body { schema, .. } => schema,
            Expected::Empty => panic!("the answer has no body"),
        }
    }
}

/// How a concrete request path matches the description.
pub(crate) enum Routed<'a> {
    /// The path template and its operation for the method.
    Operation(&'a str, &'a Value),
    /// The path is described but not with this method: the router answers 405.
    MethodNotAllowed(&'a str),
    /// No path template matches.
    Undescribed,
}

/// The methods an OpenAPI path item may have.
pub(crate) const METHODS: [&str; 5] = ["get", "put", "post", "delete", "patch"];

impl Spec {
    /// Parses a YAML OpenAPI document.
    pub(crate) fn parse(text: &str) -> Result<Spec, String> {
        let docs = YamlLoader::load_from_str(text).map_err(|e| e.to_string())?;
        let first = docs.first().ok_or("an empty YAML document")?;
        Ok(Spec {
            root: yaml_to_json(first)?,
        })
    }

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

    /// The path items, by template.
    pub(crate) fn paths(&self) -> &Map<String, Value> {
        self.root["paths"].as_object().expect("paths")
    }

    /// The operation for `method` on the path template `path`.
    pub(crate) fn operation(&self, path: &str, method: &str) -> &Value {
        self.root["paths"]
            .get(path)
            .and_then(|item| item.get(method.to_ascii_lowercase()))
            .unwrap_or_else(|| panic!("the description has no {method} {path}"))
    }

    /// Every (path template, method, operation).
    pub(crate) fn operations(&self) -> Vec<(&str, &'static str, &Value)> {
        let mut out = Vec::new();
        for (path, item) in self.paths() {
            for method in METHODS {
                if let Some(operation) = item.get(method) {
                    out.push((path.as_str(), method, operation));
                }
            }
        }
        out
    }

    /// The parameters of an operation: the path item's, overridden by the
    /// operation's own (same name and location), each resolved.
    pub(crate) fn parameters(&self, path: &str, method: &str) -> Vec<&Value> {
        let item = &self.root["paths"][path];
        let mut out: Vec<&Value> = Vec::new();
        let lists = [
            &item["parameters"],
            &self.operation(path, method)["parameters"],
        ];
        for parameter in lists.into_iter().filter_map(Value::as_array).flatten() {
            let parameter = self.resolve(parameter);
            out.retain(|p| p["name"] != parameter["name"] || p["in"] != parameter["in"]);
            out.push(parameter);
        }
        out
    }

    /// Routes a concrete path as the mock's router does: the template with the most
    /// literal segments wins, whatever the method (axum answers 405 when that path
    /// lacks the method).
    pub(crate) fn route(&self, method: &str, path: &str) -> Routed<'_> {
        let segments: Vec<&str> = path.split('/').collect();
        let best = self
            .paths()
            .iter()
            .filter_map(|(template, item)| {
                let parts: Vec<&str> = template.split('/').collect();
                let fits = parts.len() == segments.len()
                    && parts.iter().zip(&segments).all(|(part, segment)| {
                        (part.starts_with('{') && !segment.is_empty()) || part == segment
                    });
                let literal = parts.iter().filter(|p| !p.starts_with('{')).count();
                fits.then_some((literal, template.as_str(), item))
            })
            .max_by_key(|(literal, _, _)| *literal);
        match best {
            None => Routed::Undescribed,
            Some((_, template, item)) => match item.get(method.to_ascii_lowercase()) {
                Some(operation) => Routed::Operation(template, operation),
                None => Routed::MethodNotAllowed(template),
            },
        }
    }

    /// The response object a `status` answer to `method path` must follow: the
    /// declared status, else `default` for an error; an undeclared success fails.
    pub(crate) fn response(&self, path: &str, method: &str, status: u16) -> Result<&Value, String> {
        let responses = &self.operation(path, method)["responses"];
        responses
            .get(status.to_string())
            .or_else(|| (status >= 400).then(|| responses.get("default")).flatten())
            .map(|response| self.resolve(response))
            .ok_or_else(|| format!("{method} {path} does not declare status {status}"))
    }

    /// What a `status` answer to `method path` must look like.
    pub(crate) fn expected(
        &self,
        path: &str,
        method: &str,
        status: u16,
    ) -> Result<Expected, String> {
        let response = self.response(path, method, status)?;
        let Some(content) = response.get("content").and_then(Value::as_object) else {
            return Ok(Expected::Empty);
        };
        let mut media_types = content.iter();
        let (media, body) = match (media_types.next(), media_types.next()) {
            (Some((media, body)), None) => (media.clone(), body),
            _ => return Err(format!("{method} {path} {status}: one media type expected")),
        };
        let schema = body.get("schema").cloned().unwrap_or(json!({}));
        Ok(Expected::Body { media, schema })
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
        if let Some(keyword) = object.keys().find(|k| !is_known_keyword(k)) {
            return Err(format!("{at}: the validator does not support `{keyword}`"));
        }
        if let Some(choices) = object.get("oneOf").and_then(Value::as_array) {
            let matching = choices
                .iter()
                .filter(|choice| self.check(choice, instance, at).is_ok())
                .count();
            if matching != 1 {
                return Err(format!(
                    "{at}: {instance} matches {matching} of the oneOf schemas, not exactly one"
                ));
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
        if let Some(number) = instance.as_f64() {
            if let Some(min) = object.get("minimum").and_then(Value::as_f64) {
                if number < min {
                    return Err(format!("{at}: {number} is below the minimum {min}"));
                }
            }
            if let Some(max) = object.get("maximum").and_then(Value::as_f64) {
                if number > max {
                    return Err(format!("{at}: {number} is above the maximum {max}"));
                }
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
            if object.contains_key("oneOf") {
                return Ok(());
            }
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
                    // Strict: a field the description does not declare is a drift.
                    (None, _) => return Err(format!("{path}: not declared by the spec")),
                }
            }
        }
        Ok(())
    }
}

/// The schema keywords the validator understands (`x-` extensions are ignored).
fn is_known_keyword(keyword: &str) -> bool {
    matches!(
        keyword,
        "type"
            | "properties"
            | "required"
            | "items"
            | "minItems"
            | "maxItems"
            | "minimum"
            | "maximum"
            | "enum"
            | "oneOf"
            | "nullable"
            | "format"
            | "additionalProperties"
            | "description"
            | "example"
            | "default"
    ) || keyword.starts_with("x-")
}

/// Every keyword the validator would not understand, anywhere in `schema` and the
/// schemas nested in it, as `at: keyword`.
pub(crate) fn unsupported_keywords(schema: &Value, at: &str, out: &mut Vec<String>) {
    let Some(object) = schema.as_object() else {
        out.push(format!("{at}: not a schema object"));
        return;
    };
    if object.contains_key("$ref") {
        return;
    }
    for keyword in object.keys().filter(|k| !is_known_keyword(k)) {
        out.push(format!("{at}: {keyword}"));
    }
    for (name, property) in object
        .get("properties")
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
    {
        unsupported_keywords(property, &format!("{at}.{name}"), out);
    }
    if let Some(items) = object.get("items") {
        unsupported_keywords(items, &format!("{at}[]"), out);
    }
    if let Some(extra) = object.get("additionalProperties").filter(|v| v.is_object()) {
        unsupported_keywords(extra, &format!("{at}.*"), out);
    }
    for (i, choice) in object
        .get("oneOf")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .enumerate()
    {
        unsupported_keywords(choice, &format!("{at}|{i}"), out);
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

#[test]
fn rfc3339_shapes() {
    assert!(is_rfc3339("2019-05-15T12:30:45Z"));
    assert!(is_rfc3339("2019-05-15T12:30:45.123+02:00"));
    assert!(!is_rfc3339("2019-05-15 12:30:45"));
    assert!(!is_rfc3339("yesterday"));
}

#[test]
fn paths_are_routed_like_the_router_does() {
    let spec = spec();
    let routed = |method: &str, path: &str| match spec.route(method, path) {
        Routed::Operation(template, operation) => {
            format!("{template} {}", operation["operationId"].as_str().unwrap())
        }
        Routed::MethodNotAllowed(template) => format!("{template} 405"),
        Routed::Undescribed => "none".to_owned(),
    };
    assert_eq!(
        routed("POST", "/aliases/delete"),
        "/aliases/delete deleteAliases"
    );
    assert_eq!(routed("GET", "/aliases/delete"), "/aliases/delete 405");
    assert_eq!(
        routed("GET", "/aliases/tok_1"),
        "/aliases/{alias} revealAlias"
    );
    assert_eq!(
        routed("DELETE", "/v2/tnt1/aliases/tok_1"),
        "/v2/{vault}/aliases/{alias} v2DeleteAlias"
    );
    assert_eq!(routed("GET", "/cards/CRD1"), "/cards/{id} getCard");
    assert_eq!(routed("GET", "/aliases/"), "none");
    assert_eq!(routed("GET", "/nothing"), "none");
}

#[test]
fn the_validator_understands_one_of_and_bounds() {
    let spec = spec();
    let fail_with = json!({"$ref": "#/components/schemas/FailWith"});
    assert!(spec.validate(&fail_with, &json!({"status": 503})).is_ok());
    assert!(spec.validate(&fail_with, &json!("reset")).is_ok());
    assert!(spec.validate(&fail_with, &json!({"delay_ms": 10})).is_ok());
    assert!(spec.validate(&fail_with, &json!("explode")).is_err());
    assert!(
        spec.validate(&fail_with, &json!({"status": 503, "delay_ms": 1}))
            .is_err()
    );
    assert!(spec.validate(&fail_with, &json!({"status": 99})).is_err());
    let faults = json!({"$ref": "#/components/schemas/FaultConfig"});
    assert!(spec.validate(&faults, &json!({"p_5xx": 0.5})).is_ok());
    assert!(spec.validate(&faults, &json!({"p_5xx": 1.5})).is_err());
    assert!(
        spec.validate(&json!({"pattern": "x"}), &json!("x"))
            .is_err()
    );
}
