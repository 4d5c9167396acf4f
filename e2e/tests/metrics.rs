//! `/metrics` of `tern ingress` and `tern worker` after a known workload, parsed as the
//! Prometheus text format: the counters say exactly what was sent, refused, delivered, deferred
//! and bounced. The same run checks the Postfix-style delivery log lines.

use std::net::SocketAddr;
use std::process::Stdio;
use std::time::Duration;

use tern_e2e::prometheus::Scrape;
use tern_e2e::{Tern, free_port, http_get, migrate};
use tern_testkit::sink::{SinkConfig, SinkServer};
use tern_testkit::wait::eventually;
use tern_testkit::{SmtpClient, TestDatabase};

/// Messages each with one local recipient and one refused relay recipient.
const PLAIN_MESSAGES: usize = 3;

async fn scrape(admin: u16) -> Scrape {
    let (status, response) = http_get(admin, "/metrics").await;
    assert_eq!(status, 200, "{response}");
    let body = response.split_once("\r\n\r\n").map_or("", |(_, body)| body);
    Scrape::parse(body).expect("Prometheus text format")
}

/// One SMTP session: each `(command, expected code)` in turn, then the message when `DATA` was
/// answered 354.
async fn session(smtp: SocketAddr, steps: &[(&str, u16)]) {
    let (mut client, greeting) = SmtpClient::connect(smtp).await;
    assert_eq!(greeting.code, 220);
    for (command, code) in steps {
        let reply = client.command(command).await;
        assert_eq!(reply.code, *code, "{command}: {reply:?}");
        if reply.code == 354 {
            client
                .send(b"Message-ID: <metrics@e2e.test>\r\nSubject: m\r\n\r\nbody\r\n.\r\n")
                .await;
            let reply = client.reply().await;
            assert_eq!(reply.code, 250, "{reply:?}");
        }
    }
}

#[tokio::test]
async fn counters_on_metrics_match_a_known_workload_through_ingress_and_worker() {
    let db = TestDatabase::create().await;
    migrate(&db.url).await;
    let sink = SinkServer::start(
        SinkConfig::default()
            .rcpt_rule("defer@", "451 4.3.0 try later")
            .rcpt_rule("bounce@", "550 5.1.1 no such user"),
    )
    .await;
    let smtp: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().expect("addr");
    let prefix = tern_testkit::services::unique_nats_prefix();
    let ingress = Tern::start(
        "ingress",
        &db.url,
        &[
            ("TERN_INGRESS_SMTP_LISTEN", smtp.to_string()),
            ("TERN_INGRESS_SUBMISSION_LISTEN", String::new()),
            ("TERN_INGRESS_LOCAL_DOMAINS", "tern.test".to_owned()),
            ("TERN_NATS_PREFIX", prefix.clone()),
        ],
    )
    .await;
    let log_path = std::env::temp_dir().join(format!(
        "tern-metrics-worker-{}-{}.log",
        std::process::id(),
        free_port()
    ));
    let log = std::fs::File::create(&log_path).expect("log file");
    let worker = Tern::start_with_stderr(
        "worker",
        &db.url,
        &[
            (
                "TERN_WORKER_SMARTHOST",
                format!("smtp:[127.0.0.1]:{}", sink.addr().port()),
            ),
            ("TERN_WORKER_POLL_INTERVAL", "200ms".to_owned()),
            ("TERN_WORKER_HOSTNAME", "worker.test".to_owned()),
            ("TERN_NATS_PREFIX", prefix),
        ],
        Stdio::from(log),
    )
    .await;

    for n in 0..PLAIN_MESSAGES {
        let rcpt = format!("RCPT TO:<ok{n}@tern.test>");
        session(
            smtp,
            &[
                ("EHLO client.example", 250),
                ("MAIL FROM:<sender@example.org>", 250),
                (&rcpt, 250),
                ("RCPT TO:<someone@elsewhere.example>", 554),
                ("DATA", 354),
                ("QUIT", 221),
            ],
        )
        .await;
    }
    session(
        smtp,
        &[
            ("EHLO client.example", 250),
            ("MAIL FROM:<sender@example.org>", 250),
            ("RCPT TO:<defer@tern.test>", 250),
            ("RCPT TO:<bounce@tern.test>", 250),
            ("DATA", 354),
            ("QUIT", 221),
        ],
    )
    .await;
    session(
        smtp,
        &[
            ("EHLO client.example", 250),
            ("XYZZY", 500),
            ("MAIL FROM:<broken", 501),
            ("QUIT", 221),
        ],
    )
    .await;

    // The ingress counts as it answers: everything is there once the sessions are over.
    let ingress_metrics = scrape(ingress.admin).await;
    let accepted = PLAIN_MESSAGES as f64 + 1.0;
    let counter = |name: &str, labels: &[(&str, &str)]| ingress_metrics.sum(name, labels);
    assert_eq!(
        ingress_metrics.value("tern_ingress_messages_accepted_total", &[]),
        Some(accepted)
    );
    assert_eq!(
        counter("tern_ingress_commit_seconds_count", &[]),
        accepted,
        "one commit observed per message"
    );
    assert_eq!(
        counter("tern_ingress_sessions_total", &[("listener", "smtp")]),
        accepted + 1.0
    );
    for (verb, count) in [
        ("ehlo", accepted + 1.0),
        ("mail", accepted + 1.0),
        ("rcpt", 2.0 * accepted),
        ("data", accepted),
        ("quit", accepted + 1.0),
        ("other", 1.0),
    ] {
        assert_eq!(
            ingress_metrics.value("tern_ingress_commands_total", &[("verb", verb)]),
            Some(count),
            "{verb}"
        );
    }
    let rejects = "tern_ingress_rejects_total";
    assert_eq!(
        ingress_metrics.value(rejects, &[("stage", "rcpt"), ("reason", "relay_denied")]),
        Some(PLAIN_MESSAGES as f64)
    );
    assert_eq!(
        ingress_metrics.value(rejects, &[("stage", "other"), ("reason", "syntax")]),
        Some(1.0)
    );
    assert_eq!(
        ingress_metrics.value(rejects, &[("stage", "mail"), ("reason", "syntax")]),
        Some(1.0)
    );
    assert_eq!(
        counter(rejects, &[]),
        PLAIN_MESSAGES as f64 + 2.0,
        "nothing else was refused"
    );
    let bytes = counter("tern_ingress_message_bytes_total", &[]);
    let stored: i64 = sqlx::query_scalar("SELECT sum(size)::bigint FROM messages")
        .fetch_one(&db.pool)
        .await
        .expect("sizes");
    assert_eq!(bytes, stored as f64, "bytes counted are bytes stored");

    // The worker: three plain recipients and the bounce report to the sender delivered, one
    // deferred, one bounced.
    let worker_metrics = eventually(
        "the worker to record every attempt",
        Duration::from_secs(60),
        || async {
            let scrape = scrape(worker.admin).await;
            let attempts = scrape.sum("tern_worker_attempts_total", &[]);
            let gauge_deferred = scrape.value("tern_worker_queue_jobs", &[("status", "deferred")]);
            (attempts >= PLAIN_MESSAGES as f64 + 3.0 && gauge_deferred == Some(1.0))
                .then_some(scrape)
        },
    )
    .await;
    let attempts =
        |outcome: &str| worker_metrics.value("tern_worker_attempts_total", &[("outcome", outcome)]);
    assert_eq!(attempts("delivered"), Some(PLAIN_MESSAGES as f64 + 1.0));
    assert_eq!(attempts("deferred"), Some(1.0));
    assert_eq!(attempts("bounced"), Some(1.0));
    assert_eq!(attempts("expired"), None);
    assert_eq!(
        worker_metrics.value("tern_worker_dsns_queued_total", &[("kind", "failure")]),
        Some(1.0)
    );
    let delivery = "tern_worker_delivery_seconds_count";
    assert_eq!(
        worker_metrics.value(delivery, &[("outcome", "delivered")]),
        Some(PLAIN_MESSAGES as f64 + 1.0)
    );
    assert_eq!(
        worker_metrics.value(delivery, &[("outcome", "bounced")]),
        Some(1.0)
    );
    assert_eq!(
        worker_metrics.sum("tern_worker_delivery_seconds_bucket", &[("le", "+Inf")]),
        PLAIN_MESSAGES as f64 + 2.0,
        "deferrals are not final and not observed"
    );
    assert_eq!(
        worker_metrics.value("tern_worker_queue_jobs", &[("status", "queued")]),
        Some(0.0)
    );
    assert_eq!(
        worker_metrics.value("tern_worker_queue_oldest_due_seconds", &[]),
        Some(0.0),
        "the deferred job is not due yet"
    );
    assert_eq!(
        worker_metrics.sum("tern_worker_lease_expiries_total", &[]),
        0.0
    );
    let database_attempts: i64 = sqlx::query_scalar("SELECT count(*) FROM attempts")
        .fetch_one(&db.pool)
        .await
        .expect("attempts");
    assert_eq!(
        database_attempts as f64,
        worker_metrics.sum("tern_worker_attempts_total", &[]),
        "one counted attempt per recorded attempt"
    );
    for admin in [ingress.admin, worker.admin] {
        let (status, _) = http_get(admin, "/readyz").await;
        assert_eq!(status, 200);
    }

    // One JSON line per recipient and attempt, with Postfix's fields.
    drop(worker);
    let log = std::fs::read_to_string(&log_path).expect("worker log");
    let _ = std::fs::remove_file(&log_path);
    let lines: Vec<serde_json::Value> = log
        .lines()
        .filter_map(|line| serde_json::from_str(line).ok())
        .filter(|line: &serde_json::Value| line["message"] == "delivery attempt")
        .collect();
    assert_eq!(lines.len(), database_attempts as usize, "{log}");
    let line_for = |to: &str| {
        lines
            .iter()
            .find(|line| line["to"] == to)
            .unwrap_or_else(|| panic!("no delivery line for {to}: {log}"))
    };
    let sent = line_for("ok0@tern.test");
    assert_eq!(sent["status"], "sent");
    assert_eq!(sent["message_id"], "<metrics@e2e.test>");
    assert_eq!(sent["dsn"], "2.0.0");
    assert_eq!(
        sent["relay"],
        format!("127.0.0.1[127.0.0.1]:{}", sink.addr().port())
    );
    assert_eq!(sent["queue_id"].as_str().map(str::len), Some(32));
    assert!(sent["delay"].as_f64().is_some_and(|d| d >= 0.0), "{sent}");
    // The remote reply in the RFC 3464 diagnostic form the attempts table keeps.
    assert!(
        sent["reply"]
            .as_str()
            .is_some_and(|r| r.contains("250 2.0.0")),
        "{sent}"
    );
    let deferred = line_for("defer@tern.test");
    assert_eq!(deferred["status"], "deferred");
    assert_eq!(deferred["dsn"], "4.3.0");
    assert_eq!(line_for("bounce@tern.test")["status"], "bounced");
    drop(ingress);
}
