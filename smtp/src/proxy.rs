//! The HAProxy PROXY protocol header (versions 1 and 2), parsed without IO.
//!
//! A load balancer that terminates the client's TCP connection opens its own to Tern and starts it
//! with this header, naming the client's address. [`parse`] reads a prefix of what arrived and
//! answers [`Parse::NeedMore`] (with how many more bytes are certainly part of the header),
//! [`Parse::Header`] (with exactly how many bytes the header took) or [`Parse::Invalid`].
//!
//! Tern has its own parser rather than the `proxy-header` crate because the ingress must read
//! the header from the socket without reading one byte of the SMTP session behind it, so the parser
//! has to work incrementally over the caller's buffer, say how much more it needs and how much it
//! consumed, stay bounded (107 bytes for v1, [`V2_MAX_PAYLOAD`] for v2) and be table-tested and
//! fuzzed without a socket.
//!
//! Where the specification leaves room, this parser is strict: v1 fields are separated by single
//! spaces, ports have no leading zeros, the address family must match the keyword. In v2 the
//! LOCAL command (a load balancer's own health check) and the UNSPEC and UNIX families carry no
//! client address, so [`Header::addresses`] is `None` and the caller uses the TCP peer. TLVs are
//! walked and bounds-checked, then ignored; a TLV list that overruns the header is invalid.

mod v1;
mod v2;

use std::net::SocketAddr;

/// The longest v1 header, CRLF included, per the specification.
pub const V1_MAX_LEN: usize = 107;

/// The largest v2 payload (addresses and TLVs) accepted. The specification allows 65535; real
/// load balancers send a few hundred bytes at most, and the bound caps what one connection can
/// make the ingress hold before it has said anything.
pub const V2_MAX_PAYLOAD: usize = 1024;

/// The 12 bytes every v2 header starts with.
pub const V2_SIGNATURE: [u8; 12] = *b"\r\n\r\n\0\r\nQUIT\n";

/// What the bytes seen so far amount to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Parse {
    /// The header is not complete; at least this many more bytes (always ≥ 1) belong to it, so
    /// reading exactly that many never reads past the header.
    NeedMore(usize),
    Header(Header),
    Invalid(ProxyError),
}

/// A complete, valid header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    /// How many input bytes the header took; what follows belongs to the proxied connection.
    pub consumed: usize,
    pub version: Version,
    /// The client and the address it connected to; `None` when the header carries no address
    /// (v1 `UNKNOWN`, v2 `LOCAL`, UNSPEC or UNIX): then the TCP peer is the client.
    pub addresses: Option<Addresses>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Version {
    V1,
    V2,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Addresses {
    pub source: SocketAddr,
    pub destination: SocketAddr,
}

/// Why a header was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ProxyError {
    #[error("the connection does not start with a PROXY protocol header")]
    NoHeader,
    #[error("the PROXY header is longer than allowed")]
    TooLong,
    #[error("malformed PROXY v1 line")]
    MalformedV1,
    #[error("unsupported PROXY v2 version")]
    Version,
    #[error("unsupported PROXY v2 command")]
    Command,
    #[error("unsupported PROXY v2 address family or transport")]
    Family,
    #[error("PROXY v2 addresses longer than the header")]
    ShortAddresses,
    #[error("malformed PROXY v2 TLV list")]
    Tlv,
}

impl ProxyError {
    /// A bounded label for metrics.
    pub fn metric_label(self) -> &'static str {
        match self {
            ProxyError::NoHeader => "no_header",
            ProxyError::TooLong => "too_long",
            ProxyError::MalformedV1 => "malformed_v1",
            ProxyError::Version => "version",
            ProxyError::Command => "command",
            ProxyError::Family => "family",
            ProxyError::ShortAddresses => "short_addresses",
            ProxyError::Tlv => "tlv",
        }
    }
}

/// The shortest possible header, `PROXY UNKNOWN\r\n`; v2 needs at least 16.
const MIN_LEN: usize = 15;

/// Parses the start of a connection. `input` may be any prefix of what the peer sent.
pub fn parse(input: &[u8]) -> Parse {
    match input.first() {
        None => Parse::NeedMore(MIN_LEN),
        Some(b'P') => v1::parse(input),
        Some(b'\r') => v2::parse(input),
        Some(_) => Parse::Invalid(ProxyError::NoHeader),
    }
}

/// `Some(true)` when `input` starts with all of `expected`, `Some(false)` when it is a proper
/// prefix of it so far, `None` when it diverges.
fn starts_with(input: &[u8], expected: &[u8]) -> Option<bool> {
    let n = input.len().min(expected.len());
    (input[..n] == expected[..n]).then_some(n == expected.len())
}

#[cfg(test)]
mod tests;
