use std::net::SocketAddr;
use std::time::Duration;

use tern_smtp::proxy::ProxyError;
use tokio::io::{AsyncReadExt, AsyncWriteExt, duplex};
use tokio_util::sync::CancellationToken;

use super::{ProxyConfig, ProxyRefusal, read_client};
use crate::config::ListenerKind;

const BALANCER: &str = "10.1.2.3:40000";
const LONG: Duration = Duration::from_secs(30);

fn balancer() -> SocketAddr {
    BALANCER.parse().expect("address")
}

/// Sends `pieces` one write at a time, then reads the client address and what is left unread.
async fn read_after(pieces: &[&[u8]]) -> (Result<SocketAddr, ProxyRefusal>, Vec<u8>) {
    let (mut server, mut client) = duplex(4096);
    for piece in pieces {
        client.write_all(piece).await.expect("write");
    }
    drop(client);
    let result = read_client(&mut server, balancer(), LONG, &CancellationToken::new()).await;
    let mut rest = Vec::new();
    server.read_to_end(&mut rest).await.expect("read rest");
    (result, rest)
}

#[tokio::test]
async fn the_client_named_in_the_header_is_returned_and_the_session_bytes_are_left_unread() {
    let (client, rest) =
        read_after(&[b"PROXY TCP4 203.0.113.7 192.0.2.1 56324 25\r\nEHLO a\r\nMAIL FROM:<>\r\n"])
            .await;
    assert_eq!(
        client.expect("valid"),
        "203.0.113.7:56324".parse().expect("address")
    );
    assert_eq!(rest, b"EHLO a\r\nMAIL FROM:<>\r\n");
}

#[tokio::test]
async fn a_v2_header_split_across_writes_is_reassembled() {
    let mut header = b"\r\n\r\n\0\r\nQUIT\n\x21\x21\x00\x2b".to_vec();
    header.extend_from_slice(&[0x20, 0x01, 0x0d, 0xb8].repeat(4));
    header.extend_from_slice(&[0x20, 0x01, 0x0d, 0xb8].repeat(4));
    header.extend_from_slice(&[0x9c, 0x40, 0x02, 0x4b]);
    header.extend_from_slice(&[0x04, 0x00, 0x04, b'a', b'b', b'c', b'd']);
    let (client, rest) =
        read_after(&[&header[..5], &header[5..20], &header[20..], b"QUIT\r\n"]).await;
    let expected: SocketAddr = "[2001:db8:2001:db8:2001:db8:2001:db8]:40000"
        .parse()
        .expect("address");
    assert_eq!(client.expect("valid"), expected);
    assert_eq!(rest, b"QUIT\r\n");
}

#[tokio::test]
async fn a_header_without_a_client_address_leaves_the_balancer_as_the_client() {
    let (local, rest) = read_after(&[b"\r\n\r\n\0\r\nQUIT\n\x20\x00\x00\x00EHLO\r\n"]).await;
    assert_eq!(local.expect("LOCAL"), balancer());
    assert_eq!(rest, b"EHLO\r\n");
    let (unknown, _) = read_after(&[b"PROXY UNKNOWN\r\n"]).await;
    assert_eq!(unknown.expect("UNKNOWN"), balancer());
}

#[tokio::test]
async fn an_ipv4_mapped_client_is_reported_as_ipv4() {
    let (client, _) = read_after(&[b"PROXY TCP6 ::ffff:203.0.113.7 ::1 1000 25\r\n"]).await;
    assert_eq!(
        client.expect("valid"),
        "203.0.113.7:1000".parse().expect("address")
    );
}

#[tokio::test]
async fn missing_garbage_and_truncated_headers_are_refused() {
    let (smtp, _) = read_after(&[b"EHLO client.example\r\n"]).await;
    assert!(matches!(
        smtp,
        Err(ProxyRefusal::Invalid(ProxyError::NoHeader))
    ));
    let (bad, _) = read_after(&[b"PROXY TCP4 1.2.3.4 5.6.7.8 99999 25\r\n"]).await;
    assert!(matches!(
        bad,
        Err(ProxyRefusal::Invalid(ProxyError::MalformedV1))
    ));
    let (truncated, _) = read_after(&[b"PROXY TCP4 1.2.3.4"]).await;
    assert!(matches!(truncated, Err(ProxyRefusal::Closed)));
}

#[tokio::test]
async fn a_header_that_does_not_arrive_in_time_is_refused() {
    let (mut server, mut client) = duplex(64);
    client.write_all(b"PROXY TCP4 ").await.expect("write");
    let result = read_client(
        &mut server,
        balancer(),
        Duration::from_millis(50),
        &CancellationToken::new(),
    )
    .await;
    assert!(matches!(result, Err(ProxyRefusal::Timeout)), "{result:?}");
    drop(client);
}

#[tokio::test]
async fn shutdown_abandons_a_header_in_progress() {
    let (mut server, _client) = duplex(64);
    let shutdown = CancellationToken::new();
    shutdown.cancel();
    let result = read_client(&mut server, balancer(), LONG, &shutdown).await;
    assert!(
        matches!(result, Err(ProxyRefusal::ShuttingDown)),
        "{result:?}"
    );
}

#[test]
fn only_configured_listeners_and_balancers_are_concerned() {
    let config = ProxyConfig {
        listeners: vec![ListenerKind::Smtp],
        trusted_networks: vec!["10.0.0.0/8".parse().expect("net")],
        header_timeout: LONG,
    };
    assert!(config.required_on(ListenerKind::Smtp));
    assert!(!config.required_on(ListenerKind::Submission));
    assert!(config.trusts("10.9.9.9".parse().expect("ip")));
    assert!(config.trusts("::ffff:10.9.9.9".parse().expect("ip")));
    assert!(!config.trusts("127.0.0.1".parse().expect("ip")));
}

#[test]
fn settings_name_listeners_and_need_trusted_balancers() {
    let config =
        ProxyConfig::parse("smtp, submissions,smtp", "10.0.0.0/8 192.0.2.10", LONG).expect("valid");
    assert_eq!(
        config.listeners,
        [ListenerKind::Smtp, ListenerKind::Submissions]
    );
    assert!(config.trusts("192.0.2.10".parse().expect("ip")));
    let none = ProxyConfig::parse("", "", LONG).expect("valid");
    assert!(none.listeners.is_empty());

    let cases = [
        ("smtp", "", LONG, "TERN_INGRESS_PROXY_TRUSTED_NETWORKS"),
        (
            "smtp",
            "10.0.0.0/33",
            LONG,
            "TERN_INGRESS_PROXY_TRUSTED_NETWORKS",
        ),
        ("lmtp", "10.0.0.0/8", LONG, "TERN_INGRESS_PROXY_PROTOCOL"),
        (
            "smtp",
            "10.0.0.0/8",
            Duration::ZERO,
            "TERN_INGRESS_PROXY_HEADER_TIMEOUT",
        ),
    ];
    for (listeners, networks, timeout, setting) in cases {
        let error = ProxyConfig::parse(listeners, networks, timeout).expect_err("invalid");
        assert_eq!(error.setting, setting, "{listeners:?} {networks:?}");
    }
}
