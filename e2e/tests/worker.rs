//! `tern worker` processes: side by side without delivering a recipient twice, killed with
//! SIGKILL without losing one, delivering while NATS is away, and the whole path from swaks
//! through `tern ingress` and `tern worker` to a sink.

use std::collections::HashMap;
use std::process::Stdio;
use std::time::Duration;

use tern_common::queue::{NewMessage, NewRecipient, PgQueueStore, QueueStore};
use tern_e2e::prometheus::Scrape;
use tern_e2e::{Tern, free_port, http_get, migrate, swaks};
use tern_testkit::TestDatabase;
use tern_testkit::sink::{SinkConfig, SinkServer};
use tern_testkit::wait::eventually;
use tokio::process::Command;

/// Worker settings that deliver everything to `sink` and react quickly.
fn worker_env(sink: &SinkServer, lease: &str) -> Vec<(&'static str, String)> {
    vec![
        (
            "TERN_WORKER_SMARTHOST",
            format!("smtp:[127.0.0.1]:{}", sink.addr().port()),
        ),
        ("TERN_WORKER_POLL_INTERVAL", "200ms".to_owned()),
        ("TERN_WORKER_LEASE", lease.to_owned()),
        ("TERN_WORKER_HOSTNAME", "worker.test".to_owned()),
        ("TERN_WORKER_SHUTDOWN_GRACE", "2s".to_owned()),
    ]
}

/// Queues `count` messages with two recipients each, straight into the database, each with a
/// unique `Message-ID` so deliveries can be counted per message.
async fn queue_messages(db: &TestDatabase, count: usize) {
    let store = PgQueueStore::new(db.pool.clone(), Duration::from_secs(10));
    for n in 0..count {
        let body = format!("Message-ID: <m{n}@e2e.test>\r\nSubject: {n}\r\n\r\nbody {n}\r\n");
        let recipients = vec![
            NewRecipient::new("a@dest.test"),
            NewRecipient::new("b@dest.test"),
        ];
        let message =
            NewMessage::local("e2e.test", "sender@e2e.test", recipients, body.into_bytes());
        store.commit(&message).await.expect("queue");
    }
}

/// How many times each (Message-ID, recipient) reached the sink.
fn deliveries(sink: &SinkServer) -> HashMap<(String, String), usize> {
    let mut counts = HashMap::new();
    for message in sink.received() {
        let text = String::from_utf8_lossy(&message.data);
        let id = text
            .lines()
            .find_map(|l| l.strip_prefix("Message-ID: "))
            .unwrap_or("?")
            .to_owned();
        for rcpt in &message.rcpt_to {
            *counts.entry((id.clone(), rcpt.clone())).or_insert(0) += 1;
        }
    }
    counts
}

async fn leased_jobs(db: &TestDatabase) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM jobs WHERE status = 'leased'")
        .fetch_one(&db.pool)
        .await
        .expect("count")
}

/// Waits until every job is delivered.
async fn all_delivered(db: &TestDatabase, limit: Duration) {
    eventually("every job to be delivered", limit, || async {
        let unfinished: i64 =
            sqlx::query_scalar("SELECT count(*) FROM jobs WHERE status <> 'delivered'")
                .fetch_one(&db.pool)
                .await
                .expect("count");
        (unfinished == 0).then_some(())
    })
    .await;
}

#[tokio::test]
async fn two_workers_share_a_queue_and_deliver_every_recipient_exactly_once() {
    let db = TestDatabase::create().await;
    // A server that takes a moment per reply, and small claims, so the queue outlasts several
    // claims and both workers get a share of it.
    let sink = SinkServer::start(SinkConfig {
        reply_delay: Duration::from_millis(5),
        ..SinkConfig::default()
    })
    .await;
    let mut env = worker_env(&sink, "30s");
    env.push(("TERN_WORKER_BATCH", "20".to_owned()));
    let first = Tern::start("worker", &db.url, &env).await;
    let second = Tern::start("worker", &db.url, &env).await;
    queue_messages(&db, 300).await;

    all_delivered(&db, Duration::from_secs(120)).await;
    let counts = deliveries(&sink);
    assert_eq!(
        counts.len(),
        600,
        "every recipient of every message arrived"
    );
    let twice: Vec<_> = counts.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "delivered more than once: {twice:?}");
    let workers: Vec<String> =
        sqlx::query_scalar("SELECT DISTINCT worker FROM attempts ORDER BY worker")
            .fetch_all(&db.pool)
            .await
            .expect("workers");
    assert_eq!(workers.len(), 2, "both workers took part: {workers:?}");
    let per_job: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM (SELECT job_id FROM attempts GROUP BY job_id HAVING count(*) > 1) t",
    )
    .fetch_one(&db.pool)
    .await
    .expect("attempts");
    assert_eq!(per_job, 0, "no job was attempted twice");
    drop((first, second));
}

#[tokio::test]
async fn a_worker_killed_mid_delivery_loses_nothing_another_finishes_after_the_lease() {
    let db = TestDatabase::create().await;
    // A slow server keeps the first worker's deliveries in flight when it is killed.
    let sink = SinkServer::start(SinkConfig {
        reply_delay: Duration::from_millis(300),
        ..SinkConfig::default()
    })
    .await;
    queue_messages(&db, 40).await;
    let doomed = Tern::start("worker", &db.url, &worker_env(&sink, "3s")).await;
    eventually(
        "the first worker to hold leases",
        Duration::from_secs(30),
        || async {
            let leased = leased_jobs(&db).await;
            (leased > 0).then_some(())
        },
    )
    .await;
    doomed.signal("KILL").await;
    let held = leased_jobs(&db).await;
    assert!(held > 0, "the killed worker left leased jobs behind");

    let rescuer = Tern::start("worker", &db.url, &worker_env(&sink, "30s")).await;
    all_delivered(&db, Duration::from_secs(120)).await;
    let counts = deliveries(&sink);
    assert_eq!(counts.len(), 80, "no recipient was lost");
    // The rescue shows on /metrics as lease expiries: every job it recovered was one the killed
    // worker still held (a few may have been finished between the kill and the count).
    let (_, response) = http_get(rescuer.admin, "/metrics").await;
    let body = response.split_once("\r\n\r\n").map_or("", |(_, b)| b);
    let scrape = Scrape::parse(body).expect("Prometheus text format");
    let recovered = scrape.sum("tern_worker_lease_expiries_total", &[]);
    assert!(
        recovered > 0.0 && recovered <= held as f64,
        "recovered {recovered} of {held} held"
    );
    drop(rescuer);
}

#[tokio::test]
async fn mail_is_delivered_while_nats_is_down() {
    let db = TestDatabase::create().await;
    let sink = SinkServer::start(SinkConfig::default()).await;
    // A NATS of this test's own, so stopping it disturbs no other test.
    let port = free_port();
    let store = std::env::temp_dir().join(format!("tern-e2e-nats-{port}"));
    let mut nats = Command::new("nats-server")
        .args(["-js", "-a", "127.0.0.1", "-p", &port.to_string()])
        .arg("-sd")
        .arg(&store)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("nats-server (scripts/services.sh installs it)");
    let mut env = worker_env(&sink, "30s");
    env.push(("TERN_NATS_URL", format!("nats://127.0.0.1:{port}")));
    let worker = Tern::start("worker", &db.url, &env).await;
    eventually(
        "the worker to connect to NATS",
        Duration::from_secs(30),
        || async {
            let (status, _) = tern_e2e::http_get(worker.admin, "/readyz").await;
            (status == 200).then_some(())
        },
    )
    .await;

    nats.kill().await.expect("stop nats-server");
    queue_messages(&db, 5).await;
    all_delivered(&db, Duration::from_secs(60)).await;
    assert_eq!(deliveries(&sink).len(), 10);
    drop(worker);
    let _ = std::fs::remove_dir_all(&store);
}

#[tokio::test]
async fn swaks_to_ingress_to_worker_to_sink_keeps_the_message_intact() {
    let db = TestDatabase::create().await;
    migrate(&db.url).await;
    let sink = SinkServer::start(SinkConfig::default()).await;
    let smtp = free_port();
    let prefix = tern_testkit::services::unique_nats_prefix();
    let ingress = Tern::start(
        "ingress",
        &db.url,
        &[
            ("TERN_INGRESS_SMTP_LISTEN", format!("127.0.0.1:{smtp}")),
            ("TERN_INGRESS_SUBMISSION_LISTEN", String::new()),
            ("TERN_NATS_PREFIX", prefix.clone()),
        ],
    )
    .await;
    let mut env = worker_env(&sink, "30s");
    env.push(("TERN_NATS_PREFIX", prefix));
    let worker = Tern::start("worker", &db.url, &env).await;

    let body = "Subject: e2e\r\n\r\n.a line starting with a dot\r\n..two dots\r\nend\r\n";
    swaks(
        smtp,
        &[
            "--from",
            "alice@example.org",
            "--to",
            "bob@tern.test",
            "--data",
            body,
        ],
    )
    .await;

    let received = sink.wait_for(1, Duration::from_secs(60)).await;
    let message = &received[0];
    assert_eq!(message.mail_from, "alice@example.org");
    assert_eq!(message.rcpt_to, vec!["bob@tern.test"]);
    let data = String::from_utf8_lossy(&message.data);
    assert!(data.starts_with("Received: from "), "{data}");
    // Dots were stuffed by swaks, unstuffed by the ingress, stuffed again by the worker and
    // unstuffed by the sink: the lines arrive as written.
    assert!(
        data.contains(body),
        "the message after Received: is intact: {data}"
    );
    let stored: Vec<u8> = sqlx::query_scalar("SELECT body FROM messages")
        .fetch_one(&db.pool)
        .await
        .expect("stored body");
    assert_eq!(message.data, stored, "delivered byte for byte as stored");
    drop((ingress, worker));
}

#[tokio::test]
async fn sigterm_lets_deliveries_finish_then_hands_back_every_lease() {
    let db = TestDatabase::create().await;
    let sink = SinkServer::start(SinkConfig {
        reply_delay: Duration::from_millis(200),
        ..SinkConfig::default()
    })
    .await;
    queue_messages(&db, 40).await;
    let mut env = worker_env(&sink, "60s");
    env.push(("TERN_WORKER_SHUTDOWN_GRACE", "1s".to_owned()));
    let mut worker = Tern::start("worker", &db.url, &env).await;
    eventually(
        "the worker to hold leases",
        Duration::from_secs(30),
        || async {
            let leased = leased_jobs(&db).await;
            (leased > 0).then_some(())
        },
    )
    .await;
    worker.signal("TERM").await;
    let exit = tokio::time::timeout(Duration::from_secs(60), worker.child.wait())
        .await
        .expect("the worker exits")
        .expect("wait");
    assert!(exit.success(), "{exit:?}");
    let leased = leased_jobs(&db).await;
    assert_eq!(
        leased, 0,
        "a stopped worker holds no leases: nothing waits for one to expire"
    );
    let queued: i64 =
        sqlx::query_scalar("SELECT count(*) FROM jobs WHERE status IN ('queued', 'deferred')")
            .fetch_one(&db.pool)
            .await
            .expect("count");
    assert!(
        queued > 0,
        "the unfinished jobs went back to the queue, due now"
    );
}

/// A minimal container image may have no CA certificates at all. The worker's name servers
/// are asked over plain UDP and TCP, so it must start there, and deliver (to a smarthost without
/// TLS).
#[tokio::test]
async fn a_worker_without_system_ca_certificates_starts_and_delivers() {
    let db = TestDatabase::create().await;
    migrate(&db.url).await;
    let sink = SinkServer::start(SinkConfig::default()).await;
    let mut env = worker_env(&sink, "30s");
    env.push((
        "SSL_CERT_FILE",
        "/nonexistent/ca-certificates.crt".to_owned(),
    ));
    env.push(("SSL_CERT_DIR", "/nonexistent/certs".to_owned()));
    let _worker = Tern::start("worker", &db.url, &env).await;
    queue_messages(&db, 3).await;
    all_delivered(&db, Duration::from_secs(30)).await;
}
