//! Real SMTP clients against the ingress: swaks and Python's smtplib.

use std::process::Command;

use crate::harness::TestIngress;

pub fn require(program: &str) {
    let found = Command::new("sh")
        .arg("-c")
        .arg(format!("command -v {program}"))
        .output()
        .map(|o| o.status.success());
    assert!(
        matches!(found, Ok(true)),
        "{program} is not installed: run `scripts/services.sh up` (it installs the test peers) or apt-get install it"
    );
}

/// Runs a Python script with `args` as `sys.argv[1:]`; asserts it succeeded and returns its
/// standard output.
pub async fn python(script: &str, args: &[String]) -> String {
    require("python3");
    let output = tokio::process::Command::new("python3")
        .arg("-c")
        .arg(script)
        .args(args)
        .output()
        .await
        .expect("run python3");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}

#[tokio::test]
async fn swaks_message_is_committed() {
    require("swaks");
    let ingress = TestIngress::start().await;
    let server = ingress.addr.to_string();
    let output = tokio::process::Command::new("swaks")
        .args([
            "--server",
            &server,
            "--to",
            "someone@tern.test",
            "--from",
            "sender@example.org",
        ])
        .args([
            "--helo",
            "swaks.example",
            "--header",
            "Subject: from swaks",
            "--body",
            "hello from swaks",
        ])
        .output()
        .await
        .expect("run swaks");
    let transcript = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{transcript}");
    assert!(
        transcript.contains("<-  250 2.0.0 Ok: queued as "),
        "{transcript}"
    );
    let body: Vec<u8> = sqlx::query_scalar("SELECT m.body FROM messages m JOIN jobs j ON j.message_id = m.id WHERE j.recipient = 'someone@tern.test'")
        .fetch_one(&ingress.db.pool)
        .await
        .expect("committed");
    let body = String::from_utf8_lossy(&body);
    assert!(
        body.starts_with("Received: from swaks.example ([127.0.0.1])"),
        "{body}"
    );
    assert!(body.contains("Subject: from swaks\r\n"), "{body}");
    assert!(body.contains("hello from swaks"), "{body}");
}

#[tokio::test]
async fn swaks_pipelined_transactions_are_accepted() {
    require("swaks");
    let ingress = TestIngress::start().await;
    let server = ingress.addr.to_string();
    // (Debian's swaks has no BDAT; the transcript tests cover CHUNKING)
    let output = tokio::process::Command::new("swaks")
        .args([
            "--server",
            &server,
            "--to",
            "a@tern.test,b@tern.test",
            "--from",
            "s@example.org",
            "--pipeline",
        ])
        .output()
        .await
        .expect("run swaks");
    let transcript = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{transcript}");
    assert_eq!(ingress.count("SELECT count(*) FROM messages").await, 1);
    assert_eq!(ingress.count("SELECT count(*) FROM jobs").await, 2);
}

#[tokio::test]
async fn swaks_data_with_bare_newlines_is_rejected_whole() {
    require("swaks");
    let ingress = TestIngress::start().await;
    let server = ingress.addr.to_string();
    // --no-data-fixup sends the text as written: LF line ends, and a smuggling-style "\n.\n"
    let output = tokio::process::Command::new("swaks")
        .args([
            "--server",
            &server,
            "--to",
            "a@tern.test",
            "--from",
            "s@example.org",
            "--no-data-fixup",
        ])
        .args([
            "--data",
            "Subject: bare\n\nline\n.\nMAIL FROM:<x@example.org>\r\n.\r\n",
        ])
        .output()
        .await
        .expect("run swaks");
    let transcript = String::from_utf8_lossy(&output.stdout);
    assert!(transcript.contains("<** 554 5.5.2"), "{transcript}");
    assert_eq!(ingress.count("SELECT count(*) FROM messages").await, 0);
}

#[tokio::test]
async fn python_smtplib_sends_utf8_and_8bit_messages() {
    require("python3");
    let ingress = TestIngress::start().await;
    let script = r#"
import smtplib, sys
from email.message import EmailMessage
port = int(sys.argv[1])
with smtplib.SMTP("127.0.0.1", port) as s:
    s.ehlo("python.example")
    assert s.has_extn("smtputf8") and s.has_extn("8bitmime"), s.esmtp_features
    m = EmailMessage()
    m["From"] = "jörg@example.org"
    m["To"] = "zoë@tern.test"
    m["Subject"] = "grüße"
    m.set_content("Hallo Zoë\n")
    refused = s.send_message(m)  # adds SMTPUTF8 and BODY=8BITMIME itself
    assert refused == {}, refused
    refused = s.sendmail("plain@example.org", ["one@tern.test", "two@tern.test"], b"Subject: plain\r\n\r\nbody\r\n")
    assert refused == {}, refused
    try:
        s.sendmail("plain@example.org", ["x@elsewhere.example"], b"Subject: relay\r\n\r\nno\r\n")
        raise SystemExit("relay accepted")
    except smtplib.SMTPRecipientsRefused as e:
        code, text = e.recipients["x@elsewhere.example"]
        assert code == 554 and text.startswith(b"5.7.1"), e.recipients
print("ok")
"#;
    python(script, &[ingress.addr.port().to_string()]).await;
    let utf8: (String, bool) = sqlx::query_as(
        "SELECT j.recipient, m.smtputf8 FROM messages m JOIN jobs j ON j.message_id = m.id WHERE m.mail_from = 'jörg@example.org'",
    )
    .fetch_one(&ingress.db.pool)
    .await
    .expect("utf8 message");
    assert_eq!(utf8, ("zoë@tern.test".to_owned(), true));
    assert_eq!(ingress.count("SELECT count(*) FROM jobs").await, 3);
}
