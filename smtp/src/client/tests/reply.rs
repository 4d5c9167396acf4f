use super::*;

/// Every reply `pieces` hold, or the first error.
fn parse(pieces: &[&[u8]]) -> Result<Vec<RemoteReply>, ReplyError> {
    let mut parser = ReplyParser::new();
    let mut replies = Vec::new();
    for piece in pieces {
        parser.push(piece);
        while let Some(reply) = parser.next_reply()? {
            replies.push(reply);
        }
    }
    Ok(replies)
}

fn reply(code: u16, status: Option<&str>, text: &str) -> RemoteReply {
    RemoteReply::new(code, status, text)
}

#[test]
fn replies_parse_the_same_however_the_bytes_are_split() {
    let table: Vec<(&[u8], Vec<RemoteReply>)> = vec![
        (
            b"220 mx.test ESMTP ready\r\n",
            vec![reply(220, None, "mx.test ESMTP ready")],
        ),
        (
            b"250-mx.test hello\r\n250-PIPELINING\r\n250 SIZE 1000\r\n",
            vec![reply(250, None, "mx.test hello PIPELINING SIZE 1000")],
        ),
        (
            b"550 5.1.1 <a@b.test>: user unknown\r\n",
            vec![reply(550, Some("5.1.1"), "<a@b.test>: user unknown")],
        ),
        (
            b"550-5.7.1 first line\r\n550 5.7.1 second line\r\n",
            vec![reply(550, Some("5.7.1"), "first line second line")],
        ),
        (
            b"451-4.3.0 try\r\n451 4.7.1 later\r\n",
            vec![reply(451, Some("4.3.0"), "try 4.7.1 later")],
        ),
        (b"250 ok\n", vec![reply(250, None, "ok")]),
        (b"250-a\n250 b\r\n", vec![reply(250, None, "a b")]),
        (b"250\r\n", vec![reply(250, None, "")]),
        (b"250 \r\n", vec![reply(250, None, "")]),
        (
            b"250-smtp-sink\r\n250 \r\n",
            vec![reply(250, None, "smtp-sink")],
        ),
        (b"250 2.0.0\r\n", vec![reply(250, Some("2.0.0"), "")]),
        (b"250 5.1.1 odd\r\n", vec![reply(250, None, "5.1.1 odd")]),
        (
            b"250 2.1234.5 odd\r\n",
            vec![reply(250, None, "2.1234.5 odd")],
        ),
        (
            b"250 2.0.0.1 odd\r\n",
            vec![reply(250, None, "2.0.0.1 odd")],
        ),
        (b"250 caf\xe9\r\n", vec![reply(250, None, "caf\u{fffd}")]),
        (
            b"250 2.1.0 ok\r\n250 2.1.5 ok\r\n354 go ahead\r\n",
            vec![
                reply(250, Some("2.1.0"), "ok"),
                reply(250, Some("2.1.5"), "ok"),
                reply(354, None, "go ahead"),
            ],
        ),
        (b"250 partial", vec![]),
        (b"250-first\r\n", vec![]),
    ];
    for (input, expected) in table {
        for pieces in splits(input) {
            assert_eq!(parse(&pieces), Ok(expected.clone()), "{pieces:?}");
        }
    }
}

#[test]
fn malformed_replies_are_typed_errors_however_the_bytes_are_split() {
    let long = [b"250 ".as_slice(), &[b'a'; MAX_REPLY_LINE - 3], b"\r\n"].concat();
    let unended = [b"250 ".as_slice(), &[b'a'; MAX_REPLY_LINE]].concat();
    let many = [b"250-x\r\n".repeat(MAX_REPLY_LINES), b"250 x\r\n".to_vec()].concat();
    let mismatch = ReplyError::CodeMismatch {
        first: 250,
        then: 251,
    };
    let table: Vec<(&[u8], ReplyError)> = vec![
        (b"25 ok\r\n", ReplyError::Malformed("25 ok".into())),
        (b"abc\r\n", ReplyError::Malformed("abc".into())),
        (b"\r\n", ReplyError::Malformed(String::new())),
        (b"150 go\r\n", ReplyError::Malformed("150 go".into())),
        (b"650 no\r\n", ReplyError::Malformed("650 no".into())),
        (b"2a0 no\r\n", ReplyError::Malformed("2a0 no".into())),
        (b"250x ok\r\n", ReplyError::Malformed("250x ok".into())),
        (b"250-a\r\n251 b\r\n", mismatch),
        (&long, ReplyError::LineTooLong),
        (&unended, ReplyError::LineTooLong),
        (&many, ReplyError::TooManyLines),
    ];
    for (input, expected) in table {
        for pieces in splits(input) {
            assert_eq!(
                parse(&pieces),
                Err(expected.clone()),
                "{:?}",
                &input[..20.min(input.len())]
            );
        }
    }
}

#[test]
fn the_longest_line_and_the_most_lines_allowed_are_accepted() {
    let longest = [b"250 ".as_slice(), &[b'a'; MAX_REPLY_LINE - 4], b"\r\n"].concat();
    let replies = parse(&[&longest]).expect("longest line");
    assert_eq!(replies[0].text.len(), MAX_REPLY_LINE - 4);
    let most = [
        b"250-x\r\n".repeat(MAX_REPLY_LINES - 1),
        b"250 x\r\n".to_vec(),
    ]
    .concat();
    assert_eq!(parse(&[&most]).expect("most lines").len(), 1);
}

#[test]
fn reply_lines_keep_each_line_for_ehlo_keywords() {
    let mut parser = ReplyParser::new();
    parser.push(b"250-mx.test greets you\r\n250-SIZE 100\r\n250 8BITMIME\r\n");
    let (reply, lines) = parser.next_reply_lines().expect("valid").expect("complete");
    assert_eq!(reply.code, 250);
    assert_eq!(lines, ["mx.test greets you", "SIZE 100", "8BITMIME"]);
}

#[test]
fn bytes_after_a_reply_are_reported_as_buffered() {
    let mut parser = ReplyParser::new();
    parser.push(b"220 go ahead\r\n");
    assert!(parser.next_reply().expect("valid").is_some());
    assert!(!parser.has_buffered());
    parser.push(b"220 go ahead\r\n250 injected");
    assert!(parser.next_reply().expect("valid").is_some());
    assert!(parser.has_buffered());
    let mut parser = ReplyParser::new();
    parser.push(b"220-first line\r\n");
    assert_eq!(parser.next_reply(), Ok(None));
    assert!(parser.has_buffered());
}
