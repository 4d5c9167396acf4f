//! Version 1: one line of text, `PROXY TCP4|TCP6|UNKNOWN src dst sport dport\r\n`.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use super::{Addresses, Header, MIN_LEN, Parse, ProxyError, V1_MAX_LEN, Version, starts_with};

const PREFIX: &[u8] = b"PROXY ";

pub(super) fn parse(input: &[u8]) -> Parse {
    match starts_with(input, PREFIX) {
        None => return Parse::Invalid(ProxyError::NoHeader),
        Some(false) => return Parse::NeedMore(MIN_LEN - input.len()),
        Some(true) => {}
    }
    let window = &input[..input.len().min(V1_MAX_LEN)];
    let Some(lf) = window.iter().position(|&b| b == b'\n') else {
        // A CR already seen needs only its LF; otherwise CR LF are both still to come.
        let need = if window.ends_with(b"\r") { 1 } else { 2 };
        if input.len() + need > V1_MAX_LEN {
            return Parse::Invalid(ProxyError::TooLong);
        }
        return Parse::NeedMore(need.max(MIN_LEN.saturating_sub(input.len())));
    };
    let Some(line) = window[..lf].strip_suffix(b"\r") else {
        return Parse::Invalid(ProxyError::MalformedV1);
    };
    match fields(&line[PREFIX.len()..]) {
        Some(addresses) => Parse::Header(Header {
            consumed: lf + 1,
            version: Version::V1,
            addresses,
        }),
        None => Parse::Invalid(ProxyError::MalformedV1),
    }
}

/// The part after `PROXY `; `Some(None)` for UNKNOWN, whose remaining fields are ignored.
fn fields(rest: &[u8]) -> Option<Option<Addresses>> {
    if !rest.iter().all(|b| (0x20..0x7f).contains(b)) {
        return None;
    }
    let text = std::str::from_utf8(rest).ok()?;
    if text == "UNKNOWN" || text.starts_with("UNKNOWN ") {
        return Some(None);
    }
    let parts: Vec<&str> = text.split(' ').collect();
    let [family, source, destination, source_port, destination_port] = parts[..] else {
        return None;
    };
    let ip = |text: &str| -> Option<IpAddr> {
        match family {
            "TCP4" => text.parse::<Ipv4Addr>().ok().map(IpAddr::V4),
            "TCP6" => text.parse::<Ipv6Addr>().ok().map(IpAddr::V6),
            _ => None,
        }
    };
    Some(Some(Addresses {
        source: SocketAddr::new(ip(source)?, port(source_port)?),
        destination: SocketAddr::new(ip(destination)?, port(destination_port)?),
    }))
}

/// Decimal 0–65535 without a sign or leading zeros.
fn port(text: &str) -> Option<u16> {
    let digits = !text.is_empty() && text.len() <= 5 && text.bytes().all(|b| b.is_ascii_digit());
    if !digits || (text.len() > 1 && text.starts_with('0')) {
        return None;
    }
    text.parse().ok()
}
