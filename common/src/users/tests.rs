use std::net::IpAddr;

use tern_smtp::{Domain, Mailbox, ReversePath};
use time::OffsetDateTime;

use super::lockout::ip_key;
use super::*;

fn user(login: &str, senders: &[&str]) -> User {
    User {
        id: 1,
        login: normalize_login(login).expect("valid login"),
        disabled: false,
        senders: senders
            .iter()
            .map(|s| SenderRule::parse(s).expect("valid sender"))
            .collect(),
        created_at: OffsetDateTime::UNIX_EPOCH,
        updated_at: OffsetDateTime::UNIX_EPOCH,
    }
}

fn path(address: &str) -> ReversePath {
    if address.is_empty() {
        return ReversePath::Null;
    }
    let (local, domain) = address.rsplit_once('@').expect("an address");
    let domain = match domain.strip_prefix('[') {
        Some(literal) => Domain::Literal(literal.trim_end_matches(']').to_owned()),
        None => Domain::Name(domain.to_owned()),
    };
    ReversePath::Mailbox(Mailbox {
        local: local.to_owned(),
        domain,
    })
}

#[test]
fn sender_ownership() {
    let cases: &[(&str, &[&str], &str, bool)] = &[
        ("alice@example.com", &[], "alice@example.com", true),
        ("Alice@Example.com", &[], "ALICE@example.COM", true),
        ("alice@example.com", &[], "bob@example.com", false),
        ("alice@example.com", &[], "alice@example.org", false),
        ("alice@example.com", &[], "alice@sub.example.com", false),
        ("alice@example.com", &[], "", true),
        ("alice@example.com", &[], "alice@[192.0.2.1]", false),
        (
            "alice@example.com",
            &["@example.org"],
            "anyone@example.org",
            true,
        ),
        (
            "alice@example.com",
            &["example.org"],
            "Anyone@EXAMPLE.org",
            true,
        ),
        (
            "alice@example.com",
            &["@example.org"],
            "x@evil-example.org",
            false,
        ),
        (
            "alice@example.com",
            &["@example.org"],
            "x@example.org.evil",
            false,
        ),
        (
            "alice@example.com",
            &["bob@example.net"],
            "bob@example.net",
            true,
        ),
        (
            "alice@example.com",
            &["bob@example.net"],
            "carol@example.net",
            false,
        ),
        ("relay-app", &[], "relay-app@example.com", false),
        ("relay-app", &[], "x@relay-app", false),
        (
            "relay-app",
            &["@apps.example.com"],
            "noreply@apps.example.com",
            true,
        ),
        ("relay-app", &[], "", true),
        ("a@b@example.com", &[], "a@b@example.com", true),
    ];
    for (login, senders, sender, allowed) in cases {
        assert_eq!(
            user(login, senders).may_send_as(&path(sender)),
            *allowed,
            "{login} with {senders:?} sending as <{sender}>"
        );
    }
}

#[test]
fn sender_rules_parse_and_print() {
    let good = [
        ("alice@example.com", "alice@example.com"),
        ("Alice@Example.COM", "alice@example.com"),
        ("@example.com", "@example.com"),
        ("example.com", "@example.com"),
        ("EXAMPLE.com", "@example.com"),
    ];
    for (text, stored) in good {
        let rule = SenderRule::parse(text).expect(text);
        assert_eq!(rule.to_string(), stored);
        assert_eq!(SenderRule::parse(stored).expect(stored), rule);
    }
    for bad in [
        "",
        "@",
        "alice@",
        ".example.com",
        "example.com.",
        "a..b",
        "<a@b>",
        "a b@c",
        "a@[1.2.3.4]",
        "a@b\r\n",
    ] {
        assert!(SenderRule::parse(bad).is_err(), "{bad:?} should be refused");
    }
}

#[test]
fn logins_are_lower_cased_and_bounded() {
    assert_eq!(
        normalize_login("Alice@Example.COM").ok().as_deref(),
        Some("alice@example.com")
    );
    assert_eq!(
        normalize_login("ÉLÈVE@exemple.fr").ok().as_deref(),
        Some("élève@exemple.fr")
    );
    for bad in ["", "a b", "a\tb", "a\0b", &"x".repeat(MAX_LOGIN + 1)] {
        assert!(normalize_login(bad).is_err(), "{bad:?}");
    }
}

#[test]
fn client_addresses_are_counted_per_ipv4_address_and_ipv6_64() {
    let key = |s: &str| ip_key(s.parse::<IpAddr>().expect("an address"));
    assert_eq!(key("192.0.2.7"), "192.0.2.7");
    assert_eq!(key("::ffff:192.0.2.7"), "192.0.2.7");
    assert_eq!(key("2001:db8:1:2:3:4:5:6"), "2001:db8:1:2::/64");
    assert_eq!(key("2001:db8:1:2:ffff::1"), key("2001:db8:1:2::9"));
    assert_ne!(key("2001:db8:1:2::1"), key("2001:db8:1:3::1"));
}

#[test]
fn lockout_defaults() {
    let policy = LockoutPolicy::default();
    assert_eq!((policy.max_per_login, policy.max_per_ip), (5, 20));
    assert_eq!(policy.window.as_secs(), 900);
}
