//! What every long-running `tern` command does around its component: the admin HTTP server with
//! a readiness check on PostgreSQL and NATS, and the JetStream stream set up in the background.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use sqlx::PgPool;
use tern_common::admin;
use tern_common::bus::Bus;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// The running admin server; [`AdminServer::stop`] after the component has stopped.
pub struct AdminServer {
    stop: CancellationToken,
    task: JoinHandle<std::io::Result<()>>,
}

impl AdminServer {
    /// Serves `/metrics`, `/healthz` and `/readyz` (PostgreSQL answers, NATS is connected) on an
    /// already bound listener; `/readyz` fails once `draining` is cancelled.
    pub fn start(
        listener: TcpListener,
        metrics: admin::MetricsHandle,
        pool: PgPool,
        bus: Bus,
        draining: CancellationToken,
    ) -> Self {
        let readiness: admin::ReadinessCheck = Arc::new(move || {
            let pool = pool.clone();
            let bus = bus.clone();
            Box::pin(async move {
                let ping = tokio::time::timeout(
                    Duration::from_secs(2),
                    sqlx::query("SELECT 1").execute(&pool),
                );
                match ping.await {
                    Ok(Ok(_)) => {}
                    Ok(Err(error)) => return Err(format!("PostgreSQL: {error}")),
                    Err(_) => return Err("PostgreSQL: timed out".to_owned()),
                }
                if !bus.is_connected() {
                    return Err("NATS: not connected".to_owned());
                }
                Ok(())
            })
        });
        let stop = CancellationToken::new();
        let router = admin::router(Some(metrics), readiness, draining);
        let task = tokio::spawn(admin::serve(listener, router, stop.clone()));
        Self { stop, task }
    }

    pub async fn stop(self) {
        self.stop.cancel();
        if let Ok(Err(error)) = self.task.await {
            tracing::warn!(%error, "admin server failed");
        }
    }
}

pub async fn bind(address: std::net::SocketAddr, what: &str) -> anyhow::Result<TcpListener> {
    TcpListener::bind(address)
        .await
        .with_context(|| format!("binding the {what} listener on {address}"))
}

/// The stream may not exist yet (fresh NATS) or NATS may be down at start: keep trying in the
/// background; until then notices fail, are counted, and workers poll.
pub fn ensure_stream_in_background(bus: Bus) {
    tokio::spawn(async move {
        let mut delay = Duration::from_millis(200);
        loop {
            match bus.ensure_stream().await {
                Ok(()) => {
                    tracing::info!(stream = %bus.names().stream, "JetStream work-queue stream ready");
                    return;
                }
                Err(error) => {
                    tracing::warn!(%error, "JetStream stream not ready; retrying");
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(Duration::from_secs(10));
                }
            }
        }
    });
}
