//! Looking into the queue: the summary by status and destination (Postfix's `qshape`, KumoMTA's
//! `queue-summary`), recipient jobs and messages by filter, one message's whole story, and its
//! stored bytes. Read-only; pages are keyset pages, so rows inserted between two pages are
//! neither skipped nor repeated.

use std::collections::BTreeMap;
use std::net::IpAddr;

use sqlx::PgPool;
use time::OffsetDateTime;

use super::status::JobStatus;
use super::{QueueError, QueueId};

/// Which jobs a listing or a bulk action covers; `None` fields do not filter.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct JobFilter {
    pub status: Option<JobStatus>,
    /// Lower-cased destination domain.
    pub domain: Option<String>,
    /// Envelope sender (`""` for `<>`), compared case-insensitively.
    pub sender: Option<String>,
    pub recipient: Option<String>,
    pub received_after: Option<OffsetDateTime>,
    pub received_before: Option<OffsetDateTime>,
    pub message: Option<QueueId>,
}

/// The filter as the nullable parameters `$1`–`$7` of [`FILTER_SQL`].
pub(crate) const FILTER_SQL: &str = "
    ($1::text IS NULL OR j.status = $1)
AND ($2::text IS NULL OR j.domain = $2)
AND ($3::text IS NULL OR lower(m.mail_from) = lower($3))
AND ($4::text IS NULL OR lower(j.recipient) = lower($4))
AND ($5::timestamptz IS NULL OR m.received_at >= $5)
AND ($6::timestamptz IS NULL OR m.received_at < $6)
AND ($7::uuid IS NULL OR j.message_id = $7)";

pub(crate) type FilterQuery<'q, O> =
    sqlx::query::QueryAs<'q, sqlx::Postgres, O, sqlx::postgres::PgArguments>;

impl JobFilter {
    pub(crate) fn bind<'q, O>(&'q self, query: FilterQuery<'q, O>) -> FilterQuery<'q, O> {
        query
            .bind(self.status.map(JobStatus::as_str))
            .bind(self.domain.as_deref())
            .bind(self.sender.as_deref())
            .bind(self.recipient.as_deref())
            .bind(self.received_after)
            .bind(self.received_before)
            .bind(self.message)
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct QueueSummary {
    /// Every status with its job count (zero included).
    pub by_status: BTreeMap<&'static str, i64>,
    /// Destinations with unfinished jobs, most jobs first.
    pub destinations: Vec<DestinationSummary>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct DestinationSummary {
    pub domain: String,
    pub queued: i64,
    pub deferred: i64,
    pub leased: i64,
    pub held: i64,
    /// How long the oldest due job has waited past its due time; `None` when none is due.
    pub oldest_due_seconds: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct JobRow {
    pub id: i64,
    pub message_id: QueueId,
    pub recipient: String,
    pub domain: String,
    #[sqlx(try_from = "String")]
    pub status: JobStatusColumn,
    pub attempts: i32,
    pub next_attempt_at: OffsetDateTime,
    pub last_status: Option<String>,
    pub last_reply: Option<String>,
    pub mail_from: String,
    pub received_at: OffsetDateTime,
}

/// `jobs.status` read back as a [`JobStatus`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JobStatusColumn(pub JobStatus);

impl TryFrom<String> for JobStatusColumn {
    type Error = String;
    fn try_from(text: String) -> Result<Self, String> {
        text.parse().map(JobStatusColumn)
    }
}

#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct MessageRow {
    pub id: QueueId,
    pub received_at: OffsetDateTime,
    pub mail_from: String,
    pub header_message_id: Option<String>,
    pub size: i64,
    pub recipients: i64,
}

/// Which messages a search covers.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MessageFilter {
    pub header_message_id: Option<String>,
    pub sender: Option<String>,
    pub recipient: Option<String>,
    pub received_after: Option<OffsetDateTime>,
    pub received_before: Option<OffsetDateTime>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct MessageDetail {
    pub id: QueueId,
    pub received_at: OffsetDateTime,
    pub mail_from: String,
    pub helo: String,
    pub client_ip: IpAddr,
    pub protocol: String,
    pub body_type: String,
    pub smtputf8: bool,
    pub size: i64,
    pub header_message_id: Option<String>,
    /// W3C traceparent of the accepting transaction, when tracing was on.
    pub trace_id: Option<String>,
    /// Header fields of the stored message (ours first), unfolded, in order.
    pub headers: Vec<(String, String)>,
    pub recipients: Vec<JobRow>,
    pub attempts: Vec<AttemptRow>,
    /// Notifications this message caused (queued through the queue as messages of their own).
    pub notifications: Vec<QueueId>,
}

#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct AttemptRow {
    pub job_id: i64,
    pub attempted_at: OffsetDateTime,
    pub worker: String,
    pub outcome: String,
    pub status: String,
    pub reply: String,
    pub mx_host: Option<String>,
    pub remote_ip: Option<ipnet::IpNet>,
    pub tls_version: Option<String>,
    pub tls_cipher: Option<String>,
}

/// The queue's read side.
#[derive(Clone)]
pub struct QueueInspector {
    pool: PgPool,
}

impl QueueInspector {
    pub fn new(pool: PgPool) -> Self {
        Self { pool }
    }

    pub async fn summary(&self) -> Result<QueueSummary, QueueError> {
        let counts: Vec<(String, i64)> =
            sqlx::query_as("SELECT status, count(*) FROM jobs GROUP BY status")
                .fetch_all(&self.pool)
                .await?;
        let mut by_status: BTreeMap<&'static str, i64> =
            JobStatus::ALL.iter().map(|s| (s.as_str(), 0)).collect();
        for (status, count) in counts {
            if let Ok(status) = status.parse::<JobStatus>() {
                by_status.insert(status.as_str(), count);
            }
        }
        type Row = (String, i64, i64, i64, i64, Option<f64>);
        let rows: Vec<Row> = sqlx::query_as(
            "SELECT domain,
                    count(*) FILTER (WHERE status = 'queued'),
                    count(*) FILTER (WHERE status = 'deferred'),
                    count(*) FILTER (WHERE status = 'leased'),
                    count(*) FILTER (WHERE status = 'held'),
                    extract(epoch FROM now() - min(next_attempt_at)
                        FILTER (WHERE status IN ('queued', 'deferred') AND next_attempt_at <= now()))::float8
               FROM jobs WHERE status IN ('queued', 'deferred', 'leased', 'held')
              GROUP BY domain ORDER BY count(*) DESC, domain",
        )
        .fetch_all(&self.pool)
        .await?;
        let destinations = rows
            .into_iter()
            .map(
                |(domain, queued, deferred, leased, held, oldest_due_seconds)| DestinationSummary {
                    domain,
                    queued,
                    deferred,
                    leased,
                    held,
                    oldest_due_seconds,
                },
            )
            .collect();
        Ok(QueueSummary {
            by_status,
            destinations,
        })
    }

    /// Jobs matching `filter` with ids above `after`, by id.
    pub async fn jobs(
        &self,
        filter: &JobFilter,
        after: i64,
        limit: u32,
    ) -> Result<Vec<JobRow>, QueueError> {
        let sql = format!(
            "SELECT j.id, j.message_id, j.recipient, j.domain, j.status, j.attempts,
                    j.next_attempt_at, j.last_status, j.last_reply, m.mail_from, m.received_at
               FROM jobs j JOIN messages m ON m.id = j.message_id
              WHERE {FILTER_SQL} AND j.id > $8
              ORDER BY j.id LIMIT $9"
        );
        filter
            .bind(sqlx::query_as(sqlx::AssertSqlSafe(sql)))
            .bind(after)
            .bind(i64::from(limit))
            .fetch_all(&self.pool)
            .await
            .map_err(QueueError::from)
    }

    /// Messages matching `filter` with ids above `after` (UUIDv7: in arrival order).
    pub async fn messages(
        &self,
        filter: &MessageFilter,
        after: QueueId,
        limit: u32,
    ) -> Result<Vec<MessageRow>, QueueError> {
        sqlx::query_as(
            "SELECT m.id, m.received_at, m.mail_from, m.header_message_id, m.size,
                    (SELECT count(*) FROM jobs j WHERE j.message_id = m.id) AS recipients
               FROM messages m
              WHERE ($1::text IS NULL OR m.header_message_id = $1)
                AND ($2::text IS NULL OR lower(m.mail_from) = lower($2))
                AND ($3::text IS NULL OR EXISTS (SELECT 1 FROM jobs j WHERE j.message_id = m.id
                                                   AND lower(j.recipient) = lower($3)))
                AND ($4::timestamptz IS NULL OR m.received_at >= $4)
                AND ($5::timestamptz IS NULL OR m.received_at < $5)
                AND m.id > $6
              ORDER BY m.id LIMIT $7",
        )
        .bind(filter.header_message_id.as_deref())
        .bind(filter.sender.as_deref())
        .bind(filter.recipient.as_deref())
        .bind(filter.received_after)
        .bind(filter.received_before)
        .bind(after)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await
        .map_err(QueueError::from)
    }

    pub async fn message(&self, id: QueueId) -> Result<Option<MessageDetail>, QueueError> {
        type Row = (
            QueueId,
            OffsetDateTime,
            String,
            String,
            ipnet::IpNet,
            String,
            String,
            bool,
            i64,
            Option<String>,
            Option<String>,
        );
        let row: Option<Row> = sqlx::query_as(
            "SELECT id, received_at, mail_from, helo, client_ip, protocol, body_type, smtputf8,
                    size, header_message_id, trace_context
               FROM messages WHERE id = $1",
        )
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        let Some(row) = row else { return Ok(None) };
        let header: Option<Vec<u8>> = sqlx::query_scalar(
            // The header section is all a detail view shows; the body stays in the database.
            "SELECT substring(body FROM 1 FOR 65536) FROM messages WHERE id = $1",
        )
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        let filter = JobFilter {
            message: Some(id),
            ..JobFilter::default()
        };
        let recipients = self.jobs(&filter, 0, 10_000).await?;
        let attempts: Vec<AttemptRow> = sqlx::query_as(
            "SELECT job_id, attempted_at, worker, outcome, status, reply, mx_host, remote_ip,
                    tls_version, tls_cipher
               FROM attempts WHERE message_id = $1 ORDER BY id",
        )
        .bind(id)
        .fetch_all(&self.pool)
        .await?;
        let notifications: Vec<QueueId> =
            sqlx::query_scalar("SELECT id FROM messages WHERE reports_on = $1 ORDER BY id")
                .bind(id)
                .fetch_all(&self.pool)
                .await?;
        let (id, received_at, mail_from, helo, client_ip, protocol, body_type, smtputf8) =
            (row.0, row.1, row.2, row.3, row.4, row.5, row.6, row.7);
        Ok(Some(MessageDetail {
            id,
            received_at,
            mail_from,
            helo,
            client_ip: client_ip.addr(),
            protocol,
            body_type,
            smtputf8,
            size: row.8,
            header_message_id: row.9,
            trace_id: row
                .10
                .as_deref()
                .and_then(|stored| stored.split('-').nth(1).map(str::to_owned)),
            headers: header
                .map(|h| tern_smtp::header::fields(&h))
                .unwrap_or_default(),
            recipients,
            attempts,
            notifications,
        }))
    }

    /// The stored message's size, or `None` when there is no such message.
    pub async fn raw_size(&self, id: QueueId) -> Result<Option<i64>, QueueError> {
        sqlx::query_scalar("SELECT size FROM messages WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await
            .map_err(QueueError::from)
    }

    /// The stored message: our `Received:` field and the bytes as received.
    pub async fn raw(&self, id: QueueId) -> Result<Option<Vec<u8>>, QueueError> {
        sqlx::query_scalar("SELECT body FROM messages WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await
            .map_err(QueueError::from)
    }
}
