//! VGS route files (what `vgs get routes` prints and `vgs apply routes` takes), YAML or
//! JSON, parsed into the proxies' routes and filters. Every refusal names the line and
//! the field, and says what the mock can honour instead.

use std::fmt;

use regex::Regex;
use yaml_rust2::parser::{Event, MarkedEventReceiver, Parser};
use yaml_rust2::scanner::{Marker, TScalarStyle};

use crate::formats::AliasFormat;
use crate::jsonpath::JsonPath;
use crate::store::Storage;

/// A parsed route file: the routes of one vault's proxies.
#[derive(Clone, Debug, Default)]
pub struct RouteFile {
    pub(crate) routes: Vec<ProxyRoute>,
}

impl RouteFile {
    /// Parses a route file (YAML or JSON, `{data: [{type: rule_chain, attributes:
    /// {…}}], version: 1}`, as vgs-cli 1.36 writes it).
    pub fn parse(text: &str) -> Result<RouteFile, RouteError> {
        let root = load(text)?;
        parse_file(&root)
    }

    /// How many routes the file has.
    pub fn len(&self) -> usize {
        self.routes.len()
    }

    /// Whether the file has no route.
    pub fn is_empty(&self) -> bool {
        self.routes.is_empty()
    }

    /// Whether a route is outbound (`destination_override_endpoint: '*'`).
    pub(crate) fn outbound(&self) -> impl Iterator<Item = &ProxyRoute> {
        self.routes
            .iter()
            .filter(|r| matches!(r.direction, Direction::Outbound))
    }

    /// The inbound routes (an upstream URL as destination).
    pub(crate) fn inbound(&self) -> impl Iterator<Item = &ProxyRoute> {
        self.routes
            .iter()
            .filter(|r| matches!(r.direction, Direction::Inbound(_)))
    }
}

/// Why a route file was refused: where (line, field path) and what.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RouteError {
    /// The line (1-based) of the offending node, when known.
    pub line: Option<usize>,
    /// The field, e.g. `data[0].attributes.entries[1].operation`.
    pub field: String,
    /// What is wrong and what the mock honours instead.
    pub message: String,
}

impl fmt::Display for RouteError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(line) => write!(f, "line {line}: {}: {}", self.field, self.message),
            None => write!(f, "{}: {}", self.field, self.message),
        }
    }
}

impl std::error::Error for RouteError {}

/// One route.
#[derive(Clone, Debug)]
pub(crate) struct ProxyRoute {
    /// The route's id, if the file gives one.
    pub(crate) id: Option<String>,
    /// `tags.name`.
    pub(crate) name: Option<String>,
    pub(crate) direction: Direction,
    /// `host_endpoint` as a regex matched against the whole host; `None` for `*`.
    pub(crate) host: Option<Regex>,
    pub(crate) filters: Vec<Filter>,
}

impl ProxyRoute {
    /// Whether the route serves requests for `host`.
    pub(crate) fn serves(&self, host: &str) -> bool {
        self.host.as_ref().is_none_or(|re| re.is_match(host))
    }

    /// How the route is named in logs: its id, else its name, else its position.
    pub(crate) fn label(&self) -> &str {
        self.id
            .as_deref()
            .or(self.name.as_deref())
            .unwrap_or("(unnamed route)")
    }
}

/// Where a route forwards.
#[derive(Clone, Debug)]
pub(crate) enum Direction {
    /// Outbound (forward proxy): to whichever host the client asked for.
    Outbound,
    /// Inbound (reverse proxy): to this upstream base URL.
    Inbound(reqwest::Url),
}

/// One entry of a route: a filter.
#[derive(Clone, Debug)]
pub(crate) struct Filter {
    pub(crate) phase: Phase,
    pub(crate) operation: Operation,
    pub(crate) storage: Storage,
    pub(crate) format: AliasFormat,
    pub(crate) transformer: Transformer,
    pub(crate) condition: Option<Condition>,
}

/// When a filter runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Phase {
    Request,
    Response,
}

/// What a filter does to the values it selects.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Operation {
    /// Store the value, put its alias in its place.
    Redact,
    /// Put the stored value in the alias's place (ENRICH in older files).
    Reveal,
}

/// Which values of a body a filter selects.
#[derive(Clone, Debug)]
pub(crate) enum Transformer {
    /// String (or number) values at these JSON paths.
    JsonPath(Vec<JsonPath>),
    /// These fields of an `application/x-www-form-urlencoded` body.
    FormField(Vec<String>),
    /// Matches of these patterns in the body text (capture group 1 if there is one).
    Regex(Vec<Regex>),
}

/// A filter's condition on the request (and, in the response phase, the response).
#[derive(Clone, Debug)]
pub(crate) enum Condition {
    All(Vec<Condition>),
    Any(Vec<Condition>),
    Test {
        field: Field,
        operator: Operator,
        values: Vec<String>,
    },
}

/// What a condition looks at.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Field {
    PathInfo,
    ContentType,
    HttpMethod,
    /// The response status (response phase only; in the request phase it is empty).
    Status,
}

/// How a condition compares.
#[derive(Clone, Debug)]
pub(crate) enum Operator {
    Equals,
    NotEquals,
    BeginsWith,
    NotBeginsWith,
    EndsWith,
    NotEndsWith,
    Contains,
    NotContains,
    Matches(Vec<Regex>),
    IsEmpty,
    IsNotEmpty,
    EqualsMediaType,
}

/// What a condition is evaluated against.
pub(crate) struct Facts<'a> {
    pub(crate) path: &'a str,
    pub(crate) method: &'a str,
    pub(crate) content_type: &'a str,
    pub(crate) status: Option<u16>,
}

impl Condition {
    pub(crate) fn holds(&self, facts: &Facts<'_>) -> bool {
        match self {
            Condition::All(all) => all.iter().all(|c| c.holds(facts)),
            Condition::Any(any) => any.iter().any(|c| c.holds(facts)),
            Condition::Test {
                field,
                operator,
                values,
            } => {
                let status;
                let actual = match field {
                    Field::PathInfo => facts.path,
                    Field::ContentType => facts.content_type,
                    Field::HttpMethod => facts.method,
                    Field::Status => {
                        status = facts.status.map(|s| s.to_string()).unwrap_or_default();
                        status.as_str()
                    }
                };
                let any = |test: &dyn Fn(&str) -> bool| values.iter().any(|v| test(v));
                let media = |text: &str| {
                    text.split(';')
                        .next()
                        .unwrap_or_default()
                        .trim()
                        .to_ascii_lowercase()
                };
                match operator {
                    Operator::Equals => any(&|v| actual == v),
                    Operator::NotEquals => !any(&|v| actual == v),
                    Operator::BeginsWith => any(&|v| actual.starts_with(v)),
                    Operator::NotBeginsWith => !any(&|v| actual.starts_with(v)),
                    Operator::EndsWith => any(&|v| actual.ends_with(v)),
                    Operator::NotEndsWith => !any(&|v| actual.ends_with(v)),
                    Operator::Contains => any(&|v| actual.contains(v)),
                    Operator::NotContains => !any(&|v| actual.contains(v)),
                    Operator::Matches(patterns) => patterns.iter().any(|re| re.is_match(actual)),
                    Operator::IsEmpty => actual.is_empty(),
                    Operator::IsNotEmpty => !actual.is_empty(),
                    Operator::EqualsMediaType => any(&|v| media(actual) == media(v)),
                }
            }
        }
    }
}

// ---------------------------------------------------------------------------------
// YAML with line numbers
// ---------------------------------------------------------------------------------

/// A YAML node and the line it starts on.
#[derive(Clone, Debug)]
struct Node {
    line: usize,
    kind: Kind,
}

#[derive(Clone, Debug)]
enum Kind {
    Null,
    Bool(bool),
    Integer(i64),
    Text(String),
    List(Vec<Node>),
    Map(Vec<(String, Node)>),
}

/// Builds [`Node`]s from the parser's events.
#[derive(Default)]
struct Builder {
    stack: Vec<(Node, Option<String>)>,
    done: Option<Node>,
    error: Option<RouteError>,
}

impl Builder {
    fn push_value(&mut self, node: Node) {
        match self.stack.last_mut() {
            None => self.done = Some(node),
            Some((parent, pending_key)) => match &mut parent.kind {
                Kind::List(items) => items.push(node),
                Kind::Map(entries) => match pending_key.take() {
                    Some(key) => entries.push((key, node)),
                    None => match node.kind {
                        Kind::Text(key) => *pending_key = Some(key),
                        Kind::Integer(n) => *pending_key = Some(n.to_string()),
                        Kind::Bool(b) => *pending_key = Some(b.to_string()),
                        Kind::Null => *pending_key = Some("null".to_owned()),
                        Kind::List(_) | Kind::Map(_) => {
                            self.error.get_or_insert(RouteError {
                                line: Some(node.line),
                                field: "(key)".to_owned(),
                                message: "a key must be a plain value".to_owned(),
                            });
                        }
                    },
                },
                _ => unreachable!("only lists and maps are pushed on the stack"),
            },
        }
    }
}

impl MarkedEventReceiver for Builder {
    fn on_event(&mut self, event: Event, mark: Marker) {
        let line = mark.line();
        match event {
            Event::Scalar(text, style, _, _) => {
                let kind = match style {
                    TScalarStyle::Plain => plain(text),
                    _ => Kind::Text(text),
                };
                self.push_value(Node { line, kind });
            }
            Event::SequenceStart(..) => self.stack.push((
                Node {
                    line,
                    kind: Kind::List(Vec::new()),
                },
                None,
            )),
            Event::MappingStart(..) => self.stack.push((
                Node {
                    line,
                    kind: Kind::Map(Vec::new()),
                },
                None,
            )),
            Event::SequenceEnd | Event::MappingEnd => {
                if let Some((node, _)) = self.stack.pop() {
                    self.push_value(node);
                }
            }
            Event::Alias(_) => {
                self.error.get_or_insert(RouteError {
                    line: Some(line),
                    field: "(alias)".to_owned(),
                    message: "YAML aliases are not supported in route files; write the value out"
                        .to_owned(),
                });
            }
            Event::Nothing
            | Event::StreamStart
            | Event::StreamEnd
            | Event::DocumentStart
            | Event::DocumentEnd => {}
        }
    }
}

/// YAML 1.2 core-schema resolution of a plain scalar.
fn plain(text: String) -> Kind {
    match text.as_str() {
        "" | "~" | "null" | "Null" | "NULL" => Kind::Null,
        "true" | "True" | "TRUE" => Kind::Bool(true),
        "false" | "False" | "FALSE" => Kind::Bool(false),
        _ => match text.parse::<i64>() {
            Ok(n) => Kind::Integer(n),
            Err(_) => Kind::Text(text),
        },
    }
}

fn load(text: &str) -> Result<Node, RouteError> {
    let mut builder = Builder::default();
    Parser::new_from_str(text)
        .load(&mut builder, false)
        .map_err(|e| RouteError {
            line: Some(e.marker().line()),
            field: "(file)".to_owned(),
            message: format!("not valid YAML or JSON: {}", e.info()),
        })?;
    if let Some(error) = builder.error {
        return Err(error);
    }
    builder.done.ok_or_else(|| RouteError {
        line: None,
        field: "(file)".to_owned(),
        message: "the file is empty; give `data:` (a list of routes) and `version: 1`".to_owned(),
    })
}

// ---------------------------------------------------------------------------------
// The route file's shape
// ---------------------------------------------------------------------------------

/// A node being read, with its path for errors.
struct At<'a> {
    node: &'a Node,
    path: String,
}

impl<'a> At<'a> {
    fn error(&self, message: impl Into<String>) -> RouteError {
        RouteError {
            line: Some(self.node.line),
            field: self.path.clone(),
            message: message.into(),
        }
    }

    fn get(&self, key: &str) -> Option<At<'a>> {
        match &self.node.kind {
            // The last of repeated keys wins, as in PyYAML (what vgs-cli reads with).
            Kind::Map(entries) => entries
                .iter()
                .rev()
                .find(|(k, _)| k == key)
                .filter(|(_, v)| !matches!(v.kind, Kind::Null))
                .map(|(_, node)| At {
                    node,
                    path: join(&self.path, key),
                }),
            _ => None,
        }
    }

    fn require(&self, key: &str, what: &str) -> Result<At<'a>, RouteError> {
        self.get(key).ok_or_else(|| RouteError {
            line: Some(self.node.line),
            field: join(&self.path, key),
            message: format!("is required: {what}"),
        })
    }

    fn text(&self) -> Result<&'a str, RouteError> {
        match &self.node.kind {
            Kind::Text(text) => Ok(text),
            _ => Err(self.error("must be a string")),
        }
    }

    fn list(&self) -> Result<Vec<At<'a>>, RouteError> {
        match &self.node.kind {
            Kind::List(items) => Ok(items
                .iter()
                .enumerate()
                .map(|(i, node)| At {
                    node,
                    path: format!("{}[{i}]", self.path),
                })
                .collect()),
            _ => Err(self.error("must be a list")),
        }
    }

    /// A string, or a list of strings.
    fn texts(&self) -> Result<Vec<String>, RouteError> {
        match &self.node.kind {
            Kind::Text(text) => Ok(vec![text.clone()]),
            Kind::List(_) => self
                .list()?
                .iter()
                .map(|item| item.text().map(str::to_owned))
                .collect(),
            _ => Err(self.error("must be a string or a list of strings")),
        }
    }

    fn is_map(&self) -> bool {
        matches!(self.node.kind, Kind::Map(_))
    }
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_owned()
    } else {
        format!("{path}.{key}")
    }
}

fn parse_file(root: &Node) -> Result<RouteFile, RouteError> {
    let file = At {
        node: root,
        path: String::new(),
    };
    if !file.is_map() {
        return Err(file.error("a route file is a mapping with `data` and `version: 1`"));
    }
    let version = file.require("version", "1")?;
    let one = match &version.node.kind {
        Kind::Integer(1) => true,
        // `1.0` is 1 to JSON Schema's `const: 1`, which vgs-cli validates with.
        Kind::Text(text) => text.parse::<f64>().is_ok_and(|v| v == 1.0),
        _ => false,
    };
    if !one {
        return Err(version.error("must be 1 (the route file format vgs-cli writes)"));
    }
    let data = file.require("data", "the list of routes")?;
    let mut routes = Vec::new();
    for route in data.list()? {
        routes.push(parse_route(&route)?);
    }
    Ok(RouteFile { routes })
}

fn parse_route(route: &At<'_>) -> Result<ProxyRoute, RouteError> {
    if !route.is_map() {
        return Err(route.error("a route is a mapping with `type: rule_chain` and `attributes`"));
    }
    let kind = route.require("type", "rule_chain")?;
    if kind.text()? != "rule_chain" {
        return Err(kind.error("must be rule_chain (the only route type)"));
    }
    let id = route
        .get("id")
        .map(|id| id.text().map(str::to_owned))
        .transpose()?;
    let attributes = route.require("attributes", "the route's settings")?;
    let protocol = attributes.require("protocol", "http or https")?;
    if !protocol.text()?.eq_ignore_ascii_case("http")
        && !protocol.text()?.eq_ignore_ascii_case("https")
    {
        return Err(protocol.error("must be http or https (the proxies speak HTTP)"));
    }
    let destination = attributes.get("destination_override_endpoint");
    let direction = match destination.as_ref().map(At::text).transpose()? {
        None | Some("*") => Direction::Outbound,
        Some(url) => {
            let parsed = reqwest::Url::parse(url).map_err(|e| {
                destination
                    .as_ref()
                    .map(|d| d.error(format!("`{url}` is not a URL ({e}); give the upstream, e.g. https://api.example.com, or '*' for an outbound route")))
                    .expect("present")
            })?;
            if !matches!(parsed.scheme(), "http" | "https") {
                return Err(destination
                    .as_ref()
                    .map(|d| d.error("the upstream must be an http or https URL"))
                    .expect("present"));
            }
            Direction::Inbound(parsed)
        }
    };
    let host = match attributes.get("host_endpoint") {
        None => None,
        Some(host) => match host.text()? {
            "*" | "" => None,
            pattern => Some(whole(pattern).map_err(|e| {
                host.error(format!(
                    "`{pattern}` is not a regular expression the mock can use: {e}"
                ))
            })?),
        },
    };
    // Tags are free-form (the schema allows anything there): a name only if a string.
    let name = attributes
        .get("tags")
        .and_then(|tags| tags.get("name"))
        .and_then(|name| name.text().ok().map(str::to_owned));
    let entries = attributes.require("entries", "the route's filters (may be empty)")?;
    let mut filters = Vec::new();
    for entry in entries.list()? {
        filters.push(parse_filter(&entry)?);
    }
    Ok(ProxyRoute {
        id,
        name,
        direction,
        host,
        filters,
    })
}

/// A regex that must match the whole text.
fn whole(pattern: &str) -> Result<Regex, regex::Error> {
    Regex::new(&format!("^(?:{pattern})$"))
}

fn parse_filter(entry: &At<'_>) -> Result<Filter, RouteError> {
    if !entry.is_map() {
        return Err(entry.error("a filter is a mapping (phase, operation, transformer, …)"));
    }
    let phase = entry.require("phase", "REQUEST or RESPONSE")?;
    let phase = match phase.text()?.to_ascii_uppercase().as_str() {
        "REQUEST" => Phase::Request,
        "RESPONSE" => Phase::Response,
        other => {
            return Err(phase.error(format!(
                "`{other}` is not a phase: give REQUEST or RESPONSE"
            )));
        }
    };
    let operation = entry.require("operation", "REDACT or REVEAL")?;
    let operation = match operation.text()?.to_ascii_uppercase().as_str() {
        "REDACT" => Operation::Redact,
        "REVEAL" | "ENRICH" => Operation::Reveal,
        other => {
            return Err(operation.error(format!(
                "`{other}` is not an operation the mock can honour: give REDACT or REVEAL (ENRICH in older files)"
            )));
        }
    };
    let storage = match entry.get("token_manager") {
        None => Storage::Persistent,
        Some(manager) => Storage::parse(&manager.text()?.to_ascii_uppercase())
            .ok_or_else(|| manager.error("must be PERSISTENT or VOLATILE"))?,
    };
    let format = match entry.get("public_token_generator") {
        None => AliasFormat::Uuid,
        Some(generator) => {
            let name = generator.text()?.to_ascii_uppercase();
            if name == "CUSTOM" || name == "JS" {
                return Err(generator.error(format!(
                    "`{name}` is a vault-defined format the mock cannot generate: give a built-in one such as UUID or FPE_SIX_T_FOUR"
                )));
            }
            AliasFormat::parse(&name).ok_or_else(|| {
                generator.error(format!(
                    "`{name}` is not an alias format (UUID, FPE_SIX_T_FOUR, …)"
                ))
            })?
        }
    };
    if let Some(targets) = entry.get("targets") {
        for target in targets.texts()? {
            if !target.eq_ignore_ascii_case("body") {
                return Err(targets.error(format!(
                    "target `{target}` is not one the mock can honour: it transforms the body only"
                )));
            }
        }
    }
    let transformer_name = entry.require("transformer", "JSON_PATH, FORM_FIELD or REGEX")?;
    let config = entry.require(
        "transformer_config",
        "what the transformer selects, e.g. $.card.number",
    )?;
    let values = config.texts()?;
    let transformer = match transformer_name.text()?.to_ascii_uppercase().as_str() {
        "JSON_PATH" => Transformer::JsonPath(
            values
                .iter()
                .map(|path| {
                    JsonPath::parse(path).map_err(|why| {
                        config.error(format!(
                            "`{path}` is not a JSON path the mock can use: {why}"
                        ))
                    })
                })
                .collect::<Result<_, _>>()?,
        ),
        "FORM_FIELD" => Transformer::FormField(values),
        "REGEX" => Transformer::Regex(
            values
                .iter()
                .map(|pattern| {
                    Regex::new(pattern).map_err(|e| config.error(format!("`{pattern}`: {e}")))
                })
                .collect::<Result<_, _>>()?,
        ),
        other => {
            return Err(transformer_name.error(format!(
                "`{other}` is not a transformer the mock can honour: give JSON_PATH, FORM_FIELD or REGEX"
            )));
        }
    };
    let condition = entry
        .get("config")
        .map(|config| parse_condition(&config))
        .transpose()?
        .flatten();
    Ok(Filter {
        phase,
        operation,
        storage,
        format,
        transformer,
        condition,
    })
}

/// `{condition: AND|OR, rules: [...]}` or `{expression: {field, operator, values}}`;
/// `None` when it says nothing (an empty config).
fn parse_condition(node: &At<'_>) -> Result<Option<Condition>, RouteError> {
    if !node.is_map() {
        return Err(
            node.error("a condition is a mapping with `condition` and `rules`, or `expression`")
        );
    }
    if let Some(expression) = node.get("expression") {
        return parse_expression(&expression).map(Some);
    }
    let Some(rules) = node.get("rules") else {
        return Ok(None);
    };
    let mut parsed = Vec::new();
    for rule in rules.list()? {
        if let Some(condition) = parse_condition(&rule)? {
            parsed.push(condition);
        }
    }
    let combine = match node.get("condition") {
        None => "AND".to_owned(),
        Some(c) => c.text()?.to_ascii_uppercase(),
    };
    match combine.as_str() {
        "AND" => Ok(Some(Condition::All(parsed))),
        "OR" => Ok(Some(Condition::Any(parsed))),
        other => Err(node
            .require("condition", "")
            .map(|c| c.error(format!("`{other}` is not AND or OR")))
            .unwrap_or_else(|e| e)),
    }
}

fn parse_expression(expression: &At<'_>) -> Result<Condition, RouteError> {
    let field_node = expression.require("field", "PathInfo, ContentType, HttpMethod or Status")?;
    let field = match field_node
        .text()?
        .replace([' ', '_', '-'], "")
        .to_ascii_lowercase()
        .as_str()
    {
        "pathinfo" | "path" => Field::PathInfo,
        "contenttype" => Field::ContentType,
        "httpmethod" | "method" => Field::HttpMethod,
        "status" => Field::Status,
        _ => {
            return Err(field_node.error(format!(
                "`{}` is not a field the mock can test: give PathInfo, ContentType, HttpMethod or Status",
                field_node.text()?
            )));
        }
    };
    let values = match expression.get("values") {
        Some(values) => values.texts()?,
        None => Vec::new(),
    };
    let operator_node = expression.require("operator", "equals, begins_with, matches, …")?;
    let operator = match operator_node
        .text()?
        .replace([' ', '-'], "_")
        .to_ascii_lowercase()
        .as_str()
    {
        "equals" => Operator::Equals,
        "not_equals" | "does_not_equal" => Operator::NotEquals,
        "begins_with" | "beginswith" => Operator::BeginsWith,
        "not_begins_with" | "does_not_begin_with" => Operator::NotBeginsWith,
        "ends_with" | "endswith" => Operator::EndsWith,
        "not_ends_with" | "does_not_end_with" => Operator::NotEndsWith,
        "in" | "contains" => Operator::Contains,
        "not_in" | "not_contains" => Operator::NotContains,
        "matches" => Operator::Matches(
            values
                .iter()
                .map(|v| {
                    whole(v).map_err(|e| {
                        operator_node.error(format!("`{v}` is not a regular expression: {e}"))
                    })
                })
                .collect::<Result<_, _>>()?,
        ),
        "is_empty" => Operator::IsEmpty,
        "is_not_empty" => Operator::IsNotEmpty,
        "equals_media_type" | "media_type_equals" => Operator::EqualsMediaType,
        other => {
            return Err(operator_node.error(format!(
                "`{other}` is not an operator the mock can honour: give equals, does_not_equal, begins_with, does_not_begin_with, ends_with, does_not_end_with, in, not_in, matches, is_empty, is_not_empty or equals_media_type"
            )));
        }
    };
    Ok(Condition::Test {
        field,
        operator,
        values,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEMPLATE: &str =
        include_str!("../../../fixtures/routes/vgs-cli-http-route-template.yaml");

    #[test]
    fn vgs_clis_route_template_parses() {
        let file = RouteFile::parse(TEMPLATE).expect("template");
        assert_eq!(file.len(), 1);
        let route = &file.routes[0];
        assert!(
            matches!(&route.direction, Direction::Inbound(url) if url.as_str() == "https://example.com/")
        );
        assert_eq!(route.name.as_deref(), Some("Display name of route here"));
        let filter = &route.filters[0];
        assert_eq!(filter.phase, Phase::Request);
        assert_eq!(filter.operation, Operation::Redact);
        assert!(matches!(&filter.transformer, Transformer::JsonPath(paths) if paths.len() == 1));
        let facts = |path, content_type| Facts {
            path,
            method: "POST",
            content_type,
            status: None,
        };
        let condition = filter.condition.as_ref().expect("condition");
        assert!(condition.holds(&facts("/post", "application/json")));
        assert!(!condition.holds(&facts("/post", "text/plain")));
        assert!(!condition.holds(&facts("/posts", "application/json")));
    }

    #[test]
    fn json_route_files_parse_like_yaml() {
        let json = r#"{"version": 1, "data": [{"type": "rule_chain", "attributes": {
            "protocol": "HTTP", "destination_override_endpoint": "*", "host_endpoint": "api\\.processor\\.test",
            "entries": [{"phase": "REQUEST", "operation": "ENRICH", "token_manager": "VOLATILE",
                         "transformer": "JSON_PATH", "transformer_config": ["$.card.cvc"], "targets": ["body"]}]}}]}"#;
        let file = RouteFile::parse(json).expect("json");
        let route = &file.routes[0];
        assert!(matches!(route.direction, Direction::Outbound));
        assert!(route.serves("api.processor.test") && !route.serves("api.processor.test.evil"));
        assert_eq!(route.filters[0].operation, Operation::Reveal);
        assert_eq!(route.filters[0].storage, Storage::Volatile);
    }

    #[test]
    fn what_the_schema_accepts_is_accepted() {
        // vgs-cli's schema: version 1, data of {type: rule_chain, attributes:
        // {protocol, destination_override_endpoint, entries}}, nullable endpoints,
        // extra properties allowed, an id, any protocol case.
        for text in [
            "version: 1\ndata: []\n",
            "version: 1.0\ndata: []\n",
            "version: 1\ndata:\n- type: rule_chain\n  attributes:\n    protocol: http\n    destination_override_endpoint: '*'\n    tags: {name: [not, a, string], source: RouteContainer}\n    entries:\n    - {phase: request, operation: reveal, public_token_generator: uuid, transformer: json_path, transformer_config: $.a}\n",
            "version: 1\ndata:\n- type: rule_chain\n  attributes:\n    protocol: HTTPS\n    destination_override_endpoint: null\n    entries: []\n",
            "version: 1\ndata:\n- id: 3f1a\n  type: rule_chain\n  extra: yes\n  attributes:\n    protocol: http\n    source_endpoint: null\n    host_endpoint: null\n    destination_override_endpoint: http://127.0.0.1:9\n    port: 80\n    ordinal: null\n    tags: {}\n    anything: [1, 2]\n    entries: []\n",
        ] {
            RouteFile::parse(text).unwrap_or_else(|e| panic!("{e}\n{text}"));
        }
    }

    #[test]
    fn refusals_name_the_line_and_the_field() {
        let cases = [
            ("version: 2\ndata: []\n", 1, "version", "must be 1"),
            ("version: 1\n", 1, "data", "is required"),
            (
                "version: 1\ndata:\n- type: route\n  attributes: {}\n",
                3,
                "data[0].type",
                "rule_chain",
            ),
            (
                "version: 1\ndata:\n- type: rule_chain\n  attributes:\n    protocol: ftp\n    entries: []\n",
                5,
                "data[0].attributes.protocol",
                "http or https",
            ),
            (
                "version: 1\ndata:\n- type: rule_chain\n  attributes:\n    protocol: http\n    destination_override_endpoint: '*'\n    entries:\n    - phase: REQUEST\n      operation: ENCRYPT\n      transformer: JSON_PATH\n      transformer_config: [$.a]\n",
                9,
                "data[0].attributes.entries[0].operation",
                "REDACT or REVEAL",
            ),
            (
                "version: 1\ndata:\n- type: rule_chain\n  attributes:\n    protocol: http\n    entries:\n    - phase: REQUEST\n      operation: REDACT\n      transformer: XML\n      transformer_config: [a]\n",
                9,
                "data[0].attributes.entries[0].transformer",
                "JSON_PATH, FORM_FIELD or REGEX",
            ),
            (
                "version: 1\ndata:\n- type: rule_chain\n  attributes:\n    protocol: http\n    entries:\n    - phase: REQUEST\n      operation: REDACT\n      transformer: JSON_PATH\n      transformer_config: [card.number]\n",
                10,
                "data[0].attributes.entries[0].transformer_config",
                "JSON path",
            ),
            (
                "version: 1\ndata:\n- type: rule_chain\n  attributes:\n    protocol: http\n    entries:\n    - phase: REQUEST\n      operation: REDACT\n      transformer: JSON_PATH\n      transformer_config: [$.a]\n      targets: [header]\n",
                11,
                "data[0].attributes.entries[0].targets",
                "body only",
            ),
            (
                "version: 1\ndata:\n- type: rule_chain\n  attributes:\n    protocol: http\n    entries:\n    - phase: REQUEST\n      operation: REDACT\n      transformer: JSON_PATH\n      transformer_config: [$.a]\n      config:\n        expression: {field: Cookie, operator: equals, values: [x]}\n",
                12,
                "data[0].attributes.entries[0].config.expression.field",
                "PathInfo, ContentType",
            ),
            ("version: 1\ndata: [\n", 3, "(file)", "not valid YAML"),
            (
                "version: 1\ndata:\n- type: rule_chain\n  attributes:\n    protocol: http\n    entries:\n    - phase: REQUEST\n      operation: REDACT\n      public_token_generator: CUSTOM\n      transformer: JSON_PATH\n      transformer_config: [$.a]\n",
                9,
                "data[0].attributes.entries[0].public_token_generator",
                "vault-defined format",
            ),
        ];
        for (text, line, field, says) in cases {
            let error = RouteFile::parse(text).expect_err(text);
            assert_eq!(error.field, field, "{error}");
            assert_eq!(error.line, Some(line), "{error}");
            assert!(error.message.contains(says), "{error}");
            assert!(
                error
                    .to_string()
                    .starts_with(&format!("line {line}: {field}: "))
            );
        }
    }

    #[test]
    fn conditions_combine_and_compare() {
        let text = "version: 1\ndata:\n- type: rule_chain\n  attributes:\n    protocol: http\n    entries:\n    - phase: RESPONSE\n      operation: REVEAL\n      transformer: REGEX\n      transformer_config: 'tok_[a-z]+'\n      config:\n        condition: OR\n        rules:\n        - expression: {field: PathInfo, operator: begins_with, values: [/pay]}\n        - expression: {field: Status, operator: equals, values: ['201']}\n        - expression: {field: ContentType, operator: equals_media_type, values: [application/json]}\n";
        let file = RouteFile::parse(text).expect("parses");
        let condition = file.routes[0].filters[0]
            .condition
            .clone()
            .expect("condition");
        let facts = |path, content_type, status| Facts {
            path,
            method: "GET",
            content_type,
            status,
        };
        assert!(condition.holds(&facts("/payments", "", None)));
        assert!(condition.holds(&facts("/x", "", Some(201))));
        assert!(condition.holds(&facts("/x", "Application/JSON; charset=utf-8", None)));
        assert!(!condition.holds(&facts("/x", "text/html", Some(200))));
    }
}
