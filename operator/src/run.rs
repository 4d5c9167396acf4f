//! The whole operator: its four controllers behind the leader election.

use std::sync::Arc;

use kube::Client;
use sqlx::PgPool;
use tern_common::bus::Bus;
use tern_common::control::PgControlStore;
use tern_common::control::heartbeat::Processes;
use tern_common::users::{LockoutPolicy, UserStore};
use tokio_util::sync::CancellationToken;

use crate::leader::{self, Elector};
use crate::{OperatorConfig, blocklists, certificates, domains, events, users};

/// The name of the Lease the replicas elect their leader with.
pub const LEASE: &str = "tern-operator";

/// Reconciles MailUsers, MailDomains, MailBlocklists and MailCertificates into the control plane
/// in `pool` (notices through `bus`) whenever this replica leads, until `shutdown`.
pub async fn run(
    config: &OperatorConfig,
    client: Client,
    pool: PgPool,
    bus: Bus,
    shutdown: CancellationToken,
) {
    let recorder = events::recorder(client.clone());
    let resync = config.resync;
    let control = PgControlStore::new(pool.clone(), Some(bus));
    let users = Arc::new(users::Context {
        client: client.clone(),
        resync,
        recorder: recorder.clone(),
        // The lockout policy matters only to `authenticate`, which the operator never calls.
        users: UserStore::new(pool.clone(), LockoutPolicy::default()),
    });
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
        client: client.clone(),
        resync,
        recorder,
        control,
        processes: Processes::new(pool),
    });
    tracing::info!(id = %config.id, "operator running; electing a leader");
    let elector = Elector::new(client, &config.lease_namespace, LEASE, config.id.clone());
    // Only the leader reconciles; the others wait their turn.
    leader::run(elector, shutdown, |stop| {
        let (users, domains, blocklists, certificates) = (
            Arc::clone(&users),
            Arc::clone(&domains),
            Arc::clone(&blocklists),
            Arc::clone(&certificates),
        );
        async move {
            let stopped = |stop: CancellationToken| async move { stop.cancelled().await };
            tokio::join!(
                users::run(users, stopped(stop.clone())),
                domains::run(domains, stopped(stop.clone())),
                blocklists::run(blocklists, stopped(stop.clone())),
                certificates::run(certificates, stopped(stop)),
            );
        }
    })
    .await;
}
