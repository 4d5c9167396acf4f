//! Idle connections kept for a moment after a group is done, so the next group for the same
//! destination skips connect, greeting, EHLO and STARTTLS (Postfix's scache does the same). Each
//! keeps the cluster-wide slot it was opened with: an idle connection is still a connection the
//! destination counts.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

use crate::delivery::client::Connection;
use crate::throttle::Slot;

/// How long an idle connection is kept; servers drop idle clients after a few seconds too.
const IDLE_FOR: Duration = Duration::from_secs(5);

/// An open connection and the slot it holds.
pub(crate) struct Held {
    pub(crate) connection: Connection,
    pub(crate) slot: Slot,
}

impl Held {
    /// Says goodbye, then gives the slot back.
    pub(crate) async fn close(self) {
        let Held { connection, slot } = self;
        connection.quit().await;
        drop(slot);
    }
}

pub(crate) struct ConnectionCache {
    idle: Mutex<HashMap<String, Vec<(Held, Instant)>>>,
    per_destination: usize,
}

impl ConnectionCache {
    pub(crate) fn new(per_destination: usize) -> Self {
        Self {
            idle: Mutex::new(HashMap::new()),
            per_destination,
        }
    }

    /// A live idle connection to `key`, checked with RSET; stale, dead ones and those whose slot
    /// was lost are closed.
    pub(crate) async fn take(&self, key: &str) -> Option<Held> {
        loop {
            let (mut held, since) = {
                let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
                idle.get_mut(key)?.pop()?
            };
            if since.elapsed() > IDLE_FOR || held.slot.is_lost() {
                tokio::spawn(held.close());
                continue;
            }
            if held.connection.reset().await.is_ok() {
                return Some(held);
            }
        }
    }

    /// Keeps `held` for the next group to `key`, or closes it when enough are kept.
    pub(crate) fn put(&self, key: &str, held: Held) {
        let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
        let kept = idle.entry(key.to_owned()).or_default();
        if kept.len() < self.per_destination && !held.slot.is_lost() {
            kept.push((held, Instant::now()));
        } else {
            drop(idle);
            tokio::spawn(held.close());
        }
    }

    /// Closes the connections idle too long, so their slots go back even when no group for
    /// their destination comes.
    fn close_stale(&self) {
        self.close_where(|held, since| since.elapsed() > IDLE_FOR || held.slot.is_lost());
    }

    /// Closes this worker's idle connections to the site `site` (whatever domain they were
    /// opened for), so their slots serve a group that waits for one.
    pub(crate) fn close_idle_of(&self, site: &str) {
        self.close_where(|held, _| held.slot.site() == site);
    }

    /// Closes the idle connections `closing` picks (by the connection and when it went idle).
    fn close_where(&self, closing: impl Fn(&Held, Instant) -> bool) {
        let picked: Vec<Held> = {
            let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
            let mut picked = Vec::new();
            for kept in idle.values_mut() {
                let (close, keep): (Vec<_>, Vec<_>) = std::mem::take(kept)
                    .into_iter()
                    .partition(|(held, since)| closing(held, *since));
                *kept = keep;
                picked.extend(close.into_iter().map(|(held, _)| held));
            }
            idle.retain(|_, kept| !kept.is_empty());
            picked
        };
        for held in picked {
            tokio::spawn(held.close());
        }
    }

    /// Closes every idle connection (shutdown).
    pub(crate) async fn close_all(&self) {
        let all: Vec<Held> = {
            let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
            idle.drain()
                .flat_map(|(_, kept)| kept.into_iter().map(|(held, _)| held))
                .collect()
        };
        for held in all {
            held.close().await;
        }
    }
}

/// Closes stale idle connections every second until `stop`.
pub(crate) async fn sweep(cache: std::sync::Arc<ConnectionCache>, stop: CancellationToken) {
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            () = tokio::time::sleep(Duration::from_secs(1)) => cache.close_stale(),
        }
    }
}
