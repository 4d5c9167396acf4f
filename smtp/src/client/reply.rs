//! Reading a server's replies from bytes as they arrive, split anywhere.

use super::RemoteReply;

/// Longest reply line accepted, without its line ending. RFC 5321 allows 512 octets; real
/// servers exceed that with long EHLO keyword lists, so this is generous but still bounded.
pub const MAX_REPLY_LINE: usize = 4096;
/// Most lines in one reply. EHLO replies are the longest seen in practice, with a few dozen.
pub const MAX_REPLY_LINES: usize = 100;

/// A server sent something that is not a reply. The parser is unusable afterwards: the
/// connection it read from has lost its framing and has to be dropped.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReplyError {
    #[error("reply line longer than {MAX_REPLY_LINE} bytes")]
    LineTooLong,
    #[error("reply with more than {MAX_REPLY_LINES} lines")]
    TooManyLines,
    #[error("not a reply line: {0:?}")]
    Malformed(String),
    #[error("reply lines disagree on the code: {first} then {then}")]
    CodeMismatch { first: u16, then: u16 },
}

/// Splits a byte stream into replies. Feed it with [`push`](Self::push), then take replies with
/// [`next_reply`](Self::next_reply) until it returns `Ok(None)`.
#[derive(Debug, Default)]
pub struct ReplyParser {
    buffer: Vec<u8>,
    /// Start of the unconsumed bytes: consuming a line moves this instead of shifting the buffer.
    start: usize,
    /// Bytes from `start` already known to hold no line feed, so a slow trickle is scanned once.
    scanned: usize,
    partial: Option<Partial>,
}

/// The lines of a reply read so far.
#[derive(Debug)]
struct Partial {
    code: u16,
    status: Option<String>,
    lines: Vec<String>,
}

impl ReplyParser {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds bytes received from the server.
    pub fn push(&mut self, bytes: &[u8]) {
        if self.start > 0 {
            self.buffer.drain(..self.start);
            self.start = 0;
        }
        self.buffer.extend_from_slice(bytes);
    }

    /// Whether bytes were received that no returned reply accounts for. After the reply to
    /// STARTTLS there must be none: anything there was sent before the handshake and must not
    /// be read as if it came over TLS (the CVE-2011-0411 family).
    pub fn has_buffered(&self) -> bool {
        self.start < self.buffer.len() || self.partial.is_some()
    }

    /// The next complete reply, or `None` until more bytes arrive.
    pub fn next_reply(&mut self) -> Result<Option<RemoteReply>, ReplyError> {
        Ok(self.next_reply_lines()?.map(|(reply, _)| reply))
    }

    /// The next complete reply with the text of each of its lines (after code and separator,
    /// status codes kept), which is where EHLO keywords are.
    pub fn next_reply_lines(&mut self) -> Result<Option<(RemoteReply, Vec<String>)>, ReplyError> {
        while let Some(line) = self.next_line()? {
            let (code, last, text) = split_line(&line)?;
            let partial = match &mut self.partial {
                Some(partial) if partial.code != code => {
                    return Err(ReplyError::CodeMismatch {
                        first: partial.code,
                        then: code,
                    });
                }
                Some(partial) if partial.lines.len() >= MAX_REPLY_LINES => {
                    return Err(ReplyError::TooManyLines);
                }
                Some(partial) => partial,
                partial @ None => partial.insert(Partial {
                    code,
                    status: status_of(&text, code).map(str::to_owned),
                    lines: Vec::new(),
                }),
            };
            partial.lines.push(text);
            if last && let Some(done) = self.partial.take() {
                return Ok(Some(done.finish()));
            }
        }
        Ok(None)
    }

    /// The next complete line without its line ending. A bare LF ends a line too: some servers
    /// send them, and Postfix's client accepts them as well.
    fn next_line(&mut self) -> Result<Option<String>, ReplyError> {
        let pending = &self.buffer[self.start..];
        let Some(offset) = pending[self.scanned..].iter().position(|&b| b == b'\n') else {
            self.scanned = pending.len();
            // One more byte may be the CR of a line of the maximum length.
            if pending.len() > MAX_REPLY_LINE + 1 {
                return Err(ReplyError::LineTooLong);
            }
            return Ok(None);
        };
        let end = self.scanned + offset;
        let content = &pending[..end];
        let content = content.strip_suffix(b"\r").unwrap_or(content);
        if content.len() > MAX_REPLY_LINE {
            return Err(ReplyError::LineTooLong);
        }
        // Reply text is free-form and may be UTF-8 (RFC 6531) or any 8-bit charset; it is only
        // ever shown to people, so a lossy conversion loses nothing that matters.
        let line = String::from_utf8_lossy(content).into_owned();
        self.start += end + 1;
        self.scanned = 0;
        Ok(Some(line))
    }
}

impl Partial {
    fn finish(self) -> (RemoteReply, Vec<String>) {
        let mut text = String::new();
        for (index, line) in self.lines.iter().enumerate() {
            // Continuation lines repeat the status code (RFC 2034); the joined text says it once.
            let piece = match (&self.status, index) {
                (Some(status), 0) => without_status(line, status),
                (Some(status), _) if status_of(line, self.code) == Some(status.as_str()) => {
                    without_status(line, status)
                }
                _ => line.as_str(),
            };
            let piece = piece.trim();
            if !piece.is_empty() {
                if !text.is_empty() {
                    text.push(' ');
                }
                text.push_str(piece);
            }
        }
        let reply = RemoteReply {
            code: self.code,
            status: self.status,
            text,
        };
        (reply, self.lines)
    }
}

/// Code, whether this is the last line, and the text after the separator.
fn split_line(line: &str) -> Result<(u16, bool, String), ReplyError> {
    let malformed = || ReplyError::Malformed(line.chars().take(80).collect());
    let bytes = line.as_bytes();
    let digits = bytes.get(..3).ok_or_else(malformed)?;
    // SMTP replies are 2yz to 5yz (RFC 5321 4.2.1); 1yz is not used.
    if !(b'2'..=b'5').contains(&digits[0]) || !digits[1..].iter().all(u8::is_ascii_digit) {
        return Err(malformed());
    }
    let code = digits
        .iter()
        .fold(0u16, |code, digit| code * 10 + u16::from(digit - b'0'));
    let last = match bytes.get(3) {
        None | Some(b' ') => true,
        Some(b'-') => false,
        Some(_) => return Err(malformed()),
    };
    Ok((code, last, line.get(4..).unwrap_or("").to_owned()))
}

/// The RFC 3463 status code at the start of `text`, when its class agrees with the reply code.
fn status_of(text: &str, code: u16) -> Option<&str> {
    let first = text.split(' ').next()?;
    let mut parts = first.split('.');
    let (class, subject, detail) = (parts.next()?, parts.next()?, parts.next()?);
    let number =
        |part: &str| (1..=3).contains(&part.len()) && part.bytes().all(|b| b.is_ascii_digit());
    let class_agrees =
        class.len() == 1 && u16::from(class.as_bytes()[0]) == u16::from(b'0') + code / 100;
    (parts.next().is_none() && class_agrees && number(subject) && number(detail)).then_some(first)
}

fn without_status<'a>(line: &'a str, status: &str) -> &'a str {
    line.strip_prefix(status).unwrap_or(line)
}
