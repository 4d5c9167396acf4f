//! Integration tests of the ingress against real PostgreSQL and NATS JetStream, with real SMTP
//! clients (this crate's transcript client, swaks and Python's smtplib).

mod harness;

mod auth;
mod auth_lockout;
mod commit;
mod control;
mod dkim;
mod dnsbl;
mod greylist;
mod limits;
mod outage;
mod peers;
mod policy_document;
mod proxy;
mod ratelimit;
mod relay;
mod signing;
mod spf;
mod sync;
mod tls;
mod tls_peers;
mod tls_reload;
mod transcript;
