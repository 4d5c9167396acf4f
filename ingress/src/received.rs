//! The `Received:` trace header (RFC 5321 4.4) prepended to every accepted message.

use std::fmt::Write as _;
use std::net::IpAddr;

use time::OffsetDateTime;
use time::format_description::well_known::Rfc2822;

use crate::tls::TlsInfo;

pub(crate) struct ReceivedInfo<'a> {
    pub helo: &'a str,
    pub client_ip: IpAddr,
    pub hostname: &'a str,
    /// RFC 3848 / RFC 6531 `with` keyword: `SMTP`, `ESMTP`, `ESMTPS`, `UTF8SMTP`, ...
    pub protocol: &'a str,
    /// Named in a comment the way Postfix does: `(using TLSv1.3 with cipher ...)`.
    pub tls: Option<TlsInfo>,
    pub queue_id: &'a str,
    /// Named only when there is exactly one, so a message to many does not disclose them all.
    pub single_recipient: Option<&'a str>,
    pub at: OffsetDateTime,
}

/// Renders the header, folded, ending in CRLF.
pub(crate) fn received_header(info: &ReceivedInfo<'_>) -> String {
    let mut header = String::with_capacity(192);
    let helo = sanitize(info.helo);
    let _ = write!(
        header,
        "Received: from {helo} ([{}])\r\n",
        client_literal(info.client_ip)
    );
    if let Some(tls) = info.tls {
        let _ = write!(
            header,
            "\t(using {} with cipher {})\r\n",
            tls.version, tls.cipher
        );
    }
    let _ = write!(
        header,
        "\tby {} (Tern) with {} id {}",
        info.hostname, info.protocol, info.queue_id
    );
    if let Some(rcpt) = info.single_recipient {
        let _ = write!(header, "\r\n\tfor <{}>", sanitize(rcpt));
    }
    let date = info
        .at
        .format(&Rfc2822)
        .unwrap_or_else(|_| "Thu, 01 Jan 1970 00:00:00 +0000".to_owned());
    let _ = write!(header, "; {date}\r\n");
    header
}

/// IPv6 address literals carry the `IPv6:` tag (RFC 5321 4.1.3).
fn client_literal(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => v4.to_string(),
            None => format!("IPv6:{v6}"),
        },
    }
}

/// The client chose the HELO text: keep it from breaking the header's comment/structure.
fn sanitize(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c.is_control() || matches!(c, '(' | ')' | '<' | '>' | ';') {
                '?'
            } else {
                c
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info<'a>(helo: &'a str, ip: &str, rcpt: Option<&'a str>) -> ReceivedInfo<'a> {
        ReceivedInfo {
            helo,
            client_ip: ip.parse().expect("ip"),
            hostname: "mx.tern.test",
            protocol: "ESMTP",
            tls: None,
            queue_id: "0190aabbccdd",
            single_recipient: rcpt,
            at: OffsetDateTime::from_unix_timestamp(1_700_000_000).expect("time"),
        }
    }

    #[test]
    fn header_names_client_server_protocol_id_and_date() {
        let header = received_header(&info("client.example", "192.0.2.1", Some("a@tern.test")));
        assert_eq!(
            header,
            "Received: from client.example ([192.0.2.1])\r\n\tby mx.tern.test (Tern) with ESMTP id 0190aabbccdd\r\n\tfor <a@tern.test>; Tue, 14 Nov 2023 22:13:20 +0000\r\n"
        );
    }

    #[test]
    fn tls_sessions_name_version_and_cipher() {
        let mut info = info("client.example", "192.0.2.1", None);
        info.protocol = "ESMTPS";
        info.tls = Some(TlsInfo {
            version: "TLSv1.3",
            cipher: "TLS13_AES_256_GCM_SHA384",
        });
        assert_eq!(
            received_header(&info),
            "Received: from client.example ([192.0.2.1])\r\n\t(using TLSv1.3 with cipher TLS13_AES_256_GCM_SHA384)\r\n\tby mx.tern.test (Tern) with ESMTPS id 0190aabbccdd; Tue, 14 Nov 2023 22:13:20 +0000\r\n"
        );
    }

    #[test]
    fn ipv6_clients_are_tagged_and_mapped_ipv4_is_plain() {
        assert!(received_header(&info("h", "2001:db8::1", None)).contains("([IPv6:2001:db8::1])"));
        assert!(received_header(&info("h", "::ffff:192.0.2.9", None)).contains("([192.0.2.9])"));
    }

    #[test]
    fn hostile_helo_cannot_break_the_header() {
        let header = received_header(&info("x) by evil (\r\nX-Injected: 1", "192.0.2.1", None));
        assert_eq!(header.matches("\r\n").count(), 2, "{header}");
        assert!(!header.contains("X-Injected: 1\r\n"));
    }
}
