//! The AUTH lockout is kept in PostgreSQL, so it holds across ingresses: two in-process ingresses
//! on one database, each with its own pool, see each other's failures (the e2e test does the same
//! with two `tern ingress` processes).

use tern_ingress::ListenerKind;
use tern_testkit::tls_files::{SecretMount, TestCertificate};

use crate::auth::{LOGIN, PASSWORD, add_alice, line, plain};
use crate::harness::TestIngress;
use crate::tls::{start_tls_ingress, starttls_client};

/// Two ingresses on one database, each with its own pool and certificate settings.
async fn two_ingresses(
    settings: &[&str],
) -> (TestIngress, TestIngress, SecretMount, TestCertificate) {
    let (first, mount, certificate) = start_tls_ingress(settings).await;
    add_alice(&first).await;
    let setting = mount.setting();
    let mut args = vec![
        "--tls-certificates",
        &setting,
        "--submission-listen",
        "127.0.0.1:0",
    ];
    args.extend_from_slice(settings);
    let second = TestIngress::start_on(first.db.reopen().await, &args).await;
    (first, second, mount, certificate)
}

async fn try_login(
    ingress: &TestIngress,
    certificate: &TestCertificate,
    login: &str,
    password: &str,
) -> String {
    let addr = ingress.addr_of(ListenerKind::Submission);
    let (mut client, _) = starttls_client(addr, certificate).await;
    line(
        &client
            .command(&format!("AUTH PLAIN {}", plain(login, password)))
            .await,
    )
}

const BAD: &str = "535 5.7.8 Authentication credentials invalid";
const LOCKED: &str = "454 4.7.0 Temporary authentication failure, try again later";
const OK: &str = "235 2.7.0 Authentication successful";

#[tokio::test]
async fn a_login_locked_out_on_one_ingress_is_locked_out_on_the_other() {
    let settings = [
        "--auth-max-failures-per-login",
        "3",
        "--auth-max-failures-per-ip",
        "100",
    ];
    let (first, second, _mount, certificate) = two_ingresses(&settings).await;
    // The right password works on both before any failure.
    assert_eq!(try_login(&second, &certificate, LOGIN, PASSWORD).await, OK);
    for _ in 0..3 {
        assert_eq!(try_login(&first, &certificate, LOGIN, "guess").await, BAD);
    }
    // Even the right password is refused now, on the other ingress too.
    assert_eq!(
        try_login(&second, &certificate, LOGIN, PASSWORD).await,
        LOCKED
    );
    assert_eq!(
        try_login(&first, &certificate, LOGIN, PASSWORD).await,
        LOCKED
    );
}

#[tokio::test]
async fn a_client_address_locked_out_on_one_ingress_is_locked_out_on_the_other() {
    let settings = [
        "--auth-max-failures-per-login",
        "100",
        "--auth-max-failures-per-ip",
        "4",
    ];
    let (first, second, _mount, certificate) = two_ingresses(&settings).await;
    for n in 0..4 {
        let login = format!("guess{n}@example.org");
        assert_eq!(try_login(&first, &certificate, &login, "guess").await, BAD);
    }
    assert_eq!(
        try_login(&second, &certificate, LOGIN, PASSWORD).await,
        LOCKED
    );
}

#[tokio::test]
async fn a_short_lockout_window_passes_and_its_counters_are_pruned() {
    let settings = [
        "--auth-max-failures-per-login",
        "1",
        "--auth-lockout-window",
        "3s",
    ];
    let (first, second, _mount, certificate) = two_ingresses(&settings).await;
    assert_eq!(try_login(&first, &certificate, LOGIN, "guess").await, BAD);
    assert_eq!(
        try_login(&second, &certificate, LOGIN, PASSWORD).await,
        LOCKED
    );
    let mut result = String::new();
    for _ in 0..50 {
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        result = try_login(&second, &certificate, LOGIN, PASSWORD).await;
        if result == OK {
            break;
        }
    }
    assert_eq!(result, OK, "the lockout never lifted");

    // The ingresses delete counters whose window has passed, so the table does not grow.
    let mut left = -1;
    for _ in 0..100 {
        left = first.count("SELECT count(*) FROM auth_failures").await;
        if left == 0 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    assert_eq!(left, 0, "expired failure counters were never pruned");
}
