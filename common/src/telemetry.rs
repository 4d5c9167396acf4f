//! Structured logs and OpenTelemetry traces, installed together in one subscriber.
//!
//! - [`config`]: the standard `OTEL_*` settings ([`TelemetryArgs`] → [`TelemetryConfig`]).
//! - [`names`]: every span name and attribute key, defined once.
//! - [`context`]: W3C trace context stored with messages and carried in notices.
//!
//! Logs are JSON lines in production and readable text in `make dev`. Traces are exported over
//! OTLP/gRPC in batches when an endpoint is configured; without one no exporter exists and every
//! span Tern declares is disabled at its call site, so tracing off costs a cached branch.

pub mod config;
pub mod context;
pub mod names;

use std::time::Duration;

use opentelemetry::KeyValue;
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::WithExportConfig;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::{Sampler, SdkTracerProvider};
use tracing_subscriber::filter::{EnvFilter, dynamic_filter_fn, filter_fn};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{Layer, Registry};

pub use config::{SamplerChoice, TelemetryArgs, TelemetryConfig};
pub use context::TraceContext;

use crate::config::{LogArgs, LogFormat};

/// How long the last batch of spans may take to leave at shutdown.
const FLUSH_TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Debug, thiserror::Error)]
pub enum TelemetryError {
    #[error("cannot build the OTLP span exporter: {0}")]
    Exporter(String),
    #[error("a global subscriber is already installed: {0}")]
    AlreadyInstalled(String),
}

/// Keeps the trace exporter alive; [`TelemetryGuard::shutdown`] at the end of `main` flushes
/// the spans still batched. Dropping it without that flushes too, blocking the thread.
#[must_use = "spans are lost unless the guard lives until the end of main"]
pub struct TelemetryGuard {
    provider: Option<SdkTracerProvider>,
}

impl TelemetryGuard {
    /// Exports what is batched and stops the exporter.
    pub async fn shutdown(mut self) {
        if let Some(provider) = self.provider.take() {
            // The batch processor's shutdown blocks until its thread has exported.
            let done =
                tokio::task::spawn_blocking(move || provider.shutdown_with_timeout(FLUSH_TIMEOUT))
                    .await;
            if let Ok(Err(error)) = done {
                tracing::warn!(%error, "spans not flushed at shutdown");
            }
        }
    }
}

impl Drop for TelemetryGuard {
    fn drop(&mut self) {
        if let Some(provider) = self.provider.take() {
            let _ = provider.shutdown_with_timeout(FLUSH_TIMEOUT);
        }
    }
}

/// Installs logs only, for short commands (`tern migrate`). Call once, from `main`.
pub fn init_logs(args: &LogArgs) {
    init_logs_to(args, std::io::stderr);
}

/// [`init_logs`] writing to `writer` (tests read what was logged).
pub fn init_logs_to<W>(args: &LogArgs, writer: W)
where
    W: for<'w> tracing_subscriber::fmt::MakeWriter<'w> + Send + Sync + 'static,
{
    let _ = logs_only(args, writer).try_init();
}

/// Logs without traces: the filter is global, so spans are disabled at their call sites. A
/// per-layer filter here lost lines: an `enabled!` check it answered "no" (sqlx asks one per
/// query) left its per-thread state set, and the next event whose call site is always enabled
/// skips the check that would reset it, so it was dropped (the e2e `api_process` test logs an
/// internal error after a query to show it is not).
fn logs_only<W>(args: &LogArgs, writer: W) -> impl tracing::Subscriber + Send + Sync
where
    W: for<'w> tracing_subscriber::fmt::MakeWriter<'w> + Send + Sync + 'static,
{
    Registry::default()
        .with(log_filter(args))
        .with(filter_fn(|meta| !meta.is_span()))
        .with(fmt_layer(args, writer))
}

/// Installs logs and, when `telemetry` has an endpoint, the OTLP trace pipeline with the W3C
/// TraceContext propagator. Call once, from `main`, inside the Tokio runtime (the gRPC client
/// lives on it).
pub fn init(args: &LogArgs, telemetry: &TelemetryConfig) -> Result<TelemetryGuard, TelemetryError> {
    let provider = telemetry.endpoint.as_deref().map(|endpoint| {
        let exporter = opentelemetry_otlp::SpanExporter::builder()
            .with_tonic()
            .with_endpoint(endpoint)
            .build()
            .map_err(|e| TelemetryError::Exporter(e.to_string()))?;
        Ok::<_, TelemetryError>(tracer_provider(telemetry, exporter))
    });
    let provider = provider.transpose()?;
    let traces = provider.as_ref().map(|provider| {
        tracing_opentelemetry::layer()
            .with_tracer(provider.tracer("tern"))
            // Busy/idle timing takes a clock read and a lock on every poll of an instrumented
            // future, and code locations and thread names add attributes to every span: none of
            // them is worth that on the message path.
            .with_tracked_inactivity(false)
            .with_location(false)
            .with_threads(false)
            // A filter that sees the context is asked at every call site hit instead of once
            // per call site; with two per-layer filters that both cache "always", a span can be
            // built from another call site's stale per-layer decisions and reach neither layer.
            .with_filter(dynamic_filter_fn(|meta, _| {
                meta.target().starts_with("tern")
                    && (meta.is_span() || meta.target() == names::TRACE_EVENT_TARGET)
            }))
    });
    opentelemetry::global::set_text_map_propagator(
        opentelemetry_sdk::propagation::TraceContextPropagator::new(),
    );
    let installed = match traces {
        None => logs_only(args, std::io::stderr).try_init(),
        Some(traces) => Registry::default()
            .with(fmt_layer(args, std::io::stderr).with_filter(log_filter(args)))
            .with(traces)
            .try_init(),
    };
    installed.map_err(|e| TelemetryError::AlreadyInstalled(e.to_string()))?;
    Ok(TelemetryGuard { provider })
}

/// A tracer provider exporting through `exporter` in batches, with the configured sampler and
/// resource. Public so tests can export to an in-process receiver.
pub fn tracer_provider(
    telemetry: &TelemetryConfig,
    exporter: opentelemetry_otlp::SpanExporter,
) -> SdkTracerProvider {
    let mut resource = Resource::builder_empty()
        .with_service_name(telemetry.service_name.clone())
        .with_attribute(KeyValue::new("service.version", env!("CARGO_PKG_VERSION")));
    for (key, value) in &telemetry.resource_attributes {
        resource = resource.with_attribute(KeyValue::new(key.clone(), value.clone()));
    }
    SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_sampler(sampler(telemetry.sampler))
        .with_resource(resource.build())
        .build()
}

fn sampler(choice: SamplerChoice) -> Sampler {
    match choice {
        SamplerChoice::AlwaysOn => Sampler::AlwaysOn,
        SamplerChoice::AlwaysOff => Sampler::AlwaysOff,
        SamplerChoice::TraceIdRatio(ratio) => Sampler::TraceIdRatioBased(ratio),
        SamplerChoice::ParentBasedAlwaysOn => Sampler::ParentBased(Box::new(Sampler::AlwaysOn)),
        SamplerChoice::ParentBasedAlwaysOff => Sampler::ParentBased(Box::new(Sampler::AlwaysOff)),
        SamplerChoice::ParentBasedTraceIdRatio(ratio) => {
            Sampler::ParentBased(Box::new(Sampler::TraceIdRatioBased(ratio)))
        }
    }
}

fn log_filter(args: &LogArgs) -> EnvFilter {
    match &args.log {
        Some(directives) => EnvFilter::new(directives),
        None => EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
    }
}

/// The log lines. With traces exported each line names the spans it was written in, with their
/// `queue_id` and `trace_id`; without them spans are disabled everywhere and cost nothing.
fn fmt_layer<S, W>(args: &LogArgs, writer: W) -> Box<dyn Layer<S> + Send + Sync>
where
    S: tracing::Subscriber + for<'span> tracing_subscriber::registry::LookupSpan<'span>,
    W: for<'w> tracing_subscriber::fmt::MakeWriter<'w> + Send + Sync + 'static,
{
    let layer = tracing_subscriber::fmt::layer().with_writer(writer);
    match args.log_format {
        LogFormat::Json => layer
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .boxed(),
        LogFormat::Text => layer.compact().boxed(),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use super::*;

    #[derive(Clone, Default)]
    struct Lines(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Lines {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.lock().expect("lines").extend_from_slice(bytes);
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl<'w> tracing_subscriber::fmt::MakeWriter<'w> for Lines {
        type Writer = Lines;
        fn make_writer(&'w self) -> Lines {
            self.clone()
        }
    }

    /// The filter applies to the lines: errors pass, what it excludes does not.
    #[test]
    fn logs_only_writes_what_the_filter_lets_through() {
        let lines = Lines::default();
        let args = LogArgs {
            log_format: LogFormat::Json,
            log: Some("info".into()),
        };
        tracing::subscriber::with_default(logs_only(&args, lines.clone()), || {
            let _ = tracing::enabled!(target: "sqlx::query", tracing::Level::DEBUG);
            tracing::error!(target: "tern_api::error", "first line");
            tracing::debug!(target: "sqlx::query", "not shown");
            tracing::error!(target: "tern_api::error", "second line");
        });
        let written = String::from_utf8(lines.0.lock().expect("lines").clone()).expect("utf-8");
        assert!(written.contains("first line"), "{written}");
        assert!(written.contains("second line"), "{written}");
        assert!(!written.contains("not shown"), "{written}");
    }
}
