//! The worker's main loop: claim due jobs, hand each destination its share, keep leases alive,
//! queue DSNs, and hand unfinished work back on shutdown.

use std::sync::Arc;
use tern_common::bus::Bus;
use tern_common::control::ControlWatch;
use tern_common::queue::{ClaimedJob, FinishBatcher, FinishLoop, PgJobStore};
use tokio::sync::{Notify, Semaphore, watch};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::WorkerConfig;
use crate::delivery::client::{ClientConfig, Timeouts};
use crate::delivery::tls;
use crate::destination::{self, DestinationLimits, Destinations};
use crate::dsn_task::{self, DsnTask};
use crate::in_flight::InFlight;
use crate::plan::Planner;
use crate::pool::ConnectionCache;
use crate::record::Recorder;
use crate::throttle::{SiteLimits, Throttle};
use crate::{gauges, metrics, notices, pool, retention, throttle};

/// How long a woken claim loop waits for more notices before claiming.
const GATHER_NOTICES: std::time::Duration = std::time::Duration::from_millis(5);

/// Most outcomes recorded by one statement: a few milliseconds of work.
const FINISH_BATCH_JOBS: usize = 500;

/// How long a starting worker waits for the control plane before claiming.
const FIRST_CONTROL_READ: std::time::Duration = std::time::Duration::from_secs(5);

/// A worker ready to run: built from validated config, before anything is spawned.
pub struct Worker {
    config: WorkerConfig,
    store: PgJobStore,
    control: ControlWatch,
    destinations: Arc<Destinations>,
    /// Wakes the DSN task when a finished job owes a notification.
    dsn_wake: Arc<Notify>,
    /// The claimed jobs still being worked on: the only leases renewed.
    in_flight: Arc<InFlight>,
    /// Records the outcomes the deliveries hand to their recorder; taken when it starts.
    finish_loop: Option<FinishLoop>,
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
        let planner = Planner::new(
            control.clone(),
            config.routes.clone(),
            config.tls_policy.clone(),
            config.myself.clone(),
            config.smtp_port,
            config.nameserver,
        )
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
        let dsn_wake = Arc::new(Notify::new());
        let in_flight: Arc<InFlight> = Arc::default();
        let (finisher, finish_loop) =
            FinishBatcher::new(store.clone(), config.id.clone(), FINISH_BATCH_JOBS);
        let throttle = Throttle::new(
            store.pool().clone(),
            config.id.clone(),
            config.lease,
            SiteLimits {
                connections: u32::try_from(config.destination_concurrency).unwrap_or(u32::MAX),
                messages_per_minute: config.destination_rate,
            },
        );
        let destinations = Destinations {
            worker_id: config.id.clone(),
            hostname: config.hostname.clone(),
            control: control.clone(),
            planner,
            client,
            connections: Arc::new(ConnectionCache::new(config.destination_concurrency)),
            limits: DestinationLimits::default(),
            throttle: Arc::new(throttle),
            store: store.clone(),
            recorder: Recorder {
                finisher,
                pending: TaskTracker::new(),
                in_flight: Arc::clone(&in_flight),
                retry: config.retry,
                dsn_wake: Arc::clone(&dsn_wake),
            },
        };
        Ok(Self {
            config,
            store,
            control,
            destinations: Arc::new(destinations),
            dsn_wake,
            in_flight,
            finish_loop: Some(finish_loop),
        })
    }
}

/// Runs until `shutdown`; then lets deliveries in progress finish within the grace period and
/// hands back the leases of whatever did not.
pub async fn run(mut worker: Worker, bus: Option<Bus>, shutdown: CancellationToken) {
    let wake = Arc::new(Notify::new());
    let (claimed_tx, claimed_rx) = watch::channel(0u64);
    let background = TaskTracker::new();
    let stop_background = CancellationToken::new();
    // Stopped with the other background tasks, after the last delivery has recorded its outcome.
    if let Some(finish_loop) = worker.finish_loop.take() {
        background.spawn(finish_loop.run(stop_background.clone().cancelled_owned()));
    }
    let config = &worker.config;
    if let Some(bus) = bus {
        background.spawn(notices::run(
            bus,
            wake.clone(),
            claimed_rx,
            stop_background.clone(),
        ));
    }
    background.spawn(renew_leases(
        worker.store.clone(),
        Arc::clone(&worker.in_flight),
        config.id.clone(),
        config.lease,
        stop_background.clone(),
    ));
    let dsn = DsnTask {
        store: worker.store.clone(),
        hostname: config.hostname.clone(),
        wake: Arc::clone(&worker.dsn_wake),
        poll_interval: config.poll_interval,
    };
    background.spawn(dsn_task::run(dsn, stop_background.clone()));
    background.spawn(gauges::run(worker.store.clone(), stop_background.clone()));
    background.spawn(throttle::renew(
        Arc::clone(&worker.destinations.throttle),
        stop_background.clone(),
    ));
    background.spawn(pool::sweep(
        Arc::clone(&worker.destinations.connections),
        stop_background.clone(),
    ));
    background.spawn(retention::run(
        worker.store.clone(),
        config.retention,
        stop_background.clone(),
    ));

    // Suspensions and routes must be known before the first claim; a database that is down
    // delays the start a little, then the claim fails anyway until it is back.
    if !worker.control.first_read(FIRST_CONTROL_READ).await {
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
        claim_until_idle(&worker, &room, &claimed_tx, &shutdown).await;
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
    // Outcomes still on their way are recorded before any lease is handed back: released
    // first, a delivered job would be delivered again.
    let pending = &worker.destinations.recorder.pending;
    pending.close();
    pending.wait().await;
    worker.destinations.connections.close_all().await;
    worker.destinations.throttle.release_all().await;
    match worker.store.release(&config.id).await {
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
    worker: &Worker,
    room: &Room<'_>,
    claimed: &watch::Sender<u64>,
    shutdown: &CancellationToken,
) {
    let config = &worker.config;
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
        let jobs = match worker
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
        let result = if claimed_count == 0 { "empty" } else { "jobs" };
        ::metrics::counter!(metrics::CLAIMS_TOTAL, "result" => result).increment(1);
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
            let held = worker
                .in_flight
                .hold(group.iter().map(ClaimedJob::key).collect());
            let Ok(permit) = slots.clone().acquire_owned().await else {
                return;
            };
            let destinations = Arc::clone(&worker.destinations);
            let abort = room.abort.clone();
            room.deliveries.spawn(async move {
                tokio::select! {
                    () = abort.cancelled() => {}
                    () = destination::deliver(&destinations, group) => {}
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

/// Renews the leases of the jobs in `in_flight` every third of a lease, and no others.
async fn renew_leases(
    store: PgJobStore,
    in_flight: Arc<InFlight>,
    worker_id: String,
    lease: std::time::Duration,
    stop: CancellationToken,
) {
    let every = lease / 3;
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            () = tokio::time::sleep(every) => {}
        }
        let jobs = in_flight.jobs();
        if let Err(error) = store.renew_leases(&worker_id, &jobs, lease).await {
            ::metrics::counter!(metrics::STORE_ERRORS_TOTAL, "op" => "renew").increment(1);
            tracing::warn!(%error, "renewing leases failed");
        }
    }
}
