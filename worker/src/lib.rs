//! Tern's delivery workers.
//!
//! A worker claims due recipient jobs from PostgreSQL under a lease, routes them (static routes,
//! a smarthost, or MX), delivers them over SMTP or LMTP, and records every attempt; failures are
//! retried on a backoff schedule or bounced with an RFC 3464 report.
//!
//! - [`config`]: `tern worker` settings ([`WorkerArgs`] → [`WorkerConfig`]).
//! - [`runner`]: the claim loop, lease renewal and shutdown ([`Worker`], [`run`]).
//! - `destination`: one destination's share of a claim, from route to recorded outcomes.
//! - `plan`: a destination's route and the hosts it resolves to.
//! - `record`: verdicts to recorded outcomes: retry time, expiry, owed notifications.
//! - `dsn_task`: queues the notifications finished jobs owe.
//! - `retention`: the sweep that forgets finished messages' bodies, then their history.
//! - `gauges`: queue depth and the oldest due job, refreshed from PostgreSQL.
//! - `in_flight`: the claimed jobs still being worked on, whose leases are renewed.
//! - `pool`: idle connections kept for the next group to the same destination.
//! - [`metrics`]: metric names and histogram buckets, defined once.
//! - `notices`: JetStream notices that wake the claim loop.
//! - [`delivery`]: one attempt: routing ([`delivery::route`], [`delivery::mx`]), the SMTP/LMTP
//!   client ([`delivery::client`], [`delivery::tls`]), what a reply means
//!   ([`delivery::outcome`]) and delivery status notifications ([`delivery::dsn`]).
//! - `trace`: the delivery attempt span (child of the accepting transaction) and its children.
//! - [`schedule`]: when a deferred recipient is tried again, and when it expires.

pub mod config;
pub mod delivery;
mod destination;
mod dsn_task;
mod gauges;
mod in_flight;
pub mod metrics;
mod notices;
mod plan;
mod pool;
mod record;
mod retention;
pub mod runner;
pub mod schedule;
mod throttle;
mod trace;

pub use config::{WorkerArgs, WorkerConfig};
pub use runner::{Worker, WorkerError, run};
