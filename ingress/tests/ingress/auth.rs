//! SMTP AUTH against the in-process ingress over real TLS, with users in the test's database:
//! every reply code of the issue, submission rules, and real clients (swaks, smtplib).

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use tern_common::users::{LockoutPolicy, SenderRule, UserStore};
use tern_ingress::ListenerKind;
use tern_testkit::{SmtpClient, TestReply};
use tokio::process::Command;

use crate::harness::{TestIngress, queue_id, send_message};
use crate::peers::{python, require};
use crate::tls::{SERVER_NAME, start_tls_ingress, starttls_client, stored_body, swaks_verified};

pub const LOGIN: &str = "alice@example.org";
pub const PASSWORD: &str = "correct horse battery";

/// Adds `alice@example.org`, who may also send as anyone `@alice.example`.
pub async fn add_alice(ingress: &TestIngress) {
    UserStore::new(ingress.db.pool.clone(), LockoutPolicy::default())
        .add(
            LOGIN,
            PASSWORD,
            &[SenderRule::parse("@alice.example").expect("rule")],
        )
        .await
        .expect("add alice");
}

pub fn plain(login: &str, password: &str) -> String {
    STANDARD.encode(format!("\0{login}\0{password}"))
}

pub fn line(reply: &TestReply) -> String {
    format!("{} {}", reply.code, reply.text())
}

#[tokio::test]
async fn submission_after_auth_every_reply_code() {
    let (ingress, _mount, certificate) = start_tls_ingress(&[]).await;
    add_alice(&ingress).await;
    let addr = ingress.addr_of(ListenerKind::Submission);

    // In plain text AUTH is neither advertised nor accepted.
    let (mut plain_client, _) = SmtpClient::connect(addr).await;
    let ehlo = plain_client.command("EHLO client.example").await;
    assert!(
        !ehlo.lines.iter().any(|l| l.starts_with("AUTH")),
        "{ehlo:?}"
    );
    let reply = plain_client
        .command(&format!("AUTH PLAIN {}", plain(LOGIN, PASSWORD)))
        .await;
    assert_eq!(
        line(&reply),
        "538 5.7.11 Encryption required for requested authentication mechanism"
    );

    let (mut client, ehlo) = starttls_client(addr, &certificate).await;
    assert!(
        ehlo.lines.iter().any(|l| l == "AUTH PLAIN LOGIN"),
        "{ehlo:?}"
    );
    let steps: [(String, &str); 6] = [
        (
            "MAIL FROM:<alice@example.org>".into(),
            "530 5.7.0 Authentication required",
        ),
        (
            format!("AUTH PLAIN {}", plain(LOGIN, "wrong password")),
            "535 5.7.8 Authentication credentials invalid",
        ),
        (
            format!("AUTH PLAIN {}", plain("nobody@example.org", PASSWORD)),
            "535 5.7.8 Authentication credentials invalid",
        ),
        (
            "AUTH PLAIN not*base64".into(),
            "501 5.5.2 Cannot decode the authentication response",
        ),
        (
            "AUTH DIGEST-MD5".into(),
            "504 5.5.4 Unrecognized authentication mechanism",
        ),
        (
            // Logins are case-insensitive.
            format!("AUTH PLAIN {}", plain("Alice@Example.ORG", PASSWORD)),
            "235 2.7.0 Authentication successful",
        ),
    ];
    for (command, expected) in steps {
        assert_eq!(line(&client.command(&command).await), expected, "{command}");
    }
    let after: [(&str, &str); 4] = [
        ("AUTH LOGIN", "503 5.5.1 Already authenticated"),
        (
            "MAIL FROM:<mallory@example.net>",
            "553 5.7.1 <mallory@example.net>: Sender address not owned by the authenticated user",
        ),
        ("MAIL FROM:<sales@alice.example>", "250 2.1.0 Ok"),
        ("AUTH LOGIN", "503 5.5.1 Already authenticated"),
    ];
    for (command, expected) in after {
        assert_eq!(line(&client.command(command).await), expected, "{command}");
    }
    assert_eq!(client.command("RSET").await.code, 250);
    // Authenticated users relay to any domain.
    let reply = send_message(
        &mut client,
        LOGIN,
        &["friend@elsewhere.example"],
        b"Subject: submitted\r\n\r\nhello\r\n",
    )
    .await;
    let id = queue_id(&reply);
    let body = stored_body(&ingress, &id).await;
    assert!(body.contains(" with ESMTPSA id "), "{body}");
    // RFC 6409: the missing Message-ID and Date were added, right below Received:.
    let (trace, rest) = body.split_once("\r\nMessage-ID: ").expect("a Message-ID");
    assert!(trace.starts_with("Received: "), "{body}");
    assert!(
        rest.starts_with(&format!("<{id}@mx.tern.test>\r\nDate: ")),
        "{body}"
    );

    // A message that has both keeps its own and gets no second one.
    let reply = send_message(
        &mut client,
        LOGIN,
        &["friend@elsewhere.example"],
        b"Message-ID: <own@alice.example>\r\nDate: Mon, 23 Nov 2026 10:00:00 +0000\r\nSubject: complete\r\n\r\nhello\r\n",
    )
    .await;
    let body = stored_body(&ingress, &queue_id(&reply)).await;
    assert_eq!(body.matches("Message-ID:").count(), 1, "{body}");
    assert_eq!(body.matches("\r\nDate:").count(), 1, "{body}");
    assert!(body.contains("Message-ID: <own@alice.example>"), "{body}");
}

#[tokio::test]
async fn auth_inside_a_transaction_is_refused() {
    let (ingress, _mount, certificate) = start_tls_ingress(&[]).await;
    add_alice(&ingress).await;
    // The port 25 role offers AUTH under TLS but does not require it.
    let (mut client, ehlo) = starttls_client(ingress.addr, &certificate).await;
    assert!(
        ehlo.lines.iter().any(|l| l == "AUTH PLAIN LOGIN"),
        "{ehlo:?}"
    );
    assert_eq!(client.command("MAIL FROM:<x@example.net>").await.code, 250);
    let reply = client
        .command(&format!("AUTH PLAIN {}", plain(LOGIN, PASSWORD)))
        .await;
    assert_eq!(
        line(&reply),
        "503 5.5.1 AUTH not permitted during a mail transaction"
    );
    // Unauthenticated, relaying is still refused.
    let reply = client.command("RCPT TO:<someone@elsewhere.example>").await;
    assert_eq!(reply.code, 554, "{reply:?}");
}

#[tokio::test]
async fn login_mechanism_and_cancel_over_implicit_tls() {
    let (ingress, _mount, certificate) = start_tls_ingress(&[]).await;
    add_alice(&ingress).await;
    let addr = ingress.addr_of(ListenerKind::Submissions);
    let (mut client, _) = SmtpClient::connect_tls(addr, SERVER_NAME, &certificate.cert_pem)
        .await
        .expect("TLS");
    assert_eq!(client.command("EHLO client.example").await.code, 250);
    assert_eq!(
        line(&client.command("AUTH LOGIN").await),
        "334 VXNlcm5hbWU6"
    );
    assert_eq!(
        line(&client.command("*").await),
        "501 5.0.0 Authentication cancelled"
    );
    assert_eq!(
        line(&client.command("AUTH LOGIN").await),
        "334 VXNlcm5hbWU6"
    );
    assert_eq!(
        line(&client.command(&STANDARD.encode(LOGIN)).await),
        "334 UGFzc3dvcmQ6"
    );
    assert_eq!(
        line(&client.command(&STANDARD.encode(PASSWORD)).await),
        "235 2.7.0 Authentication successful"
    );
    assert_eq!(
        client.command("MAIL FROM:<alice@example.org>").await.code,
        250
    );
}

#[tokio::test]
async fn swaks_authenticates_on_587_and_465() {
    require("swaks");
    let (ingress, mount, _) = start_tls_ingress(&[]).await;
    add_alice(&ingress).await;
    let ca = mount.cert().display().to_string();
    let cases = [
        (
            ListenerKind::Submission,
            "--tls",
            "PLAIN",
            "via587@elsewhere.example",
        ),
        (
            ListenerKind::Submissions,
            "--tlsc",
            "LOGIN",
            "via465@elsewhere.example",
        ),
    ];
    for (kind, mode, mechanism, recipient) in cases {
        let auth = [
            "--auth",
            mechanism,
            "--auth-user",
            LOGIN,
            "--auth-password",
            PASSWORD,
        ];
        let envelope = ["--from", LOGIN, "--to", recipient];
        let transcript = swaks_verified(
            ingress.addr_of(kind),
            mode,
            &ca,
            &[&auth[..], &envelope].concat(),
        )
        .await;
        assert!(
            transcript.contains("235 2.7.0 Authentication successful"),
            "{transcript}"
        );
        assert!(transcript.contains("Ok: queued as"), "{transcript}");
    }
    // And a wrong password is refused by swaks' own account.
    let server = ingress.addr_of(ListenerKind::Submission).to_string();
    let output = Command::new("swaks")
        .args(["--server", &server, "--tls", "--auth", "PLAIN"])
        .args(["--auth-user", LOGIN, "--auth-password", "not the password"])
        .args(["--from", LOGIN, "--to", "x@elsewhere.example"])
        .output()
        .await
        .expect("run swaks");
    let transcript = String::from_utf8_lossy(&output.stdout);
    assert!(!output.status.success(), "{transcript}");
    assert!(transcript.contains("535 5.7.8"), "{transcript}");
    assert_eq!(
        ingress
            .count("SELECT count(*) FROM jobs WHERE recipient LIKE 'via%@elsewhere.example'")
            .await,
        2
    );
}

#[tokio::test]
async fn python_smtplib_logs_in_on_587_and_465() {
    require("python3");
    let (ingress, mount, _) = start_tls_ingress(&[]).await;
    add_alice(&ingress).await;
    let script = r#"
import smtplib, ssl, socket, sys
from email.message import EmailMessage
ca, name, login, password, port587, port465 = sys.argv[1:7]
context = ssl.create_default_context(cafile=ca)

def message(to):
    m = EmailMessage()
    m["From"], m["To"], m["Subject"] = login, to, "from smtplib"
    m.set_content("hello\n")
    return m

with smtplib.SMTP("127.0.0.1", int(port587)) as s:
    s._host = name  # verify the certificate's name while connecting to 127.0.0.1
    s.ehlo("python.example")
    try:
        s.login(login, password)
        raise SystemExit("AUTH accepted before STARTTLS")
    except smtplib.SMTPNotSupportedError:
        pass
    s.starttls(context=context)
    s.ehlo("python.example")
    try:
        s.login(login, "wrong password")
        raise SystemExit("wrong password accepted")
    except smtplib.SMTPAuthenticationError as e:
        assert e.smtp_code == 535, e
    s.login(login, password)
    assert s.send_message(message("py587@elsewhere.example")) == {}

class Named(smtplib.SMTP_SSL):
    def _get_socket(self, host, port, timeout):
        return self.context.wrap_socket(socket.create_connection((host, port), timeout), server_hostname=name)

with Named("127.0.0.1", int(port465), context=context) as s:
    s.login(login, password)
    assert s.send_message(message("py465@elsewhere.example")) == {}
print("ok")
"#;
    let args = [
        mount.cert().display().to_string(),
        SERVER_NAME.to_string(),
        LOGIN.to_string(),
        PASSWORD.to_string(),
        ingress.addr_of(ListenerKind::Submission).port().to_string(),
        ingress
            .addr_of(ListenerKind::Submissions)
            .port()
            .to_string(),
    ];
    python(script, &args).await;
    assert_eq!(
        ingress
            .count("SELECT count(*) FROM jobs WHERE recipient LIKE 'py%@elsewhere.example'")
            .await,
        2
    );
}
