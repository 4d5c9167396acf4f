//! The migration that partitions the queue by day, applied to a database holding queued mail:
//! every message, job and attempt is still there afterwards, in the partition of the day the
//! migration ran; the queued jobs are claimed, finished and notified on as before; new mail gets
//! new ids from where the old ones stopped; and that first partition goes with its day.

use std::time::Duration;

use tern_common::queue::{
    ClaimedJob, Finished, JobState, NewMessage, NewRecipient, PgJobStore, PgQueueStore, QueueStore,
};
use tern_testkit::TestDatabase;

/// The last migration before the queue was partitioned.
const BEFORE_PARTITIONS: i64 = 20261207000009;

async fn commit(store: &PgQueueStore, recipients: &[&str]) -> NewMessage {
    let message = NewMessage::local(
        "client.example",
        "a@example.org",
        recipients.iter().map(|r| NewRecipient::new(r)).collect(),
        b"Subject: before\r\n\r\nqueued before the upgrade\r\n".to_vec(),
    );
    store.commit(&message).await.expect("commit");
    message
}

async fn count(db: &TestDatabase, sql: &str) -> i64 {
    sqlx::query_scalar(sqlx::AssertSqlSafe(sql.to_owned()))
        .fetch_one(&db.pool)
        .await
        .expect(sql)
}

#[tokio::test]
async fn queued_mail_survives_partitioning_and_is_delivered_after_it() {
    let db = TestDatabase::empty().await;
    sqlx::migrate!("../migrations")
        .run_to(BEFORE_PARTITIONS, &db.pool)
        .await
        .expect("migrate to the unpartitioned queue");
    let queue = PgQueueStore::new(db.pool.clone(), Duration::from_secs(10));
    let store = PgJobStore::new(db.pool.clone());
    // Before: one message delivered to one of its two recipients (an attempt recorded), one
    // message waiting.
    commit(&queue, &["b@example.net", "c@example.net"]).await;
    commit(&queue, &["d@example.net"]).await;
    let claimed = store
        .claim("old-worker", Duration::from_secs(60), 1)
        .await
        .expect("claim before");
    assert_eq!(claimed.len(), 1);
    // Finished through the statement of that time, which named jobs by id alone.
    sqlx::query(
        "WITH done AS (UPDATE jobs SET status = 'delivered', lease_owner = NULL,
                              attempts = 1, updated_at = now()
                        WHERE id = $1 RETURNING id, message_id)
         INSERT INTO attempts (job_id, message_id, worker, outcome, status, reply)
         SELECT id, message_id, 'old-worker', 'delivered', '2.0.0', '250 ok' FROM done",
    )
    .bind(claimed[0].id)
    .execute(&db.pool)
    .await
    .expect("finish before");
    let before: Vec<(i64, String)> = sqlx::query_as("SELECT id, status FROM jobs ORDER BY id")
        .fetch_all(&db.pool)
        .await
        .expect("jobs before");

    tern_common::queue::migrate(&db.pool)
        .await
        .expect("the partitioning migration");

    // Everything is still there, in the partition of the day the migration ran.
    let after: Vec<(i64, String)> = sqlx::query_as("SELECT id, status FROM jobs ORDER BY id")
        .fetch_all(&db.pool)
        .await
        .expect("jobs after");
    assert_eq!(after, before);
    assert_eq!(count(&db, "SELECT count(*) FROM messages").await, 2);
    assert_eq!(count(&db, "SELECT count(*) FROM attempts").await, 1);
    let mut partitions: Vec<String> = sqlx::query_scalar(
        "SELECT DISTINCT tableoid::regclass::text FROM messages
         UNION SELECT DISTINCT tableoid::regclass::text FROM jobs",
    )
    .fetch_all(&db.pool)
    .await
    .expect("partitions");
    let today: String = sqlx::query_scalar("SELECT to_char(now() AT TIME ZONE 'UTC', 'YYYYMMDD')")
        .fetch_one(&db.pool)
        .await
        .expect("today");
    partitions.sort();
    assert_eq!(
        partitions,
        [format!("jobs_{today}"), format!("messages_{today}")]
    );

    // The waiting jobs are claimed and finished by key, as a worker does now.
    let waiting = store
        .claim("new-worker", Duration::from_secs(60), 10)
        .await
        .expect("claim after");
    let mut recipients: Vec<&str> = waiting.iter().map(|job| job.recipient.as_str()).collect();
    recipients.sort_unstable();
    assert_eq!(recipients, ["c@example.net", "d@example.net"]);
    let outcomes: Vec<Finished<'_>> = waiting
        .iter()
        .map(|job: &ClaimedJob| Finished {
            job: job.key(),
            state: JobState::Delivered,
            status: "2.0.0",
            reply: "250 ok",
            mx_host: None,
            remote_ip: None,
            tls_version: None,
            tls_cipher: None,
            dsn: None,
        })
        .collect();
    assert_eq!(
        store.finish("new-worker", &outcomes).await.expect("finish"),
        2
    );
    assert_eq!(
        count(&db, "SELECT count(*) FROM jobs WHERE status = 'delivered'").await,
        3
    );
    assert_eq!(count(&db, "SELECT count(*) FROM attempts").await, 3);

    // New mail takes new ids after the old ones, into today's partition.
    let third = commit(&queue, &["e@example.net"]).await;
    let (job_id, partition): (i64, String) =
        sqlx::query_as("SELECT id, tableoid::regclass::text FROM jobs WHERE message_id = $1")
            .bind(third.id)
            .fetch_one(&db.pool)
            .await
            .expect("the new job");
    assert!(job_id > before.last().expect("jobs").0, "{job_id}");
    assert_eq!(partition, format!("jobs_{today}"));
}
