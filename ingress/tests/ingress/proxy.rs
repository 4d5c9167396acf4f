//! PROXY protocol on the listeners: the client a trusted load balancer names is the client for
//! `Received:`, relay decisions and per-IP limits; anything else closes the connection before SMTP.
//! The open-relay battery runs again from a client that claims an external address.

mod client;

use tern_ingress::ListenerKind;
use tern_testkit::SmtpClient;

use crate::auth::{LOGIN, PASSWORD, add_alice, plain};
use crate::harness::TestIngress;
use crate::peers::python;
use crate::relay::RELAY_TRICKS;
use crate::tls::{SERVER_NAME, start_tls_ingress, starttls, stored_body};
use client::{ProxiedClient, v2_header};

/// 127.0.0.1 (where the tests connect from) is the load balancer.
const BALANCER_IS_LOCAL: &[&str] = &[
    "--proxy-protocol",
    "smtp",
    "--proxy-trusted-networks",
    "127.0.0.0/8",
];

const TRANSACTION: &[&str] = &[
    "MAIL FROM:<alice@example.org>",
    "RCPT TO:<bob@tern.test>",
    "DATA",
];

/// Runs one transaction and returns the stored message's first line.
async fn received_line(ingress: &TestIngress, client: &mut ProxiedClient) -> String {
    for line in TRANSACTION {
        let reply = client.command(line).await;
        assert!(reply.code == 250 || reply.code == 354, "{line}: {reply:?}");
    }
    let reply = client.command("Subject: hi\r\n\r\nbody\r\n.").await;
    assert_eq!(reply.code, 250, "{reply:?}");
    let queue_id = reply.text().rsplit(' ').next().expect("id").to_owned();
    let body = stored_body(ingress, &queue_id).await;
    body.lines().next().expect("first line").to_owned()
}

#[tokio::test]
async fn the_client_named_by_v1_and_v2_headers_is_the_one_in_received() {
    let ingress = TestIngress::start_with(BALANCER_IS_LOCAL).await;
    let mut tlvs = vec![0x01, 0x00, 0x04];
    tlvs.extend_from_slice(b"smtp");
    tlvs.extend_from_slice(&[0x05, 0x00, 0x03, 1, 2, 3]);
    let v6: std::net::Ipv6Addr = "2001:db8::7".parse().expect("ip");
    let mut inet6 = v6.octets().to_vec();
    inet6.extend_from_slice(
        &"2001:db8::1"
            .parse::<std::net::Ipv6Addr>()
            .expect("ip")
            .octets(),
    );
    inet6.extend_from_slice(&[0x9c, 0x40, 0x00, 0x19]);
    let mut inet = vec![203, 0, 113, 7, 192, 0, 2, 1, 0x9c, 0x40, 0x00, 0x19];
    inet.extend_from_slice(&tlvs);
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (
            b"PROXY TCP4 203.0.113.7 192.0.2.1 40000 25\r\n".to_vec(),
            "203.0.113.7",
        ),
        (
            b"PROXY TCP6 2001:db8::7 2001:db8::1 40000 25\r\n".to_vec(),
            "IPv6:2001:db8::7",
        ),
        (v2_header(0x21, 0x11, &inet), "203.0.113.7"),
        (v2_header(0x21, 0x21, &inet6), "IPv6:2001:db8::7"),
        // LOCAL: the balancer speaks for itself.
        (v2_header(0x20, 0x00, b""), "127.0.0.1"),
    ];
    for (header, client_ip) in cases {
        let mut client = ProxiedClient::connect(ingress.addr, &header).await;
        let greeting = client.reply().await;
        assert_eq!(greeting.code, 220, "{greeting:?}");
        assert_eq!(client.command("EHLO client.example").await.code, 250);
        let line = received_line(&ingress, &mut client).await;
        assert_eq!(
            line,
            format!("Received: from client.example ([{client_ip}])")
        );
    }
}

#[tokio::test]
async fn commands_pipelined_in_the_same_write_as_the_header_are_served() {
    let ingress = TestIngress::start_with(BALANCER_IS_LOCAL).await;
    let first = b"PROXY TCP4 198.51.100.20 192.0.2.1 1234 25\r\nEHLO client.example\r\n";
    let mut client = ProxiedClient::connect(ingress.addr, first).await;
    assert_eq!(client.reply().await.code, 220);
    let ehlo = client.reply().await;
    assert_eq!(ehlo.code, 250, "{ehlo:?}");
    let line = received_line(&ingress, &mut client).await;
    assert_eq!(line, "Received: from client.example ([198.51.100.20])");
}

#[tokio::test]
async fn a_trusted_balancer_without_a_valid_header_is_closed_before_smtp() {
    let ingress = TestIngress::start_with(BALANCER_IS_LOCAL).await;
    let mut bad_tlv = vec![203, 0, 113, 7, 192, 0, 2, 1, 0x9c, 0x40, 0x00, 0x19];
    bad_tlv.extend_from_slice(&[0x01, 0x00, 0x09, b'x']);
    let openings: Vec<Vec<u8>> = vec![
        b"EHLO client.example\r\n".to_vec(),
        b"PROXY TCP4 203.0.113.7 192.0.2.1 40000\r\n".to_vec(),
        b"PROXY TCP4 203.0.113.777 192.0.2.1 40000 25\r\n".to_vec(),
        b"PROXY TCP4 203.0.113.7 192.0.2.1 40000 25\n".to_vec(),
        b"\x00\x01\x02garbage\r\n".to_vec(),
        v2_header(0x21, 0x11, &bad_tlv),
        v2_header(0x22, 0x11, &bad_tlv[..12]),
        v2_header(0x21, 0x12, &bad_tlv[..12]),
    ];
    for opening in openings {
        let mut client = ProxiedClient::connect(ingress.addr, &opening).await;
        assert!(
            client.closed_without_a_word().await,
            "{:?}",
            String::from_utf8_lossy(&opening)
        );
    }
    // The listener still serves a correct balancer afterwards.
    let mut client = ProxiedClient::connect(ingress.addr, b"PROXY UNKNOWN\r\n").await;
    assert_eq!(client.reply().await.code, 220);
}

#[tokio::test]
async fn a_header_from_outside_the_balancer_networks_is_not_believed() {
    let ingress = TestIngress::start_with(&[
        "--proxy-protocol",
        "smtp",
        "--proxy-trusted-networks",
        "192.0.2.0/24",
    ])
    .await;
    let mut client = ProxiedClient::connect(
        ingress.addr,
        b"PROXY TCP4 192.0.2.5 192.0.2.1 40000 25\r\nEHLO client.example\r\n",
    )
    .await;
    assert!(client.closed_without_a_word().await);
}

#[tokio::test]
async fn a_header_that_does_not_arrive_in_time_closes_the_connection() {
    let mut args = BALANCER_IS_LOCAL.to_vec();
    args.extend_from_slice(&["--proxy-header-timeout", "300ms"]);
    let ingress = TestIngress::start_with(&args).await;
    let mut client = ProxiedClient::connect(ingress.addr, b"PROXY TCP4 203.0.113.7 ").await;
    assert!(client.closed_without_a_word().await);
}

#[tokio::test]
async fn listeners_not_named_do_not_expect_a_header() {
    let ingress = TestIngress::start_with(&[
        "--proxy-protocol",
        "submission",
        "--proxy-trusted-networks",
        "127.0.0.0/8",
        "--submission-listen",
        "127.0.0.1:0",
    ])
    .await;
    let (_, greeting) = tern_testkit::SmtpClient::connect(ingress.addr).await;
    assert_eq!(greeting.code, 220);
    let mut client = ProxiedClient::connect(
        ingress.addr_of(ListenerKind::Submission),
        b"EHLO client.example\r\n",
    )
    .await;
    assert!(client.closed_without_a_word().await);
}

#[tokio::test]
async fn the_per_ip_limit_counts_the_client_the_header_names() {
    let mut args = BALANCER_IS_LOCAL.to_vec();
    args.extend_from_slice(&["--max-connections-per-ip", "1"]);
    let ingress = TestIngress::start_with(&args).await;
    let header = |ip: &str| format!("PROXY TCP4 {ip} 192.0.2.1 40000 25\r\n");
    let mut first = ProxiedClient::connect(ingress.addr, header("203.0.113.7").as_bytes()).await;
    assert_eq!(first.reply().await.code, 220);
    let mut same = ProxiedClient::connect(ingress.addr, header("203.0.113.7").as_bytes()).await;
    let refused = same.reply().await;
    assert_eq!(refused.code, 421, "{refused:?}");
    assert!(refused.text().starts_with("4.7.0"), "{refused:?}");
    // Same balancer, another client: its own allowance.
    let mut other = ProxiedClient::connect(ingress.addr, header("203.0.113.8").as_bytes()).await;
    assert_eq!(other.reply().await.code, 220);
}

/// Relaying is allowed from 127.0.0.0/8, which is also where the balancer is: only the address in
/// the header decides.
async fn relay_battery(claimed: &str) -> Vec<(String, u16, String)> {
    let mut args = BALANCER_IS_LOCAL.to_vec();
    args.extend_from_slice(&["--trusted-networks", "127.0.0.0/8"]);
    let ingress = TestIngress::start_with(&args).await;
    let header = format!("PROXY TCP4 {claimed} 192.0.2.1 40000 25\r\n");
    let mut client = ProxiedClient::connect(ingress.addr, header.as_bytes()).await;
    assert_eq!(client.reply().await.code, 220);
    assert_eq!(client.command("EHLO client.example").await.code, 250);
    assert_eq!(client.command("MAIL FROM:<a@example.org>").await.code, 250);
    let mut replies = Vec::new();
    for rcpt in RELAY_TRICKS {
        let reply = client.command(&format!("RCPT TO:<{rcpt}>")).await;
        replies.push((rcpt.to_string(), reply.code, reply.text()));
    }
    replies
}

#[tokio::test]
async fn every_relay_trick_is_refused_from_a_client_claiming_an_external_address() {
    for (rcpt, code, text) in relay_battery("203.0.113.7").await {
        assert_eq!(code, 554, "{rcpt}: {text}");
        assert!(text.starts_with("5.7.1"), "{rcpt}: {text}");
    }
}

#[tokio::test]
async fn the_same_recipients_are_accepted_from_a_client_claiming_a_trusted_address() {
    for (rcpt, code, text) in relay_battery("127.0.0.9").await {
        assert_eq!(code, 250, "{rcpt}: {text}");
    }
}

#[tokio::test]
async fn the_refused_recipients_are_accepted_after_auth_from_the_same_external_client() {
    let mut args = BALANCER_IS_LOCAL.to_vec();
    args.extend_from_slice(&["--trusted-networks", "127.0.0.0/8"]);
    let (ingress, _mount, certificate) = start_tls_ingress(&args).await;
    add_alice(&ingress).await;
    let header = b"PROXY TCP4 203.0.113.7 192.0.2.1 40000 25\r\n";
    let (client, greeting) = SmtpClient::connect_after(ingress.addr, header).await;
    assert_eq!(greeting.code, 220);
    let (mut client, _) = starttls(client, &certificate).await;
    // Encrypted but not authenticated: still an outsider.
    assert_eq!(
        client.command("MAIL FROM:<alice@example.org>").await.code,
        250
    );
    for rcpt in RELAY_TRICKS {
        let reply = client.command(&format!("RCPT TO:<{rcpt}>")).await;
        assert_eq!(reply.code, 554, "{rcpt}: {reply:?}");
    }
    assert_eq!(client.command("RSET").await.code, 250);
    let auth = client
        .command(&format!("AUTH PLAIN {}", plain(LOGIN, PASSWORD)))
        .await;
    assert_eq!(auth.code, 235, "{auth:?}");
    assert_eq!(
        client.command("MAIL FROM:<alice@example.org>").await.code,
        250
    );
    for rcpt in RELAY_TRICKS {
        let reply = client.command(&format!("RCPT TO:<{rcpt}>")).await;
        assert_eq!(reply.code, 250, "{rcpt}: {reply:?}");
    }
}

#[tokio::test]
async fn on_the_implicit_tls_listener_the_header_comes_before_the_handshake() {
    let (ingress, mount, _certificate) = start_tls_ingress(&[
        "--proxy-protocol",
        "submissions",
        "--proxy-trusted-networks",
        "127.0.0.0/8",
    ])
    .await;
    add_alice(&ingress).await;
    let addr = ingress.addr_of(ListenerKind::Submissions);
    let script = r#"
import socket, ssl, sys
host, port, cafile, name = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
raw = socket.create_connection((host, port), timeout=30)
raw.sendall(b"PROXY TCP4 198.51.100.44 192.0.2.1 40000 465\r\n")
tls = ssl.create_default_context(cafile=cafile).wrap_socket(raw, server_hostname=name)
io = tls.makefile("rwb")
def reply():
    while True:
        line = io.readline()
        if line[3:4] != b"-":
            return line.decode().strip()
def command(line):
    io.write(line.encode() + b"\r\n"); io.flush()
    return reply()
assert reply().startswith("220"), "greeting"
assert command("EHLO client.example")[:3] == "250"
assert command("AUTH PLAIN " + sys.argv[5])[:3] == "235", "AUTH"
for line in ["MAIL FROM:<alice@example.org>", "RCPT TO:<bob@tern.test>", "DATA"]:
    assert command(line)[:3] in ("250", "354"), line
print(command("Subject: hi\r\n\r\nbody\r\n."))
"#;
    let args = [
        addr.ip().to_string(),
        addr.port().to_string(),
        mount.cert().display().to_string(),
        SERVER_NAME.to_string(),
        plain(LOGIN, PASSWORD),
    ];
    let stdout = python(script, &args).await;
    let queue_id = stdout.trim().rsplit(' ').next().expect("queue id");
    let body = stored_body(&ingress, queue_id).await;
    assert!(
        body.starts_with("Received: from client.example ([198.51.100.44])\r\n\t(using TLSv1.3"),
        "{body}"
    );
}
