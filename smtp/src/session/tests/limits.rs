//! Recipient, size, error and line-length limits.

use crate::session::RCPT_OVERSHOOT;
use crate::testing::{Driver, small_config};

const MAIL: &[u8] = b"EHLO c\r\nMAIL FROM:<a@b.example>\r\n";

#[test]
fn recipients_over_the_limit_get_452_4_5_3() {
    // small_config allows three recipients.
    let mut driver = Driver::new(small_config());
    driver.feed(MAIL);
    for i in 0..5 {
        driver.feed(format!("RCPT TO:<r{i}@d.example>\r\n").as_bytes());
    }
    let replies: Vec<&str> = driver
        .transcript
        .iter()
        .filter(|l| !l.starts_with("CHECK") && !l.starts_with("SENDER"))
        .map(String::as_str)
        .collect();
    assert_eq!(
        replies[2..],
        [
            "250 2.1.5 Ok",
            "250 2.1.5 Ok",
            "250 2.1.5 Ok",
            "452 4.5.3 Too many recipients",
            "452 4.5.3 Too many recipients",
        ]
    );
    driver.feed(b"DATA\r\nx\r\n.\r\n");
    assert_eq!(driver.messages[0].envelope.recipients.len(), 3);
}

#[test]
fn recipient_overshoot_counts_as_errors_only_past_its_allowance() {
    let mut driver = Driver::new(small_config());
    driver.feed(MAIL);
    for i in 0..3 + RCPT_OVERSHOOT {
        driver.feed(format!("RCPT TO:<r{i}@d.example>\r\n").as_bytes());
    }
    assert!(!driver.closed);
    // small_config closes on the fifth error.
    for _ in 0..5 {
        driver.feed(b"RCPT TO:<late@d.example>\r\n");
    }
    assert!(driver.closed);
    assert_eq!(
        driver.last(),
        "CLOSE 421 4.7.0 Too many errors, closing connection"
    );
}

#[test]
fn the_error_limit_turns_the_last_error_into_421_and_close() {
    let mut driver = Driver::new(small_config());
    driver.feed(b"BOGUS\r\nBOGUS\r\nNOOP\r\nBOGUS\r\nBOGUS\r\nBOGUS\r\nNOOP\r\n");
    assert_eq!(
        driver.transcript,
        [
            "500 5.5.2 Command unrecognized",
            "500 5.5.2 Command unrecognized",
            "250 2.0.0 Ok",
            "500 5.5.2 Command unrecognized",
            "500 5.5.2 Command unrecognized",
            "CLOSE 421 4.7.0 Too many errors, closing connection",
        ]
    );
}

#[test]
fn rejected_recipients_count_and_close_at_the_next_step() {
    let mut driver = Driver::new(small_config());
    driver.feed(MAIL);
    for _ in 0..5 {
        driver.feed(b"RCPT TO:<reject@d.example>\r\n");
    }
    assert_eq!(
        driver.transcript[driver.transcript.len() - 3..],
        [
            "CHECK reject@d.example",
            "554 5.7.1 Relay access denied",
            "CLOSE 421 4.7.0 Too many errors, closing connection",
        ]
    );
}

#[test]
fn size_limit_applies_to_the_declared_size_and_the_content() {
    let mut driver = Driver::new(small_config());
    driver.feed(b"EHLO c\r\nMAIL FROM:<a@b.example> SIZE=1001\r\n");
    assert_eq!(driver.last(), "552 5.3.4 Message size exceeds fixed limit");
    driver.feed(b"MAIL FROM:<a@b.example> SIZE=10\r\nRCPT TO:<c@d.example>\r\nDATA\r\n");
    for _ in 0..30 {
        driver.feed(&[b"y".repeat(48), b"\r\n".to_vec()].concat());
    }
    driver.feed(b".\r\n");
    assert_eq!(driver.last(), "552 5.3.4 Message size exceeds fixed limit");
    assert!(driver.messages.is_empty());
}

#[test]
fn overlong_command_line_is_discarded_in_bounded_memory_then_answered() {
    // small_config allows 512 octets per command line.
    let mut driver = Driver::new(small_config());
    for _ in 0..100 {
        driver.feed(&[b'x'; 100]);
    }
    assert!(driver.transcript.is_empty());
    driver.feed(b"\r\nNOOP\r\n");
    assert_eq!(
        driver.transcript,
        ["500 5.5.2 Line too long", "250 2.0.0 Ok"]
    );
}

#[test]
fn command_line_length_includes_the_crlf() {
    let fits = format!("NOOP {}\r\n", "x".repeat(512 - 7));
    let over = format!("NOOP {}\r\n", "x".repeat(512 - 6));
    let table = [(fits, "250 2.0.0 Ok"), (over, "500 5.5.2 Line too long")];
    for (line, reply) in table {
        let mut driver = Driver::new(small_config());
        driver.feed(line.as_bytes());
        assert_eq!(driver.last(), reply, "{} octets", line.len());
    }
}

#[test]
fn a_message_over_the_hop_limit_gets_554_5_4_6_and_the_next_transaction_starts_clean() {
    // small_config allows five Received: fields, ours included.
    let message = |received: usize| {
        let mut text = "Received: from a by b; Thu, 1 Jan 2026 00:00:00 +0000\r\n".repeat(received);
        text.push_str("Subject: loop\r\n\r\nReceived: in the body does not count\r\n.\r\n");
        text
    };
    for (received, expected) in [
        (4, "250 2.0.0 Ok: queued as Q1"),
        (
            5,
            "554 5.4.6 Too many hops (6 Received: fields): mail loop suspected",
        ),
    ] {
        let mut driver = Driver::new(small_config());
        driver.feed(MAIL);
        driver.feed(b"RCPT TO:<r@d.example>\r\nDATA\r\n");
        driver.feed(message(received).as_bytes());
        assert_eq!(driver.last(), expected, "{received} Received: fields");
        driver.feed(b"RCPT TO:<r@d.example>\r\n");
        assert_eq!(
            driver.last(),
            "503 5.5.1 Need MAIL command",
            "the transaction is over either way"
        );
    }
    // Folded, lower-case fields are fields too.
    let mut driver = Driver::new(small_config());
    driver.feed(MAIL);
    driver.feed(b"RCPT TO:<r@d.example>\r\nDATA\r\n");
    driver.feed("received: from x\r\n by y\r\n".repeat(5).as_bytes());
    driver.feed(b"\r\nbody\r\n.\r\n");
    assert!(driver.last().starts_with("554 5.4.6"), "{}", driver.last());
}
