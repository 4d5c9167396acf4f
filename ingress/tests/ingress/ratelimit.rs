//! Cluster-wide rate limits against running ingresses sharing one database: a limit reached on
//! one pod holds on the other, the reply is `451 4.7.1` naming the limit, other keys are not
//! held back, and a database that cannot answer defers rather than lets mail through.

use crate::harness::TestIngress;

async fn session(ingress: &TestIngress) -> tern_testkit::SmtpClient {
    ingress.client().await.0
}

#[tokio::test]
async fn a_client_limit_reached_on_one_pod_holds_on_another() {
    let args = ["--rate-limit-client", "3/1h"];
    let first = TestIngress::start_with(&args).await;
    let second = TestIngress::start_on(first.db.reopen().await, &args).await;
    let mut a = session(&first).await;
    let mut b = session(&second).await;
    assert_eq!(a.command("MAIL FROM:<x@example.org>").await.code, 250);
    assert_eq!(b.command("MAIL FROM:<x@example.org>").await.code, 250);
    assert_eq!(a.command("RCPT TO:<one@tern.test>").await.code, 250);
    assert_eq!(b.command("RCPT TO:<two@tern.test>").await.code, 250);
    assert_eq!(a.command("RCPT TO:<three@tern.test>").await.code, 250);
    let over = b.command("RCPT TO:<four@tern.test>").await;
    assert_eq!(over.code, 451, "{over:?}");
    assert!(
        over.text().contains("4.7.1") && over.text().contains("client"),
        "{over:?}"
    );
    let over = a.command("RCPT TO:<five@tern.test>").await;
    assert_eq!(over.code, 451, "{over:?}");
}

#[tokio::test]
async fn a_sender_domain_limit_holds_that_domain_only() {
    let ingress = TestIngress::start_with(&["--rate-limit-sender-domain", "2/1h"]).await;
    let mut client = session(&ingress).await;
    for _ in 0..2 {
        assert_eq!(client.command("MAIL FROM:<a@Example.ORG>").await.code, 250);
        client.command("RSET").await;
    }
    let over = client.command("MAIL FROM:<b@example.org>").await;
    assert_eq!(over.code, 451, "{over:?}");
    assert!(over.text().contains("sender_domain"), "{over:?}");
    assert_eq!(client.command("MAIL FROM:<a@example.net>").await.code, 250);
    client.command("RSET").await;
    // The null sender has no domain to count.
    assert_eq!(client.command("MAIL FROM:<>").await.code, 250);
}

#[tokio::test]
async fn a_lost_database_defers_and_trusted_clients_are_not_counted_per_client() {
    let ingress = TestIngress::start_with(&["--rate-limit-client", "1/1h"]).await;
    sqlx::query("DROP TABLE rate_limits")
        .execute(&ingress.db.pool)
        .await
        .expect("drop the table");
    let mut client = session(&ingress).await;
    client.command("MAIL FROM:<x@example.org>").await;
    let reply = client.command("RCPT TO:<one@tern.test>").await;
    assert_eq!(reply.code, 451, "{reply:?}");
    assert!(reply.text().contains("4.3.0"), "{reply:?}");

    let trusted = TestIngress::start_with(&[
        "--rate-limit-client",
        "1/1h",
        "--trusted-networks",
        "127.0.0.0/8",
    ])
    .await;
    let mut client = session(&trusted).await;
    client.command("MAIL FROM:<x@example.org>").await;
    for rcpt in ["one@tern.test", "two@tern.test", "three@tern.test"] {
        assert_eq!(client.command(&format!("RCPT TO:<{rcpt}>")).await.code, 250);
    }
}

#[tokio::test]
async fn new_connections_from_one_network_are_limited_across_pods() {
    let args = ["--rate-limit-connections", "2/1h"];
    let first = TestIngress::start_with(&args).await;
    let second = TestIngress::start_on(first.db.reopen().await, &args).await;
    let (_a, greeting) = tern_testkit::SmtpClient::connect(first.addr).await;
    assert_eq!(greeting.code, 220);
    let (_b, greeting) = tern_testkit::SmtpClient::connect(second.addr).await;
    assert_eq!(greeting.code, 220);
    let (mut c, refused) = tern_testkit::SmtpClient::connect(first.addr).await;
    assert_eq!(refused.code, 421, "{refused:?}");
    assert!(refused.text().contains("connections"), "{refused:?}");
    assert!(c.is_closed().await);
}
