//! The JSON paths of route filters (`$.card.number`, `$.cards[*].cvc`, `$['a b'][0]`):
//! parsed once, then applied to a body's JSON to visit the values they select.

use serde_json::Value;

/// One step of a path.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Step {
    Key(String),
    Index(usize),
    /// `[*]` or `.*`: every element or member.
    Any,
}

/// A parsed JSON path.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct JsonPath {
    steps: Vec<Step>,
}

impl JsonPath {
    /// Parses `$` followed by `.name`, `.*`, `[n]`, `[*]`, `['name']` or `["name"]`
    /// steps; the reason for a refusal says which part is wrong.
    pub(crate) fn parse(text: &str) -> Result<JsonPath, String> {
        let rest = text
            .trim()
            .strip_prefix('$')
            .ok_or("it must start with `$` (the body's root)")?;
        let mut steps = Vec::new();
        let mut chars = rest.char_indices().peekable();
        while let Some((at, c)) = chars.next() {
            match c {
                '.' => {
                    let mut name = String::new();
                    while let Some((_, c)) = chars.peek() {
                        if *c == '.' || *c == '[' {
                            break;
                        }
                        name.push(*c);
                        chars.next();
                    }
                    match name.as_str() {
                        "" => return Err(format!("an empty name at position {}", at + 1)),
                        "*" => steps.push(Step::Any),
                        _ => steps.push(Step::Key(name)),
                    }
                }
                '[' => {
                    let mut inside = String::new();
                    let mut closed = false;
                    let mut quote = None;
                    for (_, c) in chars.by_ref() {
                        match (quote, c) {
                            (None, ']') => {
                                closed = true;
                                break;
                            }
                            (None, '\'' | '"') if inside.is_empty() => quote = Some(c),
                            (Some(q), c) if c == q => quote = None,
                            _ => inside.push(c),
                        }
                    }
                    if !closed {
                        return Err(format!("`[` at position {} is not closed", at + 1));
                    }
                    let inner = inside.trim();
                    let step = if inner == "*" {
                        Step::Any
                    } else if let Ok(index) = inner.parse::<usize>() {
                        Step::Index(index)
                    } else if rest[at..].starts_with("['") || rest[at..].starts_with("[\"") {
                        Step::Key(inside)
                    } else {
                        return Err(format!(
                            "`[{inside}]` is neither an index, `*`, nor a quoted name"
                        ));
                    };
                    steps.push(step);
                }
                other => {
                    return Err(format!(
                        "`{other}` at position {} where `.` or `[` was expected",
                        at + 1
                    ));
                }
            }
        }
        Ok(JsonPath { steps })
    }

    /// Calls `visit` with every value the path selects in `root`.
    pub(crate) fn for_each_mut(&self, root: &mut Value, visit: &mut dyn FnMut(&mut Value)) {
        walk(&self.steps, root, visit);
    }
}

fn walk(steps: &[Step], value: &mut Value, visit: &mut dyn FnMut(&mut Value)) {
    let Some((step, rest)) = steps.split_first() else {
        visit(value);
        return;
    };
    match (step, value) {
        (Step::Key(key), Value::Object(map)) => {
            if let Some(child) = map.get_mut(key) {
                walk(rest, child, visit);
            }
        }
        (Step::Index(i), Value::Array(items)) => {
            if let Some(child) = items.get_mut(*i) {
                walk(rest, child, visit);
            }
        }
        (Step::Any, Value::Array(items)) => items.iter_mut().for_each(|c| walk(rest, c, visit)),
        (Step::Any, Value::Object(map)) => map.values_mut().for_each(|c| walk(rest, c, visit)),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn selected(path: &str, doc: &Value) -> Vec<Value> {
        let mut doc = doc.clone();
        let mut out = Vec::new();
        JsonPath::parse(path)
            .expect("path")
            .for_each_mut(&mut doc, &mut |v| out.push(v.clone()));
        out
    }

    #[test]
    fn paths_select_what_they_name() {
        let doc = json!({"card": {"number": "4111", "cvc": 123},
                         "cards": [{"n": "a"}, {"n": "b"}], "odd key": ["x"]});
        assert_eq!(selected("$.card.number", &doc), [json!("4111")]);
        assert_eq!(selected("$.card.cvc", &doc), [json!(123)]);
        assert_eq!(selected("$.cards[*].n", &doc), [json!("a"), json!("b")]);
        assert_eq!(selected("$.cards[1].n", &doc), [json!("b")]);
        assert_eq!(selected("$['odd key'][0]", &doc), [json!("x")]);
        assert_eq!(selected("$[\"card\"].number", &doc), [json!("4111")]);
        assert_eq!(selected("$.card.*", &doc).len(), 2);
        assert!(selected("$.missing.number", &doc).is_empty());
        assert!(selected("$.cards[9].n", &doc).is_empty());
        assert_eq!(selected("$", &doc), std::slice::from_ref(&doc));
    }

    #[test]
    fn bad_paths_say_what_is_wrong() {
        for (path, says) in [
            ("card.number", "start with `$`"),
            ("$..a", "empty name"),
            ("$.a[0", "not closed"),
            ("$.a[x]", "neither an index"),
            ("$a", "where `.` or `[`"),
        ] {
            let error = JsonPath::parse(path).expect_err(path);
            assert!(error.contains(says), "{path}: {error}");
        }
    }
}
