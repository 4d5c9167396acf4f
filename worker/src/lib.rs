//! Tern's delivery workers.
//!
//! A worker claims due recipient jobs from PostgreSQL under a lease, routes them (static routes,
//! a smarthost, or MX), delivers them over SMTP or LMTP, and records every attempt; failures are
//! retried on a backoff schedule or bounced with an RFC 3464 report.
//!
//! - [`delivery`]: one attempt: routing ([`delivery::route`], [`delivery::mx`]), the SMTP/LMTP
//!   client ([`delivery::client`], [`delivery::tls`]), what a reply means
//!   ([`delivery::outcome`]) and delivery status notifications ([`delivery::dsn`]).
//! - [`schedule`]: when a deferred recipient is tried again, and when it expires.

pub mod delivery;
pub mod schedule;
