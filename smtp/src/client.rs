//! The client side of SMTP and LMTP, sans-IO: parsing the replies a server sends, reading its EHLO
//! capabilities, and writing the commands and the dot-stuffed message a delivery sends.
//!
//! - `reply`: [`ReplyParser`] turns received bytes into [`RemoteReply`]s, bounded and strict.
//! - `capabilities`: [`Capabilities`] read from an EHLO reply.
//! - `command`: [`Command`] and its parameters as wire bytes, each ESMTP parameter only when
//!   the server announced its extension.
//! - `dot_stuff`: [`DotStuffer`], the DATA encoding, in blocks.
//!
//! The IO driver (tern-worker's delivery client) owns sockets, timeouts and TLS; everything here
//! is a pure function of the bytes and capabilities it is given.

mod capabilities;
mod command;
mod dot_stuff;
mod reply;
#[cfg(test)]
mod tests;

pub use capabilities::Capabilities;
pub use command::{Command, CommandError, Hello, MailFrom, RcptTo};
pub use dot_stuff::{DotStuffer, dot_stuff};
pub use reply::{MAX_REPLY_LINE, MAX_REPLY_LINES, ReplyError, ReplyParser};

/// A reply received from a remote server, or made up locally in its image (a size or SMTPUTF8
/// check that refuses a message before it is sent).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteReply {
    /// The three-digit code (200..=599).
    pub code: u16,
    /// The RFC 3463 enhanced status code from the first line (`"5.1.1"`), when the server gave one.
    pub status: Option<String>,
    /// The text of every line without code, status and CRLF, joined with a single space.
    pub text: String,
}

impl RemoteReply {
    pub fn new(code: u16, status: Option<&str>, text: impl Into<String>) -> Self {
        Self {
            code,
            status: status.map(str::to_owned),
            text: text.into(),
        }
    }

    pub fn is_positive(&self) -> bool {
        (200..300).contains(&self.code)
    }

    pub fn is_transient(&self) -> bool {
        (400..500).contains(&self.code)
    }

    pub fn is_permanent(&self) -> bool {
        (500..600).contains(&self.code)
    }
}

impl std::fmt::Display for RemoteReply {
    /// `550 5.1.1 user unknown`: the form kept in `last_reply` and in DSN diagnostic codes.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.code)?;
        if let Some(status) = &self.status {
            write!(f, " {status}")?;
        }
        if !self.text.is_empty() {
            write!(f, " {}", self.text)?;
        }
        Ok(())
    }
}
