//! The retention pass, once a minute on every worker: make the coming days' partitions, drop
//! the days whose history has expired (`TERN_RETENTION_HISTORY`), and delete in small batches
//! the bodies of messages finished longer than `TERN_RETENTION_BODY` ago and the finished
//! messages of past days kept for their stragglers. Batches skip rows another worker is
//! sweeping, so many workers share the work; a short pause between batches keeps the sweep
//! from competing with ingest.

use std::time::Duration;

use tern_common::queue::{DAYS_AHEAD, PgJobStore};
use tokio_util::sync::CancellationToken;

use crate::config::Retention;
use crate::metrics;

/// How often a worker looks for something to forget.
const EVERY: Duration = Duration::from_secs(60);
/// Rows per statement: a few milliseconds of work each.
const BATCH: u32 = 500;
const PAUSE: Duration = Duration::from_millis(50);

/// Runs a pass at once (a worker starting after days down makes today's partitions first), then
/// every [`EVERY`].
pub(crate) async fn run(store: PgJobStore, retention: Retention, stop: CancellationToken) {
    loop {
        days(&store, retention).await;
        sweep(&store, retention, &stop).await;
        tokio::select! {
            () = stop.cancelled() => return,
            () = tokio::time::sleep(EVERY) => {}
        }
    }
}

async fn days(store: &PgJobStore, retention: Retention) {
    match store.prepare_partitions(DAYS_AHEAD).await {
        Ok(0) => {}
        Ok(made) => tracing::info!(tables = made, "made the partitions of coming days"),
        Err(error) => {
            ::metrics::counter!(metrics::STORE_ERRORS_TOTAL, "op" => "retention").increment(1);
            tracing::error!(%error, "could not make the partitions of coming days; mail for a day without them is refused with 451");
        }
    }
    match store.drop_past_days(retention.history).await {
        Ok(None) => tracing::debug!("another worker is dropping past days"),
        Ok(Some(swept)) => {
            for day in &swept.dropped {
                ::metrics::counter!(metrics::RETENTION_DELETED_TOTAL, "what" => "day").increment(1);
                tracing::info!(%day, "dropped a past day's partitions");
            }
            for (day, waiting) in &swept.kept {
                tracing::warn!(%day, recipients = waiting, "a day past retention is kept: some of its recipients are unfinished or owe a notification");
            }
            let waiting: i64 = swept.kept.iter().map(|(_, waiting)| waiting).sum();
            ::metrics::gauge!(metrics::RETENTION_STRAGGLER_JOBS).set(waiting as f64);
        }
        Err(error) => {
            ::metrics::counter!(metrics::STORE_ERRORS_TOTAL, "op" => "retention").increment(1);
            tracing::warn!(%error, "dropping past days failed; next time");
        }
    }
}

async fn sweep(store: &PgJobStore, retention: Retention, stop: &CancellationToken) {
    for what in ["body", "message"] {
        loop {
            let swept = match what {
                "body" => store.sweep_bodies(retention.body, BATCH).await,
                _ => store.sweep_history(retention.history, BATCH).await,
            };
            match swept {
                Ok(0) => break,
                Ok(count) => {
                    ::metrics::counter!(metrics::RETENTION_DELETED_TOTAL, "what" => what)
                        .increment(count);
                    tracing::debug!(what, count, "retention sweep");
                    if count < u64::from(BATCH) {
                        break;
                    }
                }
                Err(error) => {
                    ::metrics::counter!(metrics::STORE_ERRORS_TOTAL, "op" => "retention")
                        .increment(1);
                    tracing::warn!(%error, what, "retention sweep failed; next time");
                    return;
                }
            }
            tokio::select! {
                () = stop.cancelled() => return,
                () = tokio::time::sleep(PAUSE) => {}
            }
        }
    }
}
