//! The job store against a real PostgreSQL: claims never overlap, an expired lease makes a job
//! claimable again, a lost lease cannot overwrite the new owner's work, and owed notifications
//! are queued exactly once.

use std::collections::HashSet;
use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use tern_common::queue::{
    ClaimedJob, DsnOwed, FinishBatcher, Finished, JobKey, JobState, PgJobStore,
};
use tern_common::queue::{NewMessage, NewRecipient, PgQueueStore, QueueStore};
use tern_testkit::TestDatabase;
use tern_testkit::wait::eventually;
use time::OffsetDateTime;

fn message(from: &str, recipients: &[&str]) -> NewMessage {
    let recipients = recipients.iter().map(|r| NewRecipient::new(r)).collect();
    NewMessage::local(
        "client.example",
        from,
        recipients,
        b"Subject: t\r\n\r\nbody\r\n".to_vec(),
    )
}

async fn queue(db: &TestDatabase, messages: &[NewMessage]) {
    let store = PgQueueStore::new(db.pool.clone(), Duration::from_secs(10));
    for m in messages {
        store.commit(m).await.expect("commit");
    }
}

/// One message to `recipients`, queued and claimed by `owner`.
async fn queue_and_claim(
    db: &TestDatabase,
    recipients: &[&str],
    owner: &str,
    lease: Duration,
) -> (PgJobStore, Vec<ClaimedJob>) {
    queue(db, &[message("a@example.org", recipients)]).await;
    let store = PgJobStore::new(db.pool.clone());
    let jobs = store.claim(owner, lease, 10).await.expect("claim");
    (store, jobs)
}

fn finished(job: &ClaimedJob, state: JobState, dsn: Option<DsnOwed>) -> Finished<'static> {
    Finished {
        job: job.key(),
        state,
        status: "5.1.1",
        reply: "550 5.1.1 no such user",
        mx_host: Some("mx.example.net"),
        remote_ip: Some(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1))),
        tls_version: None,
        tls_cipher: None,
        dsn,
    }
}

async fn job_status(db: &TestDatabase, id: i64) -> (String, i32, Option<String>) {
    sqlx::query_as("SELECT status, attempts, lease_owner FROM jobs WHERE id = $1")
        .bind(id)
        .fetch_one(&db.pool)
        .await
        .expect("job")
}

#[tokio::test]
async fn concurrent_claimers_never_get_the_same_job() {
    let db = TestDatabase::create().await;
    let messages: Vec<NewMessage> = (0..60)
        .map(|_| message("a@example.org", &["x@one.test", "y@two.test"]))
        .collect();
    queue(&db, &messages).await;
    let store = PgJobStore::new(db.pool.clone());
    let mut claimers = Vec::new();
    for n in 0..6 {
        let store = store.clone();
        claimers.push(tokio::spawn(async move {
            let owner = format!("worker-{n}");
            let mut mine = Vec::new();
            loop {
                let jobs = store
                    .claim(&owner, Duration::from_secs(60), 7)
                    .await
                    .expect("claim");
                if jobs.is_empty() {
                    return mine;
                }
                mine.extend(jobs.into_iter().map(|j| j.id));
            }
        }));
    }
    let mut seen = HashSet::new();
    for claimer in claimers {
        for id in claimer.await.expect("claimer") {
            assert!(seen.insert(id), "job {id} claimed twice");
        }
    }
    assert_eq!(seen.len(), 120);
}

#[tokio::test]
async fn claims_come_sorted_by_domain_then_message_then_recipient() {
    let db = TestDatabase::create().await;
    queue(
        &db,
        &[message(
            "a@example.org",
            &["b@zz.test", "a@aa.test", "c@zz.test"],
        )],
    )
    .await;
    let store = PgJobStore::new(db.pool.clone());
    let jobs = store
        .claim("w", Duration::from_secs(60), 10)
        .await
        .expect("claim");
    let order: Vec<(&str, i32)> = jobs
        .iter()
        .map(|j| (j.domain.as_str(), j.rcpt_index))
        .collect();
    assert_eq!(order, vec![("aa.test", 1), ("zz.test", 0), ("zz.test", 2)]);
}

#[tokio::test]
async fn an_expired_lease_makes_the_job_claimable_again_and_fences_the_old_owner() {
    let db = TestDatabase::create().await;
    queue(&db, &[message("a@example.org", &["b@one.test"])]).await;
    let store = PgJobStore::new(db.pool.clone());
    let first = store
        .claim("dead", Duration::from_millis(1), 10)
        .await
        .expect("claim");
    assert_eq!(first.len(), 1);
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
    assert_eq!(again[0].id, first[0].id);

    // The first owner comes back and tries to record its outcome: refused, nothing written.
    let recorded = store
        .finish("dead", &[finished(&first[0], JobState::Delivered, None)])
        .await
        .expect("finish");
    assert_eq!(recorded, 0);
    let attempts: i64 = sqlx::query_scalar("SELECT count(*) FROM attempts")
        .fetch_one(&db.pool)
        .await
        .expect("count");
    assert_eq!(attempts, 0);

    let recorded = store
        .finish("alive", &[finished(&first[0], JobState::Delivered, None)])
        .await
        .expect("finish");
    assert_eq!(recorded, 1);
    assert_eq!(
        job_status(&db, first[0].id).await,
        ("delivered".to_owned(), 1, None)
    );
    let attempt: (String, String, String, Option<String>) =
        sqlx::query_as("SELECT worker, outcome, reply, mx_host FROM attempts WHERE job_id = $1")
            .bind(first[0].id)
            .fetch_one(&db.pool)
            .await
            .expect("attempt");
    assert_eq!(attempt.0, "alive");
    assert_eq!(attempt.1, "delivered");
    assert_eq!(attempt.2, "550 5.1.1 no such user");
    assert_eq!(attempt.3.as_deref(), Some("mx.example.net"));
}

#[tokio::test]
async fn renewed_leases_keep_jobs_from_other_workers_and_only_those_named_are_renewed() {
    let db = TestDatabase::create().await;
    let (store, claimed) = queue_and_claim(
        &db,
        &["b@one.test", "c@two.test"],
        "owner",
        Duration::from_secs(2),
    )
    .await;
    assert_eq!(claimed.len(), 2);
    let (working, given_up) = (claimed[0].id, claimed[1].id);
    let held = store
        .renew_leases("owner", &[claimed[0].key()], Duration::from_secs(600))
        .await
        .expect("renew");
    assert_eq!(held, 1);
    let lease_left = |id: i64| {
        let pool = db.pool.clone();
        async move {
            sqlx::query_scalar::<_, f64>(
                "SELECT extract(epoch FROM lease_expires_at - now())::float8 FROM jobs WHERE id = $1",
            )
            .bind(id)
            .fetch_one(&pool)
            .await
            .expect("lease")
        }
    };
    let renewed = lease_left(working).await;
    assert!(
        renewed > 60.0,
        "lease was not pushed forward: {renewed}s left"
    );
    let untouched = lease_left(given_up).await;
    assert!(
        untouched <= 2.0,
        "a job not named was renewed: {untouched}s left"
    );
    assert_eq!(
        store
            .renew_leases(
                "someone else",
                &[claimed[0].key()],
                Duration::from_secs(600)
            )
            .await
            .expect("renew"),
        0,
        "a lease is renewed only by its owner"
    );

    let other = eventually(
        "the unrenewed lease to run out",
        Duration::from_secs(10),
        || {
            let store = store.clone();
            async move {
                let jobs = store
                    .claim("other", Duration::from_secs(60), 10)
                    .await
                    .expect("claim");
                (!jobs.is_empty()).then_some(jobs)
            }
        },
    )
    .await;
    assert_eq!(other.iter().map(|j| j.id).collect::<Vec<_>>(), [given_up]);
}

#[tokio::test]
async fn deferred_jobs_wait_for_their_time_and_release_hands_leases_back() {
    let db = TestDatabase::create().await;
    queue(
        &db,
        &[message("a@example.org", &["b@one.test", "c@one.test"])],
    )
    .await;
    let store = PgJobStore::new(db.pool.clone());
    let jobs = store
        .claim("w", Duration::from_secs(60), 10)
        .await
        .expect("claim");
    let later = OffsetDateTime::now_utc() + time::Duration::hours(1);
    let deferred = finished(&jobs[0], JobState::Deferred(later), None);
    assert!((store.finish("w", &[deferred]).await.expect("finish") == 1));
    assert_eq!(store.release("w").await.expect("release"), 1);

    let due = store
        .claim("w2", Duration::from_secs(60), 10)
        .await
        .expect("claim");
    assert_eq!(
        due.len(),
        1,
        "only the released job is due; the deferred one waits an hour"
    );
    assert_eq!(due[0].id, jobs[1].id);
    assert_eq!(
        job_status(&db, jobs[0].id).await,
        ("deferred".to_owned(), 1, None)
    );
}

#[tokio::test]
async fn owed_notifications_wait_for_recipients_in_flight_and_are_queued_once() {
    let db = TestDatabase::create().await;
    let original = message("sender@example.org", &["x@one.test", "y@one.test"]);
    queue(&db, std::slice::from_ref(&original)).await;
    let store = PgJobStore::new(db.pool.clone());
    let jobs = store
        .claim("w", Duration::from_secs(60), 10)
        .await
        .expect("claim");
    let bounce = |job| finished(job, JobState::Bounced, Some(DsnOwed::Failed));
    assert!(
        (store
            .finish("w", &[bounce(&jobs[0])])
            .await
            .expect("finish")
            == 1)
    );
    let early = store.next_dsn_batch().await.expect("batch");
    assert!(early.is_none(), "the other recipient is still in flight");
    assert!(
        (store
            .finish("w", &[bounce(&jobs[1])])
            .await
            .expect("finish")
            == 1)
    );

    let batch = store.next_dsn_batch().await.expect("batch").expect("owed");
    assert_eq!(batch.message.id, original.id);
    let owed: Vec<&str> = batch.owed.iter().map(|o| o.recipient.as_str()).collect();
    assert_eq!(owed, vec!["x@one.test", "y@one.test"]);
    assert_eq!(batch.owed[0].status, "5.1.1");
    assert_eq!(batch.owed[0].remote_mta.as_deref(), Some("mx.example.net"));
    // While one batch holds the message, nobody else gets it.
    assert!(store.next_dsn_batch().await.expect("batch").is_none());
    let dsn = message("", &["sender@example.org"]);
    batch
        .commit(std::slice::from_ref(&dsn))
        .await
        .expect("commit");

    assert!(
        store.next_dsn_batch().await.expect("batch").is_none(),
        "queued once"
    );
    let dsn_jobs: Vec<(String, String)> = sqlx::query_as(
        "SELECT j.recipient, m.mail_from FROM jobs j JOIN messages m ON m.id = j.message_id
          WHERE m.id = $1",
    )
    .bind(dsn.id)
    .fetch_all(&db.pool)
    .await
    .expect("dsn jobs");
    assert_eq!(
        dsn_jobs,
        vec![("sender@example.org".to_owned(), String::new())]
    );
}

#[tokio::test]
async fn a_dropped_batch_leaves_the_notifications_owed() {
    let db = TestDatabase::create().await;
    queue(&db, &[message("sender@example.org", &["x@one.test"])]).await;
    let store = PgJobStore::new(db.pool.clone());
    let jobs = store
        .claim("w", Duration::from_secs(60), 10)
        .await
        .expect("claim");
    let expired = finished(&jobs[0], JobState::Expired, Some(DsnOwed::Failed));
    assert!((store.finish("w", &[expired]).await.expect("finish") == 1));
    drop(store.next_dsn_batch().await.expect("batch").expect("owed"));
    // sqlx rolls a dropped transaction back when its connection next goes out, so the message
    // is locked for a moment longer and SKIP LOCKED passes over it until then.
    let again = eventually(
        "the dropped batch to be owed again",
        Duration::from_secs(5),
        || async { store.next_dsn_batch().await.expect("batch") },
    )
    .await;
    assert_eq!(again.owed.len(), 1, "rolled back, still owed");
}

/// Many transactions finishing at once are recorded by few statements, and each caller still
/// learns exactly what became of its own jobs: a lost lease is reported to its caller alone.
#[tokio::test]
async fn batched_finishes_answer_each_caller_for_its_own_jobs() {
    let db = TestDatabase::create().await;
    let messages: Vec<NewMessage> = (0..40)
        .map(|_| message("a@example.org", &["x@one.test", "y@one.test"]))
        .collect();
    queue(&db, &messages).await;
    let store = PgJobStore::new(db.pool.clone());
    let jobs = store
        .claim("w", Duration::from_secs(60), 100)
        .await
        .expect("claim");
    assert_eq!(jobs.len(), 80);
    // One job was taken over by another worker meanwhile.
    let stolen = jobs[7].clone();
    sqlx::query("UPDATE jobs SET lease_owner = 'other' WHERE id = $1")
        .bind(stolen.id)
        .execute(&db.pool)
        .await
        .expect("steal");

    let (batcher, finish_loop) = FinishBatcher::new(store.clone(), "w".to_owned(), 25);
    let stop = tokio_util::sync::CancellationToken::new();
    let running = tokio::spawn(finish_loop.run(stop.clone().cancelled_owned()));
    let mut callers = Vec::new();
    for message in jobs.chunk_by(|a, b| a.message_id == b.message_id) {
        let batcher = batcher.clone();
        let message = message.to_vec();
        callers.push(tokio::spawn(async move {
            let outcomes: Vec<Finished> = message
                .iter()
                .map(|job| finished(job, JobState::Delivered, None))
                .collect();
            let recorded = batcher.finish(&outcomes).await.expect("finish");
            let ids: Vec<i64> = message.iter().map(|job| job.id).collect();
            (ids, recorded)
        }));
    }
    for caller in callers {
        let (ids, recorded) = caller.await.expect("caller");
        let expected = ids.iter().filter(|&&id| id != stolen.id).count() as u64;
        assert_eq!(recorded, expected, "jobs {ids:?}");
    }
    let counts: (i64, i64) = sqlx::query_as(
        "SELECT (SELECT count(*) FROM jobs WHERE status = 'delivered'),
                (SELECT count(*) FROM attempts)",
    )
    .fetch_one(&db.pool)
    .await
    .expect("count");
    assert_eq!(counts, (79, 79));
    assert_eq!(job_status(&db, stolen.id).await.0, "leased");
    // An attempt's time is its statement's transaction start: one time per statement. The 40
    // transactions went in a few statements, none over the limit of 25 jobs (plus the message
    // that crossed it).
    let statements: Vec<i64> = sqlx::query_scalar(
        "SELECT count(*) FROM attempts GROUP BY attempted_at ORDER BY count(*) DESC",
    )
    .fetch_all(&db.pool)
    .await
    .expect("statements");
    assert!(statements.len() <= 10, "{statements:?}");
    assert!(statements[0] <= 26, "{statements:?}");

    // Stopped, the loop ends; a finish after that fails instead of waiting forever.
    stop.cancel();
    running.await.expect("loop");
    let late = batcher
        .finish(&[finished(&stolen, JobState::Delivered, None)])
        .await;
    assert!(late.is_err());
}

/// A lease renewal does not wait for a row another statement holds (a finish in flight, which
/// locks its rows in its own order: waiting could deadlock); it pushes the others and leaves
/// that one to the next renewal.
#[tokio::test]
async fn a_renewal_skips_a_row_being_finished_instead_of_waiting_for_it() {
    let db = TestDatabase::create().await;
    let (store, jobs) = queue_and_claim(
        &db,
        &["x@one.test", "y@one.test"],
        "w",
        Duration::from_secs(60),
    )
    .await;
    let keys: Vec<JobKey> = jobs.iter().map(ClaimedJob::key).collect();
    let mut finishing = db.pool.begin().await.expect("begin");
    sqlx::query("SELECT 1 FROM jobs WHERE id = $1 FOR UPDATE")
        .bind(keys[1].id)
        .execute(&mut *finishing)
        .await
        .expect("lock");
    let renewed = tokio::time::timeout(
        Duration::from_secs(10),
        store.renew_leases("w", &keys, Duration::from_secs(600)),
    )
    .await
    .expect("the renewal waited for the locked row")
    .expect("renew");
    assert_eq!(renewed, 1);
    finishing.rollback().await.expect("rollback");
    assert_eq!(
        store
            .renew_leases("w", &keys, Duration::from_secs(600))
            .await
            .expect("renew"),
        2
    );
}

/// A large body comes with its group as its head; the whole of it is read on demand.
#[tokio::test]
async fn a_large_body_loads_as_its_head_and_whole_on_demand() {
    let db = TestDatabase::create().await;
    let mut body = b"Subject: large\r\n\r\n".to_vec();
    body.resize(2 * 1024 * 1024, b'x');
    let large = NewMessage::local(
        "client.example",
        "a@example.org",
        vec![NewRecipient::new("b@one.test")],
        body.clone(),
    );
    let small = message("a@example.org", &["c@one.test"]);
    queue(&db, &[large.clone(), small.clone()]).await;
    let store = PgJobStore::new(db.pool.clone());
    let loaded = store
        .load_messages(&[large.id, small.id])
        .await
        .expect("load");
    let head = loaded.iter().find(|m| m.id == large.id).expect("large");
    assert!(!head.is_whole());
    assert_eq!(head.size, body.len() as u64);
    assert_eq!(head.body, body[..64 * 1024]);
    let small_loaded = loaded.iter().find(|m| m.id == small.id).expect("small");
    assert!(small_loaded.is_whole());
    assert_eq!(small_loaded.body, small.body);
    let whole = store.load_whole(head).await.expect("load").expect("there");
    assert!(whole.is_whole());
    assert_eq!(whole.body, body);
    assert_eq!(whole.mail_from, head.mail_from);
}
