//! The worker's statements on the queue keep their cheap plans when the statistics lie. A queue
//! table is analysed when it is idle (every job finished), and the statistics then show every
//! index of unfinished jobs as empty; the next burst is planned with them. These tests build
//! that situation and check, through PostgreSQL's own scan counters, that renewing, postponing
//! and finishing find their jobs by primary key and never walk an index of unfinished or leased
//! jobs, and that the notification poll reads a table never analysed message by message.

use std::time::Duration;

use sqlx::PgPool;
use sqlx::postgres::PgPoolOptions;
use tern_common::queue::{
    ClaimedJob, Finished, JobKey, JobState, NewMessage, NewRecipient, PgJobStore,
};
use tern_common::queue::{PgQueueStore, QueueStore};
use tern_testkit::TestDatabase;
use tern_testkit::wait::eventually;
use time::OffsetDateTime;

/// `count` one-line messages, received now, with no jobs. Their ids are made as UUIDv7 ids are,
/// the milliseconds of now first, so that they land in today's partition.
async fn add_messages(pool: &PgPool, count: i32) {
    sqlx::query(
        "INSERT INTO messages (id, received_at, mail_from, helo, client_ip, protocol, body_type,
                               smtputf8, size, body)
         SELECT (lpad(to_hex((extract(epoch FROM clock_timestamp()) * 1000)::bigint), 12, '0')
                 || substr(md5(random()::text), 1, 20))::uuid, now(), 'a@example.org', 'h', '192.0.2.1', 'ESMTP', '7BIT',
                false, 1, 'x'
           FROM generate_series(1, $1)",
    )
    .bind(count)
    .execute(pool)
    .await
    .expect("messages");
}

/// Scans of each index of `jobs` so far, as PostgreSQL counts them: the sum over the index's
/// partitions, under the name of the partitioned index.
async fn index_scans(pool: &PgPool) -> Vec<(String, i64)> {
    let mut conn = pool.acquire().await.expect("connection");
    sqlx::query("SELECT pg_stat_clear_snapshot()")
        .execute(&mut *conn)
        .await
        .expect("clear snapshot");
    sqlx::query_as(
        "SELECT parent.relname::text, sum(s.idx_scan)::bigint
           FROM pg_stat_user_indexes s
           JOIN pg_inherits i ON i.inhrelid = s.indexrelid
           JOIN pg_class parent ON parent.oid = i.inhparent
          WHERE parent.relname LIKE 'jobs%'
          GROUP BY parent.relname ORDER BY parent.relname",
    )
    .fetch_all(&mut *conn)
    .await
    .expect("index scans")
}

fn scans_of(scans: &[(String, i64)], index: &str) -> i64 {
    scans
        .iter()
        .find(|(name, _)| name == index)
        .map_or_else(|| panic!("no index {index}"), |(_, n)| *n)
}

/// Sequential scans of `table` and rows of it updated so far, as PostgreSQL counts them, over
/// all its partitions.
async fn table_counts(pool: &PgPool, table: &str) -> (i64, i64) {
    let mut conn = pool.acquire().await.expect("connection");
    sqlx::query("SELECT pg_stat_clear_snapshot()")
        .execute(&mut *conn)
        .await
        .expect("clear snapshot");
    sqlx::query_as(
        "SELECT sum(seq_scan)::bigint, sum(n_tup_upd)::bigint FROM pg_stat_user_tables
          WHERE relid IN (SELECT relid FROM pg_partition_tree($1::regclass))",
    )
    .bind(table)
    .fetch_one(&mut *conn)
    .await
    .expect("table counters")
}

/// Has the one connection of `pool` report its counters now rather than within the next second,
/// waits until they show at least `updates` updated rows of `jobs` (the report has landed), and
/// returns the index counters.
async fn flushed(pool: &PgPool, observer: &PgPool, updates: i64) -> Vec<(String, i64)> {
    sqlx::query("SELECT pg_stat_force_next_flush()")
        .execute(pool)
        .await
        .expect("force flush");
    eventually("counters reported", Duration::from_secs(10), || async {
        (table_counts(observer, "jobs").await.1 >= updates).then_some(())
    })
    .await;
    index_scans(observer).await
}

#[tokio::test]
async fn leased_jobs_are_found_by_key_when_statistics_show_an_empty_queue() {
    let db = TestDatabase::create().await;
    // History: 5,000 finished jobs, analysed, so the statistics say nothing is unfinished.
    add_messages(&db.pool, 500).await;
    sqlx::raw_sql(
        "INSERT INTO jobs (message_id, rcpt_index, recipient, domain, status, next_attempt_at)
         SELECT m.id, g, 'r' || g || '@example.net', 'example.net', 'delivered', now()
           FROM messages m, generate_series(1, 10) AS g;",
    )
    .execute(&db.pool)
    .await
    .expect("history");
    sqlx::raw_sql("VACUUM ANALYZE jobs")
        .execute(&db.pool)
        .await
        .expect("analyse");
    // Then a burst the statistics have not seen.
    let recipients: Vec<String> = (0..40).map(|i| format!("u{i}@example.com")).collect();
    let queue = PgQueueStore::new(db.pool.clone(), Duration::from_secs(10));
    queue
        .commit(&NewMessage::local(
            "client.example",
            "a@example.org",
            recipients.iter().map(|r| NewRecipient::new(r)).collect(),
            b"Subject: t\r\n\r\nbody\r\n".to_vec(),
        ))
        .await
        .expect("commit");

    // The worker's statements on one connection of their own, so its counters can be flushed.
    let pool = PgPoolOptions::new()
        .max_connections(1)
        .connect(&db.url)
        .await
        .expect("worker pool");
    let store = PgJobStore::new(pool.clone());
    let jobs = store
        .claim("worker-new", Duration::from_secs(60), 100)
        .await
        .expect("claim");
    assert_eq!(jobs.len(), 40);
    let before = flushed(&pool, &db.pool, 40).await;

    // Every statement that names leased jobs by id: renewing all, postponing half, finishing
    // the rest.
    let keys: Vec<JobKey> = jobs.iter().map(ClaimedJob::key).collect();
    let (postponed, finished) = keys.split_at(20);
    assert_eq!(
        store
            .renew_leases("worker-new", &keys, Duration::from_secs(60))
            .await
            .expect("renew"),
        40
    );
    let later = OffsetDateTime::now_utc() + time::Duration::hours(1);
    assert_eq!(
        store
            .postpone("worker-new", postponed, later)
            .await
            .expect("postpone"),
        20
    );
    let outcomes: Vec<Finished<'_>> = finished
        .iter()
        .map(|&job| Finished {
            job,
            state: JobState::Delivered,
            status: "2.0.0",
            reply: "250 2.0.0 ok",
            mx_host: Some("mx.example.com"),
            remote_ip: None,
            tls_version: None,
            tls_cipher: None,
            dsn: None,
        })
        .collect();
    assert_eq!(
        store.finish("worker-new", &outcomes).await.expect("finish"),
        20
    );
    let after = flushed(&pool, &db.pool, 40 + 40 + 20 + 20).await;

    for index in ["jobs_claimable", "jobs_domain_unfinished", "jobs_leased_by"] {
        assert_eq!(
            scans_of(&after, index),
            scans_of(&before, index),
            "a statement naming jobs by id scanned {index}: {before:?} -> {after:?}"
        );
    }
}

#[tokio::test]
async fn the_notification_poll_reads_owed_messages_by_key_in_a_table_never_analysed() {
    let db = TestDatabase::create().await;
    let pool = PgPoolOptions::new()
        .max_connections(1)
        .connect(&db.url)
        .await
        .expect("worker pool");
    // 20,000 messages, statistics never taken; one owes a notification, one is in flight.
    add_messages(&pool, 20_000).await;
    sqlx::raw_sql(
        "INSERT INTO jobs (message_id, rcpt_index, recipient, domain, status, next_attempt_at,
                           lease_owner, dsn_pending)
         SELECT id, 0, 'r@example.net', 'example.net',
                CASE WHEN n = 1 THEN 'bounced' ELSE 'leased' END, now(),
                CASE WHEN n = 1 THEN NULL ELSE 'worker-other' END,
                CASE WHEN n = 1 THEN 'failed' END
           FROM (SELECT id, row_number() OVER () AS n FROM messages LIMIT 2) AS m;
         UPDATE jobs SET updated_at = now();",
    )
    .execute(&pool)
    .await
    .expect("messages");
    flushed(&pool, &db.pool, 2).await;
    let (before, _) = table_counts(&db.pool, "messages").await;

    let store = PgJobStore::new(pool.clone());
    let batch = store
        .next_dsn_batch()
        .await
        .expect("poll")
        .expect("the owing message");
    assert_eq!(batch.owed.len(), 1);
    drop(batch);
    // Something to count, so that the report is known to have landed.
    sqlx::query("UPDATE jobs SET updated_at = now() WHERE status = 'leased'")
        .execute(&pool)
        .await
        .expect("touch");
    flushed(&pool, &db.pool, 3).await;
    assert_eq!(
        table_counts(&db.pool, "messages").await.0,
        before,
        "the poll read messages one by one, not by scanning them all"
    );
}
