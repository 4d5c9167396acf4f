//! The AUTH lockout is shared state: two `tern ingress` processes on one database, a user added
//! with `tern user add`, failures on one process lock the login out on the other.

use std::process::Stdio;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

use tern_e2e::{Tern, free_port, migrate, tern_binary};
use tern_testkit::SmtpClient;
use tern_testkit::TestDatabase;
use tern_testkit::tls_files::{SecretMount, TestCertificate};
use tokio::io::AsyncWriteExt as _;
use tokio::process::Command;

const LOGIN: &str = "carol@example.org";
const PASSWORD: &str = "a long enough password";
const NAME: &str = "mx.tern.test";

/// `\0login\0password` in base64, for `AUTH PLAIN`.
fn plain(password: &str) -> String {
    STANDARD.encode(format!("\0{LOGIN}\0{password}"))
}

async fn start_ingress(db_url: &str, mount: &SecretMount) -> (Tern, u16) {
    let submission = free_port();
    let tern = Tern::start(
        "ingress",
        db_url,
        &[
            (
                "TERN_INGRESS_SMTP_LISTEN",
                format!("127.0.0.1:{}", free_port()),
            ),
            (
                "TERN_INGRESS_SUBMISSION_LISTEN",
                format!("127.0.0.1:{submission}"),
            ),
            ("TERN_INGRESS_SUBMISSIONS_LISTEN", String::new()),
            ("TERN_INGRESS_TLS_CERTIFICATES", mount.setting()),
            ("TERN_INGRESS_AUTH_MAX_FAILURES_PER_LOGIN", "2".into()),
        ],
    )
    .await;
    (tern, submission)
}

/// STARTTLS and one `AUTH PLAIN` on the submission port; the reply line.
async fn try_login(port: u16, certificate: &TestCertificate, password: &str) -> String {
    let addr = format!("127.0.0.1:{port}").parse().expect("addr");
    let (mut client, greeting) = SmtpClient::connect(addr).await;
    assert_eq!(greeting.code, 220);
    assert_eq!(client.command("EHLO client.example").await.code, 250);
    assert_eq!(client.command("STARTTLS").await.code, 220);
    let mut client = client
        .start_tls(NAME, &certificate.cert_pem)
        .await
        .expect("TLS handshake");
    assert_eq!(client.command("EHLO client.example").await.code, 250);
    let reply = client
        .command(&format!("AUTH PLAIN {}", plain(password)))
        .await;
    format!("{} {}", reply.code, reply.text())
}

#[tokio::test]
async fn failures_on_one_ingress_process_lock_the_login_out_on_another() {
    let db = TestDatabase::create().await;
    migrate(&db.url).await;
    let mut add = Command::new(tern_binary())
        .args(["user", "add", LOGIN, "--password-stdin"])
        .env("TERN_DATABASE_URL", &db.url)
        .stdin(Stdio::piped())
        .spawn()
        .expect("tern user add");
    let mut stdin = add.stdin.take().expect("stdin");
    stdin
        .write_all(format!("{PASSWORD}\n").as_bytes())
        .await
        .expect("password");
    drop(stdin);
    assert!(add.wait().await.expect("tern user add").success());

    let certificate = TestCertificate::self_signed(&[NAME]);
    let mount = SecretMount::new(&certificate);
    let (_first, first) = start_ingress(&db.url, &mount).await;
    let (_second, second) = start_ingress(&db.url, &mount).await;

    let ok = "235 2.7.0 Authentication successful";
    assert_eq!(try_login(second, &certificate, PASSWORD).await, ok);
    for _ in 0..2 {
        assert_eq!(
            try_login(first, &certificate, "guess").await,
            "535 5.7.8 Authentication credentials invalid"
        );
    }
    let locked = "454 4.7.0 Temporary authentication failure, try again later";
    assert_eq!(try_login(second, &certificate, PASSWORD).await, locked);
}
