//! `tern api`: the admin REST API, with `/healthz`, `/readyz` and `/metrics` on the same port.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use tern_api::ApiState;
use tern_api::auth::TokenStore;
use tern_api::config::ApiConfig;
use tern_common::admin;
use tern_common::bus::Bus;
use tern_common::control::PgControlStore;
use tern_common::control::heartbeat::Processes;
use tern_common::queue::{self, QueueActions, QueueInspector};
use tern_common::users::{LockoutPolicy, UserStore};

use crate::serve;

pub async fn run(config: ApiConfig) -> anyhow::Result<()> {
    let metrics =
        admin::install_metrics_recorder(&[]).context("installing the metrics recorder")?;
    let shutdown = tern_common::shutdown::on_signal();
    let pool = queue::connect_pool(&config.database).context("database URL")?;
    let bus = Bus::connect(&config.nats).await.context("NATS")?;
    let listener = serve::bind(config.listen, "admin API").await?;

    let state = ApiState {
        tokens: TokenStore::new(pool.clone(), config.bootstrap_token.as_deref()),
        control: PgControlStore::new(pool.clone(), Some(bus.clone())),
        processes: Processes::new(pool.clone()),
        // The lockout policy matters only to `authenticate`, which the API never calls.
        users: UserStore::new(pool.clone(), LockoutPolicy::default()),
        inspector: QueueInspector::new(pool.clone()),
        actions: QueueActions::new(pool.clone()),
        trace_url: config.trace_url.clone(),
        bus: Some(bus.clone()),
    };
    let readiness: admin::ReadinessCheck = {
        let pool = pool.clone();
        Arc::new(move || {
            let pool = pool.clone();
            Box::pin(async move {
                match tokio::time::timeout(
                    Duration::from_secs(2),
                    sqlx::query("SELECT 1").execute(&pool),
                )
                .await
                {
                    Ok(Ok(_)) => Ok(()),
                    Ok(Err(error)) => Err(format!("PostgreSQL: {error}")),
                    Err(_) => Err("PostgreSQL: timed out".to_owned()),
                }
            })
        })
    };
    let router =
        tern_api::app(state).merge(admin::router(Some(metrics), readiness, shutdown.clone()));
    tracing::info!(address = %config.listen, "admin API listening");
    let beat_stop = tokio_util::sync::CancellationToken::new();
    let beating = serve::heartbeat(pool.clone(), "api", None, None, beat_stop.clone());
    admin::serve(listener, router, shutdown).await?;
    beat_stop.cancel();
    let _ = beating.await;
    let _ = bus.client().flush().await;
    pool.close().await;
    tracing::info!("admin API stopped");
    Ok(())
}
