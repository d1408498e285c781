//! Bulk import through a failing vault: `vaultctl import` of a few hundred cards
//! against `mock serve` with 5xx, dropped connections, 429 and latency exits 0, and
//! every card it reports stored reveals to its own card number, checked card by card.

use std::io::{Read as _, Write as _};

use vault_core::{ConnectorVaultId, ExternalVault, RetrieveRequest};
use vault_vgs::VgsConnector;

use crate::support::{MockServer, TempDir, assert_success, stdout, test_pan};

const CARDS: u64 = 300;

/// `POST /_mock/faults {}`: switches random faults off for the verification.
fn faults_off(mock: &MockServer) {
    let addr = mock.base_url.trim_start_matches("http://");
    let mut stream = std::net::TcpStream::connect(addr).expect("connect to the mock");
    write!(
        stream,
        "POST /_mock/faults HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{{}}"
    )
    .expect("request");
    let mut response = String::new();
    stream.read_to_string(&mut response).expect("response");
    assert!(response.starts_with("HTTP/1.1 2"), "{response}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn import_through_faults_stores_every_card_it_reports() {
    let mock = MockServer::start_with(&[
        "--fault-5xx",
        "0.1",
        "--fault-reset",
        "0.05",
        "--fault-429",
        "0.02",
        "--latency-ms",
        "5",
    ]);
    let dir = TempDir::new("import-faults");
    let input = dir.0.join("cards.jsonl");
    let mut file = std::fs::File::create(&input).expect("cards file");
    for i in 0..CARDS {
        writeln!(
            file,
            r#"{{"card_number":"{}","card_exp_month":"{:02}","card_exp_year":"2030","card_cvc":"{:04}"}}"#,
            test_pan(i),
            i % 12 + 1,
            i
        )
        .expect("write");
    }
    drop(file);
    let out = dir.0.join("aliases.jsonl");
    let output = tokio::task::block_in_place(|| {
        mock.vaultctl()
            .args([
                "import",
                input.to_str().expect("utf-8"),
                "--out",
                out.to_str().expect("utf-8"),
                "--batch",
                "50",
            ])
            .output()
            .expect("vaultctl import runs")
    });
    assert_success(&output);
    assert!(
        stdout(&output).contains(&format!("{CARDS} stored, 0 failed")),
        "{}",
        stdout(&output)
    );

    faults_off(&mock);
    let vault = VgsConnector::builder()
        .credentials("demo-client", "demo-secret".to_owned().into())
        .vault_id("tntdemo00001")
        .endpoint(mock.base_url.clone())
        .build()
        .expect("connector");
    let written = std::fs::read_to_string(&out).expect("import output");
    let mut checked = 0;
    for line in written.lines() {
        let record: serde_json::Value = serde_json::from_str(line).expect("one JSON object a line");
        let line_number = record["line"].as_u64().expect("line number");
        let id: ConnectorVaultId =
            serde_json::from_value(record["aliases"].clone()).expect("aliases");
        let back = vault
            .retrieve(RetrieveRequest::new(id))
            .await
            .expect("a reported card is retrievable");
        let card = back.card().expect("a card");
        assert_eq!(
            card.number.expose_secret(),
            test_pan(line_number - 1),
            "line {line_number}"
        );
        checked += 1;
    }
    assert_eq!(checked, CARDS, "every card is reported exactly once");
}
