//! Live protocol transcripts for `GET /v1/troubleshoot/smtp`: the API asks every pod to
//! transcribe the sessions of a client network ([`SmtpWatch`], renewed while its stream is
//! open), and each pod sends the lines of matching sessions to that watch's subject. A session
//! is matched when it starts. AUTH exchanges and message content never leave the pod: a line
//! says what was withheld instead.

use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt as _;
use tern_common::bus::Bus;
use tern_common::troubleshoot::{Direction, SmtpWatch, TranscriptLine};
use tern_smtp::Verb;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// The longest a watch lasts without being renewed, whatever it asks for.
const MAX_WATCH: Duration = Duration::from_secs(60);

/// The watches in force on this pod.
#[derive(Clone)]
pub(crate) struct SmtpWatches {
    bus: Bus,
    pod: String,
    watches: Arc<Mutex<Vec<(SmtpWatch, Instant)>>>,
}

impl SmtpWatches {
    pub(crate) fn new(bus: Bus, pod: String) -> Self {
        Self {
            bus,
            pod,
            watches: Arc::new(Mutex::new(Vec::new())),
        }
    }

    /// Takes watch requests until `stop`.
    pub(crate) async fn serve(self, stop: CancellationToken) {
        let mut requests = match self.bus.smtp_watches().await {
            Ok(requests) => requests,
            Err(error) => {
                tracing::warn!(%error, "SMTP transcript requests not taken on this pod");
                return;
            }
        };
        while let Some(message) = stop.run_until_cancelled(requests.next()).await.flatten() {
            match serde_json::from_slice::<SmtpWatch>(&message.payload) {
                Ok(watch) if watch.id.bytes().all(|b| b.is_ascii_alphanumeric()) => {
                    let until =
                        Instant::now() + Duration::from_secs(watch.seconds.into()).min(MAX_WATCH);
                    let mut watches = self.lock();
                    watches
                        .retain(|(known, until)| known.id != watch.id && *until > Instant::now());
                    watches.push((watch, until));
                }
                _ => tracing::debug!("an SMTP transcript request that does not parse; ignored"),
            }
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<(SmtpWatch, Instant)>> {
        self.watches
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// A transcript for a session from `client` starting now, if a watch asks for one.
    pub(crate) fn transcript(&self, client: IpAddr) -> Option<Transcript> {
        let now = Instant::now();
        let ids: Vec<String> = self
            .lock()
            .iter()
            .filter(|(watch, until)| *until > now && watch.network.contains(&client))
            .map(|(watch, _)| watch.id.clone())
            .collect();
        if ids.is_empty() {
            return None;
        }
        // One task per session sends its lines in order.
        let (sender, mut lines) = mpsc::unbounded_channel::<TranscriptLine>();
        let bus = self.bus.clone();
        tokio::spawn(async move {
            while let Some(line) = lines.recv().await {
                for id in &ids {
                    bus.publish_transcript_line(id, &line).await;
                }
            }
        });
        Some(Transcript {
            sender,
            pod: self.pod.clone(),
            session: uuid::Uuid::now_v7().simple().to_string(),
            client,
        })
    }
}

/// One session's transcript.
pub(crate) struct Transcript {
    sender: mpsc::UnboundedSender<TranscriptLine>,
    pod: String,
    session: String,
    client: IpAddr,
}

impl Drop for Transcript {
    fn drop(&mut self) {
        self.note("session closed");
    }
}

impl Transcript {
    fn send(&self, direction: Direction, text: String) {
        let _ = self.sender.send(TranscriptLine {
            pod: self.pod.clone(),
            session: self.session.clone(),
            client: self.client,
            direction,
            text,
        });
    }

    pub(crate) fn note(&self, text: impl Into<String>) {
        self.send(Direction::Note, text.into());
    }

    /// What the pod sent: every line of a reply.
    pub(crate) fn server(&self, reply: &[u8]) {
        for line in String::from_utf8_lossy(reply).lines() {
            self.send(Direction::Server, line.to_owned());
        }
    }

    /// What the client sent that the session consumed: `verb` when it was a command.
    pub(crate) fn client(&self, consumed: &[u8], verb: Option<Verb>) {
        if consumed.is_empty() {
            return;
        }
        self.send(Direction::Client, redacted(consumed, verb));
    }
}

/// A command line as sent, AUTH's credentials withheld; anything that is not a command line
/// (message content, AUTH responses) only by its size.
fn redacted(consumed: &[u8], verb: Option<Verb>) -> String {
    let line = String::from_utf8_lossy(consumed);
    let line = line.trim_end_matches(['\r', '\n']);
    match verb {
        Some(Verb::Auth) => {
            let mechanism = line.split_whitespace().nth(1).unwrap_or("");
            format!("AUTH {mechanism} [credentials withheld]")
        }
        Some(_) => line.to_owned(),
        None => format!(
            "[{} octets withheld: message content or an AUTH response]",
            consumed.len()
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::redacted;
    use tern_smtp::Verb;

    #[test]
    fn credentials_and_content_never_show() {
        assert_eq!(
            redacted(b"AUTH PLAIN AGFsaWNlAHNlY3JldA==\r\n", Some(Verb::Auth)),
            "AUTH PLAIN [credentials withheld]"
        );
        assert_eq!(
            redacted(b"MAIL FROM:<a@example.org>\r\n", Some(Verb::Mail)),
            "MAIL FROM:<a@example.org>"
        );
        let content = redacted(b"Subject: secret\r\n\r\nthe secret\r\n", None);
        assert!(!content.contains("secret"), "{content}");
        assert!(content.contains("31 octets"), "{content}");
    }
}
