//! Worker metric names, defined once. Labels come from bounded enums only.

/// Recipients by outcome (`delivered`, `deferred`, `bounced`, `expired`).
pub(crate) const RECIPIENTS_TOTAL: &str = "tern_worker_recipients_total";
pub(crate) const JOBS_CLAIMED_TOTAL: &str = "tern_worker_jobs_claimed_total";
pub(crate) const CONNECTIONS_TOTAL: &str = "tern_worker_connections_total";
pub(crate) const DELIVERIES_ACTIVE: &str = "tern_worker_deliveries_active";
pub(crate) const DSNS_QUEUED_TOTAL: &str = "tern_worker_dsns_queued_total";
/// Leases found taken over by another worker when finishing (`finish`) — a sign the lease is
/// too short for the deliveries.
pub(crate) const LEASES_LOST_TOTAL: &str = "tern_worker_leases_lost_total";
/// Store errors by operation (`claim`, `finish`, `renew`, `dsn`).
pub(crate) const STORE_ERRORS_TOTAL: &str = "tern_worker_store_errors_total";
