//! Protocol behaviour over a real socket: pipelining, limits, and the SMTP smuggling family.

use crate::harness::{TestIngress, queue_id};

#[tokio::test]
async fn a_pipelined_transaction_gets_its_replies_in_order() {
    let ingress = TestIngress::start().await;
    let (mut client, ehlo) = ingress.client().await;
    assert!(ehlo.lines.iter().any(|l| l == "PIPELINING"));
    client
        .send(b"MAIL FROM:<a@example.org>\r\nRCPT TO:<b@tern.test>\r\nRCPT TO:<x@elsewhere.example>\r\nRCPT TO:<c@tern.test>\r\nDATA\r\n")
        .await;
    let codes = [
        client.reply().await,
        client.reply().await,
        client.reply().await,
        client.reply().await,
        client.reply().await,
    ];
    let codes: Vec<u16> = codes.iter().map(|r| r.code).collect();
    assert_eq!(codes, [250, 250, 554, 250, 354]);
    // the message, the next transaction and QUIT in one write
    client
        .send(b"Subject: p\r\n\r\nhi\r\n.\r\nMAIL FROM:<>\r\nRCPT TO:<d@tern.test>\r\nDATA\r\n")
        .await;
    let first = queue_id(&client.reply().await);
    assert_eq!(client.reply().await.code, 250);
    assert_eq!(client.reply().await.code, 250);
    assert_eq!(client.reply().await.code, 354);
    client.send(b"Subject: q\r\n\r\nho\r\n.\r\nQUIT\r\n").await;
    let second = queue_id(&client.reply().await);
    assert_ne!(first, second);
    assert_eq!(client.reply().await.code, 221);
    assert!(client.is_closed().await);
    assert_eq!(ingress.count("SELECT count(*) FROM jobs").await, 3);
}

#[tokio::test]
async fn declared_size_over_the_limit_is_refused_at_mail() {
    let ingress = TestIngress::start_with(&["--max-message-size", "1000"]).await;
    let (mut client, ehlo) = ingress.client().await;
    assert!(ehlo.lines.iter().any(|l| l == "SIZE 1000"), "{ehlo:?}");
    let reply = client.command("MAIL FROM:<a@example.org> SIZE=1001").await;
    assert_eq!(reply.code, 552);
    assert!(reply.text().starts_with("5.3.4"), "{reply:?}");
}

#[tokio::test]
async fn real_size_over_the_limit_is_refused_after_data_and_nothing_is_stored() {
    let ingress = TestIngress::start_with(&["--max-message-size", "1000"]).await;
    let (mut client, _) = ingress.client().await;
    assert_eq!(
        client
            .command("MAIL FROM:<a@example.org> SIZE=500")
            .await
            .code,
        250
    );
    assert_eq!(client.command("RCPT TO:<b@tern.test>").await.code, 250);
    assert_eq!(client.command("DATA").await.code, 354);
    for _ in 0..30 {
        client.send(&[b'x'; 98]).await;
        client.send(b"\r\n").await;
    }
    client.send(b".\r\n").await;
    let reply = client.reply().await;
    assert_eq!(reply.code, 552, "{reply:?}");
    // the session goes on
    assert_eq!(client.command("NOOP").await.code, 250);
    assert_eq!(ingress.count("SELECT count(*) FROM messages").await, 0);
    assert_eq!(ingress.count("SELECT count(*) FROM jobs").await, 0);
}

#[tokio::test]
async fn recipients_over_the_limit_get_452_and_the_rest_are_queued() {
    let ingress = TestIngress::start().await;
    let (mut client, _) = ingress.client().await;
    assert_eq!(client.command("MAIL FROM:<a@example.org>").await.code, 250);
    let mut pipelined = String::new();
    for n in 0..120 {
        pipelined.push_str(&format!("RCPT TO:<user{n}@tern.test>\r\n"));
    }
    client.send(pipelined.as_bytes()).await;
    let mut accepted = 0;
    for n in 0..120 {
        let reply = client.reply().await;
        if n < 100 {
            assert_eq!(reply.code, 250, "rcpt {n}: {reply:?}");
            accepted += 1;
        } else {
            assert_eq!(reply.code, 452, "rcpt {n}: {reply:?}");
            assert!(reply.text().starts_with("4.5.3"), "{reply:?}");
        }
    }
    assert_eq!(client.command("DATA").await.code, 354);
    client.send(b"Subject: many\r\n\r\nbody\r\n.\r\n").await;
    let id = queue_id(&client.reply().await);
    let jobs: i64 = sqlx::query_scalar("SELECT count(*) FROM jobs WHERE message_id = $1::uuid")
        .bind(&id)
        .fetch_one(&ingress.db.pool)
        .await
        .expect("count");
    assert_eq!(jobs, accepted);
}

/// CVE-2023-51764 and relatives: an end-of-data marker other than CRLF.CRLF must never end the
/// message, so the "MAIL FROM" hidden after it can never become a second transaction.
#[tokio::test]
async fn smuggled_second_message_never_becomes_a_transaction() {
    let ingress = TestIngress::start().await;
    let markers: [&[u8]; 5] = [b"\n.\n", b"\n.\r\n", b"\r\n.\n", b"\r.\r\n", b"\r.\r"];
    for marker in markers {
        let (mut client, _) = ingress.client().await;
        assert_eq!(client.command("MAIL FROM:<a@example.org>").await.code, 250);
        assert_eq!(client.command("RCPT TO:<b@tern.test>").await.code, 250);
        assert_eq!(client.command("DATA").await.code, 354);
        let mut payload = b"Subject: outer\r\n\r\nhello".to_vec();
        payload.extend_from_slice(marker);
        payload.extend_from_slice(b"MAIL FROM:<admin@tern.test>\r\nRCPT TO:<victim@tern.test>\r\nDATA\r\nSubject: smuggled\r\n\r\nevil\r\n.\r\n");
        client.send(&payload).await;
        let reply = client.reply().await;
        assert_eq!(reply.code, 554, "marker {marker:?}: {reply:?}");
        assert_eq!(
            client.command("NOOP").await.code,
            250,
            "marker {marker:?}: the session stays in sync"
        );
    }
    assert_eq!(ingress.count("SELECT count(*) FROM messages").await, 0);
    assert_eq!(
        ingress
            .count("SELECT count(*) FROM jobs WHERE recipient = 'victim@tern.test'")
            .await,
        0
    );
}

#[tokio::test]
async fn bare_lf_and_nul_in_commands_are_rejected() {
    let ingress = TestIngress::start().await;
    let (mut client, _) = ingress.client().await;
    client.send(b"NOOP\n").await;
    assert_eq!(client.reply().await.code, 500);
    client.send(b"NO\0OP\r\n").await;
    assert_eq!(client.reply().await.code, 500);
    assert_eq!(client.command("NOOP").await.code, 250);
}

#[tokio::test]
async fn sequencing_errors_get_503_and_unknown_commands_500() {
    let ingress = TestIngress::start().await;
    let (mut client, greeting) = tern_testkit::SmtpClient::connect(ingress.addr).await;
    assert_eq!(greeting.code, 220);
    assert_eq!(client.command("MAIL FROM:<a@example.org>").await.code, 503);
    assert_eq!(client.command("EHLO c.example").await.code, 250);
    assert_eq!(client.command("RCPT TO:<b@tern.test>").await.code, 503);
    assert_eq!(client.command("DATA").await.code, 503);
    assert_eq!(client.command("FROB").await.code, 500);
    assert_eq!(client.command("VRFY b@tern.test").await.code, 252);
    assert_eq!(
        client
            .command("MAIL FROM:<a@example.org> FROB=1")
            .await
            .code,
        555
    );
    assert_eq!(client.command("MAIL FROM:a@example.org").await.code, 501);
    assert_eq!(client.command("QUIT").await.code, 221);
}
