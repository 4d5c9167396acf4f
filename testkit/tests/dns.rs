//! TestDns answers a real resolver: records, NODATA, NXDOMAIN, SERVFAIL, over UDP and TCP.

use std::net::{Ipv4Addr, Ipv6Addr};
use std::time::Duration;

use hickory_resolver::TokioResolver;
use hickory_resolver::config::{ConnectionConfig, NameServerConfig, ResolverConfig};
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::net::{DnsError, NetError};
use hickory_resolver::proto::op::ResponseCode;
use hickory_resolver::proto::rr::RData;
use tern_testkit::dns::TestDns;

fn resolver(dns: &TestDns, connections: Vec<ConnectionConfig>) -> TokioResolver {
    let connections = connections
        .into_iter()
        .map(|mut connection| {
            connection.port = dns.addr().port();
            connection
        })
        .collect();
    let server = NameServerConfig::new(dns.addr().ip(), true, connections);
    let config = ResolverConfig::from_name_servers(vec![server]);
    let mut builder = TokioResolver::builder_with_config(config, TokioRuntimeProvider::default());
    builder.options_mut().timeout = Duration::from_secs(5);
    builder.options_mut().attempts = 1;
    builder.build().expect("build a resolver")
}

fn udp_resolver(dns: &TestDns) -> TokioResolver {
    resolver(dns, vec![ConnectionConfig::udp()])
}

fn mx_of(lookup: &hickory_resolver::lookup::Lookup) -> Vec<(u16, String)> {
    let mut found: Vec<(u16, String)> = lookup
        .answers()
        .iter()
        .filter_map(|record| match &record.data {
            RData::MX(mx) => Some((mx.preference, mx.exchange.to_ascii())),
            _ => None,
        })
        .collect();
    found.sort();
    found
}

#[tokio::test]
async fn mx_records_are_answered_with_their_preferences() {
    let dns = TestDns::start().await;
    dns.add_mx("example.test", 10, "mx1.example.test");
    dns.add_mx("example.test", 20, "mx2.example.test");
    let lookup = udp_resolver(&dns)
        .mx_lookup("example.test.")
        .await
        .expect("MX lookup");
    assert_eq!(
        mx_of(&lookup),
        vec![
            (10, "mx1.example.test.".to_owned()),
            (20, "mx2.example.test.".to_owned())
        ]
    );
}

#[tokio::test]
async fn a_and_aaaa_records_are_answered() {
    let dns = TestDns::start().await;
    dns.add_a("mx.example.test", Ipv4Addr::new(127, 0, 0, 2));
    dns.add_aaaa("mx.example.test", Ipv6Addr::LOCALHOST);
    let resolver = udp_resolver(&dns);
    let v4 = resolver.ipv4_lookup("mx.example.test.").await.expect("A");
    let v6 = resolver
        .ipv6_lookup("MX.Example.Test.")
        .await
        .expect("AAAA");
    assert!(matches!(&v4.answers()[0].data, RData::A(a) if a.0 == Ipv4Addr::new(127, 0, 0, 2)));
    assert!(matches!(&v6.answers()[0].data, RData::AAAA(a) if a.0 == Ipv6Addr::LOCALHOST));
}

#[tokio::test]
async fn a_null_mx_is_a_single_mx_to_the_root() {
    let dns = TestDns::start().await;
    dns.add_null_mx("nomail.test");
    let lookup = udp_resolver(&dns)
        .mx_lookup("nomail.test.")
        .await
        .expect("MX lookup");
    assert_eq!(mx_of(&lookup), vec![(0, ".".to_owned())]);
}

#[tokio::test]
async fn an_unknown_name_answers_nxdomain() {
    let dns = TestDns::start().await;
    dns.add_mx("example.test", 10, "mx.example.test");
    let error = udp_resolver(&dns)
        .mx_lookup("missing.example.test.")
        .await
        .expect_err("the name does not exist");
    assert!(error.is_nx_domain(), "{error:?}");
}

#[tokio::test]
async fn a_name_without_the_asked_type_answers_nodata() {
    let dns = TestDns::start().await;
    dns.add_a("host.example.test", Ipv4Addr::new(127, 0, 0, 2));
    let resolver = udp_resolver(&dns);
    for name in ["host.example.test.", "example.test."] {
        let error = resolver.mx_lookup(name).await.expect_err("no MX");
        assert!(
            error.is_no_records_found() && !error.is_nx_domain(),
            "{name}: {error:?}"
        );
    }
}

#[tokio::test]
async fn a_servfail_name_answers_servfail_until_removed() {
    let dns = TestDns::start().await;
    dns.add_mx("broken.test", 10, "mx.broken.test");
    dns.servfail("broken.test");
    let resolver = udp_resolver(&dns);
    let error = resolver
        .mx_lookup("broken.test.")
        .await
        .expect_err("SERVFAIL");
    assert!(
        matches!(
            &error,
            NetError::Dns(DnsError::ResponseCode(ResponseCode::ServFail))
        ),
        "{error:?}"
    );
    dns.remove("broken.test");
    let error = resolver
        .mx_lookup("broken.test.")
        .await
        .expect_err("removed");
    assert!(error.is_nx_domain(), "{error:?}");
}

#[tokio::test]
async fn records_added_while_running_are_seen_by_the_next_query() {
    let dns = TestDns::start().await;
    let resolver = udp_resolver(&dns);
    let error = resolver
        .mx_lookup("later.test.")
        .await
        .expect_err("not yet");
    assert!(error.is_nx_domain(), "{error:?}");
    dns.add_mx("later.test", 5, "mx.later.test");
    let lookup = resolver.mx_lookup("later.test.").await.expect("now");
    assert_eq!(mx_of(&lookup), vec![(5, "mx.later.test.".to_owned())]);
}

#[tokio::test]
async fn queries_over_tcp_are_answered_too() {
    let dns = TestDns::start().await;
    dns.add_mx("example.test", 10, "mx.example.test");
    let lookup = resolver(&dns, vec![ConnectionConfig::tcp()])
        .mx_lookup("example.test.")
        .await
        .expect("MX lookup over TCP");
    assert_eq!(mx_of(&lookup), vec![(10, "mx.example.test.".to_owned())]);
}
