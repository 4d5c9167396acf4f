//! What comes back when the original is large or cannot be carried as it is.

use super::super::returned::{eight_bit_safe, header_of};
use super::*;

#[test]
fn a_large_original_comes_back_as_its_header_with_a_note() {
    let mut original = b"Subject: big\r\nFrom: a@example.org\r\n\r\n".to_vec();
    while original.len() <= MAX_RETURNED {
        original.extend_from_slice(&[b'a'; 76]);
        original.extend_from_slice(b"\r\n");
    }
    let mut input = input(vec![failed("bob@example.com")]);
    input.original_message = &original;
    let (_, top) = built(&input);
    let parts = top.parts();
    assert_eq!(parts[2].media_type(), "text/rfc822-headers");
    assert_eq!(parts[2].body, b"Subject: big\r\nFrom: a@example.org\r\n");
    assert!(parts[0].text().contains("could not be returned whole"));
}

#[test]
fn an_original_that_is_not_valid_8bit_comes_back_as_its_header() {
    let originals: [&[u8]; 3] = [
        b"Subject: nul\r\n\r\na\0b\r\n",
        b"Subject: bare lf\r\n\r\na\nb\r\n",
        b"Subject: bare cr\r\n\r\na\rb\r\n",
    ];
    for original in originals {
        let mut input = input(vec![failed("bob@example.com")]);
        input.original_message = original;
        let (_, top) = built(&input);
        let parts = top.parts();
        assert_eq!(parts[2].media_type(), "text/rfc822-headers");
        assert_eq!(parts[2].body, header_of(original));
    }
}

#[test]
fn an_original_whose_header_cannot_be_carried_is_left_out() {
    let mut input = input(vec![failed("bob@example.com")]);
    input.original_message = b"Subject: bare\nlf\r\n\r\nbody\r\n";
    let (_, top) = built(&input);
    let parts = top.parts();
    assert_eq!(parts.len(), 2);
    let text = parts[0].text();
    assert!(!text.contains("attached"), "{text}");
}

#[test]
fn the_header_is_everything_before_the_first_empty_line() {
    let table: Vec<(&[u8], &[u8])> = vec![
        (
            b"A: 1\r\nB: 2\r\n\r\nbody\r\n\r\nmore\r\n",
            b"A: 1\r\nB: 2\r\n",
        ),
        (b"A: 1\r\n\r\n", b"A: 1\r\n"),
        (b"A: 1\r\nB: 2\r\n", b"A: 1\r\nB: 2\r\n"),
        (b"\r\nbody only\r\n", b""),
        (b"", b""),
        (b"A: 1\r\n continued\r\n\r\nx", b"A: 1\r\n continued\r\n"),
    ];
    for (message, header) in table {
        assert_eq!(
            header_of(message),
            header,
            "{}",
            String::from_utf8_lossy(message)
        );
    }
}

#[test]
fn only_crlf_lines_of_at_most_998_octets_without_nul_are_8bit_safe() {
    let long_ok = [vec![b'a'; 998], b"\r\n".to_vec()].concat();
    let too_long = [vec![b'a'; 999], b"\r\n".to_vec()].concat();
    let long_last = vec![b'a'; 999];
    let table: Vec<(&[u8], bool)> = vec![
        (b"", true),
        (b"a\r\nb\r\n", true),
        (b"no final newline", true),
        (b"caf\xe9\r\n", true),
        (&long_ok, true),
        (&too_long, false),
        (&long_last, false),
        (b"a\nb", false),
        (b"a\rb", false),
        (b"a\r", false),
        (b"\n", false),
        (b"a\r\r\n", false),
        (b"a\0b", false),
    ];
    for (bytes, safe) in table {
        assert_eq!(
            eight_bit_safe(bytes),
            safe,
            "{:?}",
            String::from_utf8_lossy(&bytes[..bytes.len().min(20)])
        );
    }
}
