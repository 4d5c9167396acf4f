//! SMTP AUTH (RFC 4954) as the session sees it: when AUTH is offered and accepted, the SASL
//! exchange over command lines, and what being authenticated changes (MAIL needs it on
//! submission listeners; the sender must be the user's own).
//!
//! Checking the credentials and the sender belongs to the driver ([`Step::Authenticate`],
//! [`Step::CheckSender`]): it owns the user database, the lockout and the clock.

use super::{Pending, Session, Step, TlsState, Txn};
use crate::auth::{self, Credentials, Progress};
use crate::line::Line;
use crate::{MailParams, Refusal, Reply, ReversePath, Verdict};

/// Whether a listener takes AUTH, and whether it insists on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct AuthPolicy {
    /// AUTH is advertised and accepted once TLS is active (never in plain text: RFC 4954 4,
    /// and the issue's `538 5.7.11`).
    pub offered: bool,
    /// MAIL is refused with `530 5.7.0` until the client has authenticated (submission, RFC 6409).
    pub required: bool,
}

impl Session {
    /// Sets this listener's AUTH policy; the driver calls it before the greeting.
    pub fn with_auth(mut self, policy: AuthPolicy) -> Self {
        self.auth = policy;
        self
    }

    /// The login of the authenticated user, once AUTH has succeeded.
    pub fn authenticated(&self) -> Option<&str> {
        self.login.as_deref()
    }

    /// AUTH is advertised in the EHLO reply now.
    pub(super) fn auth_advertised(&self) -> bool {
        self.auth.offered && self.tls == TlsState::Active
    }

    /// Records the driver's decision on the credentials from the last [`Step::Authenticate`]
    /// (`Reject` carries `535 5.7.8` or `454 4.7.0`) and returns the reply to send.
    pub fn auth_verdict(&mut self, verdict: Verdict) -> Reply {
        let Pending::Credentials(login) = std::mem::replace(&mut self.pending, Pending::None)
        else {
            return self.count(
                Reply::new(503, "5.5.1", "No authentication pending").because(Refusal::BadSequence),
            );
        };
        match verdict {
            Verdict::Accept => {
                self.login = Some(login);
                Reply::auth_succeeded()
            }
            Verdict::Reject(reply) => self.count(reply),
        }
    }

    /// Records the driver's decision on the sender from the last [`Step::CheckSender`] and
    /// returns the reply to send; on `Accept` the transaction is open.
    pub fn sender_verdict(&mut self, verdict: Verdict) -> Reply {
        let Pending::Sender(from, params) = std::mem::replace(&mut self.pending, Pending::None)
        else {
            return self.count(
                Reply::new(503, "5.5.1", "No sender pending").because(Refusal::BadSequence),
            );
        };
        match verdict {
            Verdict::Accept => self.open_transaction(from, *params),
            Verdict::Reject(reply) => self.count(reply),
        }
    }

    /// `AUTH mechanism [initial-response]`. State errors come before syntax errors, as for every
    /// other command.
    pub(super) fn auth(&mut self, args: &str) -> Step {
        if !self.auth.offered {
            return self.answer(
                Reply::new(502, "5.5.1", "Command not implemented")
                    .because(Refusal::NotImplemented),
            );
        }
        if self.tls != TlsState::Active {
            return self.answer(Reply::auth_requires_tls());
        }
        if self.helo.is_none() {
            return self.answer(
                Reply::new(503, "5.5.1", "Send HELO/EHLO first").because(Refusal::BadSequence),
            );
        }
        if self.login.is_some() {
            return self.answer(Reply::auth_already_done());
        }
        if self.txn.is_some() {
            return self.answer(Reply::auth_in_transaction());
        }
        self.sasl_progress(auth::start(args))
    }

    /// A client line answering a `334` challenge.
    pub(super) fn process_auth_response(&mut self, input: &[u8]) -> (usize, Step) {
        let (used, line) = self.lines.next(input, self.config.max_command_line);
        let step = match line {
            Line::Incomplete => return (used, Step::NeedMore),
            Line::Bad(error) => {
                self.pending = Pending::None;
                self.answer(error.reply())
            }
            Line::Complete(line) => {
                let Pending::SaslResponse(exchange) =
                    std::mem::replace(&mut self.pending, Pending::None)
                else {
                    return (used, Step::NeedMore);
                };
                self.sasl_progress(exchange.respond(line))
            }
        };
        (used, step)
    }

    fn sasl_progress(&mut self, progress: Result<Progress, auth::AuthError>) -> Step {
        match progress {
            Ok(Progress::Challenge { exchange, reply }) => {
                self.pending = Pending::SaslResponse(exchange);
                Step::Reply(reply)
            }
            Ok(Progress::Done(credentials)) => self.credentials(credentials),
            Err(error) => self.answer(error.reply()),
        }
    }

    fn credentials(&mut self, credentials: Credentials) -> Step {
        self.pending = Pending::Credentials(credentials.login().to_owned());
        Step::Authenticate(credentials)
    }

    /// MAIL on an authenticated session: the driver judges the sender first.
    pub(super) fn check_sender(&mut self, from: ReversePath, params: MailParams) -> Step {
        self.pending = Pending::Sender(from.clone(), Box::new(params));
        Step::CheckSender(from)
    }

    pub(super) fn open_transaction(&mut self, from: ReversePath, params: MailParams) -> Reply {
        self.txn = Some(Txn {
            from,
            params,
            recipients: Vec::new(),
            chunks: None,
        });
        self.overshoot = 0;
        Reply::new(250, "2.1.0", "Ok")
    }
}
