//! The trace pipeline against an OTLP receiver in the test process: a span that adopts a stored
//! context is exported as that context's child, with its own children below it.

use std::time::Duration;

use tern_common::config::{LogArgs, LogFormat};
use tern_common::telemetry::{self, TelemetryConfig, TraceContext};
use tern_testkit::otlp::OtlpReceiver;

const STORED: &str = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";

#[tokio::test]
async fn a_span_adopting_a_stored_context_is_exported_as_its_child_with_its_children() {
    let receiver = OtlpReceiver::start().await.expect("receiver");
    let config = TelemetryConfig {
        endpoint: Some(receiver.endpoint()),
        ..TelemetryConfig::off("tern-test")
    };
    let logs = LogArgs {
        log_format: LogFormat::Json,
        log: Some("info".into()),
    };
    let guard = telemetry::init(&logs, &config).expect("telemetry");

    let stored = TraceContext::from_stored(STORED).expect("valid context");
    use tern_common::telemetry::names;
    use tracing::field::Empty;
    let attempt = tracing::info_span!(target: "tern_test",
        names::SPAN_DELIVERY_ATTEMPT,
        "otel.kind" = "client",
        { names::TERN_QUEUE_ID } = "x",
        { names::TERN_ATTEMPT } = 1,
        { names::TERN_RECIPIENTS } = 2usize,
        { names::TERN_DESTINATION } = "d",
        { names::TERN_WORKER } = "w",
        { names::SMTP_PROTOCOL } = Empty,
        { names::SERVER_ADDRESS } = Empty,
        { names::SERVER_PORT } = Empty,
        { names::NETWORK_PEER_ADDRESS } = Empty,
        { names::TLS_PROTOCOL_VERSION } = Empty,
        { names::TLS_CIPHER } = Empty,
        { names::SMTP_REPLY_CODE } = Empty,
        { names::SMTP_REPLY_ENHANCED_STATUS } = Empty,
        { names::TERN_OUTCOME } = Empty,
        { names::OTEL_STATUS_CODE } = Empty,
        { names::TRACE_ID } = Empty,
    );
    assert!(stored.adopt(&attempt));
    telemetry::context::record_trace_id(&attempt);
    let child = tracing::info_span!(target: "tern_test", parent: &attempt, "delivery.connect");
    drop(child);
    drop(attempt);
    guard.shutdown().await;

    let spans = receiver
        .wait_for("both spans", Duration::from_secs(10), |spans| {
            spans.len() >= 2
        })
        .await;
    let attempt = spans
        .iter()
        .find(|s| s.name == "delivery.attempt")
        .expect("attempt");
    assert_eq!(attempt.trace_id, stored.trace_id());
    assert_eq!(attempt.parent_span_id, "b7ad6b7169203331");
    assert_eq!(attempt.service, "tern-test");
    assert_eq!(attempt.attribute("trace_id"), Some(stored.trace_id()));
    let connect = spans
        .iter()
        .find(|s| s.name == "delivery.connect")
        .expect("connect");
    assert_eq!(connect.trace_id, stored.trace_id());
    assert_eq!(connect.parent_span_id, attempt.span_id);
}
