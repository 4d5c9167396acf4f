//! Version 2: a binary header, a 16-byte fixed part then addresses and TLVs.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use super::{
    Addresses, Header, Parse, ProxyError, V2_MAX_PAYLOAD, V2_SIGNATURE, Version, starts_with,
};

const FIXED_LEN: usize = 16;
const COMMAND_LOCAL: u8 = 0x0;
const COMMAND_PROXY: u8 = 0x1;
const INET_LEN: usize = 12;
const INET6_LEN: usize = 36;
const UNIX_LEN: usize = 216;

pub(super) fn parse(input: &[u8]) -> Parse {
    if starts_with(input, &V2_SIGNATURE).is_none() {
        return Parse::Invalid(ProxyError::NoHeader);
    }
    // Refuse a bad version or command as soon as its byte arrives.
    if let Some(&version_command) = input.get(12) {
        if version_command >> 4 != 2 {
            return Parse::Invalid(ProxyError::Version);
        }
        if !matches!(version_command & 0x0f, COMMAND_LOCAL | COMMAND_PROXY) {
            return Parse::Invalid(ProxyError::Command);
        }
    }
    if input.len() < FIXED_LEN {
        return Parse::NeedMore(FIXED_LEN - input.len());
    }
    let payload_len = usize::from(u16::from_be_bytes([input[14], input[15]]));
    if payload_len > V2_MAX_PAYLOAD {
        return Parse::Invalid(ProxyError::TooLong);
    }
    let total = FIXED_LEN + payload_len;
    if input.len() < total {
        return Parse::NeedMore(total - input.len());
    }
    let payload = &input[FIXED_LEN..total];
    let addresses = if input[12] & 0x0f == COMMAND_LOCAL {
        // The balancer talking for itself: whatever follows is skipped unread.
        None
    } else {
        match proxied(input[13], payload) {
            Ok(addresses) => addresses,
            Err(error) => return Parse::Invalid(error),
        }
    };
    Parse::Header(Header {
        consumed: total,
        version: Version::V2,
        addresses,
    })
}

/// The PROXY command's address block, then its TLVs (checked, not kept).
fn proxied(family_transport: u8, payload: &[u8]) -> Result<Option<Addresses>, ProxyError> {
    const UNSPEC: u8 = 0x0;
    const STREAM: u8 = 0x1;
    const DGRAM: u8 = 0x2;
    let (family, transport) = (family_transport >> 4, family_transport & 0x0f);
    let block_len = match (family, transport) {
        // UNSPEC: the receiver must ignore what follows, addresses and TLVs alike.
        (0x0, UNSPEC) => return Ok(None),
        (0x1, STREAM) => INET_LEN,
        (0x2, STREAM) => INET6_LEN,
        (0x3, STREAM | DGRAM) => UNIX_LEN,
        _ => return Err(ProxyError::Family),
    };
    let Some((block, tlvs)) = payload.split_at_checked(block_len) else {
        return Err(ProxyError::ShortAddresses);
    };
    check_tlvs(tlvs)?;
    let addresses = match family {
        0x1 => {
            let ip = |at: usize| IpAddr::V4(Ipv4Addr::from(be_array::<4>(block, at)));
            let (source_port, destination_port) = ports(block, 8);
            Some(Addresses {
                source: SocketAddr::new(ip(0), source_port),
                destination: SocketAddr::new(ip(4), destination_port),
            })
        }
        0x2 => {
            let ip = |at: usize| IpAddr::V6(Ipv6Addr::from(be_array::<16>(block, at)));
            let (source_port, destination_port) = ports(block, 32);
            Some(Addresses {
                source: SocketAddr::new(ip(0), source_port),
                destination: SocketAddr::new(ip(16), destination_port),
            })
        }
        // UNIX sockets have no IP address to use.
        _ => None,
    };
    Ok(addresses)
}

/// Type (1 byte), length (2 bytes, big-endian), value; each must fit in what is left.
fn check_tlvs(mut rest: &[u8]) -> Result<(), ProxyError> {
    while !rest.is_empty() {
        let [_kind, high, low, value @ ..] = rest else {
            return Err(ProxyError::Tlv);
        };
        let len = usize::from(u16::from_be_bytes([*high, *low]));
        rest = value.get(len..).ok_or(ProxyError::Tlv)?;
    }
    Ok(())
}

/// The caller has checked that `block` is long enough for the family.
fn be_array<const N: usize>(block: &[u8], at: usize) -> [u8; N] {
    let mut out = [0u8; N];
    out.copy_from_slice(&block[at..at + N]);
    out
}

fn ports(block: &[u8], at: usize) -> (u16, u16) {
    (
        u16::from_be_bytes(be_array::<2>(block, at)),
        u16::from_be_bytes(be_array::<2>(block, at + 2)),
    )
}
