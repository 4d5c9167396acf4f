//! DNS blocklists and allowlists (RFC 5782), weighed and summed in the manner of Postfix's
//! postscreen: each site is `zone[=filter][*weight]`, a client's score is the sum of the weights
//! of the sites that list it, and a score at or above the threshold refuses the client. A DNSWL
//! is a site with a negative weight, so a listing there offsets a listing elsewhere.
//!
//! The evaluation here is pure ([`Site::judge`], [`Report`]); [`Dnsbl`] asks the sites in
//! parallel under one deadline and caches the reports.
//!
//! An answer outside `127.0.0.0/8`, or in `127.255.255.0/24` (Spamhaus's "query refused",
//! "typing error" and "open resolver" codes), is the list saying it did not answer: an error,
//! never a listing. So are timeouts and server failures. An error adds nothing to the score.

mod lookup;
#[cfg(test)]
mod tests;

use std::fmt;
use std::net::{IpAddr, Ipv4Addr};
use std::ops::RangeInclusive;

pub use lookup::Dnsbl;

/// One list: where to ask, which answers count, and how much a listing weighs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Site {
    pub zone: String,
    /// Which answers count as a listing; `None`: any valid answer does.
    filter: Option<Filter>,
    pub weight: i32,
}

/// Four octet patterns, each a list of values and ranges (`127.0.0.[2;4..11]`).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Filter([Vec<RangeInclusive<u8>>; 4]);

/// What one site said about a client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SiteResult {
    /// Listed, with the answers that matched.
    Listed(Vec<Ipv4Addr>),
    NotListed,
    /// No usable answer: a timeout, a server failure, or the list's own error codes.
    Error(String),
}

impl SiteResult {
    /// The metric label.
    pub fn label(&self) -> &'static str {
        match self {
            SiteResult::Listed(_) => "listed",
            SiteResult::NotListed => "not_listed",
            SiteResult::Error(_) => "error",
        }
    }
}

/// Every site's result for one client, and their sum.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    pub results: Vec<(Site, SiteResult)>,
}

impl Report {
    /// The sum of the weights of the sites that list the client.
    pub fn score(&self) -> i32 {
        self.results
            .iter()
            .filter(|(_, result)| matches!(result, SiteResult::Listed(_)))
            .map(|(site, _)| site.weight)
            .sum()
    }

    /// The zones that list the client with a positive weight, heaviest first (for the reply).
    pub fn listed_by(&self) -> Vec<&str> {
        let mut listed: Vec<&Site> = self
            .results
            .iter()
            .filter(|(site, result)| matches!(result, SiteResult::Listed(_)) && site.weight > 0)
            .map(|(site, _)| site)
            .collect();
        listed.sort_by_key(|site| std::cmp::Reverse(site.weight));
        listed.into_iter().map(|site| site.zone.as_str()).collect()
    }

    /// Whether any site could not answer (such a report is not cached).
    pub fn has_errors(&self) -> bool {
        self.results
            .iter()
            .any(|(_, result)| matches!(result, SiteResult::Error(_)))
    }
}

impl Site {
    /// Parses postscreen's form: `zone`, `zone*weight`, `zone=127.0.0.[2..11]*2`.
    pub fn parse(text: &str) -> Result<Self, String> {
        let (rest, weight) = match text.rsplit_once('*') {
            Some((rest, weight)) => {
                let weight = weight
                    .parse::<i32>()
                    .map_err(|_| format!("'{text}': the weight '{weight}' is not an integer"))?;
                (rest, weight)
            }
            None => (text, 1),
        };
        if weight == 0 {
            return Err(format!("'{text}': a weight of 0 counts nothing"));
        }
        let (zone, filter) = match rest.split_once('=') {
            Some((zone, filter)) => (
                zone,
                Some(Filter::parse(filter).map_err(|e| format!("'{text}': {e}"))?),
            ),
            None => (rest, None),
        };
        let zone = zone.trim_end_matches('.').to_ascii_lowercase();
        let valid = !zone.is_empty()
            && zone.split('.').all(|label| {
                !label.is_empty()
                    && label.len() <= 63
                    && label
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            });
        if !valid {
            return Err(format!("'{text}': '{zone}' is not a DNS zone"));
        }
        Ok(Self {
            zone,
            filter,
            weight,
        })
    }

    /// The name to ask for `client` (RFC 5782 2.1 and 2.4): the address's octets, or nibbles
    /// for IPv6, reversed, under the zone.
    pub fn query_name(&self, client: IpAddr) -> String {
        let reversed = match crate::policy::canonical(client) {
            IpAddr::V4(v4) => {
                let [a, b, c, d] = v4.octets();
                format!("{d}.{c}.{b}.{a}")
            }
            IpAddr::V6(v6) => v6
                .octets()
                .iter()
                .rev()
                .flat_map(|byte| [byte & 0x0f, byte >> 4])
                .map(|nibble| format!("{nibble:x}"))
                .collect::<Vec<_>>()
                .join("."),
        };
        format!("{reversed}.{}", self.zone)
    }

    /// What the A records found for the client's name mean.
    pub fn judge(&self, answers: &[Ipv4Addr]) -> SiteResult {
        let (valid, errors): (Vec<Ipv4Addr>, Vec<Ipv4Addr>) =
            answers.iter().partition(|answer| is_listing_code(**answer));
        if valid.is_empty() {
            return match errors.first() {
                Some(code) => SiteResult::Error(format!("the list answered {code}, an error code")),
                None => SiteResult::NotListed,
            };
        }
        let matched: Vec<Ipv4Addr> = valid
            .into_iter()
            .filter(|answer| self.filter.as_ref().is_none_or(|f| f.matches(*answer)))
            .collect();
        match matched.is_empty() {
            true => SiteResult::NotListed,
            false => SiteResult::Listed(matched),
        }
    }
}

/// RFC 5782 2.1: listings are in `127.0.0.0/8`; `127.255.255.0/24` holds the lists' error codes.
fn is_listing_code(answer: Ipv4Addr) -> bool {
    let [a, b, c, _] = answer.octets();
    a == 127 && !(b == 255 && c == 255)
}

impl Filter {
    fn parse(text: &str) -> Result<Self, String> {
        let octets = split_octets(text);
        let [a, b, c, d] = octets.as_slice() else {
            return Err(format!("the filter '{text}' does not have four octets"));
        };
        Ok(Self([
            octet(a, text)?,
            octet(b, text)?,
            octet(c, text)?,
            octet(d, text)?,
        ]))
    }

    fn matches(&self, answer: Ipv4Addr) -> bool {
        answer
            .octets()
            .iter()
            .zip(&self.0)
            .all(|(byte, ranges)| ranges.iter().any(|range| range.contains(byte)))
    }
}

/// Splits at the dots outside brackets (`127.0.[0..255].1` has four octets).
fn split_octets(text: &str) -> Vec<&str> {
    let mut octets = Vec::new();
    let (mut start, mut depth) = (0, 0u32);
    for (i, c) in text.char_indices() {
        match c {
            '[' => depth += 1,
            ']' => depth = depth.saturating_sub(1),
            '.' if depth == 0 => {
                octets.push(&text[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    octets.push(&text[start..]);
    octets
}

/// `5`, or `[2;4..11]`.
fn octet(text: &str, filter: &str) -> Result<Vec<RangeInclusive<u8>>, String> {
    let bad = || format!("the filter '{filter}' has a bad octet '{text}'");
    let list = match text.strip_prefix('[').and_then(|t| t.strip_suffix(']')) {
        Some(list) => list,
        None => return text.parse::<u8>().map(|v| vec![v..=v]).map_err(|_| bad()),
    };
    list.split(';')
        .map(|item| match item.split_once("..") {
            Some((low, high)) => match (low.parse::<u8>(), high.parse::<u8>()) {
                (Ok(low), Ok(high)) if low <= high => Ok(low..=high),
                _ => Err(bad()),
            },
            None => item.parse::<u8>().map(|v| v..=v).map_err(|_| bad()),
        })
        .collect()
}

/// Parses a list of sites, comma or space separated.
pub fn parse_sites(text: &str) -> Result<Vec<Site>, String> {
    crate::config::split_list(text).map(Site::parse).collect()
}

impl fmt::Display for Site {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}*{}", self.zone, self.weight)
    }
}
