//! xtext (RFC 3461 section 4): printable ASCII with `+XX` hex escapes.

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum XtextError {
    #[error("character not allowed in xtext")]
    BadChar,
    #[error("malformed +XX escape")]
    BadEscape,
    #[error("decoded value is not UTF-8")]
    NotUtf8,
}

/// Decodes xtext. Lowercase hex is accepted although the RFC spells it
/// uppercase: being strict there would only bounce legitimate mail.
pub(crate) fn decode(s: &str) -> Result<String, XtextError> {
    let mut out = Vec::with_capacity(s.len());
    let mut bytes = s.bytes();
    while let Some(b) = bytes.next() {
        match b {
            b'+' => {
                let hi = bytes.next().and_then(hex).ok_or(XtextError::BadEscape)?;
                let lo = bytes.next().and_then(hex).ok_or(XtextError::BadEscape)?;
                out.push(hi << 4 | lo);
            }
            b'!'..=b'~' if b != b'=' => out.push(b),
            _ => return Err(XtextError::BadChar),
        }
    }
    String::from_utf8(out).map_err(|_| XtextError::NotUtf8)
}

fn hex(b: u8) -> Option<u8> {
    char::from(b)
        .to_digit(16)
        .and_then(|d| u8::try_from(d).ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xtext_decodes_escapes_and_refuses_malformed_input() {
        let table: [(&str, Result<&str, XtextError>); 9] = [
            ("abc", Ok("abc")),
            ("a+2Bb", Ok("a+b")),
            ("a+2bb", Ok("a+b")),
            ("+3D+20", Ok("= ")),
            ("a+2", Err(XtextError::BadEscape)),
            ("a+zz", Err(XtextError::BadEscape)),
            ("a=b", Err(XtextError::BadChar)),
            ("a b", Err(XtextError::BadChar)),
            ("+FF", Err(XtextError::NotUtf8)),
        ];
        for (input, expected) in table {
            assert_eq!(decode(input), expected.map(String::from), "{input:?}");
        }
    }
}
