//! The message itself: dot-stuffed and written in blocks after a 354.

use tern_smtp::client::{DotStuffer, RemoteReply};

use super::Connection;
use crate::delivery::DeliveryError;
use crate::delivery::route::Protocol;

/// Message bytes dot-stuffed and written at a time: each write gets the data-block timeout
/// (RFC 5321 4.5.3.2.5), and a 25 MB body is never copied whole.
const DATA_BLOCK: usize = 64 * 1024;

impl Connection {
    /// Writes `body` dot-stuffed and closed with `.` CRLF.
    pub(super) async fn write_body(&mut self, body: &[u8]) -> Result<(), DeliveryError> {
        let limit = self.timeouts.data_block;
        let mut stuffer = DotStuffer::new();
        let mut block = Vec::with_capacity(DATA_BLOCK.min(body.len()) + 8);
        let mut pieces = body.chunks(DATA_BLOCK).peekable();
        loop {
            block.clear();
            if let Some(piece) = pieces.next() {
                stuffer.push(piece, &mut block);
            }
            let last = pieces.peek().is_none();
            if last {
                std::mem::take(&mut stuffer).finish(&mut block);
            }
            self.wire.write(&block, limit, "DATA block").await?;
            if last {
                return Ok(());
            }
        }
    }

    /// A pipelined DATA that got 354 although no recipient was accepted: RFC 2920 3.1 says to
    /// end it with an empty message, which goes nowhere. SMTP answers it once; LMTP answers
    /// once per accepted recipient, which is never. Failures only mark the connection unusable.
    pub(super) async fn end_unused_data(&mut self, data: Option<&RemoteReply>) {
        if data.is_none_or(|data| data.code != 354) {
            return;
        }
        let mut end = Vec::new();
        DotStuffer::new().finish(&mut end);
        let block = self.timeouts.data_block;
        if self.wire.write(&end, block, "DATA block").await.is_err() {
            return;
        }
        if self.protocol == Protocol::Smtp {
            let _ = self
                .wire
                .read_reply(self.timeouts.data_end, "DATA end")
                .await;
        }
    }
}
