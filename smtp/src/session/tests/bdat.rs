//! BDAT (RFC 3030) transcripts.

use crate::testing::{Driver, small_config};

const READY: &[u8] = b"EHLO c\r\nMAIL FROM:<a@b.example>\r\nRCPT TO:<c@d.example>\r\n";

fn after(setup: &[u8], input: &[u8]) -> Driver {
    let mut driver = Driver::new(small_config());
    driver.feed(setup);
    driver.transcript.clear();
    driver.feed(input);
    driver
}

#[test]
fn chunks_are_acknowledged_and_joined_verbatim() {
    let driver = after(
        READY,
        b"BDAT 5\r\nhelloBDAT 9 LAST\r\n\n.\r\n\0\r\r\n\nQUIT\r\n",
    );
    assert_eq!(
        driver.transcript,
        [
            "250 2.0.0 5 octets received",
            "MESSAGE",
            "250 2.0.0 Ok: queued as Q1",
            "CLOSE 221 2.0.0 mx.test Bye",
        ]
    );
    let message = &driver.messages[0];
    assert!(message.envelope.bdat);
    assert_eq!(message.body, b"hello\n.\r\n\0\r\r\n\n");
}

#[test]
fn chunks_give_the_same_result_however_the_input_is_split() {
    let input = [
        READY,
        b"BDAT 3\r\nabcBDAT 0\r\nBDAT 4 LAST\r\nd\r\n.QUIT\r\n",
    ]
    .concat();
    let whole = {
        let driver = after(b"", &input);
        (driver.transcript, driver.messages)
    };
    assert_eq!(whole.1[0].body, b"abcd\r\n.");
    for cut in 0..=input.len() {
        let mut driver = Driver::new(small_config());
        driver.feed_all(&[&input[..cut], &input[cut..]]);
        assert_eq!(
            (driver.transcript, driver.messages),
            whole,
            "split at {cut}"
        );
    }
    let mut driver = Driver::new(small_config());
    driver.feed_all(&input.chunks(1).collect::<Vec<_>>());
    assert_eq!(
        (driver.transcript, driver.messages),
        whole,
        "byte at a time"
    );
}

#[test]
fn bdat_zero_last_delivers_an_empty_message() {
    let driver = after(READY, b"BDAT 0 LAST\r\n");
    assert_eq!(driver.transcript, ["MESSAGE", "250 2.0.0 Ok: queued as Q1"]);
    assert!(driver.messages[0].body.is_empty());
}

#[test]
fn refused_chunks_are_still_consumed() {
    let table: [(&[u8], &str); 3] = [
        (b"EHLO c\r\n", "503 5.5.1 Need MAIL command"),
        (
            b"EHLO c\r\nMAIL FROM:<a@b.example>\r\n",
            "554 5.5.1 No valid recipients",
        ),
        (
            b"EHLO c\r\nMAIL FROM:<a@b.example>\r\nRCPT TO:<reject@d.example>\r\n",
            "554 5.5.1 No valid recipients",
        ),
    ];
    for (setup, reply) in table {
        let driver = after(setup, b"BDAT 6 LAST\r\nQUIT\r\nNOOP\r\n");
        assert_eq!(driver.transcript, [reply, "250 2.0.0 Ok"], "{reply}");
        assert!(driver.messages.is_empty());
    }
}

#[test]
fn malformed_bdat_consumes_nothing_after_its_line() {
    let driver = after(READY, b"BDAT six\r\nNOOP\r\n");
    assert_eq!(
        driver.transcript,
        ["501 5.5.4 Syntax: BDAT size [LAST]", "250 2.0.0 Ok"]
    );
}

#[test]
fn data_after_bdat_in_one_transaction_is_refused() {
    let driver = after(READY, b"BDAT 2\r\nhiDATA\r\n");
    assert_eq!(
        driver.transcript,
        [
            "250 2.0.0 2 octets received",
            "503 5.5.1 DATA not allowed in a BDAT transaction",
        ]
    );
}

#[test]
fn oversized_chunks_are_read_then_refused_with_552() {
    // small_config allows 1000 octets.
    let big = [b"BDAT 1001 LAST\r\n".as_slice(), &[b'x'; 1001], b"NOOP\r\n"].concat();
    let driver = after(READY, &big);
    assert_eq!(
        driver.transcript,
        ["552 5.3.4 Message size exceeds fixed limit", "250 2.0.0 Ok"]
    );
    assert!(!driver.session.in_transaction());

    let split = [
        b"BDAT 600\r\n".as_slice(),
        &[b'x'; 600],
        b"BDAT 401 LAST\r\n",
        &[b'y'; 401],
    ]
    .concat();
    let driver = after(READY, &split);
    assert_eq!(
        driver.transcript,
        [
            "250 2.0.0 600 octets received",
            "552 5.3.4 Message size exceeds fixed limit",
        ]
    );

    let exact = [b"BDAT 1000 LAST\r\n".as_slice(), &[b'x'; 1000]].concat();
    let driver = after(READY, &exact);
    assert_eq!(driver.last(), "250 2.0.0 Ok: queued as Q1");
}

#[test]
fn huge_declared_chunk_is_consumed_without_buffering() {
    let mut driver = after(READY, b"BDAT 18446744073709551615\r\n");
    for _ in 0..100 {
        driver.feed(&[b'z'; 4096]);
    }
    assert!(driver.buffer.is_empty());
    assert!(driver.transcript.is_empty());
}
