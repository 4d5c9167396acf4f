//! Cluster-wide rate limits: every ingress pod counts against the same PostgreSQL row, so a
//! limit of 100 messages an hour holds for the cluster, not for each pod.
//!
//! Each key is a GCRA (generic cell rate algorithm) cell: the row keeps one timestamp, the
//! "theoretical arrival time" (TAT). A limit of `count` per `period` spaces events `period /
//! count` apart and tolerates a burst of `count`. An event at `now` is allowed when `max(TAT,
//! now) - now <= period - interval`, and then moves TAT by one interval. One upsert per event
//! decides, with no read-modify-write race between pods: the row lock serialises them.

#[cfg(test)]
mod tests;

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use sqlx::PgPool;

use crate::config::parse_duration;
use crate::queue::QueueError;

/// `count` events per `period`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limit {
    pub count: u32,
    pub period: Duration,
}

impl Limit {
    /// The spacing of events at the sustained rate.
    fn interval(&self) -> Duration {
        self.period / self.count
    }

    /// How far ahead of now the TAT may run: a burst of `count` events.
    fn tolerance(&self) -> Duration {
        self.period.saturating_sub(self.interval())
    }
}

impl FromStr for Limit {
    type Err = String;

    /// `100/1h`, `10/30s`.
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let (count, period) = text
            .split_once('/')
            .ok_or_else(|| format!("'{text}' is not COUNT/PERIOD, e.g. 100/1h"))?;
        let count: u32 = count
            .trim()
            .parse()
            .map_err(|_| format!("'{count}' is not a count"))?;
        let period = parse_duration(period.trim())?;
        if count == 0 || period.is_zero() {
            return Err(format!(
                "'{text}': the count and the period must be above zero"
            ));
        }
        Ok(Self { count, period })
    }
}

impl fmt::Display for Limit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}s", self.count, self.period.as_secs())
    }
}

/// What a limit says about one event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rate {
    Allowed,
    /// Over the limit; the next event is allowed after this long.
    Limited {
        retry_after: Duration,
    },
}

/// The shared limiter.
#[derive(Debug, Clone)]
pub struct RateLimiter {
    pool: PgPool,
}

impl RateLimiter {
    pub fn new(pool: PgPool) -> Self {
        Self { pool }
    }

    /// Counts one event for `key` under `limit`, if the limit allows it.
    pub async fn check(&self, key: &str, limit: Limit) -> Result<Rate, QueueError> {
        let interval = limit.interval().as_secs_f64();
        let tolerance = limit.tolerance().as_secs_f64();
        let allowed: Option<bool> = sqlx::query_scalar(
            "INSERT INTO rate_limits AS r (key, tat)
             VALUES ($1, now() + make_interval(secs => $2))
             ON CONFLICT (key) DO UPDATE
               SET tat = greatest(r.tat, now()) + make_interval(secs => $2)
               WHERE greatest(r.tat, now()) - now() <= make_interval(secs => $3)
             RETURNING true",
        )
        .bind(key)
        .bind(interval)
        .bind(tolerance)
        .fetch_optional(&self.pool)
        .await?;
        if allowed.is_some() {
            return Ok(Rate::Allowed);
        }
        let ahead: Option<f64> = sqlx::query_scalar(
            "SELECT extract(epoch FROM greatest(tat, now()) - now())::float8
               FROM rate_limits WHERE key = $1",
        )
        .bind(key)
        .fetch_optional(&self.pool)
        .await?;
        let wait = ahead.unwrap_or(0.0) - tolerance;
        Ok(Rate::Limited {
            retry_after: Duration::from_secs_f64(wait.max(0.0)),
        })
    }

    /// Deletes up to `batch` keys whose TAT is past (they hold nothing back); returns how many.
    pub async fn expire(&self, batch: u32) -> Result<u64, QueueError> {
        let deleted = sqlx::query(
            "DELETE FROM rate_limits WHERE key = ANY (ARRAY(
               SELECT key FROM rate_limits WHERE tat < now() LIMIT $1))",
        )
        .bind(i64::from(batch))
        .execute(&self.pool)
        .await?;
        Ok(deleted.rows_affected())
    }
}
