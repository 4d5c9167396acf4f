//! The live control plane in a running ingress: a domain, a trusted network or a blocklist entry
//! written while it runs takes effect without a restart, on sessions opened after the change
//! (and, for the RCPT and MAIL checks, on sessions already open).

use std::time::Duration;

use tern_common::control::{
    BlockAction, BlockKind, Domain, DomainKind, NewBlockEntry, Owner, PgControlStore,
};
use tern_testkit::SmtpClient;
use tern_testkit::wait::eventually;

use crate::harness::TestIngress;

fn writer(ingress: &TestIngress) -> PgControlStore {
    PgControlStore::new(ingress.db.pool.clone(), Some(ingress.bus.clone()))
}

async fn block(ingress: &TestIngress, kind: BlockKind, value: &str, action: BlockAction) {
    let entry = NewBlockEntry::new(kind, value, action, "listed in the test", None).expect("entry");
    writer(ingress)
        .add_block(Owner::Api, &entry)
        .await
        .expect("add the entry");
}

/// RCPT's reply code once the ingress has taken the change in (a fresh transaction each try).
async fn rcpt_code_becomes(client: &mut SmtpClient, from: &str, rcpt: &str, code: u16) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        client.command("RSET").await;
        client.command(&format!("MAIL FROM:<{from}>")).await;
        let reply = client.command(&format!("RCPT TO:<{rcpt}>")).await;
        if reply.code == code {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "RCPT {rcpt} still gets {reply:?}, not {code}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn a_domain_added_while_running_is_accepted_and_removed_again_is_refused() {
    let ingress = TestIngress::start().await;
    let (mut client, _) = ingress.client().await;
    client.command("MAIL FROM:<a@example.org>").await;
    let before = client.command("RCPT TO:<x@new.example>").await;
    assert_eq!(before.code, 554, "{before:?}");

    let domain = Domain {
        name: "new.example".into(),
        kind: DomainKind::Relay,
        route: None,
        owner: Owner::Api,
    };
    writer(&ingress)
        .put_domain(Owner::Api, &domain)
        .await
        .expect("put");
    rcpt_code_becomes(&mut client, "a@example.org", "x@new.example", 250).await;

    writer(&ingress)
        .delete_domain(Owner::Api, "new.example")
        .await
        .expect("delete");
    rcpt_code_becomes(&mut client, "a@example.org", "x@new.example", 554).await;
}

#[tokio::test]
async fn a_trusted_network_added_while_running_may_relay() {
    let ingress = TestIngress::start().await;
    let (mut client, _) = ingress.client().await;
    writer(&ingress)
        .add_network(Owner::Api, "127.0.0.0/8".parse().expect("net"), "the test")
        .await
        .expect("network");
    rcpt_code_becomes(&mut client, "a@example.org", "x@elsewhere.example", 250).await;
}

#[tokio::test]
async fn blocklisted_clients_senders_and_recipients_are_refused_with_their_codes() {
    let ingress = TestIngress::start().await;
    let (mut client, _) = ingress.client().await;

    block(
        &ingress,
        BlockKind::RecipientDomain,
        "tern.test",
        BlockAction::Tempfail,
    )
    .await;
    rcpt_code_becomes(&mut client, "a@example.org", "x@tern.test", 450).await;
    let reply = client.command("RCPT TO:<x@tern.test>").await;
    assert_eq!(
        reply.text(),
        "4.7.1 <x@tern.test>: Recipient address rejected: listed in the test"
    );

    block(
        &ingress,
        BlockKind::Sender,
        "spammer@example.org",
        BlockAction::Reject,
    )
    .await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        client.command("RSET").await;
        let reply = client.command("MAIL FROM:<Spammer@Example.org>").await;
        if reply.code == 550 {
            assert_eq!(
                reply.text(),
                "5.7.1 <Spammer@example.org>: Sender address rejected: listed in the test"
            );
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "MAIL still gets {reply:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // An allowlisted sender skips the blocklist from there on: its recipient is not refused.
    block(
        &ingress,
        BlockKind::Sender,
        "friend@example.org",
        BlockAction::Allow,
    )
    .await;
    rcpt_code_becomes(&mut client, "friend@example.org", "x@tern.test", 250).await;

    block(
        &ingress,
        BlockKind::Cidr,
        "127.0.0.0/8",
        BlockAction::Reject,
    )
    .await;
    let greeting = eventually(
        "connections to be refused",
        Duration::from_secs(5),
        || async {
            let (mut refused, greeting) = SmtpClient::connect(ingress.addr).await;
            (greeting.code == 554 && refused.is_closed().await).then_some(greeting)
        },
    )
    .await;
    assert_eq!(
        greeting.text(),
        "5.7.1 Client host [127.0.0.1] blocked: listed in the test"
    );
    assert_eq!(ingress.count("SELECT count(*) FROM messages").await, 0);
}
