//! RFC 2920's limits on pipelining, enforced (Postfix's `smtpd_forbid_unauth_pipelining`): a
//! client that sends ahead where it had to wait is closed, and what it sent ahead is not run.

use crate::SessionConfig;
use crate::testing::{Driver, small_config};

const SYNC: &str = "CLOSE 554 5.5.0 Error: SMTP protocol synchronization";

fn strict() -> SessionConfig {
    SessionConfig {
        forbid_unauth_pipelining: true,
        ..small_config()
    }
}

#[test]
fn commands_after_ehlo_in_the_same_write_close_the_session_unread() {
    let mut driver = Driver::new(strict());
    driver.feed(b"EHLO c.example\r\nMAIL FROM:<a@b.example>\r\n");
    assert_eq!(driver.transcript, [SYNC]);
    assert!(driver.closed);
}

#[test]
fn an_esmtp_group_ending_in_data_is_fine_but_content_before_354_is_not() {
    let mut driver = Driver::new(strict());
    driver.feed(b"EHLO c.example\r\n");
    driver.feed(b"MAIL FROM:<a@b.example>\r\nRCPT TO:<c@d.example>\r\nDATA\r\n");
    assert_eq!(
        driver.transcript[1..],
        [
            "SENDER a@b.example",
            "250 2.1.0 Ok",
            "CHECK c@d.example",
            "250 2.1.5 Ok",
            "354 End data with <CR><LF>.<CR><LF>"
        ]
    );
    driver.feed(b"Subject: ok\r\n\r\nbody\r\n.\r\n");
    assert_eq!(driver.messages.len(), 1);

    let mut driver = Driver::new(strict());
    driver.feed(b"EHLO c.example\r\n");
    driver.feed(b"MAIL FROM:<a@b.example>\r\nRCPT TO:<c@d.example>\r\n");
    driver.feed(b"DATA\r\nSubject: smuggled\r\n\r\nbody\r\n.\r\n");
    assert_eq!(driver.last(), SYNC);
    assert!(driver.messages.is_empty(), "nothing sent ahead is queued");
}

#[test]
fn a_helo_session_may_not_pipeline_at_all() {
    let mut driver = Driver::new(strict());
    driver.feed(b"HELO c.example\r\n");
    driver.feed(b"MAIL FROM:<a@b.example>\r\n");
    assert_eq!(driver.last(), "250 2.1.0 Ok");
    driver.feed(b"RCPT TO:<c@d.example>\r\nDATA\r\n");
    assert_eq!(driver.last(), SYNC);
    assert!(
        !driver
            .transcript
            .iter()
            .any(|line| line.starts_with("CHECK"))
    );
}

#[test]
fn a_partial_line_sent_ahead_counts_too_and_off_means_off() {
    let mut driver = Driver::new(strict());
    driver.feed(b"EHLO c.example\r\nMAI");
    assert_eq!(driver.transcript, [SYNC]);

    let mut driver = Driver::new(small_config());
    driver.feed(b"EHLO c.example\r\nMAIL FROM:<a@b.example>\r\n");
    assert_eq!(driver.last(), "250 2.1.0 Ok");
}
