//! `tern api` as a process: an internal error's correlation id is in its log, and Schemathesis
//! finds no 500 and no response that breaks the served OpenAPI document.

use std::process::Stdio;

use tern_e2e::cluster::{Api, TOKEN};
use tern_e2e::{free_port, migrate};
use tern_testkit::TestDatabase;
use tokio::process::Command;

async fn start_api(db: &TestDatabase, log: &std::path::Path) -> Api {
    let stderr = std::fs::File::create(log).expect("log file");
    Api::start(&db.url, &[], Stdio::from(stderr)).await
}

#[tokio::test]
async fn an_internal_error_is_logged_with_the_correlation_id_its_problem_carries() {
    let db = TestDatabase::create().await;
    migrate(&db.url).await;
    let log = std::env::temp_dir().join(format!("tern-api-log-{}", free_port()));
    let api = start_api(&db, &log).await;
    // A database the API cannot use as it expects: not the client's fault, so a 500.
    sqlx::query("ALTER TABLE domains RENAME TO domains_elsewhere")
        .execute(&db.pool)
        .await
        .expect("rename");
    let (status, body) = api.call("GET", "/v1/domains", None).await;
    assert_eq!(status, 500, "{body}");
    assert!(!body.contains("domains_elsewhere"), "no SQL leaks: {body}");
    let problem: serde_json::Value = serde_json::from_str(&body).expect("problem");
    let id = problem["correlation_id"]
        .as_str()
        .expect("a correlation id");
    let logged = tern_testkit::wait::eventually(
        "the error to be logged",
        std::time::Duration::from_secs(5),
        || async {
            let text = std::fs::read_to_string(&log).ok()?;
            text.lines()
                .find(|line| line.contains(id) && line.contains("\"ERROR\""))
                .map(str::to_owned)
        },
    )
    .await;
    assert!(
        logged.contains("domains"),
        "the log names the cause: {logged}"
    );
    let _ = std::fs::remove_file(log);
}

/// Where `scripts/schemathesis.sh` installed Schemathesis (it installs it on first use).
async fn schemathesis() -> std::path::PathBuf {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../scripts/schemathesis.sh");
    let output = Command::new("bash")
        .arg(script)
        .arg("path")
        .output()
        .await
        .expect("run scripts/schemathesis.sh");
    assert!(
        output.status.success(),
        "installing Schemathesis failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    std::path::PathBuf::from(String::from_utf8_lossy(&output.stdout).trim())
}

#[tokio::test]
async fn schemathesis_finds_no_server_error_and_no_response_off_the_schema() {
    let db = TestDatabase::create().await;
    migrate(&db.url).await;
    let log = std::env::temp_dir().join(format!("tern-api-log-{}", free_port()));
    let api = start_api(&db, &log).await;
    let port = api.port;
    let output = Command::new(schemathesis().await)
        .arg("run")
        .arg(format!("http://127.0.0.1:{port}/openapi.json"))
        .args(["--header", &format!("Authorization: Bearer {TOKEN}")])
        .args([
            "--checks",
            "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance",
        ])
        // Bounded: a few examples per operation, a fixed seed so a failure can be replayed.
        .args(["--max-examples", "15", "--seed", "1204", "--workers", "2"])
        .args(["--phases", "examples,coverage,fuzzing"])
        .arg("--no-color")
        .current_dir(std::env::temp_dir())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .output()
        .await
        .expect("run schemathesis");
    let printed = String::from_utf8_lossy(&output.stdout);
    let _ = std::fs::remove_file(&log);
    assert!(
        output.status.success(),
        "Schemathesis found problems:\n{printed}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        printed.contains("Tested:"),
        "it tested something: {printed}"
    );
}
