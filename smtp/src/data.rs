//! DATA content framing: dot-unstuffing and the end-of-data marker, with the
//! SMTP-smuggling defences (CVE-2023-51764/51765/51766).
//!
//! The only end of data is CRLF "." CRLF, where the first CRLF may be the one
//! that ended the DATA command. Any bare CR, bare LF or NUL poisons the
//! message: it is read to the real end and then refused, so that a
//! downstream server with a laxer idea of line ends can never be shown a
//! different message boundary than the one we used.

#[cfg(test)]
mod tests;

use crate::body::BoundedBody;

/// Why a message was refused after its end marker.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub(crate) enum DataError {
    #[error("bare CR, bare LF or NUL in message")]
    Poisoned,
    #[error("message larger than the size limit")]
    TooLarge,
    #[error("text line longer than {0} octets")]
    LineTooLong(usize),
}

/// Where in a line the reader is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Just after CRLF (or at the very start of the data).
    LineStart,
    /// A "." at line start: stuffing, or the start of the end marker.
    Dot,
    /// "." CR at line start.
    DotCr,
    /// Inside a line.
    Text,
    /// CR inside a line; only LF may follow.
    Cr,
}

#[derive(Debug)]
pub(crate) struct DataReader {
    body: BoundedBody,
    state: State,
    /// Octets of the current line after unstuffing, counting its CRLF.
    line_len: usize,
    max_line: usize,
    poisoned: bool,
    long_line: bool,
}

impl DataReader {
    pub(crate) fn new(max_size: u64, max_line: usize) -> Self {
        Self {
            body: BoundedBody::new(max_size),
            state: State::LineStart,
            line_len: 0,
            max_line,
            poisoned: false,
            long_line: false,
        }
    }

    /// Consumes input up to and including the end marker. Returns the bytes
    /// consumed and, once the marker has been seen, the outcome.
    pub(crate) fn feed(&mut self, input: &[u8]) -> (usize, Option<Result<Vec<u8>, DataError>>) {
        let mut i = 0;
        while i < input.len() {
            let b = input[i];
            // Arms that do not advance `i` hand the byte on to `Text`, which
            // always consumes, so the loop cannot stall.
            match self.state {
                State::LineStart if b == b'.' => {
                    i += 1;
                    self.state = State::Dot;
                }
                State::Dot if b == b'\r' => {
                    i += 1;
                    self.state = State::DotCr;
                }
                State::DotCr if b == b'\n' => {
                    return (i + 1, Some(self.finish()));
                }
                State::DotCr => {
                    // ".\r" then something else: that CR was bare.
                    self.poison();
                    self.state = State::Text;
                }
                State::Cr if b == b'\n' => {
                    i += 1;
                    self.store(b"\r\n");
                    self.end_line();
                }
                State::Cr => {
                    self.poison();
                    self.state = State::Text;
                }
                // A stuffed dot is dropped; what follows is ordinary text.
                State::LineStart | State::Dot => self.state = State::Text,
                State::Text => i += self.text(&input[i..]),
            }
        }
        (i, None)
    }

    /// Copies a run of ordinary bytes and consumes the CR, LF or NUL that
    /// ends it. Returns how much was consumed (at least one byte).
    fn text(&mut self, input: &[u8]) -> usize {
        let run = input
            .iter()
            .position(|&b| matches!(b, b'\r' | b'\n' | 0))
            .unwrap_or(input.len());
        self.store(&input[..run]);
        let Some(&special) = input.get(run) else {
            return run;
        };
        if special == b'\r' {
            self.state = State::Cr;
        } else {
            self.poison();
        }
        run + 1
    }

    fn store(&mut self, bytes: &[u8]) {
        self.line_len = self.line_len.saturating_add(bytes.len());
        // A poisoned message is refused whatever else is wrong with it, so
        // its content is no longer worth keeping.
        if !self.poisoned {
            self.body.push(bytes);
        }
    }

    fn end_line(&mut self) {
        if self.line_len > self.max_line {
            self.long_line = true;
        }
        self.line_len = 0;
        self.state = State::LineStart;
    }

    fn poison(&mut self) {
        self.poisoned = true;
    }

    fn finish(&mut self) -> Result<Vec<u8>, DataError> {
        let body = std::mem::take(&mut self.body);
        if self.poisoned {
            Err(DataError::Poisoned)
        } else if body.overflowed() {
            Err(DataError::TooLarge)
        } else if self.long_line {
            Err(DataError::LineTooLong(self.max_line))
        } else {
            Ok(body.into_bytes())
        }
    }
}
