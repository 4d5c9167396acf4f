mod encoding;
mod helpers;
mod mime;
mod python;
mod returned;

use super::*;
use mime::{Part, blocks};
use time::macros::datetime;

const ORIGINAL: &[u8] = b"Received: from client.example.org ([192.0.2.1])\r\n\
    \tby mx1.tern.test (Tern) with ESMTP id 0190abcd; Tue, 03 Mar 2026 09:00:00 +0000\r\n\
    From: Alice <alice@example.org>\r\n\
    To: Bob <bob@example.com>\r\n\
    Subject: Hello\r\n\
    Message-ID: <hello-1@example.org>\r\n\
    \r\n\
    Hi Bob,\r\n\
    \r\n\
    see you.\r\n";

fn original_header() -> &'static [u8] {
    let end = ORIGINAL
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a header");
    &ORIGINAL[..end + 2]
}

fn failed(address: &'static str) -> DsnRecipient<'static> {
    DsnRecipient {
        final_recipient: address,
        original_recipient: None,
        action: Action::Failed,
        status: "5.1.1",
        remote_mta: Some("mx.example.com"),
        diagnostic: Some("smtp; 550 5.1.1 <bob@example.com>: no such user"),
        last_attempt: Some(datetime!(2026-03-03 9:05 UTC)),
        will_retry_until: None,
    }
}

fn delayed(address: &'static str) -> DsnRecipient<'static> {
    DsnRecipient {
        final_recipient: address,
        original_recipient: None,
        action: Action::Delayed,
        status: "4.4.1",
        remote_mta: None,
        diagnostic: Some("x-tern; cannot connect to mx.example.net: connection refused"),
        last_attempt: Some(datetime!(2026-03-03 13:00 UTC)),
        will_retry_until: Some(datetime!(2026-03-08 9:00 UTC)),
    }
}

fn delivered(address: &'static str) -> DsnRecipient<'static> {
    DsnRecipient {
        final_recipient: address,
        original_recipient: None,
        action: Action::Delivered,
        status: "2.0.0",
        remote_mta: Some("lmtp.example.com"),
        diagnostic: Some("smtp; 250 2.0.0 <dave@example.com> stored"),
        last_attempt: Some(datetime!(2026-03-03 9:01 UTC)),
        will_retry_until: None,
    }
}

fn input<'a>(recipients: Vec<DsnRecipient<'a>>) -> DsnInput<'a> {
    DsnInput {
        reporting_mta: "mx1.tern.test",
        original_envelope_id: None,
        arrival_date: datetime!(2026-03-03 9:00 UTC),
        queue_id: "0190abcd",
        original_sender: "alice@example.org",
        ret: Ret::default(),
        recipients,
        original_message: ORIGINAL,
        now: datetime!(2026-03-03 9:06 UTC),
        message_id_domain: "tern.test",
        smtputf8: false,
    }
}

/// Builds a report, checks what every report promises, and parses it.
fn built(input: &DsnInput<'_>) -> (Vec<u8>, Part) {
    let message = build(input);
    assert_well_formed(&message);
    let top = Part::parse(&message);
    (message, top)
}

/// CRLF line endings only, no line past 998 octets, and 8-bit content declared as such.
fn assert_well_formed(bytes: &[u8]) {
    assert!(bytes.ends_with(b"\r\n"));
    for (number, line) in bytes.split(|&b| b == b'\n').enumerate() {
        if number + 1 == bytes.split(|&b| b == b'\n').count() {
            assert!(line.is_empty());
            continue;
        }
        let line = line.strip_suffix(b"\r").expect("every LF after a CR");
        assert!(!line.contains(&b'\r'), "bare CR in line {number}");
        assert!(line.len() <= 998, "line {number} has {} octets", line.len());
    }
    let top = Part::parse(bytes);
    let declared = top.header("Content-Transfer-Encoding");
    assert_eq!(declared == Some("8bit"), !bytes.is_ascii(), "{declared:?}");
}

/// An optional value in a table row.
type Text = Option<&'static str>;

fn names(block: &Part) -> Vec<&str> {
    block
        .headers
        .iter()
        .map(|(name, _)| name.as_str())
        .collect()
}

#[test]
fn a_failure_report_has_the_rfc_3464_shape_and_returns_the_whole_message() {
    let (message, top) = built(&input(vec![failed("bob@example.com")]));
    assert!(message.is_ascii());

    let expect = [
        ("From", "Mail Delivery System <MAILER-DAEMON@tern.test>"),
        ("To", "<alice@example.org>"),
        ("Subject", "Undelivered Mail Returned to Sender"),
        ("Date", "Tue, 03 Mar 2026 09:06:00 +0000"),
        ("MIME-Version", "1.0"),
        ("Auto-Submitted", "auto-replied"),
    ];
    for (name, value) in expect {
        assert_eq!(top.header(name), Some(value), "{name}");
        assert_eq!(top.count(name), 1, "{name}");
    }
    let id = top.header("Message-ID").expect("a Message-ID");
    assert!(id.starts_with('<') && id.ends_with("@tern.test>"), "{id}");
    assert_eq!(top.media_type(), "multipart/report");
    assert_eq!(top.param("report-type").as_deref(), Some("delivery-status"));

    let parts = top.parts();
    assert_eq!(parts.len(), 3);
    assert_eq!(parts[0].media_type(), "text/plain");
    assert_eq!(parts[0].param("charset").as_deref(), Some("us-ascii"));
    let text = parts[0].text();
    for needle in [
        "mx1.tern.test",
        "could not be delivered",
        "<bob@example.com>: delivery failed (5.1.1)",
        "mx.example.com answered: 550 5.1.1 <bob@example.com>: no such user",
        "Queue ID 0190abcd",
        "Your message is attached.",
    ] {
        assert!(text.contains(needle), "{needle:?} not in {text}");
    }

    assert_eq!(parts[1].media_type(), "message/delivery-status");
    let blocks = blocks(&parts[1].body);
    assert_eq!(blocks.len(), 2);
    assert_eq!(
        names(&blocks[0]),
        ["Reporting-MTA", "X-Tern-Queue-ID", "Arrival-Date"]
    );
    assert_eq!(
        blocks[0].header("Reporting-MTA"),
        Some("dns; mx1.tern.test")
    );
    assert_eq!(blocks[0].header("X-Tern-Queue-ID"), Some("0190abcd"));
    assert_eq!(
        blocks[0].header("Arrival-Date"),
        Some("Tue, 03 Mar 2026 09:00:00 +0000")
    );
    let recipient = &blocks[1];
    assert_eq!(
        names(recipient),
        [
            "Final-Recipient",
            "Action",
            "Status",
            "Remote-MTA",
            "Diagnostic-Code",
            "Last-Attempt-Date"
        ]
    );
    let expect = [
        ("Final-Recipient", "rfc822; bob@example.com"),
        ("Action", "failed"),
        ("Status", "5.1.1"),
        ("Remote-MTA", "dns; mx.example.com"),
        (
            "Diagnostic-Code",
            "smtp; 550 5.1.1 <bob@example.com>: no such user",
        ),
        ("Last-Attempt-Date", "Tue, 03 Mar 2026 09:05:00 +0000"),
    ];
    for (name, value) in expect {
        assert_eq!(recipient.header(name), Some(value), "{name}");
    }

    assert_eq!(parts[2].media_type(), "message/rfc822");
    assert_eq!(parts[2].header("Content-Transfer-Encoding"), Some("7bit"));
    assert_eq!(parts[2].body, ORIGINAL);
}

#[test]
fn a_delay_report_tells_until_when_and_returns_only_the_header_even_with_ret_full() {
    let mut input = input(vec![delayed("carol@example.net")]);
    input.ret = Ret::Full;
    let (_, top) = built(&input);
    assert_eq!(
        top.header("Subject"),
        Some("Delayed Mail (still being retried)")
    );
    let parts = top.parts();
    let text = parts[0].text();
    for needle in [
        "not yet reached",
        "<carol@example.net>: delivery delayed (4.4.1)",
        "\r\n    cannot connect to mx.example.net: connection refused\r\n",
        "Still trying until Sun, 08 Mar 2026 09:00:00 +0000.",
        "The header of your message is attached.",
    ] {
        assert!(text.contains(needle), "{needle:?} not in {text}");
    }
    let recipient = &blocks(&parts[1].body)[1];
    assert_eq!(
        names(recipient),
        [
            "Final-Recipient",
            "Action",
            "Status",
            "Diagnostic-Code",
            "Last-Attempt-Date",
            "Will-Retry-Until"
        ]
    );
    assert_eq!(
        recipient.header("Diagnostic-Code"),
        Some("x-tern; cannot connect to mx.example.net: connection refused")
    );
    assert_eq!(recipient.header("Action"), Some("delayed"));
    assert_eq!(
        recipient.header("Will-Retry-Until"),
        Some("Sun, 08 Mar 2026 09:00:00 +0000")
    );
    assert_eq!(parts[2].media_type(), "text/rfc822-headers");
    assert_eq!(parts[2].body, original_header());
}

#[test]
fn a_success_report_names_the_server_that_took_the_message() {
    let (_, top) = built(&input(vec![delivered("dave@example.com")]));
    assert_eq!(
        top.header("Subject"),
        Some("Successful Mail Delivery Report")
    );
    let parts = top.parts();
    assert!(
        parts[0]
            .text()
            .contains("<dave@example.com>: delivered (2.0.0)")
    );
    let recipient = &blocks(&parts[1].body)[1];
    assert_eq!(recipient.header("Action"), Some("delivered"));
    assert_eq!(
        recipient.header("Remote-MTA"),
        Some("dns; lmtp.example.com")
    );
    assert_eq!(
        recipient.header("Diagnostic-Code"),
        Some("smtp; 250 2.0.0 <dave@example.com> stored")
    );
    assert_eq!(parts[2].media_type(), "text/rfc822-headers");

    let relayed = DsnRecipient {
        action: Action::Relayed,
        ..delivered("erin@example.org")
    };
    let (_, top) = built(&input(vec![relayed]));
    let parts = top.parts();
    assert!(
        parts[0]
            .text()
            .contains("<erin@example.org>: passed on to a system")
    );
    assert_eq!(blocks(&parts[1].body)[1].header("Action"), Some("relayed"));
}

#[test]
fn a_report_on_several_recipients_has_one_block_each_and_the_subject_of_the_worst() {
    let recipients = vec![
        delivered("dave@example.com"),
        delayed("carol@example.net"),
        failed("bob@example.com"),
    ];
    let (_, top) = built(&input(recipients));
    assert_eq!(
        top.header("Subject"),
        Some("Undelivered Mail Returned to Sender")
    );
    let parts = top.parts();
    let actions: Vec<_> = blocks(&parts[1].body)
        .iter()
        .skip(1)
        .map(|block| block.header("Action").unwrap_or_default().to_owned())
        .collect();
    assert_eq!(actions, ["delivered", "delayed", "failed"]);
    assert_eq!(parts[2].media_type(), "message/rfc822");
}

#[test]
fn ret_and_the_kind_of_report_decide_what_comes_back() {
    type Make = fn(&'static str) -> DsnRecipient<'static>;
    let table: Vec<(Make, Ret, &str, &str)> = vec![
        (
            failed,
            Ret::default(),
            "message/rfc822",
            "Your message is attached.",
        ),
        (failed, Ret::Headers, "text/rfc822-headers", "The header of"),
        (
            delayed,
            Ret::default(),
            "text/rfc822-headers",
            "The header of",
        ),
        (delivered, Ret::Full, "text/rfc822-headers", "The header of"),
        (
            delivered,
            Ret::Headers,
            "text/rfc822-headers",
            "The header of",
        ),
    ];
    for (make, ret, media_type, note) in table {
        let mut input = input(vec![make("bob@example.com")]);
        input.ret = ret;
        let (_, top) = built(&input);
        let parts = top.parts();
        let action = input.recipients[0].action;
        assert_eq!(parts[2].media_type(), media_type, "{action:?} {ret:?}");
        assert!(parts[0].text().contains(note), "{action:?} {ret:?}");
        let expected = if media_type == "message/rfc822" {
            ORIGINAL
        } else {
            original_header()
        };
        assert_eq!(parts[2].body, expected, "{action:?} {ret:?}");
    }
}

#[test]
fn diagnostics_and_remote_mtas_keep_their_type_or_get_the_usual_one() {
    /// Remote-MTA and diagnostic given, then the two fields and the reason line expected.
    type Row = (Text, Text, Text, Text, Text);
    let table: Vec<Row> = vec![
        (
            Some("mx.example.com"),
            Some("smtp; 550 5.1.1 gone"),
            Some("dns; mx.example.com"),
            Some("smtp; 550 5.1.1 gone"),
            Some("mx.example.com answered: 550 5.1.1 gone"),
        ),
        (
            Some("mx.example.com"),
            Some("550 5.1.1 bare; reply"),
            Some("dns; mx.example.com"),
            Some("smtp; 550 5.1.1 bare; reply"),
            Some("mx.example.com answered: 550 5.1.1 bare; reply"),
        ),
        (
            Some("dns; mx.example.com"),
            Some("SMTP; 451 4.3.0 later"),
            Some("dns; mx.example.com"),
            Some("SMTP; 451 4.3.0 later"),
            Some("dns; mx.example.com answered: 451 4.3.0 later"),
        ),
        (
            Some("mx.example.com"),
            Some("x-tern; cannot connect to mx.example.com: refused"),
            Some("dns; mx.example.com"),
            Some("x-tern; cannot connect to mx.example.com: refused"),
            Some("cannot connect to mx.example.com: refused"),
        ),
        (
            None,
            Some("x-tern; no such domain example.invalid"),
            None,
            Some("x-tern; no such domain example.invalid"),
            Some("no such domain example.invalid"),
        ),
        (None, None, None, None, None),
    ];
    for (remote_mta, diagnostic, mta_field, diagnostic_field, reason) in table {
        let mut recipient = failed("bob@example.com");
        recipient.remote_mta = remote_mta;
        recipient.diagnostic = diagnostic;
        let (_, top) = built(&input(vec![recipient]));
        let parts = top.parts();
        let blocks = blocks(&parts[1].body);
        assert_eq!(blocks[1].header("Remote-MTA"), mta_field, "{diagnostic:?}");
        assert_eq!(blocks[1].header("Diagnostic-Code"), diagnostic_field);
        let text = parts[0].text();
        let paragraph = text
            .split("<bob@example.com>: delivery failed (5.1.1)\r\n")
            .nth(1)
            .expect("the recipient's paragraph");
        let line = paragraph.split("\r\n").next().unwrap_or_default();
        match reason {
            Some(reason) => assert_eq!(line, format!("    {reason}")),
            None => assert_eq!(line, ""),
        }
    }
}

#[test]
fn envid_and_orcpt_appear_only_when_given() {
    /// ENVID and ORCPT given, then the two fields expected.
    type Row = (Text, Text, Text, Text);
    let table: Vec<Row> = vec![
        (None, None, None, None),
        (Some("QQ314159"), None, Some("QQ314159"), None),
        (Some("Case+Kept=1"), None, Some("Case+Kept=1"), None),
        (
            None,
            Some("rfc822;Bob@Example.COM"),
            None,
            Some("rfc822;Bob@Example.COM"),
        ),
        (
            Some("id-7"),
            Some("x400;/C=us/ADMD=/PRMD=xx/"),
            Some("id-7"),
            Some("x400;/C=us/ADMD=/PRMD=xx/"),
        ),
        (
            None,
            Some("bob@example.com"),
            None,
            Some("rfc822;bob@example.com"),
        ),
    ];
    for (envid, orcpt, expected_envid, expected_orcpt) in table {
        let mut recipient = failed("bob@example.com");
        recipient.original_recipient = orcpt;
        let mut input = input(vec![recipient]);
        input.original_envelope_id = envid;
        let (_, top) = built(&input);
        let blocks = blocks(&top.parts()[1].body);
        assert_eq!(blocks[0].header("Original-Envelope-Id"), expected_envid);
        assert_eq!(blocks[1].header("Original-Recipient"), expected_orcpt);
        if envid.is_some() {
            assert_eq!(names(&blocks[0])[0], "Original-Envelope-Id");
        }
        if orcpt.is_some() {
            assert_eq!(names(&blocks[1])[0], "Original-Recipient");
        }
    }
}

#[test]
fn a_boundary_that_occurs_in_any_part_is_never_used() {
    let mut candidates = ["AAA", "BBB", "CCC", "DDD"].into_iter().map(str::to_owned);
    let chosen = boundary(&[b"text", b"status --BBB", b"x\r\n--AAA\r\n"], || {
        candidates.next().expect("enough candidates")
    });
    assert_eq!(chosen, "CCC");

    let mut candidates = ["AAA"].into_iter().map(str::to_owned);
    assert_eq!(
        boundary(&[b"", b"zzz"], || candidates.next().expect("one")),
        "AAA"
    );
}

#[test]
fn an_original_full_of_boundary_like_lines_comes_back_intact() {
    let original = b"Subject: forwarded report\r\n\
        Content-Type: multipart/report; boundary=\"=_tern_0\"\r\n\
        \r\n\
        --=_tern_0\r\n\
        \r\n\
        --=_tern_\r\n\
        --=_tern_0--\r\n";
    let mut input = input(vec![failed("bob@example.com")]);
    input.original_message = original;
    let (_, top) = built(&input);
    let boundary = top.param("boundary").expect("a boundary");
    assert!(
        boundary.starts_with("=_tern_") && boundary.len() > 20,
        "{boundary}"
    );
    let parts = top.parts();
    assert_eq!(parts.len(), 3);
    assert_eq!(parts[2].body, original);
}
