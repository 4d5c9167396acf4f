//! Every span name and attribute key Tern emits, defined once.
//!
//! OpenTelemetry has semantic conventions for the network, the database and messaging, and those
//! keys are reused as they are. It has none for SMTP, so `smtp.*` names what the protocol says
//! and `tern.*` what only Tern knows (queue ids, attempts, outcomes).
//!
//! Privacy: no attribute ever holds a message body, a header, a password or AUTH data. Envelope
//! addresses appear only as their domain (`smtp.mail_from.domain`, `smtp.rcpt_to.domains`), so a
//! trace store sees where mail goes but not who wrote to whom; the full addresses stay in the
//! logs and the queue database, which already hold them under their own retention.

// ---- span names ----

/// One SMTP connection, from accept to close (ingress).
pub const SPAN_SMTP_SESSION: &str = "smtp.session";
/// One mail transaction, from MAIL to the final reply; the root of a message's life.
pub const SPAN_SMTP_TRANSACTION: &str = "smtp.transaction";
/// The PostgreSQL statement that makes a message durable.
pub const SPAN_QUEUE_COMMIT: &str = "queue.commit";
/// The JetStream notice that wakes a worker.
pub const SPAN_QUEUE_PUBLISH: &str = "queue.publish";
/// One delivery attempt of one message to one destination (worker).
pub const SPAN_DELIVERY_ATTEMPT: &str = "delivery.attempt";
/// Resolving where a domain's mail goes (routes, MX, A/AAAA).
pub const SPAN_MX_LOOKUP: &str = "delivery.mx_lookup";
/// Opening a connection to a next hop: TCP, greeting, EHLO and STARTTLS.
pub const SPAN_CONNECT: &str = "delivery.connect";
/// Queueing a delivery status notification (bounce) for a message.
pub const SPAN_DSN_QUEUE: &str = "dsn.queue";

// ---- span event names ----

/// An SMTP command the ingress answered (attributes: command, reply code, enhanced status).
pub const EVENT_SMTP_COMMAND: &str = "smtp.command";
/// The next hop's reply to a delivered message, per recipient.
pub const EVENT_REMOTE_REPLY: &str = "smtp.reply";
/// A TLS handshake completed.
pub const EVENT_TLS_HANDSHAKE: &str = "tls.handshake";

// ---- OpenTelemetry semantic-convention keys ----

pub const CLIENT_ADDRESS: &str = "client.address";
pub const CLIENT_PORT: &str = "client.port";
pub const SERVER_ADDRESS: &str = "server.address";
pub const SERVER_PORT: &str = "server.port";
pub const NETWORK_PEER_ADDRESS: &str = "network.peer.address";
pub const NETWORK_PROTOCOL_NAME: &str = "network.protocol.name";
pub const NETWORK_TRANSPORT: &str = "network.transport";
pub const DB_SYSTEM_NAME: &str = "db.system.name";
pub const DB_OPERATION_NAME: &str = "db.operation.name";
pub const DB_COLLECTION_NAME: &str = "db.collection.name";
pub const MESSAGING_SYSTEM: &str = "messaging.system";
pub const MESSAGING_OPERATION_TYPE: &str = "messaging.operation.type";
pub const MESSAGING_DESTINATION_NAME: &str = "messaging.destination.name";
pub const MESSAGING_MESSAGE_ID: &str = "messaging.message.id";
pub const TLS_PROTOCOL_VERSION: &str = "tls.protocol.version";
pub const TLS_CIPHER: &str = "tls.cipher";
pub const ERROR_TYPE: &str = "error.type";
/// The OpenTelemetry status of a span (`"error"` marks a failed operation).
pub const OTEL_STATUS_CODE: &str = "otel.status_code";

// ---- SMTP ----

/// The command verb (`MAIL`, `RCPT`, `DATA`, …); never its arguments.
pub const SMTP_COMMAND: &str = "smtp.command";
pub const SMTP_REPLY_CODE: &str = "smtp.reply.code";
/// RFC 3463 enhanced status code of the reply, e.g. `4.2.0`.
pub const SMTP_REPLY_ENHANCED_STATUS: &str = "smtp.reply.enhanced_status";
/// The listener role: `smtp`, `submission` or `submissions`.
pub const SMTP_LISTENER: &str = "smtp.listener";
/// The HELO/EHLO name the client gave.
pub const SMTP_HELO: &str = "smtp.helo";
/// Domain of the envelope sender; empty for the null sender `<>`.
pub const SMTP_MAIL_FROM_DOMAIN: &str = "smtp.mail_from.domain";
/// Distinct recipient domains, comma separated.
pub const SMTP_RCPT_TO_DOMAINS: &str = "smtp.rcpt_to.domains";
/// Whether the client authenticated (never who).
pub const SMTP_AUTHENTICATED: &str = "smtp.authenticated";
/// `smtp` or `lmtp`: the protocol spoken to the next hop.
pub const SMTP_PROTOCOL: &str = "smtp.protocol";

// ---- Tern ----

/// The queue id: the message's UUIDv7 in hex, as in `250 … queued as` and the logs.
pub const TERN_QUEUE_ID: &str = "tern.queue_id";
/// Number of recipients in the transaction or the attempt.
pub const TERN_RECIPIENTS: &str = "tern.recipients";
/// Message size in octets, `Received:` header included.
pub const TERN_MESSAGE_SIZE: &str = "tern.message.size";
/// Which attempt this is for the message's recipients (1 for the first).
pub const TERN_ATTEMPT: &str = "tern.attempt";
/// How an attempt ended: `delivered`, `deferred`, `bounced`, `expired` (the worst recipient's).
pub const TERN_OUTCOME: &str = "tern.outcome";
/// The destination a delivery goes to (routing key: domain or relay host).
pub const TERN_DESTINATION: &str = "tern.destination";
/// The worker (lease owner) that made an attempt.
pub const TERN_WORKER: &str = "tern.worker";
/// Queue id of the message whose failure a notification reports.
pub const TERN_DSN_FOR: &str = "tern.dsn.for_queue_id";
/// The trace id, as a log field, so a log line leads to its trace.
pub const TRACE_ID: &str = "trace_id";

/// Target of the events that become span events (SMTP commands, replies, handshakes). Only
/// these events and `tern*` spans reach the trace exporter; ordinary log lines stay in the logs,
/// where the addresses they name belong.
pub const TRACE_EVENT_TARGET: &str = "tern_trace";
