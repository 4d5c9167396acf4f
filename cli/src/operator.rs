//! `tern operator`: the Kubernetes operator, with `/healthz`, `/readyz` and `/metrics` on the
//! admin port.

use std::sync::Arc;

use anyhow::Context as _;
use tern_common::admin;
use tern_common::queue;
use tern_common::users::{LockoutPolicy, UserStore};
use tern_operator::OperatorConfig;
use tern_operator::users;

use crate::serve;

pub async fn run(config: OperatorConfig) -> anyhow::Result<()> {
    let metrics =
        admin::install_metrics_recorder(&[]).context("installing the metrics recorder")?;
    let shutdown = tern_common::shutdown::on_signal();
    let pool = queue::connect_pool(&config.database).context("database URL")?;
    let client = kube::Client::try_default()
        .await
        .context("connecting to Kubernetes (in a pod: its service account; else KUBECONFIG)")?;
    let listener = serve::bind(config.admin_listen, "admin").await?;
    let readiness: admin::ReadinessCheck = Arc::new(|| Box::pin(async { Ok(()) }));
    let router = admin::router(Some(metrics), readiness, shutdown.clone());
    let serving = tokio::spawn(admin::serve(listener, router, shutdown.clone()));

    let context = Arc::new(users::Context {
        client,
        // The lockout policy matters only to `authenticate`, which the operator never calls.
        users: UserStore::new(pool.clone(), LockoutPolicy::default()),
    });
    tracing::info!("operator running");
    let stop = shutdown.clone();
    users::run(context, async move { stop.cancelled().await }).await;
    let _ = serving.await;
    pool.close().await;
    tracing::info!("operator stopped");
    Ok(())
}
