//! The `tern` binary as an operator runs it: configuration errors, a message in, metrics and
//! health out, and SIGTERM.

use std::time::Duration;

use tern_e2e::{Tern, free_port, http_get, migrate, swaks, tern_binary};
use tern_testkit::wait::eventually;
use tern_testkit::{SmtpClient, TestDatabase};
use tokio::process::Command;

#[tokio::test]
async fn invalid_configuration_exits_64_naming_the_setting() {
    let output = Command::new(tern_binary())
        .args(["ingress", "--check-config"])
        .env("TERN_INGRESS_MAX_RECIPIENTS", "0")
        .output()
        .await
        .expect("run tern");
    assert_eq!(output.status.code(), Some(64));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("TERN_INGRESS_MAX_RECIPIENTS"), "{stderr}");

    let output = Command::new(tern_binary())
        .args(["ingress", "--check-config"])
        .env("TERN_INGRESS_IDLE_TIMEOUT", "soon")
        .output()
        .await
        .expect("run tern");
    assert_eq!(output.status.code(), Some(64));
    assert!(String::from_utf8_lossy(&output.stderr).contains("idle-timeout"));
}

#[tokio::test]
async fn check_config_accepts_the_defaults() {
    let output = Command::new(tern_binary())
        .args(["ingress", "--check-config"])
        .output()
        .await
        .expect("run tern");
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

#[tokio::test]
async fn binary_accepts_mail_serves_metrics_and_stops_on_sigterm() {
    let db = TestDatabase::create().await;
    migrate(&db.url).await;
    let smtp = free_port();
    let mut tern = Tern::start(
        "ingress",
        &db.url,
        &[
            ("TERN_INGRESS_SMTP_LISTEN", format!("127.0.0.1:{smtp}")),
            (
                "TERN_INGRESS_SUBMISSION_LISTEN",
                format!("127.0.0.1:{}", free_port()),
            ),
        ],
    )
    .await;
    let (health, _) = http_get(tern.admin, "/healthz").await;
    assert_eq!(health, 200);
    let ready = eventually("/readyz to answer 200", Duration::from_secs(30), || async {
        let (status, body) = http_get(tern.admin, "/readyz").await;
        (status == 200).then_some(body)
    })
    .await;
    assert!(ready.contains("ready"));
    // the healthcheck a container runtime runs: the binary asks, 0 for ready
    assert_eq!(
        probe(&format!("http://127.0.0.1:{}/readyz", tern.admin)).await,
        Some(0)
    );
    assert_eq!(
        probe(&format!("http://127.0.0.1:{}/no-such-probe", tern.admin)).await,
        Some(1)
    );

    swaks(
        smtp,
        &["--to", "someone@tern.test", "--from", "a@example.org"],
    )
    .await;
    let count: i64 =
        sqlx::query_scalar("SELECT count(*) FROM jobs WHERE recipient = 'someone@tern.test'")
            .fetch_one(&db.pool)
            .await
            .expect("count");
    assert_eq!(count, 1);
    let (_, metrics) = http_get(tern.admin, "/metrics").await;
    assert!(
        metrics.contains("tern_ingress_messages_accepted_total 1"),
        "{metrics}"
    );

    // an idle session is told 421 4.3.2 when SIGTERM arrives, and the process exits cleanly
    let (mut idle, greeting) =
        SmtpClient::connect(format!("127.0.0.1:{smtp}").parse().expect("addr")).await;
    assert_eq!(greeting.code, 220);
    tern.signal("TERM").await;
    let reply = idle.reply().await;
    assert_eq!(reply.code, 421, "{reply:?}");
    assert!(reply.text().starts_with("4.3.2"), "{reply:?}");
    let exit = tokio::time::timeout(Duration::from_secs(60), tern.child.wait())
        .await
        .expect("exits")
        .expect("wait");
    assert!(exit.success(), "{exit:?}");
    assert_eq!(
        probe(&format!("http://127.0.0.1:{}/readyz", tern.admin)).await,
        Some(1)
    );
}

/// The exit code of `tern probe URL`.
async fn probe(url: &str) -> Option<i32> {
    let output = Command::new(tern_binary())
        .args(["probe", url, "--timeout", "5s"])
        .output()
        .await
        .expect("run tern probe");
    output.status.code()
}
