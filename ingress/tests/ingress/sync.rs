//! Clients that do not wait where SMTP says to: an early talker (input before the greeting,
//! with the greeting delay on) and unauthorised pipelining (commands after EHLO, or message
//! content before the 354, in the same write) are refused and closed, and nothing they sent
//! ahead is queued. Patient clients are served as before.

use std::time::Duration;

use tern_testkit::SmtpClient;

use crate::harness::TestIngress;

#[tokio::test]
async fn commands_sent_ahead_of_the_ehlo_reply_close_the_session() {
    let ingress = TestIngress::start().await;
    let (mut client, greeting) = SmtpClient::connect(ingress.addr).await;
    assert_eq!(greeting.code, 220);
    client
        .send(b"EHLO c.example\r\nMAIL FROM:<a@example.org>\r\nRCPT TO:<b@tern.test>\r\n")
        .await;
    let reply = client.reply().await;
    assert_eq!(reply.code, 554, "{reply:?}");
    assert!(reply.text().contains("5.5.0"), "{reply:?}");
    assert!(client.is_closed().await);
}

#[tokio::test]
async fn content_before_the_354_is_not_queued() {
    let ingress = TestIngress::start().await;
    let (mut client, _) = ingress.client().await;
    client
        .send(b"MAIL FROM:<a@example.org>\r\nRCPT TO:<b@tern.test>\r\nDATA\r\nSubject: ahead\r\n\r\nbody\r\n.\r\n")
        .await;
    assert_eq!(client.reply().await.code, 250);
    assert_eq!(client.reply().await.code, 250);
    let reply = client.reply().await;
    assert_eq!(reply.code, 554, "{reply:?}");
    assert!(client.is_closed().await);
    assert_eq!(ingress.count("SELECT count(*) FROM messages").await, 0);

    // Off, the same write is one message (the 354 and the 250 come back together).
    let ingress = TestIngress::start_with(&["--forbid-unauth-pipelining", "false"]).await;
    let (mut client, _) = ingress.client().await;
    client
        .send(b"MAIL FROM:<a@example.org>\r\nRCPT TO:<b@tern.test>\r\nDATA\r\nSubject: ahead\r\n\r\nbody\r\n.\r\n")
        .await;
    for code in [250, 250, 354, 250] {
        assert_eq!(client.reply().await.code, code);
    }
    assert_eq!(ingress.count("SELECT count(*) FROM messages").await, 1);
}

#[tokio::test]
async fn an_early_talker_is_refused_and_a_patient_client_greeted() {
    let ingress = TestIngress::start_with(&["--greet-delay", "700ms"]).await;
    let (mut client, reply) =
        SmtpClient::connect_after(ingress.addr, b"EHLO early.example\r\n").await;
    assert_eq!(reply.code, 554, "{reply:?}");
    assert!(reply.text().contains("5.5.1"), "{reply:?}");
    assert!(client.is_closed().await);

    let started = tokio::time::Instant::now();
    let (_client, greeting) = SmtpClient::connect(ingress.addr).await;
    assert_eq!(greeting.code, 220, "{greeting:?}");
    assert!(
        started.elapsed() >= Duration::from_millis(700),
        "greeted before the delay"
    );

    // Trusted networks are not kept waiting, nor judged.
    let ingress =
        TestIngress::start_with(&["--greet-delay", "30s", "--trusted-networks", "127.0.0.0/8"])
            .await;
    let (_client, reply) = SmtpClient::connect_after(ingress.addr, b"EHLO early.example\r\n").await;
    assert_eq!(reply.code, 220, "{reply:?}");
}

#[tokio::test]
async fn a_client_dribbling_a_byte_at_a_time_is_cut_off_after_the_idle_timeout() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let ingress = TestIngress::start_with(&["--idle-timeout", "2s"]).await;
    let mut stream = tokio::net::TcpStream::connect(ingress.addr)
        .await
        .expect("connect");
    let mut buffer = vec![0u8; 512];
    let n = stream.read(&mut buffer).await.expect("greeting");
    assert!(
        buffer[..n].starts_with(b"220"),
        "{:?}",
        String::from_utf8_lossy(&buffer[..n])
    );
    let started = tokio::time::Instant::now();
    // Each byte comes well within the idle timeout; the line never ends.
    for byte in b"EHLO a-very-slow-client.example".iter().cycle().take(40) {
        stream.write_all(&[*byte]).await.expect("write");
        match tokio::time::timeout(Duration::from_millis(400), stream.read(&mut buffer)).await {
            Err(_) => continue,
            Ok(Ok(n)) => {
                let reply = String::from_utf8_lossy(&buffer[..n]).to_string();
                assert!(reply.starts_with("421 4.4.2"), "{reply}");
                assert!(
                    started.elapsed() < Duration::from_secs(6),
                    "cut off only after {:?}",
                    started.elapsed()
                );
                return;
            }
            Ok(Err(error)) => panic!("read: {error}"),
        }
    }
    panic!(
        "a client that never finished its line kept the session for {:?}",
        started.elapsed()
    );
}
