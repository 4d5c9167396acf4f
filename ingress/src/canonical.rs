//! A defect of the DKIM library's relaxed body canonicalisation, and Tern's way around it.
//!
//! RFC 6376 3.4.4 has relaxed canonicalisation strip the whitespace at the end of every line and
//! then ignore the empty lines at the end of the body, so a body ending in lines of only spaces
//! or tabs hashes as if they were not there. mail-auth 0.13 emits those lines as empty lines
//! instead, which dkimpy (and any other conforming verifier) does not. Signing, Tern uses
//! `simple` body canonicalisation for such a message, which every implementation agrees on;
//! verifying, it hashes a copy without those lines, which is what a conforming relaxed hash
//! reads anyway, for the signatures whose body canonicalisation is relaxed.

/// Where the body begins, past the empty line that ends the header section.
fn body_start(message: &[u8]) -> Option<usize> {
    message
        .windows(4)
        .position(|window| window == b"\r\n\r\n")
        .map(|at| at + 4)
}

/// Whether the message's body ends in lines of only whitespace, which the library's relaxed
/// body hash gets wrong.
pub(crate) fn ends_in_blank_lines(message: &[u8]) -> bool {
    cut(message).is_some()
}

/// The message with the lines of only whitespace at the end of its body left out, when there
/// are any (`None` otherwise): the input the library's relaxed body hash needs to be right.
pub(crate) fn without_trailing_blank_lines(message: &[u8]) -> Option<Vec<u8>> {
    cut(message).map(|end| message[..end].to_vec())
}

/// Where the message would end without its trailing lines of whitespace, if it has any.
fn cut(message: &[u8]) -> Option<usize> {
    let start = body_start(message)?;
    let body = &message[start..];
    let blank = |b: &u8| matches!(b, b' ' | b'\t' | b'\r' | b'\n');
    let kept = match body.iter().rposition(|b| !blank(b)) {
        // The content line keeps its own end of line (and its trailing whitespace, which the
        // hash ignores anyway).
        Some(last) => {
            let line_end = body[last..].windows(2).position(|w| w == b"\r\n")?;
            last + line_end + 2
        }
        None => 0,
    };
    // Empty lines alone are hashed right; only lines holding whitespace go wrong.
    body[kept..]
        .iter()
        .any(|b| matches!(b, b' ' | b'\t'))
        .then_some(start + kept)
}

#[cfg(test)]
mod tests {
    use super::without_trailing_blank_lines;

    #[test]
    fn only_whitespace_lines_at_the_end_are_left_out() {
        let h = "Subject: s\r\n\r\n";
        let cases: &[(&str, Option<&str>)] = &[
            ("Hello\r\n", None),
            ("Hello\r\n\r\n\r\n", None),
            ("Hello \t\r\n", None),
            ("Hello\r\n \r\nworld\r\n", None),
            ("", None),
            ("Hello\r\n \r\n\t\r\n", Some("Hello\r\n")),
            ("Hello  \r\n\r\n \r\n\r\n", Some("Hello  \r\n")),
            (" \r\n\t \r\n", Some("")),
            // No line break after the last content: nothing is hashed differently.
            ("Hello", None),
        ];
        for (body, expected) in cases {
            let message = format!("{h}{body}");
            let got = without_trailing_blank_lines(message.as_bytes())
                .map(|m| String::from_utf8(m[h.len()..].to_vec()).expect("utf-8"));
            assert_eq!(got.as_deref(), *expected, "{body:?}");
        }
    }
}
