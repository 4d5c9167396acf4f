//! `tern ingress` settings. Every field reads a `TERN_INGRESS_…` (or shared `TERN_…`) variable.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use clap::Args;
use tern_common::config::{
    AdminArgs, ConfigError, ControlArgs, DatabaseArgs, DatabaseConfig, LogArgs, NatsArgs,
    NatsConfig, host_name, parse_domains, parse_duration, parse_networks,
};
use tern_common::policy::RelayPolicy;
use tern_common::telemetry::{TelemetryArgs, TelemetryConfig};
use tern_common::users::LockoutPolicy;
use tern_smtp::SessionConfig;

use crate::proxy::ProxyConfig;
use crate::tls::TlsServer;
use crate::tls::certificates::CertificateSource;
pub use tern_common::checks::ListenerKind;

/// Where implicit TLS listens when certificates exist and the setting is not given.
const DEFAULT_SUBMISSIONS_LISTEN: &str = "127.0.0.1:2465";

mod policy;
pub mod var;

pub use policy::{PolicyArgs, PolicyConfig};

#[derive(Debug, Clone, Args)]
pub struct IngressArgs {
    #[command(flatten)]
    pub database: DatabaseArgs,
    #[command(flatten)]
    pub nats: NatsArgs,
    #[command(flatten)]
    pub admin: AdminArgs,
    #[command(flatten)]
    pub log: LogArgs,
    #[command(flatten)]
    pub telemetry: TelemetryArgs,
    #[command(flatten)]
    pub control: ControlArgs,
    /// Make a transaction whose message carries a valid `Traceparent:` header a child of the
    /// sender's trace (off: a sender cannot place spans in our traces).
    #[arg(
        long,
        env = var::TRACE_JOIN_TRACEPARENT,
        default_value_t = false,
        action = clap::ArgAction::Set
    )]
    pub trace_join_traceparent: bool,

    /// Port 25 role: MX and relay for trusted networks.
    #[arg(
        long,
        env = var::SMTP_LISTEN,
        default_value = "127.0.0.1:2525"
    )]
    pub smtp_listen: SocketAddr,
    /// Port 587 role (RFC 6409): STARTTLS when certificates are configured. Empty disables it.
    #[arg(
        long,
        env = var::SUBMISSION_LISTEN,
        default_value = "127.0.0.1:2587"
    )]
    pub submission_listen: Option<String>,
    /// Port 465 role: implicit TLS (RFC 8314). Needs certificates. Unset: 127.0.0.1:2465 when
    /// certificates are configured, otherwise not bound. Empty disables it.
    #[arg(long, env = var::SUBMISSIONS_LISTEN)]
    pub submissions_listen: Option<String>,
    /// Certificate chains and keys as PEM files, `cert.pem:key.pem` pairs, comma separated. The
    /// first is the default; the others are chosen by SNI. Empty: no TLS.
    #[arg(long, env = var::TLS_CERTIFICATES, default_value = "")]
    pub tls_certificates: String,
    /// How often the certificate files are checked for changes.
    #[arg(long, env = var::TLS_RELOAD_INTERVAL, default_value = "10s", value_parser = parse_duration)]
    pub tls_reload_interval: Duration,
    /// A TLS handshake not finished in this time is abandoned.
    #[arg(long, env = var::TLS_HANDSHAKE_TIMEOUT, default_value = "30s", value_parser = parse_duration)]
    pub tls_handshake_timeout: Duration,
    /// Listeners whose connections must start with a PROXY protocol header (v1 or v2), as a
    /// comma-separated list of `smtp`, `submission`, `submissions`. Empty: none.
    #[arg(long, env = var::PROXY_PROTOCOL, default_value = "")]
    pub proxy_protocol: String,
    /// The load balancers allowed to send PROXY headers (comma-separated CIDRs). Required when
    /// any listener requires the header; connections from elsewhere on those listeners are closed.
    #[arg(long, env = var::PROXY_TRUSTED_NETWORKS, default_value = "")]
    pub proxy_trusted_networks: String,
    /// A PROXY header not complete in this time closes the connection.
    #[arg(long, env = var::PROXY_HEADER_TIMEOUT, default_value = "5s", value_parser = parse_duration)]
    pub proxy_header_timeout: Duration,
    /// Name in the greeting, EHLO reply and `Received:` headers.
    #[arg(long, env = var::HOSTNAME, default_value = "localhost")]
    pub hostname: String,
    /// Domains whose recipients are accepted from anyone (comma separated).
    #[arg(
        long,
        env = var::LOCAL_DOMAINS,
        default_value = "localhost,tern.test"
    )]
    pub local_domains: String,
    /// Client networks allowed to relay to any domain (comma separated CIDRs). Default: none.
    #[arg(long, env = var::TRUSTED_NETWORKS, default_value = "")]
    pub trusted_networks: String,
    /// Largest message accepted, in octets (advertised as SIZE).
    #[arg(
        long,
        env = var::MAX_MESSAGE_SIZE,
        default_value_t = 26_214_400
    )]
    pub max_message_size: u64,
    /// Recipients per message; more get 452 4.5.3.
    #[arg(long, env = var::MAX_RECIPIENTS, default_value_t = 100)]
    pub max_recipients: usize,
    /// Error replies per session before 421 and disconnect.
    #[arg(long, env = var::MAX_ERRORS, default_value_t = 20)]
    pub max_errors: u32,
    /// Longest command line, CRLF included.
    #[arg(long, env = var::MAX_COMMAND_LINE, default_value_t = 2048)]
    pub max_command_line: usize,
    /// Longest message text line, CRLF included (RFC 5321 4.5.3.1.6).
    #[arg(long, env = var::MAX_TEXT_LINE, default_value_t = 1000)]
    pub max_text_line: usize,
    /// Most `Received:` fields a message may carry, ours included; more get 554 5.4.6 (a loop).
    #[arg(long, env = var::MAX_RECEIVED_HEADERS, default_value_t = 50)]
    pub max_received_headers: usize,
    /// A session idle this long gets 421 4.4.2 and is closed.
    #[arg(long, env = var::IDLE_TIMEOUT, default_value = "300s", value_parser = parse_duration)]
    pub idle_timeout: Duration,
    /// Concurrent connections on all listeners; more get 421 4.7.0.
    #[arg(long, env = var::MAX_CONNECTIONS, default_value_t = 10_000)]
    pub max_connections: usize,
    /// Concurrent connections from one client IP; more get 421 4.7.0.
    #[arg(
        long,
        env = var::MAX_CONNECTIONS_PER_IP,
        default_value_t = 50
    )]
    pub max_connections_per_ip: usize,
    /// After SIGTERM, how long transactions in progress may take to finish.
    #[arg(long, env = var::SHUTDOWN_GRACE, default_value = "30s", value_parser = parse_duration)]
    pub shutdown_grace: Duration,
    /// Failed SMTP AUTH attempts per login within the lockout window, counted across all pods.
    #[arg(
        long,
        env = var::AUTH_MAX_FAILURES_PER_LOGIN,
        default_value_t = 5
    )]
    pub auth_max_failures_per_login: u32,
    /// Failed SMTP AUTH attempts per client address (IPv6: per /64) within the lockout window.
    #[arg(
        long,
        env = var::AUTH_MAX_FAILURES_PER_IP,
        default_value_t = 20
    )]
    pub auth_max_failures_per_ip: u32,
    /// How long failures count; a locked-out login or address may try again after it.
    #[arg(long, env = var::AUTH_LOCKOUT_WINDOW, default_value = "15m", value_parser = parse_duration)]
    pub auth_lockout_window: Duration,
    #[command(flatten)]
    pub policy: PolicyArgs,
}

/// Validated ingress settings.
#[derive(Debug, Clone)]
pub struct IngressConfig {
    pub database: DatabaseConfig,
    pub nats: NatsConfig,
    pub admin_listen: SocketAddr,
    /// Trace export (`OTEL_*`); off without an endpoint.
    pub telemetry: TelemetryConfig,
    /// How often the control plane is re-read without a change notice.
    pub control_poll: Duration,
    /// Whether a message's `Traceparent:` header may parent its transaction span.
    pub trace_join_traceparent: bool,
    pub listeners: Vec<(SocketAddr, ListenerKind)>,
    pub session: Arc<SessionConfig>,
    pub relay: RelayPolicy,
    /// Certificates loaded; `None` when no TLS is configured.
    pub tls: Option<Arc<TlsServer>>,
    /// Which listeners require a PROXY header, and from which load balancers.
    pub proxy: ProxyConfig,
    /// SMTP AUTH failure limits.
    pub lockout: LockoutPolicy,
    pub idle_timeout: Duration,
    pub max_connections: usize,
    pub max_connections_per_ip: usize,
    pub shutdown_grace: Duration,
    /// The policy checks: DNSBLs, greeting delay, greylisting, rate limits.
    pub policy: PolicyConfig,
    /// The settings `policy` came from: the base the control plane's policy document is laid
    /// on.
    pub policy_args: PolicyArgs,
}

impl IngressArgs {
    fn lockout(&self) -> Result<LockoutPolicy, ConfigError> {
        positive(
            var::AUTH_MAX_FAILURES_PER_LOGIN,
            u64::from(self.auth_max_failures_per_login),
        )?;
        positive(
            var::AUTH_MAX_FAILURES_PER_IP,
            u64::from(self.auth_max_failures_per_ip),
        )?;
        if self.auth_lockout_window.is_zero() {
            return Err(ConfigError::new(
                var::AUTH_LOCKOUT_WINDOW,
                "must be greater than zero",
            ));
        }
        Ok(LockoutPolicy {
            max_per_login: self.auth_max_failures_per_login,
            max_per_ip: self.auth_max_failures_per_ip,
            window: self.auth_lockout_window,
        })
    }

    pub fn validate(&self) -> Result<IngressConfig, ConfigError> {
        let tls = self.tls()?;
        let mut listeners = vec![(self.smtp_listen, ListenerKind::Smtp)];
        let submission = optional_listen(
            var::SUBMISSION_LISTEN,
            self.submission_listen.as_deref(),
            "0.0.0.0:587",
        )?;
        if let Some(addr) = submission {
            listeners.push((addr, ListenerKind::Submission));
        }
        let submissions = match (self.submissions_listen.as_deref(), &tls) {
            (None, None) => None,
            (None, Some(_)) => Some(DEFAULT_SUBMISSIONS_LISTEN),
            (Some(text), _) => Some(text),
        };
        if let Some(addr) = optional_listen(var::SUBMISSIONS_LISTEN, submissions, "0.0.0.0:465")? {
            if tls.is_none() {
                return Err(ConfigError::new(
                    var::SUBMISSIONS_LISTEN,
                    "implicit TLS needs TERN_INGRESS_TLS_CERTIFICATES",
                ));
            }
            listeners.push((addr, ListenerKind::Submissions));
        }
        for (i, (addr, kind)) in listeners.iter().enumerate() {
            // Port 0 asks the kernel for a fresh port each time, so it never collides.
            if addr.port() != 0 && listeners[..i].iter().any(|(other, _)| other == addr) {
                return Err(ConfigError::new(
                    listen_setting(*kind),
                    format!("{addr} is already used by another listener"),
                ));
            }
        }
        let hostname = host_name(var::HOSTNAME, &self.hostname)?;
        let proxy = ProxyConfig::parse(
            &self.proxy_protocol,
            &self.proxy_trusted_networks,
            self.proxy_header_timeout,
        )?;
        positive(var::MAX_MESSAGE_SIZE, self.max_message_size)?;
        positive(var::MAX_RECIPIENTS, self.max_recipients as u64)?;
        positive(var::MAX_ERRORS, u64::from(self.max_errors))?;
        positive(var::MAX_CONNECTIONS, self.max_connections as u64)?;
        positive(
            var::MAX_CONNECTIONS_PER_IP,
            self.max_connections_per_ip as u64,
        )?;
        if self.max_command_line < 512 {
            return Err(ConfigError::new(
                var::MAX_COMMAND_LINE,
                "must be at least 512 (RFC 5321 4.5.3.1.4)",
            ));
        }
        if self.max_text_line < 1000 {
            return Err(ConfigError::new(
                var::MAX_TEXT_LINE,
                "must be at least 1000 (RFC 5321 4.5.3.1.6)",
            ));
        }
        // Ours and at least one more: a limit of 1 would refuse every relayed message.
        if self.max_received_headers < 2 {
            return Err(ConfigError::new(
                var::MAX_RECEIVED_HEADERS,
                "must be at least 2",
            ));
        }
        if self.idle_timeout.is_zero() {
            return Err(ConfigError::new(
                var::IDLE_TIMEOUT,
                "must be greater than zero",
            ));
        }
        let policy = self.policy.validate(&hostname)?;
        let session = SessionConfig {
            hostname,
            max_message_size: self.max_message_size,
            max_recipients: self.max_recipients,
            max_errors: self.max_errors,
            max_command_line: self.max_command_line,
            max_text_line: self.max_text_line,
            max_received_headers: self.max_received_headers,
            forbid_unauth_pipelining: self.policy.forbid_unauth_pipelining,
            reject_invalid_helo: self.policy.reject_invalid_helo,
        };
        Ok(IngressConfig {
            database: self.database.validate()?,
            nats: self.nats.validate()?,
            admin_listen: self.admin.admin_listen,
            telemetry: self.telemetry.validate("tern-ingress")?,
            control_poll: self.control.validate()?,
            trace_join_traceparent: self.trace_join_traceparent,
            listeners,
            session: Arc::new(session),
            relay: RelayPolicy::new(
                parse_domains(var::LOCAL_DOMAINS, &self.local_domains)?,
                parse_networks(var::TRUSTED_NETWORKS, &self.trusted_networks)?,
            ),
            tls,
            proxy,
            lockout: self.lockout()?,
            idle_timeout: self.idle_timeout,
            max_connections: self.max_connections,
            max_connections_per_ip: self.max_connections_per_ip,
            shutdown_grace: self.shutdown_grace,
            policy,
            policy_args: self.policy.clone(),
        })
    }
}

impl IngressArgs {
    /// Loads the certificates now, so a bad file stops startup before any port is bound.
    fn tls(&self) -> Result<Option<Arc<TlsServer>>, ConfigError> {
        const SETTING: &str = var::TLS_CERTIFICATES;
        let sources = certificate_sources(&self.tls_certificates)
            .map_err(|message| ConfigError::new(SETTING, message))?;
        if sources.is_empty() {
            return Ok(None);
        }
        for (setting, value) in [
            (var::TLS_RELOAD_INTERVAL, self.tls_reload_interval),
            (var::TLS_HANDSHAKE_TIMEOUT, self.tls_handshake_timeout),
        ] {
            if value.is_zero() {
                return Err(ConfigError::new(setting, "must be greater than zero"));
            }
        }
        let server = TlsServer::new(
            sources,
            self.tls_reload_interval,
            self.tls_handshake_timeout,
        )
        .map_err(|error| ConfigError::new(SETTING, error.to_string()))?;
        Ok(Some(Arc::new(server)))
    }
}

/// `cert.pem:key.pem,cert2.pem:key2.pem`.
fn certificate_sources(text: &str) -> Result<Vec<CertificateSource>, String> {
    text.split(',')
        .map(str::trim)
        .filter(|pair| !pair.is_empty())
        .map(|pair| match pair.split_once(':') {
            Some((cert, key)) if !cert.is_empty() && !key.is_empty() => Ok(CertificateSource {
                cert: PathBuf::from(cert),
                key: PathBuf::from(key),
            }),
            _ => Err(format!(
                "'{pair}' is not a pair like /tls/cert.pem:/tls/key.pem"
            )),
        })
        .collect()
}

/// An optional listener address: unset or empty means not bound.
fn optional_listen(
    setting: &'static str,
    text: Option<&str>,
    example: &str,
) -> Result<Option<SocketAddr>, ConfigError> {
    let Some(text) = text.map(str::trim).filter(|t| !t.is_empty()) else {
        return Ok(None);
    };
    text.parse().map(Some).map_err(|_| {
        ConfigError::new(
            setting,
            format!("'{text}' is not an address like {example}"),
        )
    })
}

fn listen_setting(kind: ListenerKind) -> &'static str {
    match kind {
        ListenerKind::Smtp => var::SMTP_LISTEN,
        ListenerKind::Submission => var::SUBMISSION_LISTEN,
        ListenerKind::Submissions => var::SUBMISSIONS_LISTEN,
    }
}

fn positive(setting: &'static str, value: u64) -> Result<(), ConfigError> {
    if value == 0 {
        Err(ConfigError::new(setting, "must be at least 1"))
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        ingress: IngressArgs,
    }

    fn parse(args: &[&str]) -> Result<IngressConfig, ConfigError> {
        let cli = Cli::try_parse_from(std::iter::once("tern").chain(args.iter().copied()))
            .expect("clap parses");
        cli.ingress.validate()
    }

    #[test]
    fn defaults_are_valid_and_bind_two_listeners() {
        let config = parse(&[]).expect("defaults validate");
        assert_eq!(config.listeners.len(), 2);
        assert_eq!(config.session.max_recipients, 100);
        assert!(config.relay.is_local_domain("tern.test"));
    }

    #[test]
    fn invalid_settings_are_named() {
        let cases: [(&[&str], &str); 7] = [
            (&["--max-recipients", "0"], "TERN_INGRESS_MAX_RECIPIENTS"),
            (&["--max-text-line", "80"], "TERN_INGRESS_MAX_TEXT_LINE"),
            (
                &["--trusted-networks", "not-a-net"],
                "TERN_INGRESS_TRUSTED_NETWORKS",
            ),
            (
                &["--submission-listen", "nowhere"],
                "TERN_INGRESS_SUBMISSION_LISTEN",
            ),
            (&["--hostname", "bad host"], "TERN_INGRESS_HOSTNAME"),
            (&["--checks-smtp", "spf,rbl"], "TERN_INGRESS_CHECKS_SMTP"),
            (
                &["--checks-submissions", "dnsbl;spf"],
                "TERN_INGRESS_CHECKS_SUBMISSIONS",
            ),
        ];
        for (args, setting) in cases {
            let err = parse(args).expect_err("invalid");
            assert_eq!(err.setting, setting, "{args:?}");
        }
    }

    #[test]
    fn empty_submission_listen_disables_it() {
        let config = parse(&["--submission-listen", ""]).expect("valid");
        assert_eq!(config.listeners.len(), 1);
    }
}
