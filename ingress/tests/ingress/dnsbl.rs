//! DNS blocklists at connect, against a running ingress and an in-process DNS server serving
//! the lists: a listed client is refused before the greeting, an allowlist offsets a listing, the
//! lists' error codes and a dead name server never refuse anyone, trusted clients are not
//! asked about, and each listener asks only when its checks name the lists.

use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use tern_common::checks::ListenerKind;
use tern_common::control::{Owner, PgControlStore, PolicyDocument};
use tern_testkit::SmtpClient;
use tern_testkit::dns::TestDns;
use tern_testkit::wait::eventually;

use crate::harness::TestIngress;

/// The test client's address as the lists are asked about it (127.0.0.1 reversed).
const CLIENT_IN_BL: &str = "1.0.0.127.bl.test";
const CLIENT_IN_WL: &str = "1.0.0.127.wl.test";
const LISTED: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 2);

async fn ingress_asking(dns: &TestDns, sites: &str, extra: &[&str]) -> TestIngress {
    let nameserver = dns.addr().to_string();
    let mut args = vec![
        "--dnsbl-sites",
        sites,
        "--dnsbl-nameserver",
        nameserver.as_str(),
        "--dnsbl-timeout",
        "500ms",
    ];
    args.extend_from_slice(extra);
    TestIngress::start_with(&args).await
}

#[tokio::test]
async fn a_listed_client_is_refused_before_the_greeting_and_told_which_list() {
    let dns = TestDns::start().await;
    dns.add_a(CLIENT_IN_BL, LISTED);
    let ingress = ingress_asking(&dns, "bl.test*2", &[]).await;
    let (_client, greeting) = SmtpClient::connect(ingress.addr).await;
    assert_eq!(greeting.code, 554, "{greeting:?}");
    let text = greeting.lines.join(" ");
    assert!(text.contains("5.7.1") && text.contains("bl.test"), "{text}");
    assert_eq!(ingress.count("SELECT count(*) FROM messages").await, 0);

    // Delisted: with no cache, the next client is asked about afresh and let in.
    let ingress = ingress_asking(&dns, "bl.test*2", &["--dnsbl-cache-ttl", "0s"]).await;
    dns.remove(CLIENT_IN_BL);
    let (_client, greeting) = SmtpClient::connect(ingress.addr).await;
    assert_eq!(greeting.code, 220, "{greeting:?}");
}

#[tokio::test]
async fn an_allowlist_offsets_a_listing_and_a_filter_ignores_other_codes() {
    let dns = TestDns::start().await;
    dns.add_a(CLIENT_IN_BL, LISTED);
    dns.add_a(CLIENT_IN_WL, Ipv4Addr::new(127, 0, 10, 3));
    let ingress = ingress_asking(&dns, "bl.test*2, wl.test=127.0.[0..255].[1..3]*-2", &[]).await;
    let (_client, greeting) = SmtpClient::connect(ingress.addr).await;
    assert_eq!(greeting.code, 220, "score 0 is below 1: {greeting:?}");

    // Only 127.0.0.4 counts for this site: the 127.0.0.2 listing is not its.
    let ingress = ingress_asking(&dns, "bl.test=127.0.0.4", &[]).await;
    let (_client, greeting) = SmtpClient::connect(ingress.addr).await;
    assert_eq!(greeting.code, 220, "{greeting:?}");
}

#[tokio::test]
async fn error_answers_and_a_dead_name_server_refuse_nobody() {
    let dns = TestDns::start().await;
    // Spamhaus's answer to a query through a public resolver.
    dns.add_a(CLIENT_IN_BL, Ipv4Addr::new(127, 255, 255, 254));
    let ingress = ingress_asking(&dns, "bl.test", &[]).await;
    let (_client, greeting) = SmtpClient::connect(ingress.addr).await;
    assert_eq!(greeting.code, 220, "{greeting:?}");

    dns.remove(CLIENT_IN_BL);
    dns.servfail(CLIENT_IN_BL);
    let (_client, greeting) = SmtpClient::connect(ingress.addr).await;
    assert_eq!(greeting.code, 220, "SERVFAIL: {greeting:?}");

    let ingress = ingress_asking(&dns, "bl.test", &[]).await;
    drop(dns);
    let started = Instant::now();
    let (_client, greeting) = SmtpClient::connect(ingress.addr).await;
    assert_eq!(greeting.code, 220, "no name server: {greeting:?}");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "the greeting waited {:?}, past the DNSBL deadline",
        started.elapsed()
    );
}

#[tokio::test]
async fn trusted_clients_are_not_asked_about() {
    let dns = TestDns::start().await;
    dns.add_a(CLIENT_IN_BL, LISTED);
    let ingress = ingress_asking(&dns, "bl.test", &["--trusted-networks", "127.0.0.0/8"]).await;
    let (_client, greeting) = SmtpClient::connect(ingress.addr).await;
    assert_eq!(greeting.code, 220, "{greeting:?}");
}

#[tokio::test]
async fn each_listener_asks_the_lists_only_when_its_checks_name_them() {
    let dns = TestDns::start().await;
    dns.add_a(CLIENT_IN_BL, LISTED);
    let ingress = ingress_asking(
        &dns,
        "bl.test*2",
        &[
            "--submission-listen",
            "127.0.0.1:0",
            "--dnsbl-cache-ttl",
            "0s",
        ],
    )
    .await;
    let smtp = ingress.addr_of(ListenerKind::Smtp);
    let submission = ingress.addr_of(ListenerKind::Submission);
    let greeting = |addr| async move { SmtpClient::connect(addr).await.1.code };
    // By default port 25 asks the lists and the submission listener does not.
    assert_eq!(greeting(smtp).await, 554);
    assert_eq!(greeting(submission).await, 220);

    // The control plane moves the DNSBL check from port 25 to the submission listener.
    let moved = PolicyDocument {
        checks_smtp: Some("greylist,spf".parse().expect("checks")),
        checks_submission: Some("dnsbl".parse().expect("checks")),
        ..PolicyDocument::default()
    };
    PgControlStore::new(ingress.db.pool.clone(), Some(ingress.bus.clone()))
        .put_policy(Owner::Api, &moved)
        .await
        .expect("write the policy");
    eventually(
        "the submission listener to refuse",
        Duration::from_secs(5),
        || async { (greeting(submission).await == 554).then_some(()) },
    )
    .await;
    assert_eq!(greeting(smtp).await, 220);
}
