//! The worker's spans. Each delivery attempt of a message is a `delivery.attempt` span whose
//! parent is the context stored with the message, that is the SMTP transaction that accepted it:
//! a parent rather than a link, so a trace viewer draws one tree per message however late the
//! retry and whichever pod makes it. Routing, the connection and the remote replies hang below.
//!
//! With tracing off every span here is disabled at its call site and nothing is formatted.

use tern_common::queue::{ClaimedJob, StoredMessage};
use tern_common::telemetry::context::record_trace_id;
use tern_common::telemetry::names;
use tracing::field::Empty;
use tracing::{Level, Span};

use crate::delivery::client::{Connection, Protocol};
use crate::delivery::outcome::Verdict;

/// The span of one attempt to deliver `message` to `jobs` (its recipients at one destination).
pub(crate) fn attempt_span(
    worker: &str,
    message: &StoredMessage,
    jobs: &[ClaimedJob],
    destination: &str,
) -> Span {
    let attempt = jobs.iter().map(|job| job.attempts).max().unwrap_or(0) + 1;
    let span = tracing::info_span!(
        names::SPAN_DELIVERY_ATTEMPT,
        "otel.kind" = "client",
        { names::TERN_QUEUE_ID } = %message.id,
        { names::TERN_ATTEMPT } = attempt,
        { names::TERN_RECIPIENTS } = jobs.len(),
        { names::TERN_DESTINATION } = destination,
        { names::TERN_WORKER } = worker,
        { names::SMTP_PROTOCOL } = Empty,
        { names::SERVER_ADDRESS } = Empty,
        { names::SERVER_PORT } = Empty,
        { names::NETWORK_PEER_ADDRESS } = Empty,
        { names::TLS_PROTOCOL_VERSION } = Empty,
        { names::TLS_CIPHER } = Empty,
        { names::SMTP_REPLY_CODE } = Empty,
        { names::SMTP_REPLY_ENHANCED_STATUS } = Empty,
        { names::TERN_OUTCOME } = Empty,
        { names::OTEL_STATUS_CODE } = Empty,
        { names::TRACE_ID } = Empty,
    );
    if span.is_disabled() {
        return span;
    }
    if let Some(context) = message.trace_context() {
        context.adopt(&span);
    }
    record_trace_id(&span);
    span
}

/// Routing a domain (static route, smarthost or MX) to the hosts to try.
pub(crate) fn mx_span(parent: &Span, domain: &str) -> Span {
    tracing::info_span!(
        parent: parent,
        names::SPAN_MX_LOOKUP,
        { names::TERN_DESTINATION } = domain,
        { names::ERROR_TYPE } = Empty,
        { names::OTEL_STATUS_CODE } = Empty,
    )
}

/// Opening a connection: TCP, greeting, EHLO, STARTTLS.
pub(crate) fn connect_span() -> Span {
    tracing::info_span!(
        names::SPAN_CONNECT,
        { names::SERVER_ADDRESS } = Empty,
        { names::NETWORK_PEER_ADDRESS } = Empty,
        { names::TLS_PROTOCOL_VERSION } = Empty,
        { names::TLS_CIPHER } = Empty,
        { names::OTEL_STATUS_CODE } = Empty,
    )
}

/// Names the server on `spans` (the attempt, and the connect span when it made the connection).
pub(crate) fn connected(spans: &[&Span], connection: &Connection, protocol: Protocol) {
    let protocol = match protocol {
        Protocol::Smtp => "smtp",
        Protocol::Lmtp => "lmtp",
    };
    for span in spans.iter().filter(|span| !span.is_disabled()) {
        span.record(names::SERVER_ADDRESS, connection.host_name());
        span.record(names::SERVER_PORT, connection.peer().port());
        span.record(
            names::NETWORK_PEER_ADDRESS,
            connection.peer().ip().to_string().as_str(),
        );
        span.record(names::SMTP_PROTOCOL, protocol);
        if let Some(tls) = connection.tls_info() {
            span.record(names::TLS_PROTOCOL_VERSION, tls.version.as_str());
            span.record(names::TLS_CIPHER, tls.cipher.as_str());
        }
    }
}

/// Marks a failed step (MX lookup, connection).
pub(crate) fn failed(span: &Span, error_type: &str) {
    if !span.is_disabled() {
        span.record(names::ERROR_TYPE, error_type);
        span.record(names::OTEL_STATUS_CODE, "error");
    }
}

/// Records, on the current attempt span, each recipient's reply as an event (code, enhanced
/// status, outcome; never the address) and the attempt's overall outcome: the first recipient's
/// reply code and the worst outcome (bounced/expired over deferred over delivered).
pub(crate) fn attempt_finished<'a>(
    verdicts: &[Verdict],
    outcomes: impl Iterator<Item = &'a str> + Clone,
) {
    let span = Span::current();
    if span.is_disabled() {
        return;
    }
    for (verdict, outcome) in verdicts.iter().zip(outcomes.clone()) {
        let code = verdict.remote.as_ref().map_or(0, |reply| reply.code);
        tracing::event!(
            target: names::TRACE_EVENT_TARGET,
            Level::DEBUG,
            { names::SMTP_REPLY_CODE } = code,
            { names::SMTP_REPLY_ENHANCED_STATUS } = verdict.status.as_str(),
            { names::TERN_OUTCOME } = outcome,
            message = names::EVENT_REMOTE_REPLY,
        );
    }
    let rank = |outcome: &str| match outcome {
        "delivered" => 0,
        "deferred" => 1,
        _ => 2,
    };
    if let Some(worst) = outcomes.max_by_key(|outcome| rank(outcome)) {
        span.record(names::TERN_OUTCOME, worst);
        if worst != "delivered" {
            span.record(names::OTEL_STATUS_CODE, "error");
        }
    }
    if let Some(verdict) = verdicts.first() {
        if let Some(reply) = &verdict.remote {
            span.record(names::SMTP_REPLY_CODE, reply.code);
        }
        span.record(names::SMTP_REPLY_ENHANCED_STATUS, verdict.status.as_str());
    }
}
