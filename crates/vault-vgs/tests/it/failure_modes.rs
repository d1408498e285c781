//! One test per row of docs/failure-modes.md: each failure is a typed `VaultError` with
//! safe attachments, retried when (and only when) retrying can help.

use std::time::Duration;

use serde_json::json;
use vault_core::{
    AliasFormat, ConnectorVaultId, ExternalVault, InsertRequest, ReportExt, RetrieveRequest,
    VaultError,
};
use vault_vgs::{Fingerprinting, RetryPolicy, Timeouts, VgsConnector};
use vgs_mock::{FailWith, MockConfig, Route};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::support::{DEMO_CLIENT_ID, builder, card, connector, mock, mock_with, token_body};

fn alias_id(alias: &str) -> ConnectorVaultId {
    ConnectorVaultId::Single {
        id: vault_core::Alias::new(alias).expect("alias"),
        cvc: None,
        cvc_expires_at: None,
    }
}

#[tokio::test]
async fn wrong_client_secret_is_invalid_credentials() {
    let mock = mock().await;
    let vault = builder(&mock)
        .credentials(DEMO_CLIENT_ID, "wrong-secret".to_owned().into())
        .build()
        .expect("connector");
    let err = vault
        .insert(InsertRequest::card(card()))
        .await
        .expect_err("bad secret");
    assert_eq!(err.kind(), VaultError::InvalidCredentials);
    assert!(!err.is_retryable());
    assert_eq!(err.http_status(), Some(401));
    assert_eq!(
        mock.stats().token_requests,
        1,
        "no retry storm on bad credentials"
    );
    assert_eq!(mock.stats().api_total(Route::CreateAliases), 0);
}

#[tokio::test]
async fn missing_scope_is_forbidden_and_named() {
    let mock =
        mock_with(MockConfig::demo().with_client("reader", "reader-secret", &["aliases:read"]))
            .await;
    let vault = builder(&mock)
        .credentials("reader", "reader-secret".to_owned().into())
        .build()
        .expect("connector");
    let err = vault
        .insert(InsertRequest::card(card()))
        .await
        .expect_err("no write scope");
    assert_eq!(err.kind(), VaultError::Forbidden);
    assert_eq!(err.http_status(), Some(403));
    assert!(
        err.details().iter().any(|d| d.contains("aliases:write")),
        "{:?}",
        err.details()
    );

    let asking = builder(&mock)
        .credentials("reader", "reader-secret".to_owned().into())
        .scopes(["aliases:write"])
        .build()
        .expect("connector");
    let err = asking
        .insert(InsertRequest::card(card()))
        .await
        .expect_err("scope not granted");
    assert_eq!(err.kind(), VaultError::Forbidden);
    assert!(
        err.details().iter().any(|d| d.contains("aliases:write")),
        "{:?}",
        err.details()
    );
}

#[tokio::test]
async fn a_vault_the_service_account_is_not_assigned_to_is_invalid_credentials_naming_it() {
    // VGS answers 401 (not 404) for a vault the service account is not assigned to,
    // and so for one that does not exist.
    let mock = mock_with(
        MockConfig::demo()
            .with_vault("tntother0002", "other-user", "other-pass")
            .with_client("narrow", "narrow-secret", &vgs_mock::ALIAS_SCOPES),
    )
    .await;
    let narrow = |vault: &str| {
        builder(&mock)
            .credentials("narrow", "narrow-secret".to_owned().into())
            .vault_id(vault)
            .build()
            .expect("connector")
    };
    // `narrow` reaches every vault (the mock's default) until restricted: use the
    // unknown vault and, for an existing one, a client assigned elsewhere.
    let err = narrow("tntunknown00")
        .insert(InsertRequest::card(card()))
        .await
        .expect_err("unknown vault");
    assert_eq!(err.kind(), VaultError::InvalidCredentials);
    assert_eq!(err.http_status(), Some(401));
    assert!(err.trace_id().is_some(), "v2 errors carry VGS's trace id");
    assert!(
        err.details()
            .iter()
            .any(|d| d.contains("not assigned to vault tntunknown00")),
        "{:?}",
        err.details()
    );
    assert!(
        err.summary().contains("assigned to this vault"),
        "the fix says what to check"
    );

    let restricted = mock_with(MockConfig::demo().with_vault("tntother0002", "u", "p")).await;
    restricted
        .state()
        .assign_client(crate::support::DEMO_CLIENT_ID, &["tntother0002"]);
    let err = connector(&restricted)
        .retrieve(RetrieveRequest::new(alias_id("tok_sandbox_x")))
        .await
        .expect_err("not assigned");
    assert_eq!(err.kind(), VaultError::InvalidCredentials);
    assert_eq!(
        restricted.stats().api_total(Route::RevealAlias),
        2,
        "one retry with a fresh token, then the answer"
    );
}

#[tokio::test]
async fn a_vault_that_refuses_fresh_tokens_does_not_churn_them() {
    // The token is fine (other vaults accept it): after a fresh one was refused too,
    // later 401s of that vault do not throw tokens away again.
    let mock = mock().await;
    let vault = builder(&mock)
        .vault_id("tntunknown00")
        .build()
        .expect("connector");
    for _ in 0..3 {
        let err = vault
            .retrieve(RetrieveRequest::new(alias_id("tok_sandbox_x")))
            .await
            .expect_err("not assigned");
        assert_eq!(err.kind(), VaultError::InvalidCredentials);
    }
    assert_eq!(
        mock.stats().token_requests,
        2,
        "the first token, one fresh token for the retry, then no more"
    );
    let err = vault
        .retrieve(RetrieveRequest::new(alias_id("tok_sandbox_x")))
        .await
        .expect_err("not assigned");
    assert!(
        err.details().iter().any(|d| d.contains("token was kept")),
        "{:?}",
        err.details()
    );
}

#[tokio::test]
async fn without_fingerprinting_an_insert_cut_off_by_the_total_timeout_is_outcome_unknown() {
    let mock = mock_with(MockConfig::demo().with_fingerprinting(false)).await;
    let vault = builder(&mock)
        .fingerprinting(Fingerprinting::Off)
        .timeouts(Timeouts {
            per_attempt: Duration::from_secs(5),
            total: Duration::from_millis(300),
            ..Timeouts::default()
        })
        .build()
        .expect("connector");
    vault.check().await.expect("token cached");
    mock.fail_next(
        Route::CreateAliases,
        1,
        FailWith::Delay(Duration::from_secs(2)),
    );
    let err = vault
        .insert(InsertRequest::card(card()))
        .await
        .expect_err("cut off");
    assert_eq!(err.kind(), VaultError::InsertOutcomeUnknown);
    assert!(
        !err.is_retryable(),
        "a caller's retry loop must not resend it"
    );
    assert!(err.summary().contains("total timeout"), "{}", err.summary());
}

#[tokio::test]
async fn a_vault_without_reveal_is_reveal_disabled_with_the_fix() {
    let mock = mock_with(MockConfig::demo().with_reveal(false)).await;
    let vault = connector(&mock);
    let stored = vault
        .insert(InsertRequest::card(card()))
        .await
        .expect("storing needs no reveal");
    let err = vault
        .retrieve(RetrieveRequest::new(stored.connector_vault_id))
        .await
        .expect_err("reveal disabled");
    assert_eq!(err.kind(), VaultError::RevealDisabled);
    assert_eq!(err.http_status(), Some(403));
    assert!(!err.is_retryable());
    assert!(err.summary().contains("enable reveal"), "{}", err.summary());
    assert_eq!(
        mock.stats().api_count(Route::RevealMultipleAliases, 403),
        1,
        "not retried"
    );
    // A missing scope is still Forbidden, not RevealDisabled.
    let scoped = mock_with(MockConfig::demo().with_client("writer", "w", &["aliases:write"])).await;
    let writer = builder(&scoped)
        .credentials("writer", "w".to_owned().into())
        .build()
        .expect("connector");
    let err = writer
        .retrieve(RetrieveRequest::new(alias_id("tok_sandbox_x")))
        .await
        .expect_err("no read scope");
    assert_eq!(err.kind(), VaultError::Forbidden);
}

#[tokio::test]
async fn without_fingerprinting_an_insert_that_may_have_landed_is_not_resent() {
    let mock = mock_with(MockConfig::demo().with_fingerprinting(false)).await;
    let vault = builder(&mock)
        .fingerprinting(Fingerprinting::Off)
        .build()
        .expect("connector");
    for fault in [FailWith::Status(503), FailWith::Reset] {
        mock.state().reset_stats();
        mock.fail_next(Route::CreateAliases, 1, fault);
        let err = vault
            .insert(InsertRequest::card(card()))
            .await
            .expect_err("outcome unknown");
        assert_eq!(err.kind(), VaultError::InsertOutcomeUnknown, "{fault:?}");
        assert!(
            !err.is_retryable(),
            "a caller's retry loop must not resend it"
        );
        assert_eq!(
            mock.stats().api_total(Route::CreateAliases),
            1,
            "{fault:?}: sent once"
        );
        let summary = err.summary();
        assert!(summary.contains("may be stored"), "{summary}");
        assert!(summary.contains("insert the card again"), "{summary}");
    }
    // A request that never left (429 refused before processing) is still retried.
    mock.state().reset_stats();
    mock.fail_next(Route::CreateAliases, 1, FailWith::Status(429));
    vault
        .insert(InsertRequest::card(card()))
        .await
        .expect("429 is safe to retry");
    assert_eq!(mock.stats().api_total(Route::CreateAliases), 2);
}

#[tokio::test]
async fn unknown_alias_is_alias_not_found_naming_it() {
    let mock = mock().await;
    let err = connector(&mock)
        .retrieve(RetrieveRequest::new(alias_id("tok_sandbox_doesnotexist")))
        .await
        .expect_err("unknown alias");
    assert_eq!(err.kind(), VaultError::AliasNotFound);
    assert!(!err.is_retryable());
    assert!(
        err.details()
            .iter()
            .any(|d| d.contains("tok_sandbox_doesnotexist")),
        "{:?}",
        err.details()
    );
    assert_eq!(
        mock.stats().api_total(Route::RevealAlias),
        1,
        "a 404 is not retried"
    );
}

#[tokio::test]
async fn bad_request_carries_the_vault_detail() {
    let mock = mock().await;
    let vault = builder(&mock)
        .card_number_format(AliasFormat::Custom)
        .build()
        .expect("connector");
    let err = vault
        .insert(InsertRequest::card(card()))
        .await
        .expect_err("unsupported format");
    assert_eq!(err.kind(), VaultError::InvalidRequest);
    assert_eq!(err.http_status(), Some(400));
    assert!(
        err.details()
            .iter()
            .any(|d| d.to_lowercase().contains("format")),
        "{:?}",
        err.details()
    );
    assert!(!format!("{err:?}").contains("4111111111111111"));
}

#[tokio::test]
async fn rate_limit_is_retried_after_retry_after() {
    let mock = mock().await;
    let vault = connector(&mock);
    mock.fail_next(Route::CreateAliases, 1, FailWith::Status(429));
    vault
        .insert(InsertRequest::card(card()))
        .await
        .expect("retried after Retry-After");
    assert_eq!(mock.stats().api_count(Route::CreateAliases, 429), 1);
    assert_eq!(mock.stats().api_count(Route::CreateAliases, 201), 1);
    assert!(
        vault.rate_limit_remaining().is_some(),
        "x-ratelimit-remaining is watched"
    );
}

#[tokio::test]
async fn rate_limit_wait_past_the_budget_surfaces_with_retry_after() {
    let mock = mock().await;
    let vault = builder(&mock)
        .timeouts(Timeouts {
            total: Duration::from_millis(500),
            ..Timeouts::default()
        })
        .build()
        .expect("connector");
    mock.fail_next(Route::CreateAliases, 1, FailWith::Status(429));
    let err = vault
        .insert(InsertRequest::card(card()))
        .await
        .expect_err("would wait past the budget");
    assert_eq!(err.kind(), VaultError::RateLimited);
    assert!(err.is_retryable());
    assert_eq!(err.retry_after(), Some(Duration::from_secs(1)));
    assert_eq!(mock.stats().api_total(Route::CreateAliases), 1);
}

#[tokio::test]
async fn server_errors_are_retried_then_reported() {
    let mock = mock().await;
    let vault = connector(&mock);
    let stored = vault
        .insert(InsertRequest::card(card()))
        .await
        .expect("insert");

    mock.fail_next(Route::RevealMultipleAliases, 2, FailWith::Status(503));
    vault
        .retrieve(RetrieveRequest::new(stored.connector_vault_id.clone()))
        .await
        .expect("third attempt works");
    assert_eq!(mock.stats().api_count(Route::RevealMultipleAliases, 503), 2);

    mock.fail_next(Route::RevealMultipleAliases, 3, FailWith::Status(500));
    let err = vault
        .retrieve(RetrieveRequest::new(stored.connector_vault_id))
        .await
        .expect_err("all attempts fail");
    assert_eq!(err.kind(), VaultError::Upstream);
    assert!(err.is_retryable());
    assert_eq!(err.attempt(), Some(3));
    assert_eq!(mock.stats().api_count(Route::RevealMultipleAliases, 500), 3);
}

#[tokio::test]
async fn inserts_are_retried_after_a_5xx_and_store_the_card_once() {
    let mock = mock().await;
    let vault = connector(&mock);
    mock.fail_next(Route::CreateAliases, 1, FailWith::Status(502));
    let stored = vault
        .insert(InsertRequest::card(card()))
        .await
        .expect("retried");
    assert_eq!(mock.record_count(crate::support::DEMO_VAULT_ID), Some(4));
    let again = vault
        .insert(InsertRequest::card(card()))
        .await
        .expect("same card");
    // The same records; a CVC's expiry may be estimated tighter the second time
    // (the vault's creation time, at second resolution, can only be used once it
    // is not after the request was sent).
    assert_eq!(
        stored.connector_vault_id.aliases(),
        again.connector_vault_id.aliases()
    );

    let strict = builder(&mock)
        .retry(RetryPolicy {
            retry_inserts: false,
            ..RetryPolicy::default()
        })
        .build()
        .expect("connector");
    mock.fail_next(Route::CreateAliases, 1, FailWith::Status(502));
    let err = strict
        .insert(InsertRequest::card(card()))
        .await
        .expect_err("not retried");
    assert_eq!(err.kind(), VaultError::Upstream);
    assert_eq!(err.attempt(), Some(1));
}

#[tokio::test]
async fn dropped_connections_are_retried() {
    let mock = mock().await;
    let vault = connector(&mock);
    mock.fail_next(Route::CreateAliases, 1, FailWith::Reset);
    let stored = vault
        .insert(InsertRequest::card(card()))
        .await
        .expect("retried after a reset");
    assert_eq!(mock.stats().api_resets(Route::CreateAliases), 1);
    mock.fail_next(Route::RevealMultipleAliases, 3, FailWith::Reset);
    let err = vault
        .retrieve(RetrieveRequest::new(stored.connector_vault_id))
        .await
        .expect_err("resets every time");
    assert_eq!(err.kind(), VaultError::Transport);
    assert!(err.is_retryable());
}

#[tokio::test]
async fn slow_vault_times_out_within_the_total_budget() {
    let mock = mock().await;
    let vault = builder(&mock)
        .timeouts(Timeouts {
            per_attempt: Duration::from_millis(100),
            total: Duration::from_millis(1_000),
            ..Timeouts::default()
        })
        .build()
        .expect("connector");
    vault.check().await.expect("token cached");
    mock.fail_next(
        Route::RevealAlias,
        10,
        FailWith::Delay(Duration::from_secs(5)),
    );
    let err = vault
        .retrieve(RetrieveRequest::new(alias_id("tok_sandbox_slow")))
        .await
        .expect_err("slow");
    assert_eq!(err.kind(), VaultError::Timeout);
    assert!(err.is_retryable());
    assert_eq!(
        err.attempt(),
        Some(3),
        "each attempt timed out and was retried"
    );
}

#[tokio::test]
async fn the_total_timeout_bounds_an_exchange_shorter_than_the_attempt_timeout() {
    let mock = mock().await;
    let vault = builder(&mock)
        .timeouts(Timeouts {
            per_attempt: Duration::from_secs(30),
            total: Duration::from_millis(300),
            ..Timeouts::default()
        })
        .build()
        .expect("connector");
    vault.check().await.expect("token cached");
    mock.fail_next(
        Route::RevealAlias,
        1,
        FailWith::Delay(Duration::from_secs(30)),
    );
    let err = vault
        .retrieve(RetrieveRequest::new(alias_id("tok_sandbox_slow")))
        .await
        .expect_err("slow");
    assert_eq!(err.kind(), VaultError::Timeout);
    // The one exchange was cut at the call's deadline, not at the 30 s attempt
    // timeout, and nothing was retried past the deadline.
    assert_eq!(err.attempt(), Some(1), "{:?}", err.details());
    assert!(
        err.details()
            .iter()
            .any(|d| d.contains("total timeout of 300 ms")),
        "{:?}",
        err.details()
    );
}

/// An HTTP/1.1 server answering every request with `body` in chunked transfer
/// encoding, `pieces` chunks of it. Returns its base URL.
async fn chunked_server(body: &'static str, pieces: usize) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut request = Vec::new();
                let mut buf = [0u8; 1024];
                while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                    match stream.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => request.extend_from_slice(&buf[..n]),
                    }
                }
                let mut answer = b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\nconnection: close\r\n\r\n".to_vec();
                let size = body.len().div_ceil(pieces);
                for piece in body.as_bytes().chunks(size) {
                    answer.extend_from_slice(format!("{:x}\r\n", piece.len()).as_bytes());
                    answer.extend_from_slice(piece);
                    answer.extend_from_slice(b"\r\n");
                    // One write per chunk, so that the client reads them apart.
                    let _ = stream.write_all(&answer).await;
                    let _ = stream.flush().await;
                    answer.clear();
                }
                let _ = stream.write_all(b"0\r\n\r\n").await;
            });
        }
    });
    base
}

#[tokio::test]
async fn an_answer_in_many_chunks_is_read_whole_and_still_capped() {
    const ANSWER: &str = r#"{"data":[{"value":"Ada Lovelace","classifiers":["vaultlink","card_holder_name"],"aliases":[{"alias":"tok_sandbox_chunked","format":"UUID"}],"created_at":"2026-11-24T06:49:15Z","storage":"PERSISTENT"}]}"#;
    let base = chunked_server(ANSWER, 4).await;
    let connector = |cap: usize| {
        VgsConnector::builder()
            .credentials("user", "pass".to_owned().into())
            .vault_id("tntabc12345")
            .api(vault_vgs::ApiGeneration::V1)
            .endpoint(base.as_str())
            .max_response_bytes(cap)
            .build()
            .expect("connector")
    };
    let alias = vault_core::Alias::new("tok_sandbox_chunked").expect("alias");
    let value = connector(1 << 20)
        .reveal(&alias, vault_core::Storage::Persistent)
        .await
        .expect("the four chunks make one answer");
    assert_eq!(secrecy::ExposeSecret::expose_secret(&value), "Ada Lovelace");

    // A cap of exactly its size still reads it.
    let value = connector(ANSWER.len())
        .reveal(&alias, vault_core::Storage::Persistent)
        .await
        .expect("a cap equal to the answer's size");
    assert_eq!(secrecy::ExposeSecret::expose_secret(&value), "Ada Lovelace");

    // The same answer against a cap smaller than it: refused, whatever the chunking.
    let err = connector(ANSWER.len() - 10)
        .reveal(&alias, vault_core::Storage::Persistent)
        .await
        .expect_err("over the cap");
    assert_eq!(err.kind(), VaultError::UnexpectedResponse);
    assert!(
        err.details().iter().any(|d| d.contains("larger than")),
        "{:?}",
        err.details()
    );
}

#[tokio::test]
async fn malformed_json_is_unexpected_response_without_the_body() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/auth/realms/vgs/protocol/openid-connect/token"))
        .respond_with(ResponseTemplate::new(200).set_body_json(token_body("tok-1", 300)))
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/v2/tntabc12345/aliases"))
        .respond_with(
            ResponseTemplate::new(201)
                .set_body_string(r#"{"data":[{"value":"4111111111111111","aliases":[{"alias":"#),
        )
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/v2/tntabc12345/aliases/tok_big"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"data":[{"value":"x".repeat(2 << 20)}]})),
        )
        .expect(1)
        .mount(&server)
        .await;
    let vault = VgsConnector::builder()
        .credentials("id", "secret".to_owned().into())
        .vault_id("tntabc12345")
        .endpoint(server.uri())
        .build()
        .expect("connector");
    let err = vault
        .insert(InsertRequest::card(card()))
        .await
        .expect_err("truncated JSON");
    assert_eq!(err.kind(), VaultError::UnexpectedResponse);
    assert!(
        err.details().iter().any(|d| d.contains("truncated JSON")),
        "{:?}",
        err.details()
    );
    for rendered in [format!("{err:?}"), format!("{err:#?}"), err.summary()] {
        assert!(!rendered.contains("4111111111111111"), "{rendered}");
    }
    let err = vault
        .retrieve(RetrieveRequest::new(alias_id("tok_big")))
        .await
        .expect_err("too large");
    assert_eq!(err.kind(), VaultError::UnexpectedResponse);
    assert!(
        err.details().iter().any(|d| d.contains("larger than")),
        "{:?}",
        err.details()
    );
}

#[tokio::test]
async fn vault_401_invalidates_the_token_and_retries_once() {
    let mock = mock().await;
    let vault = connector(&mock);
    vault.check().await.expect("token");
    assert_eq!(mock.stats().token_requests, 1);

    mock.fail_next(Route::CreateAliases, 1, FailWith::Status(401));
    vault
        .insert(InsertRequest::card(card()))
        .await
        .expect("retried with a fresh token");
    assert_eq!(mock.stats().token_requests, 2);

    mock.fail_next(Route::CreateAliases, 2, FailWith::Status(401));
    let err = vault
        .insert(InsertRequest::card(card()))
        .await
        .expect_err("second 401 surfaces");
    assert_eq!(err.kind(), VaultError::InvalidCredentials);
    assert_eq!(err.attempt(), Some(2));
    assert_eq!(mock.stats().token_requests, 3, "one fresh token, no loop");
}

#[tokio::test]
async fn an_expired_token_rejected_by_the_vault_is_replaced() {
    let clock = vgs_mock::MockClock::manual();
    let mock = mock_with(MockConfig::demo().with_clock(clock.clone())).await;
    let vault = connector(&mock);
    vault.check().await.expect("token");
    // The vault's clock runs ahead of ours: it sees the token expired, we do not.
    clock.advance(Duration::from_secs(301));
    vault
        .insert(InsertRequest::card(card()))
        .await
        .expect("re-authorized");
    let stats = mock.stats();
    assert_eq!(stats.expired_token_rejections, 1);
    assert_eq!(stats.token_requests, 2);
}
