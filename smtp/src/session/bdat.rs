//! BDAT (RFC 3030): chunks of exactly the announced size, raw octets with
//! no dot-stuffing and no line rules.

use super::{Mode, Session, Step};
use crate::Reply;
use crate::body::BoundedBody;
use crate::command;

/// A BDAT chunk being read.
#[derive(Debug)]
pub(super) struct Chunk {
    size: u64,
    remaining: u64,
    last: bool,
    /// Set when the chunk is refused up front; its octets are still read
    /// so that they are not taken for commands.
    refusal: Option<Reply>,
}

impl Session {
    /// Switches to chunk mode and returns a placeholder: the caller goes on
    /// to read the chunk, whose end produces the real reply. Only a syntax
    /// error, where the chunk size is unknown, is answered at once.
    pub(super) fn bdat(&mut self, args: &str) -> Step {
        let (size, last) = match command::parse_bdat(args) {
            Ok(parsed) => parsed,
            Err(error) => return self.answer(error.reply()),
        };
        let max_size = self.config.max_message_size;
        let refusal = match self.txn.as_mut() {
            None => Some(Reply::need_mail()),
            Some(txn) if txn.recipients.is_empty() => Some(Reply::no_valid_recipients()),
            Some(txn) => {
                let body = txn.chunks.get_or_insert_with(|| BoundedBody::new(max_size));
                if body.would_overflow(size) {
                    body.overflow();
                }
                None
            }
        };
        self.mode = Mode::Bdat(Chunk {
            size,
            remaining: size,
            last,
            refusal,
        });
        Step::NeedMore
    }

    pub(super) fn process_chunk(&mut self, input: &[u8]) -> (usize, Step) {
        let Mode::Bdat(chunk) = &mut self.mode else {
            return (0, Step::NeedMore);
        };
        let take = usize::try_from(chunk.remaining).map_or(input.len(), |r| r.min(input.len()));
        if chunk.refusal.is_none()
            && let Some(body) = self.txn.as_mut().and_then(|t| t.chunks.as_mut())
        {
            body.push(&input[..take]);
        }
        chunk.remaining -= take as u64;
        if chunk.remaining > 0 {
            return (take, Step::NeedMore);
        }
        let Mode::Bdat(chunk) = std::mem::replace(&mut self.mode, Mode::Command) else {
            return (take, Step::NeedMore);
        };
        (take, self.finish_chunk(chunk))
    }

    fn finish_chunk(&mut self, chunk: Chunk) -> Step {
        if let Some(refusal) = chunk.refusal {
            return self.answer(refusal);
        }
        let body = self.txn.as_mut().and_then(|t| t.chunks.take());
        let Some(body) = body else {
            return self.answer(Reply::need_mail());
        };
        if body.overflowed() {
            self.txn = None;
            return self.answer(Reply::size_exceeded());
        }
        if chunk.last {
            return self.deliver(body.into_bytes(), true);
        }
        if let Some(txn) = self.txn.as_mut() {
            txn.chunks = Some(body);
        }
        Step::Reply(Reply::new(
            250,
            "2.0.0",
            format!("{} octets received", chunk.size),
        ))
    }
}
