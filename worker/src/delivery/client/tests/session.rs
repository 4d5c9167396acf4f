//! Greeting, EHLO/HELO/LHLO and STARTTLS.

use super::*;

fn refusal(result: Result<Connection, ConnectError>) -> ConnectError {
    match result {
        Ok(connection) => panic!("expected a failed connection, got {connection:?}"),
        Err(error) => error,
    }
}

#[tokio::test]
async fn a_554_greeting_refuses_the_connection_with_that_reply_and_says_quit() {
    let script = ["554 5.3.2 no service for you\r\n"];
    let (result, received) =
        start_with(&script, Protocol::Smtp, TlsMode::Opportunistic, timeouts()).await;
    assert_eq!(
        refusal(result),
        ConnectError::Refused(reply(554, "5.3.2", "no service for you"))
    );
    let received = received.await.expect("peer");
    assert_eq!(received.all, "QUIT\r\n");
}

#[tokio::test]
async fn a_greeting_that_never_comes_times_out() {
    let waiting = Timeouts {
        greeting: Duration::from_millis(50),
        ..timeouts()
    };
    let (result, _received) = start_with(&[""], Protocol::Smtp, TlsMode::Disabled, waiting).await;
    match refusal(result) {
        ConnectError::Failed(DeliveryError::Timeout { host, stage }) => {
            assert_eq!((host.as_str(), stage), ("mx.dest.test", "greeting"));
        }
        other => panic!("expected a greeting timeout, got {other:?}"),
    }
}

#[tokio::test]
async fn a_server_that_hangs_up_before_greeting_loses_the_connection() {
    let (result, _received) =
        start_with(&[CLOSE], Protocol::Smtp, TlsMode::Disabled, timeouts()).await;
    assert!(matches!(
        refusal(result),
        ConnectError::Failed(DeliveryError::ConnectionLost { .. })
    ));
}

#[tokio::test]
async fn replies_that_are_not_smtp_break_the_protocol() {
    let long = format!("220 {}\r\n", "x".repeat(5000));
    for greeting in [
        "HTTP/1.1 400 Bad Request\r\n",
        "220-a\r\n221 b\r\n",
        long.as_str(),
    ] {
        let (result, _received) =
            start_with(&[greeting], Protocol::Smtp, TlsMode::Disabled, timeouts()).await;
        assert!(
            matches!(
                refusal(result),
                ConnectError::Failed(DeliveryError::Protocol { .. })
            ),
            "{:?}",
            &greeting[..20]
        );
    }
}

#[tokio::test]
async fn capabilities_come_from_the_ehlo_reply() {
    let ehlo =
        "250-mx.dest.test hello\r\n250-PIPELINING\r\n250-SIZE 1000\r\n250-DSN\r\n250 SMTPUTF8\r\n";
    let (connection, received) = smtp(&[GREETING, ehlo]).await;
    let caps = connection.capabilities();
    assert!(caps.pipelining && caps.dsn && caps.smtputf8 && !caps.starttls);
    assert_eq!(caps.size, Some(1000));
    assert_eq!(connection.host_name(), "mx.dest.test");
    assert_eq!(connection.peer(), peer_address());
    assert!(connection.tls_info().is_none());
    assert_eq!(
        finish(connection, received).await.all,
        "EHLO client.test\r\n"
    );
}

#[tokio::test]
async fn an_ehlo_refused_with_5xx_falls_back_to_helo() {
    let script = [
        GREETING,
        "502 5.5.1 what is EHLO\r\n",
        "250 mx.dest.test\r\n",
    ];
    let (connection, received) = smtp(&script).await;
    assert_eq!(connection.capabilities(), &Capabilities::default());
    let received = finish(connection, received).await;
    assert_eq!(received.all, "EHLO client.test\r\nHELO client.test\r\n");
}

#[tokio::test]
async fn an_ehlo_refused_with_4xx_refuses_the_connection_without_helo() {
    let script = [GREETING, "421 4.3.2 too busy\r\n"];
    let (result, received) =
        start_with(&script, Protocol::Smtp, TlsMode::Opportunistic, timeouts()).await;
    assert_eq!(
        refusal(result),
        ConnectError::Refused(reply(421, "4.3.2", "too busy"))
    );
    let received = received.await.expect("peer");
    assert_eq!(received.all, "EHLO client.test\r\nQUIT\r\n");
}

#[tokio::test]
async fn lmtp_says_lhlo_and_never_falls_back_to_helo() {
    let script = [GREETING, "500 5.5.1 no\r\n"];
    let (result, received) =
        start_with(&script, Protocol::Lmtp, TlsMode::Disabled, timeouts()).await;
    assert_eq!(
        refusal(result),
        ConnectError::Refused(reply(500, "5.5.1", "no"))
    );
    let received = received.await.expect("peer");
    assert_eq!(received.all, "LHLO client.test\r\nQUIT\r\n");
}

const EHLO_STARTTLS: &str = "250-mx.dest.test\r\n250 STARTTLS\r\n";

#[tokio::test]
async fn verified_tls_fails_when_starttls_is_not_offered() {
    let (result, _received) = start_with(
        &[GREETING, EHLO_PLAIN],
        Protocol::Smtp,
        TlsMode::Verified,
        timeouts(),
    )
    .await;
    match refusal(result) {
        ConnectError::Failed(DeliveryError::Tls { reason, .. }) => {
            assert!(reason.contains("not offered"), "{reason}");
        }
        other => panic!("expected a TLS failure, got {other:?}"),
    }
}

#[tokio::test]
async fn disabled_tls_never_says_starttls() {
    let (result, received) = start_with(
        &[GREETING, EHLO_STARTTLS],
        Protocol::Smtp,
        TlsMode::Disabled,
        timeouts(),
    )
    .await;
    let connection = result.expect("plaintext connection");
    assert!(connection.capabilities().starttls);
    assert_eq!(
        finish(connection, received).await.all,
        "EHLO client.test\r\n"
    );
}

#[tokio::test]
async fn opportunistic_tls_refused_at_the_command_goes_on_in_plaintext() {
    let script = [GREETING, EHLO_STARTTLS, "454 4.7.0 TLS not available\r\n"];
    let (connection, received) = smtp(&script).await;
    assert!(connection.tls_info().is_none());
    let received = finish(connection, received).await;
    assert_eq!(received.all, "EHLO client.test\r\nSTARTTLS\r\n");
}

#[tokio::test]
async fn verified_tls_refused_at_the_command_fails() {
    let script = [GREETING, EHLO_STARTTLS, "454 4.7.0 TLS not available\r\n"];
    let (result, _received) =
        start_with(&script, Protocol::Smtp, TlsMode::Verified, timeouts()).await;
    assert!(matches!(
        refusal(result),
        ConnectError::Failed(DeliveryError::Tls { .. })
    ));
}

#[tokio::test]
async fn replies_sent_with_the_starttls_reply_are_refused_before_the_handshake() {
    let script = [GREETING, EHLO_STARTTLS, "220 go ahead\r\n250 injected\r\n"];
    let (result, _received) =
        start_with(&script, Protocol::Smtp, TlsMode::Opportunistic, timeouts()).await;
    match refusal(result) {
        ConnectError::Failed(DeliveryError::Protocol { reason, .. }) => {
            assert!(reason.contains("STARTTLS"), "{reason}");
        }
        other => panic!("expected a protocol error, got {other:?}"),
    }
}

#[tokio::test]
async fn a_failed_handshake_gives_up_the_connection_with_a_tls_error() {
    let script = [GREETING, EHLO_STARTTLS, "220 go ahead\r\n", CLOSE];
    let (result, _received) =
        start_with(&script, Protocol::Smtp, TlsMode::Opportunistic, timeouts()).await;
    match refusal(result) {
        ConnectError::Failed(DeliveryError::Tls { host, .. }) => assert_eq!(host, "mx.dest.test"),
        other => panic!("expected a TLS failure, got {other:?}"),
    }
}
