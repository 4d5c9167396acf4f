//! [`ControlWatch`]: a pod's current control-plane snapshot, swapped whole when the revision
//! moves. A change notice on NATS makes the swap immediate; a poll every
//! `TERN_CONTROL_POLL_INTERVAL` catches a notice that was lost or a NATS that is down. A failed
//! read keeps the snapshot in service and tries again at the next notice or poll.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use super::snapshot::ControlPlane;
use super::store::PgControlStore;
use crate::bus::Bus;

/// The revision each pod runs, on its `/metrics`.
pub const REVISION_GAUGE: &str = "tern_control_plane_revision";
/// Snapshot reads by result (`ok`, `error`).
pub const LOADS_TOTAL: &str = "tern_control_plane_loads_total";

/// Cheap to clone; every clone sees the same current snapshot.
#[derive(Clone)]
pub struct ControlWatch {
    current: watch::Receiver<Arc<ControlPlane>>,
}

impl ControlWatch {
    /// A snapshot that never changes (tests, and a pod without a database).
    pub fn fixed(plane: ControlPlane) -> Self {
        let (_, current) = watch::channel(Arc::new(plane));
        Self { current }
    }

    /// Starts keeping a snapshot current; it is empty (revision 0) until the first read.
    pub fn spawn(
        store: PgControlStore,
        bus: Option<Bus>,
        poll: Duration,
        stop: CancellationToken,
    ) -> Self {
        let (sender, current) = watch::channel(Arc::new(ControlPlane::default()));
        tokio::spawn(keep_current(store, bus, poll, sender, stop));
        Self { current }
    }

    /// The snapshot in force now. Hold it for a session or a delivery, not longer.
    pub fn current(&self) -> Arc<ControlPlane> {
        self.current.borrow().clone()
    }

    /// Waits (up to `limit`) for the first snapshot read from PostgreSQL; whether it came.
    pub async fn first_read(&self, limit: Duration) -> bool {
        let mut current = self.current.clone();
        tokio::time::timeout(limit, current.wait_for(|plane| plane.revision > 0))
            .await
            .is_ok_and(|seen| seen.is_ok())
    }

    /// Waits for the next swap (forever, once the task keeping it current has ended).
    pub async fn changed(&mut self) {
        if self.current.changed().await.is_err() {
            std::future::pending::<()>().await;
        }
    }

    /// Waits until a snapshot of at least `revision` is in force.
    pub async fn reached(&mut self, revision: i64) {
        let _ = self
            .current
            .wait_for(|plane| plane.revision >= revision)
            .await;
    }
}

async fn keep_current(
    store: PgControlStore,
    bus: Option<Bus>,
    poll: Duration,
    sender: watch::Sender<Arc<ControlPlane>>,
    stop: CancellationToken,
) {
    let mut notices = match &bus {
        Some(bus) => match bus.control_changes().await {
            Ok(subscriber) => Some(subscriber),
            Err(error) => {
                tracing::warn!(%error, "no control-plane notices; changes arrive by polling");
                None
            }
        },
        None => None,
    };
    loop {
        refresh(&store, &sender).await;
        let notice = async {
            match notices.as_mut() {
                Some(subscriber) => subscriber.next().await.is_some(),
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            () = stop.cancelled() => return,
            alive = notice => if !alive {
                // The subscription ended (client closed): carry on by polling alone.
                notices = None;
            },
            () = tokio::time::sleep(poll) => {}
        }
    }
}

/// Reads the snapshot again when the stored revision differs from the one in force.
async fn refresh(store: &PgControlStore, sender: &watch::Sender<Arc<ControlPlane>>) {
    let in_force = sender.borrow().revision;
    match store.revision().await {
        Ok(revision) if revision == in_force => return,
        Ok(_) => {}
        Err(error) => {
            ::metrics::counter!(LOADS_TOTAL, "result" => "error").increment(1);
            tracing::warn!(%error, revision = in_force, "control plane not read; keeping the snapshot in force");
            return;
        }
    }
    match store.load().await {
        Ok(plane) => {
            ::metrics::counter!(LOADS_TOTAL, "result" => "ok").increment(1);
            ::metrics::gauge!(REVISION_GAUGE).set(plane.revision as f64);
            tracing::info!(
                revision = plane.revision,
                domains = plane.domains().count(),
                networks = plane.trusted_networks().len(),
                blocklist = plane.blocklist_len(),
                certificates = plane.certificates().len(),
                "control plane in force"
            );
            sender.send_replace(Arc::new(plane));
        }
        Err(error) => {
            ::metrics::counter!(LOADS_TOTAL, "result" => "error").increment(1);
            tracing::warn!(%error, revision = in_force, "control plane not read; keeping the snapshot in force");
        }
    }
}
