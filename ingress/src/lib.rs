//! Tern's SMTP ingress: accepts mail and answers `250` only once the message and one job per
//! recipient are committed in PostgreSQL, then wakes a worker with a JetStream notice.
//!
//! - [`config`]: `tern ingress` settings and their validation.
//! - [`server`]: accept loops over injected listeners, connection limits, graceful shutdown.
//! - `connection`: drives one [`tern_smtp::Session`] over a byte stream (PIPELINING-aware).
//! - `blocklist`: the control plane's blocklist at connect, MAIL and RCPT, and its replies.
//! - `deadline`: the time a client has for one record (a dribbling client is cut off).
//! - `policy`: the policy engine, one call per stage (connect, MAIL, RCPT) into the checks.
//! - [`dmarc`]: the From domain's DMARC policy over the SPF and DKIM results.
//! - `dnsbl`: DNS blocklists and allowlists asked at connect on the port 25 role.
//! - `greylist`: greylisting at RCPT on the port 25 role, and the expiry of old triplets.
//! - `accept`: turns a finished transaction into a committed queue entry.
//! - [`ratelimit`]: cluster-wide rate limits at MAIL and RCPT, and their replies.
//! - [`dkim`]: DKIM verification at the end of data, recorded in `Authentication-Results:`.
//! - [`spf`]: SPF at MAIL for port 25 strangers, recorded and, when asked, enforced.
//! - [`proxy`]: PROXY protocol settings and reading the header before the session.
//! - `received`: the RFC 5321 4.4 `Received:` header.
//! - [`submission`]: `Message-ID` and `Date` added to submitted messages that lack them.
//! - `limits`: total and per-client-IP connection counts.
//! - [`metrics`]: metric names and histogram buckets, defined once; reject stages and reasons.
//! - [`tls`]: rustls server config, certificates chosen by SNI and reloaded from disk.
//! - `stream`: plain TCP or TLS under one session.
//! - `trace`: the session, transaction, commit and publish spans.

pub mod config;
pub mod dkim;
pub mod dmarc;
pub mod metrics;
pub mod proxy;
pub mod ratelimit;
pub mod server;
pub mod spf;
pub mod submission;
pub mod tls;

mod accept;
mod blocklist;
mod canonical;
mod connection;
mod deadline;
mod dnsbl;
mod findings;
mod greylist;
mod limits;
mod live_policy;
mod policy;
mod received;
mod signing;
mod smtp_watch;
mod stream;
mod trace;
mod troubleshoot;

pub use config::{IngressArgs, IngressConfig, ListenerKind};
pub use server::{Ingress, run};
