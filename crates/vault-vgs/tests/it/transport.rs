//! Transport safety: plain http only to loopback, no redirect followed, and a
//! configured proxy never carries a plain-http call.

use vault_core::{ExternalVault, InsertRequest, ReportExt, VaultError};
use vault_vgs::VgsConnector;
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::support::{builder, card, mock};

#[tokio::test]
async fn a_proxy_is_never_used_for_plain_http_loopback_calls() {
    let mock = mock().await;
    let proxy = MockServer::start().await;
    Mock::given(wiremock::matchers::any())
        .respond_with(ResponseTemplate::new(502))
        .expect(0)
        .mount(&proxy)
        .await;
    let vault = builder(&mock)
        .proxy(proxy.uri())
        .build()
        .expect("connector");
    vault
        .insert(InsertRequest::card(card()))
        .await
        .expect("direct to the loopback mock");
}

#[test]
fn a_bad_proxy_url_is_a_configuration_error() {
    let err = VgsConnector::builder()
        .credentials("id", "secret".to_owned().into())
        .vault_id("tntabc1")
        .environment(vault_core::Environment::Sandbox)
        .proxy("not a url")
        .build()
        .expect_err("bad proxy");
    assert_eq!(err.kind(), VaultError::InvalidConfig);
    assert!(err.details()[0].contains("proxy"), "{:?}", err.details());
}

#[test]
fn https_is_required_off_loopback_before_anything_is_sent() {
    let err = VgsConnector::builder()
        .credentials("id", "secret".to_owned().into())
        .vault_id("tntabc1")
        .endpoint("http://192.0.2.10:8080")
        .build()
        .expect_err("plain http off loopback");
    assert_eq!(err.kind(), VaultError::InvalidConfig);
    assert!(err.details()[0].contains("https"), "{:?}", err.details());
}
