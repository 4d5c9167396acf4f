//! The queue gauges: every worker refreshes them from one cheap query every
//! [`REFRESH_INTERVAL`]. Each worker reports the same cluster-wide numbers, so dashboards take
//! the `max` over workers rather than the sum.

use std::time::Duration;

use tern_common::queue::PgJobStore;
use tokio_util::sync::CancellationToken;

use crate::metrics;

/// Often enough for a 15–30 s Prometheus scrape, rare enough that many workers cost little.
pub(crate) const REFRESH_INTERVAL: Duration = Duration::from_secs(15);

pub(crate) async fn run(store: PgJobStore, stop: CancellationToken) {
    loop {
        match store.queue_depth().await {
            Ok(depth) => {
                for (status, count) in [
                    ("queued", depth.queued),
                    ("deferred", depth.deferred),
                    ("leased", depth.leased),
                ] {
                    ::metrics::gauge!(metrics::QUEUE_JOBS, "status" => status).set(count as f64);
                }
                ::metrics::gauge!(metrics::QUEUE_OLDEST_DUE_SECONDS)
                    .set(depth.oldest_due.as_secs_f64());
            }
            Err(error) => {
                ::metrics::counter!(metrics::STORE_ERRORS_TOTAL, "op" => "depth").increment(1);
                tracing::warn!(%error, "measuring the queue failed");
            }
        }
        tokio::select! {
            () = stop.cancelled() => return,
            () = tokio::time::sleep(REFRESH_INTERVAL) => {}
        }
    }
}
