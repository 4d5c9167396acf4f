//! Message fix-ups on the submission ports (RFC 6409 section 8): a submitted message that lacks a
//! `Message-ID` or a `Date` gets one, since mail clients and scripts often leave them out and
//! receivers score such messages as spam.
//!
//! [`missing_headers`] is pure: the session driver calls it once the message is complete, for an
//! authenticated submission, and puts the result at the top of the message (below its own
//! `Received:`).

use std::fmt::Write as _;

use time::OffsetDateTime;
use time::format_description::well_known::Rfc2822;

/// The header lines (each ending in CRLF, possibly none) to prepend to `message` so that it has a
/// `Message-ID` (`<queue_id@hostname>`) and a `Date` (`at`, RFC 5322 form).
///
/// Only the header section is looked at: the lines before the first empty line, or before the
/// first line that is neither a field nor a folded continuation; with neither, the whole message.
/// Field names match case-insensitively, and text inside a folded continuation line or the body
/// never counts as a field.
pub fn missing_headers(
    message: &[u8],
    hostname: &str,
    queue_id: &str,
    at: OffsetDateTime,
) -> String {
    let mut has_message_id = false;
    let mut has_date = false;
    for name in tern_smtp::header::names(message) {
        has_message_id |= name.eq_ignore_ascii_case(b"message-id");
        has_date |= name.eq_ignore_ascii_case(b"date");
    }
    let mut headers = String::new();
    if !has_message_id {
        let _ = write!(
            headers,
            "Message-ID: <{}@{}>\r\n",
            id_text(queue_id),
            id_text(hostname)
        );
    }
    if !has_date {
        // `time` formats years 1900..=9999 only; a clock that far off still gets a valid header.
        let date = at
            .format(&Rfc2822)
            .unwrap_or_else(|_| "Thu, 01 Jan 1970 00:00:00 +0000".to_owned());
        let _ = write!(headers, "Date: {date}\r\n");
    }
    headers
}

/// Keeps a value usable as either side of a `msg-id` (RFC 5322 3.6.4: dot-atom-text): anything
/// outside it becomes `-`, so a strange host name cannot break the header.
fn id_text(text: &str) -> String {
    let allowed = |c: char| c.is_ascii_alphanumeric() || "!#$%&'*+-/=?^_`{|}~.".contains(c);
    let cleaned: String = text
        .chars()
        .map(|c| if allowed(c) { c } else { '-' })
        .collect();
    let labels: Vec<&str> = cleaned
        .split('.')
        .filter(|label| !label.is_empty())
        .collect();
    if labels.is_empty() {
        "localhost".to_owned()
    } else {
        labels.join(".")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at() -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp(1_700_000_000).expect("a time")
    }

    const ID: &str = "Message-ID: <q1@mx.example.com>\r\n";
    const DATE: &str = "Date: Tue, 14 Nov 2023 22:13:20 +0000\r\n";

    fn added(message: &str) -> String {
        missing_headers(message.as_bytes(), "mx.example.com", "q1", at())
    }

    #[test]
    fn adds_what_is_missing_and_only_that() {
        let both = format!("{ID}{DATE}");
        let cases: &[(&str, &str)] = &[
            ("Subject: hi\r\n\r\nbody\r\n", &both),
            ("Message-ID: <a@b>\r\nDate: x\r\n\r\nbody\r\n", ""),
            ("message-id: <a@b>\r\nDATE: x\r\n\r\n", ""),
            ("Message-Id : <a@b>\r\n\r\n", DATE),
            ("Date: Mon, 1 Jan 2024 00:00:00 +0000\r\n\r\n", ID),
            (
                "Subject: hi\r\n\tDate: folded into the subject\r\n\r\n",
                &both,
            ),
            (
                "Subject: hi\r\n Message-ID: <folded@x>\r\nDate: x\r\n\r\n",
                ID,
            ),
            (
                "Subject: hi\r\n\r\nDate: in the body\r\nMessage-ID: <body@x>\r\n",
                &both,
            ),
            (
                "X-Date: x\r\nDates: x\r\nResent-Message-ID: <a@b>\r\n\r\n",
                &both,
            ),
            (
                "Subject: no separator\r\nDate: x\r\nMessage-ID: <a@b>\r\n",
                "",
            ),
            ("Subject: no separator, no final CRLF\r\nDate: x", ID),
            ("", &both),
            ("\r\nDate: x\r\n", &both),
            ("Subject: hi\nDate: bare LF\n\nbody", ID),
            ("Subject: hi\r\nnot a header line\r\nDate: x\r\n\r\n", &both),
            (": no name\r\nDate: x\r\n\r\n", &both),
            ("Date:\r\nMessage-ID:\r\n\r\n", ""),
        ];
        for (message, expected) in cases {
            assert_eq!(added(message), *expected, "for {message:?}");
        }
    }

    #[test]
    fn the_message_id_is_well_formed_whatever_the_host_name() {
        let cases = [
            ("mx.example.com", "q1", "<q1@mx.example.com>"),
            ("bad host\r\nBcc: x", "q1", "<q1@bad-host--Bcc--x>"),
            ("..", "q<1>", "<q-1-@localhost>"),
            ("a..b.", "q1", "<q1@a.b>"),
            (".a...b", "q..1", "<q.1@a.b>"),
        ];
        for (hostname, queue_id, expected) in cases {
            let headers = missing_headers(b"Date: x\r\n\r\n", hostname, queue_id, at());
            assert_eq!(
                headers,
                format!("Message-ID: {expected}\r\n"),
                "{hostname:?}"
            );
        }
    }

    #[test]
    fn any_bytes_give_well_formed_lines() {
        let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
        let alphabet = b"DateMsg-ID: \r\n\t\xff\x00";
        for _ in 0..5_000 {
            let message: Vec<u8> = (0..64)
                .map(|_| {
                    seed ^= seed << 13;
                    seed ^= seed >> 7;
                    seed ^= seed << 17;
                    alphabet[(seed % alphabet.len() as u64) as usize]
                })
                .collect();
            let headers = missing_headers(&message, "mx.example.com", "q1", at());
            for line in headers.split_terminator("\r\n") {
                assert!(
                    line.starts_with("Message-ID: <") || line.starts_with("Date: "),
                    "{line:?}"
                );
            }
        }
    }
}
