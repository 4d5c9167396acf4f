//! `tern ingress`: the SMTP listeners.

use anyhow::Context as _;
use tern_common::admin;
use tern_common::bus::Bus;
use tern_common::queue::{self, PgQueueStore};
use tern_common::users::UserStore;
use tern_ingress::{Ingress, IngressConfig};
use tokio_util::sync::CancellationToken;

use crate::serve::{self, AdminServer};

pub async fn run(config: IngressConfig) -> anyhow::Result<()> {
    let metrics = admin::install_metrics_recorder(tern_ingress::metrics::HISTOGRAMS)
        .context("installing the metrics recorder")?;
    let shutdown = tern_common::shutdown::on_signal();

    let pool = queue::connect_pool(&config.database).context("database URL")?;
    let bus = Bus::connect(&config.nats).await.context("NATS")?;
    serve::ensure_stream_in_background(bus.clone());

    let mut listeners = Vec::new();
    for (address, kind) in &config.listeners {
        listeners.push((serve::bind(*address, kind.label()).await?, *kind));
    }
    let admin_listener = serve::bind(config.admin_listen, "admin").await?;
    let admin = AdminServer::start(
        admin_listener,
        metrics,
        pool.clone(),
        bus.clone(),
        shutdown.clone(),
    );

    let store = PgQueueStore::new(pool.clone(), config.database.commit_timeout);
    let users = UserStore::new(pool.clone(), config.lockout);
    let control_stop = CancellationToken::new();
    let control = serve::control_plane(
        pool.clone(),
        bus.clone(),
        Some(config.relay.config_rows()),
        config.control_poll,
        control_stop.clone(),
    );
    let beating = serve::heartbeat(
        pool.clone(),
        "ingress",
        None,
        Some(control.clone()),
        control_stop.clone(),
    );
    let ingress = Ingress::new(
        &config,
        store,
        Some(bus.clone()),
        Some(users),
        control,
        Some(pool.clone()),
    );
    tern_ingress::run(ingress, listeners, shutdown).await;

    control_stop.cancel();
    let _ = beating.await;
    let _ = bus.client().flush().await;
    admin.stop().await;
    pool.close().await;
    Ok(())
}
