//! The open-relay battery: from an untrusted client every relay trick is refused with 554 5.7.1,
//! local recipients, postmaster and the null sender are accepted.

use crate::harness::TestIngress;

pub const RELAY_TRICKS: &[&str] = &[
    "victim@example.com",
    "victim%example.com@tern.test",
    "example.com!victim@tern.test",
    "\"victim@example.com\"@tern.test",
    "@tern.test:victim@example.com",
    "@tern.test,@mx.tern.test:victim@example.com",
    "victim@[192.0.2.1]",
    "victim@[127.0.0.1]",
    "victim@[IPv6:::1]",
    "victim@tern.test.example.com",
    "victim@eviltern.test",
];

#[tokio::test]
async fn every_relay_trick_is_refused_from_an_untrusted_client() {
    let ingress = TestIngress::start().await;
    let (mut client, _) = ingress.client().await;
    assert_eq!(client.command("MAIL FROM:<a@example.org>").await.code, 250);
    for rcpt in RELAY_TRICKS {
        let reply = client.command(&format!("RCPT TO:<{rcpt}>")).await;
        assert_eq!(reply.code, 554, "{rcpt}: {reply:?}");
        assert!(reply.text().starts_with("5.7.1"), "{rcpt}: {reply:?}");
    }
    for rcpt in [
        "victim@example.com.",
        "victim@example..com",
        "victim@-example.com",
        "<victim@example.com>",
    ] {
        let reply = client.command(&format!("RCPT TO:<{rcpt}>")).await;
        assert_eq!(reply.code, 501, "{rcpt}: {reply:?}");
    }
    assert_eq!(
        client.command("DATA").await.code,
        554,
        "no valid recipients"
    );
    assert_eq!(ingress.count("SELECT count(*) FROM jobs").await, 0);
}

#[tokio::test]
async fn local_domains_postmaster_and_the_null_sender_are_accepted_from_anyone() {
    let ingress = TestIngress::start().await;
    let (mut client, _) = ingress.client().await;
    assert_eq!(client.command("MAIL FROM:<>").await.code, 250);
    for rcpt in [
        "user@tern.test",
        "User@LOCALHOST",
        "postmaster",
        "PostMaster",
        "postmaster@tern.test",
        "@relay.example:user@tern.test",
    ] {
        let reply = client.command(&format!("RCPT TO:<{rcpt}>")).await;
        assert_eq!(reply.code, 250, "{rcpt}: {reply:?}");
    }
}

#[tokio::test]
async fn a_trusted_network_may_relay_anywhere() {
    let ingress = TestIngress::start_with(&["--trusted-networks", "127.0.0.0/8"]).await;
    let (mut client, _) = ingress.client().await;
    assert_eq!(client.command("MAIL FROM:<a@example.org>").await.code, 250);
    let reply = client.command("RCPT TO:<someone@example.com>").await;
    assert_eq!(reply.code, 250, "{reply:?}");
}
