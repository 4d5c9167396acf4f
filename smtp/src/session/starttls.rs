//! STARTTLS (RFC 3207) and implicit TLS (RFC 8314) as the session sees them.
//!
//! The session only decides *whether* TLS may start and forgets everything once it has: the
//! handshake itself belongs to the driver. Replies follow Postfix: 502 when TLS is not available at
//! all, 503 when it is the wrong moment (already active, inside a transaction), 501 for arguments.

use super::{Mode, Pending, Session, Step, TlsState};
use crate::line::LineReader;
use crate::{Refusal, Reply};

impl Session {
    /// Sets how this connection stands on TLS; the driver calls it before
    /// the greeting (`Offered` on 25/587 with a certificate, `Active` on an
    /// implicit-TLS listener).
    pub fn with_tls(mut self, tls: TlsState) -> Self {
        self.tls = tls;
        self
    }

    /// The connection is encrypted.
    pub fn tls_active(&self) -> bool {
        self.tls == TlsState::Active
    }

    /// The handshake after [`Step::StartTls`] succeeded. Everything learnt
    /// from the client before it is discarded (RFC 3207 4.2): the client
    /// must say EHLO again, and STARTTLS is no longer offered.
    pub fn tls_started(&mut self) {
        self.tls = TlsState::Active;
        self.helo = None;
        self.esmtp = false;
        self.txn = None;
        self.mode = Mode::Command;
        self.lines = LineReader::default();
        self.pending = Pending::None;
        self.overshoot = 0;
    }

    pub(super) fn starttls(&mut self, args: &str) -> Step {
        match self.tls {
            TlsState::Unavailable => {
                return self.answer(
                    Reply::new(502, "5.5.1", "Command not implemented")
                        .because(Refusal::NotImplemented),
                );
            }
            TlsState::Active => {
                return self.answer(
                    Reply::new(503, "5.5.1", "TLS already active").because(Refusal::BadSequence),
                );
            }
            TlsState::Offered => {}
        }
        if self.txn.is_some() {
            return self.answer(
                Reply::new(503, "5.5.1", "MAIL transaction in progress")
                    .because(Refusal::BadSequence),
            );
        }
        if !args.is_empty() {
            return self.answer(Reply::syntax("STARTTLS"));
        }
        self.pending = Pending::Tls;
        Step::StartTls(Reply::new(220, "2.0.0", "Ready to start TLS"))
    }
}
