//! One transaction: MAIL, RCPT, DATA and one final reply per recipient.

use std::time::Duration;

use tern_smtp::client::{Capabilities, Command, CommandError, MailFrom, RcptTo, RemoteReply};

use super::refusal::needs_smtputf8;
use super::{Connection, Envelope};
use crate::delivery::DeliveryError;
use crate::delivery::route::Protocol;

/// Most commands written before their replies are read. The server cannot read on while its
/// replies pile up unread, so an unbounded batch could deadlock both sides (RFC 2920 3.1);
/// this many replies fit in any socket buffer.
const PIPELINE_GROUP: usize = 100;

/// A command with its reply timeout and the stage a timeout names.
struct Outgoing {
    bytes: Vec<u8>,
    limit: Duration,
    stage: &'static str,
}

impl Connection {
    /// One transaction. Returns exactly one final reply per recipient, in order: its RCPT
    /// refusal, the MAIL refusal, a refusal made up locally (too large, needs SMTPUTF8, an
    /// address that cannot be sent), or the reply at the end of DATA (for LMTP, the recipient's
    /// own, RFC 2033 4.2). `Err` only when the connection failed (IO, timeout, protocol): then no
    /// recipient is done, and the connection is unusable and must be dropped.
    ///
    /// A transaction that MAIL opened and that ends without data (no recipient accepted, DATA
    /// refused) is closed with RSET at once, so after `Ok` the connection is always ready for
    /// the next MAIL: a completed transaction is followed straight by it (RFC 5321 3.3), and
    /// callers need not reset between transactions.
    pub async fn send(
        &mut self,
        envelope: &Envelope<'_>,
        body: &[u8],
    ) -> Result<Vec<RemoteReply>, DeliveryError> {
        self.wire.usable()?;
        let count = envelope.recipients.len();
        let needs_utf8 = needs_smtputf8(envelope);
        if let Some(refusal) = self.refuse_locally(needs_utf8, body.len()) {
            return Ok(vec![refusal; count]);
        }
        let t = self.timeouts;
        let peer = self.capabilities.clone();
        let mail = Command::Mail(MailFrom {
            reverse_path: envelope.mail_from,
            size: u64::try_from(body.len()).unwrap_or(u64::MAX),
            eight_bit: envelope.eight_bit,
            smtputf8: needs_utf8,
            ret: envelope.ret,
            envid: envelope.envid,
        });
        let mut commands = Vec::with_capacity(count + 2);
        match encode(&mail, &peer, t.mail, "MAIL") {
            Ok(mail) => commands.push(mail),
            Err(error) => return Ok(vec![self.local_refusal(&error); count]),
        }
        // `None`: sent, answered by the server; `Some`: refused here and never sent.
        let mut slots = Vec::with_capacity(count);
        for recipient in &envelope.recipients {
            let rcpt = Command::Rcpt(RcptTo {
                forward_path: recipient.address,
                notify: recipient.notify,
                orcpt: recipient.orcpt,
            });
            match encode(&rcpt, &peer, t.rcpt, "RCPT") {
                Ok(rcpt) => {
                    commands.push(rcpt);
                    slots.push(None);
                }
                Err(error) => slots.push(Some(self.local_refusal(&error))),
            }
        }
        let sent = commands.len() - 1;
        if sent == 0 {
            return Ok(merge(slots, Vec::new()));
        }
        if peer.pipelining {
            // RFC 2920 lets DATA end the batch; its reply is checked before any data is sent.
            match encode(&Command::Data, &peer, t.data_init, "DATA") {
                Ok(data) => commands.push(data),
                Err(error) => return Err(self.wire.protocol_error(error.to_string())),
            }
        }
        let replies = self.exchange(&commands, peer.pipelining).await?;
        let per_sent = self.finish(replies, sent, peer.pipelining, body).await?;
        Ok(merge(slots, per_sent))
    }

    /// Writes `commands` and reads a reply to each: in groups when pipelining, else one by
    /// one. Ends early after a refused MAIL (once what was written is answered) or a 421.
    async fn exchange(
        &mut self,
        commands: &[Outgoing],
        pipelining: bool,
    ) -> Result<Vec<RemoteReply>, DeliveryError> {
        let group = if pipelining { PIPELINE_GROUP } else { 1 };
        let mut replies = Vec::with_capacity(commands.len());
        let mut batch = Vec::new();
        for chunk in commands.chunks(group) {
            let Some(first) = chunk.first() else {
                continue;
            };
            batch.clear();
            for command in chunk {
                batch.extend_from_slice(&command.bytes);
            }
            self.wire.write(&batch, first.limit, first.stage).await?;
            for command in chunk {
                let reply = self.wire.read_reply(command.limit, command.stage).await?;
                let closing = self.note_closing(&reply);
                replies.push(reply);
                if closing {
                    return Ok(replies);
                }
            }
            if replies.first().is_some_and(|mail| !mail.is_positive()) {
                break;
            }
        }
        Ok(replies)
    }

    /// From the replies to MAIL, the RCPTs (and DATA when pipelined) to one final reply per
    /// recipient sent.
    async fn finish(
        &mut self,
        replies: Vec<RemoteReply>,
        sent: usize,
        pipelined: bool,
        body: &[u8],
    ) -> Result<Vec<RemoteReply>, DeliveryError> {
        let closing = replies.last().filter(|reply| reply.code == 421).cloned();
        let mut replies = replies.into_iter();
        let Some(mail) = replies.next() else {
            return Err(self.wire.protocol_error("no reply to MAIL".to_owned()));
        };
        let rcpts: Vec<RemoteReply> = replies.by_ref().take(sent).collect();
        let data = replies.next();
        if !mail.is_positive() {
            self.end_unused_data(data.as_ref()).await;
            return Ok(vec![mail; sent]);
        }
        if let Some(closing) = closing {
            // The server closed during the envelope: refusals stand, the rest get its 421.
            return Ok((0..sent)
                .map(|k| match rcpts.get(k) {
                    Some(reply) if !reply.is_positive() => reply.clone(),
                    _ => closing.clone(),
                })
                .collect());
        }
        if rcpts.len() != sent {
            return Err(self.wire.protocol_error("too few RCPT replies".to_owned()));
        }
        let accepted: Vec<usize> = (0..sent).filter(|&k| rcpts[k].is_positive()).collect();
        let mut finals = rcpts;
        if accepted.is_empty() {
            self.end_unused_data(data.as_ref()).await;
            self.reset_quietly().await;
            return Ok(finals);
        }
        let data = match data {
            Some(data) => data,
            None if pipelined => {
                return Err(self.wire.protocol_error("no reply to DATA".to_owned()));
            }
            None => {
                let (peer, limit) = (&self.capabilities, self.timeouts.data_init);
                self.wire
                    .command(&Command::Data, peer, limit, "DATA")
                    .await?
            }
        };
        if data.code != 354 {
            if !self.note_closing(&data) {
                self.reset_quietly().await;
            }
            for &k in &accepted {
                finals[k] = data.clone();
            }
            return Ok(finals);
        }
        self.write_body(body).await?;
        let limit = self.timeouts.data_end;
        match self.protocol {
            Protocol::Smtp => {
                let end = self.wire.read_reply(limit, "DATA end").await?;
                self.note_closing(&end);
                for &k in &accepted {
                    finals[k] = end.clone();
                }
            }
            Protocol::Lmtp => {
                let mut closing: Option<RemoteReply> = None;
                for &k in &accepted {
                    let reply = match &closing {
                        Some(reply) => reply.clone(),
                        None => self.wire.read_reply(limit, "DATA end").await?,
                    };
                    if self.note_closing(&reply) {
                        closing = Some(reply.clone());
                    }
                    finals[k] = reply;
                }
            }
        }
        Ok(finals)
    }
}

impl Connection {
    /// A 421 means the server is closing the connection (RFC 5321 3.8): nothing more will be
    /// answered, so the connection is marked unusable. Returns whether it was one.
    fn note_closing(&mut self, reply: &RemoteReply) -> bool {
        if reply.code != 421 {
            return false;
        }
        let host = self.wire.host().to_owned();
        let reason = format!("the server is closing the connection: {reply}");
        self.wire
            .fail(DeliveryError::ConnectionLost { host, reason });
        true
    }

    /// RSET that ends a transaction without data. A failure marks the connection unusable,
    /// which the caller learns at its next command; the replies already read still stand.
    async fn reset_quietly(&mut self) {
        let _ = self.reset().await;
    }
}

/// A command as bytes, with its reply timeout.
fn encode(
    command: &Command<'_>,
    peer: &Capabilities,
    limit: Duration,
    stage: &'static str,
) -> Result<Outgoing, CommandError> {
    let mut bytes = Vec::with_capacity(64);
    command.write(peer, &mut bytes)?;
    Ok(Outgoing {
        bytes,
        limit,
        stage,
    })
}

/// Recipients refused before sending keep their refusal; the others take the replies for the
/// recipients sent, in order.
fn merge(slots: Vec<Option<RemoteReply>>, per_sent: Vec<RemoteReply>) -> Vec<RemoteReply> {
    let mut per_sent = per_sent.into_iter();
    slots
        .into_iter()
        .filter_map(|slot| slot.or_else(|| per_sent.next()))
        .collect()
}
