//! Destination limits held across the whole cluster, in PostgreSQL, which every worker already
//! shares: connection slots per site, leased like jobs, and a per-minute count of the messages
//! handed to it.
//!
//! A site is where mail goes as a mailbox provider sees it: the sorted set of MX host names of a
//! domain (every domain hosted at one provider shares it), or a relay host. A worker takes a
//! slot before it opens a connection and keeps it for the connection's life, idle time in the
//! connection cache included; the slot goes back when the connection closes. Slots are renewed
//! with the worker's job leases and expire with them, so a dead worker's slots come free within
//! its lease. A worker that was stopped longer than its lease finds at the next renewal that it
//! lost a slot, and closes that connection instead of reusing it.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use sqlx::PgPool;
use tern_common::control::ControlPlane;
use time::OffsetDateTime;
use tokio_util::sync::CancellationToken;

use crate::metrics;

/// Where mail goes, for the limits: the MX host set, or the relay host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Site {
    /// The hosts, lower-cased, without trailing dots, sorted and without repeats.
    hosts: Vec<String>,
    /// The hosts joined by commas: the slots' and the counts' key.
    key: String,
}

impl Site {
    pub(crate) fn of<'a>(hosts: impl IntoIterator<Item = &'a str>) -> Self {
        let mut hosts: Vec<String> = hosts
            .into_iter()
            .map(|host| host.trim_end_matches('.').to_ascii_lowercase())
            .collect();
        hosts.sort();
        hosts.dedup();
        let key = hosts.join(",");
        Site { hosts, key }
    }

    pub(crate) fn key(&self) -> &str {
        &self.key
    }
}

/// The limits in force for one site.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SiteLimits {
    pub(crate) connections: u32,
    pub(crate) messages_per_minute: Option<u32>,
}

/// The cluster-wide limits, as one worker takes part in them.
pub(crate) struct Throttle {
    pool: PgPool,
    /// The worker's id: who holds a slot.
    holder: String,
    /// How long a slot lasts unless renewed: the worker's job lease.
    lease: Duration,
    defaults: SiteLimits,
    /// The slots this worker holds, each with the flag its connection reads before reuse.
    held: Mutex<HashMap<(String, i32), Arc<AtomicBool>>>,
}

impl Throttle {
    pub(crate) fn new(pool: PgPool, holder: String, lease: Duration, defaults: SiteLimits) -> Self {
        Throttle {
            pool,
            holder,
            lease,
            defaults,
            held: Mutex::default(),
        }
    }

    /// The limits of `site`: the control plane's row for it, else the workers' defaults.
    pub(crate) fn limits(&self, plane: &ControlPlane, site: &Site) -> SiteLimits {
        match plane.destination_limit(&site.hosts) {
            Some(row) => SiteLimits {
                connections: row.max_connections.unwrap_or(self.defaults.connections),
                messages_per_minute: row
                    .max_messages_per_minute
                    .or(self.defaults.messages_per_minute),
            },
            None => self.defaults,
        }
    }

    /// A connection slot of `site`, waiting while all `limit` of them are held (by any worker);
    /// `on_wait` runs each time none was free. A database error counts as no slot free: the
    /// attempt waits rather than exceed the limit.
    pub(crate) async fn slot(
        self: &Arc<Self>,
        site: &Site,
        limit: u32,
        on_wait: impl Fn(),
    ) -> Slot {
        let mut pause = Duration::from_millis(20);
        loop {
            match self.try_slot(site, limit).await {
                Ok(Some(slot)) => return slot,
                Ok(None) => {
                    ::metrics::counter!(metrics::SLOT_WAITS_TOTAL).increment(1);
                    on_wait();
                }
                Err(error) => {
                    ::metrics::counter!(metrics::STORE_ERRORS_TOTAL, "op" => "slot").increment(1);
                    tracing::warn!(%error, site = site.key(), "could not take a connection slot");
                }
            }
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(Duration::from_secs(1));
        }
    }

    /// A free slot number below `limit`, or `None` when every one is held and live.
    ///
    /// The search starts at a random number and wraps around, stopping at the first free one, so
    /// that workers taking slots at once rarely want the same number and a site far from its
    /// limit costs a probe or two, not a scan of every number (the last of the tries scans them
    /// all, so a nearly full site is not mistaken for a full one). Two that still want one number:
    /// the primary key decides, the loser sees no row, and since slots were still free it tries
    /// again at once rather than wait as if the site were full.
    async fn try_slot(
        self: &Arc<Self>,
        site: &Site,
        limit: u32,
    ) -> Result<Option<Slot>, sqlx::Error> {
        const RACES: usize = 4;
        let limit = i32::try_from(limit).unwrap_or(i32::MAX);
        for race in 1..=RACES {
            let start = fastrand::i32(0..limit.max(1));
            // A window of numbers at a time; the last try looks at all of them.
            let window = if race == RACES { limit } else { limit.min(64) };
            let slot: Option<i32> = sqlx::query_scalar(
                "INSERT INTO destination_slots AS held (site, slot, holder, expires_at)
                 SELECT $1, n, $2, now() + $4 * interval '1 millisecond'
                   FROM (SELECT (($5 + k) % $3)::int AS n FROM generate_series(0, $6 - 1) AS k) AS c
                  WHERE NOT EXISTS (SELECT 1 FROM destination_slots
                                     WHERE site = $1 AND slot = c.n AND expires_at > now())
                  LIMIT 1
                 ON CONFLICT (site, slot) DO UPDATE
                    SET holder = EXCLUDED.holder, expires_at = EXCLUDED.expires_at
                  WHERE held.expires_at <= now()
                 RETURNING slot",
            )
            .bind(site.key())
            .bind(&self.holder)
            .bind(limit)
            .bind(millis(self.lease))
            .bind(start)
            .bind(window)
            .fetch_optional(&self.pool)
            .await?;
            if let Some(number) = slot {
                return Ok(Some(self.held_slot(site, number)));
            }
            let live: i64 = sqlx::query_scalar(
                "SELECT count(*) FROM destination_slots WHERE site = $1 AND expires_at > now()",
            )
            .bind(site.key())
            .fetch_one(&self.pool)
            .await?;
            if live >= i64::from(limit) {
                return Ok(None);
            }
        }
        Ok(None)
    }

    fn held_slot(self: &Arc<Self>, site: &Site, number: i32) -> Slot {
        let lost = Arc::new(AtomicBool::new(false));
        self.registry()
            .insert((site.key().to_owned(), number), Arc::clone(&lost));
        Slot {
            throttle: Arc::clone(self),
            site: site.key().to_owned(),
            number,
            lost,
        }
    }

    /// Of `wanted` messages for `site`, how many may go in this minute (at most
    /// `per_minute` a minute, cluster-wide), and when the next minute starts.
    pub(crate) async fn grant(
        &self,
        site: &Site,
        wanted: u32,
        per_minute: u32,
    ) -> Result<(u32, OffsetDateTime), sqlx::Error> {
        let (granted, next): (i32, OffsetDateTime) = sqlx::query_as(
            "INSERT INTO destination_sends AS d (site, window_start, sent, granted)
             VALUES ($1, date_trunc('minute', now()), LEAST($2, $3), LEAST($2, $3))
             ON CONFLICT (site, window_start) DO UPDATE
                SET sent = d.sent + LEAST($2, $3 - d.sent),
                    granted = LEAST($2, $3 - d.sent)
             RETURNING granted, window_start + interval '1 minute'",
        )
        .bind(site.key())
        .bind(i32::try_from(wanted).unwrap_or(i32::MAX))
        .bind(i32::try_from(per_minute).unwrap_or(i32::MAX))
        .fetch_one(&self.pool)
        .await?;
        Ok((u32::try_from(granted).unwrap_or(0), next))
    }

    /// Renews every slot this worker holds; marks those it no longer holds (it was stopped past
    /// its lease and another worker took them) lost, so their connections are not reused.
    async fn renew(&self) -> Result<(), sqlx::Error> {
        let kept: Vec<(String, i32)> = sqlx::query_as(
            "UPDATE destination_slots SET expires_at = now() + $2 * interval '1 millisecond'
              WHERE holder = $1 AND expires_at > now()
              RETURNING site, slot",
        )
        .bind(&self.holder)
        .bind(millis(self.lease))
        .fetch_all(&self.pool)
        .await?;
        let kept: std::collections::HashSet<(String, i32)> = kept.into_iter().collect();
        for (key, lost) in self.registry().iter() {
            if !kept.contains(key) {
                lost.store(true, Ordering::SeqCst);
            }
        }
        // Minutes long past: nobody asks for them again.
        sqlx::query(
            "DELETE FROM destination_sends WHERE window_start < now() - interval '10 minutes'",
        )
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Gives back every slot this worker holds (shutdown, after its connections closed).
    pub(crate) async fn release_all(&self) {
        if let Err(error) = sqlx::query("DELETE FROM destination_slots WHERE holder = $1")
            .bind(&self.holder)
            .execute(&self.pool)
            .await
        {
            tracing::warn!(%error, "could not give connection slots back; they expire on their own");
        }
    }

    fn registry(&self) -> std::sync::MutexGuard<'_, HashMap<(String, i32), Arc<AtomicBool>>> {
        self.held
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// Renews the worker's slots every third of the lease until `stop`.
pub(crate) async fn renew(throttle: Arc<Throttle>, stop: CancellationToken) {
    let every = throttle.lease / 3;
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            () = tokio::time::sleep(every) => {}
        }
        if let Err(error) = throttle.renew().await {
            ::metrics::counter!(metrics::STORE_ERRORS_TOTAL, "op" => "renew_slots").increment(1);
            tracing::warn!(%error, "could not renew connection slots");
        }
    }
}

/// One connection slot of a site, held for as long as this value lives.
pub(crate) struct Slot {
    throttle: Arc<Throttle>,
    site: String,
    number: i32,
    lost: Arc<AtomicBool>,
}

impl Slot {
    pub(crate) fn site(&self) -> &str {
        &self.site
    }

    /// Whether another worker took this slot over after it expired: its connection must close.
    pub(crate) fn is_lost(&self) -> bool {
        self.lost.load(Ordering::SeqCst)
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let key = (std::mem::take(&mut self.site), self.number);
        self.throttle.registry().remove(&key);
        if self.is_lost() {
            return;
        }
        let throttle = Arc::clone(&self.throttle);
        // Dropped outside a runtime (the worker is gone): the slot expires on its own.
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move {
                let (site, number) = key;
                if let Err(error) = sqlx::query(
                    "DELETE FROM destination_slots WHERE site = $1 AND slot = $2 AND holder = $3",
                )
                .bind(&site)
                .bind(number)
                .bind(&throttle.holder)
                .execute(&throttle.pool)
                .await
                {
                    tracing::debug!(%error, site, "connection slot not given back; it expires");
                }
            });
        }
    }
}

fn millis(duration: Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;
    use std::sync::Arc;
    use std::time::Duration;

    use tern_testkit::TestDatabase;

    use super::{Site, SiteLimits, Throttle};

    fn throttle(db: &TestDatabase, holder: &str) -> Arc<Throttle> {
        let defaults = SiteLimits {
            connections: 20,
            messages_per_minute: None,
        };
        let lease = Duration::from_secs(60);
        Arc::new(Throttle::new(
            db.pool.clone(),
            holder.to_owned(),
            lease,
            defaults,
        ))
    }

    /// Workers taking slots of one site at the same moment: far from the limit, every one gets a
    /// slot at once (a lost race is not a full site), and no number is held twice.
    #[tokio::test]
    async fn slots_taken_at_once_far_from_the_limit_all_succeed() {
        let db = TestDatabase::create().await;
        let site = Site::of(["mx.provider.test"]);
        let mut takers = Vec::new();
        for n in 0..40 {
            let throttle = throttle(&db, &format!("worker-{}", n % 4));
            let site = site.clone();
            takers.push(tokio::spawn(async move {
                let slot = throttle.try_slot(&site, 1000).await.expect("slot");
                slot.map(|slot| {
                    let number = slot.number;
                    std::mem::forget(slot); // held to the end of the test
                    number
                })
            }));
        }
        let mut numbers = HashSet::new();
        for taker in takers {
            let number = taker.await.expect("taker");
            let number = number.expect("a free slot was reported as none");
            assert!(numbers.insert(number), "slot {number} handed out twice");
        }
    }

    /// A full site has no slot; a nearly full one has its last free number found.
    #[tokio::test]
    async fn a_full_site_has_none_and_the_last_free_number_is_found() {
        let db = TestDatabase::create().await;
        let site = Site::of(["mx.provider.test"]);
        sqlx::query(
            "INSERT INTO destination_slots (site, slot, holder, expires_at)
             SELECT $1, n, 'other', now() + interval '1 minute'
               FROM generate_series(0, 199) AS n WHERE n <> 137",
        )
        .bind(site.key())
        .execute(&db.pool)
        .await
        .expect("slots");
        let throttle = throttle(&db, "me");
        let last = throttle.try_slot(&site, 200).await.expect("slot");
        let last = last.expect("the last free slot");
        assert_eq!(last.number, 137);
        std::mem::forget(last);
        assert!(throttle.try_slot(&site, 200).await.expect("slot").is_none());
    }

    #[test]
    fn a_site_is_its_hosts_in_one_spelling_and_order() {
        let one = Site::of(["MX2.example.net.", "mx1.example.net", "mx2.example.net"]);
        let other = Site::of(["mx1.example.net", "mx2.example.net"]);
        assert_eq!(one, other);
        assert_eq!(one.key(), "mx1.example.net,mx2.example.net");
    }
}
