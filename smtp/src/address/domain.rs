//! Domain names and address literals.

use std::net::{Ipv4Addr, Ipv6Addr};

use super::{AddressError, Domain, MAX_DOMAIN};

const MAX_LABEL: usize = 63;
const IPV6_TAG: &str = "IPv6:";

/// Parses the text after `@`: a dotted name or a bracketed address literal.
pub(crate) fn parse_domain(s: &str) -> Result<Domain, AddressError> {
    if s.len() > MAX_DOMAIN {
        return Err(AddressError::DomainTooLong);
    }
    match s.strip_prefix('[') {
        Some(literal) => {
            let inner = literal.strip_suffix(']').ok_or(AddressError::BadLiteral)?;
            parse_literal(inner).map(Domain::Literal)
        }
        None => parse_name(s).map(Domain::Name),
    }
}

/// A dotted name: LDH labels of 1 to 63 octets with no hyphen at either end;
/// U-labels may carry non-ASCII characters (RFC 6531). Returns it lowercased
/// so that comparisons downstream need not care about case.
pub(super) fn parse_name(s: &str) -> Result<String, AddressError> {
    if s.len() > MAX_DOMAIN {
        return Err(AddressError::DomainTooLong);
    }
    if s.split('.').all(is_label) {
        Ok(s.to_lowercase())
    } else {
        Err(AddressError::BadDomain)
    }
}

fn is_label(label: &str) -> bool {
    !label.is_empty()
        && label.len() <= MAX_LABEL
        && !label.starts_with('-')
        && !label.ends_with('-')
        && label
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || is_utf8_non_ascii(c))
}

/// `IPv4` or `IPv6:...`. General address literals (RFC 5321 4.1.3) have no
/// registered tags in use, so they are refused. The IPv6 tag is normalised.
fn parse_literal(inner: &str) -> Result<String, AddressError> {
    let tag = inner.get(..IPV6_TAG.len());
    if tag.is_some_and(|t| t.eq_ignore_ascii_case(IPV6_TAG)) {
        let addr = &inner[IPV6_TAG.len()..];
        addr.parse::<Ipv6Addr>()
            .map_err(|_| AddressError::BadLiteral)?;
        return Ok(format!("{IPV6_TAG}{addr}"));
    }
    inner
        .parse::<Ipv4Addr>()
        .map_err(|_| AddressError::BadLiteral)?;
    Ok(inner.to_string())
}

/// RFC 6531 lets any non-ASCII character into atoms and quoted strings;
/// controls and spaces outside ASCII are still refused as they only confuse.
pub(super) fn is_utf8_non_ascii(c: char) -> bool {
    !c.is_ascii() && !c.is_control() && !c.is_whitespace()
}
