//! Acting on the queue: retry, hold, release, bounce and delete, on one message or every job a
//! [`JobFilter`] selects. Each action is one statement, so it is atomic, and each is safe against
//! a worker that holds a job under a lease:
//!
//! - hold, bounce and delete take a leased job away from its worker: its fenced finish (which
//!   requires `status = 'leased'` and its lease) then records nothing, so the action is never
//!   overwritten; the delivery in flight may still reach the next hop, the duplicate RFC 5321
//!   accepts over loss;
//! - retry and release touch only jobs no worker holds.

use sqlx::PgPool;

use super::QueueError;
use super::inspect::{FILTER_SQL, JobFilter};

/// What to do with the selected jobs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum QueueAction {
    /// Due now (queued and deferred jobs).
    Retry,
    /// Kept from every worker until released (Postfix's `postsuper -h`).
    Hold,
    /// Held jobs back in the queue, due now.
    Release,
    /// Ended with an RFC 3464 report to the sender, giving `reason`.
    Bounce { reason: String },
    /// Removed without a report (Postfix's `postsuper -d`).
    Delete,
}

impl QueueAction {
    pub fn label(&self) -> &'static str {
        match self {
            QueueAction::Retry => "retry",
            QueueAction::Hold => "hold",
            QueueAction::Release => "release",
            QueueAction::Bounce { .. } => "bounce",
            QueueAction::Delete => "delete",
        }
    }
}

#[derive(Clone)]
pub struct QueueActions {
    pool: PgPool,
}

impl QueueActions {
    pub fn new(pool: PgPool) -> Self {
        Self { pool }
    }

    /// Applies `action` to the unfinished jobs `filter` selects; returns how many changed.
    pub async fn apply(&self, action: &QueueAction, filter: &JobFilter) -> Result<u64, QueueError> {
        let (set, from_statuses) = match action {
            QueueAction::Retry => ("next_attempt_at = now()", "('queued', 'deferred')"),
            QueueAction::Hold => (
                "status = 'held', lease_owner = NULL, lease_expires_at = NULL",
                "('queued', 'deferred', 'leased')",
            ),
            QueueAction::Release => (
                "status = CASE WHEN j.attempts = 0 THEN 'queued' ELSE 'deferred' END,
                 next_attempt_at = now()",
                "('held')",
            ),
            QueueAction::Bounce { .. } => (
                // The DSN task sends the report: it owes one unless the sender is <> or asked
                // for none (RFC 3461 NOTIFY).
                "status = 'bounced', lease_owner = NULL, lease_expires_at = NULL,
                 last_status = '5.0.0', last_reply = $8, remote_mta = NULL,
                 dsn_pending = CASE WHEN m.mail_from <> ''
                                     AND (j.dsn_notify IS NULL OR j.dsn_notify LIKE '%FAILURE%')
                                    THEN 'failed' END",
                "('queued', 'deferred', 'leased', 'held')",
            ),
            QueueAction::Delete => return self.delete(filter).await,
        };
        let sql = format!(
            "WITH changed AS (
                UPDATE jobs j SET {set}, updated_at = now()
                  FROM messages m
                 WHERE m.id = j.message_id AND j.status IN {from_statuses} AND {FILTER_SQL}
                RETURNING j.id
             ) SELECT count(*) FROM changed"
        );
        let query = filter.bind(sqlx::query_as::<_, (i64,)>(sqlx::AssertSqlSafe(sql)));
        let query = match action {
            QueueAction::Bounce { reason } => {
                query.bind(format!("bounced by the administrator: {reason}"))
            }
            _ => query,
        };
        let (changed,) = query.fetch_one(&self.pool).await?;
        Ok(changed as u64)
    }

    /// Deletes the selected unfinished jobs, and their message once it has no job left.
    async fn delete(&self, filter: &JobFilter) -> Result<u64, QueueError> {
        let sql = format!(
            "WITH gone AS (
                DELETE FROM jobs j USING messages m
                 WHERE m.id = j.message_id
                   AND j.status IN ('queued', 'deferred', 'leased', 'held') AND {FILTER_SQL}
                RETURNING j.id, j.message_id
             ), attempts_gone AS (
                DELETE FROM attempts a WHERE (a.job_id, a.message_id) IN (SELECT id, message_id FROM gone)
             ), messages_gone AS (
                DELETE FROM messages m
                 WHERE m.id IN (SELECT message_id FROM gone)
                   AND NOT EXISTS (SELECT 1 FROM jobs k
                                    WHERE k.message_id = m.id
                                      AND k.id NOT IN (SELECT id FROM gone))
             ) SELECT count(*) FROM gone"
        );
        let (changed,) = filter
            .bind(sqlx::query_as::<_, (i64,)>(sqlx::AssertSqlSafe(sql)))
            .fetch_one(&self.pool)
            .await?;
        Ok(changed as u64)
    }
}
