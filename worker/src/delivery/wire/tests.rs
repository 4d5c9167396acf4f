use super::*;

fn reply(lines: &[&str]) -> Result<RemoteReply, BadReply> {
    let mut builder = ReplyBuilder::default();
    for (i, line) in lines.iter().enumerate() {
        if let Some(reply) = builder.push(line.as_bytes())? {
            assert_eq!(i, lines.len() - 1, "reply ended early");
            return Ok(reply);
        }
    }
    panic!("reply did not end");
}

#[test]
fn single_and_multi_line_replies_keep_code_status_and_text() {
    let cases: &[(&[&str], u16, Option<&str>, &str)] = &[
        (&["250 ok"], 250, None, "ok"),
        (&["250"], 250, None, ""),
        (
            &["550 5.1.1 no such user"],
            550,
            Some("5.1.1"),
            "no such user",
        ),
        (&["451 4.3.0"], 451, Some("4.3.0"), ""),
        // A status whose class disagrees with the code is text, not a status.
        (&["550 4.1.1 odd"], 550, None, "4.1.1 odd"),
        (
            &["250-mx.example", "250-PIPELINING", "250 SIZE 100"],
            250,
            None,
            "mx.example PIPELINING SIZE 100",
        ),
        (
            &["550-5.7.1 first", "550 5.7.1 second"],
            550,
            Some("5.7.1"),
            "first second",
        ),
    ];
    for (lines, code, status, text) in cases {
        let got = reply(lines).expect("reply");
        assert_eq!(
            (got.code, got.status.as_deref(), got.text.as_str()),
            (*code, *status, *text),
            "{lines:?}"
        );
    }
}

#[test]
fn broken_reply_lines_are_errors_not_panics() {
    for lines in [
        &["hello"][..],
        &["25"],
        &["2x0 ok"],
        &["250x ok"],
        &["250-a", "251 b"],
        &["ü50 x"],
    ] {
        assert!(reply(lines).is_err(), "{lines:?}");
    }
    let mut builder = ReplyBuilder::default();
    let mut error = None;
    for _ in 0..=MAX_REPLY_LINES {
        if let Err(e) = builder.push(b"250-x") {
            error = Some(e);
            break;
        }
    }
    assert!(error.is_some(), "endless replies must be refused");
}

#[test]
fn ehlo_keywords_are_read_case_insensitively() {
    let caps = Capabilities::parse(
        [
            "pipelining",
            "SIZE 1000",
            "8BITMIME",
            "SmtpUtf8",
            "DSN",
            "STARTTLS",
            "CHUNKING",
            "ENHANCEDSTATUSCODES",
            "X-UNKNOWN 1",
        ]
        .into_iter(),
    );
    assert!(caps.pipelining && caps.eightbitmime && caps.smtputf8 && caps.dsn);
    assert!(caps.starttls && caps.chunking && caps.enhancedstatuscodes);
    assert_eq!(caps.size, Some(1000));
    assert_eq!(Capabilities::parse(["SIZE 0"].into_iter()).size, None);
    assert_eq!(Capabilities::parse(["SIZE"].into_iter()).size, None);
    assert!(!Capabilities::parse(std::iter::empty()).pipelining);
}

#[test]
fn xtext_encodes_plus_equals_space_and_non_ascii() {
    assert_eq!(
        xtext("rfc822;a+b=c@example.org"),
        "rfc822;a+2Bb+3Dc@example.org"
    );
    assert_eq!(xtext("a b"), "a+20b");
    assert_eq!(xtext("é"), "+C3+A9");
}

#[test]
fn dot_stuffing_doubles_leading_dots_and_closes_the_data() {
    let cases: &[(&[u8], &[u8])] = &[
        (b"a\r\nb\r\n", b"a\r\nb\r\n.\r\n"),
        (
            b".a\r\n..b\r\nc.\r\n.\r\n",
            b"..a\r\n...b\r\nc.\r\n..\r\n.\r\n",
        ),
        (b"no final newline", b"no final newline\r\n.\r\n"),
        (b"", b".\r\n"),
        (b"x\r\n.", b"x\r\n..\r\n.\r\n"),
    ];
    for (input, expected) in cases {
        assert_eq!(
            dot_stuff(input),
            *expected,
            "{:?}",
            String::from_utf8_lossy(input)
        );
    }
}
