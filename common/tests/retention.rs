//! Retention against a real PostgreSQL: exactly the finished messages past their time lose
//! their bodies, then their history; two workers sweeping at once delete each row once; a past
//! day's partitions are dropped whole unless a straggler keeps them.

use std::time::Duration;

use tern_common::queue::QueueId;
use tern_common::queue::{NewMessage, NewRecipient, PgJobStore, PgQueueStore, QueueStore};
use tern_testkit::TestDatabase;

/// A queue id made `age` ago, as the ingress would have made it then.
fn id_made(age: time::Duration) -> QueueId {
    let at = time::OffsetDateTime::now_utc() - age;
    let stamp =
        uuid::Timestamp::from_unix(uuid::NoContext, at.unix_timestamp() as u64, at.nanosecond());
    QueueId::from(uuid::Uuid::new_v7(stamp))
}

/// Queues a message received `age` ago whose jobs are all `status`, last changed `age` ago.
async fn message(db: &TestDatabase, age: &str, status: &str, dsn_pending: Option<&str>) -> QueueId {
    let seconds: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
        "SELECT extract(epoch FROM interval '{age}')::bigint"
    )))
    .fetch_one(&db.pool)
    .await
    .expect("age");
    let mut m = NewMessage::local(
        "test",
        "a@origin.test",
        vec![
            NewRecipient::new("b@dest.test"),
            NewRecipient::new("c@dest.test"),
        ],
        b"Subject: x\r\n\r\nbody\r\n".to_vec(),
    );
    m.id = id_made(time::Duration::seconds(seconds));
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

/// The partition suffix (YYYYMMDD, UTC) of the day `days` before today.
async fn day_before(db: &TestDatabase, days: i32) -> String {
    sqlx::query_scalar("SELECT to_char((now() AT TIME ZONE 'UTC')::date - $1, 'YYYYMMDD')")
        .bind(days)
        .fetch_one(&db.pool)
        .await
        .expect("day")
}

async fn exists(db: &TestDatabase, table: &str) -> bool {
    sqlx::query_scalar("SELECT to_regclass($1) IS NOT NULL")
        .bind(table)
        .fetch_one(&db.pool)
        .await
        .expect("regclass")
}

#[tokio::test]
async fn past_days_are_dropped_whole_and_a_day_with_a_straggler_waits_for_it() {
    let db = TestDatabase::create().await;
    let store = PgJobStore::new(db.pool.clone());
    // A new database's first partitions hold every id up to the end of the day it was made;
    // here they are empty, and go. Each day from twelve days ago gets partitions of its own, as
    // a queue running for a while has them.
    sqlx::raw_sql(
        "DO $$
         DECLARE first record;
         BEGIN
             FOR first IN SELECT c.relname FROM pg_class c
                           WHERE c.relispartition
                             AND pg_get_expr(c.relpartbound, c.oid) LIKE '%MINVALUE%'
             LOOP
                 EXECUTE format('DROP TABLE %I', first.relname);
             END LOOP;
             PERFORM queue_prepare_partitions(3, (now() AT TIME ZONE 'UTC')::date - 12);
         END $$;",
    )
    .execute(&db.pool)
    .await
    .expect("past days");
    let ten = day_before(&db, 10).await;
    let nine = day_before(&db, 9).await;
    let eight = day_before(&db, 8).await;
    let three = day_before(&db, 3).await;
    let mut done = Vec::new();
    for _ in 0..3 {
        done.push(message(&db, "10 days", "delivered", None).await);
    }
    let finished_nine = message(&db, "9 days", "delivered", None).await;
    let held = message(&db, "9 days", "held", None).await;
    let owes_report = message(&db, "8 days", "bounced", Some("failed")).await;
    let recent = message(&db, "3 days", "delivered", None).await;
    assert!(
        exists(&db, &format!("messages_{ten}")).await,
        "the test's days exist"
    );
    // A drop cut short earlier: one of the day's tables detached, not dropped.
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
        "ALTER TABLE attempts DETACH PARTITION attempts_{ten}"
    )))
    .execute(&db.pool)
    .await
    .expect("detach");

    let week = Duration::from_secs(7 * 86_400);
    let (a, b) = tokio::join!(store.drop_past_days(week), store.drop_past_days(week));
    let (a, b) = (
        a.expect("drop").unwrap_or_default(),
        b.expect("drop").unwrap_or_default(),
    );
    let mut dropped: Vec<String> = a
        .dropped
        .iter()
        .chain(&b.dropped)
        .map(|day| day.to_string().replace('-', ""))
        .collect();
    dropped.sort();
    assert_eq!(
        dropped,
        [
            day_before(&db, 12).await,
            day_before(&db, 11).await,
            ten.clone()
        ],
        "each day past the week and without stragglers, dropped once"
    );
    let kept = if a.kept.is_empty() { &b.kept } else { &a.kept };
    let kept: Vec<(String, i64)> = kept
        .iter()
        .map(|(day, n)| (day.to_string().replace('-', ""), *n))
        .collect();
    assert_eq!(kept, [(nine.clone(), 2), (eight.clone(), 2)]);
    for table in ["messages", "jobs", "attempts"] {
        assert!(
            !exists(&db, &format!("{table}_{ten}")).await,
            "{table}_{ten}"
        );
        assert!(
            exists(&db, &format!("{table}_{nine}")).await,
            "{table}_{nine}"
        );
        assert!(
            exists(&db, &format!("{table}_{three}")).await,
            "{table}_{three}"
        );
    }
    for id in &done {
        assert_eq!(state(&db, *id).await, None);
    }

    // Meanwhile the row sweep forgets what is finished in the kept days, and nothing else.
    assert_eq!(store.sweep_history(week, 500).await.expect("sweep"), 1);
    assert_eq!(state(&db, finished_nine).await, None);
    for id in [held, owes_report, recent] {
        assert!(state(&db, id).await.is_some(), "{id} is kept");
    }

    // Once the stragglers are done, their days go too; the recent day stays.
    sqlx::query(
        "UPDATE jobs SET status = 'delivered', dsn_pending = NULL WHERE message_id = ANY($1)",
    )
    .bind(vec![held, owes_report])
    .execute(&db.pool)
    .await
    .expect("finish the stragglers");
    let swept = store
        .drop_past_days(week)
        .await
        .expect("drop")
        .expect("no other worker at it");
    assert_eq!(swept.dropped.len(), 2, "{swept:?}");
    assert!(swept.kept.is_empty(), "{swept:?}");
    assert!(state(&db, recent).await.is_some());
    assert!(exists(&db, &format!("messages_{three}")).await);
}
