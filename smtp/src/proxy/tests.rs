use std::net::SocketAddr;

use super::*;
use crate::testing::XorShift;

fn addresses(source: &str, destination: &str) -> Option<Addresses> {
    Some(Addresses {
        source: source.parse().expect("test address"),
        destination: destination.parse().expect("test address"),
    })
}

fn header(consumed: usize, version: Version, addresses: Option<Addresses>) -> Parse {
    Parse::Header(Header {
        consumed,
        version,
        addresses,
    })
}

/// A v2 header: command, family/transport byte, then the payload as given.
fn v2(command: u8, family: u8, payload: &[u8]) -> Vec<u8> {
    let mut out = V2_SIGNATURE.to_vec();
    out.push(0x20 | command);
    out.push(family);
    out.extend_from_slice(&u16::try_from(payload.len()).expect("short").to_be_bytes());
    out.extend_from_slice(payload);
    out
}

fn inet_block(source: [u8; 4], destination: [u8; 4], ports: (u16, u16)) -> Vec<u8> {
    let mut out = source.to_vec();
    out.extend_from_slice(&destination);
    out.extend_from_slice(&ports.0.to_be_bytes());
    out.extend_from_slice(&ports.1.to_be_bytes());
    out
}

fn tlv(kind: u8, value: &[u8]) -> Vec<u8> {
    let mut out = vec![kind];
    out.extend_from_slice(&u16::try_from(value.len()).expect("short").to_be_bytes());
    out.extend_from_slice(value);
    out
}

#[test]
fn v1_headers_are_parsed_and_report_what_they_consumed() {
    let cases: &[(&[u8], Parse)] = &[
        (
            b"PROXY TCP4 203.0.113.7 192.0.2.1 56324 25\r\nEHLO x\r\n",
            header(
                43,
                Version::V1,
                addresses("203.0.113.7:56324", "192.0.2.1:25"),
            ),
        ),
        (
            b"PROXY TCP6 2001:db8::7 2001:db8::1 65535 0\r\n",
            header(
                44,
                Version::V1,
                addresses("[2001:db8::7]:65535", "[2001:db8::1]:0"),
            ),
        ),
        (b"PROXY UNKNOWN\r\n", header(15, Version::V1, None)),
        (
            b"PROXY UNKNOWN ffff:f...f ffff:f...f 65535 65535\r\nQUIT",
            header(49, Version::V1, None),
        ),
    ];
    for (input, expected) in cases {
        assert_eq!(
            parse(input),
            *expected,
            "{:?}",
            String::from_utf8_lossy(input)
        );
    }
}

#[test]
fn malformed_v1_lines_are_invalid() {
    let cases: &[(&[u8], ProxyError)] = &[
        (b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2\n", ProxyError::MalformedV1),
        (
            b"PROXY TCP4  1.2.3.4 5.6.7.8 1 2\r\n",
            ProxyError::MalformedV1,
        ),
        (
            b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2 \r\n",
            ProxyError::MalformedV1,
        ),
        (b"PROXY TCP4 1.2.3.4 5.6.7.8 1\r\n", ProxyError::MalformedV1),
        (
            b"PROXY TCP4 1.2.3.4 5.6.7.8 01 2\r\n",
            ProxyError::MalformedV1,
        ),
        (
            b"PROXY TCP4 1.2.3.4 5.6.7.8 +1 2\r\n",
            ProxyError::MalformedV1,
        ),
        (
            b"PROXY TCP4 1.2.3.4 5.6.7.8 65536 2\r\n",
            ProxyError::MalformedV1,
        ),
        (
            b"PROXY TCP4 1.2.3.04 5.6.7.8 1 2\r\n",
            ProxyError::MalformedV1,
        ),
        (b"PROXY TCP4 1.2.3 5.6.7.8 1 2\r\n", ProxyError::MalformedV1),
        (b"PROXY TCP4 ::1 ::1 1 2\r\n", ProxyError::MalformedV1),
        (
            b"PROXY TCP6 1.2.3.4 5.6.7.8 1 2\r\n",
            ProxyError::MalformedV1,
        ),
        (
            b"PROXY UDP4 1.2.3.4 5.6.7.8 1 2\r\n",
            ProxyError::MalformedV1,
        ),
        (
            b"PROXY tcp4 1.2.3.4 5.6.7.8 1 2\r\n",
            ProxyError::MalformedV1,
        ),
        (b"PROXY UNKNOWNX\r\n", ProxyError::MalformedV1),
        (b"PROXY UNKNOWN \x01\r\n", ProxyError::MalformedV1),
        (
            b"PROXY TCP4 1.2.3.4\r5.6.7.8 1 2\r\n",
            ProxyError::MalformedV1,
        ),
        (b"PROXY \r\n", ProxyError::MalformedV1),
        (b"PROXY-TCP4 1.2.3.4 5.6.7.8 1 2\r\n", ProxyError::NoHeader),
        (b"EHLO client.example\r\n", ProxyError::NoHeader),
        (b"proxy TCP4", ProxyError::NoHeader),
    ];
    for (input, error) in cases {
        assert_eq!(
            parse(input),
            Parse::Invalid(*error),
            "{:?}",
            String::from_utf8_lossy(input)
        );
    }
}

#[test]
fn a_v1_line_without_crlf_within_107_bytes_is_too_long() {
    let mut line = b"PROXY UNKNOWN ".to_vec();
    line.resize(V1_MAX_LEN - 2, b'x');
    line.extend_from_slice(b"\r\n");
    assert_eq!(parse(&line), header(V1_MAX_LEN, Version::V1, None));

    let mut long = b"PROXY UNKNOWN ".to_vec();
    long.resize(V1_MAX_LEN - 1, b'x');
    assert_eq!(parse(&long), Parse::Invalid(ProxyError::TooLong));
    long.extend_from_slice(b"\r\n");
    assert_eq!(parse(&long), Parse::Invalid(ProxyError::TooLong));
}

#[test]
fn an_incomplete_header_asks_only_for_bytes_that_belong_to_it() {
    let full_v1 = b"PROXY TCP4 203.0.113.7 192.0.2.1 56324 25\r\n";
    let block = inet_block([203, 0, 113, 7], [192, 0, 2, 1], (56324, 25));
    let full_v2 = v2(1, 0x11, &block);
    for full in [&full_v1[..], &full_v2[..]] {
        let mut have = 0;
        let mut reads = 0;
        loop {
            match parse(&full[..have]) {
                Parse::NeedMore(n) => {
                    assert!(n >= 1 && have + n <= full.len(), "{have} + {n}");
                    have += n;
                }
                Parse::Header(header) => {
                    assert_eq!(header.consumed, full.len());
                    assert_eq!(have, full.len());
                    break;
                }
                Parse::Invalid(error) => panic!("{error} at {have}"),
            }
            reads += 1;
            assert!(reads <= full.len());
        }
    }
    assert_eq!(parse(b""), Parse::NeedMore(15));
    assert_eq!(parse(b"PRO"), Parse::NeedMore(12));
    assert_eq!(parse(b"\r\n\r\n"), Parse::NeedMore(12));
    assert_eq!(parse(&full_v2[..16]), Parse::NeedMore(12));
}

#[test]
fn v2_headers_are_parsed_with_their_tlvs_skipped() {
    let inet = inet_block([203, 0, 113, 7], [192, 0, 2, 1], (56324, 25));
    let mut inet6 = Vec::new();
    inet6.extend_from_slice(
        &"2001:db8::7"
            .parse::<std::net::Ipv6Addr>()
            .expect("ip")
            .octets(),
    );
    inet6.extend_from_slice(
        &"2001:db8::1"
            .parse::<std::net::Ipv6Addr>()
            .expect("ip")
            .octets(),
    );
    inet6.extend_from_slice(&40000u16.to_be_bytes());
    inet6.extend_from_slice(&587u16.to_be_bytes());
    let mut with_tlvs = inet.clone();
    with_tlvs.extend(tlv(0x01, b"smtp"));
    with_tlvs.extend(tlv(0x05, &[7; 16]));
    with_tlvs.extend(tlv(0x04, b""));
    with_tlvs.extend(tlv(0xEA, &[0; 300]));
    let unix = vec![b'/'; 216];

    let v4 = addresses("203.0.113.7:56324", "192.0.2.1:25");
    let cases: Vec<(Vec<u8>, Parse)> = vec![
        (v2(1, 0x11, &inet), header(28, Version::V2, v4)),
        (
            v2(1, 0x21, &inet6),
            header(
                52,
                Version::V2,
                addresses("[2001:db8::7]:40000", "[2001:db8::1]:587"),
            ),
        ),
        (
            v2(1, 0x11, &with_tlvs),
            header(16 + with_tlvs.len(), Version::V2, v4),
        ),
        (v2(0, 0x00, b""), header(16, Version::V2, None)),
        // LOCAL skips whatever follows, even addresses.
        (v2(0, 0x11, &inet), header(28, Version::V2, None)),
        (v2(1, 0x00, b"anything"), header(24, Version::V2, None)),
        (v2(1, 0x31, &unix), header(232, Version::V2, None)),
        (v2(1, 0x32, &unix), header(232, Version::V2, None)),
    ];
    for (mut input, expected) in cases {
        input.extend_from_slice(b"EHLO x\r\n");
        assert_eq!(parse(&input), expected, "{input:?}");
    }
}

#[test]
fn malformed_v2_headers_are_invalid() {
    let inet = inet_block([1, 2, 3, 4], [5, 6, 7, 8], (1, 2));
    let mut bad_version = v2(1, 0x11, &inet);
    bad_version[12] = 0x11;
    let mut bad_signature = v2(1, 0x11, &inet);
    bad_signature[11] = b'X';
    let mut too_long = v2(1, 0x11, &inet);
    too_long[14..16].copy_from_slice(
        &u16::try_from(V2_MAX_PAYLOAD + 1)
            .expect("fits")
            .to_be_bytes(),
    );
    let mut truncated_tlv = inet.clone();
    truncated_tlv.extend_from_slice(&[0x01, 0x00]);
    let mut overrunning_tlv = inet.clone();
    overrunning_tlv.extend_from_slice(&[0x01, 0x00, 0x05, b'a']);
    let cases: Vec<(Vec<u8>, ProxyError)> = vec![
        (bad_version, ProxyError::Version),
        (bad_signature, ProxyError::NoHeader),
        (v2(2, 0x11, &inet), ProxyError::Command),
        (v2(0xF, 0x11, &inet), ProxyError::Command),
        (too_long, ProxyError::TooLong),
        (v2(1, 0x12, &inet), ProxyError::Family),
        (v2(1, 0x10, &inet), ProxyError::Family),
        (v2(1, 0x01, &inet), ProxyError::Family),
        (v2(1, 0x41, &inet), ProxyError::Family),
        (v2(1, 0x13, &inet), ProxyError::Family),
        (v2(1, 0x11, &inet[..11]), ProxyError::ShortAddresses),
        (v2(1, 0x21, &inet), ProxyError::ShortAddresses),
        (v2(1, 0x31, &inet), ProxyError::ShortAddresses),
        (v2(1, 0x11, &truncated_tlv), ProxyError::Tlv),
        (v2(1, 0x11, &overrunning_tlv), ProxyError::Tlv),
    ];
    for (input, error) in cases {
        assert_eq!(parse(&input), Parse::Invalid(error), "{input:?}");
    }
    // A wrong version is refused before the rest of the header arrives.
    assert_eq!(
        parse(b"\r\n\r\n\0\r\nQUIT\n\x31"),
        Parse::Invalid(ProxyError::Version)
    );
}

/// Random bytes, random prefixes of valid headers and single-byte corruptions of them: the parser
/// never panics, never claims more than it was given, and agrees with itself on longer input.
#[test]
fn random_input_never_panics_or_over_consumes() {
    let mut rng = XorShift::new(0x5eed_7e7e);
    let block = inet_block([203, 0, 113, 7], [192, 0, 2, 1], (56324, 25));
    let mut tlvs = block.clone();
    tlvs.extend(tlv(0x02, b"mx.example"));
    let seeds: Vec<Vec<u8>> = vec![
        b"PROXY TCP4 203.0.113.7 192.0.2.1 56324 25\r\n".to_vec(),
        b"PROXY TCP6 2001:db8::7 2001:db8::1 1 2\r\n".to_vec(),
        b"PROXY UNKNOWN\r\n".to_vec(),
        v2(1, 0x11, &tlvs),
        v2(0, 0x00, b""),
    ];
    for round in 0..50_000 {
        let mut input = if round % 3 == 0 {
            let len = rng.below(160);
            (0..len).map(|_| rng.next() as u8).collect()
        } else {
            let mut input = seeds[rng.below(seeds.len())].clone();
            if round % 3 == 2 {
                let at = rng.below(input.len());
                input[at] = rng.next() as u8;
            }
            input
        };
        input.truncate(rng.below(input.len() + 1));
        let whole = parse(&input);
        match &whole {
            Parse::Header(header) => {
                assert!(header.consumed >= 1 && header.consumed <= input.len());
                // The same header is found however much follows it.
                let mut longer = input.clone();
                longer.extend_from_slice(b"EHLO\r\n");
                assert_eq!(parse(&longer), whole);
                assert_eq!(parse(&input[..header.consumed]), whole);
            }
            Parse::NeedMore(n) => assert!(*n >= 1),
            Parse::Invalid(_) => {
                let mut longer = input.clone();
                longer.extend_from_slice(b"\r\n");
                assert!(matches!(parse(&longer), Parse::Invalid(_)), "{input:?}");
            }
        }
    }
}

#[test]
fn source_addresses_are_what_a_caller_uses() {
    let Parse::Header(header) = parse(b"PROXY TCP4 198.51.100.9 192.0.2.1 1000 25\r\n") else {
        panic!("valid header");
    };
    let source: SocketAddr = "198.51.100.9:1000".parse().expect("addr");
    assert_eq!(header.addresses.map(|a| a.source), Some(source));
}
