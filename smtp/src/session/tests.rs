//! Whole-session transcripts. Limits, BDAT and the randomised checks live
//! in the submodules.

mod auth;
mod bdat;
mod limits;
mod pipelining;
mod random;
mod starttls;

use super::*;
use crate::testing::{Driver, small_config};
use crate::{Body, Domain, ForwardPath, Mailbox};

fn mailbox(local: &str, domain: &str) -> Mailbox {
    Mailbox {
        local: local.to_string(),
        domain: Domain::Name(domain.to_string()),
    }
}

#[test]
fn every_sender_is_put_to_the_driver_and_a_refused_one_opens_no_transaction() {
    let mut driver = Driver::new(small_config());
    driver.feed(b"EHLO client.example\r\nMAIL FROM:<blocked@example.org>\r\n");
    assert_eq!(
        driver.transcript[1..],
        [
            "SENDER blocked@example.org",
            "550 5.7.1 Sender address rejected"
        ]
    );
    driver.feed(b"RCPT TO:<bob@example.net>\r\n");
    assert_eq!(driver.last(), "503 5.5.1 Need MAIL command");
    driver.feed(b"MAIL FROM:<>\r\n");
    assert_eq!(
        driver.transcript[driver.transcript.len() - 2..],
        ["SENDER <>", "250 2.1.0 Ok"]
    );
}

#[test]
fn greeting_names_the_host_without_an_enhanced_code() {
    let session = Session::new(Arc::new(small_config()));
    assert_eq!(session.greeting().to_string(), "220 mx.test ESMTP Tern");
    assert_eq!(session.helo(), None);
}

#[test]
fn full_session_queues_one_message_and_says_bye() {
    let mut driver = Driver::new(small_config());
    driver.feed(b"EHLO client.example\r\n");
    driver.feed(b"MAIL FROM:<Alice@Example.ORG> BODY=8BITMIME\r\n");
    driver.feed(b"RCPT TO:<bob@example.net>\r\n");
    driver.feed(b"DATA\r\n");
    driver.feed(b"Subject: hi\r\n\r\n..dot\r\n.\r\n");
    driver.feed(b"QUIT\r\n");
    let transcript = driver.transcript[1..].to_vec();
    assert_eq!(
        transcript,
        [
            "SENDER Alice@example.org",
            "250 2.1.0 Ok",
            "CHECK bob@example.net",
            "250 2.1.5 Ok",
            "354 End data with <CR><LF>.<CR><LF>",
            "MESSAGE",
            "250 2.0.0 Ok: queued as Q1",
            "CLOSE 221 2.0.0 mx.test Bye",
        ]
    );
    let [message] = driver.messages.as_slice() else {
        panic!("expected one message");
    };
    let envelope = &message.envelope;
    assert_eq!(envelope.helo, "client.example");
    assert!(envelope.esmtp);
    assert!(!envelope.bdat);
    assert_eq!(
        envelope.from,
        ReversePath::Mailbox(mailbox("Alice", "example.org"))
    );
    assert_eq!(envelope.params.body, Body::EightBitMime);
    assert_eq!(
        envelope.recipients,
        [Recipient {
            path: ForwardPath::Mailbox(mailbox("bob", "example.net")),
            params: Default::default(),
        }]
    );
    assert_eq!(message.body, b"Subject: hi\r\n\r\n.dot\r\n");
}

#[test]
fn pipelined_commands_in_one_buffer_are_answered_in_order() {
    let mut driver = Driver::new(small_config());
    driver.feed(
        b"EHLO c\r\nMAIL FROM:<>\r\nRCPT TO:<one@x.example>\r\nRCPT TO:<reject@x.example>\r\n\
          RCPT TO:<postmaster>\r\nDATA\r\nbody\r\n.\r\nMAIL FROM:<a@b.example>\r\nRSET\r\nQUIT\r\n",
    );
    assert_eq!(
        driver.transcript[1..],
        [
            "SENDER <>",
            "250 2.1.0 Ok",
            "CHECK one@x.example",
            "250 2.1.5 Ok",
            "CHECK reject@x.example",
            "554 5.7.1 Relay access denied",
            "CHECK postmaster",
            "250 2.1.5 Ok",
            "354 End data with <CR><LF>.<CR><LF>",
            "MESSAGE",
            "250 2.0.0 Ok: queued as Q1",
            "SENDER a@b.example",
            "250 2.1.0 Ok",
            "250 2.0.0 Ok",
            "CLOSE 221 2.0.0 mx.test Bye",
        ]
    );
    let recipients = &driver.messages[0].envelope.recipients;
    let paths: Vec<String> = recipients.iter().map(|r| r.path.to_string()).collect();
    assert_eq!(paths, ["one@x.example", "postmaster"]);
    assert_eq!(driver.messages[0].envelope.from, ReversePath::Null);
}

#[test]
fn commands_out_of_sequence_get_503() {
    let table: [(&[u8], &str); 6] = [
        (
            b"MAIL FROM:<a@b.example>\r\n",
            "503 5.5.1 Send HELO/EHLO first",
        ),
        (
            b"EHLO c\r\nRCPT TO:<c@d.example>\r\n",
            "503 5.5.1 Need MAIL command",
        ),
        (
            b"EHLO c\r\nMAIL FROM:<a@b.example>\r\nRSET\r\nRCPT TO:<c@d.example>\r\n",
            "503 5.5.1 Need MAIL command",
        ),
        (
            b"EHLO c\r\nMAIL FROM:<a@b.example>\r\nMAIL FROM:<a@b.example>\r\n",
            "503 5.5.1 Nested MAIL command",
        ),
        (
            b"EHLO c\r\nMAIL FROM:<a@b.example>\r\nRCPT TO:<reject@d.example>\r\nDATA\r\n",
            "554 5.5.1 No valid recipients",
        ),
        (
            b"EHLO c\r\nMAIL FROM:<a@b.example>\r\nRCPT TO:<c@d.example>\r\nDATA\r\n.\r\nDATA\r\n",
            "503 5.5.1 Need MAIL command",
        ),
    ];
    for (input, reply) in table {
        let mut driver = Driver::new(small_config());
        driver.feed(input);
        assert_eq!(driver.last(), reply, "{:?}", String::from_utf8_lossy(input));
    }
}

#[test]
fn helo_sessions_are_marked_as_not_esmtp() {
    let mut driver = Driver::new(small_config());
    driver.feed(
        b"HELO old\r\nMAIL FROM:<a@b.example>\r\nRCPT TO:<c@d.example>\r\nDATA\r\nx\r\n.\r\n",
    );
    assert_eq!(driver.last(), "250 2.0.0 Ok: queued as Q1");
    assert!(!driver.messages[0].envelope.esmtp);
    assert_eq!(driver.messages[0].envelope.helo, "old");
}

#[test]
fn failed_store_answers_the_drivers_reply_and_ends_the_transaction() {
    let mut driver = Driver::new(small_config());
    driver.store_fails = true;
    driver
        .feed(b"EHLO c\r\nMAIL FROM:<a@b.example>\r\nRCPT TO:<c@d.example>\r\nDATA\r\nx\r\n.\r\n");
    assert_eq!(
        driver.last(),
        "451 4.3.0 Queue temporarily unavailable, try again later"
    );
    assert!(!driver.session.in_transaction());
    driver.feed(b"MAIL FROM:<a@b.example>\r\n");
    assert_eq!(driver.last(), "250 2.1.0 Ok");
}

#[test]
fn in_transaction_runs_from_mail_to_the_end_of_data() {
    let mut session = Session::new(Arc::new(small_config()));
    let mut input: &[u8] =
        b"EHLO c\r\nMAIL FROM:<a@b.example>\r\nRCPT TO:<c@d.example>\r\nDATA\r\nx\r\n.\r\n";
    let mut seen = Vec::new();
    while !input.is_empty() {
        let (used, step) = session.process(input);
        input = &input[used..];
        seen.push(session.in_transaction());
        match step {
            Step::CheckSender(_) => {
                session.sender_verdict(Verdict::Accept);
            }
            Step::CheckRecipient(_) => {
                session.recipient_verdict(Verdict::Accept);
            }
            Step::Message(_) => {
                seen.push(session.in_transaction());
                session.message_result(Ok("Q".to_string()));
                seen.push(session.in_transaction());
            }
            _ => {}
        }
    }
    // EHLO, MAIL (its sender still to be judged), RCPT, DATA, end of data (+ before and after
    // the result).
    assert_eq!(seen, [false, false, true, true, true, true, false]);
}

#[test]
fn nothing_is_processed_while_the_driver_owes_an_answer() {
    let mut session = Session::new(Arc::new(small_config()));
    let input = b"EHLO c\r\nMAIL FROM:<a@b.example>\r\nRCPT TO:<c@d.example>\r\nNOOP\r\n";
    let (a, _) = session.process(input);
    let (b, step) = session.process(&input[a..]);
    assert!(matches!(step, Step::CheckSender(_)));
    assert_eq!(session.process(&input[a + b..]), (0, Step::NeedMore));
    session.sender_verdict(Verdict::Accept);
    let (c, step) = session.process(&input[a + b..]);
    assert!(matches!(step, Step::CheckRecipient(_)));
    let rest = &input[a + b + c..];
    assert_eq!(session.process(rest), (0, Step::NeedMore));
    let reply = session.recipient_verdict(Verdict::Accept);
    assert_eq!(reply.to_string(), "250 2.1.5 Ok");
    assert_eq!(session.process(rest), (6, Step::Reply(Reply::ok())));
}

#[test]
fn a_verdict_with_nothing_pending_is_refused() {
    let mut session = Session::new(Arc::new(small_config()));
    let reply = session.recipient_verdict(Verdict::Accept);
    assert_eq!(reply.to_string(), "503 5.5.1 No recipient pending");
}

#[test]
fn input_after_quit_is_swallowed() {
    let mut session = Session::new(Arc::new(small_config()));
    let (used, step) = session.process(b"QUIT\r\nNOOP\r\n");
    assert_eq!(used, 6);
    assert!(matches!(step, Step::Close(_)));
    assert_eq!(session.process(b"NOOP\r\n"), (6, Step::NeedMore));
}

#[test]
fn each_command_line_is_reported_once_by_verb_and_message_data_is_not() {
    let mut session = Session::new(Arc::new(small_config()));
    let mut verbs = Vec::new();
    let mut input: &[u8] = b"EHLO c\r\nXYZZY\r\nMAIL FROM:<>\r\nRCPT TO:<a@x.example>\r\n";
    while !input.is_empty() {
        let (used, step) = session.process(input);
        input = &input[used..];
        verbs.extend(session.take_command().map(Verb::label));
        assert_eq!(session.take_command(), None, "taken once");
        match step {
            Step::CheckSender(_) => drop(session.sender_verdict(Verdict::Accept)),
            Step::CheckRecipient(_) => drop(session.recipient_verdict(Verdict::Accept)),
            _ => {}
        }
    }
    let mut input: &[u8] = b"DATA\r\nQUIT\r\n.\r\n";
    while !input.is_empty() {
        let (used, step) = session.process(input);
        input = &input[used..];
        verbs.extend(session.take_command().map(Verb::label));
        if let Step::Message(_) = step {
            let _ = session.message_result(Ok("Q1".to_owned()));
        }
    }
    assert_eq!(verbs, ["ehlo", "other", "mail", "rcpt", "data"]);
}

#[test]
fn invalid_helo_names_are_refused_only_when_asked() {
    let strict = SessionConfig {
        reject_invalid_helo: true,
        ..small_config()
    };
    for name in [
        "mx.example.org",
        "mx.example.org.",
        "[192.0.2.1]",
        "[IPv6:2001:db8::1]",
        "localhost",
    ] {
        let mut driver = Driver::new(strict.clone());
        driver.feed(format!("HELO {name}\r\n").as_bytes());
        assert_eq!(driver.last(), "250 mx.test", "{name}");
    }
    for name in ["bad_name!", "-x.example", "[300.1.1.1]", "a..b"] {
        let mut driver = Driver::new(strict.clone());
        driver.feed(format!("EHLO {name}\r\n").as_bytes());
        assert_eq!(
            driver.last(),
            format!("501 5.5.2 <{name}>: Helo command rejected: Invalid name"),
            "{name}"
        );
        assert_eq!(driver.session.helo(), None, "{name}");
    }
    let mut driver = Driver::new(small_config());
    driver.feed(b"HELO bad_name!\r\n");
    assert_eq!(driver.last(), "250 mx.test");
}
