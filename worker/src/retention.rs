//! The retention sweep: every worker deletes, in small batches, the bodies of messages finished
//! longer than `TERN_RETENTION_BODY` ago and the history of those older than
//! `TERN_RETENTION_HISTORY`. Batches skip rows another worker is sweeping, so many workers share
//! the work; a short pause between batches keeps the sweep from competing with ingest.

use std::time::Duration;

use tern_common::queue::PgJobStore;
use tokio_util::sync::CancellationToken;

use crate::config::Retention;
use crate::metrics;

/// How often a worker looks for something to forget.
const EVERY: Duration = Duration::from_secs(60);
/// Rows per statement: a few milliseconds of work each.
const BATCH: u32 = 500;
const PAUSE: Duration = Duration::from_millis(50);

pub(crate) async fn run(store: PgJobStore, retention: Retention, stop: CancellationToken) {
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            () = tokio::time::sleep(EVERY) => {}
        }
        sweep(&store, retention, &stop).await;
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
