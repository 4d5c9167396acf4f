//! The troubleshooting questions the admin API asks of the ingress pods, and their answers.
//!
//! `POST /v1/troubleshoot/policy` says what every check would decide about a client, a sender,
//! recipients and optionally a message, without receiving mail or changing any state. The API
//! does not judge itself: it asks an ingress pod over NATS (request and reply, one pod of the
//! queue group answers), so the answer is what a pod with its settings and its live policy
//! decides, DNS answers included.

use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use crate::checks::ListenerKind;

/// The NATS subject of policy questions, under the installation's prefix.
pub fn policy_subject(prefix: &str) -> String {
    format!("{prefix}.troubleshoot.policy")
}

/// The queue group of the ingress pods answering them: one answers each question.
pub const ANSWERING_GROUP: &str = "ingress";

/// What a client would do in a session on a listener (port 25 unless `listener` says otherwise;
/// with `login`, after authenticating).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyQuestion {
    pub client: IpAddr,
    pub helo: String,
    /// The envelope sender; `""` for the null sender `<>`.
    pub sender: String,
    pub recipients: Vec<String>,
    /// The message (header and body), for the end-of-data checks.
    #[serde(default)]
    pub message: Option<String>,
    /// The SMTP AUTH login the client would have authenticated as, if any.
    #[serde(default)]
    pub login: Option<String>,
    /// The listener the session would come in on.
    #[serde(default)]
    pub listener: ListenerKind,
}

/// How the session would end up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    /// Every step passes.
    Accept,
    /// A step refuses for good (5xx).
    Reject,
    /// A step refuses for now (4xx).
    Defer,
}

/// One check's word.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PolicyStep {
    /// `connect`, `helo`, `mail`, `rcpt` or `data`.
    pub stage: String,
    /// The check: `blocklist`, `dnsbl`, `spf`, `relay`, `greylist`, `dkim`, …
    pub check: String,
    /// What it found: `pass`, `listed`, `fail`, `skipped`, …
    pub result: String,
    /// The reply a session would get, when the check refuses.
    pub reply: Option<String>,
    /// Why, and what DNS said.
    pub detail: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PolicyAnswer {
    /// The pod that answered (its host name).
    pub pod: String,
    /// The control-plane revision it judged by.
    pub revision: i64,
    pub outcome: Outcome,
    pub steps: Vec<PolicyStep>,
}

/// A request the pod could not take.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PolicyRefusal {
    /// The field that is wrong.
    pub field: String,
    pub reason: String,
}

/// What a pod replies: an answer, or why it could not answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PolicyReply {
    Answer(PolicyAnswer),
    Refused(PolicyRefusal),
}

/// The NATS subject where the API asks the ingress pods to transcribe sessions (every pod
/// hears every request).
pub fn smtp_watch_subject(prefix: &str) -> String {
    format!("{prefix}.troubleshoot.smtp.watch")
}

/// The NATS subject one watch's transcript lines go to.
pub fn smtp_transcript_subject(prefix: &str, watch: &str) -> String {
    format!("{prefix}.troubleshoot.smtp.lines.{watch}")
}

/// "Transcribe sessions from `network` to watch `id` for the next `seconds`": renewed by the API
/// while its stream is open, so a pod stops on its own once nobody listens.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SmtpWatch {
    /// Letters and digits only: it becomes part of a subject.
    pub id: String,
    pub network: ipnet::IpNet,
    pub seconds: u32,
}

/// Who wrote a transcript line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    /// What the client sent (AUTH exchanges and message content redacted).
    Client,
    /// What the pod replied.
    Server,
    /// Something that happened: the session began or ended, TLS started.
    Note,
}

/// One line of a live transcript.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TranscriptLine {
    /// The pod (its host name) and the session on it.
    pub pod: String,
    pub session: String,
    pub client: IpAddr,
    pub direction: Direction,
    pub text: String,
}
