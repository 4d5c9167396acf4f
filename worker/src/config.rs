//! `tern worker` settings. Every field reads a `TERN_WORKER_…` (or shared `TERN_…`) variable.

use std::net::SocketAddr;
use std::time::Duration;

use clap::Args;
use tern_common::config::{
    AdminArgs, ConfigError, ControlArgs, DatabaseArgs, DatabaseConfig, LogArgs, NatsArgs,
    NatsConfig, host_name, parse_duration, parse_networks,
};

use tern_common::telemetry::{TelemetryArgs, TelemetryConfig};

use crate::delivery::myself::Myself;
use crate::delivery::route::{RouteError, RouteTable};
use crate::delivery::tls_policy::TlsPolicy;
use crate::schedule::RetrySchedule;

/// `tern worker`'s settings as environment variables, each name written here once: the arguments, their
/// validation and their error messages all refer to these.
pub mod var {
    pub const HOSTNAME: &str = "TERN_WORKER_HOSTNAME";
    pub const ID: &str = "TERN_WORKER_ID";
    pub const ROUTES: &str = "TERN_WORKER_ROUTES";
    pub const SMARTHOST: &str = "TERN_WORKER_SMARTHOST";
    pub const TLS_VERIFY: &str = "TERN_WORKER_TLS_VERIFY";
    pub const OWN_ADDRESSES: &str = "TERN_WORKER_OWN_ADDRESSES";
    pub const NAMESERVER: &str = "TERN_WORKER_NAMESERVER";
    pub const SMTP_PORT: &str = "TERN_WORKER_SMTP_PORT";
    pub const CONCURRENCY: &str = "TERN_WORKER_CONCURRENCY";
    pub const DESTINATION_CONCURRENCY: &str = "TERN_WORKER_DESTINATION_CONCURRENCY";
    pub const DESTINATION_RATE: &str = "TERN_WORKER_DESTINATION_RATE";
    pub const BATCH: &str = "TERN_WORKER_BATCH";
    pub const LEASE: &str = "TERN_WORKER_LEASE";
    pub const POLL_INTERVAL: &str = "TERN_WORKER_POLL_INTERVAL";
    pub const RETRY_FIRST: &str = "TERN_WORKER_RETRY_FIRST";
    pub const RETRY_MAX: &str = "TERN_WORKER_RETRY_MAX";
    pub const MAX_QUEUE_LIFETIME: &str = "TERN_WORKER_MAX_QUEUE_LIFETIME";
    pub const CONNECT_TIMEOUT: &str = "TERN_WORKER_CONNECT_TIMEOUT";
    pub const RETENTION_BODY: &str = "TERN_RETENTION_BODY";
    pub const RETENTION_HISTORY: &str = "TERN_RETENTION_HISTORY";
    pub const SHUTDOWN_GRACE: &str = "TERN_WORKER_SHUTDOWN_GRACE";
}

#[derive(Debug, Clone, Args)]
pub struct WorkerArgs {
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

    /// Name in EHLO, in `Reporting-MTA` of DSNs and in the DSN sender's domain.
    #[arg(long, env = var::HOSTNAME, default_value = "localhost")]
    pub hostname: String,
    /// Lease owner name; unique per worker process (default: `<hostname>-<random>`).
    #[arg(long, env = var::ID)]
    pub id: Option<String>,
    /// Static routes, Postfix transport syntax: `example.com=smtp:[mx.example.net]:25,
    /// .internal=lmtp:[10.0.0.5]:24` (a leading dot matches subdomains).
    #[arg(long, env = var::ROUTES, default_value = "")]
    pub routes: String,
    /// Next hop for every domain without a static route, e.g. `smtp:[relay.example.net]:587`;
    /// empty: deliver by MX.
    #[arg(long, env = var::SMARTHOST, default_value = "")]
    pub smarthost: String,
    /// Domains whose mail leaves only over verified TLS (`.example.com` for subdomains); all
    /// others get opportunistic TLS, like Postfix's `may`.
    #[arg(long, env = var::TLS_VERIFY, default_value = "")]
    pub tls_verify: String,
    /// Addresses where Tern's ingress takes mail (pod, Service and load balancer IPs, comma
    /// separated; Postfix's `inet_interfaces` plus `proxy_interfaces`). An MX host with one of
    /// these addresses, or named `TERN_WORKER_HOSTNAME`, is Tern itself: hosts ranked no better
    /// are skipped, and a domain whose best MX is Tern bounces 5.4.6 (a mail loop).
    #[arg(long, env = var::OWN_ADDRESSES, default_value = "")]
    pub own_addresses: String,
    /// DNS server for MX lookups (`ip:port`); default: the system resolver configuration.
    #[arg(long, env = var::NAMESERVER)]
    pub nameserver: Option<SocketAddr>,
    /// Port of mail exchangers found by MX lookup (25 on the Internet).
    #[arg(long, env = var::SMTP_PORT, default_value_t = 25)]
    pub smtp_port: u16,
    /// Deliveries in flight at once, over all destinations.
    #[arg(long, env = var::CONCURRENCY, default_value_t = 100)]
    pub concurrency: usize,
    /// Connections open at once to one destination (site: an MX host set or a relay), by the
    /// whole cluster, unless the control plane's destination limits say otherwise (Postfix's
    /// default_destination_concurrency_limit, held across every worker). Give every worker the
    /// same value.
    #[arg(
        long,
        env = var::DESTINATION_CONCURRENCY,
        default_value_t = 20
    )]
    pub destination_concurrency: usize,
    /// Messages per minute to one destination (site), by the whole cluster, unless the control
    /// plane's destination limits say otherwise; 0: no limit.
    #[arg(long, env = var::DESTINATION_RATE, default_value_t = 0)]
    pub destination_rate: u32,
    /// Jobs claimed per query.
    #[arg(long, env = var::BATCH, default_value_t = 100)]
    pub batch: u32,
    /// How long a claim is ours without renewal; renewed every third of it while we live.
    #[arg(long, env = var::LEASE, default_value = "60s", value_parser = parse_duration)]
    pub lease: Duration,
    /// How often to look for due jobs when no notice arrives (retries, missed notices).
    #[arg(long, env = var::POLL_INTERVAL, default_value = "5s", value_parser = parse_duration)]
    pub poll_interval: Duration,
    /// First retry after a temporary failure; doubles each time.
    #[arg(long, env = var::RETRY_FIRST, default_value = "5m", value_parser = parse_duration)]
    pub retry_first: Duration,
    /// Longest wait between two attempts.
    #[arg(long, env = var::RETRY_MAX, default_value = "4h", value_parser = parse_duration)]
    pub retry_max: Duration,
    /// After this long in the queue a recipient expires and bounces (Postfix maximal_queue_lifetime).
    #[arg(long, env = var::MAX_QUEUE_LIFETIME, default_value = "5d", value_parser = parse_duration)]
    pub max_queue_lifetime: Duration,
    /// TCP connect timeout per address.
    #[arg(long, env = var::CONNECT_TIMEOUT, default_value = "30s", value_parser = parse_duration)]
    pub connect_timeout: Duration,
    /// How long a finished message (every recipient final, every report queued) keeps its body,
    /// for inspection through the API.
    #[arg(long, env = var::RETENTION_BODY, default_value = "1d", value_parser = parse_duration)]
    pub retention_body: Duration,
    /// How long a finished message's history (envelope, jobs, attempts) is kept after it arrived.
    #[arg(long, env = var::RETENTION_HISTORY, default_value = "7d", value_parser = parse_duration)]
    pub retention_history: Duration,
    /// After SIGTERM, time for deliveries in progress before their leases are handed back.
    #[arg(long, env = var::SHUTDOWN_GRACE, default_value = "30s", value_parser = parse_duration)]
    pub shutdown_grace: Duration,
}

/// Validated worker settings.
#[derive(Debug, Clone)]
pub struct WorkerConfig {
    pub database: DatabaseConfig,
    pub nats: NatsConfig,
    pub admin_listen: SocketAddr,
    /// Trace export (`OTEL_*`); off without an endpoint.
    pub telemetry: TelemetryConfig,
    /// How often the control plane is re-read without a change notice.
    pub control_poll: Duration,
    pub hostname: String,
    pub id: String,
    pub routes: RouteTable,
    pub tls_policy: TlsPolicy,
    /// Tern's own names and addresses, never delivered to.
    pub myself: Myself,
    pub nameserver: Option<SocketAddr>,
    pub smtp_port: u16,
    pub concurrency: usize,
    pub destination_concurrency: usize,
    /// Messages per minute to one destination by the cluster; `None`: no limit.
    pub destination_rate: Option<u32>,
    pub batch: u32,
    pub lease: Duration,
    pub poll_interval: Duration,
    pub retry: RetrySchedule,
    pub connect_timeout: Duration,
    pub shutdown_grace: Duration,
    /// Retention of finished messages' bodies and history.
    pub retention: Retention,
}

/// How long finished messages are kept; see `TERN_RETENTION_BODY` and `TERN_RETENTION_HISTORY`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retention {
    pub body: Duration,
    pub history: Duration,
}

impl WorkerArgs {
    pub fn validate(&self) -> Result<WorkerConfig, ConfigError> {
        let hostname = host_name(var::HOSTNAME, &self.hostname)?;
        let id = match self.id.as_deref().map(str::trim) {
            Some("") => return Err(ConfigError::new(var::ID, "must not be empty")),
            Some(id) => id.to_owned(),
            None => format!(
                "{hostname}-{}",
                &uuid::Uuid::new_v4().simple().to_string()[..12]
            ),
        };
        let routes = RouteTable::parse(&self.routes, &self.smarthost).map_err(|error| {
            let setting = match error {
                RouteError::Smarthost { .. } => var::SMARTHOST,
                _ => var::ROUTES,
            };
            ConfigError::new(setting, error.to_string())
        })?;
        for (setting, value) in [
            (var::CONCURRENCY, self.concurrency),
            (var::DESTINATION_CONCURRENCY, self.destination_concurrency),
            (var::BATCH, self.batch as usize),
            (var::SMTP_PORT, usize::from(self.smtp_port)),
        ] {
            if value == 0 {
                return Err(ConfigError::new(setting, "must be greater than zero"));
            }
        }
        for (setting, value) in [
            (var::LEASE, self.lease),
            (var::POLL_INTERVAL, self.poll_interval),
            (var::RETRY_FIRST, self.retry_first),
            (var::MAX_QUEUE_LIFETIME, self.max_queue_lifetime),
            (var::CONNECT_TIMEOUT, self.connect_timeout),
        ] {
            if value.is_zero() {
                return Err(ConfigError::new(setting, "must be greater than zero"));
            }
        }
        if self.lease < Duration::from_secs(3) {
            return Err(ConfigError::new(
                var::LEASE,
                "must be at least 3s (it is renewed every third of it)",
            ));
        }
        if self.retention_history < self.retention_body {
            return Err(ConfigError::new(
                var::RETENTION_HISTORY,
                "must not be shorter than TERN_RETENTION_BODY",
            ));
        }
        if self.retry_max < self.retry_first {
            return Err(ConfigError::new(
                var::RETRY_MAX,
                "must not be shorter than TERN_WORKER_RETRY_FIRST",
            ));
        }
        let own_addresses = parse_networks(var::OWN_ADDRESSES, &self.own_addresses)?
            .into_iter()
            .map(|net| net.addr())
            .collect();
        let myself = Myself::new([hostname.clone()], own_addresses);
        let retry = RetrySchedule {
            first: self.retry_first,
            max: self.retry_max,
            lifetime: self.max_queue_lifetime,
            ..RetrySchedule::default()
        };
        Ok(WorkerConfig {
            database: self.database.validate()?,
            nats: self.nats.validate()?,
            admin_listen: self.admin.admin_listen,
            telemetry: self.telemetry.validate("tern-worker")?,
            control_poll: self.control.validate()?,
            hostname,
            id,
            routes,
            tls_policy: TlsPolicy::parse(&self.tls_verify)
                .map_err(|reason| ConfigError::new(var::TLS_VERIFY, reason))?,
            myself,
            nameserver: self.nameserver,
            smtp_port: self.smtp_port,
            concurrency: self.concurrency,
            destination_concurrency: self.destination_concurrency,
            destination_rate: (self.destination_rate > 0).then_some(self.destination_rate),
            batch: self.batch,
            lease: self.lease,
            poll_interval: self.poll_interval,
            retry,
            connect_timeout: self.connect_timeout,
            shutdown_grace: self.shutdown_grace,
            retention: Retention {
                body: self.retention_body,
                history: self.retention_history,
            },
        })
    }
}
