//! The message as DATA sends it (RFC 5321 4.5.2): a `.` before every line that starts with one,
//! a line ending after the last line, and `.` CRLF to close.

/// Dot-stuffs a message given in pieces of any size, so a large body is sent in blocks without a
/// second copy of all of it.
///
/// A `.` is added after every LF, bare or not. Stored messages have CRLF line ends only (the
/// ingress refuses bare LF), but if one ever held `LF . CRLF`, a receiver lax about line ends
/// must not see an end of data there: stuffing cannot hurt, not stuffing could smuggle.
/// Nothing else is rewritten, so signatures over the message stay valid.
#[derive(Debug, Clone)]
pub struct DotStuffer {
    at_line_start: bool,
    /// The last two bytes of input, to know whether the message ended its last line.
    tail: [u8; 2],
    empty: bool,
}

impl Default for DotStuffer {
    fn default() -> Self {
        Self::new()
    }
}

impl DotStuffer {
    pub fn new() -> Self {
        Self {
            at_line_start: true,
            tail: [0; 2],
            empty: true,
        }
    }

    /// Appends the stuffed form of `input`, the next piece of the message, to `out`.
    pub fn push(&mut self, input: &[u8], out: &mut Vec<u8>) {
        let Some(&last) = input.last() else {
            return;
        };
        out.reserve(input.len() + 1);
        let mut rest = input;
        if self.at_line_start && rest[0] == b'.' {
            out.push(b'.');
        }
        while let Some(lf) = rest.iter().position(|&b| b == b'\n') {
            let (line, after) = rest.split_at(lf + 1);
            out.extend_from_slice(line);
            if after.first() == Some(&b'.') {
                out.push(b'.');
            }
            rest = after;
        }
        out.extend_from_slice(rest);
        self.tail = match input {
            [.., a, b] => [*a, *b],
            _ => [self.tail[1], last],
        };
        self.at_line_start = last == b'\n';
        self.empty = false;
    }

    /// Appends what ends the data: CRLF if the message did not end with one, then `.` CRLF.
    pub fn finish(self, out: &mut Vec<u8>) {
        if !self.empty && self.tail != *b"\r\n" {
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(b".\r\n");
    }
}

/// The whole message at once.
pub fn dot_stuff(message: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(message.len() + 8);
    let mut stuffer = DotStuffer::new();
    stuffer.push(message, &mut out);
    stuffer.finish(&mut out);
    out
}
