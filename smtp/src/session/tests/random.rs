//! Property-style checks on pseudo-random input: no panics, steady
//! progress, bounded buffering, and the same outcome however the bytes are
//! split into reads. The recording driver asserts progress and bounds.

use crate::SessionConfig;
use crate::testing::{Driver, XorShift, small_config};

/// Fragments that steer random input into the interesting states.
const TOKENS: &[&[u8]] = &[
    b"EHLO c\r\n",
    b"HELO c\r\n",
    b"MAIL FROM:<a@b.example>\r\n",
    b"MAIL FROM:<> SIZE=10\r\n",
    b"RCPT TO:<c@d.example>\r\n",
    b"RCPT TO:<reject@d.example>\r\n",
    b"RCPT TO:<\"q\\\"x\"@[192.0.2.1]> NOTIFY=NEVER\r\n",
    b"DATA\r\n",
    b"BDAT 3\r\n",
    b"BDAT 2 LAST\r\n",
    b"BDAT 0 LAST\r\n",
    b"RSET\r\n",
    b"NOOP\r\n",
    b"\r\n.\r\n",
    b"..",
    b".",
    b"\r",
    b"\n",
    b"\r\n",
    b"\0",
    b"<",
    b">",
    b"@",
    b"\xc3\xa9",
    b"\xff",
];

fn random_input(rng: &mut XorShift) -> Vec<u8> {
    let mut input = Vec::new();
    // Half the sessions start ready for content, to reach DATA and BDAT often.
    if rng.below(2) == 0 {
        input.extend_from_slice(b"EHLO c\r\nMAIL FROM:<a@b.example>\r\nRCPT TO:<c@d.example>\r\n");
    }
    for _ in 0..rng.below(40) {
        match rng.below(10) {
            0 => input.extend((0..rng.below(20)).map(|_| rng.next() as u8)),
            1 => input.extend(std::iter::repeat_n(b'x', rng.below(700))),
            _ => input.extend_from_slice(TOKENS[rng.below(TOKENS.len())]),
        }
    }
    if rng.below(20) == 0 {
        input.extend_from_slice(b"QUIT\r\n");
    }
    input
}

fn random_pieces<'a>(rng: &mut XorShift, input: &'a [u8]) -> Vec<&'a [u8]> {
    let mut pieces = Vec::new();
    let mut rest = input;
    while !rest.is_empty() {
        let take = 1 + rng.below(rest.len().min(64));
        let (piece, tail) = rest.split_at(take);
        pieces.push(piece);
        rest = tail;
    }
    pieces
}

#[test]
fn random_input_in_random_chunks_never_panics_and_splits_do_not_matter() {
    let mut rng = XorShift::new(0x5EED_0F7E);
    let (mut messages, mut closes) = (0, 0);
    for round in 0..10_000 {
        let config = SessionConfig {
            max_errors: 1 + rng.below(60) as u32,
            ..small_config()
        };
        let input = random_input(&mut rng);

        let mut whole = Driver::new(config.clone());
        whole.feed(&input);

        let mut chunked = Driver::new(config);
        chunked.feed_all(&random_pieces(&mut rng, &input));

        assert_eq!(chunked.transcript, whole.transcript, "round {round}");
        assert_eq!(chunked.messages, whole.messages, "round {round}");
        messages += whole.messages.len();
        closes += usize::from(whole.closed);
    }
    // Guards against a generator that never gets past the first command.
    assert!(messages > 100, "only {messages} messages");
    assert!(closes > 100, "only {closes} closed sessions");
}
