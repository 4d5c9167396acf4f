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

use sqlx::{Postgres, Transaction};

use super::partitions::FIRST_DAY_KEPT;
use super::{PgJobStore, QueueError};

impl PgJobStore {
    /// Deletes the bodies of up to `batch` messages finished for at least `after`: every job
    /// final, none owing a report, none changed since; returns how many.
    pub async fn sweep_bodies(&self, after: Duration, batch: u32) -> Result<u64, QueueError> {
        let mut tx = self.nested_loops_only().await?;
        let done = sqlx::query(
            "WITH due AS (
                SELECT m.id FROM messages m
                 WHERE m.body_deleted_at IS NULL
                   AND m.received_at < now() - make_interval(secs => $1)
                   AND NOT EXISTS (SELECT 1 FROM jobs j
                                    WHERE j.message_id = m.id
                                      AND (j.status NOT IN ('delivered', 'bounced', 'expired')
                                           OR j.dsn_pending IS NOT NULL
                                           OR j.updated_at > now() - make_interval(secs => $1)))
                 ORDER BY m.received_at LIMIT $2
                 FOR UPDATE OF m SKIP LOCKED
             )
             UPDATE messages SET body = ''::bytea, body_deleted_at = now()
               FROM due WHERE messages.id = due.id",
        )
        .bind(after.as_secs_f64())
        .bind(i64::from(batch))
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(done.rows_affected())
    }

    /// A transaction in which the planner walks indexes in order and probes them, message by
    /// message, and nothing else, and compiles nothing. The sweeps want the oldest few hundred
    /// messages of a table of millions: on the queue partitioned by day, the planner otherwise
    /// merged the days' messages with every job of the table in a hash, and the cost it then
    /// estimated for the index walk, summed over the days, set off JIT compilation, 70 ms for a
    /// statement that runs in 2 (bench/README.md, "The queue partitioned by day").
    async fn nested_loops_only(&self) -> Result<Transaction<'static, Postgres>, QueueError> {
        let mut tx = self.pool().begin().await?;
        sqlx::raw_sql(
            "SET LOCAL enable_hashjoin = off;
             SET LOCAL enable_mergejoin = off;
             SET LOCAL enable_sort = off;
             SET LOCAL jit = off",
        )
        .execute(&mut *tx)
        .await?;
        Ok(tx)
    }

    /// Deletes up to `batch` finished messages of days that ended more than `after` ago, with
    /// their jobs and attempts (named here: neither has a foreign key to cascade from); returns
    /// how many messages. Those are the days [`PgJobStore::drop_past_days`] kept for their
    /// stragglers (it runs first): a younger day is left whole, to be dropped whole.
    pub async fn sweep_history(&self, after: Duration, batch: u32) -> Result<u64, QueueError> {
        let mut tx = self.nested_loops_only().await?;
        let done = sqlx::query(sqlx::AssertSqlSafe(format!(
            "WITH due AS (
                SELECT m.id FROM messages m
                 WHERE m.id < queue_day_start({FIRST_DAY_KEPT})
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
             DELETE FROM messages USING due WHERE messages.id = due.id"
        )))
        .bind(after.as_secs_f64())
        .bind(i64::from(batch))
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(done.rows_affected())
    }
}
