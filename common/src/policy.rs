//! Relay policy: who may send to whom. Pure evaluation, no I/O.
//!
//! Mail for a local domain is accepted from anyone; mail for any other destination only from a
//! trusted network. Everything an old relay could be tricked with counts as "other destination":
//! address literals, and local parts carrying routing characters (`%`, `!`, or a quoted `@`),
//! which a downstream system might reinterpret as a next hop. Source routes were already dropped
//! by the parser (RFC 5321 4.1.1.3 says to ignore them), so the final domain is what is judged.

use std::collections::HashSet;
use std::net::IpAddr;

use ipnet::IpNet;
use tern_smtp::{Domain, ForwardPath};

use crate::control::{ConfigRows, ControlPlane};

#[derive(Debug, Clone, Default)]
pub struct RelayPolicy {
    local_domains: HashSet<String>,
    trusted_networks: Vec<IpNet>,
}

/// What the policy says about one recipient.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RelayDecision {
    /// A local domain (or bare `postmaster`): accepted from anyone.
    Local,
    /// Not local, but the client is in a trusted network.
    Relay,
    /// Not local and the client is not trusted: `554 5.7.1`.
    Denied,
}

impl RelayPolicy {
    pub fn new(
        local_domains: impl IntoIterator<Item = String>,
        trusted_networks: Vec<IpNet>,
    ) -> Self {
        let local_domains = local_domains
            .into_iter()
            .map(|d| d.trim_end_matches('.').to_ascii_lowercase())
            .collect();
        Self {
            local_domains,
            trusted_networks,
        }
    }

    /// These settings as the control plane's `config` rows.
    pub fn config_rows(&self) -> ConfigRows {
        let mut local_domains: Vec<String> = self.local_domains.iter().cloned().collect();
        local_domains.sort();
        ConfigRows {
            local_domains,
            trusted_networks: self.trusted_networks.clone(),
        }
    }

    pub fn is_local_domain(&self, domain: &str) -> bool {
        self.local_domains
            .contains(&domain.trim_end_matches('.').to_ascii_lowercase())
    }

    pub fn is_trusted(&self, client: IpAddr) -> bool {
        let client = canonical(client);
        self.trusted_networks
            .iter()
            .any(|net| net.contains(&client))
    }

    /// Whether `client` is in a trusted network of these settings or of the control plane.
    pub fn trusts(&self, plane: &ControlPlane, client: IpAddr) -> bool {
        let ip = canonical(client);
        self.is_trusted(client) || plane.trusted_networks().iter().any(|net| net.contains(&ip))
    }

    pub fn decide(&self, recipient: &ForwardPath, client: IpAddr) -> RelayDecision {
        self.decide_with(&ControlPlane::default(), recipient, client)
    }

    /// The decision with the control plane's domains (local or relay: both accepted from anyone)
    /// and trusted networks added to these settings.
    pub fn decide_with(
        &self,
        plane: &ControlPlane,
        recipient: &ForwardPath,
        client: IpAddr,
    ) -> RelayDecision {
        let local = match recipient {
            ForwardPath::Postmaster => true,
            ForwardPath::Mailbox(mailbox) => match &mailbox.domain {
                Domain::Name(name) => {
                    !mailbox.local_has_routing_chars()
                        && (self.is_local_domain(name) || {
                            let name = name.trim_end_matches('.').to_ascii_lowercase();
                            plane.domain(&name).is_some()
                        })
                }
                Domain::Literal(_) => false,
            },
        };
        if local {
            RelayDecision::Local
        } else if self.trusts(plane, client) {
            RelayDecision::Relay
        } else {
            RelayDecision::Denied
        }
    }
}

/// An IPv4 client seen through an IPv6 socket (`::ffff:192.0.2.1`) is judged as IPv4.
pub fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

#[cfg(test)]
mod tests;
