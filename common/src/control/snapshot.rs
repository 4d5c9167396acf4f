//! [`ControlPlane`]: one revision of the control plane, immutable, and the questions the ingress
//! and the workers ask of it. Lookups are hash-map or short-list scans; expiry is judged at the
//! time of the question, so an entry stops applying when it expires, not at the next reload.

use std::collections::HashMap;
use std::net::IpAddr;

use ipnet::IpNet;
use time::OffsetDateTime;

use crate::policy::canonical;

use super::dkim::DkimKey;
use super::limits::{DestinationLimit, most_specific};
use super::model::{BlockAction, BlockEntry, BlockKind, Certificate, Domain, Suspension};
use super::policy::PolicyDocument;

#[derive(Debug, Clone, Default)]
pub struct ControlPlane {
    /// 0 until the first read from PostgreSQL: only the pod's own settings apply.
    pub revision: i64,
    domains: HashMap<String, Domain>,
    networks: Vec<IpNet>,
    /// Exact values by kind; CIDR entries in a list of their own.
    exact: HashMap<(BlockKind, String), BlockEntry>,
    cidrs: Vec<(IpNet, BlockEntry)>,
    suspensions: HashMap<String, Suspension>,
    certificates: Vec<Certificate>,
    /// The keys that sign, by domain.
    dkim_keys: HashMap<String, Vec<DkimKey>>,
    destination_limits: Vec<DestinationLimit>,
    policy: PolicyDocument,
}

/// Everything one revision holds, as read.
#[derive(Debug, Clone, Default)]
pub struct ControlRows {
    pub domains: Vec<Domain>,
    pub networks: Vec<IpNet>,
    pub blocklist: Vec<BlockEntry>,
    pub suspensions: Vec<Suspension>,
    pub certificates: Vec<Certificate>,
    pub dkim_keys: Vec<DkimKey>,
    pub destination_limits: Vec<DestinationLimit>,
    /// Empty when none was written.
    pub policy: PolicyDocument,
}

/// A blocklist entry that matched: what to do and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Blocked {
    pub kind: BlockKind,
    pub action: BlockAction,
    pub reason: String,
}

impl ControlPlane {
    pub fn new(revision: i64, rows: ControlRows) -> Self {
        let ControlRows {
            domains,
            networks,
            blocklist,
            suspensions,
            certificates,
            dkim_keys,
            destination_limits,
            policy,
        } = rows;
        let mut exact = HashMap::new();
        let mut cidrs = Vec::new();
        for entry in blocklist {
            if entry.kind == BlockKind::Cidr {
                if let Ok(net) = entry.value.parse::<IpNet>() {
                    cidrs.push((net, entry));
                }
            } else {
                exact.insert((entry.kind, entry.value.clone()), entry);
            }
        }
        // The most specific network decides, as a routing table would.
        cidrs.sort_by_key(|(net, _)| std::cmp::Reverse(net.prefix_len()));
        Self {
            revision,
            domains: domains.into_iter().map(|d| (d.name.clone(), d)).collect(),
            networks,
            exact,
            cidrs,
            suspensions: suspensions
                .into_iter()
                .map(|s| (s.domain.clone(), s))
                .collect(),
            certificates,
            dkim_keys: dkim_keys
                .into_iter()
                .fold(HashMap::new(), |mut by_domain, key| {
                    by_domain
                        .entry(key.domain.clone())
                        .or_insert_with(Vec::new)
                        .push(key);
                    by_domain
                }),
            destination_limits,
            policy,
        }
    }

    /// The delivery limits of the site of `hosts` (its MX hosts, or its relay host), if a row
    /// applies to it.
    pub fn destination_limit(&self, hosts: &[String]) -> Option<&DestinationLimit> {
        most_specific(&self.destination_limits, hosts)
    }

    /// The policy document: the policy checks' settings it replaces (empty: none).
    pub fn policy(&self) -> &PolicyDocument {
        &self.policy
    }

    /// The keys that sign `domain`'s mail (lowercase, as stored).
    pub fn dkim_keys(&self, domain: &str) -> &[DkimKey] {
        self.dkim_keys.get(domain).map_or(&[], Vec::as_slice)
    }

    /// The domains that have signing keys.
    pub fn signing_domains(&self) -> impl Iterator<Item = &str> {
        self.dkim_keys.keys().map(String::as_str)
    }

    /// Whether any domain has a signing key: without one, nothing is parsed to look for one.
    pub fn signs_anything(&self) -> bool {
        !self.dkim_keys.is_empty()
    }

    pub fn domains(&self) -> impl Iterator<Item = &Domain> {
        self.domains.values()
    }

    pub fn domain(&self, name: &str) -> Option<&Domain> {
        self.domains.get(name)
    }

    pub fn trusted_networks(&self) -> &[IpNet] {
        &self.networks
    }

    pub fn certificates(&self) -> &[Certificate] {
        &self.certificates
    }

    /// How many blocklist entries there are, for the pod's log line on a swap.
    pub fn blocklist_len(&self) -> usize {
        self.exact.len() + self.cidrs.len()
    }

    /// The entry for a connecting client: its address, else the narrowest network holding it.
    pub fn check_client(&self, ip: IpAddr, now: OffsetDateTime) -> Option<Blocked> {
        let ip = canonical(ip);
        self.lookup(BlockKind::Ip, &ip.to_string(), now)
            .or_else(|| {
                self.cidrs
                    .iter()
                    .find(|(net, entry)| net.contains(&ip) && live(entry, now))
                    .map(|(_, entry)| blocked(entry))
            })
    }

    pub fn check_helo(&self, helo: &str, now: OffsetDateTime) -> Option<Blocked> {
        self.lookup(BlockKind::Helo, &helo.to_ascii_lowercase(), now)
    }

    /// The entry for an envelope sender: the address, else its domain. `None` for `<>`.
    pub fn check_sender(&self, address: &str, now: OffsetDateTime) -> Option<Blocked> {
        self.check_address(address, BlockKind::Sender, BlockKind::SenderDomain, now)
    }

    pub fn check_recipient(&self, address: &str, now: OffsetDateTime) -> Option<Blocked> {
        self.check_address(
            address,
            BlockKind::Recipient,
            BlockKind::RecipientDomain,
            now,
        )
    }

    /// The suspension holding delivery to `domain` now, if any.
    pub fn suspension(&self, domain: &str, now: OffsetDateTime) -> Option<&Suspension> {
        self.suspensions
            .get(domain)
            .filter(|suspension| suspension.until > now)
    }

    fn check_address(
        &self,
        address: &str,
        exact: BlockKind,
        domain: BlockKind,
        now: OffsetDateTime,
    ) -> Option<Blocked> {
        let (local, host) = address.rsplit_once('@')?;
        let host = host.trim_end_matches('.').to_ascii_lowercase();
        let address = format!("{}@{host}", local.to_lowercase());
        self.lookup(exact, &address, now)
            .or_else(|| self.lookup(domain, &host, now))
    }

    fn lookup(&self, kind: BlockKind, value: &str, now: OffsetDateTime) -> Option<Blocked> {
        self.exact
            .get(&(kind, value.to_owned()))
            .filter(|entry| live(entry, now))
            .map(blocked)
    }
}

fn live(entry: &BlockEntry, now: OffsetDateTime) -> bool {
    entry.expires_at.is_none_or(|at| at > now)
}

fn blocked(entry: &BlockEntry) -> Blocked {
    Blocked {
        kind: entry.kind,
        action: entry.action,
        reason: entry.reason.clone(),
    }
}

#[cfg(test)]
mod tests {
    use time::Duration;

    use super::*;
    use crate::control::model::Owner;

    fn entry(kind: BlockKind, value: &str, action: BlockAction) -> BlockEntry {
        BlockEntry {
            id: 0,
            kind,
            value: value.to_owned(),
            action,
            reason: format!("{value} listed"),
            expires_at: None,
            owner: Owner::Api,
        }
    }

    #[test]
    fn clients_match_by_address_then_the_narrowest_network() {
        let now = OffsetDateTime::now_utc();
        let plane = ControlPlane::new(
            3,
            ControlRows {
                blocklist: vec![
                    entry(BlockKind::Cidr, "192.0.2.0/24", BlockAction::Reject),
                    entry(BlockKind::Cidr, "192.0.2.128/25", BlockAction::Allow),
                    entry(BlockKind::Ip, "192.0.2.200", BlockAction::Tempfail),
                ],
                ..ControlRows::default()
            },
        );
        let action = |ip: &str| {
            plane
                .check_client(ip.parse().expect("ip"), now)
                .map(|b| b.action)
        };
        assert_eq!(action("192.0.2.1"), Some(BlockAction::Reject));
        assert_eq!(action("::ffff:192.0.2.1"), Some(BlockAction::Reject));
        assert_eq!(action("192.0.2.129"), Some(BlockAction::Allow));
        assert_eq!(action("192.0.2.200"), Some(BlockAction::Tempfail));
        assert_eq!(action("198.51.100.1"), None);
    }

    #[test]
    fn addresses_match_exactly_then_by_domain_and_expired_entries_do_not_apply() {
        let now = OffsetDateTime::now_utc();
        let mut expired = entry(
            BlockKind::Recipient,
            "old@dest.example",
            BlockAction::Reject,
        );
        expired.expires_at = Some(now - Duration::seconds(1));
        let mut later = entry(
            BlockKind::RecipientDomain,
            "soon.example",
            BlockAction::Reject,
        );
        later.expires_at = Some(now + Duration::hours(1));
        let plane = ControlPlane::new(
            1,
            ControlRows {
                blocklist: vec![
                    entry(BlockKind::Sender, "friend@spam.example", BlockAction::Allow),
                    entry(BlockKind::SenderDomain, "spam.example", BlockAction::Reject),
                    entry(BlockKind::Helo, "evil", BlockAction::Reject),
                    expired,
                    later,
                ],
                ..ControlRows::default()
            },
        );
        let sender = |a: &str| plane.check_sender(a, now).map(|b| b.action);
        assert_eq!(sender("Friend@SPAM.example"), Some(BlockAction::Allow));
        assert_eq!(sender("anyone@spam.example."), Some(BlockAction::Reject));
        assert_eq!(sender("anyone@ham.example"), None);
        assert_eq!(sender(""), None);
        assert_eq!(
            plane.check_helo("EVIL", now).map(|b| b.kind),
            Some(BlockKind::Helo)
        );
        assert_eq!(plane.check_recipient("old@dest.example", now), None);
        assert!(plane.check_recipient("x@soon.example", now).is_some());
        assert_eq!(
            plane.check_recipient("x@soon.example", now + Duration::hours(2)),
            None
        );
        assert_eq!(plane.blocklist_len(), 5);
    }
}
