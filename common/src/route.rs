//! Static routing: where a recipient domain's mail goes before any DNS is asked.
//!
//! Routes use Postfix's transport(5) syntax so operators can carry their maps over:
//!
//! | spec                    | meaning                                                       |
//! |-------------------------|---------------------------------------------------------------|
//! | `smtp:[mx.example.net]` | SMTP to that host's addresses, port 25, no MX lookup          |
//! | `smtp:[10.0.0.5]:2525`  | SMTP to an IP literal; IPv6 as `[2001:db8::1]` or `[ipv6:…]`  |
//! | `smtp:example.net:587`  | SMTP to the mail exchangers of `example.net` (MX lookup)      |
//! | `smtp:`                 | SMTP by MX of the recipient domain (overrides a smarthost)    |
//! | `lmtp:[10.0.0.5]:24`    | LMTP, port 24 by default; `lmtp:inet:host:port` also accepted |
//!
//! LMTP never looks up MX records: an LMTP server is a final delivery agent named by its host,
//! so `lmtp:host` and `lmtp:[host]` mean the same. A domain key `example.com` matches that domain
//! only; `.example.com` matches its subdomains, the most specific key winning. The smarthost may
//! omit the transport, like Postfix's `relayhost`: `[relay.example.net]:587`.

use std::collections::HashMap;
use std::fmt;
use std::net::IpAddr;

/// How to speak to a next hop.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Protocol {
    Smtp,
    Lmtp,
}

impl Protocol {
    pub fn default_port(self) -> u16 {
        match self {
            Self::Smtp => 25,
            Self::Lmtp => 24,
        }
    }
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Smtp => "smtp",
            Self::Lmtp => "lmtp",
        })
    }
}

/// Where one domain's mail goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    /// SMTP to the domain's mail exchangers (RFC 5321 5.1), found by MX lookup.
    Mx { domain: String },
    /// A fixed next hop. `mx_lookup`: `host` names a domain whose MX records to follow, rather
    /// than a host whose addresses to connect to (or an IP address).
    Relay {
        protocol: Protocol,
        host: String,
        port: u16,
        mx_lookup: bool,
    },
}

impl Route {
    /// The route a control-plane domain row gives `domain` (`smtp:[host]:port`, `lmtp:…`, or a
    /// bare `smtp:` for its MX).
    pub fn for_domain(domain: &str, spec: &str) -> Result<Self, SpecError> {
        match parse_spec(spec.trim(), false)? {
            NextHop::RecipientMx => Ok(Route::Mx {
                domain: domain.to_owned(),
            }),
            NextHop::Fixed(route) => Ok(route),
        }
    }
}

impl fmt::Display for Route {
    /// The route in transport(5) syntax, as it would be configured.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Mx { domain } => write!(f, "smtp:{domain}"),
            Self::Relay {
                protocol,
                host,
                port,
                mx_lookup: true,
            } => {
                write!(f, "{protocol}:{host}:{port}")
            }
            Self::Relay {
                protocol,
                host,
                port,
                mx_lookup: false,
            } => {
                write!(f, "{protocol}:[{host}]:{port}")
            }
        }
    }
}

/// A route or smarthost setting that cannot be used; the message names the offending text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RouteError {
    #[error(
        "route {entry:?}: expected domain=transport:nexthop, e.g. example.com=smtp:[mx.example.net]:25"
    )]
    Entry { entry: String },
    #[error("route {entry:?}: {domain:?} is not a domain name")]
    Domain { entry: String, domain: String },
    #[error("route {entry:?}: a route for {domain:?} is already given")]
    Duplicate { entry: String, domain: String },
    #[error("route {entry:?}: {reason}")]
    Spec { entry: String, reason: SpecError },
    #[error("smarthost {spec:?}: {reason}")]
    Smarthost { spec: String, reason: SpecError },
}

/// What is wrong with one `transport:nexthop`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SpecError {
    #[error("unknown transport {0:?} (expected smtp or lmtp)")]
    Transport(String),
    #[error("unix sockets are not supported; use lmtp:[host]:port")]
    UnixSocket,
    #[error("no next hop given")]
    NoHost,
    #[error("{0:?} is not a host name or IP address")]
    Host(String),
    #[error("{0:?} is not a port number (1-65535)")]
    Port(String),
    #[error("'[' without ']'")]
    Bracket,
    #[error("an IPv6 address needs brackets: [2001:db8::1]:25")]
    BareIpv6,
}

/// Where a parsed spec sends mail.
#[derive(Debug, Clone, PartialEq, Eq)]
enum NextHop {
    /// `smtp:` with no next hop: by MX of the recipient domain.
    RecipientMx,
    /// Always a [`Route::Relay`].
    Fixed(Route),
}

/// Static routes and the smarthost, validated; see the module docs for the syntax.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RouteTable {
    exact: HashMap<String, NextHop>,
    /// Keyed by the parent domain, without its leading dot.
    subdomains: HashMap<String, NextHop>,
    smarthost: Option<NextHop>,
}

impl RouteTable {
    /// Parses `routes` (`domain=spec` entries separated by commas or whitespace) and
    /// `smarthost` (a spec, or empty for none).
    pub fn parse(routes: &str, smarthost: &str) -> Result<Self, RouteError> {
        let mut table = Self::default();
        for entry in entries(routes) {
            let (key, spec) = entry.split_once('=').ok_or_else(|| RouteError::Entry {
                entry: entry.clone(),
            })?;
            let (subdomains, domain) = match key.strip_prefix('.') {
                Some(parent) => (true, parent),
                None => (false, key),
            };
            let domain = domain.trim_end_matches('.').to_ascii_lowercase();
            if !is_host_name(&domain) {
                let domain = key.to_owned();
                return Err(RouteError::Domain { entry, domain });
            }
            let hop = parse_spec(spec, false).map_err(|reason| RouteError::Spec {
                entry: entry.clone(),
                reason,
            })?;
            let map = if subdomains {
                &mut table.subdomains
            } else {
                &mut table.exact
            };
            if map.insert(domain, hop).is_some() {
                let domain = key.to_owned();
                return Err(RouteError::Duplicate { entry, domain });
            }
        }
        let smarthost = smarthost.trim();
        if !smarthost.is_empty() {
            let hop = parse_spec(smarthost, true).map_err(|reason| RouteError::Smarthost {
                spec: smarthost.to_owned(),
                reason,
            })?;
            table.smarthost = Some(hop);
        }
        Ok(table)
    }

    /// The route for `domain`: its static route (exact, then the closest `.parent`), else the
    /// smarthost, else its MX.
    pub fn lookup(&self, domain: &str) -> Route {
        let domain = domain.trim_end_matches('.').to_ascii_lowercase();
        let closest_parent = || {
            domain
                .match_indices('.')
                .find_map(|(dot, _)| self.subdomains.get(&domain[dot + 1..]))
        };
        let hop = self
            .exact
            .get(&domain)
            .or_else(closest_parent)
            .or(self.smarthost.as_ref());
        match hop {
            None | Some(NextHop::RecipientMx) => Route::Mx { domain },
            Some(NextHop::Fixed(route)) => route.clone(),
        }
    }
}

/// Splits the routes setting into `domain=spec` entries. Whitespace around `=` is dropped first,
/// so a multi-line value may align its columns.
fn entries(routes: &str) -> Vec<String> {
    let mut joined = String::with_capacity(routes.len());
    let mut chars = routes.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '=' {
            joined.truncate(joined.trim_end().len());
            joined.push('=');
            while chars.next_if(|c| c.is_whitespace()).is_some() {}
        } else {
            joined.push(c);
        }
    }
    joined
        .split(|c: char| c == ',' || c.is_whitespace())
        .filter(|entry| !entry.is_empty())
        .map(str::to_owned)
        .collect()
}

/// Parses `transport:nexthop`. Only the smarthost may leave out the transport.
fn parse_spec(spec: &str, smarthost: bool) -> Result<NextHop, SpecError> {
    let is_transport = |t: &str| ["smtp", "lmtp"].iter().any(|k| k.eq_ignore_ascii_case(t));
    let (transport, nexthop) = match spec.split_once(':') {
        Some((transport, nexthop)) if !smarthost || is_transport(transport) => (transport, nexthop),
        None if !smarthost => (spec, ""),
        _ => ("smtp", spec),
    };
    let protocol = match transport.to_ascii_lowercase().as_str() {
        "smtp" | "" => Protocol::Smtp,
        "lmtp" => Protocol::Lmtp,
        other => return Err(SpecError::Transport(other.to_owned())),
    };
    let nexthop = strip_prefix_ignore_case(nexthop, "inet:");
    if nexthop
        .get(..5)
        .is_some_and(|p| p.eq_ignore_ascii_case("unix:"))
    {
        return Err(SpecError::UnixSocket);
    }
    if nexthop.is_empty() {
        return match protocol {
            Protocol::Smtp if !smarthost => Ok(NextHop::RecipientMx),
            _ => Err(SpecError::NoHost),
        };
    }
    let (host, port, bracketed) = split_host_port(nexthop)?;
    let host = host.trim_end_matches('.').to_ascii_lowercase();
    let ip = host.parse::<IpAddr>().is_ok();
    if !ip && !is_host_name(&host) {
        return Err(SpecError::Host(host));
    }
    let port = match port {
        None => protocol.default_port(),
        Some(text) => match text.parse::<u16>() {
            Ok(port) if port > 0 => port,
            _ => return Err(SpecError::Port(text.to_owned())),
        },
    };
    Ok(NextHop::Fixed(Route::Relay {
        protocol,
        host,
        port,
        mx_lookup: protocol == Protocol::Smtp && !bracketed && !ip,
    }))
}

/// `[host]:port`, `[host]`, `host:port` or `host`, with whether the host was bracketed.
fn split_host_port(nexthop: &str) -> Result<(&str, Option<&str>, bool), SpecError> {
    if let Some(rest) = nexthop.strip_prefix('[') {
        let (inside, after) = rest.split_once(']').ok_or(SpecError::Bracket)?;
        let port = match after {
            "" => None,
            _ => Some(
                after
                    .strip_prefix(':')
                    .ok_or_else(|| SpecError::Port(after.to_owned()))?,
            ),
        };
        return Ok((strip_prefix_ignore_case(inside, "ipv6:"), port, true));
    }
    match nexthop.split(':').collect::<Vec<_>>()[..] {
        [host] => Ok((host, None, false)),
        [host, port] => Ok((host, Some(port), false)),
        _ => Err(SpecError::BareIpv6),
    }
}

fn strip_prefix_ignore_case<'a>(text: &'a str, prefix: &str) -> &'a str {
    match text.get(..prefix.len()) {
        Some(head) if head.eq_ignore_ascii_case(prefix) => &text[prefix.len()..],
        _ => text,
    }
}

/// Dot-separated labels of letters, digits, `-` and `_` (DKIM and SRV names use `_`), each at
/// most 63 long and not starting or ending with `-`. Letters may be non-ASCII (U-labels).
fn is_host_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|label| {
            (1..=63).contains(&label.len())
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .chars()
                    .all(|c| c.is_alphanumeric() || c == '-' || c == '_')
        })
}

#[cfg(test)]
mod tests;
