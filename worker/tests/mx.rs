//! MX resolution against an in-process DNS server: order, shuffling, implicit MX, null MX, and
//! which DNS failures are permanent and which temporary.

use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};

use tern_common::dns::Resolver;
use tern_testkit::dns::TestDns;
use tern_worker::delivery::DeliveryError;
use tern_worker::delivery::mx::{MxResolver, TargetHost};

const V4_A: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 2);
const V4_B: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 3);
const V4_C: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 4);

async fn setup() -> (TestDns, MxResolver) {
    let dns = TestDns::start().await;
    let resolver = MxResolver::new(&Resolver::with_nameserver(dns.addr()).expect("a resolver"));
    (dns, resolver)
}

fn names(hosts: &[TargetHost]) -> Vec<&str> {
    hosts.iter().map(|host| host.name.as_str()).collect()
}

fn at(ip: impl Into<std::net::IpAddr>, port: u16) -> SocketAddr {
    SocketAddr::new(ip.into(), port)
}

#[tokio::test]
async fn exchangers_come_most_preferred_first_with_their_addresses() {
    let (dns, resolver) = setup().await;
    dns.add_mx("example.test", 20, "mx2.example.test");
    dns.add_mx("example.test", 10, "mx1.example.test");
    dns.add_mx("example.test", 30, "mx3.example.test");
    dns.add_a("mx1.example.test", V4_A);
    dns.add_a("mx2.example.test", V4_B);
    dns.add_a("mx3.example.test", V4_C);
    let hosts = resolver
        .resolve("example.test", 2525)
        .await
        .expect("resolved");
    assert_eq!(
        hosts,
        vec![
            TargetHost {
                name: "mx1.example.test".into(),
                preference: 10,
                addrs: vec![at(V4_A, 2525)]
            },
            TargetHost {
                name: "mx2.example.test".into(),
                preference: 20,
                addrs: vec![at(V4_B, 2525)]
            },
            TargetHost {
                name: "mx3.example.test".into(),
                preference: 30,
                addrs: vec![at(V4_C, 2525)]
            },
        ]
    );
}

#[tokio::test]
async fn exchangers_of_equal_preference_come_in_both_orders() {
    let (dns, resolver) = setup().await;
    dns.add_mx("example.test", 10, "a.example.test");
    dns.add_mx("example.test", 10, "b.example.test");
    dns.add_mx("example.test", 5, "first.example.test");
    for (host, ip) in [("a", V4_A), ("b", V4_B), ("first", V4_C)] {
        dns.add_a(&format!("{host}.example.test"), ip);
    }
    let mut seen = std::collections::HashSet::new();
    // Each order has probability 1/2 per resolution; 100 resolutions all alike is 2^-99.
    for _ in 0..100 {
        let hosts = resolver
            .resolve("example.test", 25)
            .await
            .expect("resolved");
        assert_eq!(hosts[0].name, "first.example.test");
        seen.insert(names(&hosts)[1..].join(","));
    }
    let expected = [
        "a.example.test,b.example.test",
        "b.example.test,a.example.test",
    ];
    assert_eq!(seen, expected.into_iter().map(String::from).collect());
}

#[tokio::test]
async fn ipv4_addresses_come_before_ipv6_addresses() {
    let (dns, resolver) = setup().await;
    dns.add_mx("example.test", 10, "mx.example.test");
    dns.add_aaaa("mx.example.test", Ipv6Addr::LOCALHOST);
    dns.add_a("mx.example.test", V4_A);
    dns.add_a("mx.example.test", V4_B);
    let hosts = resolver
        .resolve("Example.Test.", 25)
        .await
        .expect("resolved");
    assert_eq!(
        hosts[0].addrs,
        vec![at(V4_A, 25), at(V4_B, 25), at(Ipv6Addr::LOCALHOST, 25)]
    );
}

#[tokio::test]
async fn a_domain_without_mx_is_its_own_exchanger() {
    let (dns, resolver) = setup().await;
    dns.add_a("plain.test", V4_A);
    dns.add_aaaa("plain.test", Ipv6Addr::LOCALHOST);
    let hosts = resolver
        .resolve("plain.test", 25)
        .await
        .expect("implicit MX");
    assert_eq!(
        hosts,
        vec![TargetHost {
            name: "plain.test".into(),
            preference: 0,
            addrs: vec![at(V4_A, 25), at(Ipv6Addr::LOCALHOST, 25)],
        }]
    );
}

#[tokio::test]
async fn an_ipv6_only_exchanger_is_used() {
    let (dns, resolver) = setup().await;
    dns.add_mx("six.test", 10, "mx.six.test");
    dns.add_aaaa("mx.six.test", Ipv6Addr::LOCALHOST);
    let hosts = resolver.resolve("six.test", 25).await.expect("resolved");
    assert_eq!(hosts[0].addrs, vec![at(Ipv6Addr::LOCALHOST, 25)]);
}

#[tokio::test]
async fn a_null_mx_means_the_domain_takes_no_mail() {
    let (dns, resolver) = setup().await;
    dns.add_null_mx("nomail.test");
    dns.add_a("nomail.test", V4_A);
    let error = resolver
        .resolve("nomail.test", 25)
        .await
        .expect_err("null MX");
    assert_eq!(error, DeliveryError::NullMx("nomail.test".into()));
}

#[tokio::test]
async fn a_domain_that_does_not_exist_is_permanent() {
    let (dns, resolver) = setup().await;
    dns.add_mx("example.test", 10, "mx.example.test");
    let error = resolver
        .resolve("missing.test", 25)
        .await
        .expect_err("NXDOMAIN");
    assert_eq!(error, DeliveryError::NoSuchDomain("missing.test".into()));
}

#[tokio::test]
async fn a_domain_with_neither_mx_nor_address_is_permanent() {
    let (dns, resolver) = setup().await;
    dns.add_txt("bare.test", "v=spf1 -all");
    let error = resolver
        .resolve("bare.test", 25)
        .await
        .expect_err("no address");
    assert_eq!(error, DeliveryError::NoAddress("bare.test".into()));
}

#[tokio::test]
async fn exchangers_without_addresses_are_skipped() {
    let (dns, resolver) = setup().await;
    dns.add_mx("example.test", 10, "gone.example.test");
    dns.add_mx("example.test", 20, "empty.example.test");
    dns.add_mx("example.test", 30, "ok.example.test");
    dns.add_txt("empty.example.test", "no address here");
    dns.add_a("ok.example.test", V4_A);
    let hosts = resolver
        .resolve("example.test", 25)
        .await
        .expect("resolved");
    assert_eq!(names(&hosts), ["ok.example.test"]);

    dns.remove("ok.example.test");
    let error = resolver
        .resolve("example.test", 25)
        .await
        .expect_err("none left");
    assert_eq!(error, DeliveryError::NoAddress("example.test".into()));
}

#[tokio::test]
async fn servfail_for_the_domain_is_temporary() {
    let (dns, resolver) = setup().await;
    dns.add_mx("flaky.test", 10, "mx.flaky.test");
    dns.servfail("flaky.test");
    let error = resolver
        .resolve("flaky.test", 25)
        .await
        .expect_err("SERVFAIL");
    assert!(
        matches!(&error, DeliveryError::DnsTemporary { domain, .. } if domain == "flaky.test"),
        "{error:?}"
    );
}

#[tokio::test]
async fn an_exchanger_failing_temporarily_is_skipped_unless_all_fail() {
    let (dns, resolver) = setup().await;
    dns.add_mx("example.test", 10, "flaky.example.test");
    dns.add_mx("example.test", 20, "ok.example.test");
    dns.add_a("ok.example.test", V4_A);
    dns.servfail("flaky.example.test");
    let hosts = resolver
        .resolve("example.test", 25)
        .await
        .expect("resolved");
    assert_eq!(names(&hosts), ["ok.example.test"]);

    dns.servfail("ok.example.test");
    let error = resolver
        .resolve("example.test", 25)
        .await
        .expect_err("all failing");
    assert!(
        matches!(error, DeliveryError::DnsTemporary { .. }),
        "{error:?}"
    );
}

#[tokio::test]
async fn relay_hosts_resolve_by_address_and_ip_literals_need_no_lookup() {
    let (dns, resolver) = setup().await;
    dns.add_mx("relay.test", 10, "elsewhere.test");
    dns.add_a("relay.test", V4_B);
    let hosts = resolver
        .resolve_host("relay.test", 587)
        .await
        .expect("resolved");
    assert_eq!(names(&hosts), ["relay.test"]);
    assert_eq!(hosts[0].addrs, vec![at(V4_B, 587)]);

    for (literal, ip) in [
        ("10.1.2.3", at(Ipv4Addr::new(10, 1, 2, 3), 24)),
        ("::1", at(Ipv6Addr::LOCALHOST, 24)),
    ] {
        let hosts = resolver.resolve_host(literal, 24).await.expect("literal");
        assert_eq!(hosts[0].addrs, vec![ip]);
    }

    let error = resolver
        .resolve_host("nowhere.test", 25)
        .await
        .expect_err("NXDOMAIN");
    assert_eq!(error, DeliveryError::NoSuchDomain("nowhere.test".into()));
}

#[tokio::test]
async fn a_silent_name_server_is_temporary() {
    // Bound but never read: queries go unanswered until the resolver gives up.
    // The UDP port the system picks may be taken for TCP by another test: pick again.
    let mut tries = 0;
    let (udp, tcp) = loop {
        let udp = tokio::net::UdpSocket::bind("127.0.0.1:0")
            .await
            .expect("bind");
        match tokio::net::TcpListener::bind(udp.local_addr().expect("address")).await {
            Ok(tcp) => break (udp, tcp),
            Err(error) if tries < 20 => {
                tries += 1;
                let _ = error;
            }
            Err(error) => panic!("bind: {error}"),
        }
    };
    let resolver = MxResolver::new(
        &Resolver::with_nameserver(udp.local_addr().expect("address")).expect("resolver"),
    );
    let error = resolver
        .resolve("example.test", 25)
        .await
        .expect_err("no answer");
    assert!(
        matches!(error, DeliveryError::DnsTemporary { .. }),
        "{error:?}"
    );
    drop(tcp);
}
