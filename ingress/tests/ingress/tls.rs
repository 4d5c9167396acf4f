//! STARTTLS (RFC 3207) on the port 25 and 587 roles and implicit TLS (RFC 8314) on the 465 role,
//! through this crate's transcript client, which trusts only the certificate a test made — so a
//! handshake that succeeds also proves which certificate was served.

use tern_ingress::ListenerKind;
use tern_testkit::SmtpClient;
use tern_testkit::tls_files::{SecretMount, TestCertificate};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::harness::{TestIngress, queue_id, send_message};

pub const SERVER_NAME: &str = "mx.tern.test";

/// An ingress with one certificate for [`SERVER_NAME`] and all three listeners; `extra` are more
/// settings. The mount must outlive the ingress (the files are read again on every reload).
pub async fn start_tls_ingress(extra: &[&str]) -> (TestIngress, SecretMount, TestCertificate) {
    let certificate = TestCertificate::self_signed(&[SERVER_NAME]);
    let mount = SecretMount::new(&certificate);
    let setting = mount.setting();
    let mut args = vec![
        "--tls-certificates",
        &setting,
        "--submission-listen",
        "127.0.0.1:0",
        "--submissions-listen",
        "127.0.0.1:0",
    ];
    args.extend_from_slice(extra);
    let ingress = TestIngress::start_with(&args).await;
    (ingress, mount, certificate)
}

/// Connects in plain text, says EHLO, STARTTLS, handshakes and says EHLO again.
pub async fn starttls_client(
    addr: std::net::SocketAddr,
    trusted: &TestCertificate,
) -> (SmtpClient, tern_testkit::TestReply) {
    let (client, greeting) = SmtpClient::connect(addr).await;
    assert_eq!(greeting.code, 220, "{greeting:?}");
    starttls(client, trusted).await
}

/// On a greeted plain-text session: EHLO, STARTTLS, handshake and EHLO again.
pub async fn starttls(
    mut client: SmtpClient,
    trusted: &TestCertificate,
) -> (SmtpClient, tern_testkit::TestReply) {
    let ehlo = client.command("EHLO client.example").await;
    assert!(ehlo.lines.iter().any(|l| l == "STARTTLS"), "{ehlo:?}");
    let reply = client.command("STARTTLS").await;
    assert_eq!(
        (reply.code, reply.text()),
        (220, "2.0.0 Ready to start TLS".into())
    );
    let mut client = client
        .start_tls(SERVER_NAME, &trusted.cert_pem)
        .await
        .expect("TLS handshake");
    let ehlo = client.command("EHLO client.example").await;
    assert_eq!(ehlo.code, 250, "{ehlo:?}");
    (client, ehlo)
}

/// swaks over TLS (`mode` is `--tls` or `--tlsc`) to `server`, verifying the certificate against
/// `ca` for [`SERVER_NAME`], with `extra` options; asserts success and returns the transcript.
pub async fn swaks_verified(
    server: std::net::SocketAddr,
    mode: &str,
    ca: &str,
    extra: &[&str],
) -> String {
    crate::peers::require("swaks");
    let server = server.to_string();
    let output = tokio::process::Command::new("swaks")
        .args([
            "--server",
            &server,
            mode,
            "--tls-verify",
            "--tls-ca-path",
            ca,
        ])
        .args(["--tls-sni", SERVER_NAME])
        .args(extra)
        .output()
        .await
        .expect("run swaks");
    let transcript = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(output.status.success(), "{mode}: {transcript}");
    transcript
}

pub async fn stored_body(ingress: &TestIngress, queue_id: &str) -> String {
    let body: Vec<u8> =
        sqlx::query_scalar("SELECT body FROM messages WHERE replace(id::text, '-', '') = $1")
            .bind(queue_id)
            .fetch_one(&ingress.db.pool)
            .await
            .expect("the message is committed");
    String::from_utf8_lossy(&body).into_owned()
}

#[tokio::test]
async fn starttls_then_a_message_records_the_tls_version_and_cipher() {
    let (ingress, _mount, certificate) = start_tls_ingress(&[]).await;
    let (mut client, ehlo) = starttls_client(ingress.addr, &certificate).await;
    assert_eq!(client.tls_version().as_deref(), Some("TLSv1_3"));
    assert!(
        !ehlo.lines.iter().any(|l| l == "STARTTLS"),
        "STARTTLS is not offered twice: {ehlo:?}"
    );
    let reply = send_message(
        &mut client,
        "sender@example.org",
        &["someone@tern.test"],
        b"Subject: over TLS\r\n\r\nsecret\r\n",
    )
    .await;
    let body = stored_body(&ingress, &queue_id(&reply)).await;
    assert!(
        body.starts_with(
            "Received: from client.example ([127.0.0.1])\r\n\t(using TLSv1.3 with cipher TLS13_"
        ),
        "{body}"
    );
    assert!(body.contains("with ESMTPS id "), "{body}");
}

#[tokio::test]
async fn the_submission_role_offers_starttls() {
    let (ingress, _mount, certificate) = start_tls_ingress(&[]).await;
    let (mut client, ehlo) =
        starttls_client(ingress.addr_of(ListenerKind::Submission), &certificate).await;
    assert!(!ehlo.lines.iter().any(|l| l == "STARTTLS"), "{ehlo:?}");
    assert_eq!(client.command("NOOP").await.code, 250);
}

#[tokio::test]
async fn implicit_tls_handshakes_before_the_greeting() {
    let (ingress, _mount, certificate) = start_tls_ingress(&[]).await;
    let addr = ingress.addr_of(ListenerKind::Submissions);
    let (mut client, greeting) = SmtpClient::connect_tls(addr, SERVER_NAME, &certificate.cert_pem)
        .await
        .expect("TLS handshake");
    assert_eq!(greeting.code, 220, "{greeting:?}");
    let ehlo = client.command("EHLO client.example").await;
    assert_eq!(ehlo.code, 250, "{ehlo:?}");
    assert!(!ehlo.lines.iter().any(|l| l == "STARTTLS"), "{ehlo:?}");
    assert_eq!(
        client.command("STARTTLS").await.text(),
        "5.5.1 TLS already active"
    );

    // A plain-text client on the 465 role gets no greeting: the server waits for a ClientHello
    // and gives up on the garbage.
    let mut plain = tokio::net::TcpStream::connect(addr).await.expect("connect");
    plain
        .write_all(b"EHLO plain.example\r\n")
        .await
        .expect("send");
    let mut buffer = [0u8; 64];
    let read = plain.read(&mut buffer).await.unwrap_or(0);
    assert!(
        !buffer[..read].starts_with(b"220") && !buffer[..read].starts_with(b"250"),
        "plain text answered: {:?}",
        String::from_utf8_lossy(&buffer[..read])
    );
}

#[tokio::test]
async fn commands_pipelined_with_starttls_are_discarded() {
    let (ingress, _mount, certificate) = start_tls_ingress(&[]).await;
    let (mut client, greeting) = SmtpClient::connect(ingress.addr).await;
    assert_eq!(greeting.code, 220);
    assert_eq!(client.command("EHLO client.example").await.code, 250);
    // The CVE-2011-0411 attack: plain-text commands injected after STARTTLS in the same packet
    // must never run inside the TLS session.
    client
        .send(b"STARTTLS\r\nMAIL FROM:<injected@example.org>\r\nRCPT TO:<victim@tern.test>\r\n")
        .await;
    assert_eq!(client.reply().await.code, 220);
    // A reply to the injected commands would be buffered here and read as the EHLO reply below.
    let mut client = client
        .start_tls(SERVER_NAME, &certificate.cert_pem)
        .await
        .expect("TLS handshake");
    let ehlo = client.command("EHLO client.example").await;
    assert_eq!(ehlo.code, 250, "{ehlo:?}");
    assert!(ehlo.lines[0].starts_with(SERVER_NAME), "{ehlo:?}");
    let rcpt = client.command("RCPT TO:<victim@tern.test>").await;
    assert_eq!(
        (rcpt.code, rcpt.text()),
        (503, "5.5.1 Need MAIL command".into()),
        "the injected MAIL FROM was executed"
    );
}

#[tokio::test]
async fn starttls_state_is_reset_and_helo_is_required_again() {
    let (ingress, _mount, certificate) = start_tls_ingress(&[]).await;
    let (mut client, _) = SmtpClient::connect(ingress.addr).await;
    assert_eq!(client.command("EHLO before.example").await.code, 250);
    assert_eq!(client.command("STARTTLS").await.code, 220);
    let mut client = client
        .start_tls(SERVER_NAME, &certificate.cert_pem)
        .await
        .expect("TLS handshake");
    let mail = client.command("MAIL FROM:<a@example.org>").await;
    assert_eq!(mail.code, 503, "the pre-TLS EHLO was kept: {mail:?}");
}

#[tokio::test]
async fn starttls_with_a_parameter_or_twice_is_refused() {
    let (ingress, _mount, certificate) = start_tls_ingress(&[]).await;
    let (mut client, _) = SmtpClient::connect(ingress.addr).await;
    assert_eq!(client.command("EHLO client.example").await.code, 250);
    let reply = client.command("STARTTLS now").await;
    assert_eq!(
        (reply.code, reply.text()),
        (501, "5.5.4 Syntax: STARTTLS".into())
    );
    assert_eq!(client.command("MAIL FROM:<a@example.org>").await.code, 250);
    let reply = client.command("STARTTLS").await;
    assert_eq!(
        (reply.code, reply.text()),
        (503, "5.5.1 MAIL transaction in progress".into())
    );
    assert_eq!(client.command("RSET").await.code, 250);
    assert_eq!(client.command("STARTTLS").await.code, 220);
    let mut client = client
        .start_tls(SERVER_NAME, &certificate.cert_pem)
        .await
        .expect("TLS handshake");
    assert_eq!(client.command("EHLO client.example").await.code, 250);
    let reply = client.command("STARTTLS").await;
    assert_eq!(
        (reply.code, reply.text()),
        (503, "5.5.1 TLS already active".into())
    );
}

#[tokio::test]
async fn without_certificates_starttls_is_neither_offered_nor_accepted() {
    let ingress = TestIngress::start().await;
    let (mut client, ehlo) = ingress.client().await;
    assert!(!ehlo.lines.iter().any(|l| l == "STARTTLS"), "{ehlo:?}");
    let reply = client.command("STARTTLS").await;
    assert_eq!(reply.code, 502, "{reply:?}");
    assert_eq!(client.command("NOOP").await.code, 250);
}
