//! Dev-only helpers for Tern's tests.
//!
//! - [`services`]: the shared PostgreSQL and NATS that `make test` starts, found through
//!   `TERN_TEST_DATABASE_URL` / `TERN_TEST_NATS_URL`. A test whose service is missing fails with
//!   the command that fixes it; it never passes silently.
//! - [`database`]: a fresh database per test, cloned from a migrated template.
//! - [`dns`]: an in-process authoritative DNS server whose records a test edits while it runs.
//! - [`kube_cluster`]: a real Kubernetes API server (etcd + kube-apiserver) for the operator.
//! - [`otlp`]: an in-process OTLP/gRPC trace receiver that keeps every span for assertions.
//! - [`pg_cluster`]: a private PostgreSQL cluster a test may stop and start (outage tests).
//! - [`sink`]: a scriptable SMTP/LMTP server that records what it was sent (a test's MX).
//! - [`smtp_client`]: a small SMTP client for transcripts, byte-exact and pipelining-capable.
//! - [`tls_files`]: test certificates in a directory laid out like a mounted Kubernetes Secret.
//! - [`wait`]: polling with a deadline instead of sleeps.

pub mod database;
pub mod dns;
pub mod kube_cluster;
pub mod otlp;
pub mod pg_cluster;
pub mod services;
pub mod sink;
pub mod smtp_client;
pub mod tls_files;
pub mod wait;

pub use database::TestDatabase;
pub use kube_cluster::KubeCluster;
pub use pg_cluster::PgCluster;
pub use smtp_client::{SmtpClient, TestReply};
