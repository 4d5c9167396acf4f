//! `tern operator`'s settings. The Kubernetes connection is kube's own: the pod's service
//! account in a cluster, `KUBECONFIG` (or `~/.kube/config`) outside one.

use std::time::Duration;

use clap::Args;
use tern_common::config::{
    AdminArgs, ConfigError, DatabaseArgs, DatabaseConfig, LogArgs, NatsArgs, NatsConfig,
    parse_duration,
};
use tern_common::control::Domain;
use tern_common::dns::Resolver;

/// The operator's own settings, each name written here once.
pub mod var {
    pub const ID: &str = "TERN_OPERATOR_ID";
    pub const LEASE_NAMESPACE: &str = "TERN_OPERATOR_LEASE_NAMESPACE";
    pub const RESYNC_INTERVAL: &str = "TERN_OPERATOR_RESYNC_INTERVAL";
    pub const NAMESERVER: &str = "TERN_OPERATOR_NAMESERVER";
    pub const MX_HOST: &str = "TERN_OPERATOR_MX_HOST";
}

#[derive(Debug, Clone, Args)]
pub struct OperatorArgs {
    #[command(flatten)]
    pub database: DatabaseArgs,
    /// Where the control plane's change notices go, so pods follow a change within a second.
    #[command(flatten)]
    pub nats: NatsArgs,
    #[command(flatten)]
    pub admin: AdminArgs,
    #[command(flatten)]
    pub log: LogArgs,
    /// This replica's name in the leader election (in a pod: its name, from the downward API);
    /// unset: the host name and a random suffix.
    #[arg(long = "operator-id", env = var::ID)]
    pub id: Option<String>,
    /// The namespace of the Lease the replicas elect their leader with.
    #[arg(long, env = var::LEASE_NAMESPACE, default_value = "tern")]
    pub lease_namespace: String,
    /// How often every settled resource is reconciled again, which puts back a control-plane
    /// row changed or deleted behind the operator's back.
    #[arg(long, env = var::RESYNC_INTERVAL, default_value = "5m", value_parser = parse_duration)]
    pub resync_interval: Duration,
    /// The name server (`address:port`) asked whether a MailDomain's records are published;
    /// unset: the system's.
    #[arg(long = "operator-nameserver", env = var::NAMESERVER)]
    pub nameserver: Option<std::net::SocketAddr>,
    /// The host name of Tern's MX (the ingress's public name): MailDomains propose an MX record
    /// naming it and an SPF record allowing it. Unset: no MX record is proposed.
    #[arg(long, env = var::MX_HOST)]
    pub mx_host: Option<String>,
}

#[derive(Clone)]
pub struct OperatorConfig {
    pub database: DatabaseConfig,
    pub nats: NatsConfig,
    pub admin_listen: std::net::SocketAddr,
    pub id: String,
    pub lease_namespace: String,
    pub resync: Duration,
    pub resolver: Resolver,
    pub mx_host: Option<String>,
}

impl OperatorArgs {
    pub fn validate(&self) -> Result<OperatorConfig, ConfigError> {
        Ok(OperatorConfig {
            database: self.database.validate()?,
            nats: self.nats.validate()?,
            admin_listen: self.admin.admin_listen,
            id: match &self.id {
                Some(id) if id.trim().is_empty() => {
                    return Err(ConfigError::new(var::ID, "must not be empty"));
                }
                Some(id) => id.clone(),
                None => format!(
                    "{}-{}",
                    std::env::var("HOSTNAME").unwrap_or_else(|_| "tern-operator".to_owned()),
                    &uuid::Uuid::new_v4().simple().to_string()[..8]
                ),
            },
            lease_namespace: self.lease_namespace.clone(),
            resolver: Resolver::new(self.nameserver)
                .map_err(|error| ConfigError::new(var::NAMESERVER, error.to_string()))?,
            mx_host: match self.mx_host.as_deref().map(str::trim) {
                None | Some("") => None,
                Some(host) => Some(
                    Domain::normalise(host)
                        .map_err(|error| ConfigError::new(var::MX_HOST, error.reason))?,
                ),
            },
            resync: if self.resync_interval.is_zero() {
                return Err(ConfigError::new(
                    var::RESYNC_INTERVAL,
                    "must be greater than zero",
                ));
            } else {
                self.resync_interval
            },
        })
    }
}
