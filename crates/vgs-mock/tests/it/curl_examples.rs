//! The curl examples (`x-codeSamples`) of an API description, translated to the served
//! mock's address and sent with reqwest: same method, path, query, headers and body.
//! The mock's own description's always run; VGS's official spec's in `official.rs`.

use std::collections::HashMap;

use axum::http::Method;
use serde_json::{Value, json};
use vgs_mock::{DEMO_V1_PASSWORD, DEMO_V1_USERNAME, MockConfig};

use crate::spec::{Spec, spec};
use crate::support::check_shape;

/// The spec's sandbox host, replaced by the mock's base URL.
const SPEC_HOST: &str = "https://api.sandbox.verygoodvault.com";

/// One curl command line.
#[derive(Debug, Default)]
struct Curl {
    method: Option<String>,
    url: String,
    user: Option<String>,
    headers: Vec<(String, String)>,
    data: Option<String>,
}

/// Splits a shell command into words: quotes, and backslash-newline continuations.
/// A backslash followed only by spaces before the newline (as in the batch-delete
/// example, a typo that would end the command in a real shell) also continues.
fn shell_words(source: &str) -> Vec<String> {
    let mut joined = String::new();
    for line in source.lines() {
        let trimmed = line.trim_end();
        match trimmed.strip_suffix('\\') {
            Some(head) => {
                joined.push_str(head);
                joined.push(' ');
            }
            None => {
                joined.push_str(trimmed);
                joined.push('\n');
            }
        }
    }
    let mut words = Vec::new();
    let mut word = String::new();
    let mut in_word = false;
    let mut chars = joined.chars();
    while let Some(c) = chars.next() {
        match c {
            '\'' => {
                in_word = true;
                for c in chars.by_ref() {
                    if c == '\'' {
                        break;
                    }
                    word.push(c);
                }
            }
            '"' => {
                in_word = true;
                for c in chars.by_ref() {
                    if c == '"' {
                        break;
                    }
                    word.push(c);
                }
            }
            c if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut word));
                    in_word = false;
                }
            }
            c => {
                in_word = true;
                word.push(c);
            }
        }
    }
    if in_word {
        words.push(word);
    }
    words
}

fn parse_curl(source: &str) -> Curl {
    let words = shell_words(source);
    assert_eq!(words.first().map(String::as_str), Some("curl"), "{source}");
    let mut curl = Curl::default();
    let mut args = words.into_iter().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "-X" | "--request" => curl.method = args.next(),
            "-u" | "--user" => curl.user = args.next(),
            "-H" | "--header" => {
                let header = args.next().expect("header value");
                let (name, value) = header.split_once(':').expect("Name: value");
                curl.headers
                    .push((name.trim().to_owned(), value.trim().to_owned()));
            }
            "-d" | "--data" => curl.data = args.next(),
            "-v" | "--verbose" => {}
            other if other.starts_with('-') => panic!("unhandled curl flag {other}"),
            url => curl.url = url.to_owned(),
        }
    }
    curl
}

/// Every (path, method, curl source) of `spec`.
fn samples(spec: &Spec) -> Vec<(String, String, String)> {
    let mut out = Vec::new();
    for (path, item) in spec.paths() {
        for (method, operation) in item.as_object().unwrap() {
            for sample in operation
                .get("x-codeSamples")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                let source = sample["source"].as_str().unwrap().to_owned();
                out.push((path.clone(), method.to_ascii_uppercase(), source));
            }
        }
    }
    out
}

#[test]
fn the_curl_parser_reads_the_spec_examples() {
    parser_reads_the_examples(spec());
}

/// The parser understands every example of `spec`: one per v1 operation.
pub(crate) fn parser_reads_the_examples(spec: &Spec) {
    let all = samples(spec);
    assert_eq!(all.len(), 6, "one example per operation");
    let create = all
        .iter()
        .find(|(path, method, _)| path == "/aliases" && method == "POST")
        .unwrap();
    let curl = parse_curl(&create.2);
    assert_eq!(curl.method.as_deref(), Some("POST"));
    assert_eq!(curl.user.as_deref(), Some("$USERNAME:$PASSWORD"));
    assert_eq!(curl.url, format!("{SPEC_HOST}/aliases"));
    let body: Value = serde_json::from_str(curl.data.as_deref().unwrap()).unwrap();
    assert_eq!(body["data"][0]["storage"], "VOLATILE");
}

#[tokio::test]
async fn the_spec_curl_examples_succeed_against_the_served_mock() {
    examples_succeed_against_the_served_mock(spec()).await;
}

/// Runs every curl example of `spec` against a served demo mock; each succeeds and
/// its answer follows the mock's own description.
pub(crate) async fn examples_succeed_against_the_served_mock(spec: &Spec) {
    let mock = vgs_mock::start(MockConfig::demo()).await.unwrap();
    let client = reqwest::Client::builder().no_proxy().build().unwrap();
    let base = mock.base_url().to_owned();

    // Data the examples refer to: two persistent aliases, and one volatile alias for
    // the batch-delete example (which names `tok_whjuj6F8r3f2KeCpY7RPCE`).
    let created = mock_create(
        &client,
        &base,
        json!({"data": [
            {"value": "476673481", "classifiers": ["bank-account"], "format": "UUID"},
            {"value": "750360025", "classifiers": ["bank-account"], "format": "UUID"},
            {"value": "123", "format": "UUID", "storage": "VOLATILE"},
        ]}),
    )
    .await;
    let placeholders: HashMap<&str, &str> = HashMap::from([
        ("{{alias}}", created[0].as_str()),
        ("{{alias1}}", created[0].as_str()),
        ("{{alias2}}", created[1].as_str()),
        ("tok_whjuj6F8r3f2KeCpY7RPCE", created[2].as_str()),
    ]);
    let substitute = |text: &str| {
        let mut text = text.replace(SPEC_HOST, &base);
        for (from, to) in &placeholders {
            text = text.replace(from, to);
        }
        text
    };

    // Run the delete example last: it removes the alias the others read.
    let mut all = samples(spec);
    all.sort_by_key(|(path, method, _)| (method == "DELETE", path.clone()));
    for (path, method, source) in all {
        let curl = parse_curl(&source);
        let http_method = curl
            .method
            .clone()
            .unwrap_or_else(|| if curl.data.is_some() { "POST" } else { "GET" }.to_owned());
        assert_eq!(
            http_method, method,
            "the example of {method} {path} uses {http_method}"
        );
        let url = substitute(&curl.url);
        let mut request = client.request(Method::from_bytes(http_method.as_bytes()).unwrap(), &url);
        if let Some(user) = &curl.user {
            assert_eq!(user, "$USERNAME:$PASSWORD");
            request = request.basic_auth(DEMO_V1_USERNAME, Some(DEMO_V1_PASSWORD));
        }
        for (name, value) in &curl.headers {
            request = request.header(name.as_str(), value.as_str());
        }
        if let Some(data) = &curl.data {
            request = request.body(substitute(data));
        }
        let response = request.send().await.unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        let body = response.bytes().await.unwrap();
        assert!(
            status.is_success(),
            "{method} {path} example answered {status}: {}",
            String::from_utf8_lossy(&body)
        );
        assert!(headers.contains_key("x-ratelimit-remaining"));
        let reply = crate::support::Reply {
            status,
            headers,
            body,
        };
        let uri_path = url.strip_prefix(&base).unwrap();
        let uri_path = uri_path.split('?').next().unwrap();
        check_shape(
            &Method::from_bytes(method.as_bytes()).unwrap(),
            uri_path,
            None,
            &reply,
        );
    }
    let stats = mock.stats();
    for route in vgs_mock::Route::ALL
        .into_iter()
        .skip(1)
        .filter(|r| !r.is_cmp() && !r.is_proxy())
    {
        assert!(stats.api_total(route) >= 1, "{route} example not run");
    }
    mock.stop().await;
}

async fn mock_create(client: &reqwest::Client, base: &str, body: Value) -> Vec<String> {
    let response = client
        .post(format!("{base}/aliases"))
        .basic_auth(DEMO_V1_USERNAME, Some(DEMO_V1_PASSWORD))
        .header("content-type", "application/json")
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    let json: Value = serde_json::from_slice(&response.bytes().await.unwrap()).unwrap();
    json["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|item| item["aliases"][0]["alias"].as_str().unwrap().to_owned())
        .collect()
}
