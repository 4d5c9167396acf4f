//! `tern api` settings. Every field reads a `TERN_API_…` (or shared `TERN_…`) variable.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::Args;
use tern_common::config::{
    ConfigError, DatabaseArgs, DatabaseConfig, LogArgs, NatsArgs, NatsConfig,
};

/// `tern api`'s settings as environment variables, each name written here once: the arguments, their
/// validation and their error messages all refer to these.
pub mod var {
    pub const LISTEN: &str = "TERN_API_LISTEN";
    pub const BOOTSTRAP_TOKEN_FILE: &str = "TERN_API_BOOTSTRAP_TOKEN_FILE";
    pub const TRACE_URL: &str = "TERN_API_TRACE_URL";
}

#[derive(Debug, Clone, Args)]
pub struct ApiArgs {
    #[command(flatten)]
    pub database: DatabaseArgs,
    #[command(flatten)]
    pub nats: NatsArgs,
    #[command(flatten)]
    pub log: LogArgs,
    /// Address of the admin API; `/healthz`, `/readyz` and `/metrics` are served there too.
    #[arg(long, env = var::LISTEN, default_value = "127.0.0.1:2580")]
    pub api_listen: SocketAddr,
    /// A file holding a bootstrap admin token (a mounted Secret in Kubernetes): it needs no
    /// row in the token table.
    #[arg(long, env = var::BOOTSTRAP_TOKEN_FILE)]
    pub bootstrap_token_file: Option<PathBuf>,
    /// A trace's URL with `{trace_id}` in it, shown with each message (e.g.
    /// `http://localhost:16686/trace/{trace_id}` for Jaeger).
    #[arg(long, env = var::TRACE_URL)]
    pub trace_url: Option<String>,
}

#[derive(Clone)]
pub struct ApiConfig {
    pub database: DatabaseConfig,
    pub nats: NatsConfig,
    pub listen: SocketAddr,
    /// The bootstrap token's text, read from its file at validation.
    pub bootstrap_token: Option<String>,
    pub trace_url: Option<String>,
}

/// The bootstrap token is never printed.
impl std::fmt::Debug for ApiConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiConfig")
            .field("listen", &self.listen)
            .field(
                "bootstrap_token",
                &self.bootstrap_token.as_ref().map(|_| "(redacted)"),
            )
            .field("trace_url", &self.trace_url)
            .finish_non_exhaustive()
    }
}

impl ApiArgs {
    pub fn validate(&self) -> Result<ApiConfig, ConfigError> {
        let bootstrap_token = match &self.bootstrap_token_file {
            None => None,
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|error| {
                    ConfigError::new(
                        var::BOOTSTRAP_TOKEN_FILE,
                        format!("cannot read {}: {error}", path.display()),
                    )
                })?;
                let token = text.trim();
                if token.len() < 16 {
                    return Err(ConfigError::new(
                        var::BOOTSTRAP_TOKEN_FILE,
                        "the token must be at least 16 characters",
                    ));
                }
                Some(token.to_owned())
            }
        };
        let trace_url = self
            .trace_url
            .as_deref()
            .map(str::trim)
            .filter(|url| !url.is_empty());
        if let Some(url) = trace_url
            && !url.contains("{trace_id}")
        {
            return Err(ConfigError::new(var::TRACE_URL, "must contain {trace_id}"));
        }
        Ok(ApiConfig {
            database: self.database.validate()?,
            nats: self.nats.validate()?,
            listen: self.api_listen,
            bootstrap_token,
            trace_url: trace_url.map(str::to_owned),
        })
    }
}
