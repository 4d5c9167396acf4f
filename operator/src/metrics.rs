//! The operator's Prometheus metrics.

use std::time::Instant;

use crate::error::Error;

/// Counts a reconcile of `kind` and, when dropped, records how long it took.
pub fn reconcile_started(kind: &'static str) -> ReconcileTimer {
    metrics::counter!("tern_operator_reconciliations_total", "kind" => kind).increment(1);
    ReconcileTimer {
        kind,
        started: Instant::now(),
    }
}

pub struct ReconcileTimer {
    kind: &'static str,
    started: Instant,
}

impl Drop for ReconcileTimer {
    fn drop(&mut self) {
        metrics::histogram!("tern_operator_reconcile_duration_seconds", "kind" => self.kind)
            .record(self.started.elapsed().as_secs_f64());
    }
}

pub fn reconcile_failed(kind: &'static str, error: &Error) {
    metrics::counter!(
        "tern_operator_reconcile_errors_total",
        "kind" => kind,
        "error" => error.metric_label()
    )
    .increment(1);
}
