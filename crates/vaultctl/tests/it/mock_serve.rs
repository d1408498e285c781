//! `vaultctl mock serve`: the first line names the bound address, flags configure the
//! vaults and credentials, and SIGTERM stops it cleanly.

use std::io::BufRead;
use std::net::TcpStream;

use crate::support::{MockServer, assert_one_line_failure, assert_success, run, stdout, vaultctl};

#[test]
fn first_line_is_listening_on_the_bound_port_then_credentials_and_routes() {
    let mut mock = MockServer::start();
    let port: u16 = mock
        .base_url
        .strip_prefix("http://127.0.0.1:")
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("{}", mock.base_url));
    assert_ne!(port, 0, "port 0 is replaced by the bound port");
    TcpStream::connect(("127.0.0.1", port)).expect("it listens there");
    let rest: Vec<String> = (&mut mock.stdout)
        .lines()
        .take(4)
        .map(Result::unwrap)
        .collect();
    let rest = rest.join("\n");
    assert!(rest.contains("tntdemo00001"), "{rest}");
    assert!(
        rest.contains("demo-client / demo-secret"),
        "documented demo credentials:\n{rest}"
    );
    assert!(rest.contains("demo-user / demo-password"), "{rest}");
}

#[cfg(unix)]
#[test]
fn sigterm_stops_it_cleanly_with_exit_0() {
    let mut mock = MockServer::start();
    let killed = std::process::Command::new("kill")
        .args(["-TERM", &mock.pid().to_string()])
        .status()
        .expect("kill runs");
    assert!(killed.success());
    let status = mock.wait_exit().expect("stops within 5 s");
    assert_eq!(status.code(), Some(0));
}

#[test]
fn flags_set_the_vaults_and_credentials_it_accepts() {
    let mock = MockServer::start_with(&[
        "--vault-id",
        "tntfirst1",
        "--vault-id",
        "tntsecond2",
        "--client-id",
        "ops-client",
        "--client-secret",
        "ops-secret",
        "--token-ttl",
        "60",
    ]);
    let output = run(
        mock.vaultctl()
            .env("VGS_CLIENT_ID", "ops-client")
            .env("VGS_CLIENT_SECRET", "ops-secret")
            .env("VGS_VAULT_ID", "tntsecond2")
            .arg("check"),
        "",
    );
    assert_success(&output);
    assert!(
        stdout(&output).contains("tntsecond2 exists"),
        "{}",
        stdout(&output)
    );
    // The demo vault is not served now.
    let output = run(
        mock.vaultctl()
            .env("VGS_CLIENT_ID", "ops-client")
            .env("VGS_CLIENT_SECRET", "ops-secret")
            .arg("check"),
        "",
    );
    let line = assert_one_line_failure(&output);
    assert!(
        line.contains("not assigned to vault tntdemo00001"),
        "{line}"
    );
}

#[test]
fn a_taken_address_is_one_line_with_the_fix() {
    let mock = MockServer::start();
    let addr = mock.base_url.trim_start_matches("http://").to_owned();
    let output = run(vaultctl().args(["mock", "serve", "--addr", &addr]), "");
    let line = assert_one_line_failure(&output);
    assert!(line.contains(&format!("cannot listen on {addr}")), "{line}");
    assert!(
        stdout(&output).is_empty(),
        "no `listening on` line when not listening"
    );
}

#[test]
fn routes_start_the_proxies_and_the_next_lines_say_where() {
    // Written out by the test (not read beside the checkout the binary was built in).
    let dir = crate::support::TempDir::new("routes-ok");
    let routes = dir.path("routes.yaml");
    std::fs::write(
        &routes,
        include_str!("../../../../fixtures/routes/vgs-cli-http-route-template.yaml"),
    )
    .unwrap();
    let mut mock = MockServer::start_with(&["--routes", routes.to_str().unwrap()]);
    let lines: Vec<String> = (&mut mock.stdout)
        .lines()
        .take(2)
        .map(Result::unwrap)
        .collect();
    let outbound = lines[0]
        .strip_prefix("outbound proxy: http://demo-user:demo-password@127.0.0.1:")
        .unwrap_or_else(|| panic!("second line: {}", lines[0]));
    let port: u16 = outbound.split(' ').next().unwrap().parse().expect("a port");
    TcpStream::connect(("127.0.0.1", port)).expect("the outbound proxy listens");
    let ca = lines[0]
        .split_once(" CA certificate: ")
        .and_then(|(_, rest)| rest.split(" (").next())
        .unwrap_or_else(|| panic!("no CA path: {}", lines[0]));
    let pem = std::fs::read_to_string(ca).expect("the CA certificate file exists");
    assert!(pem.starts_with("-----BEGIN CERTIFICATE-----"), "{pem}");
    let inbound = lines[1]
        .strip_prefix("inbound proxy: http://127.0.0.1:")
        .unwrap_or_else(|| panic!("third line: {}", lines[1]));
    let port: u16 = inbound.split(' ').next().unwrap().parse().expect("a port");
    TcpStream::connect(("127.0.0.1", port)).expect("the inbound proxy listens");
}

#[test]
fn a_route_file_it_cannot_honour_is_one_line_naming_the_line_and_field() {
    let dir = crate::support::TempDir::new("routes");
    let path = dir.path("routes.yaml");
    std::fs::write(
        &path,
        "version: 1\ndata:\n- type: rule_chain\n  attributes:\n    protocol: http\n    entries:\n    - phase: REQUEST\n      operation: TOKENIZE\n      transformer: JSON_PATH\n      transformer_config: [$.a]\n",
    )
    .unwrap();
    let output = run(
        vaultctl()
            .args(["mock", "serve", "--addr", "127.0.0.1:0", "--routes"])
            .arg(&path),
        "",
    );
    let line = assert_one_line_failure(&output);
    assert!(
        line.contains("line 8: data[0].attributes.entries[0].operation"),
        "{line}"
    );
    assert!(line.contains("REDACT or REVEAL"), "{line}");
    assert!(stdout(&output).is_empty(), "no `listening on` line");
}
