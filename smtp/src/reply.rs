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
    /// Why an error reply refused, named where the reply is made (for the ingress's reject
    /// counts); `None` on positive replies. Not part of the wire form.
    pub refusal: Option<Refusal>,
}

/// The bounded reasons Tern refuses a connection, command or message for. Each error reply
/// names its own, so a count never has to guess it back from a code (`421 4.7.0` is both too
/// many errors and too many connections).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// A command, parameter or address that does not parse.
    Syntax,
    NotImplemented,
    /// A command out of order (RFC 5321 `503`).
    BadSequence,
    TooManyErrors,
    TooManyConnections,
    ShuttingDown,
    IdleTimeout,
    /// The queue could not commit the message.
    QueueUnavailable,
    TooManyRecipients,
    NoValidRecipients,
    AuthRequired,
    AuthFailed,
    /// Credentials that could not be checked now.
    AuthUnavailable,
    TlsRequired,
    TooLarge,
    SenderNotOwned,
    Smtputf8Required,
    RelayDenied,
    BareLineEnding,
    LineTooLong,
    /// Too many `Received:` fields: a mail loop.
    TooManyHops,
    /// A blocklist entry (reject or tempfail).
    Blocklisted,
    /// DNS blocklists scored the client at or above the threshold.
    Dnsbl,
    /// Commands (or message content) sent ahead of a reply the client had to wait for.
    UnauthorisedPipelining,
    /// Input before the greeting.
    EarlyTalker,
    /// A new (client network, sender, recipient) triplet, deferred.
    Greylisted,
    /// A policy check could not be made (its database is away): try again later.
    PolicyUnavailable,
    /// A HELO/EHLO name that is neither a domain name nor an address literal.
    InvalidHelo,
    /// A cluster-wide rate limit was reached.
    RateLimited,
    /// The sender's SPF record says the client may not send for it.
    SpfFail,
    /// The sender's SPF record could not be checked now.
    SpfTempError,
    /// The message fails the DMARC policy (`p=reject`) of its From domain.
    DmarcReject,
}

impl Refusal {
    /// The metric label.
    pub const fn label(self) -> &'static str {
        match self {
            Refusal::Syntax => "syntax",
            Refusal::NotImplemented => "not_implemented",
            Refusal::BadSequence => "bad_sequence",
            Refusal::TooManyErrors => "too_many_errors",
            Refusal::TooManyConnections => "too_many_connections",
            Refusal::ShuttingDown => "shutting_down",
            Refusal::IdleTimeout => "idle_timeout",
            Refusal::QueueUnavailable => "queue_unavailable",
            Refusal::TooManyRecipients => "too_many_recipients",
            Refusal::NoValidRecipients => "no_valid_recipients",
            Refusal::AuthRequired => "auth_required",
            Refusal::AuthFailed => "auth_failed",
            Refusal::AuthUnavailable => "auth_unavailable",
            Refusal::TlsRequired => "tls_required",
            Refusal::TooLarge => "too_large",
            Refusal::SenderNotOwned => "sender_not_owned",
            Refusal::Smtputf8Required => "smtputf8_required",
            Refusal::RelayDenied => "relay_denied",
            Refusal::BareLineEnding => "bare_line_ending",
            Refusal::LineTooLong => "line_too_long",
            Refusal::TooManyHops => "too_many_hops",
            Refusal::Blocklisted => "blocklisted",
            Refusal::Dnsbl => "dnsbl",
            Refusal::UnauthorisedPipelining => "unauthorised_pipelining",
            Refusal::EarlyTalker => "early_talker",
            Refusal::Greylisted => "greylisted",
            Refusal::PolicyUnavailable => "policy_unavailable",
            Refusal::InvalidHelo => "invalid_helo",
            Refusal::RateLimited => "rate_limited",
            Refusal::SpfFail => "spf_fail",
            Refusal::SpfTempError => "spf_temperror",
            Refusal::DmarcReject => "dmarc_reject",
        }
    }
}

impl Reply {
    /// A one-line reply carrying an enhanced status code.
    pub fn new(code: u16, status: &'static str, text: impl Into<String>) -> Self {
        Self {
            code,
            status: Some(status),
            lines: vec![text.into()],
            refusal: None,
        }
    }

    /// The same reply, naming why it refuses.
    pub fn because(self, refusal: Refusal) -> Self {
        Self {
            refusal: Some(refusal),
            ..self
        }
    }

    /// A one-line reply without an enhanced status code.
    pub(crate) fn plain(code: u16, text: impl Into<String>) -> Self {
        Self {
            code,
            status: None,
            lines: vec![text.into()],
            refusal: None,
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
        Self::new(421, "4.4.2", "Idle timeout, closing connection").because(Refusal::IdleTimeout)
    }

    pub fn shutting_down() -> Self {
        Self::new(421, "4.3.2", "Service shutting down, try again later")
            .because(Refusal::ShuttingDown)
    }

    pub fn too_many_connections() -> Self {
        Self::new(421, "4.7.0", "Too many connections, try again later")
            .because(Refusal::TooManyConnections)
    }

    pub fn relay_denied() -> Self {
        Self::new(554, "5.7.1", "Relay access denied").because(Refusal::RelayDenied)
    }

    pub fn store_unavailable() -> Self {
        Self::new(
            451,
            "4.3.0",
            "Queue temporarily unavailable, try again later",
        )
        .because(Refusal::QueueUnavailable)
    }

    /// A message that has passed through more hosts than the hop limit: a mail loop.
    pub fn too_many_hops(hops: usize) -> Self {
        Self::new(
            554,
            "5.4.6",
            format!("Too many hops ({hops} Received: fields): mail loop suspected"),
        )
        .because(Refusal::TooManyHops)
    }

    pub fn queued(queue_id: &str) -> Self {
        Self::new(250, "2.0.0", format!("Ok: queued as {queue_id}"))
    }

    /// Postfix's words for a client that did not wait for a reply it had to wait for.
    pub(crate) fn unauthorised_pipelining() -> Self {
        Self::new(554, "5.5.0", "Error: SMTP protocol synchronization")
            .because(Refusal::UnauthorisedPipelining)
    }

    /// A policy check whose state could not be read (its database is away): `451 4.3.0`, never
    /// a silent pass.
    pub fn policy_unavailable() -> Self {
        Self::new(451, "4.3.0", "Temporary policy failure, try again later")
            .because(Refusal::PolicyUnavailable)
    }

    /// A client that talked before the greeting (postscreen's "PREGREET").
    pub fn early_talker() -> Self {
        Self::new(
            554,
            "5.5.1",
            "Error: protocol error, talked before the greeting",
        )
        .because(Refusal::EarlyTalker)
    }

    pub(crate) fn too_many_errors() -> Self {
        Self::new(421, "4.7.0", "Too many errors, closing connection")
            .because(Refusal::TooManyErrors)
    }

    pub(crate) fn ok() -> Self {
        Self::new(250, "2.0.0", "Ok")
    }

    pub(crate) fn syntax(usage: &str) -> Self {
        Self::new(501, "5.5.4", format!("Syntax: {usage}")).because(Refusal::Syntax)
    }

    pub(crate) fn need_mail() -> Self {
        Self::new(503, "5.5.1", "Need MAIL command").because(Refusal::BadSequence)
    }

    pub(crate) fn no_valid_recipients() -> Self {
        Self::new(554, "5.5.1", "No valid recipients").because(Refusal::NoValidRecipients)
    }

    pub(crate) fn size_exceeded() -> Self {
        Self::new(552, "5.3.4", "Message size exceeds fixed limit").because(Refusal::TooLarge)
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
            refusal: None,
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
            refusal: None,
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
