//! The served mock: `start()` on loopback, the handle's URLs and credentials, the
//! full token -> v2 flow over a real socket, the stats endpoint, and `stop()`.

use serde_json::{Value, json};
use vgs_mock::{DEMO_CLIENT_ID, DEMO_CLIENT_SECRET, DEMO_VAULT_ID, MockConfig, Stats};

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("client")
}

#[tokio::test]
async fn start_serves_on_loopback_and_stop_closes_it() {
    let mock = vgs_mock::start(MockConfig::demo()).await.unwrap();
    assert!(mock.addr().ip().is_loopback());
    assert!(mock.base_url().starts_with("http://127.0.0.1:"));
    assert_eq!(mock.config().vaults[0].id, DEMO_VAULT_ID);
    let base = mock.base_url().to_owned();
    let client = client();

    // The whole v2 flow: token, then insert and reveal with the Bearer token.
    let token: Value = client
        .post(mock.token_url())
        .basic_auth(DEMO_CLIENT_ID, Some(DEMO_CLIENT_SECRET))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("grant_type=client_credentials")
        .send()
        .await
        .unwrap()
        .json_or_panic()
        .await;
    let token = token["access_token"].as_str().unwrap().to_owned();
    let created: Value = client
        .post(format!("{}/aliases", mock.v2_url(DEMO_VAULT_ID)))
        .bearer_auth(&token)
        .header("content-type", "application/json")
        .body(json!({"data": [{"value": "4111111111111111", "format": "FPE_SIX_T_FOUR", "storage": "PERSISTENT"}]}).to_string())
        .send()
        .await
        .unwrap()
        .json_or_panic()
        .await;
    let alias = created["data"][0]["aliases"][0]["alias"]
        .as_str()
        .unwrap()
        .to_owned();

    // Host-based v2 over the socket as well.
    let response = client
        .get(format!("{base}/aliases/{alias}"))
        .header(
            "host",
            format!("{DEMO_VAULT_ID}.sandbox.vault-api.verygoodvault.com"),
        )
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert!(response.headers().contains_key("x-ratelimit-remaining"));

    let over_http: Stats = client
        .get(format!("{base}/_mock/stats"))
        .send()
        .await
        .unwrap()
        .json_or_panic_typed()
        .await;
    assert_eq!(over_http, mock.stats());
    assert_eq!(over_http.token_successes, 1);
    assert_eq!(over_http.vault(DEMO_VAULT_ID).create_requests, 1);
    assert_eq!(
        mock.record(DEMO_VAULT_ID, &alias).unwrap().value,
        "4111111111111111"
    );

    mock.stop().await;
    let fresh = self::client();
    let after = fresh.get(format!("{base}/_mock/stats")).send().await;
    assert!(after.is_err(), "nothing listens after stop()");
}

#[tokio::test]
async fn two_mocks_are_independent() {
    let a = vgs_mock::start(MockConfig::demo()).await.unwrap();
    let b = vgs_mock::start(MockConfig::demo()).await.unwrap();
    assert_ne!(a.base_url(), b.base_url());
    let response = client()
        .post(format!("{}/aliases", a.base_url()))
        .basic_auth(vgs_mock::DEMO_V1_USERNAME, Some(vgs_mock::DEMO_V1_PASSWORD))
        .header("content-type", "application/json")
        .body(json!({"data": [{"value": "x", "format": "UUID"}]}).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    assert_eq!(a.record_count(DEMO_VAULT_ID), Some(1));
    assert_eq!(b.record_count(DEMO_VAULT_ID), Some(0));
}

#[tokio::test]
async fn the_handle_debug_hides_secrets() {
    let mock = vgs_mock::start(MockConfig::demo()).await.unwrap();
    let printed = format!("{mock:?}");
    assert!(printed.contains(mock.base_url()));
    assert!(!printed.contains(DEMO_CLIENT_SECRET));
    assert!(!printed.contains(vgs_mock::DEMO_V1_PASSWORD));
}

/// reqwest's `json` needs a feature this workspace does not enable; read text instead.
trait JsonBody {
    async fn json_or_panic(self) -> Value;
    async fn json_or_panic_typed<T: serde::de::DeserializeOwned>(self) -> T;
}

impl JsonBody for reqwest::Response {
    async fn json_or_panic(self) -> Value {
        self.json_or_panic_typed().await
    }

    async fn json_or_panic_typed<T: serde::de::DeserializeOwned>(self) -> T {
        let status = self.status();
        let text = self.text().await.expect("body");
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{status}: {e}: {text}"))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_clients_are_all_answered_and_counted() {
    let mock = vgs_mock::start(MockConfig::demo()).await.unwrap();
    let client = client();
    let mut tasks = tokio::task::JoinSet::new();
    for task in 0..8 {
        let client = client.clone();
        let url = format!("{}/aliases", mock.base_url());
        tasks.spawn(async move {
            for i in 0..25 {
                let body = json!({"data": [
                    {"value": format!("{task}-{i}"), "format": "UUID"},
                    {"value": "shared", "format": "UUID"},
                ]});
                let response = client
                    .post(&url)
                    .basic_auth(vgs_mock::DEMO_V1_USERNAME, Some(vgs_mock::DEMO_V1_PASSWORD))
                    .header("content-type", "application/json")
                    .body(body.to_string())
                    .send()
                    .await
                    .unwrap();
                assert_eq!(response.status(), 201);
            }
        });
    }
    while let Some(joined) = tasks.join_next().await {
        joined.unwrap();
    }
    let stats = mock.stats();
    assert_eq!(stats.vault(DEMO_VAULT_ID).create_requests, 200);
    // 200 distinct values plus one shared value fingerprinted to a single record.
    assert_eq!(mock.record_count(DEMO_VAULT_ID), Some(201));
}
