use super::*;

fn relay(protocol: Protocol, host: &str, port: u16, mx_lookup: bool) -> Route {
    Route::Relay {
        protocol,
        host: host.to_owned(),
        port,
        mx_lookup,
    }
}

fn mx(domain: &str) -> Route {
    Route::Mx {
        domain: domain.to_owned(),
    }
}

#[test]
fn specs_parse_like_postfix_transport_entries() {
    use Protocol::{Lmtp, Smtp};
    let cases = [
        (
            "smtp:[mx.example.net]",
            relay(Smtp, "mx.example.net", 25, false),
        ),
        (
            "smtp:[mx.example.net]:2525",
            relay(Smtp, "mx.example.net", 2525, false),
        ),
        ("SMTP:[10.0.0.5]:26", relay(Smtp, "10.0.0.5", 26, false)),
        (
            "smtp:[2001:db8::1]:25",
            relay(Smtp, "2001:db8::1", 25, false),
        ),
        (
            "smtp:[IPv6:2001:db8::1]",
            relay(Smtp, "2001:db8::1", 25, false),
        ),
        ("smtp:example.net", relay(Smtp, "example.net", 25, true)),
        (
            "smtp:Example.NET.:587",
            relay(Smtp, "example.net", 587, true),
        ),
        ("smtp:10.0.0.5:25", relay(Smtp, "10.0.0.5", 25, false)),
        ("lmtp:[127.0.0.1]:24", relay(Lmtp, "127.0.0.1", 24, false)),
        (
            "lmtp:mailstore.internal",
            relay(Lmtp, "mailstore.internal", 24, false),
        ),
        (
            "lmtp:inet:mailstore.internal:2424",
            relay(Lmtp, "mailstore.internal", 2424, false),
        ),
        ("smtp:", mx("route.test")),
        ("smtp", mx("route.test")),
    ];
    for (spec, expected) in cases {
        let table = RouteTable::parse(&format!("route.test={spec}"), "")
            .unwrap_or_else(|error| panic!("{spec}: {error}"));
        assert_eq!(table.lookup("route.test"), expected, "{spec}");
    }
}

#[test]
fn bad_specs_are_rejected_with_the_reason() {
    let cases = [
        (
            "route.test=uucp:host",
            SpecError::Transport("uucp".to_owned()),
        ),
        ("route.test=lmtp:unix:/run/lmtp", SpecError::UnixSocket),
        ("route.test=lmtp:", SpecError::NoHost),
        ("route.test=smtp:[host", SpecError::Bracket),
        ("route.test=smtp:[host]25", SpecError::Port("25".to_owned())),
        ("route.test=smtp:host:0", SpecError::Port("0".to_owned())),
        (
            "route.test=smtp:host:smtp",
            SpecError::Port("smtp".to_owned()),
        ),
        ("route.test=smtp:2001:db8::1", SpecError::BareIpv6),
        (
            "route.test=smtp:[bad_host!]",
            SpecError::Host("bad_host!".to_owned()),
        ),
        (
            "route.test=smtp:-bad.example",
            SpecError::Host("-bad.example".to_owned()),
        ),
    ];
    for (routes, reason) in cases {
        let entry = routes.to_owned();
        assert_eq!(
            RouteTable::parse(routes, ""),
            Err(RouteError::Spec { entry, reason })
        );
    }
}

#[test]
fn bad_entries_name_the_entry() {
    let cases = [
        ("example.com", "expected domain=transport:nexthop"),
        ("exa mple.com=smtp:", "expected domain=transport:nexthop"),
        ("bad!domain=smtp:", "\"bad!domain\" is not a domain name"),
        (
            "a.test=smtp:,A.test=lmtp:[h]",
            "a route for \"A.test\" is already given",
        ),
    ];
    for (routes, message) in cases {
        let error = RouteTable::parse(routes, "").expect_err(routes).to_string();
        assert!(
            error.starts_with("route ") && error.contains(message),
            "{routes}: {error}"
        );
    }
}

#[test]
fn smarthost_errors_say_smarthost() {
    for spec in ["smtp:", "uucp:host", "[relay"] {
        let error = RouteTable::parse("", spec).expect_err(spec);
        assert!(
            matches!(error, RouteError::Smarthost { .. }),
            "{spec}: {error}"
        );
        assert!(error.to_string().starts_with("smarthost "), "{error}");
    }
}

#[test]
fn the_smarthost_may_leave_out_the_transport_like_relayhost() {
    let cases = [
        (
            "[relay.example.net]:587",
            relay(Protocol::Smtp, "relay.example.net", 587, false),
        ),
        (
            "relay.example.net:587",
            relay(Protocol::Smtp, "relay.example.net", 587, true),
        ),
        (
            "relay.example.net",
            relay(Protocol::Smtp, "relay.example.net", 25, true),
        ),
        (
            "smtp:[relay.example.net]",
            relay(Protocol::Smtp, "relay.example.net", 25, false),
        ),
        (
            "lmtp:[10.0.0.9]",
            relay(Protocol::Lmtp, "10.0.0.9", 24, false),
        ),
    ];
    for (spec, expected) in cases {
        let table = RouteTable::parse("", spec).unwrap_or_else(|e| panic!("{spec}: {e}"));
        assert_eq!(table.lookup("anything.test"), expected, "{spec}");
    }
}

#[test]
fn lookup_prefers_exact_then_closest_parent_then_smarthost_then_mx() {
    let routes = "
        example.com   = smtp:[exact.example.net]
        .example.com  = smtp:[parent.example.net],
        .b.example.com=smtp:[closer.example.net]
        direct.example.org=smtp:
    ";
    let table = RouteTable::parse(routes, "[smart.example.net]").expect("valid");
    let host = |domain: &str| match table.lookup(domain) {
        Route::Relay { host, .. } => host,
        Route::Mx { domain } => format!("mx:{domain}"),
    };
    assert_eq!(host("example.com"), "exact.example.net");
    assert_eq!(host("EXAMPLE.com."), "exact.example.net");
    assert_eq!(host("a.example.com"), "parent.example.net");
    assert_eq!(host("a.b.example.com"), "closer.example.net");
    assert_eq!(host("b.example.com"), "parent.example.net");
    assert_eq!(host("other.org"), "smart.example.net");
    assert_eq!(host("Direct.Example.org"), "mx:direct.example.org");
    let empty = RouteTable::parse("", "").expect("valid");
    assert_eq!(empty.lookup("Example.COM"), mx("example.com"));
}

#[test]
fn routes_display_in_transport_syntax() {
    let table = RouteTable::parse(
        "a.test=smtp:[h]:26,b.test=smtp:x.test,c.test=lmtp:[::1]",
        "",
    )
    .expect("valid");
    assert_eq!(table.lookup("a.test").to_string(), "smtp:[h]:26");
    assert_eq!(table.lookup("b.test").to_string(), "smtp:x.test:25");
    assert_eq!(table.lookup("c.test").to_string(), "lmtp:[::1]:24");
    assert_eq!(table.lookup("d.test").to_string(), "smtp:d.test");
}
