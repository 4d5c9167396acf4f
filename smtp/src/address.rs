//! Envelope addresses (RFC 5321 section 4.1.2, extended by RFC 6531 for
//! UTF-8): the types, their canonical text form and the path parser.

mod domain;
mod parse;
#[cfg(test)]
mod tests;

use std::fmt;

pub(crate) use parse::{parse_forward_path, parse_reverse_path, split_path};

/// Longest local part, in octets as written (RFC 5321 4.5.3.1.1).
pub(crate) const MAX_LOCAL: usize = 64;
/// Longest domain, in octets (RFC 5321 4.5.3.1.2).
pub(crate) const MAX_DOMAIN: usize = 255;
/// Longest path including the angle brackets (RFC 5321 4.5.3.1.3).
pub(crate) const MAX_PATH: usize = 256;

/// Why a path was refused. The client only ever sees a generic reply; the
/// detail is for logs and tests.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum AddressError {
    #[error("path is not enclosed in angle brackets")]
    NotBracketed,
    #[error("path longer than {MAX_PATH} octets")]
    PathTooLong,
    #[error("bad source route")]
    BadRoute,
    #[error("bad local part")]
    BadLocal,
    #[error("local part longer than {MAX_LOCAL} octets")]
    LocalTooLong,
    #[error("missing @domain")]
    MissingDomain,
    #[error("bad domain")]
    BadDomain,
    #[error("domain longer than {MAX_DOMAIN} octets")]
    DomainTooLong,
    #[error("bad address literal")]
    BadLiteral,
    #[error("null path not allowed here")]
    NullNotAllowed,
}

/// The part after the `@`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Domain {
    /// A dotted name, lowercased; U-labels are kept in UTF-8.
    Name(String),
    /// The text inside `[ ]`, e.g. `192.0.2.1` or `IPv6:2001:db8::1`.
    Literal(String),
}

impl Domain {
    fn is_ascii(&self) -> bool {
        match self {
            Domain::Name(name) => name.is_ascii(),
            Domain::Literal(text) => text.is_ascii(),
        }
    }
}

impl fmt::Display for Domain {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Domain::Name(name) => f.write_str(name),
            Domain::Literal(text) => write!(f, "[{text}]"),
        }
    }
}

/// `local@domain`. The local part is kept exactly as the client meant it:
/// case preserved, quoting removed.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Mailbox {
    pub local: String,
    pub domain: Domain,
}

impl Mailbox {
    /// `%`, `!` or `@` in the local part: the old source-routing forms
    /// (`user%final@relay`, `host!user@relay`) that open-relay probes use.
    pub fn local_has_routing_chars(&self) -> bool {
        self.local.contains(['%', '!', '@'])
    }

    /// Whether the address could be used without SMTPUTF8.
    pub fn is_ascii(&self) -> bool {
        self.local.is_ascii() && self.domain.is_ascii()
    }
}

/// Re-quotes the local part when it is not a plain dot-string, so the output
/// parses back to the same mailbox.
impl fmt::Display for Mailbox {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if parse::is_dot_string(&self.local) {
            f.write_str(&self.local)?;
        } else {
            f.write_str("\"")?;
            for c in self.local.chars() {
                if c == '"' || c == '\\' {
                    f.write_str("\\")?;
                }
                write!(f, "{c}")?;
            }
            f.write_str("\"")?;
        }
        write!(f, "@{}", self.domain)
    }
}

/// The MAIL FROM path.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ReversePath {
    /// `<>`: bounces and other notifications.
    Null,
    Mailbox(Mailbox),
}

/// Adds the angle brackets a bare address lacks.
fn bracketed(text: &str) -> String {
    let text = text.trim();
    if text.starts_with('<') {
        text.to_owned()
    } else {
        format!("<{text}>")
    }
}

/// Whether `name` is what RFC 5321 allows after HELO or EHLO: a domain name or an address
/// literal (a trailing dot tolerated).
pub fn helo_is_valid(name: &str) -> bool {
    domain::parse_domain(name.trim_end_matches('.')).is_ok()
}

impl ReversePath {
    /// Parses a path with or without its angle brackets (`""` and `<>` are the null path),
    /// as MAIL FROM would; the error says why not.
    pub fn parse_text(text: &str) -> Result<Self, String> {
        match text.trim() {
            "" => Ok(ReversePath::Null),
            text => parse::parse_reverse_path(&bracketed(text)).map_err(|e| e.to_string()),
        }
    }

    pub(crate) fn is_ascii(&self) -> bool {
        match self {
            ReversePath::Null => true,
            ReversePath::Mailbox(mailbox) => mailbox.is_ascii(),
        }
    }
}

/// `<>` for the null path, otherwise the bare mailbox.
impl fmt::Display for ReversePath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ReversePath::Null => f.write_str("<>"),
            ReversePath::Mailbox(mailbox) => mailbox.fmt(f),
        }
    }
}

/// The RCPT TO path.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ForwardPath {
    /// Unqualified `<postmaster>`, which every server must accept
    /// (RFC 5321 4.5.1).
    Postmaster,
    Mailbox(Mailbox),
}

impl ForwardPath {
    /// Parses a path with or without its angle brackets, as RCPT TO would; the error says why
    /// not.
    pub fn parse_text(text: &str) -> Result<Self, String> {
        parse::parse_forward_path(&bracketed(text)).map_err(|e| e.to_string())
    }

    pub(crate) fn is_ascii(&self) -> bool {
        match self {
            ForwardPath::Postmaster => true,
            ForwardPath::Mailbox(mailbox) => mailbox.is_ascii(),
        }
    }
}

/// `postmaster` or the bare mailbox.
impl fmt::Display for ForwardPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ForwardPath::Postmaster => f.write_str("postmaster"),
            ForwardPath::Mailbox(mailbox) => mailbox.fmt(f),
        }
    }
}
