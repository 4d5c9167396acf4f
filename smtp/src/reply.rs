//! SMTP replies: a three-digit code, an optional RFC 3463 enhanced status
//! code and one or more text lines.

use std::fmt;

/// One (possibly multi-line) SMTP reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub code: u16,
    /// Enhanced status code such as `"2.1.0"`, written at the start of every
    /// line. `None` for the greeting, EHLO and 354 replies (RFC 2034 section 3).
    pub status: Option<&'static str>,
    pub lines: Vec<String>,
}

impl Reply {
    /// A one-line reply carrying an enhanced status code.
    pub fn new(code: u16, status: &'static str, text: impl Into<String>) -> Self {
        Self {
            code,
            status: Some(status),
            lines: vec![text.into()],
        }
    }

    /// A one-line reply without an enhanced status code.
    pub(crate) fn plain(code: u16, text: impl Into<String>) -> Self {
        Self {
            code,
            status: None,
            lines: vec![text.into()],
        }
    }

    /// Appends the wire form of the reply to `out`.
    pub fn write_to(&self, out: &mut Vec<u8>) {
        let code = self.code.to_string();
        let last = self.lines.len().saturating_sub(1);
        // An empty reply still has to be one well-formed line.
        let empty = [String::new()];
        let lines: &[String] = if self.lines.is_empty() {
            &empty
        } else {
            &self.lines
        };
        for (i, line) in lines.iter().enumerate() {
            out.extend_from_slice(code.as_bytes());
            out.push(if i == last { b' ' } else { b'-' });
            if let Some(status) = self.status {
                out.extend_from_slice(status.as_bytes());
                if !line.is_empty() {
                    out.push(b' ');
                }
            }
            // Text may come from outside (queue ids, policy messages); a stray
            // CR or LF would let it forge extra reply lines.
            out.extend(
                line.bytes()
                    .map(|b| if b == b'\r' || b == b'\n' { b' ' } else { b }),
            );
            out.extend_from_slice(b"\r\n");
        }
    }

    /// 2xx or 3xx.
    pub fn is_positive(&self) -> bool {
        (200..400).contains(&self.code)
    }

    /// 4xx.
    pub fn is_transient(&self) -> bool {
        (400..500).contains(&self.code)
    }

    /// 5xx.
    pub fn is_permanent(&self) -> bool {
        (500..600).contains(&self.code)
    }

    /// Whether the reply counts against the client's error budget.
    pub(crate) fn is_error(&self) -> bool {
        self.is_transient() || self.is_permanent()
    }

    pub fn idle_timeout() -> Self {
        Self::new(421, "4.4.2", "Idle timeout, closing connection")
    }

    pub fn shutting_down() -> Self {
        Self::new(421, "4.3.2", "Service shutting down, try again later")
    }

    pub fn too_many_connections() -> Self {
        Self::new(421, "4.7.0", "Too many connections, try again later")
    }

    pub fn relay_denied() -> Self {
        Self::new(554, "5.7.1", "Relay access denied")
    }

    pub fn store_unavailable() -> Self {
        Self::new(
            451,
            "4.3.0",
            "Queue temporarily unavailable, try again later",
        )
    }

    /// A message that has passed through more hosts than the hop limit: a mail loop.
    pub fn too_many_hops(hops: usize) -> Self {
        Self::new(
            554,
            "5.4.6",
            format!("Too many hops ({hops} Received: fields): mail loop suspected"),
        )
    }

    pub fn queued(queue_id: &str) -> Self {
        Self::new(250, "2.0.0", format!("Ok: queued as {queue_id}"))
    }

    pub(crate) fn too_many_errors() -> Self {
        Self::new(421, "4.7.0", "Too many errors, closing connection")
    }

    pub(crate) fn ok() -> Self {
        Self::new(250, "2.0.0", "Ok")
    }

    pub(crate) fn syntax(usage: &str) -> Self {
        Self::new(501, "5.5.4", format!("Syntax: {usage}"))
    }

    pub(crate) fn need_mail() -> Self {
        Self::new(503, "5.5.1", "Need MAIL command")
    }

    pub(crate) fn no_valid_recipients() -> Self {
        Self::new(554, "5.5.1", "No valid recipients")
    }

    pub(crate) fn size_exceeded() -> Self {
        Self::new(552, "5.3.4", "Message size exceeds fixed limit")
    }
}

/// The wire form without the trailing CRLF of the last line, for logs.
impl fmt::Display for Reply {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut wire = Vec::new();
        self.write_to(&mut wire);
        let text = String::from_utf8_lossy(&wire);
        f.write_str(text.trim_end_matches("\r\n"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wire(reply: &Reply) -> String {
        let mut out = Vec::new();
        reply.write_to(&mut out);
        String::from_utf8(out).unwrap_or_default()
    }

    #[test]
    fn one_line_reply_carries_the_enhanced_code() {
        assert_eq!(wire(&Reply::ok()), "250 2.0.0 Ok\r\n");
    }

    #[test]
    fn multi_line_reply_prefixes_every_line() {
        let reply = Reply {
            code: 250,
            status: Some("2.0.0"),
            lines: vec!["one".into(), "two".into(), "three".into()],
        };
        assert_eq!(
            wire(&reply),
            "250-2.0.0 one\r\n250-2.0.0 two\r\n250 2.0.0 three\r\n"
        );
    }

    #[test]
    fn plain_reply_has_no_enhanced_code() {
        assert_eq!(wire(&Reply::plain(220, "mx ESMTP")), "220 mx ESMTP\r\n");
    }

    #[test]
    fn empty_reply_is_still_one_line() {
        let reply = Reply {
            code: 250,
            status: Some("2.0.0"),
            lines: vec![],
        };
        assert_eq!(wire(&reply), "250 2.0.0\r\n");
    }

    #[test]
    fn line_breaks_in_text_cannot_forge_extra_lines() {
        assert_eq!(
            wire(&Reply::queued("abc\r\n250 fake")),
            "250 2.0.0 Ok: queued as abc  250 fake\r\n"
        );
    }

    #[test]
    fn classification_follows_the_first_digit() {
        let table = [
            (220, true, false, false),
            (354, true, false, false),
            (421, false, true, false),
            (554, false, false, true),
        ];
        for (code, positive, transient, permanent) in table {
            let reply = Reply::plain(code, "x");
            assert_eq!(reply.is_positive(), positive, "{code}");
            assert_eq!(reply.is_transient(), transient, "{code}");
            assert_eq!(reply.is_permanent(), permanent, "{code}");
        }
    }

    #[test]
    fn named_constructors_use_the_documented_codes() {
        let table = [
            (
                Reply::idle_timeout(),
                "421 4.4.2 Idle timeout, closing connection",
            ),
            (
                Reply::shutting_down(),
                "421 4.3.2 Service shutting down, try again later",
            ),
            (
                Reply::too_many_connections(),
                "421 4.7.0 Too many connections, try again later",
            ),
            (Reply::relay_denied(), "554 5.7.1 Relay access denied"),
            (
                Reply::store_unavailable(),
                "451 4.3.0 Queue temporarily unavailable, try again later",
            ),
            (Reply::queued("Q1"), "250 2.0.0 Ok: queued as Q1"),
        ];
        for (reply, text) in table {
            assert_eq!(reply.to_string(), text);
        }
    }
}
