//! The AUTH lockout is shared state: two `tern ingress` processes on one database, a user added
//! with `tern user add`, failures on one process lock the login out on the other.

use std::process::Stdio;

use tern_e2e::{Tern, auth_plain, free_port, migrate, tern_binary};
use tern_testkit::TestDatabase;
use tern_testkit::tls_files::{SecretMount, TestCertificate};
use tokio::io::AsyncWriteExt as _;
use tokio::process::Command;

const LOGIN: &str = "carol@example.org";
const PASSWORD: &str = "a long enough password";
const NAME: &str = "mx.tern.test";

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

async fn try_login(port: u16, certificate: &TestCertificate, password: &str) -> String {
    auth_plain(port, NAME, certificate, LOGIN, password).await
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
