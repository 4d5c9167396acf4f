//! The ingress's spans: one per SMTP session, a child per mail transaction (MAIL to its final
//! reply) with every command and reply as an event, and below the transaction the queue commit
//! and the JetStream publish. The sans-IO session knows nothing of them: the driver opens and
//! closes them as the session moves.
//!
//! With tracing off every span here is disabled at its call site; each function returns before
//! it formats or allocates anything.

use std::net::SocketAddr;

use tern_common::queue::NewMessage;
use tern_common::telemetry::context::record_trace_id;
use tern_common::telemetry::{TraceContext, names};
use tern_smtp::{Reply, Verb};
use tracing::field::Empty;
use tracing::{Level, Span};

use crate::tls::TlsInfo;
use tern_common::checks::ListenerKind;

/// The span of one connection. Its TLS fields are filled once a handshake completes.
pub(crate) fn session_span(client: SocketAddr, kind: ListenerKind) -> Span {
    tracing::info_span!(
        names::SPAN_SMTP_SESSION,
        "otel.kind" = "server",
        { names::CLIENT_ADDRESS } = %client.ip(),
        { names::CLIENT_PORT } = client.port(),
        { names::SMTP_LISTENER } = kind.label(),
        { names::NETWORK_TRANSPORT } = "tcp",
        { names::NETWORK_PROTOCOL_NAME } = "smtp",
        { names::TLS_PROTOCOL_VERSION } = Empty,
        { names::TLS_CIPHER } = Empty,
    )
}

/// Records a completed handshake (implicit TLS or STARTTLS) on the session span.
pub(crate) fn tls_started(session: &Span, tls: &TlsInfo) {
    if session.is_disabled() {
        return;
    }
    session.record(names::TLS_PROTOCOL_VERSION, tls.version);
    session.record(names::TLS_CIPHER, tls.cipher);
    tracing::event!(
        target: names::TRACE_EVENT_TARGET,
        parent: session,
        Level::DEBUG,
        { names::TLS_PROTOCOL_VERSION } = tls.version,
        { names::TLS_CIPHER } = tls.cipher,
        message = names::EVENT_TLS_HANDSHAKE,
    );
}

/// Follows one session: the open transaction span and the command whose reply comes next.
pub(crate) struct SessionTrace {
    session: Span,
    transaction: Option<Span>,
    command: Option<&'static str>,
}

impl SessionTrace {
    /// Starts following the session whose span is current.
    pub(crate) fn current() -> Self {
        Self {
            session: Span::current(),
            transaction: None,
            command: None,
        }
    }

    pub(crate) fn session(&self) -> &Span {
        &self.session
    }

    /// The session read a command line; its reply is the next [`SessionTrace::reply`].
    pub(crate) fn command(&mut self, verb: Verb) {
        if !self.session.is_disabled() {
            self.command = Some(verb.label());
        }
    }

    /// A reply is going out; `in_transaction` is the session's state after the command. The
    /// reply that opens a transaction (250 to MAIL) opens its span, the one that ends it (the
    /// final reply to the message, RSET, an error that drops it) closes it.
    pub(crate) fn reply(&mut self, reply: &Reply, in_transaction: bool) {
        if self.session.is_disabled() {
            return;
        }
        if in_transaction && self.transaction.is_none() {
            self.transaction = Some(transaction_span(&self.session));
        }
        let command = self.command.take().unwrap_or("");
        let parent = self.transaction.as_ref().unwrap_or(&self.session);
        tracing::event!(
            target: names::TRACE_EVENT_TARGET,
            parent: parent,
            Level::DEBUG,
            { names::SMTP_COMMAND } = command,
            { names::SMTP_REPLY_CODE } = reply.code,
            { names::SMTP_REPLY_ENHANCED_STATUS } = reply.status.unwrap_or(""),
            message = names::EVENT_SMTP_COMMAND,
        );
        if !in_transaction && let Some(transaction) = self.transaction.take() {
            transaction.record(names::SMTP_REPLY_CODE, reply.code);
            transaction.record(
                names::SMTP_REPLY_ENHANCED_STATUS,
                reply.status.unwrap_or(""),
            );
            if !reply.is_positive() {
                transaction.record(names::OTEL_STATUS_CODE, "error");
            }
        }
    }

    /// The open transaction's span (disabled when there is none or tracing is off).
    pub(crate) fn transaction(&self) -> Span {
        self.transaction.clone().unwrap_or_else(Span::none)
    }
}

fn transaction_span(session: &Span) -> Span {
    tracing::info_span!(
        parent: session,
        names::SPAN_SMTP_TRANSACTION,
        { names::TERN_QUEUE_ID } = Empty,
        { names::SMTP_HELO } = Empty,
        { names::SMTP_MAIL_FROM_DOMAIN } = Empty,
        { names::SMTP_RCPT_TO_DOMAINS } = Empty,
        { names::SMTP_AUTHENTICATED } = Empty,
        { names::TERN_RECIPIENTS } = Empty,
        { names::TERN_MESSAGE_SIZE } = Empty,
        { names::SMTP_REPLY_CODE } = Empty,
        { names::SMTP_REPLY_ENHANCED_STATUS } = Empty,
        { names::OTEL_STATUS_CODE } = Empty,
        { names::TRACE_ID } = Empty,
    )
}

/// Makes the transaction a child of the trace named by the message's `Traceparent:` header, if
/// it has a valid one (only when the operator turned this on: it lets senders pick our trace).
pub(crate) fn join_sender_trace(transaction: &Span, message: &[u8]) {
    if transaction.is_disabled() {
        return;
    }
    let Some(traceparent) = tern_smtp::header::field(message, "Traceparent") else {
        return;
    };
    let tracestate = tern_smtp::header::field(message, "Tracestate");
    let sender = TraceContext::from_headers(|name| match name {
        tern_common::telemetry::context::TRACEPARENT => Some(traceparent.as_str()),
        tern_common::telemetry::context::TRACESTATE => tracestate.as_deref(),
        _ => None,
    });
    if let Some(sender) = sender {
        sender.adopt(transaction);
    }
}

/// Describes the message on its transaction span and returns the span's context, which is
/// stored with the message so its deliveries join this trace.
pub(crate) fn message_ready(
    transaction: &Span,
    message: &NewMessage,
    queue_id: &str,
    authenticated: bool,
) -> Option<TraceContext> {
    if transaction.is_disabled() {
        return None;
    }
    let context = TraceContext::of_span(transaction);
    record_trace_id(transaction);
    let mut domains: Vec<&str> = message
        .recipients
        .iter()
        .map(|r| r.domain.as_str())
        .collect();
    domains.sort_unstable();
    domains.dedup();
    let from_domain = message
        .mail_from
        .rsplit_once('@')
        .map_or("", |(_, domain)| domain);
    transaction.record(names::TERN_QUEUE_ID, queue_id);
    transaction.record(names::SMTP_HELO, message.helo.as_str());
    transaction.record(names::SMTP_MAIL_FROM_DOMAIN, from_domain);
    transaction.record(names::SMTP_RCPT_TO_DOMAINS, domains.join(",").as_str());
    transaction.record(names::SMTP_AUTHENTICATED, authenticated);
    transaction.record(names::TERN_RECIPIENTS, message.recipients.len());
    transaction.record(names::TERN_MESSAGE_SIZE, message.body.len());
    context
}

/// The span of the statement that commits a message and its jobs.
pub(crate) fn commit_span(transaction: &Span, queue_id: &str) -> Span {
    tracing::info_span!(
        parent: transaction,
        names::SPAN_QUEUE_COMMIT,
        "otel.kind" = "client",
        { names::DB_SYSTEM_NAME } = "postgresql",
        { names::DB_OPERATION_NAME } = "INSERT",
        { names::DB_COLLECTION_NAME } = "messages",
        { names::TERN_QUEUE_ID } = queue_id,
        { names::ERROR_TYPE } = Empty,
        { names::OTEL_STATUS_CODE } = Empty,
    )
}

/// The span of the JetStream notice for a committed message.
pub(crate) fn publish_span(transaction: &Span, subject: &str, queue_id: &str) -> Span {
    tracing::info_span!(
        parent: transaction,
        names::SPAN_QUEUE_PUBLISH,
        "otel.kind" = "producer",
        { names::MESSAGING_SYSTEM } = "nats",
        { names::MESSAGING_OPERATION_TYPE } = "publish",
        { names::MESSAGING_DESTINATION_NAME } = subject,
        { names::MESSAGING_MESSAGE_ID } = queue_id,
        { names::TERN_QUEUE_ID } = queue_id,
        { names::ERROR_TYPE } = Empty,
        { names::OTEL_STATUS_CODE } = Empty,
    )
}

/// Marks `span` failed, with a bounded error type.
pub(crate) fn failed(span: &Span, error_type: &'static str) {
    span.record(names::ERROR_TYPE, error_type);
    span.record(names::OTEL_STATUS_CODE, "error");
}
