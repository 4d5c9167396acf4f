//! `tern operator`: the Kubernetes operator, with `/healthz`, `/readyz` and `/metrics` on the
//! admin port.

use std::sync::Arc;

use anyhow::Context as _;
use tern_common::admin;
use tern_common::bus::Bus;
use tern_common::queue;
use tern_operator::OperatorConfig;

use crate::serve;

pub async fn run(config: OperatorConfig) -> anyhow::Result<()> {
    let metrics =
        admin::install_metrics_recorder(&[]).context("installing the metrics recorder")?;
    let shutdown = tern_common::shutdown::on_signal();
    let pool = queue::connect_pool(&config.database).context("database URL")?;
    let client = kube::Client::try_default()
        .await
        .context("connecting to Kubernetes (in a pod: its service account; else KUBECONFIG)")?;
    let bus = Bus::connect(&config.nats).await.context("NATS")?;
    let listener = serve::bind(config.admin_listen, "admin").await?;
    let readiness: admin::ReadinessCheck = Arc::new(|| Box::pin(async { Ok(()) }));
    let router = admin::router(Some(metrics), readiness, shutdown.clone());
    let serving = tokio::spawn(admin::serve(listener, router, shutdown.clone()));

    tern_operator::run(&config, client, pool.clone(), bus.clone(), shutdown).await;
    let _ = serving.await;
    let _ = bus.client().flush().await;
    pool.close().await;
    tracing::info!("operator stopped");
    Ok(())
}
