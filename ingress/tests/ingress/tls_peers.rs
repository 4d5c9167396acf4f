//! Real TLS clients against each listener role: `openssl s_client`, swaks and Python's smtplib.
//! Every client verifies the server against the test's own certificate.

use tern_ingress::ListenerKind;
use tokio::io::AsyncWriteExt;
use tokio::process::Command;

use crate::auth::{LOGIN, PASSWORD, add_alice};
use crate::harness::TestIngress;
use crate::peers::{python, require};
use crate::tls::{SERVER_NAME, start_tls_ingress, stored_body, swaks_verified};

/// Runs `openssl s_client` against `kind`'s listener (STARTTLS unless it is the 465 role) with
/// `extra` options, says QUIT and returns (success, everything it printed).
async fn s_client(
    ingress: &TestIngress,
    kind: ListenerKind,
    ca_file: &str,
    extra: &[&str],
) -> (bool, String) {
    require("openssl");
    let connect = ingress.addr_of(kind).to_string();
    let mut command = Command::new("openssl");
    command.args(["s_client", "-connect", &connect, "-servername", SERVER_NAME]);
    command.args([
        "-CAfile",
        ca_file,
        "-verify_return_error",
        "-brief",
        "-crlf",
        "-ign_eof",
    ]);
    if kind != ListenerKind::Submissions {
        command.args(["-starttls", "smtp"]);
    }
    command.args(extra);
    let mut child = command
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run openssl");
    let mut stdin = child.stdin.take().expect("stdin");
    stdin
        .write_all(b"NOOP\nQUIT\n")
        .await
        .expect("write to openssl");
    drop(stdin);
    let output = child.wait_with_output().await.expect("openssl finishes");
    let printed = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.success(), printed)
}

#[tokio::test]
async fn openssl_s_client_negotiates_tls_on_every_role() {
    // s_client writes its standard input (NOOP, QUIT) in one go, in a session that has not
    // said EHLO since the handshake: unauthorised pipelining, which this test is not about.
    let (ingress, mount, _) = start_tls_ingress(&["--forbid-unauth-pipelining", "false"]).await;
    let ca = mount.cert().display().to_string();
    for kind in [
        ListenerKind::Smtp,
        ListenerKind::Submission,
        ListenerKind::Submissions,
    ] {
        let (ok, printed) = s_client(&ingress, kind, &ca, &[]).await;
        assert!(ok, "{}: {printed}", kind.label());
        assert!(
            printed.contains("Protocol version: TLSv1.3"),
            "{}: {printed}",
            kind.label()
        );
        assert!(
            printed.contains("Verification: OK"),
            "{}: {printed}",
            kind.label()
        );
        // The session goes on over TLS: NOOP and QUIT are answered.
        assert!(
            printed.contains("250 2.0.0 Ok"),
            "{}: {printed}",
            kind.label()
        );
        assert!(printed.contains("221 2.0.0"), "{}: {printed}", kind.label());
    }
}

#[tokio::test]
async fn tls_1_0_and_1_1_are_refused_and_1_2_is_accepted() {
    let (ingress, mount, _) = start_tls_ingress(&[]).await;
    let ca = mount.cert().display().to_string();
    // SECLEVEL=0 lets OpenSSL itself offer the old versions, so the refusal is the server's.
    let old = ["-cipher", "DEFAULT:@SECLEVEL=0"];
    for kind in [ListenerKind::Smtp, ListenerKind::Submissions] {
        for version in ["-tls1", "-tls1_1"] {
            let (ok, printed) =
                s_client(&ingress, kind, &ca, &[&[version][..], &old].concat()).await;
            assert!(!ok, "{} {version} was accepted: {printed}", kind.label());
            assert!(
                !printed.contains("Protocol version: TLSv1"),
                "{} {version}: {printed}",
                kind.label()
            );
        }
        let (ok, printed) = s_client(&ingress, kind, &ca, &["-tls1_2"]).await;
        assert!(ok, "{} TLS 1.2: {printed}", kind.label());
        assert!(printed.contains("Protocol version: TLSv1.2"), "{printed}");
        // Only forward-secret AEAD suites (rustls offers nothing else).
        assert!(printed.contains("Ciphersuite: ECDHE-"), "{printed}");
        assert!(
            printed.contains("GCM") || printed.contains("CHACHA20"),
            "{printed}"
        );
    }
}

#[tokio::test]
async fn swaks_sends_over_starttls_and_implicit_tls() {
    require("swaks");
    let (ingress, mount, _) = start_tls_ingress(&[]).await;
    let ca = mount.cert().display().to_string();
    add_alice(&ingress).await;
    // The 465 role is submission: it takes mail only after AUTH.
    let cases = [
        (ListenerKind::Smtp, "--tls", "starttls@tern.test", &[][..]),
        (
            ListenerKind::Submissions,
            "--tlsc",
            "implicit@tern.test",
            &[
                "--auth",
                "PLAIN",
                "--auth-user",
                LOGIN,
                "--auth-password",
                PASSWORD,
            ][..],
        ),
    ];
    for (kind, mode, recipient, auth) in cases {
        let envelope = [
            "--to",
            recipient,
            "--from",
            LOGIN,
            "--helo",
            "swaks.example",
        ];
        let transcript = swaks_verified(
            ingress.addr_of(kind),
            mode,
            &ca,
            &[&envelope[..], auth].concat(),
        )
        .await;
        assert!(
            transcript.contains("TLS started with cipher TLSv1.3"),
            "{mode}: {transcript}"
        );
        let id = transcript
            .split("Ok: queued as ")
            .nth(1)
            .and_then(|rest| rest.split_whitespace().next())
            .unwrap_or_else(|| panic!("{mode}: no queue id in {transcript}"));
        let body = stored_body(&ingress, id).await;
        assert!(
            body.contains("(using TLSv1.3 with cipher TLS13_"),
            "{mode}: {body}"
        );
        assert!(
            body.contains(&format!("for <{recipient}>")),
            "{mode}: {body}"
        );
    }
}

#[tokio::test]
async fn python_smtplib_starttls_and_smtp_ssl() {
    require("python3");
    let (ingress, mount, _) = start_tls_ingress(&[]).await;
    let script = r#"
import smtplib, ssl, sys
ca, name, starttls_port, implicit_port = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
context = ssl.create_default_context(cafile=ca)
context.check_hostname = True

class Named(smtplib.SMTP):
    # Connect to 127.0.0.1 but verify (and send SNI for) the certificate's name.
    def starttls(self, **kw):
        self._host = name
        return super().starttls(**kw)

with Named("127.0.0.1", starttls_port) as s:
    s.ehlo("python.example")
    assert s.has_extn("starttls"), s.esmtp_features
    code, _ = s.starttls(context=context)
    assert code == 220, code
    s.ehlo("python.example")
    assert not s.has_extn("starttls"), s.esmtp_features
    assert s.sock.version() in ("TLSv1.3", "TLSv1.2"), s.sock.version()
    refused = s.sendmail("sender@example.org", ["python-starttls@tern.test"], b"Subject: tls\r\n\r\nbody\r\n")
    assert refused == {}, refused

class NamedSsl(smtplib.SMTP_SSL):
    def _get_socket(self, host, port, timeout):
        import socket
        raw = socket.create_connection((host, port), timeout)
        return self.context.wrap_socket(raw, server_hostname=name)

with NamedSsl("127.0.0.1", implicit_port, context=context) as s:
    code, _ = s.ehlo("python.example")
    assert code == 250, code
    assert not s.has_extn("starttls"), s.esmtp_features
    assert s.noop()[0] == 250
print("ok")
"#;
    let args = [
        mount.cert().display().to_string(),
        SERVER_NAME.to_string(),
        ingress.addr.port().to_string(),
        ingress
            .addr_of(ListenerKind::Submissions)
            .port()
            .to_string(),
    ];
    python(script, &args).await;
    assert_eq!(
        ingress
            .count("SELECT count(*) FROM jobs WHERE recipient = 'python-starttls@tern.test'")
            .await,
        1
    );
}
