//! Which destinations must get verified TLS (Postfix `smtp_tls_policy_maps` with `verify`):
//! everything else gets opportunistic TLS.

use super::client::TlsMode;

/// Domains (exact, or `.example.com` for every subdomain) whose mail may only leave over TLS
/// with a certificate that chains to a trusted root and names the host.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TlsPolicy {
    exact: Vec<String>,
    subdomains: Vec<String>,
}

impl TlsPolicy {
    /// Parses a comma- or whitespace-separated list of domains.
    pub fn parse(list: &str) -> Result<Self, String> {
        let mut policy = TlsPolicy::default();
        for item in list
            .split(|c: char| c == ',' || c.is_whitespace())
            .filter(|i| !i.is_empty())
        {
            let item = item.trim_end_matches('.').to_ascii_lowercase();
            let (name, subdomains) = match item.strip_prefix('.') {
                Some(name) => (name.to_owned(), true),
                None => (item.clone(), false),
            };
            let valid = !name.is_empty()
                && name.split('.').all(|label| {
                    !label.is_empty()
                        && label
                            .bytes()
                            .all(|b| b.is_ascii_alphanumeric() || b == b'-')
                });
            if !valid {
                return Err(format!("'{item}' is not a domain"));
            }
            if subdomains {
                policy.subdomains.push(name);
            } else {
                policy.exact.push(name);
            }
        }
        Ok(policy)
    }

    /// The TLS mode for mail to `domain`.
    pub fn mode(&self, domain: &str) -> TlsMode {
        let domain = domain.trim_end_matches('.').to_ascii_lowercase();
        let under = |parent: &String| {
            domain.len() > parent.len()
                && domain.ends_with(parent.as_str())
                && domain.as_bytes()[domain.len() - parent.len() - 1] == b'.'
        };
        if self.exact.contains(&domain) || self.subdomains.iter().any(under) {
            TlsMode::Verified
        } else {
            TlsMode::Opportunistic
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listed_domains_and_subdomains_need_verified_tls_and_others_are_opportunistic() {
        let policy = TlsPolicy::parse("bank.test, .corp.test").expect("policy");
        let cases = [
            ("bank.test", TlsMode::Verified),
            ("BANK.test.", TlsMode::Verified),
            ("mail.bank.test", TlsMode::Opportunistic),
            ("a.corp.test", TlsMode::Verified),
            ("x.y.corp.test", TlsMode::Verified),
            ("corp.test", TlsMode::Opportunistic),
            ("notcorp.test", TlsMode::Opportunistic),
            ("other.test", TlsMode::Opportunistic),
        ];
        for (domain, mode) in cases {
            assert_eq!(policy.mode(domain), mode, "{domain}");
        }
        assert_eq!(
            TlsPolicy::parse("").expect("empty").mode("bank.test"),
            TlsMode::Opportunistic
        );
    }

    #[test]
    fn entries_that_are_not_domains_are_refused() {
        for bad in ["bank..test", "ba_nk.test", ".", "[192.0.2.1]"] {
            assert!(TlsPolicy::parse(bad).is_err(), "{bad}");
        }
    }
}
