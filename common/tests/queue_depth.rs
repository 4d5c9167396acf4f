//! What the worker's metrics read from the store, against a real PostgreSQL: the queue depth by
//! status, the age of the oldest due job, and claims that recover an expired lease.

use std::time::Duration;

use tern_common::queue::{JobState, PgJobStore, QueueDepth};
use tern_common::queue::{NewMessage, NewRecipient, PgQueueStore, QueueStore};
use tern_testkit::TestDatabase;
use tern_testkit::wait::eventually;
use time::OffsetDateTime;

async fn queue(db: &TestDatabase, recipients: &[&str]) {
    let store = PgQueueStore::new(db.pool.clone(), Duration::from_secs(10));
    let recipients = recipients.iter().map(|r| NewRecipient::new(r)).collect();
    let message = NewMessage::local(
        "client.example",
        "a@example.org",
        recipients,
        b"Subject: t\r\n\r\nbody\r\n".to_vec(),
    );
    store.commit(&message).await.expect("commit");
}

#[tokio::test]
async fn depth_counts_unfinished_jobs_by_status_and_ages_the_oldest_due_one() {
    let db = TestDatabase::create().await;
    let store = PgJobStore::new(db.pool.clone());
    assert_eq!(
        store.queue_depth().await.expect("depth"),
        QueueDepth::default()
    );

    queue(
        &db,
        &["a@one.test", "b@one.test", "c@one.test", "d@one.test"],
    )
    .await;
    // Make one job due for an hour and lease, defer and deliver three others.
    sqlx::query("UPDATE jobs SET next_attempt_at = now() - interval '1 hour' WHERE rcpt_index = 0")
        .execute(&db.pool)
        .await
        .expect("age");
    let claimed = store
        .claim("w", Duration::from_secs(60), 10)
        .await
        .expect("claim");
    assert_eq!(claimed.len(), 4);
    let later = OffsetDateTime::now_utc() + time::Duration::hours(1);
    let finish = |job: usize, state| tern_common::queue::Finished {
        job: claimed[job].key(),
        state,
        status: "4.0.0",
        reply: "451 later",
        mx_host: None,
        remote_ip: None,
        tls_version: None,
        tls_cipher: None,
        dsn: None,
    };
    let recorded = store
        .finish(
            "w",
            &[
                finish(1, JobState::Deferred(later)),
                finish(2, JobState::Delivered),
            ],
        )
        .await
        .expect("finish");
    assert_eq!(recorded, 2);
    store.release("w").await.expect("release");
    // Released jobs are due now: the one queued an hour ago is not, it was re-leased.
    let depth = store.queue_depth().await.expect("depth");
    assert_eq!((depth.queued, depth.deferred, depth.leased), (2, 1, 0));
    assert!(depth.oldest_due < Duration::from_secs(600), "{depth:?}");

    sqlx::query("UPDATE jobs SET next_attempt_at = now() - interval '1 hour' WHERE rcpt_index = 3")
        .execute(&db.pool)
        .await
        .expect("age");
    let depth = store.queue_depth().await.expect("depth");
    assert!(
        depth.oldest_due >= Duration::from_secs(3599)
            && depth.oldest_due < Duration::from_secs(3700),
        "{depth:?}"
    );
}

#[tokio::test]
async fn a_claim_says_which_jobs_it_took_over_from_an_expired_lease() {
    let db = TestDatabase::create().await;
    queue(&db, &["a@one.test"]).await;
    let store = PgJobStore::new(db.pool.clone());
    let first = store
        .claim("dead", Duration::from_millis(1), 10)
        .await
        .expect("claim");
    assert_eq!(first.len(), 1);
    assert!(
        !first[0].lease_expired,
        "a fresh job has no lease to recover"
    );
    let again = eventually("the lease to expire", Duration::from_secs(10), || {
        let store = store.clone();
        async move {
            let jobs = store
                .claim("alive", Duration::from_secs(60), 10)
                .await
                .expect("claim");
            (!jobs.is_empty()).then_some(jobs)
        }
    })
    .await;
    assert!(again[0].lease_expired);
    let depth = store.queue_depth().await.expect("depth");
    assert_eq!((depth.queued, depth.leased), (0, 1));
}
