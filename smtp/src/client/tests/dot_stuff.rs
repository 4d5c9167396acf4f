use super::*;
use crate::data::DataReader;
use crate::testing::XorShift;

/// The stuffed form of `pieces`, fed to one encoder in turn.
fn stuffed(pieces: &[&[u8]]) -> Vec<u8> {
    let mut stuffer = DotStuffer::new();
    let mut out = Vec::new();
    for piece in pieces {
        stuffer.push(piece, &mut out);
    }
    stuffer.finish(&mut out);
    out
}

#[test]
fn dots_at_line_starts_are_doubled_however_the_message_is_split() {
    let table: [(&[u8], &[u8]); 13] = [
        (b"", b".\r\n"),
        (b"a\r\n", b"a\r\n.\r\n"),
        (b"a", b"a\r\n.\r\n"),
        (b".a\r\n", b"..a\r\n.\r\n"),
        (b".", b"..\r\n.\r\n"),
        (b"a\r\n.\r\nb\r\n", b"a\r\n..\r\nb\r\n.\r\n"),
        (b"a\r\n.", b"a\r\n..\r\n.\r\n"),
        (b"..\r\n", b"...\r\n.\r\n"),
        (b"a.b\r\nc.\r\n", b"a.b\r\nc.\r\n.\r\n"),
        (b"\r\n.\r\n.\r\n", b"\r\n..\r\n..\r\n.\r\n"),
        (b"a\n.b", b"a\n..b\r\n.\r\n"),
        (b"a\r", b"a\r\r\n.\r\n"),
        (b"a\r.b\r\n", b"a\r.b\r\n.\r\n"),
    ];
    for (message, expected) in table {
        for pieces in splits(message) {
            assert_eq!(stuffed(&pieces), expected, "{pieces:?}");
        }
        assert_eq!(dot_stuff(message), expected);
        let with_empty_pieces: Vec<&[u8]> = vec![b"", message, b""];
        assert_eq!(stuffed(&with_empty_pieces), expected);
    }
}

/// What the server side of this crate reads back from DATA content.
fn unstuffed(wire: &[u8]) -> Vec<u8> {
    let mut reader = DataReader::new(u64::MAX, usize::MAX);
    match reader.feed(wire) {
        (used, Some(Ok(message))) if used == wire.len() => message,
        other => panic!("the end of data was not where it should be: {other:?}"),
    }
}

#[test]
fn random_messages_come_back_unchanged_through_the_servers_unstuffing() {
    let mut random = XorShift::new(0x5eed);
    let pieces: [&[u8]; 7] = [b".", b"..", b"a", b"\r\n", b".\r\n", b"x.y", b" "];
    for _ in 0..2000 {
        let mut message = Vec::new();
        for _ in 0..random.below(12) {
            message.extend_from_slice(pieces[random.below(pieces.len())]);
        }
        // Stored messages have CRLF line ends; a lone CR or LF would poison the reader.
        let message = String::from_utf8(message)
            .expect("ASCII")
            .replace("\r\n", "\n")
            .replace('\n', "\r\n")
            .into_bytes();
        let mut expected = message.clone();
        if !message.is_empty() && !message.ends_with(b"\r\n") {
            expected.extend_from_slice(b"\r\n");
        }
        let cut = random.below(message.len() + 1);
        let wire = stuffed(&[&message[..cut], &message[cut..]]);
        assert_eq!(unstuffed(&wire), expected, "{message:?}");
    }
}

#[test]
fn a_large_message_is_stuffed_in_blocks_like_the_whole() {
    let line = b"a line of text with a . in it\r\n.dotted line\r\n";
    let message = line.repeat(100_000);
    let whole = dot_stuff(&message);
    let mut stuffer = DotStuffer::new();
    let mut blocks = Vec::new();
    for block in message.chunks(65_536) {
        stuffer.push(block, &mut blocks);
    }
    stuffer.finish(&mut blocks);
    assert_eq!(blocks, whole);
    assert_eq!(whole.len(), message.len() + 100_000 + 3);
}
