//! The `tern` binary as an operator runs it: configuration errors, a message in, metrics and
//! health out, and SIGTERM.

use std::process::Stdio;
use std::time::Duration;

use tern_e2e::tern_binary;
use tern_testkit::wait::eventually;
use tern_testkit::{SmtpClient, TestDatabase, services};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::process::{Child, Command};

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}

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

struct Running {
    child: Child,
    smtp: u16,
    admin: u16,
}

async fn start_tern(db: &TestDatabase) -> Running {
    let (smtp, submission, admin) = (free_port(), free_port(), free_port());
    let child = Command::new(tern_binary())
        .arg("ingress")
        .env("TERN_DATABASE_URL", &db.url)
        .env("TERN_NATS_URL", services::nats_url())
        .env("TERN_NATS_PREFIX", services::unique_nats_prefix())
        .env("TERN_INGRESS_SMTP_LISTEN", format!("127.0.0.1:{smtp}"))
        .env(
            "TERN_INGRESS_SUBMISSION_LISTEN",
            format!("127.0.0.1:{submission}"),
        )
        .env("TERN_ADMIN_LISTEN", format!("127.0.0.1:{admin}"))
        .env("TERN_LOG_FORMAT", "json")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn tern ingress");
    let addr = format!("127.0.0.1:{smtp}");
    eventually("the ingress to listen", Duration::from_secs(30), || async {
        tokio::net::TcpStream::connect(&addr).await.ok().map(|_| ())
    })
    .await;
    Running { child, smtp, admin }
}

async fn http_get(port: u16, path: &str) -> (u16, String) {
    let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .expect("connect admin");
    stream
        .write_all(
            format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes(),
        )
        .await
        .expect("send");
    let mut response = String::new();
    stream.read_to_string(&mut response).await.expect("read");
    let status = response
        .get(9..12)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (status, response)
}

#[tokio::test]
async fn binary_accepts_mail_serves_metrics_and_stops_on_sigterm() {
    let db = TestDatabase::create().await;
    let status = Command::new(tern_binary())
        .arg("migrate")
        .env("TERN_DATABASE_URL", &db.url)
        .status()
        .await
        .expect("migrate");
    assert!(status.success());
    let mut tern = start_tern(&db).await;

    let (health, _) = http_get(tern.admin, "/healthz").await;
    assert_eq!(health, 200);
    let ready = eventually("/readyz to answer 200", Duration::from_secs(30), || async {
        let (status, body) = http_get(tern.admin, "/readyz").await;
        (status == 200).then_some(body)
    })
    .await;
    assert!(ready.contains("ready"));

    let output = Command::new("swaks")
        .args([
            "--server",
            &format!("127.0.0.1:{}", tern.smtp),
            "--to",
            "someone@tern.test",
            "--from",
            "a@example.org",
        ])
        .output()
        .await
        .expect("swaks");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stdout)
    );
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
        SmtpClient::connect(format!("127.0.0.1:{}", tern.smtp).parse().expect("addr")).await;
    assert_eq!(greeting.code, 220);
    let pid = tern.child.id().expect("pid").to_string();
    let killed = Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .await
        .expect("kill");
    assert!(killed.success());
    let reply = idle.reply().await;
    assert_eq!(reply.code, 421, "{reply:?}");
    assert!(reply.text().starts_with("4.3.2"), "{reply:?}");
    let exit = tokio::time::timeout(Duration::from_secs(60), tern.child.wait())
        .await
        .expect("exits")
        .expect("wait");
    assert!(exit.success(), "{exit:?}");
}
