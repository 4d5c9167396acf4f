//! `tern operator`: the Kubernetes operator, with `/healthz`, `/readyz` and `/metrics` on the
//! admin port.

use std::sync::Arc;

use anyhow::Context as _;
use tern_common::admin;
use tern_common::bus::Bus;
use tern_common::control::PgControlStore;
use tern_common::control::heartbeat::Processes;
use tern_common::queue;
use tern_common::users::{LockoutPolicy, UserStore};
use tern_operator::OperatorConfig;
use tern_operator::leader::{self, Elector};
use tern_operator::{blocklists, certificates, domains, users};

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

    let recorder = tern_operator::events::recorder(client.clone());
    let resync = config.resync;
    let users = Arc::new(users::Context {
        client: client.clone(),
        resync,
        recorder: recorder.clone(),
        // The lockout policy matters only to `authenticate`, which the operator never calls.
        users: UserStore::new(pool.clone(), LockoutPolicy::default()),
    });
    let control = PgControlStore::new(pool.clone(), Some(bus.clone()));
    let domains = Arc::new(domains::Context {
        client: client.clone(),
        resync,
        recorder: recorder.clone(),
        control: control.clone(),
        resolver: config.resolver.clone(),
        mx_host: config.mx_host.clone(),
    });
    let blocklists = Arc::new(blocklists::Context {
        client: client.clone(),
        resync,
        recorder: recorder.clone(),
        control: control.clone(),
    });
    let certificates = Arc::new(certificates::Context {
        client,
        resync,
        recorder,
        control,
        processes: Processes::new(pool.clone()),
    });
    tracing::info!(id = %config.id, "operator running; electing a leader");
    let elector = Elector::new(
        users.client.clone(),
        &config.lease_namespace,
        "tern-operator",
        config.id.clone(),
    );
    // Only the leader reconciles; the others wait their turn.
    leader::run(elector, shutdown.clone(), |stop| {
        let (users, domains, blocklists, certificates) = (
            Arc::clone(&users),
            Arc::clone(&domains),
            Arc::clone(&blocklists),
            Arc::clone(&certificates),
        );
        async move {
            let stopped =
                |stop: tokio_util::sync::CancellationToken| async move { stop.cancelled().await };
            tokio::join!(
                users::run(users, stopped(stop.clone())),
                domains::run(domains, stopped(stop.clone())),
                blocklists::run(blocklists, stopped(stop.clone())),
                certificates::run(certificates, stopped(stop)),
            );
        }
    })
    .await;
    let _ = serving.await;
    let _ = bus.client().flush().await;
    pool.close().await;
    tracing::info!("operator stopped");
    Ok(())
}
