//! The one way Tern asks DNS: the worker's MX lookups and the ingress's policy checks (DNSBL,
//! SPF, DKIM, DMARC) share this set-up, so a test (or an operator) points any of them at a name
//! server with one setting.
//!
//! Every name is looked up as absolute (a trailing dot, no search domains, `/etc/hosts` not
//! consulted): a recipient domain must never be completed to `example.com.cluster.local`, and a
//! DNSBL query must reach the list, not a search domain. The resolver's own cache is the positive
//! cache; TTLs are honoured.

use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use hickory_resolver::TokioResolver;
use hickory_resolver::config::{
    ConnectionConfig, NameServerConfig, ResolveHosts, ResolverConfig, ResolverOpts,
};
use hickory_resolver::net::NetError;
use hickory_resolver::net::runtime::TokioRuntimeProvider;
pub use hickory_resolver::proto::rr::RecordType;
use hickory_resolver::proto::rr::{Name, RData};

/// One DNS try waits this long; with [`ATTEMPTS`] retries a dead server costs a caller about ten
/// seconds rather than the better part of a minute (callers with a deadline cut it shorter).
const TIMEOUT: Duration = Duration::from_secs(3);
const ATTEMPTS: usize = 2;

/// The resolver could not be configured (for example an unreadable `/etc/resolv.conf`).
#[derive(Debug, thiserror::Error)]
#[error("cannot set up the DNS resolver: {0}")]
pub struct ResolverError(#[from] NetError);

/// A configured resolver; cheap to clone (clones share one cache).
#[derive(Clone)]
pub struct Resolver {
    inner: TokioResolver,
}

impl std::fmt::Debug for Resolver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Resolver").finish_non_exhaustive()
    }
}

/// What an A query for one name found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ipv4Answer {
    Found(Vec<Ipv4Addr>),
    /// NXDOMAIN, or the name exists without A records.
    None,
    /// SERVFAIL, a refusal, a timeout or a network error: nothing can be concluded.
    Failed(String),
}

/// The resolver asks its name servers over UDP and TCP only, but with its TLS feature on it
/// loads the system's CA certificates when it is built, and fails where there are none (a
/// minimal container image). DNS over TLS is never used, so it gets a configuration that trusts
/// nothing instead.
fn unused_tls_config() -> Result<rustls::ClientConfig, ResolverError> {
    let provider = std::sync::Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|error| NetError::from(error.to_string()))?
        .with_root_certificates(rustls::RootCertStore::empty())
        .with_no_client_auth();
    Ok(config)
}

impl Resolver {
    /// `nameserver`: that one server; `None`: the servers of `/etc/resolv.conf`, without its
    /// search domains.
    pub fn new(nameserver: Option<SocketAddr>) -> Result<Self, ResolverError> {
        match nameserver {
            Some(address) => Self::with_nameserver(address),
            None => Self::system(),
        }
    }

    pub fn system() -> Result<Self, ResolverError> {
        let (config, options) = hickory_resolver::system_conf::read_system_conf()?;
        let servers = ResolverConfig::from_name_servers(config.name_servers().to_vec());
        Self::build(servers, options)
    }

    /// Uses one name server, over UDP with TCP for truncated answers.
    pub fn with_nameserver(address: SocketAddr) -> Result<Self, ResolverError> {
        let connections = [ConnectionConfig::udp(), ConnectionConfig::tcp()]
            .into_iter()
            .map(|mut connection| {
                connection.port = address.port();
                connection
            })
            .collect();
        let server = NameServerConfig::new(address.ip(), true, connections);
        Self::build(
            ResolverConfig::from_name_servers(vec![server]),
            ResolverOpts::default(),
        )
    }

    fn build(config: ResolverConfig, mut options: ResolverOpts) -> Result<Self, ResolverError> {
        options.ndots = 0;
        options.timeout = TIMEOUT;
        options.attempts = ATTEMPTS;
        options.use_hosts_file = ResolveHosts::Never;
        let inner = TokioResolver::builder_with_config(config, TokioRuntimeProvider::default())
            .with_options(options)
            .with_tls_config(unused_tls_config()?)
            .build()?;
        Ok(Self { inner })
    }

    /// The hickory resolver underneath, for lookups this module does not wrap (MX, AAAA).
    pub fn hickory(&self) -> &TokioResolver {
        &self.inner
    }

    /// The A records of `name` (taken as absolute).
    pub async fn ipv4(&self, name: &str) -> Ipv4Answer {
        let Some(name) = absolute(name) else {
            return Ipv4Answer::None;
        };
        match self.inner.ipv4_lookup(name).await {
            Ok(lookup) => Ipv4Answer::Found(
                lookup
                    .answers()
                    .iter()
                    .filter_map(|record| match &record.data {
                        RData::A(a) => Some(a.0),
                        _ => None,
                    })
                    .collect(),
            ),
            Err(error) if error.is_nx_domain() || error.is_no_records_found() => Ipv4Answer::None,
            Err(error) => Ipv4Answer::Failed(error.to_string()),
        }
    }
}

impl Resolver {
    /// The records of `name` of type `record_type`, each as its presentation text (a TXT
    /// record's strings joined, an MX record as `preference exchange`); none when the name or
    /// the type does not exist, `Err` when DNS did not answer.
    pub async fn texts(&self, name: &str, record_type: RecordType) -> Result<Vec<String>, String> {
        let Some(name) = absolute(name) else {
            return Ok(Vec::new());
        };
        match self.inner.lookup(name, record_type).await {
            Ok(lookup) => Ok(lookup
                .answers()
                .iter()
                .filter_map(|record| match &record.data {
                    RData::TXT(txt) => Some(
                        txt.txt_data
                            .iter()
                            .map(|part| String::from_utf8_lossy(part))
                            .collect::<String>(),
                    ),
                    RData::MX(mx) => Some(format!(
                        "{} {}",
                        mx.preference,
                        mx.exchange.to_ascii().trim_end_matches('.')
                    )),
                    _ => None,
                })
                .collect()),
            Err(error) if error.is_nx_domain() || error.is_no_records_found() => Ok(Vec::new()),
            Err(error) => Err(error.to_string()),
        }
    }
}

/// `name` as an absolute DNS name; `None` when DNS cannot even express it.
pub fn absolute(name: &str) -> Option<Name> {
    Name::from_utf8(format!("{}.", name.trim_end_matches('.'))).ok()
}
