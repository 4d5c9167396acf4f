//! How long a client may take over one record: a command line, a line of message content, or a
//! good run of BDAT octets (Postfix's `smtpd_per_record_deadline`). The idle timeout alone
//! restarts with every read, so a client dribbling a byte at a time could hold a session
//! forever; this deadline restarts only when the client's turn begins (we replied) or a record
//! was finished, so the same client is cut off one idle timeout after its last whole line.

use std::time::Duration;

use tokio::time::Instant;

/// Octets without a line end that count as a finished record (BDAT content has no lines).
const RUN: usize = 1024;

pub(crate) struct RecordDeadline {
    limit: Duration,
    at: Instant,
    /// Octets received since the deadline last restarted, when none of them ended a line.
    run: usize,
}

impl RecordDeadline {
    pub(crate) fn new(limit: Duration) -> Self {
        Self {
            limit,
            at: Instant::now() + limit,
            run: 0,
        }
    }

    /// The client's turn begins: a whole record's time again.
    pub(crate) fn restart(&mut self) {
        self.at = Instant::now() + self.limit;
        self.run = 0;
    }

    /// `bytes` arrived: a finished line, or a run of octets, earns a fresh deadline.
    pub(crate) fn received(&mut self, bytes: &[u8]) {
        self.run += bytes.len();
        if self.run >= RUN || bytes.contains(&b'\n') {
            self.restart();
        }
    }

    pub(crate) fn at(&self) -> Instant {
        self.at
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn partial_lines_do_not_move_the_deadline_and_line_ends_do() {
        let mut deadline = RecordDeadline::new(Duration::from_secs(10));
        let first = deadline.at();
        tokio::time::advance(Duration::from_secs(4)).await;
        deadline.received(b"EH");
        assert_eq!(deadline.at(), first, "a dribble earns nothing");
        deadline.received(b"LO x\r\n");
        assert_eq!(deadline.at(), first + Duration::from_secs(4));
        tokio::time::advance(Duration::from_secs(1)).await;
        deadline.received(&[b'x'; RUN]);
        assert_eq!(
            deadline.at(),
            first + Duration::from_secs(5),
            "a run of octets counts"
        );
    }
}
