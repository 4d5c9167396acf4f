//! Idle connections kept for a moment after a group is done, so the next group for the same
//! destination skips connect, greeting, EHLO and STARTTLS (Postfix's scache does the same).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::delivery::client::Connection;

/// How long an idle connection is kept; servers drop idle clients after a few seconds too.
const IDLE_FOR: Duration = Duration::from_secs(5);

pub(crate) struct ConnectionCache {
    idle: Mutex<HashMap<String, Vec<(Connection, Instant)>>>,
    per_destination: usize,
}

impl ConnectionCache {
    pub(crate) fn new(per_destination: usize) -> Self {
        Self {
            idle: Mutex::new(HashMap::new()),
            per_destination,
        }
    }

    /// A live idle connection to `key`, checked with RSET; stale or dead ones are closed.
    pub(crate) async fn take(&self, key: &str) -> Option<Connection> {
        loop {
            let (mut connection, since) = {
                let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
                idle.get_mut(key)?.pop()?
            };
            if since.elapsed() > IDLE_FOR {
                tokio::spawn(connection.quit());
                continue;
            }
            if connection.reset().await.is_ok() {
                return Some(connection);
            }
        }
    }

    /// Keeps `connection` for the next group to `key`, or closes it when enough are kept.
    pub(crate) fn put(&self, key: &str, connection: Connection) {
        let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
        let kept = idle.entry(key.to_owned()).or_default();
        kept.retain(|(_, since)| since.elapsed() <= IDLE_FOR);
        if kept.len() < self.per_destination {
            kept.push((connection, Instant::now()));
        } else {
            drop(idle);
            tokio::spawn(connection.quit());
        }
    }

    /// Closes every idle connection (shutdown).
    pub(crate) async fn close_all(&self) {
        let all: Vec<Connection> = {
            let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
            idle.drain()
                .flat_map(|(_, kept)| kept.into_iter().map(|(c, _)| c))
                .collect()
        };
        for connection in all {
            connection.quit().await;
        }
    }
}
