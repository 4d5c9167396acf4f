//! The durable queue.
//!
//! PostgreSQL is the source of truth: a message exists once its row and one job row per recipient
//! are committed, and only then may the ingress answer `250`.

mod pg;

use std::future::Future;
use std::net::IpAddr;

use super::{QueueError, QueueId};
use tern_smtp::{Body, Notify, Ret};
use time::OffsetDateTime;

use crate::telemetry::TraceContext;

pub(crate) use pg::commit_query;
pub use pg::{PgQueueStore, connect_delivery_pool, connect_pool, migrate};

/// A message ready to be committed: envelope, DSN parameters and the bytes to deliver.
#[derive(Debug, Clone)]
pub struct NewMessage {
    /// UUIDv7, chosen before the commit so the `Received:` header can name it.
    pub id: QueueId,
    pub received_at: OffsetDateTime,
    /// Reverse-path without angle brackets; empty for the null sender `<>`.
    pub mail_from: String,
    pub helo: String,
    pub client_ip: IpAddr,
    /// `SMTP` or `ESMTP` (RFC 3848), as written into `Received:`.
    pub protocol: &'static str,
    pub body_type: Body,
    pub smtputf8: bool,
    /// RFC 3461 RET.
    pub dsn_ret: Option<Ret>,
    /// RFC 3461 ENVID, xtext-decoded.
    pub dsn_envid: Option<String>,
    pub recipients: Vec<NewRecipient>,
    /// The `Received:` header followed by the message exactly as received.
    pub body: Vec<u8>,
    /// The trace this message belongs to: its SMTP transaction's context, or for a notification
    /// the context of the message it reports on. `None` when tracing is off.
    pub trace_context: Option<TraceContext>,
    /// For a delivery status notification: the message it reports on.
    pub reports_on: Option<QueueId>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewRecipient {
    /// Forward-path without angle brackets (`postmaster` for the bare form).
    pub address: String,
    /// Lowercased domain the worker routes on; empty for bare `postmaster`.
    pub domain: String,
    /// RFC 3461 NOTIFY.
    pub dsn_notify: Option<Notify>,
    /// RFC 3461 ORCPT as `addr-type;original-recipient`, xtext-decoded.
    pub dsn_orcpt: Option<String>,
}

impl NewMessage {
    /// A message that starts here rather than arriving over SMTP, such as a delivery status
    /// notification: received now from the local host by `helo`, with no DSN parameters.
    pub fn local(
        helo: &str,
        mail_from: &str,
        recipients: Vec<NewRecipient>,
        body: Vec<u8>,
    ) -> Self {
        let smtputf8 = !mail_from.is_ascii() || recipients.iter().any(|r| !r.address.is_ascii());
        NewMessage {
            id: QueueId::new(),
            received_at: OffsetDateTime::now_utc(),
            mail_from: mail_from.to_owned(),
            helo: helo.to_owned(),
            client_ip: IpAddr::V6(std::net::Ipv6Addr::LOCALHOST),
            protocol: "LOCAL",
            body_type: if body.is_ascii() {
                Body::SevenBit
            } else {
                Body::EightBitMime
            },
            smtputf8,
            dsn_ret: None,
            dsn_envid: None,
            recipients,
            body,
            trace_context: None,
            reports_on: None,
        }
    }
}

impl NewRecipient {
    /// A recipient without DSN parameters, routed on the lowercased domain of `address`.
    pub fn new(address: &str) -> Self {
        NewRecipient {
            address: address.to_owned(),
            domain: address
                .rsplit_once('@')
                .map(|(_, domain)| domain.to_ascii_lowercase())
                .unwrap_or_default(),
            dsn_notify: None,
            dsn_orcpt: None,
        }
    }
}

/// Where accepted messages are committed.
///
/// Contract:
/// - `commit` is atomic: on `Ok` the message and every recipient job are durable (the database
///   has flushed its log); on `Err` none of them exists, with one exception that no store can
///   avoid: a timeout or lost connection after the database committed but before it answered.
///   The client then retries and the message may be delivered twice, which RFC 5321 6.1 accepts
///   over loss.
/// - Jobs are created `queued` and due immediately, in recipient order.
/// - Commits from many sessions may run concurrently; they share log flushes.
pub trait QueueStore: Send + Sync + 'static {
    fn commit(&self, message: &NewMessage) -> impl Future<Output = Result<(), QueueError>> + Send;
}
