//! Command lines: the verb, and the argument grammar of MAIL, RCPT and BDAT.
//! State checks happen in the session first, so that a client out of
//! sequence hears 503 whatever its syntax.

#[cfg(test)]
mod tests;

use crate::address::{self, AddressError};
use crate::params::{self, ParamError};
use crate::{ForwardPath, MailParams, RcptParams, ReversePath};
use crate::{Refusal, Reply};

/// The commands we know, plus everything else.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verb {
    Helo,
    Ehlo,
    Mail,
    Rcpt,
    Data,
    Bdat,
    Rset,
    Noop,
    Quit,
    Vrfy,
    Expn,
    Help,
    Starttls,
    Auth,
    Turn,
    Etrn,
    Unknown,
}

const VERBS: [(&str, Verb); 16] = [
    ("HELO", Verb::Helo),
    ("EHLO", Verb::Ehlo),
    ("MAIL", Verb::Mail),
    ("RCPT", Verb::Rcpt),
    ("DATA", Verb::Data),
    ("BDAT", Verb::Bdat),
    ("RSET", Verb::Rset),
    ("NOOP", Verb::Noop),
    ("QUIT", Verb::Quit),
    ("VRFY", Verb::Vrfy),
    ("EXPN", Verb::Expn),
    ("HELP", Verb::Help),
    ("STARTTLS", Verb::Starttls),
    ("AUTH", Verb::Auth),
    ("TURN", Verb::Turn),
    ("ETRN", Verb::Etrn),
];

impl Verb {
    /// Lowercase name for logs and metric labels: a closed set, whatever the client sent.
    pub fn label(self) -> &'static str {
        match self {
            Verb::Helo => "helo",
            Verb::Ehlo => "ehlo",
            Verb::Mail => "mail",
            Verb::Rcpt => "rcpt",
            Verb::Data => "data",
            Verb::Bdat => "bdat",
            Verb::Rset => "rset",
            Verb::Noop => "noop",
            Verb::Quit => "quit",
            Verb::Vrfy => "vrfy",
            Verb::Expn => "expn",
            Verb::Help => "help",
            Verb::Starttls => "starttls",
            Verb::Auth => "auth",
            Verb::Turn => "turn",
            Verb::Etrn => "etrn",
            Verb::Unknown => "other",
        }
    }
}

/// Splits a line into its verb and the (space-trimmed) arguments.
pub(crate) fn split(line: &str) -> (Verb, &str) {
    let (word, args) = line.split_once(' ').unwrap_or((line, ""));
    let verb = VERBS
        .iter()
        .find(|(name, _)| name.eq_ignore_ascii_case(word))
        .map_or(Verb::Unknown, |&(_, verb)| verb);
    (verb, args.trim_matches(' '))
}

/// Why a MAIL, RCPT or BDAT argument list was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum CommandError {
    #[error("syntax: {0}")]
    Syntax(&'static str),
    #[error("bad sender: {0}")]
    BadSender(AddressError),
    #[error("bad recipient: {0}")]
    BadRecipient(AddressError),
    #[error("non-ASCII address without SMTPUTF8")]
    NeedsSmtputf8,
    #[error(transparent)]
    Param(#[from] ParamError),
    #[error("declared size over the limit")]
    TooLarge,
}

impl CommandError {
    pub(crate) fn reply(&self) -> Reply {
        match self {
            CommandError::Syntax(usage) => Reply::syntax(usage),
            CommandError::BadSender(_) => {
                Reply::new(501, "5.1.7", "Bad sender address syntax").because(Refusal::Syntax)
            }
            CommandError::BadRecipient(_) => {
                Reply::new(501, "5.1.3", "Bad recipient address syntax").because(Refusal::Syntax)
            }
            CommandError::NeedsSmtputf8 => Reply::new(553, "5.6.7", "Address requires SMTPUTF8")
                .because(Refusal::Smtputf8Required),
            CommandError::Param(ParamError::Syntax(_)) => {
                Reply::new(501, "5.5.4", "Bad parameter syntax").because(Refusal::Syntax)
            }
            CommandError::Param(ParamError::Duplicate(_)) => {
                Reply::new(501, "5.5.4", "Duplicate parameter").because(Refusal::Syntax)
            }
            CommandError::Param(ParamError::Unsupported(key)) => {
                Reply::new(555, "5.5.4", format!("Unsupported parameter {key}"))
                    .because(Refusal::Syntax)
            }
            CommandError::Param(ParamError::BadValue(key)) => {
                Reply::new(501, "5.5.4", format!("Bad {key} parameter value"))
                    .because(Refusal::Syntax)
            }
            CommandError::TooLarge => Reply::size_exceeded(),
        }
    }
}

pub(crate) const MAIL_USAGE: &str = "MAIL FROM:<address>";
pub(crate) const RCPT_USAGE: &str = "RCPT TO:<address>";
pub(crate) const BDAT_USAGE: &str = "BDAT size [LAST]";

/// Parses `FROM:<path> [params]`. `esmtp` says whether the client used
/// EHLO; `max_size` is the configured message size limit.
pub(crate) fn parse_mail(
    args: &str,
    esmtp: bool,
    max_size: u64,
) -> Result<(ReversePath, MailParams), CommandError> {
    let path = after_prefix(args, "FROM:").ok_or(CommandError::Syntax(MAIL_USAGE))?;
    let (path, words) = address::split_path(path).map_err(CommandError::BadSender)?;
    let from = address::parse_reverse_path(path).map_err(CommandError::BadSender)?;
    check_separator(words).map_err(CommandError::BadSender)?;
    let params = params::parse_mail_params(words, esmtp)?;
    if !from.is_ascii() && !params.smtputf8 {
        return Err(CommandError::NeedsSmtputf8);
    }
    if params.size.is_some_and(|size| size > max_size) {
        return Err(CommandError::TooLarge);
    }
    Ok((from, params))
}

/// Parses `TO:<path> [params]`. `smtputf8` is whether the transaction's
/// MAIL command asked for it.
pub(crate) fn parse_rcpt(
    args: &str,
    esmtp: bool,
    smtputf8: bool,
) -> Result<(ForwardPath, RcptParams), CommandError> {
    let path = after_prefix(args, "TO:").ok_or(CommandError::Syntax(RCPT_USAGE))?;
    let (path, words) = address::split_path(path).map_err(CommandError::BadRecipient)?;
    let to = address::parse_forward_path(path).map_err(CommandError::BadRecipient)?;
    check_separator(words).map_err(CommandError::BadRecipient)?;
    let params = params::parse_rcpt_params(words, esmtp)?;
    if !to.is_ascii() && !smtputf8 {
        return Err(CommandError::NeedsSmtputf8);
    }
    Ok((to, params))
}

/// Parses `size [LAST]`.
pub(crate) fn parse_bdat(args: &str) -> Result<(u64, bool), CommandError> {
    let syntax = CommandError::Syntax(BDAT_USAGE);
    let mut words = args.split(' ').filter(|w| !w.is_empty());
    let size = words.next().ok_or(syntax.clone())?;
    if !size.bytes().all(|b| b.is_ascii_digit()) {
        return Err(syntax);
    }
    let size = size.parse().map_err(|_| syntax.clone())?;
    let last = match words.next() {
        None => false,
        Some(word) if word.eq_ignore_ascii_case("LAST") => true,
        Some(_) => return Err(syntax),
    };
    if words.next().is_some() {
        return Err(syntax);
    }
    Ok((size, last))
}

/// Strips `FROM:`/`TO:` (any case) and, as Postfix tolerates, one space
/// after the colon. `None` when the prefix is missing or nothing follows.
fn after_prefix<'a>(args: &'a str, prefix: &str) -> Option<&'a str> {
    let head = args.get(..prefix.len())?;
    if !head.eq_ignore_ascii_case(prefix) {
        return None;
    }
    let rest = &args[prefix.len()..];
    let rest = rest.strip_prefix(' ').unwrap_or(rest);
    (!rest.is_empty()).then_some(rest)
}

/// The path must be followed by nothing or by a space before parameters;
/// `<a@b>junk` is a malformed path, not a parameter.
fn check_separator(words: &str) -> Result<(), AddressError> {
    if words.is_empty() || words.starts_with(' ') {
        Ok(())
    } else {
        Err(AddressError::NotBracketed)
    }
}
