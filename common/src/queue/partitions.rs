//! The queue's days: `messages`, `jobs` and `attempts` are partitioned by the day a message
//! arrived (UTC), read from its UUIDv7 id (migration `20261208000001`). A day's partitions are
//! made a few days ahead and dropped, all three at once, once the day ended more than the
//! history retention ago and nothing in it is still waiting: no recipient unfinished (queued,
//! deferred, leased, held) and no notification owed. A day that still holds such stragglers is
//! kept and reported; the row sweep ([`PgJobStore::sweep_history`]) forgets its finished
//! messages meanwhile, and the day goes once its last straggler is done.
//!
//! Dropping detaches each partition first with `DETACH PARTITION … CONCURRENTLY`, which takes
//! no lock that stops the queue's statements; one worker at a time does it (an advisory lock),
//! on a connection of its own, and a detach an earlier run left half done is finished.

use std::time::Duration;

use sqlx::{Connection, PgConnection, PgExecutor};
use time::Date;

use super::{PgJobStore, QueueError};

/// Days of partitions made beyond today, so that a queue whose workers are all down keeps
/// accepting mail that long (every worker makes them, once a minute).
pub const DAYS_AHEAD: i32 = 3;

/// The first day whose history is kept when the history retention is `$1` seconds: every day
/// before it ended longer than that ago. The drop and the row sweep name days by it alike.
pub(super) const FIRST_DAY_KEPT: &str =
    "((now() - make_interval(secs => $1)) AT TIME ZONE 'UTC')::date";

/// Held by the worker dropping days; another that finds it taken leaves the work to it.
const DROPPING_LOCK: i64 = 0x7465_726e_6461_7973;

/// The partitioned tables, in the order a day's partitions are dropped: a reader that finds a
/// message finds its jobs until the message goes.
const TABLES: [&str; 3] = ["attempts", "jobs", "messages"];

/// What one pass over the past days did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct DaysSwept {
    /// Days whose partitions were dropped.
    pub dropped: Vec<Date>,
    /// Days past retention kept for their stragglers, with how many recipients still wait.
    pub kept: Vec<(Date, i64)>,
}

impl PgJobStore {
    /// Makes the partitions of today and the next `days_ahead` days that do not exist yet;
    /// returns how many tables were made.
    pub async fn prepare_partitions(&self, days_ahead: i32) -> Result<i32, QueueError> {
        Ok(prepare_partitions(self.pool(), days_ahead).await?)
    }

    /// Drops the partitions of every day that ended more than `history` ago and holds no
    /// straggler; see the module's comment. `None`: another worker is at it.
    pub async fn drop_past_days(&self, history: Duration) -> Result<Option<DaysSwept>, QueueError> {
        let mut conn = PgConnection::connect_with(&self.pool().connect_options()).await?;
        let swept = drop_past_days(&mut conn, history).await;
        let _ = conn.close().await;
        swept
    }
}

/// See [`PgJobStore::prepare_partitions`]; `tern migrate` makes them too.
pub(crate) async fn prepare_partitions<'e>(
    executor: impl PgExecutor<'e>,
    days_ahead: i32,
) -> Result<i32, sqlx::Error> {
    sqlx::query_scalar("SELECT queue_prepare_partitions($1)")
        .bind(days_ahead)
        .fetch_one(executor)
        .await
}

async fn drop_past_days(
    conn: &mut PgConnection,
    history: Duration,
) -> Result<Option<DaysSwept>, QueueError> {
    let mut swept = DaysSwept::default();
    let locked: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock($1)")
        .bind(DROPPING_LOCK)
        .fetch_one(&mut *conn)
        .await?;
    if !locked {
        return Ok(None);
    }
    // Waiting behind a long transaction for a lock is better given up and tried next time.
    sqlx::raw_sql("SET lock_timeout = '10s'")
        .execute(&mut *conn)
        .await?;
    // Days are read from every table by name, attached or not: a run cut short may have
    // dropped a day's attempts and jobs but not yet its messages, or detached and not dropped.
    // Each day with the suffix of its tables' names.
    let days: Vec<(Date, String)> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT DISTINCT to_date(right(c.relname, 8), 'YYYYMMDD') AS day, right(c.relname, 8)
           FROM pg_class c
          WHERE c.relkind = 'r' AND c.relnamespace = current_schema()::regnamespace
            AND c.relname ~ '^(messages|jobs|attempts)_[0-9]{{8}}$'
            AND to_date(right(c.relname, 8), 'YYYYMMDD') < {FIRST_DAY_KEPT}
          ORDER BY day"
    )))
    .bind(history.as_secs_f64())
    .fetch_all(&mut *conn)
    .await?;
    for (day, suffix) in days {
        let waiting = stragglers(conn, &suffix).await?;
        if waiting > 0 {
            swept.kept.push((day, waiting));
            continue;
        }
        for table in TABLES {
            drop_partition(conn, table, &format!("{table}_{suffix}")).await?;
        }
        swept.dropped.push(day);
    }
    Ok(Some(swept))
}

/// Recipients of one day that still wait for delivery or owe a notification, counted through
/// the partial indexes that hold exactly those; 0 when the day's jobs are gone already.
async fn stragglers(conn: &mut PgConnection, suffix: &str) -> Result<i64, QueueError> {
    let jobs = format!("jobs_{suffix}");
    let exists: bool = sqlx::query_scalar("SELECT to_regclass($1) IS NOT NULL")
        .bind(&jobs)
        .fetch_one(&mut *conn)
        .await?;
    if !exists {
        return Ok(0);
    }
    let waiting: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
        "SELECT (SELECT count(*) FROM \"{jobs}\"
                  WHERE status IN ('queued', 'deferred', 'leased', 'held'))
              + (SELECT count(*) FROM \"{jobs}\" WHERE dsn_pending IS NOT NULL)"
    )))
    .fetch_one(&mut *conn)
    .await?;
    Ok(waiting)
}

/// Detaches `partition` from `table` without blocking the queue, then drops it; finishes a
/// detach an earlier run left pending; nothing when the partition is gone already.
async fn drop_partition(
    conn: &mut PgConnection,
    table: &str,
    partition: &str,
) -> Result<(), QueueError> {
    let attached: Option<bool> = sqlx::query_scalar(
        "SELECT i.inhdetachpending FROM pg_inherits i
          WHERE i.inhparent = $1::regclass AND i.inhrelid = to_regclass($2)",
    )
    .bind(table)
    .bind(partition)
    .fetch_optional(&mut *conn)
    .await?;
    // Not inside a transaction: `CONCURRENTLY` commits twice on its own.
    match attached {
        Some(false) => {
            sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
                "ALTER TABLE \"{table}\" DETACH PARTITION \"{partition}\" CONCURRENTLY"
            )))
            .execute(&mut *conn)
            .await?;
        }
        Some(true) => {
            sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
                "ALTER TABLE \"{table}\" DETACH PARTITION \"{partition}\" FINALIZE"
            )))
            .execute(&mut *conn)
            .await?;
        }
        None => {}
    }
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
        "DROP TABLE IF EXISTS \"{partition}\""
    )))
    .execute(&mut *conn)
    .await?;
    Ok(())
}
