//! Configuration groups shared by every component.
//!
//! Each group is a clap `Args` struct whose fields all read a `TERN_…` variable, so the same
//! setting has one name on the command line and in the environment. Raw `*Args` are turned into
//! validated `*Config` before any socket is bound; a [`ConfigError`] names the offending setting
//! and the binary exits with [`EXIT_CONFIG`].

use std::net::SocketAddr;
use std::time::Duration;

use clap::{Args, ValueEnum};

/// `EX_CONFIG` from sysexits.h: what the binary exits with when its configuration is invalid.
pub const EXIT_CONFIG: i32 = 64;

/// An invalid setting, named as the user wrote it (the environment variable).
#[derive(Debug, thiserror::Error)]
#[error("invalid configuration: {setting}: {reason}")]
pub struct ConfigError {
    pub setting: &'static str,
    pub reason: String,
}

impl ConfigError {
    pub fn new(setting: &'static str, reason: impl Into<String>) -> Self {
        Self {
            setting,
            reason: reason.into(),
        }
    }
}

/// The settings every component shares as environment variables, each name written here once: the arguments, their
/// validation and their error messages all refer to these.
pub mod var {
    pub const DATABASE_URL: &str = "TERN_DATABASE_URL";
    pub const DATABASE_MAX_CONNECTIONS: &str = "TERN_DATABASE_MAX_CONNECTIONS";
    pub const DATABASE_COMMIT_TIMEOUT: &str = "TERN_DATABASE_COMMIT_TIMEOUT";
    pub const NATS_URL: &str = "TERN_NATS_URL";
    pub const NATS_PREFIX: &str = "TERN_NATS_PREFIX";
    pub const ADMIN_LISTEN: &str = "TERN_ADMIN_LISTEN";
    pub const CONTROL_POLL_INTERVAL: &str = "TERN_CONTROL_POLL_INTERVAL";
    pub const LOG_FORMAT: &str = "TERN_LOG_FORMAT";
    pub const LOG: &str = "TERN_LOG";
}

#[derive(Debug, Clone, Args)]
pub struct DatabaseArgs {
    /// PostgreSQL URL of the queue database.
    #[arg(
        long = "database-url",
        env = var::DATABASE_URL,
        default_value = "postgres://tern@127.0.0.1:55432/tern"
    )]
    pub database_url: String,
    /// Connections in the pool; concurrent commits share WAL flushes (group commit).
    #[arg(
        long = "database-max-connections",
        env = var::DATABASE_MAX_CONNECTIONS,
        default_value_t = 32
    )]
    pub database_max_connections: u32,
    /// How long one queue commit may take before the client is told 451 4.3.0.
    #[arg(long = "database-commit-timeout", env = var::DATABASE_COMMIT_TIMEOUT, default_value = "10s", value_parser = parse_duration)]
    pub database_commit_timeout: Duration,
}

#[derive(Debug, Clone)]
pub struct DatabaseConfig {
    pub url: String,
    pub max_connections: u32,
    pub commit_timeout: Duration,
}

impl DatabaseArgs {
    pub fn validate(&self) -> Result<DatabaseConfig, ConfigError> {
        let url = self.database_url.trim();
        if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
            return Err(ConfigError::new(
                var::DATABASE_URL,
                "must start with postgres:// or postgresql://",
            ));
        }
        if self.database_max_connections == 0 {
            return Err(ConfigError::new(
                var::DATABASE_MAX_CONNECTIONS,
                "must be at least 1",
            ));
        }
        if self.database_commit_timeout.is_zero() {
            return Err(ConfigError::new(
                var::DATABASE_COMMIT_TIMEOUT,
                "must be greater than zero",
            ));
        }
        Ok(DatabaseConfig {
            url: url.to_owned(),
            max_connections: self.database_max_connections,
            commit_timeout: self.database_commit_timeout,
        })
    }
}

#[derive(Debug, Clone, Args)]
pub struct NatsArgs {
    /// NATS server URL (JetStream enabled).
    #[arg(
        long = "nats-url",
        env = var::NATS_URL,
        default_value = "nats://127.0.0.1:54222"
    )]
    pub nats_url: String,
    /// Prefix of every stream and subject name, so several installations (or tests) share a NATS.
    #[arg(long = "nats-prefix", env = var::NATS_PREFIX, default_value = "tern")]
    pub nats_prefix: String,
}

#[derive(Debug, Clone)]
pub struct NatsConfig {
    pub url: String,
    pub prefix: String,
}

impl NatsArgs {
    pub fn validate(&self) -> Result<NatsConfig, ConfigError> {
        if !self.nats_url.starts_with("nats://") && !self.nats_url.starts_with("tls://") {
            return Err(ConfigError::new(
                var::NATS_URL,
                "must start with nats:// or tls://",
            ));
        }
        let prefix = &self.nats_prefix;
        let valid = !prefix.is_empty()
            && prefix.len() <= 32
            && prefix
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
        if !valid {
            return Err(ConfigError::new(
                var::NATS_PREFIX,
                "1 to 32 characters of letters, digits, '-' or '_' (it names a stream)",
            ));
        }
        Ok(NatsConfig {
            url: self.nats_url.clone(),
            prefix: prefix.clone(),
        })
    }
}

#[derive(Debug, Clone, Args)]
pub struct AdminArgs {
    /// Address of the admin HTTP server: /metrics, /healthz, /readyz.
    #[arg(
        long = "admin-listen",
        env = var::ADMIN_LISTEN,
        default_value = "127.0.0.1:9090"
    )]
    pub admin_listen: SocketAddr,
}

#[derive(Debug, Clone, Args)]
pub struct ControlArgs {
    /// How often the control plane is re-read when no change notice arrives (a lost notice, NATS
    /// down): the longest a change can take to reach this pod.
    #[arg(long = "control-poll-interval", env = var::CONTROL_POLL_INTERVAL, default_value = "30s", value_parser = parse_duration)]
    pub control_poll_interval: Duration,
}

impl ControlArgs {
    pub fn validate(&self) -> Result<Duration, ConfigError> {
        if self.control_poll_interval.is_zero() {
            return Err(ConfigError::new(
                var::CONTROL_POLL_INTERVAL,
                "must be greater than zero",
            ));
        }
        Ok(self.control_poll_interval)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines, for `make dev`.
    Text,
    /// One JSON object per line, for production log pipelines.
    Json,
}

#[derive(Debug, Clone, Args)]
pub struct LogArgs {
    /// Log line format.
    #[arg(long = "log-format", env = var::LOG_FORMAT, value_enum, default_value_t = LogFormat::Json)]
    pub log_format: LogFormat,
    /// Log filter in tracing's EnvFilter syntax (RUST_LOG is honoured when this is unset).
    #[arg(long = "log", env = var::LOG)]
    pub log: Option<String>,
}

/// Parses `300`, `300s`, `5m`, `2h`, `5d` or `250ms`.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (digits, unit) = text.split_at(split);
    let value: u64 = digits
        .parse()
        .map_err(|_| format!("'{text}' is not a duration like 30s, 5m or 250ms"))?;
    let duration = match unit {
        "" | "s" => Duration::from_secs(value),
        "ms" => Duration::from_millis(value),
        "m" => Duration::from_secs(value.saturating_mul(60)),
        "h" => Duration::from_secs(value.saturating_mul(3600)),
        "d" => Duration::from_secs(value.saturating_mul(86_400)),
        _ => {
            return Err(format!(
                "'{text}' has an unknown unit (use ms, s, m, h or d)"
            ));
        }
    };
    Ok(duration)
}

/// A host name setting (greeting, EHLO, Received:, DSN sender): letters, digits, '.', '-'.
pub fn host_name(setting: &'static str, value: &str) -> Result<String, ConfigError> {
    let name = value.trim();
    if name.is_empty()
        || name
            .bytes()
            .any(|b| !(b.is_ascii_alphanumeric() || b == b'.' || b == b'-'))
    {
        return Err(ConfigError::new(
            setting,
            "must be a host name (letters, digits, '.', '-')",
        ));
    }
    Ok(name.to_owned())
}

/// Splits a comma- or whitespace-separated list, dropping empty items.
pub fn split_list(text: &str) -> impl Iterator<Item = &str> {
    text.split(|c: char| c == ',' || c.is_whitespace())
        .filter(|item| !item.is_empty())
}

/// A list of domain names (`example.com, example.net`), lower-cased, as the `setting` says.
pub fn parse_domains(setting: &'static str, text: &str) -> Result<Vec<String>, ConfigError> {
    split_list(text)
        .map(|domain| {
            let valid = domain.len() <= 253
                && domain.split('.').all(|label| {
                    !label.is_empty()
                        && label.len() <= 63
                        && label
                            .bytes()
                            .all(|b| b.is_ascii_alphanumeric() || b == b'-')
                });
            match valid {
                true => Ok(domain.to_ascii_lowercase()),
                false => Err(ConfigError::new(
                    setting,
                    format!("'{domain}' is not a domain name"),
                )),
            }
        })
        .collect()
}

/// A list of CIDR networks or single addresses (`10.0.0.0/8, 192.0.2.7`), as the `setting` says.
pub fn parse_networks(setting: &'static str, text: &str) -> Result<Vec<ipnet::IpNet>, ConfigError> {
    split_list(text)
        .map(|net| {
            net.parse::<ipnet::IpNet>()
                .or_else(|_| net.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
                .map_err(|_| {
                    ConfigError::new(
                        setting,
                        format!("'{net}' is not an address or CIDR network"),
                    )
                })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_accept_plain_seconds_and_units() {
        let cases = [
            ("30", Some(Duration::from_secs(30))),
            ("30s", Some(Duration::from_secs(30))),
            ("5d", Some(Duration::from_secs(5 * 86_400))),
            ("5m", Some(Duration::from_secs(300))),
            ("2h", Some(Duration::from_secs(7200))),
            ("250ms", Some(Duration::from_millis(250))),
            ("", None),
            ("5 minutes", None),
            ("-1s", None),
            ("1w", None),
        ];
        for (text, expected) in cases {
            assert_eq!(parse_duration(text).ok(), expected, "{text:?}");
        }
    }

    #[test]
    fn lists_split_on_commas_and_spaces() {
        let items: Vec<_> = split_list(" a.test, b.test  c.test,,").collect();
        assert_eq!(items, ["a.test", "b.test", "c.test"]);
    }

    #[test]
    fn nats_prefix_must_name_a_stream() {
        let args = |prefix: &str| NatsArgs {
            nats_url: "nats://127.0.0.1:4222".into(),
            nats_prefix: prefix.into(),
        };
        assert!(args("tern").validate().is_ok());
        assert!(args("test_1-a").validate().is_ok());
        let err = args("a.b").validate().expect_err("must be refused");
        assert_eq!(err.setting, "TERN_NATS_PREFIX");
        assert!(args("").validate().is_err());
    }

    #[test]
    fn database_url_must_be_postgres() {
        let args = DatabaseArgs {
            database_url: "mysql://x".into(),
            database_max_connections: 4,
            database_commit_timeout: Duration::from_secs(1),
        };
        assert_eq!(
            args.validate().expect_err("must be refused").setting,
            "TERN_DATABASE_URL"
        );
    }
}
