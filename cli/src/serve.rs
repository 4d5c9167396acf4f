//! What every long-running `tern` command does around its component: the admin HTTP server with
//! a readiness check on PostgreSQL and NATS, the JetStream stream set up in the background, and
//! the control-plane snapshot kept current.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use sqlx::PgPool;
use tern_common::admin;
use tern_common::bus::Bus;
use tern_common::control::{ConfigRows, ControlWatch, PgControlStore, heartbeat};
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

/// Mirrors this pod's settings into the control plane as `config` rows (in the background,
/// retried: PostgreSQL may be down at start) and keeps a snapshot of it current until `stop`.
pub fn control_plane(
    pool: PgPool,
    bus: Bus,
    rows: Option<ConfigRows>,
    poll: Duration,
    stop: CancellationToken,
) -> ControlWatch {
    let store = PgControlStore::new(pool, Some(bus.clone()));
    if let Some(rows) = rows {
        let store = store.clone();
        let stop = stop.clone();
        tokio::spawn(async move {
            let mut delay = Duration::from_millis(200);
            loop {
                match store.sync_config(&rows).await {
                    Ok(changed) => {
                        tracing::info!(changed, "settings mirrored into the control plane");
                        return;
                    }
                    Err(error) => {
                        tracing::warn!(%error, "settings not mirrored into the control plane yet")
                    }
                }
                tokio::select! {
                    () = stop.cancelled() => return,
                    () = tokio::time::sleep(delay) => {}
                }
                delay = (delay * 2).min(Duration::from_secs(10));
            }
        });
    }
    ControlWatch::spawn(store, Some(bus), poll, stop)
}

/// Keeps this process's heartbeat row (see `GET /v1/cluster`) until `stop`. `id`: the worker's
/// lease owner, or for other components the pod's host name with a random suffix.
pub fn heartbeat(
    pool: PgPool,
    component: &'static str,
    id: Option<String>,
    control: Option<ControlWatch>,
    stop: CancellationToken,
) -> JoinHandle<()> {
    let id = id.unwrap_or_else(|| {
        let host = std::env::var("HOSTNAME").unwrap_or_else(|_| component.to_owned());
        format!("{host}-{}", &uuid::Uuid::new_v4().simple().to_string()[..8])
    });
    let process = heartbeat::Process {
        id,
        component,
        version: env!("CARGO_PKG_VERSION"),
        started_at: time::OffsetDateTime::now_utc(),
        settings: heartbeat::settings_from_env(),
    };
    tokio::spawn(heartbeat::run(pool, process, control, stop))
}
