//! What an attempt means for a recipient: the one place where a remote reply or a
//! [`DeliveryError`] becomes delivered, deferred or bounced, with an RFC 3463 status.
//!
//! Local failures get these codes (RFC 3463 unless noted):
//!
//! | error            | outcome  | status | why                                                     |
//! |------------------|----------|--------|---------------------------------------------------------|
//! | `NoSuchDomain`   | bounced  | 5.1.2  | X.1.2: the destination system does not exist            |
//! | `NullMx`         | bounced  | 5.1.10 | RFC 7505 registers X.1.10 for a null MX                 |
//! | `NoAddress`      | bounced  | 5.4.4  | X.4.4: RFC 3463 names "only an SOA record" as its case  |
//! | `DnsTemporary`   | deferred | 4.4.3  | X.4.3: directory (DNS) server failure                   |
//! | `Connect`        | deferred | 4.4.1  | X.4.1: no answer from host                              |
//! | `Timeout`        | deferred | 4.4.2  | X.4.2: connection established but timed out             |
//! | `ConnectionLost` | deferred | 4.4.2  | X.4.2: connection broke before the transaction finished |
//! | `Tls`            | deferred | 4.7.5  | X.7.5: cryptographic failure                            |
//! | `Protocol`       | deferred | 4.5.0  | X.5.0: other or undefined protocol status               |
//!
//! TLS failures are deferred because they are usually an expired or replaced certificate that an
//! operator fixes within the queue lifetime. X.7.5 fits a handshake or verification failure;
//! X.7.4 (security features not supported) would fit "STARTTLS not offered" better, but
//! `DeliveryError::Tls` does not tell the two apart. RFC 7372's X.7.2x codes are about
//! DKIM/SPF/reverse DNS checks made by a receiver, so none of them applies to a sending MTA.

#[cfg(test)]
mod tests;

use tern_smtp::client::RemoteReply;

use super::DeliveryError;

/// What happens to a recipient after an attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Delivered,
    /// Try again later, until the queue lifetime runs out.
    Deferred,
    /// Permanent failure: the sender gets a failure DSN.
    Bounced,
}

/// The classification of one attempt for one recipient.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    pub outcome: Outcome,
    /// RFC 3463 code, always present and always of the class that matches `outcome`.
    pub status: String,
    /// The remote server's reply; `None` when the attempt failed on our side.
    pub remote: Option<RemoteReply>,
    /// The reply as `550 5.1.1 text`, or the error message for a local failure.
    pub text: String,
}

/// The diagnostic type of local failures: a private `X-` name beside the registered `smtp`, the
/// way Postfix reports its own failures as `X-Postfix`.
pub const LOCAL_DIAGNOSTIC_TYPE: &str = "x-tern";

impl std::fmt::Display for Verdict {
    /// The RFC 3464 `Diagnostic-Code` value, which is also what the attempt record and
    /// `last_reply` keep, so that a DSN built later from the stored row can tell a remote
    /// server's words (`smtp; 550 5.1.1 text`) from ours (`x-tern; no such domain ...`).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.remote {
            Some(reply) => write!(f, "smtp; {reply}"),
            None => write!(f, "{LOCAL_DIAGNOSTIC_TYPE}; {}", self.text),
        }
    }
}

/// Classifies the result of an attempt for one recipient.
pub fn classify(result: &Result<RemoteReply, DeliveryError>) -> Verdict {
    match result {
        Ok(reply) => from_reply(reply),
        Err(error) => from_error(error),
    }
}

fn from_reply(reply: &RemoteReply) -> Verdict {
    let (outcome, status) = match reply.code {
        200..=299 => (Outcome::Delivered, normalise(reply.status.as_deref(), '2')),
        400..=499 => (Outcome::Deferred, normalise(reply.status.as_deref(), '4')),
        500..=599 => (Outcome::Bounced, normalise(reply.status.as_deref(), '5')),
        // 1xx, 3xx or garbage where a final reply belongs: the server is broken, which may be
        // fixed by the next attempt, and its status cannot be trusted either.
        _ => (Outcome::Deferred, "4.5.0".to_owned()),
    };
    Verdict {
        outcome,
        status,
        remote: Some(reply.clone()),
        text: reply.to_string(),
    }
}

fn from_error(error: &DeliveryError) -> Verdict {
    let (outcome, status) = match error {
        DeliveryError::NoSuchDomain(_) => (Outcome::Bounced, "5.1.2"),
        DeliveryError::NullMx(_) => (Outcome::Bounced, "5.1.10"),
        DeliveryError::NoAddress(_) => (Outcome::Bounced, "5.4.4"),
        DeliveryError::DnsTemporary { .. } => (Outcome::Deferred, "4.4.3"),
        DeliveryError::Connect { .. } => (Outcome::Deferred, "4.4.1"),
        DeliveryError::Timeout { .. } => (Outcome::Deferred, "4.4.2"),
        DeliveryError::ConnectionLost { .. } => (Outcome::Deferred, "4.4.2"),
        DeliveryError::Tls { .. } => (Outcome::Deferred, "4.7.5"),
        DeliveryError::Protocol { .. } => (Outcome::Deferred, "4.5.0"),
        DeliveryError::MailLoop(_) => (Outcome::Bounced, "5.4.6"),
    };
    Verdict {
        outcome,
        status: status.to_owned(),
        remote: None,
        text: error.to_string(),
    }
}

/// The server's enhanced status with its class forced to `class`, or `class.0.0` when it gave
/// none or an unusable one. The reply code wins over a mismatched class (`550 4.1.1`): it is
/// what every SMTP client acts on, and the enhanced code is only meant to refine it.
fn normalise(status: Option<&str>, class: char) -> String {
    match status.and_then(subject_and_detail) {
        Some((subject, detail)) => format!("{class}.{subject}.{detail}"),
        None => format!("{class}.0.0"),
    }
}

/// `subject.detail` of a well-formed `class.subject.detail` (RFC 3463 2: class is 2, 4 or 5,
/// subject and detail are one to three digits).
fn subject_and_detail(status: &str) -> Option<(&str, &str)> {
    let mut parts = status.split('.');
    let (class, subject, detail) = (parts.next()?, parts.next()?, parts.next()?);
    let number =
        |part: &str| (1..=3).contains(&part.len()) && part.bytes().all(|b| b.is_ascii_digit());
    let valid = parts.next().is_none()
        && matches!(class, "2" | "4" | "5")
        && number(subject)
        && number(detail);
    valid.then_some((subject, detail))
}
