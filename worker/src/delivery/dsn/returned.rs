//! How much of the original message goes back with a report.

use super::{Kind, Ret};

/// The most octets of the original a report carries. Past it a failure report returns only
/// the header: bouncing a large attachment back at its sender helps nobody, and a truncated
/// `message/rfc822` would be broken MIME (Postfix cuts at 50 kB, Exim at 100 kB).
pub const MAX_RETURNED: usize = 128 * 1024;

/// What the third part of a report holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Returned<'a> {
    /// The whole message.
    Whole(&'a [u8]),
    /// The header, up to and including the CRLF before the empty line. `instead_of_whole`: a
    /// failure report would have returned the whole message, but it was too large or could not
    /// be carried as it is.
    Header {
        bytes: &'a [u8],
        instead_of_whole: bool,
    },
    /// Not even the header can go back; RFC 6522 makes the third part optional.
    Nothing,
}

/// Picks what goes back: the whole message for a failure unless the sender asked for headers
/// (RET=HDRS), only the header for delay and success reports, and each only if it fits and
/// can be carried as 8-bit MIME without re-encoding (a BINARYMIME original may not).
pub(super) fn choose(kind: Kind, ret: Ret, original: &[u8]) -> Returned<'_> {
    let wants_whole = kind == Kind::Failure && ret == Ret::Full;
    if wants_whole && returnable(original) {
        return Returned::Whole(original);
    }
    let header = header_of(original);
    if returnable(header) {
        Returned::Header {
            bytes: header,
            instead_of_whole: wants_whole,
        }
    } else {
        Returned::Nothing
    }
}

impl<'a> Returned<'a> {
    pub(super) fn bytes(&self) -> Option<&'a [u8]> {
        match *self {
            Returned::Whole(bytes) | Returned::Header { bytes, .. } => Some(bytes),
            Returned::Nothing => None,
        }
    }

    /// RFC 3462 types, or their RFC 6533 counterparts in an internationalised report.
    pub(super) fn content_type(&self, global: bool) -> Option<&'static str> {
        match (self, global) {
            (Returned::Whole(_), false) => Some("message/rfc822"),
            (Returned::Whole(_), true) => Some("message/global"),
            (Returned::Header { .. }, false) => Some("text/rfc822-headers"),
            (Returned::Header { .. }, true) => Some("message/global-headers"),
            (Returned::Nothing, _) => None,
        }
    }

    pub(super) fn description(&self) -> &'static str {
        match self {
            Returned::Whole(_) => "Returned message",
            Returned::Header { .. } | Returned::Nothing => "Returned message header",
        }
    }
}

/// The header section: everything before the first empty line, with the CRLF that ends its
/// last field; the whole message when it has no body.
pub(super) fn header_of(message: &[u8]) -> &[u8] {
    if message.starts_with(b"\r\n") {
        return &[];
    }
    match message.windows(4).position(|w| w == b"\r\n\r\n") {
        Some(at) => &message[..at + 2],
        None => message,
    }
}

fn returnable(bytes: &[u8]) -> bool {
    bytes.len() <= MAX_RETURNED && eight_bit_safe(bytes)
}

/// Whether `bytes` is valid 8bit content (RFC 2045 2.8): no NUL, CR and LF only as CRLF, and
/// lines of at most 998 octets.
pub(super) fn eight_bit_safe(bytes: &[u8]) -> bool {
    let mut line = 0usize;
    let mut previous = 0u8;
    for (at, &byte) in bytes.iter().enumerate() {
        match byte {
            0 => return false,
            b'\r' if bytes.get(at + 1) != Some(&b'\n') => return false,
            b'\n' if previous != b'\r' => return false,
            b'\n' => line = 0,
            b'\r' => {}
            _ => {
                line += 1;
                if line > 998 {
                    return false;
                }
            }
        }
        previous = byte;
    }
    true
}
