//! The bytes of the client side of SMTP: reading replies, EHLO capabilities, command arguments,
//! and the dot-stuffed message body.

use tern_smtp::client::RemoteReply;

/// Longest reply line accepted, and most lines in one reply: a server that sends more is broken
/// or hostile, and the connection is given up rather than buffered without bound.
pub(crate) const MAX_REPLY_LINE: usize = 4096;
pub(crate) const MAX_REPLY_LINES: usize = 100;

/// Accumulates the lines of one reply.
#[derive(Debug, Default)]
pub(crate) struct ReplyBuilder {
    code: Option<u16>,
    status: Option<String>,
    text: Vec<String>,
}

/// One line did not make sense as part of a reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct BadReply(pub String);

impl ReplyBuilder {
    /// Adds one line (without its line ending). `Some` when it was the last line of the reply.
    pub(crate) fn push(&mut self, line: &[u8]) -> Result<Option<RemoteReply>, BadReply> {
        let line = String::from_utf8_lossy(line);
        let bytes = line.as_bytes();
        if bytes.len() < 3 || !bytes[..3].iter().all(u8::is_ascii_digit) {
            return Err(BadReply(format!("not a reply line: {:?}", truncate(&line))));
        }
        let code: u16 = line[..3].parse().map_err(|_| BadReply("bad code".into()))?;
        if self.code.is_some_and(|first| first != code) {
            return Err(BadReply(format!(
                "reply lines disagree on the code: {:?}",
                truncate(&line)
            )));
        }
        let last = match bytes.get(3) {
            None | Some(b' ') => true,
            Some(b'-') => false,
            Some(_) => return Err(BadReply(format!("bad separator: {:?}", truncate(&line)))),
        };
        let rest = line.get(4..).unwrap_or("").trim_end();
        let text = if self.code.is_none() {
            let (status, text) = split_status(rest, code);
            self.status = status;
            text
        } else {
            // Later lines repeat the status code; drop it so the joined text reads once.
            match split_status(rest, code) {
                (Some(s), text) if Some(&s) == self.status.as_ref() => text,
                _ => rest.to_owned(),
            }
        };
        self.code = Some(code);
        if self.text.len() >= MAX_REPLY_LINES {
            return Err(BadReply("reply has too many lines".into()));
        }
        self.text.push(text);
        if !last {
            return Ok(None);
        }
        let reply = RemoteReply {
            code,
            status: self.status.take(),
            text: std::mem::take(&mut self.text).join(" ").trim().to_owned(),
        };
        self.code = None;
        Ok(Some(reply))
    }
}

fn truncate(line: &str) -> &str {
    let end = line.char_indices().nth(80).map_or(line.len(), |(i, _)| i);
    &line[..end]
}

/// Splits `5.1.1 rest` into the enhanced status code and the rest, when the class matches.
fn split_status(text: &str, code: u16) -> (Option<String>, String) {
    let (first, rest) = text.split_once(' ').unwrap_or((text, ""));
    let mut parts = first.split('.');
    let valid = matches!(
        (parts.next(), parts.next(), parts.next(), parts.next()),
        (Some(c), Some(s), Some(d), None)
            if c.len() == 1 && c.as_bytes()[0] - b'0' == (code / 100) as u8
                && (1..=3).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_digit())
                && (1..=3).contains(&d.len()) && d.bytes().all(|b| b.is_ascii_digit())
    );
    if valid {
        (Some(first.to_owned()), rest.to_owned())
    } else {
        (None, text.to_owned())
    }
}

/// What a server announced in its EHLO (or LHLO) reply.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Capabilities {
    pub esmtp: bool,
    pub pipelining: bool,
    /// Announced size limit; `None` when absent or `SIZE 0` (no limit given).
    pub size: Option<u64>,
    pub eightbitmime: bool,
    pub smtputf8: bool,
    pub dsn: bool,
    pub starttls: bool,
    pub chunking: bool,
    pub enhancedstatuscodes: bool,
}

impl Capabilities {
    /// Reads the keyword lines of an EHLO reply; `lines` are the reply's lines after the first.
    pub(crate) fn parse<'a>(lines: impl Iterator<Item = &'a str>) -> Self {
        let mut caps = Capabilities {
            esmtp: true,
            ..Default::default()
        };
        for line in lines {
            let mut words = line.split_ascii_whitespace();
            let Some(keyword) = words.next() else {
                continue;
            };
            match keyword.to_ascii_uppercase().as_str() {
                "PIPELINING" => caps.pipelining = true,
                "SIZE" => caps.size = words.next().and_then(|n| n.parse().ok()).filter(|&n| n > 0),
                "8BITMIME" => caps.eightbitmime = true,
                "SMTPUTF8" => caps.smtputf8 = true,
                "DSN" => caps.dsn = true,
                "STARTTLS" => caps.starttls = true,
                "CHUNKING" => caps.chunking = true,
                "ENHANCEDSTATUSCODES" => caps.enhancedstatuscodes = true,
                _ => {}
            }
        }
        caps
    }
}

/// RFC 3461 xtext: `+` followed by two upper-case hex digits for `+`, `=`, controls, space and
/// anything outside printable ASCII.
pub(crate) fn xtext(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for byte in value.bytes() {
        if (33..=126).contains(&byte) && byte != b'+' && byte != b'=' {
            out.push(byte as char);
        } else {
            out.push_str(&format!("+{byte:02X}"));
        }
    }
    out
}

/// The body as DATA sends it: every line starting with `.` gets another, the last line is ended
/// with CRLF if it was not, and `.CRLF` closes it. Bare LF is passed as it is: the ingress never
/// accepts it, and rewriting bytes would change what was signed.
pub(crate) fn dot_stuff(body: &[u8]) -> Vec<u8> {
    let extra = body
        .iter()
        .filter(|&&b| b == b'.')
        .count()
        .min(body.len() / 2 + 1);
    let mut out = Vec::with_capacity(body.len() + extra + 5);
    let mut at_line_start = true;
    let mut start = 0;
    for (i, &byte) in body.iter().enumerate() {
        if at_line_start && byte == b'.' {
            out.extend_from_slice(&body[start..i]);
            out.push(b'.');
            start = i;
        }
        at_line_start = byte == b'\n';
    }
    out.extend_from_slice(&body[start..]);
    if !body.is_empty() && !body.ends_with(b"\r\n") {
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b".\r\n");
    out
}

#[cfg(test)]
mod tests;
