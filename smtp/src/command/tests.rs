use super::*;
use crate::testing::{Driver, small_config};

/// Where a table row starts from.
#[derive(Clone, Copy, Debug)]
enum Start {
    /// Nothing sent but the greeting.
    Fresh,
    /// After `EHLO client`.
    Ehlo,
    /// After EHLO and `MAIL FROM:<a@b.example>`.
    Mail,
    /// After EHLO, MAIL and one accepted RCPT.
    Rcpt,
}

fn driver_at(from: Start) -> Driver {
    let mut driver = Driver::new(small_config());
    let setup: &[u8] = match from {
        Start::Fresh => b"",
        Start::Ehlo => b"EHLO client\r\n",
        Start::Mail => b"EHLO client\r\nMAIL FROM:<a@b.example>\r\n",
        Start::Rcpt => b"EHLO client\r\nMAIL FROM:<a@b.example>\r\nRCPT TO:<c@d.example>\r\n",
    };
    driver.feed(setup);
    driver.transcript.clear();
    driver
}

const EHLO_REPLY: &str = "250-mx.test\r\n250-PIPELINING\r\n250-SIZE 1000\r\n250-8BITMIME\r\n\
                          250-SMTPUTF8\r\n250-ENHANCEDSTATUSCODES\r\n250-DSN\r\n250 CHUNKING";

#[test]
fn every_verb_gets_its_exact_reply() {
    use Start::*;
    let table: Vec<(Start, &str, &str)> = vec![
        (Fresh, "EHLO client.example", EHLO_REPLY),
        (Fresh, "ehlo client.example", EHLO_REPLY),
        (Fresh, "EHLO", "501 5.5.4 Syntax: EHLO hostname"),
        (Fresh, "HELO client.example", "250 mx.test"),
        (Fresh, "HeLo client.example", "250 mx.test"),
        (Fresh, "HELO", "501 5.5.4 Syntax: HELO hostname"),
        (
            Fresh,
            "MAIL FROM:<a@b.example>",
            "503 5.5.1 Send HELO/EHLO first",
        ),
        (Ehlo, "MAIL FROM:<a@b.example>", "250 2.1.0 Ok"),
        (Ehlo, "mail from:<a@b.example>", "250 2.1.0 Ok"),
        (Ehlo, "MAIL FROM: <a@b.example>", "250 2.1.0 Ok"),
        (Ehlo, "MAIL FROM:<>", "250 2.1.0 Ok"),
        (
            Ehlo,
            "MAIL FROM:  <a@b.example>",
            "501 5.1.7 Bad sender address syntax",
        ),
        (
            Ehlo,
            "MAIL FROM:a@b.example",
            "501 5.1.7 Bad sender address syntax",
        ),
        (
            Ehlo,
            "MAIL FROM:<a@b.example",
            "501 5.1.7 Bad sender address syntax",
        ),
        (
            Ehlo,
            "MAIL FROM:<a@@b.example>",
            "501 5.1.7 Bad sender address syntax",
        ),
        (Ehlo, "MAIL FROM:", "501 5.5.4 Syntax: MAIL FROM:<address>"),
        (
            Ehlo,
            "MAIL TO:<a@b.example>",
            "501 5.5.4 Syntax: MAIL FROM:<address>",
        ),
        (Ehlo, "MAIL", "501 5.5.4 Syntax: MAIL FROM:<address>"),
        (
            Mail,
            "MAIL FROM:<a@b.example>",
            "503 5.5.1 Nested MAIL command",
        ),
        (Ehlo, "RCPT TO:<c@d.example>", "503 5.5.1 Need MAIL command"),
        (
            Fresh,
            "RCPT TO:<c@d.example>",
            "503 5.5.1 Need MAIL command",
        ),
        (Mail, "RCPT TO:<c@d.example>", "250 2.1.5 Ok"),
        (Mail, "rcpt to:<c@d.example>", "250 2.1.5 Ok"),
        (Mail, "RCPT TO: <c@d.example>", "250 2.1.5 Ok"),
        (Mail, "RCPT TO:<Postmaster>", "250 2.1.5 Ok"),
        (
            Mail,
            "RCPT TO:<reject@d.example>",
            "554 5.7.1 Relay access denied",
        ),
        (Mail, "RCPT TO:<>", "501 5.1.3 Bad recipient address syntax"),
        (
            Mail,
            "RCPT TO:c@d.example",
            "501 5.1.3 Bad recipient address syntax",
        ),
        (
            Mail,
            "RCPT TO:<c@d_example>",
            "501 5.1.3 Bad recipient address syntax",
        ),
        (
            Mail,
            "RCPT FROM:<c@d.example>",
            "501 5.5.4 Syntax: RCPT TO:<address>",
        ),
        (Mail, "RCPT", "501 5.5.4 Syntax: RCPT TO:<address>"),
        (Fresh, "DATA", "503 5.5.1 Need MAIL command"),
        (Ehlo, "DATA", "503 5.5.1 Need MAIL command"),
        (Mail, "DATA", "554 5.5.1 No valid recipients"),
        (Rcpt, "DATA", "354 End data with <CR><LF>.<CR><LF>"),
        (Rcpt, "data", "354 End data with <CR><LF>.<CR><LF>"),
        (Rcpt, "DATA now", "501 5.5.4 Syntax: DATA"),
        (Rcpt, "BDAT", "501 5.5.4 Syntax: BDAT size [LAST]"),
        (Rcpt, "BDAT x", "501 5.5.4 Syntax: BDAT size [LAST]"),
        (Rcpt, "BDAT 1 FIRST", "501 5.5.4 Syntax: BDAT size [LAST]"),
        (Rcpt, "BDAT 0", "250 2.0.0 0 octets received"),
        (Rcpt, "bdat 0 last", "250 2.0.0 Ok: queued as Q1"),
        (Mail, "RSET", "250 2.0.0 Ok"),
        (Fresh, "rset", "250 2.0.0 Ok"),
        (Ehlo, "RSET now", "501 5.5.4 Syntax: RSET"),
        (Fresh, "NOOP", "250 2.0.0 Ok"),
        (Fresh, "noop anything at all", "250 2.0.0 Ok"),
        (Fresh, "QUIT", "CLOSE 221 2.0.0 mx.test Bye"),
        (Rcpt, "quit", "CLOSE 221 2.0.0 mx.test Bye"),
        (Fresh, "QUIT now", "501 5.5.4 Syntax: QUIT"),
        (
            Fresh,
            "VRFY root",
            "252 2.5.2 Cannot VRFY user, but will accept message and attempt delivery",
        ),
        (Fresh, "VRFY", "501 5.5.4 Syntax: VRFY address"),
        (Fresh, "EXPN staff", "502 5.5.1 EXPN not available"),
        (
            Fresh,
            "HELP",
            "214 2.0.0 See https://www.rfc-editor.org/rfc/rfc5321",
        ),
        (
            Fresh,
            "help mail",
            "214 2.0.0 See https://www.rfc-editor.org/rfc/rfc5321",
        ),
        (Ehlo, "STARTTLS", "502 5.5.1 Command not implemented"),
        (
            Ehlo,
            "AUTH PLAIN AGFhAGI=",
            "502 5.5.1 Command not implemented",
        ),
        (Ehlo, "TURN", "502 5.5.1 Command not implemented"),
        (
            Ehlo,
            "ETRN example.com",
            "502 5.5.1 Command not implemented",
        ),
        (Fresh, "XYZZY", "500 5.5.2 Command unrecognized"),
        (Fresh, "", "500 5.5.2 Command unrecognized"),
        (
            Fresh,
            "MAILFROM:<a@b.example>",
            "500 5.5.2 Command unrecognized",
        ),
        (Fresh, "GET / HTTP/1.1", "500 5.5.2 Command unrecognized"),
    ];
    for (from, line, reply) in table {
        let mut driver = driver_at(from);
        driver.feed(format!("{line}\r\n").as_bytes());
        assert_eq!(driver.last(), reply, "{from:?} {line:?}");
    }
}

#[test]
fn malformed_lines_get_500_5_5_2() {
    let table: [(&[u8], &str); 4] = [
        (
            b"NOOP\n",
            "500 5.5.2 Bare LF in command; lines must end with CRLF",
        ),
        (b"NO\0OP\r\n", "500 5.5.2 NUL byte in command"),
        (
            b"NO\rOP\r\n",
            "500 5.5.2 Bare CR in command; lines must end with CRLF",
        ),
        (b"NOOP \xff\xfe\r\n", "500 5.5.2 Invalid UTF-8 in command"),
    ];
    for (input, reply) in table {
        let mut driver = driver_at(Start::Fresh);
        driver.feed(input);
        assert_eq!(driver.transcript, [reply], "{input:?}");
    }
}

#[test]
fn bare_lf_ends_the_bad_line_and_the_next_line_is_read_normally() {
    let mut driver = driver_at(Start::Fresh);
    driver.feed(b"NOOP\nNOOP\r\n");
    assert_eq!(
        driver.transcript,
        [
            "500 5.5.2 Bare LF in command; lines must end with CRLF",
            "250 2.0.0 Ok"
        ]
    );
}

#[test]
fn ehlo_and_helo_reset_the_transaction_but_keep_the_session() {
    for greeting in ["EHLO again", "HELO again"] {
        let mut driver = driver_at(Start::Rcpt);
        driver.feed(format!("{greeting}\r\nDATA\r\n").as_bytes());
        assert_eq!(driver.last(), "503 5.5.1 Need MAIL command", "{greeting}");
        assert_eq!(driver.session.helo(), Some("again"));
    }
}

#[test]
fn verb_split_is_case_insensitive_and_trims_arguments() {
    let table = [
        ("EHLO x", Verb::Ehlo, "x"),
        ("eHlO  x  ", Verb::Ehlo, "x"),
        ("MAIL FROM:<a@b>", Verb::Mail, "FROM:<a@b>"),
        ("StartTLS", Verb::Starttls, ""),
        ("data", Verb::Data, ""),
        ("bdat 10 last", Verb::Bdat, "10 last"),
        ("EHLOx", Verb::Unknown, ""),
        ("", Verb::Unknown, ""),
    ];
    for (line, verb, args) in table {
        assert_eq!(split(line), (verb, args), "{line:?}");
    }
}

#[test]
fn bdat_arguments_parse_or_fail_without_a_size() {
    let syntax = Err(CommandError::Syntax(BDAT_USAGE));
    let table = [
        ("0", Ok((0, false))),
        ("0 LAST", Ok((0, true))),
        ("1024 last", Ok((1024, true))),
        ("18446744073709551615", Ok((u64::MAX, false))),
        ("18446744073709551616", syntax.clone()),
        ("", syntax.clone()),
        ("-1", syntax.clone()),
        ("+1", syntax.clone()),
        ("1 LAST more", syntax.clone()),
        ("LAST", syntax.clone()),
    ];
    for (args, expected) in table {
        assert_eq!(parse_bdat(args), expected, "{args:?}");
    }
}
