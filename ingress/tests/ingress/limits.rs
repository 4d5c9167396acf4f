//! Connection limits, idle timeout, the error limit, the hop limit and graceful shutdown.

use tern_testkit::SmtpClient;

use crate::harness::{TestIngress, queue_id, send_message};

#[tokio::test]
async fn connections_over_the_per_ip_limit_get_421_4_7_0() {
    let ingress = TestIngress::start_with(&["--max-connections-per-ip", "2"]).await;
    let (_a, _) = ingress.client().await;
    let (_b, _) = ingress.client().await;
    let (mut third, greeting) = SmtpClient::connect(ingress.addr).await;
    assert_eq!(greeting.code, 421, "{greeting:?}");
    assert!(greeting.text().starts_with("4.7.0"), "{greeting:?}");
    assert!(third.is_closed().await);
}

#[tokio::test]
async fn connections_over_the_total_limit_get_421_4_7_0() {
    let ingress = TestIngress::start_with(&["--max-connections", "1"]).await;
    let (_a, _) = ingress.client().await;
    let (_, greeting) = SmtpClient::connect(ingress.addr).await;
    assert_eq!(greeting.code, 421, "{greeting:?}");
}

#[tokio::test]
async fn an_idle_session_gets_421_and_is_closed() {
    let ingress = TestIngress::start_with(&["--idle-timeout", "300ms"]).await;
    let (mut client, _) = ingress.client().await;
    let reply = client.reply().await;
    assert_eq!(reply.code, 421, "{reply:?}");
    assert!(reply.text().starts_with("4.4.2"), "{reply:?}");
    assert!(client.is_closed().await);
}

#[tokio::test]
async fn too_many_errors_close_the_session() {
    let ingress = TestIngress::start_with(&["--max-errors", "3"]).await;
    let (mut client, _) = ingress.client().await;
    assert_eq!(client.command("FROB").await.code, 500);
    assert_eq!(client.command("FROB").await.code, 500);
    let last = client.command("FROB").await;
    assert_eq!(last.code, 421, "{last:?}");
    assert!(client.is_closed().await);
}

#[tokio::test]
async fn shutdown_lets_a_transaction_finish_and_tells_idle_sessions_421() {
    let ingress = TestIngress::start().await;
    let (mut idle, _) = ingress.client().await;
    let (mut busy, _) = ingress.client().await;
    assert_eq!(busy.command("MAIL FROM:<a@example.org>").await.code, 250);
    assert_eq!(busy.command("RCPT TO:<b@tern.test>").await.code, 250);

    ingress.shutdown.cancel();
    let reply = idle.reply().await;
    assert_eq!(reply.code, 421, "{reply:?}");
    assert!(reply.text().starts_with("4.3.2"), "{reply:?}");
    assert!(idle.is_closed().await);

    assert_eq!(busy.command("DATA").await.code, 354);
    busy.send(b"Subject: late\r\n\r\nstill accepted\r\n.\r\n")
        .await;
    let id = queue_id(&busy.reply().await);
    let reply = busy.reply().await;
    assert_eq!(
        reply.code, 421,
        "after its transaction the session is closed: {reply:?}"
    );
    assert_eq!(
        ingress
            .count(&format!(
                "SELECT count(*) FROM messages WHERE id = '{id}'::uuid"
            ))
            .await,
        1
    );
    assert!(
        tokio::net::TcpStream::connect(ingress.addr).await.is_err(),
        "the listener is closed"
    );
    ingress.stop().await;
}

#[tokio::test]
async fn a_message_that_has_looped_is_refused_554_5_4_6_and_not_queued() {
    let ingress = TestIngress::start_with(&["--max-received-headers", "10"]).await;
    let (mut client, _) = ingress.client().await;
    let hops = |n: usize| {
        let mut body =
            "Received: from relay.example by mx.example; Fri, 4 Dec 2026 04:00:00 +0000\r\n"
                .repeat(n);
        body.push_str("Subject: round and round\r\n\r\nhello\r\n");
        body
    };
    let refused = send_message(
        &mut client,
        "a@example.org",
        &["b@tern.test"],
        hops(10).as_bytes(),
    )
    .await;
    assert_eq!(refused.code, 554, "{refused:?}");
    assert!(refused.text().starts_with("5.4.6"), "{refused:?}");
    let accepted = send_message(
        &mut client,
        "a@example.org",
        &["b@tern.test"],
        hops(9).as_bytes(),
    )
    .await;
    queue_id(&accepted);
    assert_eq!(ingress.count("SELECT count(*) FROM messages").await, 1);
}
