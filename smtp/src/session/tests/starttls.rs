//! STARTTLS: when it is offered and accepted, and that nothing survives it.

use super::*;

fn offering_tls() -> Driver {
    let mut driver = Driver::new(small_config());
    driver.session = Session::new(Arc::clone(&driver.config)).with_tls(TlsState::Offered);
    driver
}

fn ehlo_keywords(driver: &mut Driver) -> Vec<String> {
    driver.transcript.clear();
    driver.feed(b"EHLO client\r\n");
    driver
        .transcript
        .join("\n")
        .lines()
        .map(str::to_string)
        .collect()
}

#[test]
fn starttls_is_advertised_only_while_it_can_be_used() {
    let mut plain = Driver::new(small_config());
    assert!(
        !ehlo_keywords(&mut plain)
            .iter()
            .any(|l| l.contains("STARTTLS"))
    );

    let mut driver = offering_tls();
    assert!(ehlo_keywords(&mut driver).contains(&"250-STARTTLS".to_string()));
    driver.feed(b"STARTTLS\r\n");
    driver.handshake();
    assert!(driver.session.tls_active());
    assert!(
        !ehlo_keywords(&mut driver)
            .iter()
            .any(|l| l.contains("STARTTLS"))
    );

    let mut implicit = Driver::new(small_config());
    implicit.session = Session::new(Arc::clone(&implicit.config)).with_tls(TlsState::Active);
    assert!(
        !ehlo_keywords(&mut implicit)
            .iter()
            .any(|l| l.contains("STARTTLS"))
    );
}

#[test]
fn starttls_replies_follow_the_state() {
    let cases: [(TlsState, &[u8], &str); 6] = [
        (
            TlsState::Offered,
            b"STARTTLS\r\n",
            "STARTTLS 220 2.0.0 Ready to start TLS",
        ),
        (
            TlsState::Offered,
            b"starttls\r\n",
            "STARTTLS 220 2.0.0 Ready to start TLS",
        ),
        (
            TlsState::Offered,
            b"STARTTLS now\r\n",
            "501 5.5.4 Syntax: STARTTLS",
        ),
        (
            TlsState::Unavailable,
            b"STARTTLS\r\n",
            "502 5.5.1 Command not implemented",
        ),
        (
            TlsState::Active,
            b"STARTTLS\r\n",
            "503 5.5.1 TLS already active",
        ),
        (
            TlsState::Offered,
            b"MAIL FROM:<a@b.example>\r\nSTARTTLS\r\n",
            "503 5.5.1 MAIL transaction in progress",
        ),
    ];
    for (tls, input, expected) in cases {
        let mut driver = Driver::new(small_config());
        driver.session = Session::new(Arc::clone(&driver.config)).with_tls(tls);
        driver.feed(b"EHLO client\r\n");
        driver.feed(input);
        assert_eq!(driver.last(), expected, "{tls:?} {input:?}");
    }
}

#[test]
fn starttls_twice_is_refused_after_the_handshake() {
    let mut driver = offering_tls();
    driver.feed(b"EHLO client\r\nSTARTTLS\r\n");
    driver.handshake();
    driver.feed(b"EHLO client\r\nSTARTTLS\r\n");
    assert_eq!(driver.last(), "503 5.5.1 TLS already active");
}

/// CVE-2011-0411: commands sent in the same packet as STARTTLS arrive in
/// plaintext and must never be executed, whatever the split.
#[test]
fn commands_pipelined_behind_starttls_are_discarded_at_every_split() {
    let wire: &[u8] =
        b"EHLO client\r\nSTARTTLS\r\nMAIL FROM:<evil@x.example>\r\nRCPT TO:<a@b.example>\r\n";
    for split in 0..=wire.len() {
        let mut driver = offering_tls();
        driver.feed_all(&[&wire[..split], &wire[split..]]);
        assert_eq!(
            driver.last(),
            "STARTTLS 220 2.0.0 Ready to start TLS",
            "split {split}"
        );
        driver.handshake();
        driver.feed(b"RCPT TO:<a@b.example>\r\n");
        assert_eq!(
            driver.last(),
            "503 5.5.1 Need MAIL command",
            "split {split}"
        );
    }
}

#[test]
fn the_handshake_forgets_helo_and_the_half_read_line() {
    let mut driver = offering_tls();
    driver.feed(b"EHLO before\r\nSTARTTLS\r\nMAIL FROM:<half");
    driver.handshake();
    assert_eq!(driver.session.helo(), None);
    driver.feed(b"MAIL FROM:<a@b.example>\r\n");
    assert_eq!(driver.last(), "503 5.5.1 Send HELO/EHLO first");
    driver.feed(b"EHLO after\r\nMAIL FROM:<a@b.example>\r\n");
    assert_eq!(driver.last(), "250 2.1.0 Ok");
    assert_eq!(driver.session.helo(), Some("after"));
}
