//! Test-only driver: feeds bytes to a [`Session`] the way the IO layer
//! would and records everything it would send, as text.

use std::sync::Arc;

use crate::{
    ForwardPath, Refusal, Reply, ReversePath, Session, SessionConfig, Step, Transaction, Verdict,
};

/// Records a session's output. Recipients whose local part starts with
/// `reject` are refused with 554 5.7.1; everything else is accepted and
/// every message is queued as `Q1`, `Q2`, ... Credentials are accepted when
/// the password is `secret`, answered 454 when it is `locked` and 535
/// otherwise; authenticated senders whose local part starts with `other`
/// are refused with 553 5.7.1.
pub(crate) struct Driver {
    pub(crate) session: Session,
    pub(crate) config: Arc<SessionConfig>,
    /// Unconsumed input, as the IO layer would keep it.
    pub(crate) buffer: Vec<u8>,
    /// One line per event: a reply's text, `CHECK <rcpt>`, `MESSAGE` or
    /// `CLOSE <reply>`.
    pub(crate) transcript: Vec<String>,
    pub(crate) messages: Vec<Transaction>,
    pub(crate) closed: bool,
    /// Answer every message with a transient failure instead of queueing.
    pub(crate) store_fails: bool,
    /// AUTH succeeded: senders are then checked for ownership, as the ingress does.
    pub(crate) authenticated: bool,
}

impl Driver {
    pub(crate) fn new(config: SessionConfig) -> Self {
        let config = Arc::new(config);
        Self {
            session: Session::new(Arc::clone(&config)),
            config,
            buffer: Vec::new(),
            transcript: Vec::new(),
            messages: Vec::new(),
            closed: false,
            store_fails: false,
            authenticated: false,
        }
    }

    /// A driver whose session has already been greeted with `EHLO client`.
    pub(crate) fn after_ehlo(config: SessionConfig) -> Self {
        let mut driver = Self::new(config);
        driver.feed(b"EHLO client\r\n");
        driver.transcript.clear();
        driver
    }

    /// Feeds bytes and processes until the session needs more or closed.
    pub(crate) fn feed(&mut self, bytes: &[u8]) {
        if self.closed {
            return;
        }
        self.buffer.extend_from_slice(bytes);
        loop {
            let (used, step) = self.session.process(&self.buffer);
            assert!(used <= self.buffer.len(), "consumed more than given");
            self.buffer.drain(..used);
            match step {
                Step::NeedMore => {
                    assert!(
                        self.buffer.len() < self.config.max_command_line,
                        "holding {} unconsumed bytes",
                        self.buffer.len()
                    );
                    return;
                }
                Step::Close(reply) => {
                    named(&reply);
                    self.transcript.push(format!("CLOSE {reply}"));
                    self.closed = true;
                    return;
                }
                step => {
                    assert!(used > 0, "{step:?} without consuming input");
                    self.handle(step);
                }
            }
        }
    }

    /// Feeds each piece in turn.
    pub(crate) fn feed_all(&mut self, pieces: &[&[u8]]) {
        for piece in pieces {
            self.feed(piece);
        }
    }

    fn handle(&mut self, step: Step) {
        match step {
            Step::Reply(reply) => {
                named(&reply);
                self.transcript.push(reply.to_string());
            }
            Step::CheckRecipient(recipient) => {
                self.transcript.push(format!("CHECK {}", recipient.path));
                let refused = matches!(&recipient.path,
                    ForwardPath::Mailbox(m) if m.local.starts_with("reject"));
                let verdict = if refused {
                    Verdict::Reject(Reply::relay_denied())
                } else {
                    Verdict::Accept
                };
                let reply = self.session.recipient_verdict(verdict);
                named(&reply);
                self.transcript.push(reply.to_string());
            }
            Step::Message(transaction) => {
                self.transcript.push("MESSAGE".to_string());
                self.messages.push(*transaction);
                let result = if self.store_fails {
                    Err(Reply::store_unavailable())
                } else {
                    Ok(format!("Q{}", self.messages.len()))
                };
                let reply = self.session.message_result(result);
                named(&reply);
                self.transcript.push(reply.to_string());
            }
            Step::Authenticate(credentials) => {
                self.transcript
                    .push(format!("AUTHENTICATE {}", credentials.login()));
                let verdict = match credentials.password() {
                    "secret" => Verdict::Accept,
                    "locked" => Verdict::Reject(Reply::auth_temporary_failure()),
                    _ => Verdict::Reject(Reply::auth_failed()),
                };
                self.authenticated |= verdict == Verdict::Accept;
                let reply = self.session.auth_verdict(verdict);
                named(&reply);
                self.transcript.push(reply.to_string());
            }
            Step::CheckSender(from) => {
                self.transcript.push(format!("SENDER {from}"));
                let verdict = match &from {
                    ReversePath::Mailbox(m)
                        if m.local.starts_with("other") && self.authenticated =>
                    {
                        Verdict::Reject(Reply::sender_not_owned(&from.to_string()))
                    }
                    ReversePath::Mailbox(m) if m.local.starts_with("blocked") => Verdict::Reject(
                        Reply::new(550, "5.7.1", "Sender address rejected")
                            .because(Refusal::Blocklisted),
                    ),
                    _ => Verdict::Accept,
                };
                let reply = self.session.sender_verdict(verdict);
                named(&reply);
                self.transcript.push(reply.to_string());
            }
            // The handshake is the caller's move: see `Driver::handshake`.
            Step::StartTls(reply) => self.transcript.push(format!("STARTTLS {reply}")),
            Step::NeedMore | Step::Close(_) => {}
        }
    }

    /// The TLS handshake after `STARTTLS` succeeded.
    pub(crate) fn handshake(&mut self) {
        self.session.tls_started();
    }

    /// The last transcript line, for table tests.
    pub(crate) fn last(&self) -> &str {
        self.transcript.last().map_or("", String::as_str)
    }
}

/// Every error reply names why it refuses, and no positive reply claims a refusal: the
/// ingress counts rejects by this name, never by guessing it back from the code.
fn named(reply: &Reply) {
    let error = reply.code >= 400;
    assert_eq!(
        reply.refusal.is_some(),
        error,
        "{reply} (refusal {:?})",
        reply.refusal
    );
}

/// A config with small limits so tests can reach them cheaply.
pub(crate) fn small_config() -> SessionConfig {
    SessionConfig {
        hostname: "mx.test".to_string(),
        max_message_size: 1000,
        max_recipients: 3,
        max_errors: 5,
        max_command_line: 512,
        max_text_line: 100,
        max_received_headers: 5,
        // Most tests feed a whole conversation at once; `session::tests::pipelining` turns it on.
        forbid_unauth_pipelining: false,
        reject_invalid_helo: false,
    }
}

/// Deterministic pseudo-random numbers (xorshift64*), so property-style
/// tests need no extra crates and failures reproduce.
pub(crate) struct XorShift(u64);

impl XorShift {
    pub(crate) fn new(seed: u64) -> Self {
        Self(seed.max(1))
    }

    pub(crate) fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// A number in `0..n` (n > 0).
    pub(crate) fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}
