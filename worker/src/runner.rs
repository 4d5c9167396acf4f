//! The worker's main loop: claim due jobs, hand each destination its share, keep leases alive,
//! queue DSNs, and hand unfinished work back on shutdown.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use tern_common::bus::Bus;
use tern_common::control::ControlWatch;
use tern_common::queue::PgJobStore;
use tokio::sync::{Notify, Semaphore, watch};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::WorkerConfig;
use crate::delivery::client::{ClientConfig, Timeouts};
use crate::delivery::mx::MxResolver;
use crate::delivery::tls;
use crate::in_flight::InFlight;
use crate::pool::ConnectionCache;
use crate::{destination, dsn_task, gauges, metrics, notices, retention};

/// How long a woken claim loop waits for more notices before claiming.
const GATHER_NOTICES: std::time::Duration = std::time::Duration::from_millis(5);

/// How long a starting worker waits for the control plane before claiming.
const FIRST_CONTROL_READ: std::time::Duration = std::time::Duration::from_secs(5);

/// What every delivery task of one worker shares.
pub(crate) struct Shared {
    pub store: PgJobStore,
    pub config: WorkerConfig,
    /// The live control plane: domain routes and suspensions.
    pub control: ControlWatch,
    pub resolver: MxResolver,
    pub client: ClientConfig,
    /// One semaphore per destination: at most `destination_concurrency` connections to it.
    destinations: Mutex<HashMap<String, Arc<Semaphore>>>,
    /// Wakes the DSN task when a finished job owes a notification.
    pub dsn_wake: Notify,
    /// The claimed jobs still being worked on: the only leases renewed.
    in_flight: Arc<InFlight>,
    pub connections: ConnectionCache,
}

impl Shared {
    pub(crate) fn destination_limit(&self, key: &str) -> Arc<Semaphore> {
        let mut map = self.destinations.lock().unwrap_or_else(|p| p.into_inner());
        map.entry(key.to_owned())
            .or_insert_with(|| Arc::new(Semaphore::new(self.config.destination_concurrency)))
            .clone()
    }
}

/// A worker ready to run: built from validated config, before anything is spawned.
pub struct Worker {
    shared: Arc<Shared>,
}

#[derive(Debug, thiserror::Error)]
pub enum WorkerError {
    #[error("DNS resolver: {0}")]
    Resolver(String),
    #[error("TLS client configuration: {0}")]
    Tls(String),
}

impl Worker {
    pub fn new(
        config: WorkerConfig,
        store: PgJobStore,
        control: ControlWatch,
    ) -> Result<Self, WorkerError> {
        let resolver = match config.nameserver {
            Some(address) => MxResolver::with_nameserver(address),
            None => MxResolver::system(),
        }
        .map_err(|e| WorkerError::Resolver(e.to_string()))?;
        let client = ClientConfig {
            helo_name: config.hostname.clone(),
            timeouts: Timeouts {
                connect: config.connect_timeout,
                ..Timeouts::default()
            },
            tls_opportunistic: tls::opportunistic().map_err(|e| WorkerError::Tls(e.to_string()))?,
            tls_verified: tls::verified(&[]).map_err(|e| WorkerError::Tls(e.to_string()))?,
        };
        Ok(Self {
            shared: Arc::new(Shared {
                connections: ConnectionCache::new(config.destination_concurrency),
                store,
                config,
                control,
                resolver,
                client,
                destinations: Mutex::new(HashMap::new()),
                dsn_wake: Notify::new(),
                in_flight: Arc::default(),
            }),
        })
    }
}

/// Runs until `shutdown`; then lets deliveries in progress finish within the grace period and
/// hands back the leases of whatever did not.
pub async fn run(worker: Worker, bus: Option<Bus>, shutdown: CancellationToken) {
    let shared = worker.shared;
    let config = &shared.config;
    let wake = Arc::new(Notify::new());
    let (claimed_tx, claimed_rx) = watch::channel(0u64);
    let background = TaskTracker::new();
    let stop_background = CancellationToken::new();
    if let Some(bus) = bus {
        background.spawn(notices::run(
            bus,
            wake.clone(),
            claimed_rx,
            stop_background.clone(),
        ));
    }
    background.spawn(renew_leases(shared.clone(), stop_background.clone()));
    background.spawn(dsn_task::run(shared.clone(), stop_background.clone()));
    background.spawn(gauges::run(shared.clone(), stop_background.clone()));
    background.spawn(retention::run(shared.clone(), stop_background.clone()));

    // Suspensions and routes must be known before the first claim; a database that is down
    // delays the start a little, then the claim fails anyway until it is back.
    if !shared.control.first_read(FIRST_CONTROL_READ).await {
        tracing::warn!("control plane not read yet; claiming with the configured routes only");
    }
    let deliveries = TaskTracker::new();
    let abort = CancellationToken::new();
    let slots = Arc::new(Semaphore::new(config.concurrency));
    tracing::info!(worker = %config.id, "worker started");
    loop {
        let room = Room {
            slots: &slots,
            deliveries: &deliveries,
            abort: &abort,
        };
        claim_until_idle(&shared, &room, &claimed_tx, &shutdown).await;
        tokio::select! {
            () = shutdown.cancelled() => break,
            () = wake.notified() => {
                // Notices come one per message; a moment's wait lets the next few arrive, so
                // one claim takes them together and one connection carries them.
                tokio::time::sleep(GATHER_NOTICES).await;
            }
            () = tokio::time::sleep(config.poll_interval) => {}
        }
    }

    tracing::info!(in_flight = deliveries.len(), "worker stopping");
    deliveries.close();
    if tokio::time::timeout(config.shutdown_grace, deliveries.wait())
        .await
        .is_err()
    {
        // Stop what is still running before its leases go back, or it would race the worker
        // that takes them over.
        tracing::warn!("grace period over; handing unfinished jobs back");
        abort.cancel();
        deliveries.wait().await;
    }
    shared.connections.close_all().await;
    match shared.store.release(&config.id).await {
        Ok(0) => {}
        Ok(released) => tracing::info!(released, "leases handed back"),
        Err(error) => {
            tracing::warn!(%error, "could not hand leases back; they expire on their own")
        }
    }
    stop_background.cancel();
    background.close();
    background.wait().await;
    tracing::info!("worker stopped");
}

/// Where deliveries run: a slot each, tracked, and abortable at the end of the grace period.
struct Room<'a> {
    slots: &'a Arc<Semaphore>,
    deliveries: &'a TaskTracker,
    abort: &'a CancellationToken,
}

/// Claims batches while there is due work and room for it.
async fn claim_until_idle(
    shared: &Arc<Shared>,
    room: &Room<'_>,
    claimed: &watch::Sender<u64>,
    shutdown: &CancellationToken,
) {
    let config = &shared.config;
    let slots = room.slots;
    loop {
        if shutdown.is_cancelled() {
            return;
        }
        // Claim only when a delivery can start soon: jobs waiting in memory hold leases for nothing.
        if slots.available_permits() == 0 {
            tokio::select! {
                () = shutdown.cancelled() => return,
                permit = slots.clone().acquire_owned() => drop(permit),
            }
            continue;
        }
        let jobs = match shared
            .store
            .claim(&config.id, config.lease, config.batch)
            .await
        {
            Ok(jobs) => jobs,
            Err(error) => {
                ::metrics::counter!(metrics::STORE_ERRORS_TOTAL, "op" => "claim").increment(1);
                // No bump of the claim generation: notices stay unacknowledged until a claim
                // commits.
                tracing::warn!(%error, "claiming jobs failed");
                return;
            }
        };
        claimed.send_modify(|generation| *generation += 1);
        let claimed_count = jobs.len();
        if claimed_count == 0 {
            return;
        }
        ::metrics::counter!(metrics::JOBS_CLAIMED_TOTAL).increment(claimed_count as u64);
        let recovered = jobs.iter().filter(|job| job.lease_expired).count();
        if recovered > 0 {
            ::metrics::counter!(metrics::LEASE_EXPIRIES_TOTAL).increment(recovered as u64);
            tracing::info!(recovered, "claimed jobs whose lease had expired");
        }
        for group in destination::split(jobs) {
            // Held from the claim on: a group waiting for a slot is still work in hand.
            let held = shared
                .in_flight
                .hold(group.iter().map(|job| job.id).collect());
            let Ok(permit) = slots.clone().acquire_owned().await else {
                return;
            };
            let shared = shared.clone();
            let abort = room.abort.clone();
            room.deliveries.spawn(async move {
                tokio::select! {
                    () = abort.cancelled() => {}
                    () = destination::deliver(&shared, group) => {}
                }
                drop(held);
                drop(permit);
            });
        }
        if claimed_count < config.batch as usize {
            return;
        }
    }
}

async fn renew_leases(shared: Arc<Shared>, stop: CancellationToken) {
    let every = shared.config.lease / 3;
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            () = tokio::time::sleep(every) => {}
        }
        let jobs = shared.in_flight.jobs();
        if let Err(error) = shared
            .store
            .renew_leases(&shared.config.id, &jobs, shared.config.lease)
            .await
        {
            ::metrics::counter!(metrics::STORE_ERRORS_TOTAL, "op" => "renew").increment(1);
            tracing::warn!(%error, "renewing leases failed");
        }
    }
}
