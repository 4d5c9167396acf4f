//! STARTTLS at the sink, driven by a rustls client that trusts the sink's certificate.
//!
//! swaks needs Net::SSLeay for `--tls`, which this machine's Perl lacks; a Rust client also
//! proves that `cert_pem` is enough to verify the sink.

use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{ClientConfig, RootCertStore};
use tern_testkit::sink::{SinkConfig, SinkServer};
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

/// Sends `command` (if any) and returns the reply, its lines joined by `\n`.
async fn exchange<S: AsyncRead + AsyncWrite + Unpin>(
    io: &mut BufReader<S>,
    command: &str,
) -> String {
    if !command.is_empty() {
        io.get_mut()
            .write_all(format!("{command}\r\n").as_bytes())
            .await
            .expect("send");
    }
    let mut reply = Vec::new();
    loop {
        let mut line = String::new();
        io.read_line(&mut line).await.expect("read a reply line");
        assert!(!line.is_empty(), "connection closed after {command:?}");
        let last = line.as_bytes().get(3) == Some(&b' ');
        reply.push(line.trim_end().to_owned());
        if last {
            return reply.join("\n");
        }
    }
}

fn connector(pem: &str) -> TlsConnector {
    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(pem.as_bytes()) {
        roots
            .add(cert.expect("a PEM certificate"))
            .expect("a usable root");
    }
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("protocol versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    TlsConnector::from(Arc::new(config))
}

#[tokio::test]
async fn a_message_sent_after_starttls_is_recorded_as_tls() {
    let sink = SinkServer::start(SinkConfig {
        starttls: true,
        ..SinkConfig::default()
    })
    .await;
    let pem = sink.cert_pem().expect("a certificate when STARTTLS is on");
    let tcp = TcpStream::connect(sink.addr()).await.expect("connect");
    let mut plain = BufReader::new(tcp);
    assert!(exchange(&mut plain, "").await.starts_with("220 "));
    assert!(
        exchange(&mut plain, "EHLO c.test")
            .await
            .contains("STARTTLS")
    );
    assert!(exchange(&mut plain, "STARTTLS").await.starts_with("220 "));

    let name = ServerName::try_from("localhost").expect("a server name");
    let tls = connector(pem)
        .connect(name, plain.into_inner())
        .await
        .expect("the handshake verifies against cert_pem");
    let mut secure = BufReader::new(tls);
    let ehlo = exchange(&mut secure, "EHLO c.test").await;
    assert!(
        ehlo.starts_with("250") && !ehlo.contains("STARTTLS"),
        "{ehlo}"
    );
    exchange(&mut secure, "MAIL FROM:<a@c.test>").await;
    exchange(&mut secure, "RCPT TO:<b@example.test>").await;
    assert!(exchange(&mut secure, "DATA").await.starts_with("354"));
    assert!(
        exchange(&mut secure, "secret\r\n.")
            .await
            .starts_with("250")
    );

    let received = sink.wait_for(1, Duration::from_secs(10)).await;
    assert!(received[0].tls);
    assert_eq!(received[0].data, b"secret\r\n");
}

#[tokio::test]
async fn starttls_is_refused_when_not_offered() {
    let sink = SinkServer::start(SinkConfig::default()).await;
    assert_eq!(sink.cert_pem(), None);
    let tcp = TcpStream::connect(sink.addr()).await.expect("connect");
    let mut plain = BufReader::new(tcp);
    exchange(&mut plain, "").await;
    assert!(
        !exchange(&mut plain, "EHLO c.test")
            .await
            .contains("STARTTLS")
    );
    assert!(exchange(&mut plain, "STARTTLS").await.starts_with("502"));
}
