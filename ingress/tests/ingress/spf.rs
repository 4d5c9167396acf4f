//! SPF at MAIL against a running ingress and an in-process DNS server serving the records:
//! `fail` refused and `temperror` deferred in reject mode, everything else accepted, and the
//! result recorded in the stored message's `Authentication-Results:` header.

use tern_testkit::dns::TestDns;

use crate::harness::TestIngress;

async fn ingress_checking(dns: &TestDns, mode: &str) -> TestIngress {
    let nameserver = dns.addr().to_string();
    TestIngress::start_with(&["--spf", mode, "--nameserver", nameserver.as_str()]).await
}

async fn dns() -> TestDns {
    let dns = TestDns::start().await;
    dns.add_txt("pass.example", "v=spf1 ip4:127.0.0.0/8 -all");
    dns.add_txt("fail.example", "v=spf1 ip4:192.0.2.0/24 -all");
    dns.add_txt("soft.example", "v=spf1 ~all");
    dns.servfail("temp.example");
    dns
}

/// MAIL's reply code, and the message's stored header section when it was queued.
async fn send(ingress: &TestIngress, from: &str) -> (u16, Option<String>) {
    let (mut client, _) = ingress.client().await;
    let mail = client.command(&format!("MAIL FROM:<{from}>")).await;
    if mail.code != 250 {
        return (mail.code, None);
    }
    assert_eq!(client.command("RCPT TO:<bob@tern.test>").await.code, 250);
    assert_eq!(client.command("DATA").await.code, 354);
    client.send(b"Subject: spf\r\n\r\nbody\r\n.\r\n").await;
    assert_eq!(client.reply().await.code, 250);
    let body: Vec<u8> =
        sqlx::query_scalar("SELECT body FROM messages ORDER BY received_at DESC LIMIT 1")
            .fetch_one(&ingress.db.pool)
            .await
            .expect("the stored message");
    let text = String::from_utf8_lossy(&body).to_string();
    let head = text.split("\r\n\r\n").next().unwrap_or_default().to_owned();
    (250, Some(head))
}

#[tokio::test]
async fn reject_mode_refuses_fail_defers_temperror_and_records_the_rest() {
    let dns = dns().await;
    let ingress = ingress_checking(&dns, "reject").await;

    let (code, head) = send(&ingress, "alice@pass.example").await;
    assert_eq!(code, 250);
    let head = head.expect("stored");
    assert!(
        head.contains(
            "Authentication-Results: mx.tern.test; spf=pass smtp.mailfrom=alice@pass.example"
        ),
        "{head}"
    );

    assert_eq!(send(&ingress, "mallory@fail.example").await.0, 550);
    assert_eq!(send(&ingress, "alice@temp.example").await.0, 451);
    let (code, head) = send(&ingress, "alice@soft.example").await;
    assert_eq!(code, 250);
    assert!(head.expect("stored").contains("spf=softfail"));
}

#[tokio::test]
async fn record_mode_accepts_fail_and_says_so() {
    let dns = dns().await;
    let ingress = ingress_checking(&dns, "record").await;
    let (code, head) = send(&ingress, "mallory@fail.example").await;
    assert_eq!(code, 250);
    assert!(
        head.expect("stored")
            .contains("spf=fail smtp.mailfrom=mallory@fail.example")
    );

    // Trusted clients are not checked at all.
    let nameserver = dns.addr().to_string();
    let trusted = TestIngress::start_with(&[
        "--spf",
        "reject",
        "--nameserver",
        nameserver.as_str(),
        "--trusted-networks",
        "127.0.0.0/8",
    ])
    .await;
    let (code, head) = send(&trusted, "mallory@fail.example").await;
    assert_eq!(code, 250);
    assert!(!head.expect("stored").contains("Authentication-Results"));
}

#[tokio::test]
async fn results_forged_under_our_name_are_removed_and_others_kept() {
    let dns = dns().await;
    let ingress = ingress_checking(&dns, "record").await;
    let (mut client, _) = ingress.client().await;
    assert_eq!(
        client.command("MAIL FROM:<alice@pass.example>").await.code,
        250
    );
    assert_eq!(client.command("RCPT TO:<bob@tern.test>").await.code, 250);
    assert_eq!(client.command("DATA").await.code, 354);
    client
        .send(b"Authentication-Results: MX.TERN.TEST; dkim=pass\r\n header.d=bank.example\r\nAuthentication-Results: elsewhere.example; spf=pass\r\nSubject: forged\r\n\r\nAuthentication-Results: mx.tern.test; in the body\r\n.\r\n")
        .await;
    assert_eq!(client.reply().await.code, 250);
    let body: Vec<u8> = sqlx::query_scalar("SELECT body FROM messages")
        .fetch_one(&ingress.db.pool)
        .await
        .expect("the stored message");
    let text = String::from_utf8_lossy(&body);
    assert!(!text.contains("dkim=pass"), "{text}");
    assert!(!text.contains("bank.example"), "{text}");
    assert!(
        text.contains("Authentication-Results: elsewhere.example; spf=pass"),
        "{text}"
    );
    assert!(text.contains("mx.tern.test; in the body"), "{text}");
    assert!(
        text.starts_with("Authentication-Results: mx.tern.test; spf=pass"),
        "{text}"
    );
}
