//! Greylisting against running ingresses sharing one database: a new triplet is deferred with
//! `451 4.7.1`, the same triplet is accepted once the delay is over, a second ingress on the
//! same database knows it, and trusted and authenticated clients are never greylisted.

use std::time::Duration;

use crate::harness::TestIngress;

const GREYLIST: &[&str] = &[
    "--greylist",
    "true",
    "--greylist-delay",
    "1s",
    "--greylist-retry-window",
    "1h",
    "--greylist-max-age",
    "1d",
    "--greylist-auto-allow-clients",
    "0",
];

async fn rcpt(ingress: &TestIngress, from: &str, to: &str) -> (u16, String) {
    let (mut client, _) = ingress.client().await;
    let mail = client.command(&format!("MAIL FROM:<{from}>")).await;
    assert_eq!(mail.code, 250, "{mail:?}");
    let reply = client.command(&format!("RCPT TO:<{to}>")).await;
    client.command("QUIT").await;
    (reply.code, reply.text())
}

#[tokio::test]
async fn a_new_triplet_waits_out_the_delay_on_every_pod() {
    let first = TestIngress::start_with(GREYLIST).await;
    let (code, text) = rcpt(&first, "alice@example.org", "bob@tern.test").await;
    assert_eq!(code, 451, "{text}");
    assert!(
        text.contains("4.7.1") && text.contains("Greylisted"),
        "{text}"
    );
    // Too early, and from a second pod on the same database: still deferred.
    let second = TestIngress::start_on(first.db.reopen().await, GREYLIST).await;
    assert_eq!(
        rcpt(&second, "alice@example.org", "bob@tern.test").await.0,
        451
    );
    // Another recipient is another triplet.
    assert_eq!(
        rcpt(&first, "alice@example.org", "carol@tern.test").await.0,
        451
    );

    tokio::time::sleep(Duration::from_millis(1100)).await;
    // The retry, as a bounce-address-rewriting sender makes it, passes on the other pod.
    let (code, text) = rcpt(
        &second,
        "prvs=1234abcdef=alice@example.org",
        "bob@tern.test",
    )
    .await;
    assert_eq!(code, 250, "{text}");
    assert_eq!(
        rcpt(&first, "alice@example.org", "bob@tern.test").await.0,
        250
    );
    let passed = first
        .count("SELECT count(*) FROM greylist WHERE passed")
        .await;
    assert_eq!(passed, 1);
}

#[tokio::test]
async fn trusted_clients_skip_it_and_a_lost_database_defers_rather_than_accepts() {
    let mut args = GREYLIST.to_vec();
    args.extend_from_slice(&["--trusted-networks", "127.0.0.0/8"]);
    let trusted = TestIngress::start_with(&args).await;
    assert_eq!(
        rcpt(&trusted, "alice@example.org", "bob@tern.test").await.0,
        250
    );
    assert_eq!(trusted.count("SELECT count(*) FROM greylist").await, 0);

    let ingress = TestIngress::start_with(GREYLIST).await;
    sqlx::query("DROP TABLE greylist")
        .execute(&ingress.db.pool)
        .await
        .expect("drop the table");
    let (code, text) = rcpt(&ingress, "alice@example.org", "bob@tern.test").await;
    assert_eq!(code, 451, "{text}");
    assert!(text.contains("4.3.0"), "{text}");
}

#[tokio::test]
async fn a_client_network_with_enough_passed_triplets_is_let_through() {
    let mut args = GREYLIST.to_vec();
    let last = args.len() - 1;
    args[last] = "1";
    let ingress = TestIngress::start_with(&args).await;
    assert_eq!(
        rcpt(&ingress, "alice@example.org", "bob@tern.test").await.0,
        451
    );
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(
        rcpt(&ingress, "alice@example.org", "bob@tern.test").await.0,
        250
    );
    // One passed triplet is enough here: a new sender from the same /24 is not greylisted.
    assert_eq!(
        rcpt(&ingress, "dave@example.net", "bob@tern.test").await.0,
        250
    );
}
