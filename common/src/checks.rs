//! Which reputation checks run on which listener. Postfix says it per service in `master.cf`
//! (`-o smtpd_client_restrictions=…`), Stalwart with expressions over the listener; here each
//! listener role has a set of [`Check`]s, from the environment and, over it, the control plane's
//! policy document. The set only chooses: a check must also be turned on (a DNSBL site listed,
//! SPF not `off`, …) to run, and only strangers — not trusted, not authenticated, not
//! allowlisted — are checked at all.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Which role a listener plays.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ListenerKind {
    /// Port 25: MX and relay, STARTTLS offered.
    #[default]
    Smtp,
    /// Port 587: STARTTLS offered.
    Submission,
    /// Port 465: TLS from the first byte.
    Submissions,
}

impl ListenerKind {
    pub const ALL: [ListenerKind; 3] = [
        ListenerKind::Smtp,
        ListenerKind::Submission,
        ListenerKind::Submissions,
    ];

    pub fn label(self) -> &'static str {
        match self {
            ListenerKind::Smtp => "smtp",
            ListenerKind::Submission => "submission",
            ListenerKind::Submissions => "submissions",
        }
    }
}

/// One reputation check a listener may run on strangers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Check {
    /// DNS blocklists and allowlists, at connect.
    Dnsbl,
    /// The silence before the greeting that catches early talkers.
    GreetDelay,
    /// New connections per client network.
    ConnectionRate,
    /// SPF at MAIL.
    Spf,
    /// Greylisting at RCPT.
    Greylist,
    /// Recipients per client network.
    ClientRate,
    /// Recipients per recipient domain.
    RecipientDomainRate,
    /// DKIM and ARC verification at the end of data.
    Dkim,
    /// DMARC at the end of data (with DKIM's results and, when SPF ran, SPF's).
    Dmarc,
}

impl Check {
    pub const ALL: [Check; 9] = [
        Check::Dnsbl,
        Check::GreetDelay,
        Check::ConnectionRate,
        Check::Spf,
        Check::Greylist,
        Check::ClientRate,
        Check::RecipientDomainRate,
        Check::Dkim,
        Check::Dmarc,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Check::Dnsbl => "dnsbl",
            Check::GreetDelay => "greet_delay",
            Check::ConnectionRate => "connection_rate",
            Check::Spf => "spf",
            Check::Greylist => "greylist",
            Check::ClientRate => "client_rate",
            Check::RecipientDomainRate => "recipient_domain_rate",
            Check::Dkim => "dkim",
            Check::Dmarc => "dmarc",
        }
    }

    fn bit(self) -> u16 {
        1 << self as u16
    }
}

/// A set of checks, written as their names, comma separated, or `all`, or `none` (or nothing).
#[derive(Clone, Copy, Default, PartialEq, Eq)]
pub struct Checks(u16);

impl Checks {
    pub const NONE: Checks = Checks(0);

    pub fn all() -> Checks {
        Check::ALL.into_iter().collect()
    }

    pub fn contains(self, check: Check) -> bool {
        self.0 & check.bit() != 0
    }

    pub fn iter(self) -> impl Iterator<Item = Check> {
        Check::ALL
            .into_iter()
            .filter(move |check| self.contains(*check))
    }
}

impl FromIterator<Check> for Checks {
    fn from_iter<I: IntoIterator<Item = Check>>(checks: I) -> Self {
        Checks(checks.into_iter().fold(0, |bits, check| bits | check.bit()))
    }
}

impl FromStr for Checks {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let mut checks = Checks::NONE;
        for word in text
            .split(',')
            .map(str::trim)
            .filter(|word| !word.is_empty())
        {
            match word.to_ascii_lowercase().as_str() {
                "all" => checks = Checks::all(),
                "none" => {}
                word => {
                    let check = Check::ALL
                        .into_iter()
                        .find(|check| check.as_str() == word)
                        .ok_or_else(|| {
                            let known: Vec<&str> = Check::ALL.iter().map(|c| c.as_str()).collect();
                            format!(
                                "'{word}' is not a check: one of all, none, {}",
                                known.join(", ")
                            )
                        })?;
                    checks.0 |= check.bit();
                }
            }
        }
        Ok(checks)
    }
}

impl fmt::Display for Checks {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0 == 0 {
            return f.write_str("none");
        }
        let words: Vec<&str> = self.iter().map(Check::as_str).collect();
        f.write_str(&words.join(","))
    }
}

impl fmt::Debug for Checks {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Checks({self})")
    }
}

/// In JSON a list of names: `["dnsbl", "spf"]`.
impl Serialize for Checks {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(self.iter().map(Check::as_str))
    }
}

impl<'de> Deserialize<'de> for Checks {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let words = Vec::<String>::deserialize(deserializer)?;
        words.join(",").parse().map_err(serde::de::Error::custom)
    }
}

/// The checks each listener role runs on strangers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ListenerChecks {
    pub smtp: Checks,
    pub submission: Checks,
    pub submissions: Checks,
}

impl ListenerChecks {
    pub fn of(&self, listener: ListenerKind) -> Checks {
        match listener {
            ListenerKind::Smtp => self.smtp,
            ListenerKind::Submission => self.submission,
            ListenerKind::Submissions => self.submissions,
        }
    }
}

impl Default for ListenerChecks {
    /// Every check on port 25; none on the submission ports, where only authenticated clients
    /// may send and the address pools users send from are the ones blocklists name.
    fn default() -> Self {
        Self {
            smtp: Checks::all(),
            submission: Checks::NONE,
            submissions: Checks::NONE,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sets_are_written_as_names() {
        let checks: Checks = "spf, DNSBL,greylist".parse().expect("parsed");
        assert!(checks.contains(Check::Spf) && checks.contains(Check::Dnsbl));
        assert!(!checks.contains(Check::Dkim));
        // Written back in the checks' own order.
        assert_eq!(checks.to_string(), "dnsbl,spf,greylist");
        assert_eq!("all".parse::<Checks>(), Ok(Checks::all()));
        assert_eq!("none".parse::<Checks>(), Ok(Checks::NONE));
        assert_eq!("".parse::<Checks>(), Ok(Checks::NONE));
        let error = "spf,rbl".parse::<Checks>().expect_err("unknown");
        assert!(
            error.contains("'rbl'") && error.contains("greet_delay"),
            "{error}"
        );
    }

    #[test]
    fn in_json_a_set_is_a_list() {
        let checks: Checks = serde_json::from_str(r#"["dkim", "dmarc"]"#).expect("json");
        assert_eq!(checks.to_string(), "dkim,dmarc");
        assert_eq!(
            serde_json::to_string(&checks).expect("json"),
            r#"["dkim","dmarc"]"#
        );
        assert!(serde_json::from_str::<Checks>(r#"["dkim", "nope"]"#).is_err());
        assert!(serde_json::from_str::<Checks>(r#""dkim""#).is_err());
    }

    #[test]
    fn by_default_only_port_25_checks() {
        let checks = ListenerChecks::default();
        assert_eq!(checks.of(ListenerKind::Smtp), Checks::all());
        assert_eq!(checks.of(ListenerKind::Submission), Checks::NONE);
        assert_eq!(checks.of(ListenerKind::Submissions), Checks::NONE);
    }
}
