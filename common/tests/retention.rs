//! The retention sweep against a real PostgreSQL: exactly the finished messages past their time
//! lose their bodies, then their history; two workers sweeping at once delete each row once.

use std::time::Duration;

use tern_common::queue::QueueId;
use tern_common::queue::{NewMessage, NewRecipient, PgJobStore, PgQueueStore, QueueStore};
use tern_testkit::TestDatabase;

/// Queues a message received `age` ago whose jobs are all `status`, last changed `age` ago.
async fn message(db: &TestDatabase, age: &str, status: &str, dsn_pending: Option<&str>) -> QueueId {
    let m = NewMessage::local(
        "test",
        "a@origin.test",
        vec![
            NewRecipient::new("b@dest.test"),
            NewRecipient::new("c@dest.test"),
        ],
        b"Subject: x\r\n\r\nbody\r\n".to_vec(),
    );
    PgQueueStore::new(db.pool.clone(), Duration::from_secs(10))
        .commit(&m)
        .await
        .expect("commit");
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "UPDATE messages SET received_at = now() - interval '{age}' WHERE id = $1"
    )))
    .bind(m.id)
    .execute(&db.pool)
    .await
    .expect("age the message");
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "UPDATE jobs SET status = $2, dsn_pending = $3, updated_at = now() - interval '{age}'
          WHERE message_id = $1"
    )))
    .bind(m.id)
    .bind(status)
    .bind(dsn_pending)
    .execute(&db.pool)
    .await
    .expect("finish the jobs");
    sqlx::query(
        "INSERT INTO attempts (job_id, message_id, worker, outcome, status, reply)
         SELECT id, message_id, 'test', 'deferred', '4.0.0', 'an earlier try' FROM jobs
          WHERE message_id = $1",
    )
    .bind(m.id)
    .execute(&db.pool)
    .await
    .expect("an attempt");
    m.id
}

async fn attempts(db: &TestDatabase, id: QueueId) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM attempts WHERE message_id = $1")
        .bind(id)
        .fetch_one(&db.pool)
        .await
        .expect("count")
}

async fn state(db: &TestDatabase, id: QueueId) -> Option<(usize, bool)> {
    sqlx::query_as::<_, (Vec<u8>, Option<time::OffsetDateTime>)>(
        "SELECT body, body_deleted_at FROM messages WHERE id = $1",
    )
    .bind(id)
    .fetch_optional(&db.pool)
    .await
    .expect("message")
    .map(|(body, deleted)| (body.len(), deleted.is_some()))
}

#[tokio::test]
async fn two_sweepers_delete_exactly_what_is_due_and_each_row_once() {
    let db = TestDatabase::create().await;
    let store = PgJobStore::new(db.pool.clone());
    let mut old_finished = Vec::new();
    for _ in 0..30 {
        old_finished.push(message(&db, "2 days", "delivered", None).await);
    }
    let bounced = message(&db, "2 days", "bounced", None).await;
    let recent = message(&db, "1 hour", "delivered", None).await;
    let deferred = message(&db, "2 days", "deferred", None).await;
    let owes_report = message(&db, "2 days", "bounced", Some("failed")).await;
    let ancient = message(&db, "8 days", "expired", None).await;
    let ancient_open = message(&db, "8 days", "held", None).await;

    let day = Duration::from_secs(86_400);
    let week = 7 * day;
    // Two workers at once, in batches of 4: the batches may interleave, never overlap.
    let sweep = |store: PgJobStore| async move {
        let mut total = 0;
        loop {
            let n = store.sweep_bodies(day, 4).await.expect("sweep");
            if n == 0 {
                return total;
            }
            total += n;
        }
    };
    let (a, b) = tokio::join!(sweep(store.clone()), sweep(store.clone()));
    // The 30 finished two days ago, the bounced one and the ancient one.
    assert_eq!(a + b, 32, "each body deleted once: {a} + {b}");
    for id in old_finished.iter().chain([&bounced, &ancient]) {
        assert_eq!(state(&db, *id).await, Some((0, true)));
    }
    for id in [recent, deferred, owes_report, ancient_open] {
        assert_eq!(
            state(&db, id)
                .await
                .map(|(len, deleted)| (len > 0, deleted)),
            Some((true, false)),
            "{id} keeps its body"
        );
    }

    let (a, b) = tokio::join!(
        store.sweep_history(week, 500),
        store.sweep_history(week, 500)
    );
    let (a, b) = (a.expect("sweep"), b.expect("sweep"));
    assert_eq!(a + b, 1, "only the finished message older than a week");
    assert_eq!(state(&db, ancient).await, None);
    let orphans: i64 = sqlx::query_scalar("SELECT count(*) FROM jobs WHERE message_id = $1")
        .bind(ancient)
        .fetch_one(&db.pool)
        .await
        .expect("count");
    assert_eq!(orphans, 0, "its jobs went with it");
    assert_eq!(attempts(&db, ancient).await, 0, "its attempts went with it");
    assert!(state(&db, ancient_open).await.is_some());
    assert!(
        attempts(&db, ancient_open).await > 0,
        "an unfinished message keeps its attempts"
    );
    assert_eq!(
        store.sweep_bodies(day, 500).await.expect("sweep"),
        0,
        "nothing left"
    );
}
