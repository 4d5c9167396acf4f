//! Finding the hosts that take a domain's mail: MX records in preference order (RFC 5321 5.1),
//! the implicit MX when there are none, the null MX of RFC 7505, and each host's addresses.
//!
//! Every name is looked up as absolute through the shared resolver set-up ([`tern_common::dns`]):
//! a recipient domain must never be completed to `example.com.cluster.local`.
//!
//! A host's addresses come IPv4 first, then IPv6, each in the order DNS gave them. Pods often
//! have no IPv6 route out, and a connection attempt into a black hole costs a whole connect
//! timeout, so the family that works almost everywhere goes first; IPv6 is still tried next.

use std::net::{IpAddr, SocketAddr};

use futures::future::join_all;
use hickory_resolver::TokioResolver;
use hickory_resolver::net::NetError;
use hickory_resolver::proto::rr::{Name, RData};
use tern_common::dns::Resolver;

use super::DeliveryError;

/// A host to connect to, with its addresses in the order to try them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetHost {
    /// The MX exchange (or the domain itself for an implicit MX), without the trailing dot:
    /// the name to verify a certificate against.
    pub name: String,
    pub preference: u16,
    pub addrs: Vec<SocketAddr>,
}

/// MX and address lookups for delivery; cheap to clone (clones share one cache).
#[derive(Clone)]
pub struct MxResolver {
    resolver: TokioResolver,
}

impl std::fmt::Debug for MxResolver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MxResolver").finish_non_exhaustive()
    }
}

/// What an address lookup of one name found.
enum Addresses {
    Found(Vec<IpAddr>),
    /// Neither A nor AAAA records; `exists` is false when the name is NXDOMAIN.
    Missing {
        exists: bool,
    },
    Temporary(String),
}

impl MxResolver {
    /// MX lookups through `resolver` (sharing its cache).
    pub fn new(resolver: &Resolver) -> Self {
        Self {
            resolver: resolver.hickory().clone(),
        }
    }

    /// The hosts to try for `domain`, most preferred first, hosts of equal preference in random
    /// order (RFC 5321 5.1) so load spreads over them. Exchanges without addresses are skipped.
    pub async fn resolve(&self, domain: &str, port: u16) -> Result<Vec<TargetHost>, DeliveryError> {
        let name = absolute(domain)?;
        let mut exchanges: Vec<(u16, Name)> = match self.resolver.mx_lookup(name.clone()).await {
            Ok(lookup) => lookup
                .answers()
                .iter()
                .filter_map(|record| match &record.data {
                    RData::MX(mx) => Some((mx.preference, mx.exchange.clone())),
                    _ => None,
                })
                .collect(),
            Err(error) if error.is_nx_domain() => {
                return Err(DeliveryError::NoSuchDomain(domain.to_owned()));
            }
            Err(error) if error.is_no_records_found() => Vec::new(),
            Err(error) => return Err(temporary(domain, &error)),
        };
        if exchanges.is_empty() {
            return self.implicit_mx(domain, &name, port).await;
        }
        // RFC 7505: a lone "MX 0 ." says the domain takes no mail. A "." among real exchanges
        // is a misconfiguration; it cannot be connected to, so it is dropped.
        if exchanges.iter().all(|(_, exchange)| exchange.is_root()) {
            return Err(DeliveryError::NullMx(domain.to_owned()));
        }
        exchanges.retain(|(_, exchange)| !exchange.is_root());
        // Shuffled, then stably sorted: equal preferences keep their random order.
        fastrand::shuffle(&mut exchanges);
        exchanges.sort_by_key(|(preference, _)| *preference);
        let mut seen = std::collections::HashSet::new();
        exchanges.retain(|(_, exchange)| seen.insert(exchange.to_lowercase()));

        let lookups = exchanges
            .iter()
            .map(|(_, exchange)| self.addresses(exchange));
        let mut hosts = Vec::new();
        let mut failure = None;
        for ((preference, exchange), found) in exchanges.iter().zip(join_all(lookups).await) {
            let name = display(exchange);
            match found {
                Addresses::Found(ips) => hosts.push(TargetHost {
                    addrs: socket_addrs(&ips, port),
                    name,
                    preference: *preference,
                }),
                Addresses::Missing { .. } => {
                    tracing::debug!(%domain, mx = %name, "mail exchanger has no address");
                }
                Addresses::Temporary(reason) => {
                    tracing::debug!(%domain, mx = %name, %reason, "mail exchanger lookup failed");
                    failure.get_or_insert(reason);
                }
            }
        }
        match (hosts.is_empty(), failure) {
            (false, _) => Ok(hosts),
            (true, Some(reason)) => Err(DeliveryError::DnsTemporary {
                domain: domain.to_owned(),
                reason,
            }),
            (true, None) => Err(DeliveryError::NoAddress(domain.to_owned())),
        }
    }

    /// The addresses of a relay host named in a route: an IP literal as is, a name by A/AAAA.
    pub async fn resolve_host(
        &self,
        host: &str,
        port: u16,
    ) -> Result<Vec<TargetHost>, DeliveryError> {
        let literal = host.trim_start_matches('[').trim_end_matches(']');
        let ips = match literal.parse::<IpAddr>() {
            Ok(ip) => vec![ip],
            Err(_) => match self.addresses(&absolute(host)?).await {
                Addresses::Found(ips) => ips,
                Addresses::Missing { exists: false } => {
                    return Err(DeliveryError::NoSuchDomain(host.to_owned()));
                }
                Addresses::Missing { exists: true } => {
                    return Err(DeliveryError::NoAddress(host.to_owned()));
                }
                Addresses::Temporary(reason) => {
                    return Err(DeliveryError::DnsTemporary {
                        domain: host.to_owned(),
                        reason,
                    });
                }
            },
        };
        Ok(vec![TargetHost {
            name: host.to_owned(),
            preference: 0,
            addrs: socket_addrs(&ips, port),
        }])
    }

    /// RFC 5321 5.1: without MX records the domain itself is the mail exchanger.
    async fn implicit_mx(
        &self,
        domain: &str,
        name: &Name,
        port: u16,
    ) -> Result<Vec<TargetHost>, DeliveryError> {
        match self.addresses(name).await {
            Addresses::Found(ips) => Ok(vec![TargetHost {
                name: display(name),
                preference: 0,
                addrs: socket_addrs(&ips, port),
            }]),
            // NXDOMAIN here, after the MX query said the name exists, means the zone changed
            // in between; either way there is nothing to deliver to.
            Addresses::Missing { .. } => Err(DeliveryError::NoAddress(domain.to_owned())),
            Addresses::Temporary(reason) => Err(DeliveryError::DnsTemporary {
                domain: domain.to_owned(),
                reason,
            }),
        }
    }

    /// A and AAAA of `name`, asked at once. One family failing while the other answers still
    /// gives the addresses found.
    async fn addresses(&self, name: &Name) -> Addresses {
        let (v4, v6) = tokio::join!(
            self.resolver.ipv4_lookup(name.clone()),
            self.resolver.ipv6_lookup(name.clone())
        );
        let mut ips: Vec<IpAddr> = Vec::new();
        let mut exists = false;
        let mut failure = None;
        for result in [v4, v6] {
            match result {
                Ok(lookup) => {
                    exists = true;
                    for record in lookup.answers() {
                        let ip = match &record.data {
                            RData::A(a) => IpAddr::V4(a.0),
                            RData::AAAA(aaaa) => IpAddr::V6(aaaa.0),
                            _ => continue,
                        };
                        if !ips.contains(&ip) {
                            ips.push(ip);
                        }
                    }
                }
                Err(error) if error.is_nx_domain() => {}
                Err(error) if error.is_no_records_found() => exists = true,
                Err(error) => failure = Some(error.to_string()),
            }
        }
        match (ips.is_empty(), failure) {
            (false, _) => Addresses::Found(ips),
            (true, Some(reason)) => Addresses::Temporary(reason),
            (true, None) => Addresses::Missing { exists },
        }
    }
}

/// `domain` as an absolute DNS name. A name DNS cannot even express cannot exist.
fn absolute(domain: &str) -> Result<Name, DeliveryError> {
    let text = format!("{}.", domain.trim_end_matches('.'));
    Name::from_utf8(&text).map_err(|_| DeliveryError::NoSuchDomain(domain.to_owned()))
}

/// A name as hosts are named in logs and certificates: ASCII, no trailing dot.
fn display(name: &Name) -> String {
    name.to_ascii().trim_end_matches('.').to_owned()
}

fn socket_addrs(ips: &[IpAddr], port: u16) -> Vec<SocketAddr> {
    ips.iter().map(|ip| SocketAddr::new(*ip, port)).collect()
}

fn temporary(domain: &str, error: &NetError) -> DeliveryError {
    DeliveryError::DnsTemporary {
        domain: domain.to_owned(),
        reason: error.to_string(),
    }
}
