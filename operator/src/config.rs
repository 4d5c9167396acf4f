//! `tern operator`'s settings. The Kubernetes connection is kube's own: the pod's service
//! account in a cluster, `KUBECONFIG` (or `~/.kube/config`) outside one.

use clap::Args;
use tern_common::config::{
    AdminArgs, ConfigError, DatabaseArgs, DatabaseConfig, LogArgs, NatsArgs, NatsConfig,
};

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
}

#[derive(Debug, Clone)]
pub struct OperatorConfig {
    pub database: DatabaseConfig,
    pub nats: NatsConfig,
    pub admin_listen: std::net::SocketAddr,
}

impl OperatorArgs {
    pub fn validate(&self) -> Result<OperatorConfig, ConfigError> {
        Ok(OperatorConfig {
            database: self.database.validate()?,
            nats: self.nats.validate()?,
            admin_listen: self.admin.admin_listen,
        })
    }
}
