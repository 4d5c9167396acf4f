//! Reports read by an independent MIME implementation: Python's `email` package. Fails, never
//! skips, when `python3` is missing.

use std::io::Write as _;
use std::process::{Command, Stdio};

use super::*;

/// Prints what Python made of the report on stdin: types, subject, the RFC 3464 fields it
/// found, the returned message's subject, and how many defects it noticed.
const SCRIPT: &str = r#"
import sys, email, email.policy
msg = email.message_from_bytes(sys.stdin.buffer.read(), policy=email.policy.default)
out = [msg.get_content_type(), str(msg.get_param('report-type')), str(msg['Subject'])]
for part in msg.iter_parts():
    kind = part.get_content_type()
    out.append(kind)
    if kind == 'message/delivery-status':
        for block in part.get_payload():
            for key in ('Original-Envelope-Id', 'Reporting-MTA', 'Original-Recipient',
                        'Final-Recipient', 'Action', 'Status', 'Diagnostic-Code'):
                if block[key] is not None:
                    out.append(key + ': ' + str(block[key]))
    elif kind in ('message/rfc822', 'message/global'):
        out.append('returned subject: ' + str(part.get_payload()[0]['Subject']))
defects = [d for p in msg.walk() for d in p.defects]
out.append('defects: ' + str(len(defects)))
print('\n'.join(out))
"#;

fn python_reads(message: &[u8]) -> String {
    let mut child = Command::new("python3")
        .args(["-c", SCRIPT])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3 must be installed for this test (apt-get install python3)");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(message)
        .expect("write the report to python3");
    let output = child.wait_with_output().expect("python3 runs");
    assert!(
        output.status.success(),
        "python3 failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).expect("UTF-8 output")
}

#[test]
fn python_reads_a_failure_report_as_multipart_report_with_its_three_parts() {
    let message = build(&input(vec![failed("bob@example.com")]));
    let expected = "multipart/report\n\
        delivery-status\n\
        Undelivered Mail Returned to Sender\n\
        text/plain\n\
        message/delivery-status\n\
        Reporting-MTA: dns; mx1.tern.test\n\
        Final-Recipient: rfc822; bob@example.com\n\
        Action: failed\n\
        Status: 5.1.1\n\
        Diagnostic-Code: smtp; 550 5.1.1 <bob@example.com>: no such user\n\
        message/rfc822\n\
        returned subject: Hello\n\
        defects: 0\n";
    assert_eq!(python_reads(&message), expected);
}

#[test]
fn python_reads_a_delay_report_with_envid_orcpt_and_the_returned_header() {
    let mut recipient = delayed("carol@example.net");
    recipient.original_recipient = Some("rfc822;Carol@Example.NET");
    let mut input = input(vec![recipient, delivered("dave@example.com")]);
    input.original_envelope_id = Some("QQ314159");
    let expected = "multipart/report\n\
        delivery-status\n\
        Delayed Mail (still being retried)\n\
        text/plain\n\
        message/delivery-status\n\
        Original-Envelope-Id: QQ314159\n\
        Reporting-MTA: dns; mx1.tern.test\n\
        Original-Recipient: rfc822;Carol@Example.NET\n\
        Final-Recipient: rfc822; carol@example.net\n\
        Action: delayed\n\
        Status: 4.4.1\n\
        Diagnostic-Code: x-tern; cannot connect to mx.example.net: connection refused\n\
        Final-Recipient: rfc822; dave@example.com\n\
        Action: delivered\n\
        Status: 2.0.0\n\
        Diagnostic-Code: smtp; 250 2.0.0 <dave@example.com> stored\n\
        text/rfc822-headers\n\
        defects: 0\n";
    assert_eq!(python_reads(&build(&input)), expected);
}

#[test]
fn python_reads_an_internationalised_report_with_an_8bit_original() {
    let mut input = input(vec![failed("用户@例子.广告")]);
    input.original_sender = "аня@пример.рф";
    input.original_message = b"Subject: =?utf-8?q?caf=C3=A9?=\r\n\r\nd\xc3\xa9j\xc3\xa0 vu\r\n";
    let expected = "multipart/report\n\
        delivery-status\n\
        Undelivered Mail Returned to Sender\n\
        text/plain\n\
        message/global-delivery-status\n\
        message/global\n\
        returned subject: café\n\
        defects: 0\n";
    assert_eq!(python_reads(&build(&input)), expected);
}

#[test]
fn python_finds_no_injected_header_in_a_hostile_report() {
    let mut recipient = failed("bob@example.com\r\nX-Injected: 1");
    recipient.diagnostic = Some("smtp; 550 no\r\n\r\n--boundary\r\nX-Injected: 2");
    let mut input = input(vec![recipient]);
    input.original_envelope_id = Some("id\r\nX-Injected: 3");
    let output = python_reads(&build(&input));
    assert!(
        output.starts_with("multipart/report\ndelivery-status\n"),
        "{output}"
    );
    assert!(
        output.contains("Final-Recipient: rfc822; bob@example.com  X-Injected: 1\n"),
        "{output}"
    );
    assert!(
        output.ends_with("message/rfc822\nreturned subject: Hello\ndefects: 0\n"),
        "{output}"
    );
}
