//! `tern worker` processes sharing a destination's cluster-wide connection limit: one SIGKILLed
//! while it holds the only slot leaves it to expire with its lease, and the next worker delivers
//! then, not before and not much after.

use std::time::{Duration, Instant};

use tern_common::queue::{NewMessage, NewRecipient, PgQueueStore, QueueStore};
use tern_e2e::{Tern, migrate};
use tern_testkit::TestDatabase;
use tern_testkit::sink::{SinkConfig, SinkServer};
use tern_testkit::wait::eventually;

const LEASE: Duration = Duration::from_secs(4);

fn worker_env(sink: &SinkServer, id: &str) -> Vec<(&'static str, String)> {
    vec![
        (
            "TERN_WORKER_SMARTHOST",
            format!("smtp:[127.0.0.1]:{}", sink.addr().port()),
        ),
        ("TERN_WORKER_ID", id.to_owned()),
        ("TERN_WORKER_POLL_INTERVAL", "200ms".to_owned()),
        ("TERN_WORKER_LEASE", format!("{}s", LEASE.as_secs())),
        ("TERN_WORKER_HOSTNAME", "worker.test".to_owned()),
        // One connection to the relay, for the whole cluster.
        ("TERN_WORKER_DESTINATION_CONCURRENCY", "1".to_owned()),
    ]
}

async fn queue(db: &TestDatabase, subject: &str) -> tern_common::queue::QueueId {
    let body = format!("Subject: {subject}\r\n\r\nbody\r\n");
    let message = NewMessage::local(
        "e2e.test",
        "sender@e2e.test",
        vec![NewRecipient::new("someone@dest.test")],
        body.into_bytes(),
    );
    PgQueueStore::new(db.pool.clone(), Duration::from_secs(10))
        .commit(&message)
        .await
        .expect("queue");
    message.id
}

#[tokio::test]
async fn a_killed_workers_connection_slot_comes_free_when_its_lease_runs_out() {
    let db = TestDatabase::create().await;
    migrate(&db.url).await;
    let sink = SinkServer::start(SinkConfig::default()).await;

    let mut first = Tern::start("worker", &db.url, &worker_env(&sink, "first")).await;
    queue(&db, "one").await;
    sink.wait_for(1, Duration::from_secs(20)).await;
    // Its connection stays open, idle, for the next message: it still holds the slot.
    let holder: String = sqlx::query_scalar("SELECT holder FROM destination_slots")
        .fetch_one(&db.pool)
        .await
        .expect("the slot of the idle connection");
    assert_eq!(holder, "first");
    first.signal("KILL").await;
    first.child.wait().await.expect("killed");
    let killed = Instant::now();
    // Renewed no more: this is when the slot comes free.
    let expires: time::OffsetDateTime =
        sqlx::query_scalar("SELECT expires_at FROM destination_slots WHERE holder = 'first'")
            .fetch_one(&db.pool)
            .await
            .expect("the dead worker's slot");

    let second = queue(&db, "two").await;
    let _second_worker = Tern::start("worker", &db.url, &worker_env(&sink, "second")).await;
    sink.wait_for(2, Duration::from_secs(30)).await;
    let waited = killed.elapsed();
    // Not before the dead worker's slot expired … (the attempt is recorded just after the
    // sink has the message, so it is waited for)
    let attempted: time::OffsetDateTime = eventually(
        "the second message's attempt",
        Duration::from_secs(10),
        || async {
            sqlx::query_scalar("SELECT min(attempted_at) FROM attempts WHERE message_id = $1")
                .bind(second)
                .fetch_one(&db.pool)
                .await
                .expect("attempts")
        },
    )
    .await;
    assert!(
        attempted >= expires,
        "attempted at {attempted}, the slot expired at {expires}"
    );
    // … and soon after.
    assert!(
        waited <= LEASE + Duration::from_secs(5),
        "delivered {waited:?} after the kill; the lease is {LEASE:?}"
    );
    // … and never two connections at once.
    assert_eq!(sink.peak_connections(), 1);
    let holder = eventually(
        "the second worker to hold the slot",
        Duration::from_secs(5),
        || async {
            sqlx::query_scalar::<_, String>("SELECT holder FROM destination_slots")
                .fetch_optional(&db.pool)
                .await
                .expect("slots")
        },
    )
    .await;
    assert_eq!(holder, "second");
}
