//! AUTH in the session: when it is offered, the SASL exchange over command lines, every reply
//! code of RFC 4954, and what authentication changes for MAIL. The test driver accepts the
//! password `secret`, answers 454 for `locked` and refuses senders whose local part is `other…`.

use super::*;
use crate::testing::XorShift;

const PLAIN_OK: &str = "AGFsaWNlQGV4YW1wbGUub3JnAHNlY3JldA==";
const PLAIN_WRONG: &str = "AGFsaWNlQGV4YW1wbGUub3JnAHdyb25n";
const PLAIN_LOCKED: &str = "AGFsaWNlQGV4YW1wbGUub3JnAGxvY2tlZA==";
const LOGIN_USER: &str = "YWxpY2VAZXhhbXBsZS5vcmc=";
const LOGIN_PASSWORD: &str = "c2VjcmV0";

fn session(tls: TlsState, policy: AuthPolicy) -> Driver {
    let mut driver = Driver::new(small_config());
    driver.session = Session::new(Arc::clone(&driver.config))
        .with_tls(tls)
        .with_auth(policy);
    driver.feed(b"EHLO client\r\n");
    driver
}

const OFFERED: AuthPolicy = AuthPolicy {
    offered: true,
    required: false,
};
const SUBMISSION: AuthPolicy = AuthPolicy {
    offered: true,
    required: true,
};

fn advertises_auth(driver: &Driver) -> bool {
    driver
        .transcript
        .iter()
        .any(|reply| reply.contains("AUTH PLAIN LOGIN"))
}

#[test]
fn auth_is_advertised_only_under_tls_on_listeners_that_take_it() {
    assert!(advertises_auth(&session(TlsState::Active, OFFERED)));
    assert!(!advertises_auth(&session(TlsState::Offered, OFFERED)));
    assert!(!advertises_auth(&session(TlsState::Unavailable, OFFERED)));
    assert!(!advertises_auth(&session(
        TlsState::Active,
        AuthPolicy::default()
    )));

    // After STARTTLS it appears.
    let mut driver = session(TlsState::Offered, OFFERED);
    driver.feed(b"STARTTLS\r\n");
    driver.handshake();
    driver.transcript.clear();
    driver.feed(b"EHLO client\r\n");
    assert!(advertises_auth(&driver));
}

#[test]
fn every_auth_reply() {
    let active = TlsState::Active;
    let cases: [(TlsState, AuthPolicy, String, &[&str]); 12] = [
        (
            active,
            OFFERED,
            format!("AUTH PLAIN {PLAIN_OK}\r\n"),
            &[
                "AUTHENTICATE alice@example.org",
                "235 2.7.0 Authentication successful",
            ],
        ),
        (
            active,
            OFFERED,
            format!("AUTH PLAIN\r\n{PLAIN_OK}\r\n"),
            &[
                "334 ",
                "AUTHENTICATE alice@example.org",
                "235 2.7.0 Authentication successful",
            ],
        ),
        (
            active,
            OFFERED,
            format!("auth login\r\n{LOGIN_USER}\r\n{LOGIN_PASSWORD}\r\n"),
            &[
                "334 VXNlcm5hbWU6",
                "334 UGFzc3dvcmQ6",
                "AUTHENTICATE alice@example.org",
                "235 2.7.0 Authentication successful",
            ],
        ),
        (
            active,
            OFFERED,
            format!("AUTH LOGIN {LOGIN_USER}\r\n{LOGIN_PASSWORD}\r\n"),
            &[
                "334 UGFzc3dvcmQ6",
                "AUTHENTICATE alice@example.org",
                "235 2.7.0 Authentication successful",
            ],
        ),
        (
            active,
            OFFERED,
            format!("AUTH PLAIN {PLAIN_WRONG}\r\n"),
            &[
                "AUTHENTICATE alice@example.org",
                "535 5.7.8 Authentication credentials invalid",
            ],
        ),
        (
            active,
            OFFERED,
            format!("AUTH PLAIN {PLAIN_LOCKED}\r\n"),
            &[
                "AUTHENTICATE alice@example.org",
                "454 4.7.0 Temporary authentication failure, try again later",
            ],
        ),
        (
            active,
            OFFERED,
            "AUTH PLAIN AGFsaWNl!!!\r\n".into(),
            &["501 5.5.2 Cannot decode the authentication response"],
        ),
        (
            active,
            OFFERED,
            "AUTH LOGIN\r\n*\r\n".into(),
            &["334 VXNlcm5hbWU6", "501 5.0.0 Authentication cancelled"],
        ),
        (
            active,
            OFFERED,
            "AUTH CRAM-MD5\r\n".into(),
            &["504 5.5.4 Unrecognized authentication mechanism"],
        ),
        (
            TlsState::Offered,
            OFFERED,
            format!("AUTH PLAIN {PLAIN_OK}\r\n"),
            &["538 5.7.11 Encryption required for requested authentication mechanism"],
        ),
        (
            active,
            AuthPolicy::default(),
            format!("AUTH PLAIN {PLAIN_OK}\r\n"),
            &["502 5.5.1 Command not implemented"],
        ),
        (
            active,
            OFFERED,
            "AUTH\r\n".into(),
            &["501 5.5.4 Syntax: AUTH mechanism [initial-response]"],
        ),
    ];
    for (tls, policy, input, expected) in cases {
        let mut driver = session(tls, policy);
        driver.transcript.clear();
        driver.feed(input.as_bytes());
        assert_eq!(driver.transcript, expected, "{input:?}");
        // The session is back in command mode either way.
        driver.feed(b"NOOP\r\n");
        assert_eq!(driver.last(), "250 2.0.0 Ok", "{input:?}");
    }
}

#[test]
fn auth_twice_or_inside_a_transaction_is_a_sequence_error() {
    let mut driver = session(TlsState::Active, OFFERED);
    driver.feed(b"MAIL FROM:<a@example.org>\r\n");
    driver.feed(format!("AUTH PLAIN {PLAIN_OK}\r\n").as_bytes());
    assert_eq!(
        driver.last(),
        "503 5.5.1 AUTH not permitted during a mail transaction"
    );
    driver.feed(b"RSET\r\n");
    driver.feed(format!("AUTH PLAIN {PLAIN_OK}\r\n").as_bytes());
    assert_eq!(driver.last(), "235 2.7.0 Authentication successful");
    assert_eq!(driver.session.authenticated(), Some("alice@example.org"));
    driver.feed(format!("AUTH PLAIN {PLAIN_OK}\r\n").as_bytes());
    assert_eq!(driver.last(), "503 5.5.1 Already authenticated");
    // A failed AUTH leaves the session unauthenticated and AUTH may be tried again.
    let mut driver = session(TlsState::Active, OFFERED);
    driver.feed(format!("AUTH PLAIN {PLAIN_WRONG}\r\n").as_bytes());
    assert_eq!(driver.session.authenticated(), None);
    driver.feed(format!("AUTH PLAIN {PLAIN_OK}\r\n").as_bytes());
    assert_eq!(driver.last(), "235 2.7.0 Authentication successful");
}

#[test]
fn submission_needs_auth_before_mail_and_checks_the_sender() {
    let mut driver = session(TlsState::Active, SUBMISSION);
    driver.feed(b"MAIL FROM:<alice@example.org>\r\n");
    assert_eq!(driver.last(), "530 5.7.0 Authentication required");
    driver.feed(format!("AUTH PLAIN {PLAIN_OK}\r\n").as_bytes());
    driver.transcript.clear();
    driver.feed(b"MAIL FROM:<other@example.org>\r\nRCPT TO:<x@example.net>\r\n");
    assert_eq!(
        driver.transcript,
        [
            "SENDER other@example.org",
            "553 5.7.1 <other@example.org>: Sender address not owned by the authenticated user",
            "503 5.5.1 Need MAIL command",
        ]
    );
    driver.transcript.clear();
    driver.feed(b"MAIL FROM:<alice@example.org>\r\nRCPT TO:<x@example.net>\r\nDATA\r\nhi\r\n.\r\n");
    assert_eq!(
        driver.transcript,
        [
            "SENDER alice@example.org",
            "250 2.1.0 Ok",
            "CHECK x@example.net",
            "250 2.1.5 Ok",
            "354 End data with <CR><LF>.<CR><LF>",
            "MESSAGE",
            "250 2.0.0 Ok: queued as Q1",
        ]
    );
}

#[test]
fn unauthenticated_mail_on_a_listener_that_only_offers_auth_is_not_checked_for_ownership() {
    let mut driver = session(TlsState::Active, OFFERED);
    driver.feed(b"MAIL FROM:<other@example.org>\r\n");
    assert_eq!(
        driver.transcript.last().map(String::as_str),
        Some("250 2.1.0 Ok")
    );
}

#[test]
fn a_sasl_exchange_split_anywhere_gives_the_same_transcript() {
    let input = format!(
        "AUTH LOGIN\r\n{LOGIN_USER}\r\n{LOGIN_PASSWORD}\r\nMAIL FROM:<alice@example.org>\r\n"
    );
    let mut whole = session(TlsState::Active, SUBMISSION);
    whole.feed(input.as_bytes());
    let mut random = XorShift::new(4954);
    for _ in 0..200 {
        let mut split = session(TlsState::Active, SUBMISSION);
        let mut rest = input.as_bytes();
        while !rest.is_empty() {
            let n = 1 + random.below(rest.len());
            split.feed(&rest[..n]);
            rest = &rest[n..];
        }
        assert_eq!(split.transcript, whole.transcript);
    }
    assert_eq!(whole.last(), "250 2.1.0 Ok");
}
