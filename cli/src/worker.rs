//! `tern worker`: delivery.

use anyhow::Context as _;
use tern_common::admin;
use tern_common::bus::Bus;
use tern_common::queue;
use tern_common::queue::PgJobStore;
use tern_worker::{Worker, WorkerConfig};
use tokio_util::sync::CancellationToken;

use crate::serve::{self, AdminServer};

pub async fn run(config: WorkerConfig) -> anyhow::Result<()> {
    let metrics = admin::install_metrics_recorder(tern_worker::metrics::HISTOGRAMS)
        .context("installing the metrics recorder")?;
    let shutdown = tern_common::shutdown::on_signal();

    let pool = queue::connect_delivery_pool(&config.database).context("database URL")?;
    let bus = Bus::connect(&config.nats).await.context("NATS")?;
    let admin_listener = serve::bind(config.admin_listen, "admin").await?;
    let admin = AdminServer::start(
        admin_listener,
        metrics,
        pool.clone(),
        bus.clone(),
        shutdown.clone(),
    );

    let control_stop = CancellationToken::new();
    let control = serve::control_plane(
        pool.clone(),
        bus.clone(),
        None,
        config.control_poll,
        control_stop.clone(),
    );
    let beating = serve::heartbeat(
        pool.clone(),
        "worker",
        Some(config.id.clone()),
        Some(control.clone()),
        control_stop.clone(),
    );
    let worker = Worker::new(config, PgJobStore::new(pool.clone()), control)
        .context("starting the worker")?;
    tern_worker::run(worker, Some(bus.clone()), shutdown).await;
    control_stop.cancel();
    let _ = beating.await;

    admin.stop().await;
    pool.close().await;
    Ok(())
}
