//! Tern's Kubernetes operator: mail domains, users, blocklists and certificates as custom
//! resources, reconciled into the same control plane the admin API writes (rows owned by `crd`).
//!
//! - [`crd`]: the custom resources and their generated definitions.

pub mod crd;
