//! Retention: what the queue forgets, and when. A message is *finished* when every job of it is
//! final (delivered, bounced, expired) and owes no notification. Its body is deleted once it has
//! been finished for the body retention. Its history (row, jobs, attempts) goes with its day:
//! the day's partitions are dropped once the day ended longer than the history retention ago
//! ([`PgJobStore::drop_past_days`]); a day kept for its unfinished stragglers is swept row by
//! row here meanwhile, its finished messages deleted.
//!
//! Each sweep is one statement over a small batch, taking rows with `FOR UPDATE SKIP LOCKED`, so
//! any number of workers sweep at once without waiting on each other or on the ingress, and a
//! row is deleted by exactly one of them.

use std::time::Duration;

use super::{PgJobStore, QueueError};

/// A message is finished and has been for `$1` seconds: every job final, none owing a report.
const FINISHED_FOR: &str = "
NOT EXISTS (SELECT 1 FROM jobs j
             WHERE j.message_id = m.id
               AND (j.status NOT IN ('delivered', 'bounced', 'expired')
                    OR j.dsn_pending IS NOT NULL
                    OR j.updated_at > now() - make_interval(secs => $1)))";

impl PgJobStore {
    /// Deletes the bodies of up to `batch` messages finished for at least `after`; returns how
    /// many.
    pub async fn sweep_bodies(&self, after: Duration, batch: u32) -> Result<u64, QueueError> {
        let sql = format!(
            "WITH due AS (
                SELECT m.id FROM messages m
                 WHERE m.body_deleted_at IS NULL
                   AND m.received_at < now() - make_interval(secs => $1)
                   AND {FINISHED_FOR}
                 ORDER BY m.received_at LIMIT $2
                 FOR UPDATE OF m SKIP LOCKED
             )
             UPDATE messages SET body = ''::bytea, body_deleted_at = now()
               FROM due WHERE messages.id = due.id"
        );
        let done = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(after.as_secs_f64())
            .bind(i64::from(batch))
            .execute(self.pool())
            .await?;
        Ok(done.rows_affected())
    }

    /// Deletes up to `batch` finished messages of days that ended more than `after` ago, with
    /// their jobs and attempts (named here: neither has a foreign key to cascade from); returns
    /// how many messages. Those are the days [`PgJobStore::drop_past_days`] kept for their
    /// stragglers (it runs first): a younger day is left whole, to be dropped whole.
    pub async fn sweep_history(&self, after: Duration, batch: u32) -> Result<u64, QueueError> {
        let done = sqlx::query(
            "WITH due AS (
                SELECT m.id FROM messages m
                 WHERE m.id < queue_day_start(((now() - make_interval(secs => $1))
                                                AT TIME ZONE 'UTC')::date)
                   AND NOT EXISTS (SELECT 1 FROM jobs j
                                    WHERE j.message_id = m.id
                                      AND (j.status NOT IN ('delivered', 'bounced', 'expired')
                                           OR j.dsn_pending IS NOT NULL))
                 ORDER BY m.id LIMIT $2
                 FOR UPDATE OF m SKIP LOCKED
             ), attempts_gone AS (
                DELETE FROM attempts a USING due WHERE a.message_id = due.id
             ), jobs_gone AS (
                DELETE FROM jobs j USING due WHERE j.message_id = due.id
             )
             DELETE FROM messages USING due WHERE messages.id = due.id",
        )
        .bind(after.as_secs_f64())
        .bind(i64::from(batch))
        .execute(self.pool())
        .await?;
        Ok(done.rows_affected())
    }
}
