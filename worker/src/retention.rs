//! The retention sweep: every worker deletes, in small batches, the bodies of messages finished
//! longer than `TERN_RETENTION_BODY` ago and the history of those older than
//! `TERN_RETENTION_HISTORY`. Batches skip rows another worker is sweeping, so many workers share
//! the work; a short pause between batches keeps the sweep from competing with ingest.

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::metrics;
use crate::runner::Shared;

/// How often a worker looks for something to forget.
const EVERY: Duration = Duration::from_secs(60);
/// Rows per statement: a few milliseconds of work each.
const BATCH: u32 = 500;
const PAUSE: Duration = Duration::from_millis(50);

pub(crate) async fn run(shared: Arc<Shared>, stop: CancellationToken) {
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            () = tokio::time::sleep(EVERY) => {}
        }
        sweep(&shared, &stop).await;
    }
}

async fn sweep(shared: &Shared, stop: &CancellationToken) {
    let retention = shared.config.retention;
    for what in ["body", "message"] {
        loop {
            let swept = match what {
                "body" => shared.store.sweep_bodies(retention.body, BATCH).await,
                _ => shared.store.sweep_history(retention.history, BATCH).await,
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
