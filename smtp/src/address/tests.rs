use super::*;
use crate::testing::{Driver, small_config};

fn name(s: &str) -> Domain {
    Domain::Name(s.to_string())
}

fn literal(s: &str) -> Domain {
    Domain::Literal(s.to_string())
}

fn mailbox(local: &str, domain: Domain) -> Mailbox {
    Mailbox {
        local: local.to_string(),
        domain,
    }
}

#[test]
fn forward_path_table_parses_or_refuses_as_expected() {
    let long_local = format!("<{}@example.com>", "a".repeat(65));
    let max_local = format!("<{}@example.com>", "a".repeat(64));
    let long_label = format!("<a@{}.com>", "b".repeat(64));
    let long_domain = format!("<a@{}com>", "abcdefghi.".repeat(26));
    let long_path = format!("<@{}:a@b.example>", "abcdefghi.".repeat(25) + "com");
    let table: Vec<(&str, Result<Mailbox, AddressError>)> = vec![
        (
            "<user@example.com>",
            Ok(mailbox("user", name("example.com"))),
        ),
        (
            "<First.Last@Example.COM>",
            Ok(mailbox("First.Last", name("example.com"))),
        ),
        (
            "<a+tag@sub.example.com>",
            Ok(mailbox("a+tag", name("sub.example.com"))),
        ),
        (
            "<!#$%&'*+-/=?^_`{|}~@x.example>",
            Ok(mailbox("!#$%&'*+-/=?^_`{|}~", name("x.example"))),
        ),
        ("<\"a b\"@c.example>", Ok(mailbox("a b", name("c.example")))),
        ("<\"a@b\"@c.example>", Ok(mailbox("a@b", name("c.example")))),
        (
            "<\"a\\\"b\\\\c\"@d.example>",
            Ok(mailbox("a\"b\\c", name("d.example"))),
        ),
        ("<\"a>b\"@c.example>", Ok(mailbox("a>b", name("c.example")))),
        ("<\"\"@c.example>", Ok(mailbox("", name("c.example")))),
        (
            "<@a.example,@b.example:user@c.example>",
            Ok(mailbox("user", name("c.example"))),
        ),
        (
            "<@a.example:user@c.example>",
            Ok(mailbox("user", name("c.example"))),
        ),
        (
            "<user@[192.0.2.1]>",
            Ok(mailbox("user", literal("192.0.2.1"))),
        ),
        (
            "<user@[IPv6:2001:db8::1]>",
            Ok(mailbox("user", literal("IPv6:2001:db8::1"))),
        ),
        (
            "<user@[ipv6:::ffff:192.0.2.1]>",
            Ok(mailbox("user", literal("IPv6:::ffff:192.0.2.1"))),
        ),
        (
            "<jörg@bücher.example>",
            Ok(mailbox("jörg", name("bücher.example"))),
        ),
        ("<用户@例子.广告>", Ok(mailbox("用户", name("例子.广告")))),
        (
            "<a@xn--bcher-kva.example>",
            Ok(mailbox("a", name("xn--bcher-kva.example"))),
        ),
        (
            "<a-b@1.2.3.example>",
            Ok(mailbox("a-b", name("1.2.3.example"))),
        ),
        (
            max_local.as_str(),
            Ok(mailbox(&"a".repeat(64), name("example.com"))),
        ),
        ("<user>", Err(AddressError::MissingDomain)),
        ("<user@>", Err(AddressError::BadDomain)),
        ("<@example.com>", Err(AddressError::BadRoute)),
        ("<.user@example.com>", Err(AddressError::BadLocal)),
        ("<user.@example.com>", Err(AddressError::BadLocal)),
        ("<us..er@example.com>", Err(AddressError::BadLocal)),
        ("<us er@example.com>", Err(AddressError::BadLocal)),
        ("<a@b@example.com>", Err(AddressError::BadDomain)),
        ("<\"unterminated@example.com>", Err(AddressError::BadLocal)),
        ("<\"a\"b@example.com>", Err(AddressError::MissingDomain)),
        ("<\"a\tb\"@example.com>", Err(AddressError::BadLocal)),
        ("<user@-example.com>", Err(AddressError::BadDomain)),
        ("<user@example-.com>", Err(AddressError::BadDomain)),
        ("<user@exa_mple.com>", Err(AddressError::BadDomain)),
        ("<user@example..com>", Err(AddressError::BadDomain)),
        ("<user@example.com.>", Err(AddressError::BadDomain)),
        ("<user@[192.0.2.256]>", Err(AddressError::BadLiteral)),
        ("<user@[192.0.2]>", Err(AddressError::BadLiteral)),
        ("<user@[IPv6:2001:db8::g]>", Err(AddressError::BadLiteral)),
        ("<user@[2001:db8::1]>", Err(AddressError::BadLiteral)),
        ("<user@[x-tag:stuff]>", Err(AddressError::BadLiteral)),
        ("<user@[192.0.2.1>", Err(AddressError::BadLiteral)),
        ("<@bad_hop:user@c.example>", Err(AddressError::BadRoute)),
        ("<@a.example;user@c.example>", Err(AddressError::BadRoute)),
        (
            "<a.example,@b.example:user@c.example>",
            Err(AddressError::BadLocal),
        ),
        (long_local.as_str(), Err(AddressError::LocalTooLong)),
        (long_label.as_str(), Err(AddressError::BadDomain)),
        // A domain over 255 octets cannot fit in a 256-octet path.
        (long_domain.as_str(), Err(AddressError::PathTooLong)),
        (long_path.as_str(), Err(AddressError::PathTooLong)),
        ("<>", Err(AddressError::NullNotAllowed)),
    ];
    for (path, expected) in table {
        let expected = expected.map(ForwardPath::Mailbox);
        assert_eq!(parse_forward_path(path), expected, "{path}");
    }
}

#[test]
fn domains_over_255_octets_are_refused_on_their_own() {
    let ok = format!("{}com", "abcdefghi.".repeat(25));
    let long = format!("{}com", "abcdefghi.".repeat(26));
    assert_eq!(domain::parse_domain(&ok), Ok(name(&ok)));
    assert_eq!(
        domain::parse_domain(&long),
        Err(AddressError::DomainTooLong)
    );
}

#[test]
fn unqualified_postmaster_in_any_case_is_the_postmaster_path() {
    for path in ["<postmaster>", "<POSTMASTER>", "<PostMaster>"] {
        assert_eq!(
            parse_forward_path(path),
            Ok(ForwardPath::Postmaster),
            "{path}"
        );
    }
    let qualified = parse_forward_path("<postmaster@example.com>");
    assert_eq!(
        qualified,
        Ok(ForwardPath::Mailbox(mailbox(
            "postmaster",
            name("example.com")
        )))
    );
}

#[test]
fn null_reverse_path_is_accepted_only_as_a_sender() {
    assert_eq!(parse_reverse_path("<>"), Ok(ReversePath::Null));
    assert_eq!(ReversePath::Null.to_string(), "<>");
    assert_eq!(parse_forward_path("<>"), Err(AddressError::NullNotAllowed));
}

#[test]
fn split_path_finds_the_closing_bracket_outside_quotes() {
    let table = [
        ("<a@b> SIZE=1", Ok(("<a@b>", " SIZE=1"))),
        ("<\"x>y\"@b>", Ok(("<\"x>y\"@b>", ""))),
        ("<\"x\\\">y\"@b> X", Ok(("<\"x\\\">y\"@b>", " X"))),
        ("a@b", Err(AddressError::NotBracketed)),
        ("<a@b", Err(AddressError::NotBracketed)),
    ];
    for (input, expected) in table {
        assert_eq!(split_path(input), expected, "{input}");
    }
}

#[test]
fn display_requotes_local_parts_that_are_not_dot_strings() {
    let table = [
        (mailbox("user", name("example.com")), "user@example.com"),
        (mailbox("a b", name("c.example")), "\"a b\"@c.example"),
        (mailbox("a@b", name("c.example")), "\"a@b\"@c.example"),
        (
            mailbox("a\"b\\c", name("d.example")),
            "\"a\\\"b\\\\c\"@d.example",
        ),
        (mailbox("", name("c.example")), "\"\"@c.example"),
        (mailbox(".a", name("c.example")), "\".a\"@c.example"),
        (mailbox("u", literal("192.0.2.1")), "u@[192.0.2.1]"),
        (
            mailbox("jörg", name("bücher.example")),
            "jörg@bücher.example",
        ),
    ];
    for (mailbox, text) in table {
        assert_eq!(mailbox.to_string(), text);
        let reparsed = parse_forward_path(&format!("<{text}>"));
        assert_eq!(reparsed, Ok(ForwardPath::Mailbox(mailbox)), "{text}");
    }
    assert_eq!(ForwardPath::Postmaster.to_string(), "postmaster");
}

#[test]
fn routing_characters_in_the_local_part_are_flagged() {
    let table = [
        ("<a%b@c.example>", true),
        ("<a!b@c.example>", true),
        ("<\"a@b\"@c.example>", true),
        ("<a.b@c.example>", false),
        ("<a+b@c.example>", false),
    ];
    for (path, flagged) in table {
        let Ok(ForwardPath::Mailbox(mailbox)) = parse_forward_path(path) else {
            panic!("{path} did not parse");
        };
        assert_eq!(mailbox.local_has_routing_chars(), flagged, "{path}");
    }
}

#[test]
fn ascii_check_covers_local_part_and_domain() {
    assert!(mailbox("a", name("b.example")).is_ascii());
    assert!(!mailbox("ä", name("b.example")).is_ascii());
    assert!(!mailbox("a", name("bä.example")).is_ascii());
}

#[test]
fn utf8_addresses_need_smtputf8_on_mail() {
    let table = [
        (
            "MAIL FROM:<jörg@bücher.example>",
            "553 5.6.7 Address requires SMTPUTF8",
        ),
        ("MAIL FROM:<jörg@bücher.example> SMTPUTF8", "250 2.1.0 Ok"),
        (
            "MAIL FROM:<a@bücher.example> BODY=8BITMIME",
            "553 5.6.7 Address requires SMTPUTF8",
        ),
    ];
    for (line, reply) in table {
        let mut driver = Driver::after_ehlo(small_config());
        driver.feed(format!("{line}\r\n").as_bytes());
        assert_eq!(driver.last(), reply, "{line}");
    }
}

#[test]
fn utf8_recipients_need_smtputf8_on_the_transactions_mail() {
    let table = [
        (
            "MAIL FROM:<a@b.example>",
            "553 5.6.7 Address requires SMTPUTF8",
        ),
        ("MAIL FROM:<a@b.example> SMTPUTF8", "250 2.1.5 Ok"),
    ];
    for (mail, reply) in table {
        let mut driver = Driver::after_ehlo(small_config());
        driver.feed(format!("{mail}\r\nRCPT TO:<用户@例子.广告>\r\n").as_bytes());
        assert_eq!(driver.last(), reply, "{mail}");
    }
}
