//! Ingress metric names, defined once. Labels come from bounded enums only.

pub(crate) const SESSIONS_TOTAL: &str = "tern_ingress_sessions_total";
pub(crate) const SESSIONS_ACTIVE: &str = "tern_ingress_sessions_active";
pub(crate) const CONNECTIONS_REFUSED_TOTAL: &str = "tern_ingress_connections_refused_total";
pub(crate) const RECIPIENTS_REJECTED_TOTAL: &str = "tern_ingress_recipients_rejected_total";
pub(crate) const MESSAGES_ACCEPTED_TOTAL: &str = "tern_ingress_messages_accepted_total";
pub(crate) const MESSAGE_BYTES_TOTAL: &str = "tern_ingress_message_bytes_total";
pub(crate) const COMMIT_SECONDS: &str = "tern_ingress_commit_seconds";
pub(crate) const COMMIT_ERRORS_TOTAL: &str = "tern_ingress_commit_errors_total";
pub(crate) const NOTICE_FAILURES_TOTAL: &str = "tern_ingress_notice_failures_total";
pub(crate) const TLS_HANDSHAKE_FAILURES_TOTAL: &str = "tern_ingress_tls_handshake_failures_total";
pub(crate) const SENDERS_REJECTED_TOTAL: &str = "tern_ingress_senders_rejected_total";
pub(crate) const AUTH_ATTEMPTS_TOTAL: &str = "tern_ingress_auth_attempts_total";
pub(crate) const TLS_RELOADS_TOTAL: &str = "tern_ingress_tls_reloads_total";
pub(crate) const PROXY_REFUSED_TOTAL: &str = "tern_ingress_proxy_refused_total";

/// Counts a failed STARTTLS or implicit-TLS handshake by listener and reason.
pub(crate) fn handshake_failed(
    kind: crate::config::ListenerKind,
    error: &crate::tls::HandshakeError,
) {
    ::metrics::counter!(TLS_HANDSHAKE_FAILURES_TOTAL, "listener" => kind.label(), "reason" => error.metric_label())
        .increment(1);
}

/// Counts a connection closed before its session because of the PROXY protocol, by reason.
pub(crate) fn proxy_refused(kind: crate::config::ListenerKind, reason: &'static str) {
    ::metrics::counter!(PROXY_REFUSED_TOTAL, "listener" => kind.label(), "reason" => reason)
        .increment(1);
}
