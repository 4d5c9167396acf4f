//! The control plane: domains, trusted networks, blocklist entries, certificates and destination
//! suspensions that operators change while Tern runs.
//!
//! PostgreSQL holds it. Every write commits, bumps one revision in the same transaction and then
//! publishes a change notice on NATS. Every pod holds an immutable [`ControlPlane`] snapshot and
//! swaps it whole ([`watch`]) when a notice arrives or a poll finds a newer revision, so a lost
//! notice costs at most one poll and NATS being down costs only latency. Nothing on the SMTP path
//! reads the database for it.
//!
//! - `model`: the rows, typed ([`Domain`], [`BlockEntry`], …) and who owns them ([`Owner`]).
//! - `snapshot`: [`ControlPlane`], one revision of all of it, and the questions pods ask of it.
//! - `store`: [`PgControlStore`], reads and owner-checked writes, for the API and the operator.
//! - `load`: the whole control plane read at one revision, for a pod's snapshot.
//! - `blocklist`: a source's blocklist entries replaced as a set (the operator's MailBlocklists).
//! - `certificates`: the checks a certificate passes before it is stored, and its writes.
//! - `dkim`: DKIM signing keys, made here, and the DNS records that publish them.
//! - `limits`: delivery limits per destination (site), which the workers hold cluster-wide.
//! - `policy`: the policy document, the policy checks' settings for the whole cluster.
//! - [`watch`]: keeps a pod's snapshot current.
//! - [`heartbeat`]: each process's row in `processes`, for `GET /v1/cluster`.

mod blocklist;
mod certificates;
mod dkim;
pub mod heartbeat;
mod limits;
mod load;
mod model;
mod policy;
mod snapshot;
mod store;
pub mod watch;

pub use blocklist::Replaced;
pub use certificates::{
    CertificateFacts, CertificateSummary, NewCertificate, inspect as inspect_certificate,
    leaf_fingerprint,
};
pub use dkim::{
    DkimKey, DkimKeySummary, NewDkimKey, check_selector as check_dkim_selector,
    dns_name as dkim_dns_name, dns_txt as dkim_dns_txt, generate as generate_dkim_key_pair,
};
pub use limits::DestinationLimit;
pub use model::{
    BlockAction, BlockEntry, BlockKind, Certificate, DkimAlgorithm, Domain, DomainKind,
    NewBlockEntry, Owner, ParseError, Suspension, TrustedNetwork,
};
pub use policy::{DmarcMode, PolicyDocument, SpfMode, StoredPolicy};
pub use snapshot::{Blocked, ControlPlane, ControlRows};
pub use store::{ConfigRows, ControlError, PgControlStore};
pub use watch::ControlWatch;
