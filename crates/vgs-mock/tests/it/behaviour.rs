//! Behaviour across operations: vault isolation, fingerprinting (on and off), deleting
//! one alias of a value, reveal disabled, the SDKs' `q` parameter, storage selection,
//! VOLATILE expiry on the injected clock, per-vault rate limiting, per-vault counts.

use std::time::Duration;

use axum::http::{Method, StatusCode};
use serde_json::json;
use vgs_mock::{AliasFormat, DEMO_VAULT_ID, MockClock, MockConfig, Storage};

use crate::support::{Mock, OTHER_PASSWORD, OTHER_USER, OTHER_VAULT, basic, epoch, item};

#[tokio::test]
async fn an_alias_of_vault_a_is_not_found_in_vault_b() {
    let mock = Mock::demo();
    let alias = mock.create_one("only-in-demo").await;
    let other = basic(OTHER_USER, OTHER_PASSWORD);
    let reply = mock
        .call(
            Method::GET,
            &format!("/aliases/{alias}"),
            Some(&other),
            None,
        )
        .await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND);

    let token = mock.token(None).await;
    let reply = mock
        .v2(
            OTHER_VAULT,
            &token,
            Method::GET,
            &format!("/aliases/{alias}"),
            None,
        )
        .await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND);
    let reply = mock
        .v2(
            OTHER_VAULT,
            &token,
            Method::DELETE,
            &format!("/aliases/{alias}"),
            None,
        )
        .await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND);
    assert!(mock.state.record(DEMO_VAULT_ID, &alias).is_some());
    assert!(mock.state.record(OTHER_VAULT, &alias).is_none());

    // The same value in B is B's own record with its own alias.
    let reply = mock
        .call(
            Method::POST,
            "/aliases",
            Some(&other),
            Some(json!({"data": [item("only-in-demo", "UUID", "PERSISTENT")]})),
        )
        .await;
    assert_ne!(reply.aliases()[0], alias);
}

#[tokio::test]
async fn the_same_value_and_format_gets_the_same_alias_and_record() {
    let mock = Mock::demo();
    let first = mock
        .create(vec![
            item("4111111111111111", "FPE_SIX_T_FOUR", "PERSISTENT"),
            item("4111111111111111", "FPE_SIX_T_FOUR", "PERSISTENT"),
        ])
        .await;
    assert_eq!(first[0], first[1]);
    let again = mock
        .create(vec![item(
            "4111111111111111",
            "FPE_SIX_T_FOUR",
            "PERSISTENT",
        )])
        .await;
    assert_eq!(again[0], first[0]);
    assert_eq!(mock.state.record_count(DEMO_VAULT_ID), Some(1));

    // Another format: same record, a second alias, listed first in the answer.
    let reply = mock
        .v1(
            Method::POST,
            "/aliases",
            Some(json!({"data": [item("4111111111111111", "UUID", "PERSISTENT")]})),
        )
        .await;
    let aliases = reply.json()["data"][0]["aliases"].clone();
    assert_eq!(aliases[0]["format"], "UUID");
    assert_eq!(aliases[1]["alias"], first[0].as_str());
    assert_eq!(mock.state.record_count(DEMO_VAULT_ID), Some(1));
    let view = mock.state.record(DEMO_VAULT_ID, &first[0]).unwrap();
    assert_eq!(view.format, AliasFormat::FpeSixTFour);
    assert_eq!(view.aliases.len(), 2);
}

#[tokio::test]
async fn without_fingerprinting_every_create_is_a_new_record_and_alias() {
    let mock = Mock::new(MockConfig::demo().with_fingerprinting(false));
    let card = || item("4111111111111111", "FPE_SIX_T_FOUR", "PERSISTENT");
    let first = mock.create(vec![card(), card()]).await;
    let again = mock.create(vec![card()]).await;
    assert_ne!(first[0], first[1]);
    assert_ne!(again[0], first[0]);
    assert_eq!(mock.state.record_count(DEMO_VAULT_ID), Some(3));
    // Deleting one leaves the others' value in place.
    let reply = mock
        .v1(Method::DELETE, &format!("/aliases/{}", first[0]), None)
        .await;
    assert_eq!(reply.status, StatusCode::NO_CONTENT);
    let reply = mock
        .v1(Method::GET, &format!("/aliases/{}", first[1]), None)
        .await;
    assert_eq!(reply.json()["data"][0]["value"], "4111111111111111");
}

#[tokio::test]
async fn deleting_one_alias_of_a_value_keeps_its_other_aliases() {
    // VGS: "This will only delete the alias, if the underlying value has more than one
    // alias, the value is still retained in the vault until all associated aliases are
    // removed."
    let mock = Mock::demo();
    let six_four = mock
        .create(vec![item(
            "4111111111111111",
            "FPE_SIX_T_FOUR",
            "PERSISTENT",
        )])
        .await;
    let uuid = mock
        .create(vec![item("4111111111111111", "UUID", "PERSISTENT")])
        .await;
    let reply = mock
        .v1(Method::DELETE, &format!("/aliases/{}", six_four[0]), None)
        .await;
    assert_eq!(reply.status, StatusCode::NO_CONTENT);
    let gone = mock
        .v1(Method::GET, &format!("/aliases/{}", six_four[0]), None)
        .await;
    assert_eq!(gone.status, StatusCode::NOT_FOUND);
    let kept = mock
        .v1(Method::GET, &format!("/aliases/{}", uuid[0]), None)
        .await;
    assert_eq!(
        kept.json()["data"][0]["aliases"].as_array().unwrap().len(),
        1
    );
    assert_eq!(mock.state.record_count(DEMO_VAULT_ID), Some(1));
}

#[tokio::test]
async fn a_vault_without_reveal_answers_403_with_vgs_note_on_both_reveals() {
    let mock = Mock::new(crate::support::two_vaults().with_reveal(false));
    let alias = mock.create_one("secret-value").await;
    let token = mock.token(None).await;
    for reply in [
        mock.v1(Method::GET, &format!("/aliases/{alias}"), None)
            .await,
        mock.v1(Method::GET, &format!("/aliases?aliases={alias}"), None)
            .await,
        mock.v2(
            DEMO_VAULT_ID,
            &token,
            Method::GET,
            &format!("/aliases/{alias}"),
            None,
        )
        .await,
    ] {
        assert_eq!(reply.status, StatusCode::FORBIDDEN);
        assert_eq!(reply.detail(), vgs_mock::REVEAL_DISABLED);
        assert!(!reply.text().contains("secret-value"));
    }
    // Storing, updating and deleting still work.
    let reply = mock
        .v1(Method::DELETE, &format!("/aliases/{alias}"), None)
        .await;
    assert_eq!(reply.status, StatusCode::NO_CONTENT);
}

#[tokio::test]
async fn the_multi_reveal_also_takes_the_older_sdks_q_parameter() {
    let mock = Mock::demo();
    let aliases = mock
        .create(vec![
            item("a", "UUID", "PERSISTENT"),
            item("b", "UUID", "PERSISTENT"),
        ])
        .await;
    let reply = mock
        .v1(
            Method::GET,
            &format!("/aliases?q={},{}", aliases[0], aliases[1]),
            None,
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    assert_eq!(reply.json()["data"][&aliases[1]]["value"], "b");
    let both = mock
        .v1(
            Method::GET,
            &format!("/aliases?aliases={}&q={}", aliases[0], aliases[1]),
            None,
        )
        .await;
    assert_eq!(
        both.json()["data"].as_object().unwrap().len(),
        1,
        "`aliases` wins over `q`"
    );
}

#[tokio::test]
async fn storage_selects_the_store_and_defaults_to_persistent() {
    let mock = Mock::demo();
    let aliases = mock
        .create(vec![
            item("123", "UUID", "VOLATILE"),
            item("123", "UUID", "PERSISTENT"),
        ])
        .await;
    assert_ne!(aliases[0], aliases[1], "one record per storage");
    let volatile = &aliases[0];
    assert_eq!(
        mock.state.record(DEMO_VAULT_ID, volatile).unwrap().storage,
        Storage::Volatile
    );
    let reply = mock
        .v1(Method::GET, &format!("/aliases/{volatile}"), None)
        .await;
    assert_eq!(
        reply.status,
        StatusCode::NOT_FOUND,
        "default storage is PERSISTENT"
    );
    let reply = mock
        .v1(
            Method::GET,
            &format!("/aliases/{volatile}?storage=VOLATILE"),
            None,
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.json()["data"][0]["storage"], "VOLATILE");
    let reply = mock
        .v1(
            Method::GET,
            &format!("/aliases/{volatile}?storage=volatile"),
            None,
        )
        .await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    let reply = mock
        .v1(Method::DELETE, &format!("/aliases/{volatile}"), None)
        .await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND);
    let reply = mock
        .v1(
            Method::DELETE,
            &format!("/aliases/{volatile}?storage=VOLATILE"),
            None,
        )
        .await;
    assert_eq!(reply.status, StatusCode::NO_CONTENT);
}

#[tokio::test]
async fn volatile_records_expire_after_one_hour_on_the_mock_clock() {
    let mock = Mock::demo();
    let aliases = mock
        .create(vec![
            item("737", "UUID", "VOLATILE"),
            item("keep", "UUID", "PERSISTENT"),
        ])
        .await;
    let uri = format!("/aliases/{}?storage=VOLATILE", aliases[0]);
    mock.clock().advance(Duration::from_secs(3599));
    assert_eq!(
        mock.v1(Method::GET, &uri, None).await.status,
        StatusCode::OK
    );
    mock.clock().advance(Duration::from_secs(1));
    assert_eq!(
        mock.v1(Method::GET, &uri, None).await.status,
        StatusCode::NOT_FOUND
    );
    assert!(mock.state.record(DEMO_VAULT_ID, &aliases[0]).is_none());
    assert!(mock.state.record(DEMO_VAULT_ID, &aliases[1]).is_some());
    assert_eq!(mock.state.stats().records_stored, 1);

    // Stored again after expiry: a new record with a new alias.
    let again = mock.create(vec![item("737", "UUID", "VOLATILE")]).await;
    assert_ne!(again[0], aliases[0]);
}

fn limited(limit: Option<u32>) -> Mock {
    Mock::new(
        crate::support::two_vaults()
            .with_rate_limit_per_minute(limit)
            .with_clock(MockClock::manual_at(epoch())),
    )
}

#[tokio::test]
async fn the_rate_limit_answers_429_until_the_window_ends() {
    let mock = limited(Some(3));
    let get = || mock.v1(Method::GET, "/aliases/tok_x", None);
    let mut remaining = Vec::new();
    for _ in 0..3 {
        let reply = get().await;
        assert_eq!(reply.status, StatusCode::NOT_FOUND);
        remaining.push(reply.header("x-ratelimit-remaining").unwrap().to_owned());
    }
    assert_eq!(remaining, ["2", "1", "0"]);
    mock.clock().advance(Duration::from_secs(20));
    let reply = get().await;
    assert_eq!(reply.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(reply.header("x-ratelimit-remaining"), Some("0"));
    assert_eq!(reply.header("retry-after"), Some("40"));
    assert_eq!(reply.json()["errors"][0]["title"], "Too many requests");

    // v2 calls count against the same vault; another vault has its own budget.
    let token = mock.token(None).await;
    let reply = mock
        .v2(DEMO_VAULT_ID, &token, Method::GET, "/aliases/tok_x", None)
        .await;
    assert_eq!(reply.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(reply.json()["errors"][0]["code"], "too-many-requests");
    let reply = mock
        .v2(OTHER_VAULT, &token, Method::GET, "/aliases/tok_x", None)
        .await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND);

    mock.clock().advance(Duration::from_secs(40));
    let reply = get().await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND);
    assert_eq!(reply.header("x-ratelimit-remaining"), Some("2"));
    let stats = mock.state.stats();
    assert_eq!(stats.vault(DEMO_VAULT_ID).rate_limited, 2);
    assert_eq!(stats.api_count(vgs_mock::Route::RevealAlias, 429), 2);
}

#[tokio::test]
async fn the_default_limit_is_3000_per_minute() {
    let mock = Mock::demo();
    for _ in 0..3000 {
        assert_eq!(
            mock.v1(Method::GET, "/aliases/tok_x", None).await.status,
            StatusCode::NOT_FOUND
        );
    }
    let reply = mock.v1(Method::GET, "/aliases/tok_x", None).await;
    assert_eq!(reply.status, StatusCode::TOO_MANY_REQUESTS);
}

#[tokio::test]
async fn a_lifted_limit_admits_everything_without_the_header() {
    let mock = limited(None);
    for _ in 0..3001 {
        let reply = mock.v1(Method::GET, "/aliases/tok_x", None).await;
        assert_eq!(reply.status, StatusCode::NOT_FOUND);
        assert!(reply.header("x-ratelimit-remaining").is_none());
    }
    // And it can be set again at runtime.
    mock.state.set_rate_limit_per_minute(Some(1));
    assert_eq!(
        mock.v1(Method::GET, "/aliases/tok_x", None).await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        mock.v1(Method::GET, "/aliases/tok_x", None).await.status,
        StatusCode::TOO_MANY_REQUESTS
    );
}

#[tokio::test]
async fn insert_requests_are_counted_per_vault() {
    // 45 cards x 4 values = 180 values in 9 requests of 20.
    let mock = Mock::demo();
    let values: Vec<String> = (0..180).map(|i| format!("value-{i:03}")).collect();
    for chunk in values.chunks(20) {
        let items = chunk
            .iter()
            .map(|v| item(v, "UUID", "PERSISTENT"))
            .collect();
        mock.create(items).await;
    }
    let stats = mock.state.stats();
    let demo = stats.vault(DEMO_VAULT_ID);
    assert_eq!(demo.create_requests, 9);
    assert_eq!(demo.records_stored, 180);
    assert_eq!(demo.aliases_stored, 180);
    assert_eq!(stats.vault(crate::support::OTHER_VAULT).create_requests, 0);
    assert_eq!(stats.aliases_stored, 180);
}

#[tokio::test]
async fn error_bodies_never_echo_a_stored_value() {
    let mock = Mock::demo();
    let card = "4111111111111111";
    mock.create(vec![item(card, "UUID", "PERSISTENT")]).await;
    let replies = [
        mock.v1(
            Method::POST,
            "/aliases",
            Some(json!({"data": [item(card, "FPE_SSN_T_FOUR", "PERSISTENT")]})),
        )
        .await,
        mock.v1(
            Method::POST,
            "/aliases",
            Some(json!({"data": [item(card, "CUSTOM", "PERSISTENT")]})),
        )
        .await,
        mock.v1(Method::GET, &format!("/aliases/{card}"), None)
            .await,
    ];
    for (i, reply) in replies.iter().enumerate() {
        assert!(reply.status.is_client_error());
        assert!(!reply.detail().contains(card), "{}", reply.text());
        if i < 2 {
            assert!(!reply.text().contains(card), "{}", reply.text());
        }
    }
    // (A v1 error's `href` is the request URL, per the spec: a value a client puts
    // in its own URL comes back there, as from VGS.)
}

#[tokio::test]
async fn record_views_are_none_for_unknown_vaults_and_aliases() {
    let mock = Mock::new(MockConfig::demo());
    assert!(mock.state.record("tntnope", "tok_x").is_none());
    assert!(mock.state.record(DEMO_VAULT_ID, "tok_x").is_none());
    assert_eq!(mock.state.record_count("tntnope"), None);
}
