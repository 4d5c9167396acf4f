//! One handler per command verb. Each checks the session state first, then
//! the syntax, so that replies follow RFC 5321's 503-before-501 order.

use super::{Mode, Pending, RCPT_OVERSHOOT, Session, Step, TlsState};
use crate::Recipient;
use crate::command::{self, Verb};
use crate::data::DataReader;
use crate::{Refusal, Reply};

impl Session {
    /// Acts on one complete, well-framed command line.
    pub(super) fn command(&mut self, line: &[u8]) -> Step {
        let Ok(line) = std::str::from_utf8(line) else {
            self.last_command = Some(Verb::Unknown);
            return self.answer(
                Reply::new(500, "5.5.2", "Invalid UTF-8 in command").because(Refusal::Syntax),
            );
        };
        let (verb, args) = command::split(line);
        self.last_command = Some(verb);
        match verb {
            Verb::Helo => self.hello(args, false),
            Verb::Ehlo => self.hello(args, true),
            Verb::Mail => self.mail(args),
            Verb::Rcpt => self.rcpt(args),
            Verb::Data => self.data(args),
            Verb::Bdat => self.bdat(args),
            Verb::Rset if !args.is_empty() => self.answer(Reply::syntax("RSET")),
            Verb::Rset => {
                self.txn = None;
                Step::Reply(Reply::ok())
            }
            Verb::Noop => Step::Reply(Reply::ok()),
            Verb::Quit if !args.is_empty() => self.answer(Reply::syntax("QUIT")),
            Verb::Quit => {
                self.closed = true;
                let bye = format!("{} Bye", self.config.hostname);
                Step::Close(Reply::new(221, "2.0.0", bye))
            }
            Verb::Vrfy if args.is_empty() => self.answer(Reply::syntax("VRFY address")),
            // Confirming addresses would hand out a directory to harvesters.
            Verb::Vrfy => self.answer(Reply::new(
                252,
                "2.5.2",
                "Cannot VRFY user, but will accept message and attempt delivery",
            )),
            Verb::Expn => self.answer(
                Reply::new(502, "5.5.1", "EXPN not available").because(Refusal::NotImplemented),
            ),
            Verb::Help => Step::Reply(Reply::new(
                214,
                "2.0.0",
                "See https://www.rfc-editor.org/rfc/rfc5321",
            )),
            Verb::Starttls => self.starttls(args),
            Verb::Auth => self.auth(args),
            Verb::Turn | Verb::Etrn => self.answer(
                Reply::new(502, "5.5.1", "Command not implemented")
                    .because(Refusal::NotImplemented),
            ),
            Verb::Unknown => self
                .answer(Reply::new(500, "5.5.2", "Command unrecognized").because(Refusal::Syntax)),
        }
    }

    /// HELO and EHLO both start over: any transaction is dropped.
    fn hello(&mut self, args: &str, esmtp: bool) -> Step {
        if args.is_empty() {
            let usage = if esmtp {
                "EHLO hostname"
            } else {
                "HELO hostname"
            };
            return self.answer(Reply::syntax(usage));
        }
        if self.config.reject_invalid_helo && !crate::address::helo_is_valid(args) {
            return self.answer(
                Reply::new(
                    501,
                    "5.5.2",
                    format!("<{args}>: Helo command rejected: Invalid name"),
                )
                .because(Refusal::InvalidHelo),
            );
        }
        self.helo = Some(args.to_string());
        self.esmtp = esmtp;
        self.txn = None;
        let hostname = self.config.hostname.clone();
        if !esmtp {
            return Step::Reply(Reply::plain(250, hostname));
        }
        let mut lines = vec![
            hostname,
            "PIPELINING".to_string(),
            format!("SIZE {}", self.config.max_message_size),
        ];
        if self.tls == TlsState::Offered {
            lines.push("STARTTLS".to_string());
        }
        if self.auth_advertised() {
            lines.push(crate::auth::EHLO_KEYWORD.to_string());
        }
        lines.extend(
            [
                "8BITMIME",
                "SMTPUTF8",
                "ENHANCEDSTATUSCODES",
                "DSN",
                "CHUNKING",
            ]
            .map(String::from),
        );
        Step::Reply(Reply {
            code: 250,
            status: None,
            refusal: None,
            lines,
        })
    }

    fn mail(&mut self, args: &str) -> Step {
        if self.helo.is_none() {
            return self.answer(
                Reply::new(503, "5.5.1", "Send HELO/EHLO first").because(Refusal::BadSequence),
            );
        }
        if self.txn.is_some() {
            return self.answer(
                Reply::new(503, "5.5.1", "Nested MAIL command").because(Refusal::BadSequence),
            );
        }
        if self.auth.required && self.login.is_none() {
            return self.answer(Reply::auth_required());
        }
        match command::parse_mail(args, self.esmtp, self.config.max_message_size) {
            Ok((from, params)) => self.check_sender(from, params),
            Err(error) => self.answer(error.reply()),
        }
    }

    fn rcpt(&mut self, args: &str) -> Step {
        let Some(txn) = self.txn.as_ref() else {
            return self.answer(Reply::need_mail());
        };
        let full = txn.recipients.len() >= self.config.max_recipients;
        let parsed = command::parse_rcpt(args, self.esmtp, txn.params.smtputf8);
        let (path, params) = match parsed {
            Ok(parsed) => parsed,
            Err(error) => return self.answer(error.reply()),
        };
        if full {
            let reply =
                Reply::new(452, "4.5.3", "Too many recipients").because(Refusal::TooManyRecipients);
            self.overshoot += 1;
            if self.overshoot <= RCPT_OVERSHOOT {
                return Step::Reply(reply);
            }
            return self.answer(reply);
        }
        let recipient = Recipient { path, params };
        self.pending = Pending::Recipient(recipient.clone());
        Step::CheckRecipient(recipient)
    }

    fn data(&mut self, args: &str) -> Step {
        let Some(txn) = self.txn.as_ref() else {
            return self.answer(Reply::need_mail());
        };
        if txn.chunks.is_some() {
            return self.answer(
                Reply::new(503, "5.5.1", "DATA not allowed in a BDAT transaction")
                    .because(Refusal::BadSequence),
            );
        }
        if txn.recipients.is_empty() {
            return self.answer(Reply::no_valid_recipients());
        }
        if !args.is_empty() {
            return self.answer(Reply::syntax("DATA"));
        }
        let config = &self.config;
        self.mode = Mode::Data(DataReader::new(
            config.max_message_size,
            config.max_text_line,
        ));
        Step::Reply(Reply::plain(354, "End data with <CR><LF>.<CR><LF>"))
    }
}
