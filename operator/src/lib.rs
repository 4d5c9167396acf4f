//! Tern's Kubernetes operator: mail domains, users, blocklists and certificates as custom
//! resources, reconciled into the same control plane the admin API writes (rows owned by `crd`,
//! which the API refuses to change).
//!
//! - [`config`]: `tern operator`'s settings.
//! - [`run`]: the whole operator, its controllers behind the leader election.
//! - [`crd`]: the custom resources and their generated definitions.
//! - [`blocklists`]: the MailBlocklist reconciler.
//! - [`certificates`]: the MailCertificate reconciler; `cert_manager` asks cert-manager for one.
//! - [`domains`]: the MailDomain reconciler; `rotation` is its DKIM keys' state machine.
//! - [`users`]: the MailUser reconciler.
//! - [`condition`]: `Ready` conditions as the API conventions want them.
//! - [`events`]: Kubernetes events when a resource's readiness changes.
//! - [`leader`]: one replica reconciles at a time, elected with a Lease.
//! - [`error`]: what a reconcile can fail with, and its metric label.

pub mod blocklists;
mod cert_manager;
pub mod certificates;
pub mod condition;
pub mod config;
pub mod crd;
mod dkim;
pub mod domains;
pub mod error;
pub mod events;
pub mod leader;
mod metrics;
#[cfg(test)]
mod mock_api;
mod reconciler;
mod records;
mod rotation;
mod run;
mod status;
pub mod users;

/// The field manager of everything the operator writes with server-side apply.
pub const FIELD_MANAGER: &str = "tern-operator";

pub use config::{OperatorArgs, OperatorConfig};
pub use run::{LEASE, run};
