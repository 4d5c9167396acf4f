//! Ingress metric names, defined once. Labels come from bounded enums only: a verb the session
//! did not recognise is `other`, a reply this module cannot name is `other`.

use tern_smtp::{Reply, Verb};

use tern_common::checks::ListenerKind;

pub const SESSIONS_TOTAL: &str = "tern_ingress_sessions_total";
pub const SESSIONS_ACTIVE: &str = "tern_ingress_sessions_active";
pub const CONNECTIONS_REFUSED_TOTAL: &str = "tern_ingress_connections_refused_total";
/// Command lines by verb.
pub const COMMANDS_TOTAL: &str = "tern_ingress_commands_total";
/// Every 4xx/5xx the ingress gave, by the stage it answered and a bounded reason.
pub const REJECTS_TOTAL: &str = "tern_ingress_rejects_total";
pub const RECIPIENTS_REJECTED_TOTAL: &str = "tern_ingress_recipients_rejected_total";
pub const MESSAGES_ACCEPTED_TOTAL: &str = "tern_ingress_messages_accepted_total";
pub const MESSAGE_BYTES_TOTAL: &str = "tern_ingress_message_bytes_total";
pub const COMMIT_SECONDS: &str = "tern_ingress_commit_seconds";
pub const COMMIT_ERRORS_TOTAL: &str = "tern_ingress_commit_errors_total";
/// JetStream publishes that failed (the message is committed; workers find it by polling).
pub const NOTICE_FAILURES_TOTAL: &str = "tern_ingress_notice_failures_total";
pub const TLS_HANDSHAKE_FAILURES_TOTAL: &str = "tern_ingress_tls_handshake_failures_total";
pub const SENDERS_REJECTED_TOTAL: &str = "tern_ingress_senders_rejected_total";
pub const AUTH_ATTEMPTS_TOTAL: &str = "tern_ingress_auth_attempts_total";
pub const TLS_RELOADS_TOTAL: &str = "tern_ingress_tls_reloads_total";
pub const PROXY_REFUSED_TOTAL: &str = "tern_ingress_proxy_refused_total";
/// ARC chains verified, by result.
pub const ARC_RESULTS_TOTAL: &str = "tern_ingress_arc_results_total";
/// DMARC evaluations by result.
pub const DMARC_RESULTS_TOTAL: &str = "tern_ingress_dmarc_results_total";
/// DKIM signatures verified, by result (RFC 8601's names).
pub const DKIM_RESULTS_TOTAL: &str = "tern_ingress_dkim_results_total";
/// Policy documents from the control plane, by result: applied, refused.
pub const POLICY_LOADS_TOTAL: &str = "tern_ingress_policy_loads_total";
/// DKIM signatures made, by result: ok, error.
pub const DKIM_SIGNED_TOTAL: &str = "tern_ingress_dkim_signed_total";
/// SPF checks by result (RFC 7208's names).
pub const SPF_RESULTS_TOTAL: &str = "tern_ingress_spf_results_total";
/// Rate-limit checks by limit and result: allowed, limited, error.
pub const RATE_LIMIT_RESULTS_TOTAL: &str = "tern_ingress_rate_limit_results_total";
/// Greylisting decisions by result: passed, client_allowed, deferred, error.
pub const GREYLIST_RESULTS_TOTAL: &str = "tern_ingress_greylist_results_total";
/// Each DNSBL site's answer about each client asked, by zone and result.
pub const DNSBL_RESULTS_TOTAL: &str = "tern_ingress_dnsbl_results_total";

/// Every ingress metric, for checks that dashboards and alerts only name metrics that exist.
pub const ALL: &[&str] = &[
    SESSIONS_TOTAL,
    SESSIONS_ACTIVE,
    CONNECTIONS_REFUSED_TOTAL,
    COMMANDS_TOTAL,
    REJECTS_TOTAL,
    RECIPIENTS_REJECTED_TOTAL,
    MESSAGES_ACCEPTED_TOTAL,
    MESSAGE_BYTES_TOTAL,
    COMMIT_SECONDS,
    COMMIT_ERRORS_TOTAL,
    NOTICE_FAILURES_TOTAL,
    TLS_HANDSHAKE_FAILURES_TOTAL,
    SENDERS_REJECTED_TOTAL,
    AUTH_ATTEMPTS_TOTAL,
    TLS_RELOADS_TOTAL,
    PROXY_REFUSED_TOTAL,
    DNSBL_RESULTS_TOTAL,
    GREYLIST_RESULTS_TOTAL,
    RATE_LIMIT_RESULTS_TOTAL,
    SPF_RESULTS_TOTAL,
    DKIM_RESULTS_TOTAL,
    DMARC_RESULTS_TOTAL,
    ARC_RESULTS_TOTAL,
    DKIM_SIGNED_TOTAL,
    POLICY_LOADS_TOTAL,
];

/// Histogram buckets of [`COMMIT_SECONDS`]: a durable commit takes milliseconds, a stuck one
/// reaches the commit timeout (10 s by default).
pub const COMMIT_SECONDS_BUCKETS: &[f64] = &[
    0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0,
];

/// The bucket layout of every ingress histogram, for the recorder.
pub const HISTOGRAMS: &[(&str, &[f64])] = &[(COMMIT_SECONDS, COMMIT_SECONDS_BUCKETS)];

/// Where in the conversation a reply was given, from the last command the client sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Stage {
    /// Before any command: connection limits, PROXY header, shutdown.
    Connect,
    Helo,
    Auth,
    Mail,
    Rcpt,
    /// DATA, BDAT and the end of the message (content checks, the commit).
    Data,
    /// Any other command (NOOP, RSET, VRFY, STARTTLS, unknown verbs…).
    Other,
}

impl Stage {
    pub(crate) fn after(verb: Verb) -> Self {
        match verb {
            Verb::Helo | Verb::Ehlo => Stage::Helo,
            Verb::Auth => Stage::Auth,
            Verb::Mail => Stage::Mail,
            Verb::Rcpt => Stage::Rcpt,
            Verb::Data | Verb::Bdat => Stage::Data,
            _ => Stage::Other,
        }
    }

    pub(crate) fn label(self) -> &'static str {
        match self {
            Stage::Connect => "connect",
            Stage::Helo => "helo",
            Stage::Auth => "auth",
            Stage::Mail => "mail",
            Stage::Rcpt => "rcpt",
            Stage::Data => "data",
            Stage::Other => "other",
        }
    }
}

/// Counts one command line.
pub(crate) fn command(verb: Verb) {
    ::metrics::counter!(COMMANDS_TOTAL, "verb" => verb.label()).increment(1);
}

/// Counts `reply` as a reject at `stage` when it refuses something, under the reason the reply
/// was made with.
pub(crate) fn reply(stage: Stage, reply: &Reply) {
    if let Some(refusal) = reply.refusal {
        rejected(stage, refusal.label());
    }
}

/// Counts a reject whose reason the caller knows.
pub(crate) fn rejected(stage: Stage, reason: &'static str) {
    ::metrics::counter!(REJECTS_TOTAL, "stage" => stage.label(), "reason" => reason).increment(1);
}

/// Counts one ARC chain's result.
pub(crate) fn arc_result(result: &'static str) {
    ::metrics::counter!(ARC_RESULTS_TOTAL, "result" => result).increment(1);
}

/// Counts one DMARC evaluation.
pub(crate) fn dmarc_result(result: &'static str) {
    ::metrics::counter!(DMARC_RESULTS_TOTAL, "result" => result).increment(1);
}

/// Counts one DKIM signature's result.
pub(crate) fn dkim_result(result: &'static str) {
    ::metrics::counter!(DKIM_RESULTS_TOTAL, "result" => result).increment(1);
}

/// Counts one policy document judged.
pub(crate) fn policy_load(result: &'static str) {
    ::metrics::counter!(POLICY_LOADS_TOTAL, "result" => result).increment(1);
}

/// Counts one signature made (or not).
pub(crate) fn dkim_signed(result: &'static str) {
    ::metrics::counter!(DKIM_SIGNED_TOTAL, "result" => result).increment(1);
}

/// Counts one SPF check.
pub(crate) fn spf_result(result: &'static str) {
    ::metrics::counter!(SPF_RESULTS_TOTAL, "result" => result).increment(1);
}

/// Counts one rate-limit check.
pub(crate) fn rate_limit_result(limit: &'static str, result: &'static str) {
    ::metrics::counter!(RATE_LIMIT_RESULTS_TOTAL, "limit" => limit, "result" => result)
        .increment(1);
}

/// Counts one greylisting decision.
pub(crate) fn greylist_result(result: &'static str) {
    ::metrics::counter!(GREYLIST_RESULTS_TOTAL, "result" => result).increment(1);
}

/// Counts one DNSBL site's answer (`zone` comes from the settings, so the label is bounded).
pub(crate) fn dnsbl_result(zone: &str, result: &'static str) {
    ::metrics::counter!(DNSBL_RESULTS_TOTAL, "zone" => zone.to_owned(), "result" => result)
        .increment(1);
}

/// Counts a failed STARTTLS or implicit-TLS handshake by listener and reason.
pub(crate) fn handshake_failed(kind: ListenerKind, reason: &'static str) {
    ::metrics::counter!(TLS_HANDSHAKE_FAILURES_TOTAL, "listener" => kind.label(), "reason" => reason)
        .increment(1);
}

/// Counts a connection closed before its session because of the PROXY protocol, by reason.
pub(crate) fn proxy_refused(kind: ListenerKind, reason: &'static str) {
    ::metrics::counter!(PROXY_REFUSED_TOTAL, "listener" => kind.label(), "reason" => reason)
        .increment(1);
    rejected(Stage::Connect, "proxy_refused");
}

/// Counts a connection refused over a connection limit (`reason` names the limit).
pub(crate) fn connection_refused(reason: &'static str) {
    ::metrics::counter!(CONNECTIONS_REFUSED_TOTAL, "reason" => reason).increment(1);
    rejected(Stage::Connect, reason);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_driver_s_own_replies_name_their_refusal() {
        // `421 4.7.0` is two reasons: the code alone could not tell them apart.
        let table = [
            (Reply::too_many_connections(), "too_many_connections"),
            (Reply::relay_denied(), "relay_denied"),
            (Reply::store_unavailable(), "queue_unavailable"),
            (Reply::shutting_down(), "shutting_down"),
            (Reply::idle_timeout(), "idle_timeout"),
            (Reply::too_many_hops(51), "too_many_hops"),
            (Reply::auth_temporary_failure(), "auth_unavailable"),
            (Reply::sender_not_owned("a@b.example"), "sender_not_owned"),
        ];
        for (reply, reason) in table {
            assert_eq!(reply.refusal.map(|r| r.label()), Some(reason), "{reply:?}");
        }
        assert_eq!(Reply::queued("Q1").refusal, None);
    }

    #[test]
    fn stages_follow_the_command_that_was_answered() {
        assert_eq!(Stage::after(Verb::Ehlo), Stage::Helo);
        assert_eq!(Stage::after(Verb::Bdat), Stage::Data);
        assert_eq!(Stage::after(Verb::Unknown).label(), "other");
    }

    #[test]
    fn names_follow_the_convention() {
        for name in ALL {
            assert!(name.starts_with("tern_ingress_"), "{name}");
            let unit = ["_total", "_seconds", "_bytes", "_active"];
            assert!(unit.iter().any(|u| name.ends_with(u)), "{name}");
        }
    }
}
