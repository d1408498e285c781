//! Several vaultctl processes, one mock VGS, one real Redis: the processes share one
//! access token through `--token-store`, as orchestrator replicas would.

use std::process::Stdio;

use crate::support::{MockServer, Redis, assert_success, stdout};

#[test]
fn four_processes_sharing_a_redis_fetch_one_token() {
    let Some(redis) = Redis::start("four_processes_sharing_a_redis_fetch_one_token") else {
        return;
    };
    let mock = MockServer::start();
    let children: Vec<_> = (0..4)
        .map(|_| {
            mock.vaultctl()
                .args(["check", "--json", "--token-store", &redis.url])
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .expect("vaultctl check starts")
        })
        .collect();
    for child in children {
        let output = child.wait_with_output().expect("vaultctl check runs");
        assert_success(&output);
        assert!(stdout(&output).contains("\"ok\""), "{}", stdout(&output));
    }
    assert_eq!(
        mock.stats()["token_requests"],
        1,
        "one token for four processes"
    );

    // The environment variable works as the flag does, and a fifth process reuses it.
    let output = mock
        .vaultctl()
        .args(["check"])
        .env("VAULTLINK_TOKEN_STORE", &redis.url)
        .output()
        .expect("vaultctl check runs");
    assert_success(&output);
    assert_eq!(mock.stats()["token_requests"], 1);
}

#[test]
fn an_unreachable_token_store_is_one_warning_not_a_failure() {
    let mock = MockServer::start();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let output = mock
        .vaultctl()
        .args([
            "check",
            "--token-store",
            &format!("redis://127.0.0.1:{port}/0"),
        ])
        .output()
        .expect("vaultctl check runs");
    assert_success(&output);
    let err = String::from_utf8_lossy(&output.stderr);
    assert_eq!(
        err.matches("warning: the token store is unreachable")
            .count(),
        1,
        "{err}"
    );
}
