//! The admin HTTP server on a real socket: `/healthz` answers while the process lives,
//! `/readyz` follows the readiness check and fails once draining starts, and `/metrics` renders
//! the recorder with each histogram's own buckets.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use tern_common::admin::{self, ReadinessCheck};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

async fn get(port: u16, path: &str) -> (u16, String) {
    let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .expect("connect");
    let request = format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.expect("write");
    let mut response = String::new();
    stream.read_to_string(&mut response).await.expect("read");
    let status = response
        .get(9..12)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = response
        .split_once("\r\n\r\n")
        .map_or_else(String::new, |(_, b)| b.to_owned());
    (status, body)
}

/// Serves the admin router with a readiness check that follows `ready`; returns the port.
async fn serve(
    metrics: Option<admin::MetricsHandle>,
    ready: Arc<AtomicBool>,
    draining: CancellationToken,
    stop: CancellationToken,
) -> u16 {
    let readiness: ReadinessCheck = Arc::new(move || {
        let ready = ready.load(Ordering::SeqCst);
        Box::pin(async move {
            if ready {
                Ok(())
            } else {
                Err("PostgreSQL: connection refused".to_owned())
            }
        })
    });
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let router = admin::router(metrics, readiness, draining);
    tokio::spawn(admin::serve(listener, router, stop));
    port
}

#[tokio::test]
async fn readyz_follows_dependencies_and_draining_while_healthz_stays_up() {
    let ready = Arc::new(AtomicBool::new(true));
    let draining = CancellationToken::new();
    let stop = CancellationToken::new();
    let port = serve(None, ready.clone(), draining.clone(), stop.clone()).await;

    assert_eq!(get(port, "/healthz").await.0, 200);
    assert_eq!(get(port, "/readyz").await, (200, "ready\n".to_owned()));

    ready.store(false, Ordering::SeqCst);
    let (status, body) = get(port, "/readyz").await;
    assert_eq!(status, 503);
    assert!(body.contains("PostgreSQL"), "{body}");
    assert_eq!(get(port, "/healthz").await.0, 200, "alive though not ready");

    ready.store(true, Ordering::SeqCst);
    draining.cancel();
    assert_eq!(get(port, "/readyz").await, (503, "draining\n".to_owned()));
    assert_eq!(get(port, "/healthz").await.0, 200);
    assert_eq!(get(port, "/metrics").await.0, 404, "no recorder installed");
    stop.cancel();
}

#[tokio::test]
async fn metrics_render_each_histogram_with_its_own_buckets() {
    const SLOW: &[f64] = &[60.0, 3600.0, 86400.0];
    let recorder = admin::metrics_recorder(&[("tern_test_slow_seconds", SLOW)]).expect("recorder");
    metrics::with_local_recorder(&recorder, || {
        metrics::counter!("tern_test_things_total", "kind" => "a").increment(3);
        metrics::histogram!("tern_test_slow_seconds").record(120.0);
        metrics::histogram!("tern_test_fast_seconds").record(0.003);
    });
    let stop = CancellationToken::new();
    let port = serve(
        Some(recorder.handle()),
        Arc::new(AtomicBool::new(true)),
        CancellationToken::new(),
        stop.clone(),
    )
    .await;
    let (status, text) = get(port, "/metrics").await;
    assert_eq!(status, 200);
    let lines: Vec<&str> = text.lines().collect();
    assert!(
        lines.contains(&"tern_test_things_total{kind=\"a\"} 3"),
        "{text}"
    );
    assert!(
        lines.contains(&"tern_test_slow_seconds_bucket{le=\"60\"} 0"),
        "{text}"
    );
    assert!(
        lines.contains(&"tern_test_slow_seconds_bucket{le=\"3600\"} 1"),
        "{text}"
    );
    assert!(
        lines.contains(&"tern_test_fast_seconds_bucket{le=\"0.005\"} 1"),
        "unlisted histograms get the default buckets: {text}"
    );
    assert!(
        !text.contains("tern_test_slow_seconds_bucket{le=\"0.005\"}"),
        "{text}"
    );
    stop.cancel();
}
