use super::*;

fn caps(lines: &[&str]) -> Capabilities {
    Capabilities::from_ehlo(lines)
}

#[test]
fn ehlo_keywords_become_capabilities_whatever_their_case() {
    let all = caps(&[
        "mx.test hello",
        "pipelining",
        "SIZE 52428800",
        "8BITMIME",
        "SmtpUtf8",
        "DSN",
        "STARTTLS",
        "CHUNKING",
        "ENHANCEDSTATUSCODES",
        "AUTH PLAIN LOGIN",
        "XCLIENT NAME HELO",
    ]);
    assert_eq!(
        all,
        Capabilities {
            pipelining: true,
            size: Some(52_428_800),
            eightbitmime: true,
            smtputf8: true,
            dsn: true,
            starttls: true,
            chunking: true,
            enhancedstatuscodes: true,
        }
    );
}

#[test]
fn a_size_of_zero_missing_or_malformed_announces_no_limit() {
    for line in ["SIZE 0", "SIZE", "SIZE lots", "SIZE -5"] {
        assert_eq!(caps(&["mx.test", line]).size, None, "{line}");
    }
    assert_eq!(caps(&["mx.test", "size 1000"]).size, Some(1000));
}

#[test]
fn the_first_line_is_the_greeting_and_never_a_keyword() {
    assert_eq!(caps(&["PIPELINING"]), Capabilities::default());
    assert_eq!(caps(&[]), Capabilities::default());
    assert!(caps(&["mx.test", "", "  ", "DSN"]).dsn);
}

#[test]
fn a_parsed_ehlo_reply_gives_its_capabilities() {
    let mut parser = ReplyParser::new();
    parser.push(b"250-mx.test\r\n250-PIPELINING\r\n250-SIZE 10\r\n250 STARTTLS\r\n");
    let (_, lines) = parser.next_reply_lines().expect("valid").expect("complete");
    let found = Capabilities::from_ehlo(&lines);
    assert!(found.pipelining && found.starttls && !found.dsn);
    assert_eq!(found.size, Some(10));
}
