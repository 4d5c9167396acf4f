//! [`PgJobStore`]: the job side of the queue on PostgreSQL.

use std::time::Duration;

use sqlx::{PgPool, Postgres, Transaction};
use time::OffsetDateTime;

use super::{
    BODY_HEAD, ClaimedJob, DsnOwed, Finished, JobKey, Outcomes, OwedDsn, StoredMessage,
    WHOLE_BODY_UP_TO,
};
use crate::queue::commit::{NewMessage, commit_query};
use crate::queue::{QueueError, QueueId};

/// Messages owing notifications that one poll considers, oldest first: the first of them with
/// no recipient in flight is the one reported on.
const OWED_CANDIDATES: i64 = 64;

#[derive(Clone)]
pub struct PgJobStore {
    pool: PgPool,
}

/// Due jobs, oldest first, leased in the statement that selects them. The predicate is the one
/// the `jobs_claimable` partial index is built for. A due job that is still `leased` is one whose
/// lease ran out (its worker died or stalled): the row says so, read before the update.
///
/// It runs with `enable_sort` off (see [`PgJobStore::claim`]): statistics taken while the queue
/// was empty show every index of unfinished jobs as empty, and with them the planner chose to
/// read every unfinished job through `jobs_domain_unfinished` and sort them, a plan every claim
/// of the next burst would have repeated.
const CLAIM_SQL: &str = "
WITH due AS (
    SELECT id, message_id, status = 'leased' AS lease_expired FROM jobs
     WHERE status IN ('queued', 'deferred', 'leased') AND next_attempt_at <= now()
     ORDER BY next_attempt_at
     LIMIT $3
     FOR UPDATE SKIP LOCKED
)
UPDATE jobs AS j
   SET status = 'leased', lease_owner = $1,
       lease_expires_at = now() + make_interval(secs => $2),
       next_attempt_at = now() + make_interval(secs => $2),
       updated_at = now()
  FROM due
 WHERE j.id = due.id AND j.message_id = due.message_id
RETURNING j.id, j.message_id, j.rcpt_index, j.recipient, j.domain, j.dsn_notify, j.dsn_orcpt, j.attempts,
          due.lease_expired";

/// Each job changes state and its attempt is recorded together, and only while the caller still
/// holds the lease: a worker that lost its lease must not overwrite the new owner's work. All
/// recipients of one transaction go in one statement, so one commit (one log flush) records them.
///
/// The jobs are found by primary key alone, whatever the statistics say. The lease check comes
/// with each outcome (`owner`, `held`) from a materialized CTE rather than as `j.lease_owner =
/// $1 AND j.status = 'leased'`: written that way it let the planner answer it from an index of
/// leased jobs that statistics taken while the queue was empty showed as empty, reading every
/// job the worker had leased and every dead entry of those it leased before. That plan, made
/// when a worker started on an idle queue, cost 60 ms a statement after 50 s of load and held
/// up the whole worker (`bench/README.md`, "Plans made on an empty queue").
const FINISH_SQL: &str = "
WITH outcome AS MATERIALIZED (
    SELECT o.*, $1::text AS owner, 'leased'::text AS held
      FROM unnest($2::bigint[], $3::uuid[], $4::text[], $5::timestamptz[], $6::text[],
                  $7::text[], $8::text[], $9::text[], $10::inet[], $11::text[], $12::text[])
        AS o (job_id, message_id, state, next_attempt_at, reply, status, mx_host, dsn,
              remote_ip, tls_version, tls_cipher)
),
done AS (
    UPDATE jobs AS j
       SET status = o.state, attempts = j.attempts + 1,
           next_attempt_at = COALESCE(o.next_attempt_at, now()),
           lease_owner = NULL, lease_expires_at = NULL,
           last_reply = o.reply, last_status = o.status, remote_mta = o.mx_host,
           dsn_pending = o.dsn, updated_at = now()
      FROM outcome AS o
     WHERE j.id = o.job_id AND j.message_id = o.message_id
       AND j.lease_owner = o.owner AND j.status = o.held
    RETURNING j.id, j.message_id, o.state, o.status, o.reply, o.mx_host, o.remote_ip,
              o.tls_version, o.tls_cipher
)
INSERT INTO attempts (job_id, message_id, worker, outcome, status, reply, mx_host, remote_ip,
                      tls_version, tls_cipher)
SELECT id, message_id, $1, state, status, reply, mx_host, remote_ip, tls_version, tls_cipher
  FROM done
RETURNING job_id";

impl PgJobStore {
    pub fn new(pool: PgPool) -> Self {
        Self { pool }
    }

    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// Leases up to `limit` due jobs to `owner` for `lease`, sorted by domain, then message, then
    /// recipient order, so a caller can hand each destination its share in one piece.
    pub async fn claim(
        &self,
        owner: &str,
        lease: Duration,
        limit: u32,
    ) -> Result<Vec<ClaimedJob>, QueueError> {
        // The one plan that stays cheap however many jobs wait walks `jobs_claimable` in order
        // and stops after `limit`; with sorting off the planner takes it whatever the
        // statistics say. For this transaction only: other statements may sort.
        let mut tx = self.pool.begin().await?;
        sqlx::query("SET LOCAL enable_sort = off")
            .execute(&mut *tx)
            .await?;
        let mut jobs: Vec<ClaimedJob> = sqlx::query_as(CLAIM_SQL)
            .bind(owner)
            .bind(lease.as_secs_f64())
            .bind(i64::from(limit))
            .fetch_all(&mut *tx)
            .await?;
        tx.commit().await?;
        jobs.sort_by(|a, b| {
            (&a.domain, a.message_id, a.rcpt_index).cmp(&(&b.domain, b.message_id, b.rcpt_index))
        });
        Ok(jobs)
    }

    /// Pushes the leases of `jobs` that `owner` still holds to `lease` from now, and no others:
    /// a job its worker gave up on (its outcome could not be recorded, its message could not be
    /// loaded) must become due when its lease ends, however long the worker lives. Returns how
    /// many leases were pushed; one whose row is locked at that moment is skipped.
    pub async fn renew_leases(
        &self,
        owner: &str,
        jobs: &[JobKey],
        lease: Duration,
    ) -> Result<u64, QueueError> {
        if jobs.is_empty() {
            return Ok(0);
        }
        let (ids, message_ids) = JobKey::columns(jobs);
        // A row locked right now is being finished (or acted on by an operator): waiting for
        // it could deadlock against the finishing statement, which locks its rows in another
        // order, and its lease needs no pushing. A lease skipped here is pushed by the next
        // renewal, a third of a lease later. The lease check travels with the ids, as in
        // `FINISH_SQL`, so the rows are found by primary key whatever the statistics say.
        let done = sqlx::query(
            "WITH held AS MATERIALIZED (
                 SELECT k.id, k.message_id, $1::text AS owner, 'leased'::text AS status
                   FROM unnest($3::bigint[], $4::uuid[]) AS k (id, message_id)
             ),
             mine AS (
                 SELECT j.id, j.message_id FROM jobs AS j
                   JOIN held AS h ON j.id = h.id AND j.message_id = h.message_id
                  WHERE j.lease_owner = h.owner AND j.status = h.status
                    FOR UPDATE OF j SKIP LOCKED
             )
             UPDATE jobs AS j
                SET lease_expires_at = now() + make_interval(secs => $2),
                    next_attempt_at = now() + make_interval(secs => $2)
               FROM mine
              WHERE j.id = mine.id AND j.message_id = mine.message_id",
        )
        .bind(owner)
        .bind(lease.as_secs_f64())
        .bind(ids)
        .bind(message_ids)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected())
    }

    /// Records the outcomes of one attempt. Returns how many were recorded: fewer than given
    /// when leases were lost (those jobs belong to another worker now and were left alone).
    pub async fn finish(&self, owner: &str, outcomes: &[Finished<'_>]) -> Result<u64, QueueError> {
        let recorded = self
            .finish_outcomes(owner, &Outcomes::from(outcomes))
            .await?;
        Ok(recorded.len() as u64)
    }

    /// Records `outcomes`, perhaps of many attempts, in one statement; returns the ids of the
    /// jobs recorded (a job whose lease was lost is left out).
    pub async fn finish_outcomes(
        &self,
        owner: &str,
        outcomes: &Outcomes,
    ) -> Result<Vec<i64>, QueueError> {
        sqlx::query_scalar(FINISH_SQL)
            .bind(owner)
            .bind(&outcomes.job_id)
            .bind(&outcomes.message_id)
            .bind(&outcomes.state)
            .bind(&outcomes.next_attempt_at)
            .bind(&outcomes.reply)
            .bind(&outcomes.status)
            .bind(&outcomes.mx_host)
            .bind(&outcomes.dsn)
            .bind(&outcomes.remote_ip)
            .bind(&outcomes.tls_version)
            .bind(&outcomes.tls_cipher)
            .fetch_all(&self.pool)
            .await
            .map_err(QueueError::from)
    }

    /// Hands `jobs` back without an attempt, due when the suspension of `domain` ends. The
    /// suspension is read (and locked against being lifted) in the same transaction: when it was
    /// lifted meanwhile, nothing changes and `None` says to deliver after all; when it is lifted
    /// later, lifting makes exactly these jobs due (they wait for its end to the microsecond).
    /// `Some(n)`: how many were held (a lease already lost is left to its new owner).
    pub async fn hold_for_suspension(
        &self,
        owner: &str,
        jobs: &[JobKey],
        domain: &str,
    ) -> Result<Option<u64>, QueueError> {
        let mut tx = self.pool.begin().await?;
        let until: Option<OffsetDateTime> = sqlx::query_scalar(
            "SELECT until FROM suspensions WHERE domain = $1 AND until > now() FOR SHARE",
        )
        .bind(domain)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(until) = until else {
            return Ok(None);
        };
        let done = postpone(&mut *tx, owner, jobs, until).await?;
        tx.commit().await?;
        Ok(Some(done))
    }

    /// Hands `owner`'s leased `jobs` back, due at `until`, without counting an attempt: a
    /// destination's message limit for this minute is spent.
    pub async fn postpone(
        &self,
        owner: &str,
        jobs: &[JobKey],
        until: OffsetDateTime,
    ) -> Result<u64, QueueError> {
        Ok(postpone(&self.pool, owner, jobs, until).await?)
    }

    /// Hands back every job `owner` still leases, due now (shutdown).
    pub async fn release(&self, owner: &str) -> Result<u64, QueueError> {
        let done = sqlx::query(
            "UPDATE jobs
                SET status = CASE WHEN attempts = 0 THEN 'queued' ELSE 'deferred' END,
                    lease_owner = NULL, lease_expires_at = NULL, next_attempt_at = now(),
                    updated_at = now()
              WHERE lease_owner = $1 AND status = 'leased'",
        )
        .bind(owner)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected())
    }

    /// The messages with these ids, in no particular order; missing ones are left out. A body
    /// over [`WHOLE_BODY_UP_TO`] comes as its first [`BODY_HEAD`] bytes: [`Self::load_whole`]
    /// reads the rest when the message is sent.
    pub async fn load_messages(&self, ids: &[QueueId]) -> Result<Vec<StoredMessage>, QueueError> {
        sqlx::query_as(
            "SELECT id, received_at, mail_from, body_type, smtputf8, dsn_ret, dsn_envid, size,
                    CASE WHEN size <= $2 THEN body ELSE substring(body FROM 1 FOR $3) END AS body,
                    trace_context
               FROM messages WHERE id = ANY($1)",
        )
        .bind(ids)
        .bind(i64::try_from(WHOLE_BODY_UP_TO).unwrap_or(i64::MAX))
        .bind(i32::try_from(BODY_HEAD).unwrap_or(i32::MAX))
        .fetch_all(&self.pool)
        .await
        .map_err(QueueError::from)
    }

    /// `message` with its whole body, read now when it came with only its head. `None`: the
    /// message is gone from the queue.
    pub async fn load_whole(
        &self,
        message: &StoredMessage,
    ) -> Result<Option<StoredMessage>, QueueError> {
        let body: Option<Vec<u8>> = sqlx::query_scalar("SELECT body FROM messages WHERE id = $1")
            .bind(message.id)
            .fetch_optional(&self.pool)
            .await?;
        Ok(body.map(|body| StoredMessage {
            size: body.len() as u64,
            body,
            ..message.clone_envelope()
        }))
    }

    /// Locks one message that owes notifications and has no recipient in flight, so recipients
    /// that failed in the same round share one DSN. `None`: nothing is owed now.
    pub async fn next_dsn_batch(&self) -> Result<Option<DsnBatch>, QueueError> {
        let mut tx = self.pool.begin().await?;
        // A notification is new mail: durable before it counts, whatever the pool's default.
        sqlx::query("SET LOCAL synchronous_commit = on")
            .execute(&mut *tx)
            .await?;
        // The candidates come from the small index of owed notifications, oldest message first,
        // and the messages by primary key. Written as `m.id IN (SELECT message_id FROM jobs
        // WHERE dsn_pending IS NOT NULL)` the planner was free to start from `messages`: with the
        // statistics of a new table it scanned every message per poll, and prepared when a worker
        // started on an empty queue, every leased job for each message too (10 s per poll with
        // 200,000 jobs queued, during which its snapshot kept PostgreSQL from pruning the claim
        // index). Planned afresh each time as well, so a table that has grown since the last
        // poll is not read as the empty one it was. A candidate with a recipient in flight waits;
        // `OWED_CANDIDATES` are looked at per poll.
        let message: Option<StoredMessage> = sqlx::query_as(
            "SELECT m.id, m.received_at, m.mail_from, m.body_type, m.smtputf8, m.dsn_ret,
                    m.dsn_envid, m.size, m.body, m.trace_context
               FROM messages m
              WHERE m.id = ANY (ARRAY(SELECT DISTINCT p.message_id FROM jobs p
                                       WHERE p.dsn_pending IS NOT NULL
                                       ORDER BY p.message_id
                                       LIMIT $1))
                AND NOT EXISTS (SELECT 1 FROM jobs l
                                 WHERE l.message_id = m.id AND l.status = 'leased')
              LIMIT 1
                FOR UPDATE OF m SKIP LOCKED",
        )
        .bind(OWED_CANDIDATES)
        .persistent(false)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(message) = message else {
            return Ok(None);
        };
        let rows: Vec<OwedRow> = sqlx::query_as(
            "SELECT id, recipient, dsn_orcpt, dsn_pending, COALESCE(last_status, '') AS last_status,
                    last_reply, remote_mta, updated_at
               FROM jobs WHERE message_id = $1 AND dsn_pending IS NOT NULL
              ORDER BY rcpt_index",
        )
        .bind(message.id)
        .fetch_all(&mut *tx)
        .await?;
        let owed = rows.into_iter().filter_map(OwedRow::into_owed).collect();
        Ok(Some(DsnBatch { tx, message, owed }))
    }
}

#[derive(sqlx::FromRow)]
struct OwedRow {
    id: i64,
    recipient: String,
    dsn_orcpt: Option<String>,
    dsn_pending: String,
    last_status: String,
    last_reply: Option<String>,
    remote_mta: Option<String>,
    updated_at: OffsetDateTime,
}

impl OwedRow {
    fn into_owed(self) -> Option<OwedDsn> {
        Some(OwedDsn {
            job_id: self.id,
            recipient: self.recipient,
            dsn_orcpt: self.dsn_orcpt,
            kind: DsnOwed::parse(&self.dsn_pending)?,
            status: self.last_status,
            last_reply: self.last_reply,
            remote_mta: self.remote_mta,
            updated_at: self.updated_at,
        })
    }
}

/// One message's owed notifications, locked until [`DsnBatch::commit`] or drop (rollback).
pub struct DsnBatch {
    tx: Transaction<'static, Postgres>,
    pub message: StoredMessage,
    pub owed: Vec<OwedDsn>,
}

impl DsnBatch {
    /// Queues `notifications` (DSN messages to the envelope sender; none when the sender asked
    /// for none) and clears every owed notification of this batch, atomically.
    pub async fn commit(mut self, notifications: &[NewMessage]) -> Result<(), QueueError> {
        for notification in notifications {
            commit_query(notification).execute(&mut *self.tx).await?;
        }
        let ids: Vec<i64> = self.owed.iter().map(|owed| owed.job_id).collect();
        sqlx::query("UPDATE jobs SET dsn_pending = NULL WHERE message_id = $1 AND id = ANY($2)")
            .bind(self.message.id)
            .bind(ids)
            .execute(&mut *self.tx)
            .await?;
        self.tx.commit().await.map_err(QueueError::from)
    }
}

/// Leased jobs back to waiting, due at `until`, their attempts unchanged.
async fn postpone<'e>(
    executor: impl sqlx::PgExecutor<'e>,
    owner: &str,
    jobs: &[JobKey],
    until: OffsetDateTime,
) -> Result<u64, sqlx::Error> {
    let (ids, message_ids) = JobKey::columns(jobs);
    // The lease check travels with the ids, as in `FINISH_SQL`, so the rows are found by primary
    // key whatever the statistics say: a destination whose rate is spent postpones every group.
    let done = sqlx::query(
        "WITH held AS MATERIALIZED (
             SELECT k.id, k.message_id, $1::text AS owner, 'leased'::text AS status
               FROM unnest($2::bigint[], $4::uuid[]) AS k (id, message_id)
         )
         UPDATE jobs AS j
            SET status = CASE WHEN j.attempts = 0 THEN 'queued' ELSE 'deferred' END,
                lease_owner = NULL, lease_expires_at = NULL, next_attempt_at = $3,
                updated_at = now()
           FROM held AS h
          WHERE j.id = h.id AND j.message_id = h.message_id
            AND j.lease_owner = h.owner AND j.status = h.status",
    )
    .bind(owner)
    .bind(ids)
    .bind(until)
    .bind(message_ids)
    .execute(executor)
    .await?;
    Ok(done.rows_affected())
}
