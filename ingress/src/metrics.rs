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
