//! Greylisting as postgrey does it: the first delivery attempt of a (client network, sender,
//! recipient) triplet is deferred; the same triplet coming back after the delay and within the
//! retry window passes, and stays passed while it keeps being seen. A client network with
//! enough passed triplets skips greylisting altogether. The state lives in PostgreSQL, so every
//! ingress pod greylists alike, and one statement per recipient decides.
//!
//! Triplets are normalised so that a legitimate sender's retries look the same: the client's
//! /24 (IPv4) or /64 (IPv6), the sender lower-cased without BATV (`prvs=…=`) or SRS wrapping,
//! with digit runs in its local part folded to `#` (VERP and per-message bounce addresses),
//! and the recipient lower-cased.

#[cfg(test)]
mod tests;

use std::net::IpAddr;
use std::time::Duration;

use ipnet::IpNet;
use sqlx::PgPool;

use crate::policy::canonical;
use crate::queue::QueueError;

/// Postgrey's defaults where it has them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GreylistSettings {
    /// How long a new triplet is deferred (postgrey `--delay`, 300 s).
    pub delay: Duration,
    /// How long after its first attempt a triplet may come back and pass (postgrey
    /// `--retry-window`, 2 days); after it, the triplet starts again.
    pub retry_window: Duration,
    /// A triplet not seen for this long is forgotten (postgrey `--max-age`, 35 days).
    pub max_age: Duration,
    /// Passed triplets after which a client network is no longer greylisted (postgrey
    /// `--auto-whitelist-clients`, 5); 0: never.
    pub auto_allow_clients: u32,
}

/// One delivery attempt, normalised.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Triplet {
    pub client_net: IpNet,
    pub sender: String,
    pub recipient: String,
}

/// What greylisting says about one recipient.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Grey {
    /// The triplet has passed before: accept.
    Passed,
    /// The client network has passed often enough to be trusted: accept.
    ClientAllowed,
    /// Try again later; the delay ends after `retry_after`.
    Deferred { retry_after: Duration },
}

/// The network a client is judged by: its /24, or its /64 for IPv6 (one host's neighbours, or
/// one site's pool of outbound servers, share it).
pub fn client_network(client: IpAddr) -> IpNet {
    match canonical(client) {
        IpAddr::V4(v4) => IpNet::new(v4.into(), 24),
        IpAddr::V6(v6) => IpNet::new(v6.into(), 64),
    }
    .map(|net| net.trunc())
    .unwrap_or_else(|_| IpNet::from(client))
}

impl Triplet {
    pub fn new(client: IpAddr, sender: &str, recipient: &str) -> Self {
        Self {
            client_net: client_network(client),
            sender: normalise_sender(sender),
            recipient: recipient.to_lowercase(),
        }
    }
}

/// `prvs=1234abcdef=user@example.org` → `user@example.org`; `SRS0=hash=tt=example.org=user@fwd`
/// → `user@example.org`; digit runs in the local part → `#`.
pub fn normalise_sender(sender: &str) -> String {
    let sender = sender.to_lowercase();
    let Some((local, domain)) = sender.rsplit_once('@') else {
        return sender;
    };
    let (local, domain) = unwrap_srs(local).unwrap_or((local.to_owned(), domain.to_owned()));
    let local = match local
        .strip_prefix("prvs=")
        .and_then(|rest| rest.split_once('='))
    {
        Some((_tag, original)) => original.to_owned(),
        None => local,
    };
    let mut folded = String::with_capacity(local.len());
    for c in local.chars() {
        if !c.is_ascii_digit() {
            folded.push(c);
        } else if !folded.ends_with('#') {
            folded.push('#');
        }
    }
    format!("{folded}@{domain}")
}

/// SRS0 (`SRS0=hash=tt=domain=local`) and SRS1 (`SRS1=hash=forwarder==hash=tt=domain=local`).
fn unwrap_srs(local: &str) -> Option<(String, String)> {
    let rest = local
        .strip_prefix("srs0=")
        .or_else(|| local.strip_prefix("srs1="))?;
    let fields: Vec<&str> = rest.split('=').collect();
    match fields.as_slice() {
        [.., _hash, _time, domain, original] if !domain.is_empty() && !original.is_empty() => {
            Some(((*original).to_owned(), (*domain).to_owned()))
        }
        _ => None,
    }
}

/// The shared greylist.
#[derive(Debug, Clone)]
pub struct Greylist {
    pool: PgPool,
    settings: GreylistSettings,
}

impl Greylist {
    pub fn new(pool: PgPool, settings: GreylistSettings) -> Self {
        Self { pool, settings }
    }

    pub fn settings(&self) -> GreylistSettings {
        self.settings
    }

    /// Records this attempt of `triplet` and says whether it passes. One statement: the upsert
    /// resets a triplet that outlived its retry window or its age, and passes one whose delay
    /// is over.
    pub async fn check(&self, triplet: &Triplet) -> Result<Grey, QueueError> {
        let s = self.settings;
        if self.client_allowed(triplet).await? {
            return Ok(Grey::ClientAllowed);
        }
        let (passed, waited): (bool, f64) = sqlx::query_as(
            "INSERT INTO greylist AS g (client_net, sender, recipient)
             VALUES ($1, $2, $3)
             ON CONFLICT (client_net, sender, recipient) DO UPDATE SET
               first_seen = CASE
                 WHEN g.last_seen < now() - make_interval(secs => $6)
                   OR (NOT g.passed AND g.first_seen < now() - make_interval(secs => $5))
                 THEN now() ELSE g.first_seen END,
               passed = g.last_seen >= now() - make_interval(secs => $6)
                 AND (g.passed OR (g.first_seen <= now() - make_interval(secs => $4)
                                   AND g.first_seen >= now() - make_interval(secs => $5))),
               last_seen = now()
             RETURNING passed, extract(epoch FROM now() - first_seen)::float8",
        )
        .bind(triplet.client_net)
        .bind(&triplet.sender)
        .bind(&triplet.recipient)
        .bind(s.delay.as_secs_f64())
        .bind(s.retry_window.as_secs_f64())
        .bind(s.max_age.as_secs_f64())
        .fetch_one(&self.pool)
        .await?;
        if passed {
            return Ok(Grey::Passed);
        }
        let waited = Duration::from_secs_f64(waited.max(0.0));
        Ok(Grey::Deferred {
            retry_after: s.delay.saturating_sub(waited),
        })
    }

    /// Whether the triplet's client network has passed often enough to skip greylisting
    /// (postgrey's auto-whitelist-clients).
    async fn client_allowed(&self, triplet: &Triplet) -> Result<bool, QueueError> {
        let enough = self.settings.auto_allow_clients;
        if enough == 0 {
            return Ok(false);
        }
        let passed: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM (SELECT 1 FROM greylist
               WHERE client_net = $1 AND passed LIMIT $2) AS enough",
        )
        .bind(triplet.client_net)
        .bind(i64::from(enough))
        .fetch_one(&self.pool)
        .await?;
        Ok(passed >= i64::from(enough))
    }

    /// What [`check`](Self::check) would say now, without recording the attempt (for
    /// troubleshooting).
    pub async fn peek(&self, triplet: &Triplet) -> Result<Grey, QueueError> {
        let s = self.settings;
        if self.client_allowed(triplet).await? {
            return Ok(Grey::ClientAllowed);
        }
        // The same judgement as the upsert's, read only: (passes, seconds waited in the
        // current attempt window; 0 for a triplet that starts anew).
        let row: Option<(bool, f64)> = sqlx::query_as(
            "SELECT last_seen >= now() - make_interval(secs => $6)
                      AND (passed OR (first_seen <= now() - make_interval(secs => $4)
                                      AND first_seen >= now() - make_interval(secs => $5))),
                    CASE WHEN last_seen < now() - make_interval(secs => $6)
                           OR (NOT passed AND first_seen < now() - make_interval(secs => $5))
                         THEN 0 ELSE extract(epoch FROM now() - first_seen)::float8 END
               FROM greylist WHERE client_net = $1 AND sender = $2 AND recipient = $3",
        )
        .bind(triplet.client_net)
        .bind(&triplet.sender)
        .bind(&triplet.recipient)
        .bind(s.delay.as_secs_f64())
        .bind(s.retry_window.as_secs_f64())
        .bind(s.max_age.as_secs_f64())
        .fetch_optional(&self.pool)
        .await?;
        let (passed, waited) = row.unwrap_or((false, 0.0));
        if passed {
            return Ok(Grey::Passed);
        }
        Ok(Grey::Deferred {
            retry_after: s
                .delay
                .saturating_sub(Duration::from_secs_f64(waited.max(0.0))),
        })
    }

    /// Forgets up to `batch` triplets not seen for `max_age`; returns how many.
    pub async fn expire(&self, batch: u32) -> Result<u64, QueueError> {
        let deleted = sqlx::query(
            "DELETE FROM greylist WHERE ctid = ANY (ARRAY(
               SELECT ctid FROM greylist WHERE last_seen < now() - make_interval(secs => $1)
               LIMIT $2))",
        )
        .bind(self.settings.max_age.as_secs_f64())
        .bind(i64::from(batch))
        .execute(&self.pool)
        .await?;
        Ok(deleted.rows_affected())
    }
}
