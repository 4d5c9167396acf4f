//! The admin HTTP server every component runs on its own port: `/metrics` for Prometheus,
//! `/healthz` (the process is alive) and `/readyz` (its dependencies answer and it is not
//! draining), for Kubernetes probes.

use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use futures::future::BoxFuture;
pub use metrics_exporter_prometheus::PrometheusHandle as MetricsHandle;
use metrics_exporter_prometheus::{
    Matcher, PrometheusBuilder, PrometheusHandle, PrometheusRecorder,
};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// Answers whether the component can do its work now; `Err` carries a short reason.
pub type ReadinessCheck = Arc<dyn Fn() -> BoxFuture<'static, Result<(), String>> + Send + Sync>;

#[derive(Clone)]
struct AdminState {
    metrics: Option<PrometheusHandle>,
    readiness: ReadinessCheck,
    draining: CancellationToken,
}

/// A histogram and the upper bounds of its buckets. Each component lists its own: SMTP commits
/// take milliseconds, deliveries minutes to days, and one set of buckets cannot serve both.
pub type HistogramBuckets = (&'static str, &'static [f64]);

/// Buckets for histograms a component did not list: 1 ms to 10 s.
const DEFAULT_BUCKETS: &[f64] = &[
    0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0,
];

/// A Prometheus recorder with these histograms, not installed: tests use it with
/// `metrics::with_local_recorder`, `main` through [`install_metrics_recorder`].
pub fn metrics_recorder(
    histograms: &[HistogramBuckets],
) -> Result<PrometheusRecorder, metrics_exporter_prometheus::BuildError> {
    let mut builder = PrometheusBuilder::new().set_buckets(DEFAULT_BUCKETS)?;
    for (name, buckets) in histograms {
        builder = builder.set_buckets_for_metric(Matcher::Full((*name).to_owned()), buckets)?;
    }
    Ok(builder.build_recorder())
}

/// Installs the process-wide Prometheus recorder. Call once, from `main`.
pub fn install_metrics_recorder(
    histograms: &[HistogramBuckets],
) -> Result<PrometheusHandle, metrics_exporter_prometheus::BuildError> {
    let recorder = metrics_recorder(histograms)?;
    let handle = recorder.handle();
    metrics::set_global_recorder(recorder)
        .map_err(metrics_exporter_prometheus::BuildError::FailedToSetGlobalRecorder)?;
    Ok(handle)
}

/// The admin router. `draining` is cancelled when the component starts shutting down, which makes
/// `/readyz` fail so Kubernetes stops sending new connections.
pub fn router(
    metrics: Option<PrometheusHandle>,
    readiness: ReadinessCheck,
    draining: CancellationToken,
) -> Router {
    Router::new()
        .route("/metrics", get(metrics_text))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(ready))
        .with_state(AdminState {
            metrics,
            readiness,
            draining,
        })
}

/// Serves the admin router on `listener` until `shutdown` is cancelled.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    axum::serve(listener, router)
        .with_graceful_shutdown(async move { shutdown.cancelled().await })
        .await
}

async fn metrics_text(State(state): State<AdminState>) -> (StatusCode, String) {
    match &state.metrics {
        Some(handle) => (StatusCode::OK, handle.render()),
        None => (
            StatusCode::NOT_FOUND,
            "metrics recorder not installed\n".to_owned(),
        ),
    }
}

async fn ready(State(state): State<AdminState>) -> (StatusCode, String) {
    if state.draining.is_cancelled() {
        return (StatusCode::SERVICE_UNAVAILABLE, "draining\n".to_owned());
    }
    match (state.readiness)().await {
        Ok(()) => (StatusCode::OK, "ready\n".to_owned()),
        Err(reason) => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("not ready: {reason}\n"),
        ),
    }
}
