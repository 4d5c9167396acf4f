//! Everything Tern's components share that talks to the outside world.
//!
//! - [`checks`]: listener roles and which reputation checks each runs on strangers.
//! - [`config`]: the configuration groups every component flattens into its own (database, NATS,
//!   admin HTTP, logging), their validation, and the exit code for invalid configuration.
//! - [`control`]: the live control plane (domains, networks, blocklist, certificates,
//!   suspensions) in PostgreSQL, and the snapshot every pod keeps current.
//! - [`route`]: next hops in Postfix's transport syntax (static routes, smarthost, domain rows).
//! - [`queue`]: the durable queue in PostgreSQL: commit, claim and finish, depth.
//! - [`bus`]: the NATS JetStream work-queue notices that wake delivery workers.
//! - [`policy`]: pure relay policy (local domains, trusted networks).
//! - [`admin`]: the small admin HTTP server (`/metrics`, `/healthz`, `/readyz`).
//! - [`telemetry`]: structured logs, OpenTelemetry traces, span and attribute names.
//! - [`shutdown`]: SIGTERM/SIGINT as a cancellation token.
//! - [`users`]: SMTP AUTH users, argon2id passwords, senders they own, a lockout shared by pods.

pub mod admin;
pub mod bus;
pub mod checks;
pub mod config;
pub mod control;
pub mod dns;
pub mod dnsbl;
pub mod greylist;
pub mod policy;
pub mod queue;
pub mod ratelimit;
pub mod route;
pub mod shutdown;
pub mod telemetry;
pub mod troubleshoot;
pub mod users;
