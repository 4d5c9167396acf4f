use super::*;
use crate::testing::{Driver, small_config};

const PREFIX: &[u8] =
    b"EHLO client\r\nMAIL FROM:<a@b.example>\r\nRCPT TO:<c@d.example>\r\nDATA\r\n";
const POISONED: &str = "554 5.5.2 Message contains bare CR or LF or NUL; rejected (RFC 5321 2.3.8)";
/// What a smuggler puts after its fake end of data.
const SMUGGLED: &[u8] =
    b"MAIL FROM:<evil@attacker.example>\r\nRCPT TO:<victim@d.example>\r\nDATA\r\nforged\r\n";

/// Runs a whole session (prefix, `data`, QUIT) cut into `pieces` and
/// returns the transcript after the 354 and the messages queued.
fn run(pieces: &[&[u8]]) -> (Vec<String>, Vec<Vec<u8>>) {
    let mut driver = Driver::new(small_config());
    driver.feed_all(pieces);
    let start = driver
        .transcript
        .iter()
        .position(|line| line.starts_with("354"))
        .map_or(0, |i| i + 1);
    let bodies = driver.messages.iter().map(|m| m.body.clone()).collect();
    (driver.transcript[start..].to_vec(), bodies)
}

fn session_input(data: &[u8]) -> Vec<u8> {
    [PREFIX, data, b"QUIT\r\n"].concat()
}

/// Feeds `data` whole, split in two at every position, and byte by byte,
/// and checks that all of them give the same transcript and messages.
fn outcome_for_every_split(data: &[u8]) -> (Vec<String>, Vec<Vec<u8>>) {
    let input = session_input(data);
    let whole = run(&[&input]);
    for cut in 0..=input.len() {
        let (head, tail) = input.split_at(cut);
        assert_eq!(run(&[head, tail]), whole, "split at {cut} of {data:?}");
    }
    let bytes: Vec<&[u8]> = input.chunks(1).collect();
    assert_eq!(run(&bytes), whole, "byte at a time: {data:?}");
    whole
}

fn accepted(body: &[u8]) -> (Vec<String>, Vec<Vec<u8>>) {
    let transcript = [
        "MESSAGE",
        "250 2.0.0 Ok: queued as Q1",
        "CLOSE 221 2.0.0 mx.test Bye",
    ];
    (transcript.map(String::from).to_vec(), vec![body.to_vec()])
}

fn refused(reply: &str) -> (Vec<String>, Vec<Vec<u8>>) {
    let transcript = [reply, "CLOSE 221 2.0.0 mx.test Bye"];
    (transcript.map(String::from).to_vec(), Vec::new())
}

#[test]
fn well_formed_messages_are_unstuffed_and_end_at_crlf_dot_crlf() {
    let table: [(&[u8], &[u8]); 7] = [
        (
            b"Subject: x\r\n\r\nhello\r\n.\r\n",
            b"Subject: x\r\n\r\nhello\r\n",
        ),
        (b".\r\n", b""),
        (b"\r\n.\r\n", b"\r\n"),
        (
            b"..leading\r\n.x\r\n...\r\n.\r\n",
            b".leading\r\nx\r\n..\r\n",
        ),
        (b"a.b\r\n. \r\n.\r\n", b"a.b\r\n \r\n"),
        (b"8bit \xc3\xa9\xff\r\n.\r\n", b"8bit \xc3\xa9\xff\r\n"),
        (b"no dot\r\n..\r\n.\r\n", b"no dot\r\n.\r\n"),
    ];
    for (data, body) in table {
        assert_eq!(outcome_for_every_split(data), accepted(body), "{data:?}");
    }
}

#[test]
fn every_fake_terminator_poisons_the_message_and_smuggles_nothing() {
    let fakes: [&[u8]; 9] = [
        b"\n.\n",
        b"\n.\r\n",
        b"\r\n.\n",
        b"\r.\r\n",
        b"\r.\r",
        b"\r.\n",
        b"\n.\r",
        b"\r\n.\r",
        b"\r\n.\r\r\n",
    ];
    for fake in fakes {
        let data = [b"hello".as_slice(), fake, SMUGGLED, b".\r\n"].concat();
        let (transcript, messages) = outcome_for_every_split(&data);
        assert_eq!(
            (transcript.clone(), messages),
            refused(POISONED),
            "{fake:?}"
        );
        assert!(
            !transcript.iter().any(|line| line.starts_with("CHECK")),
            "smuggled RCPT was processed for {fake:?}"
        );
    }
}

#[test]
fn bare_cr_lf_or_nul_anywhere_poisons_the_message() {
    let table: [&[u8]; 8] = [
        b"a\rb\r\n.\r\n",
        b"a\nb\r\n.\r\n",
        b"a\0b\r\n.\r\n",
        b"\n.\r\n.\r\n",
        b"\r\r\n.\r\n",
        b"\0\r\n.\r\n",
        b"ok\r\n.\0\r\n.\r\n",
        b"ok\r\nend\r\n\n\r\n.\r\n",
    ];
    for data in table {
        assert_eq!(outcome_for_every_split(data), refused(POISONED), "{data:?}");
    }
}

#[test]
fn text_lines_are_limited_after_unstuffing() {
    // small_config allows 100 octets per line including CRLF.
    let fits = [&[b'a'; 98][..], b"\r\n.\r\n"].concat();
    let stuffed = [b".", &[b'.'; 98][..], b"\r\n.\r\n"].concat();
    let over = [&[b'a'; 99][..], b"\r\n.\r\n"].concat();
    let too_long = "554 5.6.0 Message has a line longer than 100 octets";
    assert_eq!(outcome_for_every_split(&fits), accepted(&fits[..100]));
    assert_eq!(
        outcome_for_every_split(&stuffed),
        accepted(&stuffed[1..101])
    );
    assert_eq!(outcome_for_every_split(&over), refused(too_long));
}

#[test]
fn content_over_the_size_limit_is_refused_after_the_end() {
    // small_config allows 1000 octets of content.
    let line = [&[b'x'; 48][..], b"\r\n"].concat();
    let exact = [line.repeat(20), b".\r\n".to_vec()].concat();
    let over = [line.repeat(20), b"y\r\n.\r\n".to_vec()].concat();
    assert_eq!(outcome_for_every_split(&exact), accepted(&line.repeat(20)));
    let size = "552 5.3.4 Message size exceeds fixed limit";
    assert_eq!(outcome_for_every_split(&over), refused(size));
}

#[test]
fn poisoning_outranks_size_and_line_length() {
    let data = [&[b'x'; 2000][..], b"\n\r\n.\r\n"].concat();
    assert_eq!(run(&[&session_input(&data)]), refused(POISONED));
}

#[test]
fn reader_stops_exactly_after_the_end_marker() {
    let mut reader = DataReader::new(1000, 1000);
    let input = b"a\r\n.\r\nQUIT\r\n";
    assert_eq!(reader.feed(input), (6, Some(Ok(b"a\r\n".to_vec()))));
}

#[test]
fn reader_consumes_everything_until_the_end_marker_arrives() {
    let mut reader = DataReader::new(1000, 1000);
    assert_eq!(reader.feed(b"a\r\n."), (4, None));
    assert_eq!(reader.feed(b"\r"), (1, None));
    assert_eq!(reader.feed(b"\nNOOP"), (1, Some(Ok(b"a\r\n".to_vec()))));
}

#[test]
fn session_accepts_a_new_transaction_after_a_poisoned_one() {
    let mut driver = Driver::new(small_config());
    driver.feed(&[PREFIX, b"x\n.\r\n.\r\n"].concat());
    assert_eq!(driver.last(), POISONED);
    assert!(!driver.session.in_transaction());
    driver.feed(b"MAIL FROM:<a@b.example>\r\nRCPT TO:<c@d.example>\r\nDATA\r\nok\r\n.\r\n");
    assert_eq!(driver.last(), "250 2.0.0 Ok: queued as Q1");
    assert_eq!(driver.messages.len(), 1);
}
