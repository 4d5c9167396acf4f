use super::*;
use crate::config::{ConfigError, parse_domains, parse_networks};
use tern_smtp::Mailbox;

/// The policy the ingress builds from its two settings.
fn parse(domains: &str, networks: &str) -> Result<RelayPolicy, ConfigError> {
    Ok(RelayPolicy::new(
        parse_domains("TERN_INGRESS_LOCAL_DOMAINS", domains)?,
        parse_networks("TERN_INGRESS_TRUSTED_NETWORKS", networks)?,
    ))
}

fn mailbox(local: &str, domain: Domain) -> ForwardPath {
    ForwardPath::Mailbox(Mailbox {
        local: local.into(),
        domain,
    })
}

fn name(domain: &str) -> Domain {
    Domain::Name(domain.into())
}

fn policy() -> RelayPolicy {
    parse("tern.test, localhost", "10.0.0.0/8 192.0.2.7").expect("valid policy")
}

#[test]
fn relay_decisions_follow_domain_and_client() {
    let outsider: IpAddr = "203.0.113.9".parse().expect("ip");
    let trusted: IpAddr = "10.1.2.3".parse().expect("ip");
    let single: IpAddr = "192.0.2.7".parse().expect("ip");
    let cases = [
        (
            mailbox("user", name("tern.test")),
            outsider,
            RelayDecision::Local,
        ),
        (
            mailbox("user", name("TERN.TEST")),
            outsider,
            RelayDecision::Local,
        ),
        (
            mailbox("user", name("tern.test.")),
            outsider,
            RelayDecision::Local,
        ),
        (ForwardPath::Postmaster, outsider, RelayDecision::Local),
        (
            mailbox("victim", name("example.com")),
            outsider,
            RelayDecision::Denied,
        ),
        (
            mailbox("victim", name("example.com")),
            trusted,
            RelayDecision::Relay,
        ),
        (
            mailbox("victim", name("example.com")),
            single,
            RelayDecision::Relay,
        ),
        // percent hack, bang path and quoted @ in a local domain's local part
        (
            mailbox("victim%example.com", name("tern.test")),
            outsider,
            RelayDecision::Denied,
        ),
        (
            mailbox("example.com!victim", name("tern.test")),
            outsider,
            RelayDecision::Denied,
        ),
        (
            mailbox("victim@example.com", name("tern.test")),
            outsider,
            RelayDecision::Denied,
        ),
        // address literals are never local
        (
            mailbox("user", Domain::Literal("127.0.0.1".into())),
            outsider,
            RelayDecision::Denied,
        ),
        (
            mailbox("user", Domain::Literal("IPv6:::1".into())),
            outsider,
            RelayDecision::Denied,
        ),
        // a domain that merely ends like a local one
        (
            mailbox("user", name("eviltern.test")),
            outsider,
            RelayDecision::Denied,
        ),
        (
            mailbox("user", name("sub.tern.test")),
            outsider,
            RelayDecision::Denied,
        ),
    ];
    let policy = policy();
    for (rcpt, client, expected) in cases {
        assert_eq!(
            policy.decide(&rcpt, client),
            expected,
            "{rcpt:?} from {client}"
        );
    }
}

#[test]
fn ipv4_mapped_clients_match_ipv4_networks() {
    let mapped: IpAddr = "::ffff:10.9.9.9".parse().expect("ip");
    assert!(policy().is_trusted(mapped));
}

#[test]
fn no_trusted_networks_means_nobody_relays() {
    let policy = parse("tern.test", "").expect("valid");
    let loopback: IpAddr = "127.0.0.1".parse().expect("ip");
    assert_eq!(
        policy.decide(&mailbox("x", name("example.com")), loopback),
        RelayDecision::Denied
    );
}

#[test]
fn bad_settings_name_the_variable() {
    let err = parse("tern.test", "10.0.0.0/33").expect_err("must be refused");
    assert_eq!(err.setting, "TERN_INGRESS_TRUSTED_NETWORKS");
    let err = parse("bad_domain!", "").expect_err("must be refused");
    assert_eq!(err.setting, "TERN_INGRESS_LOCAL_DOMAINS");
}
