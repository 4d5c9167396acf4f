//! Worker metric names and histogram buckets, defined once. Labels come from bounded enums only.

/// Recipient attempts by outcome (`delivered`, `deferred`, `bounced`, `expired`): one per row of
/// the `attempts` table, so a recipient deferred twice and then delivered counts three times.
pub const ATTEMPTS_TOTAL: &str = "tern_worker_attempts_total";
/// Time from a message's arrival to a recipient's final outcome (`delivered`, `bounced`,
/// `expired`), by outcome. Deferrals are not final and are not observed.
pub const DELIVERY_SECONDS: &str = "tern_worker_delivery_seconds";
pub const JOBS_CLAIMED_TOTAL: &str = "tern_worker_jobs_claimed_total";
/// Claim statements run, by `result`: `jobs` (it leased some) or `empty` (nothing was due). Jobs
/// claimed over claims with jobs is the claim size, which shrinks when workers compete.
pub const CLAIMS_TOTAL: &str = "tern_worker_claims_total";
/// Jobs claimed whose previous lease had run out: the worker holding them died or stalled.
pub const LEASE_EXPIRIES_TOTAL: &str = "tern_worker_lease_expiries_total";
pub const CONNECTIONS_TOTAL: &str = "tern_worker_connections_total";
/// Tries for a connection slot that found every slot of the site held: the cluster-wide
/// connection limit of a destination at work.
pub const SLOT_WAITS_TOTAL: &str = "tern_worker_slot_waits_total";
/// Messages put off to the next minute because a destination's messages-per-minute limit was
/// spent (no attempt counted).
pub const RATE_POSTPONED_TOTAL: &str = "tern_worker_rate_postponed_total";
pub const DELIVERIES_ACTIVE: &str = "tern_worker_deliveries_active";
/// Delivery status notifications queued, by kind (`failure`: a bounce; `success`).
pub const DSNS_QUEUED_TOTAL: &str = "tern_worker_dsns_queued_total";
/// Leases found taken over by another worker when finishing (`finish`) — a sign the lease is
/// too short for the deliveries.
pub const LEASES_LOST_TOTAL: &str = "tern_worker_leases_lost_total";
/// Store errors by operation (`claim`, `finish`, `renew`, `dsn`, `load`, `depth`, `slot`,
/// `renew_slots`, `grant`, `postpone`).
pub const STORE_ERRORS_TOTAL: &str = "tern_worker_store_errors_total";
/// Unfinished jobs by status (`queued`, `deferred`, `leased`), from a periodic query.
pub const QUEUE_JOBS: &str = "tern_worker_queue_jobs";
/// How long the most overdue job has been due without being claimed (0 when none is due).
pub const QUEUE_OLDEST_DUE_SECONDS: &str = "tern_worker_queue_oldest_due_seconds";

/// Retention deletions by what went: `body` (a finished message's body), `message` (its history,
/// row by row, from a day kept for its stragglers), `day` (a day's partitions, dropped whole).
pub const RETENTION_DELETED_TOTAL: &str = "tern_worker_retention_deleted_total";

/// Recipients that keep a day past the history retention from being dropped: unfinished (held,
/// on long retries) or owing a notification, as this worker's last pass over the days counted.
pub const RETENTION_STRAGGLER_JOBS: &str = "tern_worker_retention_straggler_jobs";

/// Every worker metric, for checks that dashboards and alerts only name metrics that exist.
pub const ALL: &[&str] = &[
    ATTEMPTS_TOTAL,
    DELIVERY_SECONDS,
    JOBS_CLAIMED_TOTAL,
    CLAIMS_TOTAL,
    LEASE_EXPIRIES_TOTAL,
    CONNECTIONS_TOTAL,
    SLOT_WAITS_TOTAL,
    RATE_POSTPONED_TOTAL,
    DELIVERIES_ACTIVE,
    DSNS_QUEUED_TOTAL,
    LEASES_LOST_TOTAL,
    STORE_ERRORS_TOTAL,
    QUEUE_JOBS,
    QUEUE_OLDEST_DUE_SECONDS,
    RETENTION_DELETED_TOTAL,
    RETENTION_STRAGGLER_JOBS,
];

/// Buckets of [`DELIVERY_SECONDS`]: a message to a live server is delivered in about a second, a
/// deferred one after minutes or hours, and the last bucket is the default queue lifetime (5 d).
pub const DELIVERY_SECONDS_BUCKETS: &[f64] = &[
    0.1, 0.5, 1.0, 5.0, 15.0, 60.0, 300.0, 900.0, 1800.0, 3600.0, 7200.0, 14400.0, 43200.0,
    86400.0, 172800.0, 432000.0,
];

/// The bucket layout of every worker histogram, for the recorder.
pub const HISTOGRAMS: &[(&str, &[f64])] = &[(DELIVERY_SECONDS, DELIVERY_SECONDS_BUCKETS)];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_the_convention() {
        for name in ALL {
            assert!(name.starts_with("tern_worker_"), "{name}");
            let unit = ["_total", "_seconds", "_active", "_jobs"];
            assert!(unit.iter().any(|u| name.ends_with(u)), "{name}");
        }
    }
}
