//! Mail that would loop back to Tern itself. Postfix's rule: among a domain's MX hosts, Tern and
//! every host it prefers no more than itself are dropped, so a backup MX forwards only to hosts
//! ranked above it; when Tern is the best MX (or the only one) there is nowhere to send the mail
//! and the recipient bounces `5.4.6` ("mail loops back to myself").

use std::net::IpAddr;

use tern_common::policy::canonical;

use super::DeliveryError;
use super::mx::TargetHost;

/// Who Tern is: the names it answers to and the addresses where its ingress takes mail.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Myself {
    names: Vec<String>,
    addresses: Vec<IpAddr>,
}

impl Myself {
    pub fn new(names: impl IntoIterator<Item = String>, addresses: Vec<IpAddr>) -> Self {
        Self {
            names: names
                .into_iter()
                .map(|name| name.trim_end_matches('.').to_ascii_lowercase())
                .collect(),
            addresses,
        }
    }

    /// Whether `host` is Tern: by name, or by any of its addresses.
    pub fn is(&self, host: &TargetHost) -> bool {
        let name = host.name.trim_end_matches('.').to_ascii_lowercase();
        self.names.contains(&name)
            || host
                .addrs
                .iter()
                .any(|addr| self.addresses.contains(&canonical(addr.ip())))
    }

    /// `hosts` (in preference order) without Tern and those it prefers no more than itself;
    /// [`DeliveryError::MailLoop`] when nothing is left.
    pub fn drop_from(
        &self,
        domain: &str,
        hosts: Vec<TargetHost>,
    ) -> Result<Vec<TargetHost>, DeliveryError> {
        let Some(own) = hosts
            .iter()
            .filter(|host| self.is(host))
            .map(|host| host.preference)
            .min()
        else {
            return Ok(hosts);
        };
        let better: Vec<TargetHost> = hosts
            .into_iter()
            .filter(|host| host.preference < own)
            .collect();
        if better.is_empty() {
            return Err(DeliveryError::MailLoop(domain.to_owned()));
        }
        Ok(better)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn host(name: &str, preference: u16, ip: &str) -> TargetHost {
        TargetHost {
            name: name.to_owned(),
            preference,
            addrs: vec![std::net::SocketAddr::new(ip.parse().expect("ip"), 25)],
        }
    }

    fn names(hosts: &[TargetHost]) -> Vec<&str> {
        hosts.iter().map(|h| h.name.as_str()).collect()
    }

    #[test]
    fn hosts_ranked_no_better_than_tern_are_dropped_and_a_best_mx_tern_is_a_loop() {
        let me = Myself::new(
            ["MX.Tern.example.".to_owned()],
            vec!["192.0.2.25".parse().expect("ip")],
        );
        let hosts = || {
            vec![
                host("primary.example", 10, "198.51.100.1"),
                host("mx.tern.example", 20, "192.0.2.99"),
                host("peer.example", 20, "198.51.100.2"),
                host("last.example", 30, "198.51.100.3"),
            ]
        };
        assert_eq!(
            names(&me.drop_from("d.example", hosts()).expect("hosts")),
            ["primary.example"]
        );

        // Found by address: the name is a CNAME-like alias of ours.
        let by_address = vec![
            host("alias.example", 10, "::ffff:192.0.2.25"),
            host("other.example", 20, "198.51.100.2"),
        ];
        assert_eq!(
            me.drop_from("d.example", by_address),
            Err(DeliveryError::MailLoop("d.example".to_owned()))
        );

        let elsewhere = vec![host("other.example", 10, "198.51.100.2")];
        assert_eq!(
            names(&me.drop_from("d.example", elsewhere).expect("hosts")),
            ["other.example"]
        );
        assert_eq!(
            names(
                &Myself::default()
                    .drop_from("d.example", hosts())
                    .expect("hosts")
            )
            .len(),
            4
        );
    }
}
