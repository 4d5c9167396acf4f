//! The delivery side of the queue: recipient jobs claimed under a lease, finished with an
//! attempt record, and the delivery status notifications they owe.
//!
//! Contract of [`PgJobStore`]:
//! - A job is *claimable* when its status is `queued`, `deferred` or `leased` and its
//!   `next_attempt_at` has come. Claiming sets `leased`, the owner, and pushes `next_attempt_at`
//!   to the lease expiry in the same statement, so a worker that dies leaves jobs that become
//!   claimable again when the lease runs out: there is no moment when a job is neither leased nor
//!   claimable. `FOR UPDATE SKIP LOCKED` keeps concurrent claimers from waiting on each other or
//!   taking the same job.
//! - [`PgJobStore::renew_leases`] pushes forward the leases of the jobs a worker is still working
//!   on; a live worker calls it well within the lease time, so those are never claimed twice in
//!   normal operation, and a job it gave up on becomes due when its lease runs out.
//! - [`PgJobStore::finish`] records the outcome and the attempt in one statement, and only if the
//!   caller still holds the lease (`Ok(false)` otherwise: another worker has the job now).
//! - [`PgJobStore::release`] hands unfinished jobs back (shutdown), due at once.
//! - DSNs: a finished job may owe its envelope sender a notification (`dsn_pending`).
//!   [`PgJobStore::next_dsn_batch`] locks one message whose owed notifications are ready and
//!   [`DsnBatch::commit`] queues the notification message and clears what it covers in one
//!   transaction, so each notification is queued exactly once.

mod batch;
mod pg;

use std::str::FromStr;

use sqlx::Row;
use sqlx::postgres::PgRow;
use tern_smtp::{Body, Notify, Ret};

use super::id::QueueId;
use time::OffsetDateTime;

pub use batch::{FinishBatcher, FinishLoop, Recording};
pub use pg::{DsnBatch, PgJobStore};

/// What names one recipient job: its id, and its message's, which says the partition (the day)
/// it lives in, so a statement that is handed keys reads one partition per job, not every day's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct JobKey {
    pub id: i64,
    pub message_id: QueueId,
}

impl JobKey {
    /// `keys` as the two arrays the statements bind.
    pub(crate) fn columns(keys: &[JobKey]) -> (Vec<i64>, Vec<QueueId>) {
        keys.iter().map(|key| (key.id, key.message_id)).unzip()
    }
}

/// A recipient job as a worker holds it after claiming.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimedJob {
    pub id: i64,
    pub message_id: QueueId,
    pub rcpt_index: i32,
    pub recipient: String,
    /// Lowercased domain to route on; empty for bare `postmaster`.
    pub domain: String,
    pub dsn_notify: Option<Notify>,
    pub dsn_orcpt: Option<String>,
    /// Attempts made before this one.
    pub attempts: i32,
    /// The job was still leased to someone whose lease had run out: a crash recovery.
    pub lease_expired: bool,
}

impl ClaimedJob {
    pub fn key(&self) -> JobKey {
        JobKey {
            id: self.id,
            message_id: self.message_id,
        }
    }
}

/// A queued message: envelope and body, as a worker needs them for delivery and DSNs.
#[derive(Debug, Clone)]
pub struct StoredMessage {
    pub id: QueueId,
    pub received_at: OffsetDateTime,
    /// `''` is the null reverse-path.
    pub mail_from: String,
    pub body_type: Body,
    pub smtputf8: bool,
    pub dsn_ret: Option<Ret>,
    pub dsn_envid: Option<String>,
    /// The whole message, or for one larger than [`WHOLE_BODY_UP_TO`] loaded with others, its
    /// first [`BODY_HEAD`] bytes (the header section, for logs and traces): see
    /// [`StoredMessage::is_whole`] and [`PgJobStore::load_whole`].
    pub body: Vec<u8>,
    /// The stored body's length in bytes.
    pub size: u64,
    /// `messages.trace_context`: the trace each delivery attempt joins, as stored (see
    /// [`StoredMessage::trace_context`]).
    pub stored_trace_context: Option<String>,
}

/// Bodies up to this size are loaded with the rest of a delivery group's messages; larger ones
/// one at a time, when they are sent, so a group of ten 25 MB messages is not held at once.
pub const WHOLE_BODY_UP_TO: u64 = 1024 * 1024;
/// How much of a larger body comes with the group: enough for its header section.
pub const BODY_HEAD: u64 = 64 * 1024;

impl StoredMessage {
    /// Whether `body` is all of it (not only the head of a large message).
    pub fn is_whole(&self) -> bool {
        self.body.len() as u64 == self.size
    }

    /// Everything but the body.
    pub(super) fn clone_envelope(&self) -> StoredMessage {
        StoredMessage {
            id: self.id,
            received_at: self.received_at,
            mail_from: self.mail_from.clone(),
            body_type: self.body_type,
            smtputf8: self.smtputf8,
            dsn_ret: self.dsn_ret,
            dsn_envid: self.dsn_envid.clone(),
            body: Vec::new(),
            size: 0,
            stored_trace_context: self.stored_trace_context.clone(),
        }
    }

    /// The trace of the transaction that accepted this message; `None` when it was accepted
    /// with tracing off (or the stored value is unreadable).
    pub fn trace_context(&self) -> Option<crate::telemetry::TraceContext> {
        self.stored_trace_context
            .as_deref()
            .and_then(crate::telemetry::TraceContext::from_stored)
    }
}

// The envelope values come back through their one text form (`tern_smtp`'s `FromStr`); the
// columns' CHECK constraints keep anything else out, so a decode error is a corrupt row.
impl<'r> sqlx::FromRow<'r, PgRow> for ClaimedJob {
    fn from_row(row: &'r PgRow) -> Result<Self, sqlx::Error> {
        Ok(ClaimedJob {
            id: row.try_get("id")?,
            message_id: row.try_get("message_id")?,
            rcpt_index: row.try_get("rcpt_index")?,
            recipient: row.try_get("recipient")?,
            domain: row.try_get("domain")?,
            dsn_notify: decode(row, "dsn_notify")?,
            dsn_orcpt: row.try_get("dsn_orcpt")?,
            attempts: row.try_get("attempts")?,
            lease_expired: row.try_get("lease_expired")?,
        })
    }
}

impl<'r> sqlx::FromRow<'r, PgRow> for StoredMessage {
    fn from_row(row: &'r PgRow) -> Result<Self, sqlx::Error> {
        Ok(StoredMessage {
            id: row.try_get("id")?,
            received_at: row.try_get("received_at")?,
            mail_from: row.try_get("mail_from")?,
            body_type: decode(row, "body_type")?.ok_or_else(|| sqlx::Error::ColumnDecode {
                index: "body_type".into(),
                source: "NULL".into(),
            })?,
            smtputf8: row.try_get("smtputf8")?,
            dsn_ret: decode(row, "dsn_ret")?,
            dsn_envid: row.try_get("dsn_envid")?,
            body: row.try_get("body")?,
            size: u64::try_from(row.try_get::<i64, _>("size")?).unwrap_or(0),
            stored_trace_context: row.try_get("trace_context")?,
        })
    }
}

/// A nullable text column as the value it names.
fn decode<T: FromStr>(row: &PgRow, column: &str) -> Result<Option<T>, sqlx::Error>
where
    T::Err: std::error::Error + Send + Sync + 'static,
{
    let text: Option<&str> = row.try_get(column)?;
    text.map(str::parse)
        .transpose()
        .map_err(|error| sqlx::Error::ColumnDecode {
            index: column.into(),
            source: Box::new(error),
        })
}

/// How an attempt ended for one recipient.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobState {
    Delivered,
    /// Try again at the given time.
    Deferred(OffsetDateTime),
    Bounced,
    /// Failed for longer than the queue lifetime.
    Expired,
}

impl JobState {
    fn as_str(self) -> &'static str {
        match self {
            JobState::Delivered => "delivered",
            JobState::Deferred(_) => "deferred",
            JobState::Bounced => "bounced",
            JobState::Expired => "expired",
        }
    }
}

/// The notification a recipient owes its sender after this attempt (RFC 3461 NOTIFY).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DsnOwed {
    Failed,
    /// Delivered to the final store (LMTP) and NOTIFY=SUCCESS.
    Delivered,
    /// Handed to a next hop without DSN support and NOTIFY=SUCCESS.
    Relayed,
}

impl DsnOwed {
    fn as_str(self) -> &'static str {
        match self {
            DsnOwed::Failed => "failed",
            DsnOwed::Delivered => "delivered",
            DsnOwed::Relayed => "relayed",
        }
    }

    fn parse(value: &str) -> Option<Self> {
        match value {
            "failed" => Some(DsnOwed::Failed),
            "delivered" => Some(DsnOwed::Delivered),
            "relayed" => Some(DsnOwed::Relayed),
            _ => None,
        }
    }
}

/// One finished attempt for one recipient.
#[derive(Debug, Clone)]
pub struct Finished<'a> {
    pub job: JobKey,
    pub state: JobState,
    /// RFC 3463 code.
    pub status: &'a str,
    /// The remote reply, or what went wrong locally.
    pub reply: &'a str,
    pub mx_host: Option<&'a str>,
    pub remote_ip: Option<std::net::IpAddr>,
    pub tls_version: Option<&'a str>,
    pub tls_cipher: Option<&'a str>,
    pub dsn: Option<DsnOwed>,
}

/// Outcomes as the finish statement takes them, a column each and owned, so that the outcomes
/// of several attempts can be gathered into one statement ([`FinishBatcher`]).
#[derive(Debug, Default)]
pub struct Outcomes {
    job_id: Vec<i64>,
    message_id: Vec<QueueId>,
    state: Vec<&'static str>,
    next_attempt_at: Vec<Option<OffsetDateTime>>,
    reply: Vec<String>,
    status: Vec<String>,
    mx_host: Vec<Option<String>>,
    dsn: Vec<Option<&'static str>>,
    remote_ip: Vec<Option<ipnet::IpNet>>,
    tls_version: Vec<Option<String>>,
    tls_cipher: Vec<Option<String>>,
}

impl Outcomes {
    pub fn push(&mut self, outcome: &Finished<'_>) {
        self.job_id.push(outcome.job.id);
        self.message_id.push(outcome.job.message_id);
        self.state.push(outcome.state.as_str());
        self.next_attempt_at.push(match outcome.state {
            JobState::Deferred(at) => Some(at),
            _ => None,
        });
        self.reply.push(outcome.reply.to_owned());
        self.status.push(outcome.status.to_owned());
        self.mx_host.push(outcome.mx_host.map(str::to_owned));
        self.dsn.push(outcome.dsn.map(DsnOwed::as_str));
        self.remote_ip
            .push(outcome.remote_ip.map(ipnet::IpNet::from));
        self.tls_version
            .push(outcome.tls_version.map(str::to_owned));
        self.tls_cipher.push(outcome.tls_cipher.map(str::to_owned));
    }

    /// Moves every outcome of `other` to the end of these.
    pub fn append(&mut self, other: &mut Outcomes) {
        self.job_id.append(&mut other.job_id);
        self.message_id.append(&mut other.message_id);
        self.state.append(&mut other.state);
        self.next_attempt_at.append(&mut other.next_attempt_at);
        self.reply.append(&mut other.reply);
        self.status.append(&mut other.status);
        self.mx_host.append(&mut other.mx_host);
        self.dsn.append(&mut other.dsn);
        self.remote_ip.append(&mut other.remote_ip);
        self.tls_version.append(&mut other.tls_version);
        self.tls_cipher.append(&mut other.tls_cipher);
    }

    pub fn len(&self) -> usize {
        self.job_id.len()
    }

    pub fn is_empty(&self) -> bool {
        self.job_id.is_empty()
    }

    pub fn job_ids(&self) -> &[i64] {
        &self.job_id
    }
}

impl From<&[Finished<'_>]> for Outcomes {
    fn from(outcomes: &[Finished<'_>]) -> Self {
        let mut columns = Outcomes::default();
        for outcome in outcomes {
            columns.push(outcome);
        }
        columns
    }
}

/// A recipient whose notification is owed, as [`DsnBatch`] lists them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OwedDsn {
    pub job_id: i64,
    pub recipient: String,
    pub dsn_orcpt: Option<String>,
    pub kind: DsnOwed,
    pub status: String,
    pub last_reply: Option<String>,
    pub remote_mta: Option<String>,
    pub updated_at: OffsetDateTime,
}
