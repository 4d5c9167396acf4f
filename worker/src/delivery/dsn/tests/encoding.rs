//! Hostile and non-ASCII input: injection attempts, 8-bit originals, UTF-8 addresses, long
//! diagnostics.

use super::*;

#[test]
fn line_breaks_in_addresses_replies_and_ids_cannot_start_new_fields() {
    let recipient = DsnRecipient {
        final_recipient: "bob@example.com\r\nX-Injected: 1",
        original_recipient: Some("rfc822;bob@example.com\r\nX-Injected: 2"),
        action: Action::Failed,
        status: "5.1.1\r\n\r\nX-Injected: 3",
        remote_mta: Some("mx.example.com\nX-Injected: 4"),
        diagnostic: Some("smtp; 550 5.1.1 no\r\n\r\nX-Injected: 5\r\n.\r\n"),
        last_attempt: None,
        will_retry_until: None,
    };
    let mut local = delayed("carol@example.net");
    local.diagnostic = Some("x-tern; refused\r\nX-Injected: 6\u{0}\u{7f}\u{85}");
    let mut input = input(vec![recipient, local]);
    input.original_sender = "alice@example.org>\r\nBcc: victim@example.net";
    input.original_envelope_id = Some("id\r\nX-Injected: 7");
    input.queue_id = "q\nX-Injected: 8";
    input.reporting_mta = "mx1\rX-Injected: 9";
    input.message_id_domain = "tern.test\r\nX-Injected: 10";

    let (message, top) = built(&input);
    assert!(message.is_ascii());
    assert_eq!(top.count("Bcc"), 0);
    let parts = top.parts();
    assert_eq!(parts.len(), 3);
    let blocks = blocks(&parts[1].body);
    assert_eq!(blocks.len(), 3);
    for fields in [&top, &parts[0], &parts[1], &parts[2]]
        .into_iter()
        .chain(&blocks)
    {
        for (name, _) in &fields.headers {
            assert!(!name.contains("Injected") && name != "Bcc", "{name}");
        }
    }
    assert_eq!(
        top.header("To"),
        Some("<alice@example.org>  Bcc: victim@example.net>")
    );
    assert_eq!(
        blocks[1].header("Final-Recipient"),
        Some("rfc822; bob@example.com  X-Injected: 1")
    );
    assert_eq!(
        blocks[1].header("Diagnostic-Code"),
        Some("smtp; 550 5.1.1 no    X-Injected: 5  .  ")
    );
    assert!(parts[0].text().contains("refused X-Injected: 6???"));
}

#[test]
fn an_8bit_original_is_returned_verbatim_in_an_8bit_part() {
    let original = b"Subject: caf\xe9\r\nFrom: a@example.org\r\n\r\nd\xe9j\xe0 vu\r\n";
    let mut input = input(vec![failed("bob@example.com")]);
    input.original_message = original;
    let (message, top) = built(&input);
    assert!(!message.is_ascii());
    assert_eq!(top.header("Content-Transfer-Encoding"), Some("8bit"));
    let parts = top.parts();
    assert_eq!(parts[0].header("Content-Transfer-Encoding"), Some("7bit"));
    assert_eq!(parts[1].header("Content-Transfer-Encoding"), Some("7bit"));
    assert_eq!(parts[2].media_type(), "message/rfc822");
    assert_eq!(parts[2].header("Content-Transfer-Encoding"), Some("8bit"));
    assert_eq!(parts[2].body, original);
}

#[test]
fn utf8_addresses_make_an_rfc_6533_report() {
    let mut recipient = failed("用户@例子.广告");
    recipient.original_recipient = Some("rfc822;用户@例子.广告");
    let mut input = input(vec![recipient, delayed("carol@example.net")]);
    input.original_sender = "аня@пример.рф";
    let (message, top) = built(&input);
    assert!(!message.is_ascii());
    assert_eq!(top.header("To"), Some("<аня@пример.рф>"));
    let parts = top.parts();
    assert_eq!(parts[0].param("charset").as_deref(), Some("utf-8"));
    assert!(
        parts[0]
            .text()
            .contains("<用户@例子.广告>: delivery failed")
    );
    assert_eq!(parts[1].media_type(), "message/global-delivery-status");
    assert_eq!(parts[1].header("Content-Transfer-Encoding"), Some("8bit"));
    let blocks = blocks(&parts[1].body);
    assert_eq!(
        blocks[1].header("Final-Recipient"),
        Some("utf-8; 用户@例子.广告")
    );
    assert_eq!(
        blocks[1].header("Original-Recipient"),
        Some("utf-8;用户@例子.广告")
    );
    assert_eq!(
        blocks[2].header("Final-Recipient"),
        Some("rfc822; carol@example.net")
    );
    assert_eq!(parts[2].media_type(), "message/global");
}

#[test]
fn an_smtputf8_original_with_ascii_addresses_still_gets_the_global_types() {
    let mut input = input(vec![delayed("carol@example.net")]);
    input.smtputf8 = true;
    let (_, top) = built(&input);
    let parts = top.parts();
    assert_eq!(parts[1].media_type(), "message/global-delivery-status");
    assert_eq!(parts[2].media_type(), "message/global-headers");
    let blocks = blocks(&parts[1].body);
    assert_eq!(
        blocks[1].header("Final-Recipient"),
        Some("rfc822; carol@example.net")
    );
}

#[test]
fn non_ascii_text_in_an_ascii_report_becomes_question_marks() {
    let mut recipient = failed("bob@example.com");
    recipient.diagnostic = Some("smtp; 550 5.1.1 usuário desconhecido");
    let mut input = input(vec![recipient]);
    input.original_envelope_id = Some("ïd");
    let (message, top) = built(&input);
    assert!(message.is_ascii());
    let blocks = blocks(&top.parts()[1].body);
    assert_eq!(blocks[0].header("Original-Envelope-Id"), Some("?d"));
    assert_eq!(
        blocks[1].header("Diagnostic-Code"),
        Some("smtp; 550 5.1.1 usu?rio desconhecido")
    );
}

#[test]
fn long_diagnostics_are_folded_within_the_line_limits() {
    let words = format!("550 5.7.1 {}", "policy ".repeat(600));
    let solid = format!("550 5.7.1 {}", "x".repeat(3000));
    for reply in [words.as_str(), solid.as_str()] {
        let diagnostic = format!("smtp; {reply}");
        let mut recipient = failed("bob@example.com");
        recipient.diagnostic = Some(&diagnostic);
        let (message, top) = built(&input(vec![recipient]));
        let parts = top.parts();
        let value = blocks(&parts[1].body)[1]
            .header("Diagnostic-Code")
            .expect("a diagnostic")
            .to_owned();
        if reply == words {
            assert_eq!(value, format!("smtp; {reply}"));
            let report = String::from_utf8_lossy(&parts[1].body).into_owned();
            assert!(report.split("\r\n").all(|line| line.len() <= 78));
        } else {
            assert_eq!(
                value.replace(' ', ""),
                format!("smtp;{}", reply.replace(' ', ""))
            );
        }
        assert!(parts[0].text().split("\r\n").all(|line| line.len() <= 998));
        assert!(message.len() > reply.len());
    }
}
