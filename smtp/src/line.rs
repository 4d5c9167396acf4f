//! Command-line framing: finds the next CRLF-terminated line while keeping
//! the amount of unconsumed input bounded.

use crate::{Refusal, Reply};

/// Why a command line was refused before it was even parsed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub(crate) enum LineError {
    #[error("line ended with a bare LF")]
    BareLf,
    #[error("bare CR inside a line")]
    BareCr,
    #[error("NUL byte in line")]
    Nul,
    #[error("line too long")]
    TooLong,
}

impl LineError {
    pub(crate) fn reply(self) -> Reply {
        let (text, refusal) = match self {
            LineError::BareLf => (
                "Bare LF in command; lines must end with CRLF",
                Refusal::BareLineEnding,
            ),
            LineError::BareCr => (
                "Bare CR in command; lines must end with CRLF",
                Refusal::BareLineEnding,
            ),
            LineError::Nul => ("NUL byte in command", Refusal::Syntax),
            LineError::TooLong => ("Line too long", Refusal::LineTooLong),
        };
        Reply::new(500, "5.5.2", text).because(refusal)
    }
}

/// What [`LineReader::next`] found.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Line<'a> {
    /// No complete line yet.
    Incomplete,
    /// A line without its CRLF.
    Complete(&'a [u8]),
    Bad(LineError),
}

/// Remembers whether an overlong line is being thrown away, which can span
/// many calls.
#[derive(Debug, Default)]
pub(crate) struct LineReader {
    discarding: bool,
}

impl LineReader {
    /// Returns the bytes consumed and the line found, if any. Unconsumed
    /// input is always shorter than `max` (which includes the CRLF).
    pub(crate) fn next<'a>(&mut self, input: &'a [u8], max: usize) -> (usize, Line<'a>) {
        let Some(lf) = input.iter().position(|&b| b == b'\n') else {
            // A complete line needs at least one more byte, so with `max`
            // bytes already here it is certainly too long: drop what we have.
            if self.discarding || input.len() >= max {
                self.discarding = true;
                return (input.len(), Line::Incomplete);
            }
            return (0, Line::Incomplete);
        };
        let consumed = lf + 1;
        if std::mem::take(&mut self.discarding) {
            return (consumed, Line::Bad(LineError::TooLong));
        }
        // Judged on length first, exactly as the no-LF branch above would
        // have, so the verdict does not depend on how the input was split.
        if consumed > max {
            return (consumed, Line::Bad(LineError::TooLong));
        }
        let Some(line) = input[..lf].strip_suffix(b"\r") else {
            return (consumed, Line::Bad(LineError::BareLf));
        };
        let verdict = if line.contains(&b'\r') {
            Line::Bad(LineError::BareCr)
        } else if line.contains(&0) {
            Line::Bad(LineError::Nul)
        } else {
            Line::Complete(line)
        };
        (consumed, verdict)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn framing_table_gives_the_expected_outcome() {
        let table: [(&[u8], usize, Line<'_>); 9] = [
            (b"NOOP\r\n", 6, Line::Complete(b"NOOP")),
            (b"NOOP\r\nQUIT\r\n", 6, Line::Complete(b"NOOP")),
            (b"NOOP", 0, Line::Incomplete),
            (b"NOOP\r", 0, Line::Incomplete),
            (b"NOOP\n", 5, Line::Bad(LineError::BareLf)),
            (b"NO\rOP\r\n", 7, Line::Bad(LineError::BareCr)),
            (b"NO\0OP\r\n", 7, Line::Bad(LineError::Nul)),
            (b"0123456789\r\n", 12, Line::Bad(LineError::TooLong)),
            (b"012345678\r\n", 11, Line::Complete(b"012345678")),
        ];
        for (input, consumed, line) in table {
            let mut reader = LineReader::default();
            assert_eq!(reader.next(input, 11), (consumed, line), "{input:?}");
        }
    }

    #[test]
    fn overlong_line_is_discarded_across_calls_and_reported_once() {
        let mut reader = LineReader::default();
        assert_eq!(reader.next(b"0123456789ab", 11), (12, Line::Incomplete));
        assert_eq!(reader.next(b"cdef", 11), (4, Line::Incomplete));
        assert_eq!(reader.next(b"\r", 11), (1, Line::Incomplete));
        assert_eq!(
            reader.next(b"\nNOOP\r\n", 11),
            (1, Line::Bad(LineError::TooLong))
        );
        assert_eq!(reader.next(b"NOOP\r\n", 11), (6, Line::Complete(b"NOOP")));
    }
}
