//! STARTTLS: opportunistic, disabled and verified.

use super::*;

fn tls_sink() -> SinkConfig {
    SinkConfig {
        starttls: true,
        ..SinkConfig::default()
    }
}

#[tokio::test]
async fn opportunistic_tls_is_used_when_offered_whatever_the_certificate() {
    let sink = SinkServer::start(tls_sink()).await;
    let config = client_config(timeouts());
    let mut connection = try_connect(
        &sink,
        "sink.test",
        Protocol::Smtp,
        TlsMode::Opportunistic,
        &config,
    )
    .await
    .unwrap_or_else(|error| panic!("connect: {error:?}"));

    let info = connection.tls_info().expect("TLS was negotiated").clone();
    assert!(info.version.starts_with("TLSv1_"), "{info:?}");
    assert!(!info.cipher.is_empty());
    // The EHLO after the handshake replaced what was said in plaintext.
    assert!(!connection.capabilities().starttls);
    let replies = connection
        .send(&envelope(&["a@dest.test"]), BODY)
        .await
        .expect("the transaction");

    assert_eq!(codes(&replies), vec![250]);
    let received = sink.received();
    assert!(received[0].tls);
    assert_eq!(received[0].helo, "client.test");
}

#[tokio::test]
async fn disabled_tls_is_not_started_even_when_offered() {
    let sink = SinkServer::start(tls_sink()).await;
    let config = client_config(timeouts());
    let mut connection = try_connect(
        &sink,
        "sink.test",
        Protocol::Smtp,
        TlsMode::Disabled,
        &config,
    )
    .await
    .unwrap_or_else(|error| panic!("connect: {error:?}"));

    assert!(connection.tls_info().is_none());
    assert!(connection.capabilities().starttls);
    connection
        .send(&envelope(&["a@dest.test"]), BODY)
        .await
        .expect("the transaction");
    assert!(!sink.received()[0].tls);
}

#[tokio::test]
async fn verified_tls_fails_against_an_untrusted_certificate() {
    let sink = SinkServer::start(tls_sink()).await;
    let config = client_config(timeouts());

    let result = try_connect(
        &sink,
        "sink.test",
        Protocol::Smtp,
        TlsMode::Verified,
        &config,
    )
    .await;

    match connect_error(result) {
        ConnectError::Failed(DeliveryError::Tls { host, .. }) => assert_eq!(host, "sink.test"),
        other => panic!("expected a TLS failure, got {other:?}"),
    }
    assert!(sink.received().is_empty());
}

#[tokio::test]
async fn verified_tls_fails_when_the_server_does_not_offer_starttls() {
    let sink = SinkServer::start(SinkConfig::default()).await;
    let config = client_config(timeouts());

    let result = try_connect(
        &sink,
        "sink.test",
        Protocol::Smtp,
        TlsMode::Verified,
        &config,
    )
    .await;

    match connect_error(result) {
        ConnectError::Failed(DeliveryError::Tls { reason, .. }) => {
            assert!(reason.contains("not offered"), "{reason}");
        }
        other => panic!("expected a TLS failure, got {other:?}"),
    }
}

fn sink_certificate(sink: &SinkServer) -> CertificateDer<'static> {
    let pem = sink.cert_pem().expect("the sink offers STARTTLS");
    CertificateDer::from_pem_slice(pem.as_bytes()).expect("the sink's certificate as DER")
}

#[tokio::test]
async fn verified_tls_succeeds_with_a_trusted_certificate_for_the_host_name() {
    let sink = SinkServer::start(tls_sink()).await;
    let config = client_config_trusting(timeouts(), &[sink_certificate(&sink)]);

    // The sink's certificate names its host name (`sink.test`), `localhost` and its address.
    let mut connection = try_connect(
        &sink,
        "sink.test",
        Protocol::Smtp,
        TlsMode::Verified,
        &config,
    )
    .await
    .unwrap_or_else(|error| panic!("connect: {error:?}"));

    assert!(connection.tls_info().is_some());
    connection
        .send(&envelope(&["a@dest.test"]), BODY)
        .await
        .expect("the transaction");
    assert!(sink.received()[0].tls);
}

#[tokio::test]
async fn verified_tls_fails_with_a_trusted_certificate_for_another_name() {
    let sink = SinkServer::start(tls_sink()).await;
    let config = client_config_trusting(timeouts(), &[sink_certificate(&sink)]);

    let result = try_connect(
        &sink,
        "mx.elsewhere.test",
        Protocol::Smtp,
        TlsMode::Verified,
        &config,
    )
    .await;

    match connect_error(result) {
        ConnectError::Failed(DeliveryError::Tls { host, .. }) => {
            assert_eq!(host, "mx.elsewhere.test");
        }
        other => panic!("expected a TLS failure, got {other:?}"),
    }
}
