//! The control plane across processes: `tern api` changes what a running `tern ingress` accepts
//! and what a running `tern worker` delivers, without a restart; with NATS, at once; with NATS
//! stopped, after the poll; a certificate uploaded through the API is served by SNI.

use std::process::Stdio;
use std::time::Duration;

use tern_e2e::cluster::{Api, Nats, TOKEN};
use tern_e2e::{Tern, free_port, http_call};
use tern_testkit::TestDatabase;
use tern_testkit::sink::{SinkConfig, SinkServer};
use tern_testkit::tls_files::{SecretMount, TestCertificate};
use tern_testkit::wait::eventually;
use tokio::process::Command;

/// swaks up to RCPT: the reply to RCPT, or to MAIL when MAIL was refused.
async fn rcpt_reply(port: u16, from: &str, to: &str) -> String {
    let output = Command::new("swaks")
        .args(["--server", &format!("127.0.0.1:{port}")])
        .args(["--from", from, "--to", to, "--quit-after", "RCPT"])
        .stdout(Stdio::piped())
        .output()
        .await
        .expect("run swaks (scripts/services.sh installs it)");
    let transcript = String::from_utf8_lossy(&output.stdout).into_owned();
    let mut lines = transcript.lines();
    let mut reply = String::new();
    while let Some(line) = lines.next() {
        if line.contains("-> MAIL FROM") || line.contains("-> RCPT TO") {
            reply = lines.next().unwrap_or("").to_owned();
            if !reply.contains(" 250 ") {
                break;
            }
        }
    }
    reply
}

async fn reply_becomes(port: u16, from: &str, to: &str, code: &str, within: Duration) {
    eventually(&format!("{from} -> {to} to get {code}"), within, || async {
        let reply = rcpt_reply(port, from, to).await;
        reply.contains(&format!(" {code} ")).then_some(())
    })
    .await;
}

#[tokio::test]
async fn domains_and_blocklist_entries_reach_a_running_ingress_with_nats_and_without() {
    let db = TestDatabase::create().await;
    tern_e2e::migrate(&db.url).await;
    let nats = Nats::start();
    let smtp = free_port();
    let ingress = Tern::start(
        "ingress",
        &db.url,
        &[
            nats.env()[0].clone(),
            nats.env()[1].clone(),
            ("TERN_INGRESS_SMTP_LISTEN", format!("127.0.0.1:{smtp}")),
            ("TERN_INGRESS_SUBMISSION_LISTEN", String::new()),
            ("TERN_INGRESS_LOCAL_DOMAINS", "env.test".to_owned()),
            // While NATS runs a change notice must do it: the poll is slower than the test allows.
            ("TERN_CONTROL_POLL_INTERVAL", "5s".to_owned()),
        ],
    )
    .await;
    let api = Api::with_nats(&db.url, &nats).await;
    let port = api.port;

    assert!(
        rcpt_reply(smtp, "a@example.org", "x@new.test")
            .await
            .contains(" 554 ")
    );
    let (status, body) = http_call(
        port,
        "POST",
        "/v1/domains",
        TOKEN,
        Some(r#"{"name": "new.test", "kind": "relay"}"#),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    reply_becomes(
        smtp,
        "a@example.org",
        "x@new.test",
        "250",
        Duration::from_secs(3),
    )
    .await;
    // The cluster view shows the ingress running the revision that holds the new domain.
    eventually(
        "the ingress to report the new revision",
        Duration::from_secs(10),
        || async {
            let (_, body) = http_call(port, "GET", "/v1/cluster", TOKEN, None).await;
            let cluster: serde_json::Value = serde_json::from_str(&body).ok()?;
            let processes = cluster["processes"].as_array()?;
            let ingress = processes.iter().find(|p| p["component"] == "ingress")?;
            let api = processes.iter().find(|p| p["component"] == "api")?;
            let shows_settings = ingress["settings"]["TERN_INGRESS_LOCAL_DOMAINS"] == "env.test";
            (api.is_object() && shows_settings && ingress["revision"] == cluster["revision"])
                .then_some(())
        },
    )
    .await;

    // The environment's domain is in the API, owned by config and read-only there.
    let (status, body) = http_call(port, "DELETE", "/v1/domains/env.test", TOKEN, None).await;
    assert_eq!(status, 409, "{body}");
    assert!(body.contains(r#""owner":"config""#), "{body}");

    let (status, body) = http_call(
        port,
        "POST",
        "/v1/blocklist",
        TOKEN,
        Some(r#"{"kind": "sender", "value": "spam@example.org", "action": "reject", "reason": "known spammer"}"#),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    eventually(
        "the sender to be refused",
        Duration::from_secs(3),
        || async {
            let reply = rcpt_reply(smtp, "spam@example.org", "x@new.test").await;
            reply.contains(" 550 5.7.1 ").then_some(())
        },
    )
    .await;

    // Without NATS the change arrives by the poll.
    drop(nats);
    let (status, body) = http_call(
        port,
        "POST",
        "/v1/domains",
        TOKEN,
        Some(r#"{"name": "later.test", "kind": "local"}"#),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    reply_becomes(
        smtp,
        "a@example.org",
        "x@later.test",
        "250",
        Duration::from_secs(12),
    )
    .await;
    drop(ingress);
}

#[tokio::test]
async fn hold_suspension_release_and_bounce_through_the_api_steer_a_running_worker() {
    let db = TestDatabase::create().await;
    tern_e2e::migrate(&db.url).await;
    let sink = SinkServer::start(SinkConfig::default()).await;
    let nats = Nats::start();
    let smtp = free_port();
    let [url, prefix] = nats.env();
    let common = [url, prefix, ("TERN_CONTROL_POLL_INTERVAL", "1s".to_owned())];
    let mut ingress_env = common.to_vec();
    ingress_env.extend([
        ("TERN_INGRESS_SMTP_LISTEN", format!("127.0.0.1:{smtp}")),
        ("TERN_INGRESS_SUBMISSION_LISTEN", String::new()),
        (
            "TERN_INGRESS_LOCAL_DOMAINS",
            "dest.test,origin.test".to_owned(),
        ),
    ]);
    let _ingress = Tern::start("ingress", &db.url, &ingress_env).await;
    let mut worker_env = common.to_vec();
    worker_env.extend([
        (
            "TERN_WORKER_SMARTHOST",
            format!("smtp:[127.0.0.1]:{}", sink.addr().port()),
        ),
        ("TERN_WORKER_POLL_INTERVAL", "200ms".to_owned()),
        ("TERN_WORKER_HOSTNAME", "worker.test".to_owned()),
    ]);
    let _worker = Tern::start("worker", &db.url, &worker_env).await;
    let api = Api::with_nats(&db.url, &nats).await;
    let port = api.port;

    let (status, body) = http_call(
        port,
        "PUT",
        "/v1/suspensions/dest.test",
        TOKEN,
        Some(r#"{"until": "2999-01-01T00:00:00Z", "reason": "their maintenance"}"#),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    // The worker has the suspension once the revision it reports has moved past it.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let transcript =
        tern_e2e::swaks(smtp, &["--from", "a@origin.test", "--to", "b@dest.test"]).await;
    let queue_id = transcript
        .lines()
        .find_map(|l| l.split("queued as ").nth(1))
        .expect("queue id")
        .trim()
        .to_owned();

    let status_of = || async {
        let (_, body) = http_call(
            port,
            "GET",
            &format!("/v1/messages/{queue_id}"),
            TOKEN,
            None,
        )
        .await;
        let value: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
        value["recipients"][0]["status"]
            .as_str()
            .unwrap_or("")
            .to_owned()
    };
    eventually(
        "the job to be held for the suspension",
        Duration::from_secs(10),
        || async {
            let (_, body) = http_call(port, "GET", "/v1/queue?status=queued", TOKEN, None).await;
            let value: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
            let due = value["items"][0]["next_attempt_at"]
                .as_str()
                .unwrap_or("")
                .to_owned();
            due.starts_with("2999").then_some(())
        },
    )
    .await;

    let (status, body) = http_call(
        port,
        "POST",
        &format!("/v1/messages/{queue_id}/hold"),
        TOKEN,
        None,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let (status, _) = http_call(port, "DELETE", "/v1/suspensions/dest.test", TOKEN, None).await;
    assert_eq!(status, 204);
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        status_of().await,
        "held",
        "a held job stays held when the suspension ends"
    );
    assert!(sink.received().is_empty());

    let (status, _) = http_call(
        port,
        "POST",
        &format!("/v1/messages/{queue_id}/release"),
        TOKEN,
        None,
    )
    .await;
    assert_eq!(status, 200);
    sink.wait_for(1, Duration::from_secs(20)).await;
    eventually(
        "the job to be delivered",
        Duration::from_secs(10),
        || async { (status_of().await == "delivered").then_some(()) },
    )
    .await;

    // A held message bounced through the API: its sender gets a report.
    let (status, _) = http_call(
        port,
        "PUT",
        "/v1/suspensions/dest.test",
        TOKEN,
        Some(r#"{"until": "2999-01-01T00:00:00Z"}"#),
    )
    .await;
    assert_eq!(status, 200);
    tokio::time::sleep(Duration::from_secs(2)).await;
    let transcript =
        tern_e2e::swaks(smtp, &["--from", "c@origin.test", "--to", "d@dest.test"]).await;
    let second = transcript
        .lines()
        .find_map(|l| l.split("queued as ").nth(1))
        .expect("queue id")
        .trim()
        .to_owned();
    let (status, body) = http_call(
        port,
        "POST",
        &format!("/v1/messages/{second}/bounce"),
        TOKEN,
        Some(r#"{"reason": "not wanted"}"#),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let received = sink.wait_for(2, Duration::from_secs(30)).await;
    let report = received
        .iter()
        .find(|m| m.mail_from.is_empty())
        .expect("a report with the null sender");
    assert_eq!(report.rcpt_to, ["c@origin.test"]);
    assert!(String::from_utf8_lossy(&report.data).contains("not wanted"));
}

/// The certificate `openssl s_client` is served for `server_name` (its PEM, as openssl prints it).
async fn served_certificate(port: u16, server_name: &str) -> String {
    let output = Command::new("openssl")
        .args(["s_client", "-connect", &format!("127.0.0.1:{port}")])
        .args(["-servername", server_name])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .output()
        .await
        .expect("run openssl");
    let printed = String::from_utf8_lossy(&output.stdout);
    let start = printed.find("-----BEGIN CERTIFICATE-----");
    let end = printed.find("-----END CERTIFICATE-----");
    match (start, end) {
        (Some(start), Some(end)) => printed[start..end].to_owned(),
        _ => String::new(),
    }
}

/// The base64 of a PEM certificate, without its armour or line breaks.
fn pem_body(pem: &str) -> String {
    pem.lines()
        .filter(|line| !line.starts_with("-----"))
        .collect()
}

#[tokio::test]
async fn a_certificate_uploaded_through_the_api_is_served_by_sni_to_openssl() {
    let db = TestDatabase::create().await;
    tern_e2e::migrate(&db.url).await;
    let nats = Nats::start();
    let file = TestCertificate::self_signed(&["mx.file.test"]);
    let mount = SecretMount::new(&file);
    let smtps = free_port();
    let _ingress = Tern::start(
        "ingress",
        &db.url,
        &[
            nats.env()[0].clone(),
            nats.env()[1].clone(),
            (
                "TERN_INGRESS_SMTP_LISTEN",
                format!("127.0.0.1:{}", free_port()),
            ),
            ("TERN_INGRESS_SUBMISSION_LISTEN", String::new()),
            (
                "TERN_INGRESS_SUBMISSIONS_LISTEN",
                format!("127.0.0.1:{smtps}"),
            ),
            ("TERN_INGRESS_TLS_CERTIFICATES", mount.setting()),
        ],
    )
    .await;
    let api = Api::with_nats(&db.url, &nats).await;
    let port = api.port;
    let uploaded = TestCertificate::self_signed(&["mx.api.test"]);
    let body = serde_json::json!({
        "name": "api-cert",
        "chain_pem": uploaded.cert_pem,
        "key_pem": uploaded.key_pem,
    });
    let (status, shown) = http_call(
        port,
        "POST",
        "/v1/certificates",
        TOKEN,
        Some(&body.to_string()),
    )
    .await;
    assert_eq!(status, 201, "{shown}");
    assert!(!shown.contains("PRIVATE KEY"), "{shown}");

    eventually(
        "openssl to be served the uploaded certificate",
        Duration::from_secs(10),
        || async {
            let served = served_certificate(smtps, "mx.api.test").await;
            (pem_body(&served) == pem_body(&uploaded.cert_pem)).then_some(())
        },
    )
    .await;
    let default = served_certificate(smtps, "mx.file.test").await;
    assert_eq!(
        pem_body(&default),
        pem_body(&file.cert_pem),
        "the file's certificate still serves its name"
    );

    let (status, _) = http_call(port, "DELETE", "/v1/certificates/api-cert", TOKEN, None).await;
    assert_eq!(status, 204);
    eventually(
        "the deleted certificate to stop being served",
        Duration::from_secs(10),
        || async {
            let served = served_certificate(smtps, "mx.api.test").await;
            (pem_body(&served) == pem_body(&file.cert_pem)).then_some(())
        },
    )
    .await;
}
