//! How much work the queue holds, for the worker's gauges: one query over the unfinished jobs
//! only (the rows the `jobs_claimable` partial index covers), so its cost follows the backlog,
//! not the history of delivered mail.

use std::time::Duration;

use super::{PgJobStore, QueueError};

/// Unfinished jobs by status, and how long the most overdue one has waited.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct QueueDepth {
    pub queued: u64,
    pub deferred: u64,
    pub leased: u64,
    /// Time since the `next_attempt_at` of the oldest due job that nobody holds a live lease
    /// on; zero when nothing is due.
    pub oldest_due: Duration,
}

const DEPTH_SQL: &str = "
SELECT count(*) FILTER (WHERE status = 'queued')   AS queued,
       count(*) FILTER (WHERE status = 'deferred') AS deferred,
       count(*) FILTER (WHERE status = 'leased')   AS leased,
       COALESCE(EXTRACT(EPOCH FROM now() - min(next_attempt_at)
                        FILTER (WHERE next_attempt_at <= now())), 0)::float8 AS oldest_due
  FROM jobs
 WHERE status IN ('queued', 'deferred', 'leased')";

impl PgJobStore {
    /// Counts the unfinished jobs; see [`QueueDepth`].
    pub async fn queue_depth(&self) -> Result<QueueDepth, QueueError> {
        let (queued, deferred, leased, oldest_due): (i64, i64, i64, f64) =
            sqlx::query_as(DEPTH_SQL).fetch_one(self.pool()).await?;
        let count = |n: i64| u64::try_from(n).unwrap_or(0);
        Ok(QueueDepth {
            queued: count(queued),
            deferred: count(deferred),
            leased: count(leased),
            oldest_due: Duration::try_from_secs_f64(oldest_due).unwrap_or_default(),
        })
    }
}
