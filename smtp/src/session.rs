//! The server side of one SMTP connection as a sans-IO state machine: bytes
//! in, [`Step`]s out. The driver owns the socket, the clock and policy.

mod auth;
mod bdat;
mod commands;
mod starttls;
#[cfg(test)]
mod tests;

use std::sync::Arc;

use crate::auth::{Credentials, SaslExchange};
use crate::body::BoundedBody;
use crate::command::{self, Verb};
use crate::data::{DataError, DataReader};
use crate::line::{Line, LineReader};
use crate::{Envelope, MailParams, Recipient, Refusal, Reply, ReversePath, Transaction};
pub use auth::AuthPolicy;
use bdat::Chunk;

/// Per-listener limits and identity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionConfig {
    /// Our name in the greeting, the EHLO reply and the 221.
    pub hostname: String,
    /// Message content limit in bytes, after dot-unstuffing; advertised as SIZE.
    pub max_message_size: u64,
    pub max_recipients: usize,
    /// Error replies allowed before the session answers 421 and closes.
    pub max_errors: u32,
    /// Longest command line, CRLF included.
    pub max_command_line: usize,
    /// Longest DATA text line, CRLF included (RFC 5321 4.5.3.1.6).
    pub max_text_line: usize,
    /// Most `Received:` fields a message may carry once ours is added (Postfix's
    /// `hopcount_limit`); more means it is going round in a loop (RFC 5321 6.3).
    pub max_received_headers: usize,
    /// Close sessions that send ahead where RFC 2920 says to wait for the reply: after HELO,
    /// EHLO or DATA, or after any command of a session that never said EHLO (Postfix's
    /// `smtpd_forbid_unauth_pipelining`). Spam engines and smuggling attempts write ahead;
    /// real MTAs wait.
    pub forbid_unauth_pipelining: bool,
    /// Refuse HELO/EHLO names that are neither a domain name nor an address literal, `501
    /// 5.5.2` (Postfix's `reject_invalid_helo_hostname`). Off by default: real MTAs do send
    /// such names.
    pub reject_invalid_helo: bool,
}

impl Default for SessionConfig {
    fn default() -> Self {
        Self {
            hostname: "localhost".to_string(),
            max_message_size: 25 * 1024 * 1024,
            max_recipients: 100,
            max_errors: 20,
            max_command_line: 2048,
            max_text_line: 1000,
            max_received_headers: 50,
            forbid_unauth_pipelining: true,
            reject_invalid_helo: false,
        }
    }
}

/// What the driver must do next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// The input holds no complete unit: flush pending output, read more.
    NeedMore,
    /// Send this reply. Replies may be batched while input remains
    /// (PIPELINING).
    Reply(Reply),
    /// Send this reply, then close the connection.
    Close(Reply),
    /// Evaluate policy for this recipient and call
    /// [`Session::recipient_verdict`] before processing more input.
    CheckRecipient(Recipient),
    /// Commit this message and call [`Session::message_result`] before
    /// processing more input.
    Message(Box<Transaction>),
    /// Send this reply (220), discard every byte received after the
    /// STARTTLS line, run the TLS handshake and then call
    /// [`Session::tls_started`] (RFC 3207). Until then the session
    /// swallows all input without acting on it.
    StartTls(Reply),
    /// Check these credentials and call [`Session::auth_verdict`] before
    /// processing more input.
    Authenticate(Credentials),
    /// Judge this envelope sender (the blocklist; for an authenticated
    /// session, whether the user may use it) and call
    /// [`Session::sender_verdict`] before processing more input.
    CheckSender(ReversePath),
}

/// Where the connection stands on TLS.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TlsState {
    /// No certificate configured: STARTTLS is neither advertised nor accepted.
    Unavailable,
    /// STARTTLS is advertised and accepted (RFC 3207).
    Offered,
    /// The connection is encrypted, after STARTTLS or on an implicit-TLS
    /// listener (RFC 8314).
    Active,
}

/// The driver's policy decision on a recipient.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Accept,
    Reject(Reply),
}

/// An open mail transaction: MAIL has been accepted.
#[derive(Debug)]
struct Txn {
    from: ReversePath,
    params: MailParams,
    recipients: Vec<Recipient>,
    /// BDAT chunks received so far.
    chunks: Option<BoundedBody>,
}

/// How incoming bytes are being read.
#[derive(Debug)]
enum Mode {
    Command,
    Data(DataReader),
    Bdat(Chunk),
}

/// A question the driver has to answer before input is processed again.
#[derive(Debug)]
enum Pending {
    None,
    Recipient(Recipient),
    Message,
    /// STARTTLS was accepted; the handshake has not finished.
    Tls,
    /// A `334` challenge was sent; the next line is the client's answer.
    SaslResponse(SaslExchange),
    /// Credentials for this login are with the driver.
    Credentials(String),
    /// An authenticated MAIL whose sender is with the driver.
    Sender(ReversePath, Box<MailParams>),
}

/// One SMTP connection, server side.
#[derive(Debug)]
pub struct Session {
    config: Arc<SessionConfig>,
    tls: TlsState,
    auth: AuthPolicy,
    /// The authenticated login, after AUTH succeeded.
    login: Option<String>,
    helo: Option<String>,
    esmtp: bool,
    txn: Option<Txn>,
    mode: Mode,
    lines: LineReader,
    pending: Pending,
    errors: u32,
    /// RCPTs refused for the recipient limit, which are not counted as
    /// errors until they pass [`RCPT_OVERSHOOT`].
    overshoot: usize,
    /// The error limit was reached outside `process`; close at the next call.
    close_next: bool,
    closed: bool,
    /// The verb of the command line read by the last `process`, until the driver takes it.
    last_command: Option<Verb>,
}

/// RCPTs over the recipient limit tolerated before they count as errors.
/// A legitimate client pipelining a long list would otherwise be cut off
/// for what is our limit, not its mistake (Postfix behaves the same).
const RCPT_OVERSHOOT: usize = 1000;

impl Session {
    pub fn new(config: Arc<SessionConfig>) -> Self {
        Self {
            config,
            tls: TlsState::Unavailable,
            auth: AuthPolicy::default(),
            login: None,
            helo: None,
            esmtp: false,
            txn: None,
            mode: Mode::Command,
            lines: LineReader::default(),
            pending: Pending::None,
            errors: 0,
            overshoot: 0,
            close_next: false,
            closed: false,
            last_command: None,
        }
    }

    /// `220 <hostname> ESMTP Tern`.
    pub fn greeting(&self) -> Reply {
        Reply::plain(220, format!("{} ESMTP Tern", self.config.hostname))
    }

    /// Consumes a prefix of `input` and says what happens next. Returns
    /// (bytes consumed, step). Unconsumed input is always shorter than
    /// `max_command_line`. While a recipient verdict or message result is
    /// outstanding, or after the session closed, nothing is processed.
    pub fn process(&mut self, input: &[u8]) -> (usize, Step) {
        if self.closed {
            return (input.len(), Step::NeedMore);
        }
        if self.close_next {
            self.closed = true;
            return (0, Step::Close(Reply::too_many_errors()));
        }
        match self.pending {
            Pending::None => {}
            // Bytes pipelined behind STARTTLS arrived in plaintext: they are
            // thrown away, never executed (the CVE-2011-0411 class).
            Pending::Tls => return (input.len(), Step::NeedMore),
            Pending::SaslResponse(_) => return self.process_auth_response(input),
            Pending::Recipient(_)
            | Pending::Message
            | Pending::Credentials(_)
            | Pending::Sender(..) => return (0, Step::NeedMore),
        }
        match self.mode {
            Mode::Command => self.process_command(input),
            Mode::Data(_) => self.process_data(input),
            Mode::Bdat(_) => self.process_chunk(input),
        }
    }

    /// Records the driver's decision on the recipient from the last
    /// [`Step::CheckRecipient`] and returns the reply to send.
    pub fn recipient_verdict(&mut self, verdict: Verdict) -> Reply {
        let Pending::Recipient(recipient) = std::mem::replace(&mut self.pending, Pending::None)
        else {
            return self.count(
                Reply::new(503, "5.5.1", "No recipient pending").because(Refusal::BadSequence),
            );
        };
        match (verdict, self.txn.as_mut()) {
            (Verdict::Accept, Some(txn)) => {
                txn.recipients.push(recipient);
                Reply::new(250, "2.1.5", "Ok")
            }
            (Verdict::Accept, None) => self.count(Reply::need_mail()),
            (Verdict::Reject(reply), _) => self.count(reply),
        }
    }

    /// Records the outcome of committing the message from the last
    /// [`Step::Message`]; the transaction ends either way.
    pub fn message_result(&mut self, result: Result<String, Reply>) -> Reply {
        self.pending = Pending::None;
        self.txn = None;
        match result {
            Ok(queue_id) => Reply::queued(&queue_id),
            Err(reply) => self.count(reply),
        }
    }

    /// MAIL has been accepted and the transaction is not yet over.
    pub fn in_transaction(&self) -> bool {
        self.txn.is_some()
    }

    /// The verb of the command line the last [`Session::process`] read, once: `None` when that
    /// call read message data, an AUTH response or nothing. Lets the driver count commands and
    /// attribute the replies that follow to a stage without parsing anything itself.
    pub fn take_command(&mut self) -> Option<Verb> {
        self.last_command.take()
    }

    /// The HELO/EHLO argument, once given.
    pub fn helo(&self) -> Option<&str> {
        self.helo.as_deref()
    }

    /// The envelope sender of the open transaction.
    pub fn sender(&self) -> Option<&ReversePath> {
        self.txn.as_ref().map(|txn| &txn.from)
    }

    fn process_command(&mut self, input: &[u8]) -> (usize, Step) {
        let (used, line) = self.lines.next(input, self.config.max_command_line);
        let step = match line {
            Line::Incomplete => return (used, Step::NeedMore),
            Line::Bad(error) => {
                self.last_command = Some(Verb::Unknown);
                self.answer(error.reply())
            }
            Line::Complete(line) if used < input.len() && self.must_wait_after(line) => {
                // Whatever else was sent is not read: the session ends here.
                self.closed = true;
                return (input.len(), Step::Close(Reply::unauthorised_pipelining()));
            }
            Line::Complete(line) => self.command(line),
        };
        // BDAT switches to chunk mode; its octets may already be here.
        if matches!(self.mode, Mode::Bdat(_)) {
            let (more, step) = self.process_chunk(&input[used..]);
            return (used + more, step);
        }
        (used, step)
    }

    /// Whether the client had to wait for this command's reply before sending more (RFC 2920:
    /// EHLO and DATA end a pipelined group; without EHLO nothing may be pipelined). Records the
    /// verb, so the refusal is counted at its stage.
    fn must_wait_after(&mut self, line: &[u8]) -> bool {
        if !self.config.forbid_unauth_pipelining {
            return false;
        }
        let verb = std::str::from_utf8(line).map_or(Verb::Unknown, |l| command::split(l).0);
        let must_wait = !self.esmtp || matches!(verb, Verb::Helo | Verb::Ehlo | Verb::Data);
        if must_wait {
            self.last_command = Some(verb);
        }
        must_wait
    }

    fn process_data(&mut self, input: &[u8]) -> (usize, Step) {
        let Mode::Data(reader) = &mut self.mode else {
            return (0, Step::NeedMore);
        };
        let (used, outcome) = reader.feed(input);
        let Some(outcome) = outcome else {
            return (used, Step::NeedMore);
        };
        self.mode = Mode::Command;
        let step = match outcome {
            Ok(body) => self.deliver(body, false),
            Err(error) => {
                self.txn = None;
                self.answer(data_error_reply(error))
            }
        };
        (used, step)
    }

    /// Hands the finished message to the driver.
    fn deliver(&mut self, body: Vec<u8>, bdat: bool) -> Step {
        let (Some(txn), Some(helo)) = (self.txn.as_ref(), self.helo.as_ref()) else {
            return self.answer(Reply::need_mail());
        };
        // The `Received:` field the driver adds is one more hop.
        let hops = crate::header::count(&body, "Received") + 1;
        if hops > self.config.max_received_headers {
            self.txn = None;
            return self.answer(Reply::too_many_hops(hops));
        }
        let envelope = Envelope {
            helo: helo.clone(),
            esmtp: self.esmtp,
            from: txn.from.clone(),
            params: txn.params.clone(),
            recipients: txn.recipients.clone(),
            bdat,
        };
        self.pending = Pending::Message;
        Step::Message(Box::new(Transaction { envelope, body }))
    }

    /// Turns a reply into a step, counting errors and closing the session
    /// once there have been too many.
    fn answer(&mut self, reply: Reply) -> Step {
        let reply = self.count(reply);
        if self.close_next {
            self.close_next = false;
            self.closed = true;
            return Step::Close(Reply::too_many_errors());
        }
        Step::Reply(reply)
    }

    /// Counts an error reply; reaching the limit schedules the close.
    fn count(&mut self, reply: Reply) -> Reply {
        if reply.is_error() {
            self.errors = self.errors.saturating_add(1);
            if self.errors >= self.config.max_errors {
                self.close_next = true;
            }
        }
        reply
    }
}

fn data_error_reply(error: DataError) -> Reply {
    match error {
        DataError::Poisoned => Reply::new(
            554,
            "5.5.2",
            "Message contains bare CR or LF or NUL; rejected (RFC 5321 2.3.8)",
        )
        .because(Refusal::BareLineEnding),
        DataError::TooLarge => Reply::size_exceeded(),
        DataError::LineTooLong(max) => Reply::new(
            554,
            "5.6.0",
            format!("Message has a line longer than {max} octets"),
        )
        .because(Refusal::LineTooLong),
    }
}
