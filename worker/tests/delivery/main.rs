//! A worker in-process against real PostgreSQL, the test DNS server and sink MX hosts: what
//! arrives, what is recorded, retries, bounces and their notifications.

mod harness;
mod limits;
mod outage;

use std::time::Duration;

use harness::{RunningWorker, TestWorld, message};
use tern_testkit::sink::SinkConfig;
use time::OffsetDateTime;

#[tokio::test]
async fn a_message_arrives_byte_for_byte_and_the_attempt_is_recorded() {
    let (world, sink) = TestWorld::start(SinkConfig::default()).await;
    world.mx("dest.test", 2);
    let body = b"Received: from x\r\nSubject: hi\r\n\r\n.leading dot\r\nline\r\n";
    let m = message(
        "alice@origin.test",
        &["bob@dest.test", "carol@DEST.test"],
        body,
    );
    world.queue(&m).await;
    let worker = RunningWorker::start(&world, world.config(), None).await;

    let received = world.sink(sink).wait_for(1, Duration::from_secs(20)).await;
    assert_eq!(received[0].data, body.to_vec());
    assert_eq!(received[0].mail_from, "alice@origin.test");
    assert_eq!(
        received[0].rcpt_to,
        vec!["bob@dest.test", "carol@DEST.test"]
    );
    assert_eq!(world.settled(m.id).await, vec!["delivered", "delivered"]);
    let attempt: (String, String, String, String) = sqlx::query_as(
        "SELECT outcome, mx_host, host(remote_ip), reply FROM attempts WHERE message_id = $1 LIMIT 1",
    )
    .bind(m.id)
    .fetch_one(&world.db.pool)
    .await
    .expect("attempt");
    assert_eq!(attempt.0, "delivered");
    assert_eq!(attempt.1, "mx.dest.test");
    assert_eq!(attempt.2, "127.0.0.2");
    assert!(attempt.3.starts_with("smtp; 250"), "{}", attempt.3);
    assert_eq!(
        world.sink(sink).connections(),
        1,
        "one connection for both recipients"
    );
    worker.stop().await;
}

/// Large messages come with their group as their head only and are read whole when sent: each
/// arrives byte for byte, and so does the small one of the same group.
#[tokio::test]
async fn large_messages_are_read_whole_when_sent_and_arrive_byte_for_byte() {
    let (world, sink) = TestWorld::start(SinkConfig::default()).await;
    world.mx("dest.test", 2);
    let large = |n: u8| {
        let mut body =
            format!("Message-ID: <large{n}@origin.test>\r\nSubject: large\r\n\r\n").into_bytes();
        let line = [b'a' + n; 998];
        while body.len() < 3 * 1024 * 1024 {
            body.extend_from_slice(&line);
            body.extend_from_slice(b"\r\n");
        }
        body
    };
    let bodies = [
        large(0),
        b"Subject: small\r\n\r\nsmall\r\n".to_vec(),
        large(1),
    ];
    for body in &bodies {
        world
            .queue(&message("a@origin.test", &["b@dest.test"], body))
            .await;
    }
    let worker = RunningWorker::start(&world, world.config(), None).await;
    let received = world.sink(sink).wait_for(3, Duration::from_secs(30)).await;
    let mut got: Vec<&Vec<u8>> = received.iter().map(|m| &m.data).collect();
    got.sort();
    let mut want: Vec<&Vec<u8>> = bodies.iter().collect();
    want.sort();
    assert!(got == want, "a message arrived changed");
    worker.stop().await;
}

#[tokio::test]
async fn a_dead_first_mx_falls_back_to_the_next_preference() {
    let (world, sink) = TestWorld::start(SinkConfig::default()).await;
    world.dns.add_mx("dest.test", 10, "mx1.dest.test");
    world
        .dns
        .add_a("mx1.dest.test", std::net::Ipv4Addr::new(127, 0, 0, 9)); // nothing listens
    world.dns.add_mx("dest.test", 20, "mx2.dest.test");
    world
        .dns
        .add_a("mx2.dest.test", std::net::Ipv4Addr::new(127, 0, 0, 2));
    let m = message(
        "a@origin.test",
        &["b@dest.test"],
        b"Subject: x\r\n\r\nx\r\n",
    );
    world.queue(&m).await;
    let worker = RunningWorker::start(&world, world.config(), None).await;
    world.sink(sink).wait_for(1, Duration::from_secs(20)).await;
    assert_eq!(world.settled(m.id).await, vec!["delivered"]);
    worker.stop().await;
}

#[tokio::test]
async fn temporary_failures_are_deferred_and_permanent_ones_bounce_with_one_report() {
    let (mut world, _dest) = TestWorld::start(
        SinkConfig::default()
            .rcpt_rule("later@", "451 4.3.0 try again later")
            .rcpt_rule("nobody@", "550 5.1.1 no such user")
            .rcpt_rule("gone@", "550 5.1.1 gone"),
    )
    .await;
    world.mx("dest.test", 2);
    let origin = world.add_sink(3, SinkConfig::default()).await;
    world.mx("origin.test", 3);
    let m = message(
        "sender@origin.test",
        &[
            "ok@dest.test",
            "later@dest.test",
            "nobody@dest.test",
            "gone@dest.test",
        ],
        b"Subject: important\r\n\r\nbody\r\n",
    );
    world.queue(&m).await;
    let worker = RunningWorker::start(&world, world.config(), None).await;

    assert_eq!(
        world.settled(m.id).await,
        vec!["delivered", "deferred", "bounced", "bounced"]
    );
    let (attempts, next_in): (i32, f64) = sqlx::query_as(
        "SELECT attempts, extract(epoch FROM next_attempt_at - now())::float8 FROM jobs
          WHERE message_id = $1 AND recipient = 'later@dest.test'",
    )
    .bind(m.id)
    .fetch_one(&world.db.pool)
    .await
    .expect("deferred job");
    assert_eq!(attempts, 1);
    assert!(
        next_in > 200.0,
        "the first retry is about five minutes away, not {next_in}s"
    );

    // Both refused recipients are reported in one notification, sent to the sender's MX.
    let reports = world
        .sink(origin)
        .wait_for(1, Duration::from_secs(20))
        .await;
    assert_eq!(reports.len(), 1);
    let report = &reports[0];
    assert_eq!(report.mail_from, "", "notifications use the null sender");
    assert_eq!(report.rcpt_to, vec!["sender@origin.test"]);
    let text = String::from_utf8_lossy(&report.data);
    assert!(text.contains("multipart/report"), "{text}");
    assert!(text.contains("report-type=delivery-status"), "{text}");
    assert!(
        text.contains("Final-Recipient: rfc822; nobody@dest.test"),
        "{text}"
    );
    assert!(
        text.contains("Final-Recipient: rfc822; gone@dest.test"),
        "{text}"
    );
    assert!(
        !text.contains("Final-Recipient: rfc822; later@dest.test"),
        "{text}"
    );
    assert!(
        text.contains("Diagnostic-Code: smtp; 550 5.1.1 no such user"),
        "{text}"
    );
    assert!(
        text.contains("Subject: important"),
        "the original comes back: {text}"
    );
    let owed: i64 = sqlx::query_scalar("SELECT count(*) FROM jobs WHERE dsn_pending IS NOT NULL")
        .fetch_one(&world.db.pool)
        .await
        .expect("owed");
    assert_eq!(owed, 0);
    worker.stop().await;
}

#[tokio::test]
async fn a_null_mx_or_missing_domain_bounces_at_once_and_the_null_sender_gets_no_report() {
    let (world, _sink) = TestWorld::start(SinkConfig::default()).await;
    world.dns.add_null_mx("nomail.test");
    world
        .dns
        .add_a("exists.test", std::net::Ipv4Addr::new(127, 0, 0, 9));
    let m = message(
        "",
        &["a@nomail.test", "b@missing.test"],
        b"Subject: x\r\n\r\nx\r\n",
    );
    world.queue(&m).await;
    let worker = RunningWorker::start(&world, world.config(), None).await;
    assert_eq!(world.settled(m.id).await, vec!["bounced", "bounced"]);
    let statuses: Vec<String> = sqlx::query_scalar(
        "SELECT last_status FROM jobs WHERE message_id = $1 ORDER BY rcpt_index",
    )
    .bind(m.id)
    .fetch_all(&world.db.pool)
    .await
    .expect("statuses");
    assert_eq!(statuses, vec!["5.1.10", "5.1.2"]);
    let messages: i64 = sqlx::query_scalar("SELECT count(*) FROM messages")
        .fetch_one(&world.db.pool)
        .await
        .expect("count");
    assert_eq!(messages, 1, "no notification for the null sender");
    worker.stop().await;
}

#[tokio::test]
async fn a_recipient_failing_past_the_queue_lifetime_expires_and_is_reported() {
    let (mut world, _dest) =
        TestWorld::start(SinkConfig::default().rcpt_rule("later@", "451 4.3.0 try again later"))
            .await;
    world.mx("dest.test", 2);
    let origin = world.add_sink(3, SinkConfig::default()).await;
    world.mx("origin.test", 3);
    let mut m = message(
        "sender@origin.test",
        &["later@dest.test"],
        b"Subject: old\r\n\r\nx\r\n",
    );
    m.received_at = OffsetDateTime::now_utc() - time::Duration::days(6);
    world.queue(&m).await;
    let worker = RunningWorker::start(&world, world.config(), None).await;
    assert_eq!(world.settled(m.id).await, vec!["expired"]);
    let report = &world
        .sink(origin)
        .wait_for(1, Duration::from_secs(20))
        .await[0];
    let text = String::from_utf8_lossy(&report.data);
    assert!(text.contains("Status: 5.4.7"), "{text}");
    assert!(text.contains("451 4.3.0 try again later"), "{text}");
    worker.stop().await;
}

#[tokio::test]
async fn notify_success_to_a_hop_without_dsn_gets_a_relayed_report() {
    let (mut world, _dest) = TestWorld::start(SinkConfig {
        dsn: false,
        ..SinkConfig::default()
    })
    .await;
    world.mx("dest.test", 2);
    let origin = world.add_sink(3, SinkConfig::default()).await;
    world.mx("origin.test", 3);
    let mut m = message(
        "sender@origin.test",
        &["x@dest.test"],
        b"Subject: s\r\n\r\nx\r\n",
    );
    m.recipients[0].dsn_notify = Some("SUCCESS".parse().expect("a NOTIFY value"));
    world.queue(&m).await;
    let worker = RunningWorker::start(&world, world.config(), None).await;
    assert_eq!(world.settled(m.id).await, vec!["delivered"]);
    let report = &world
        .sink(origin)
        .wait_for(1, Duration::from_secs(20))
        .await[0];
    let text = String::from_utf8_lossy(&report.data);
    assert!(text.contains("Action: relayed"), "{text}");
    worker.stop().await;
}

#[tokio::test]
async fn a_jetstream_notice_wakes_a_worker_that_would_not_poll_for_an_hour() {
    let (world, sink) = TestWorld::start(SinkConfig::default()).await;
    world.mx("dest.test", 2);
    let mut config = world.config();
    config.poll_interval = Duration::from_secs(3600);
    config.nats.url = tern_testkit::services::nats_url();
    let bus = tern_common::bus::Bus::connect(&config.nats)
        .await
        .expect("nats");
    bus.ensure_stream().await.expect("stream");
    let worker = RunningWorker::start(&world, config, Some(bus.clone())).await;
    // Let the worker make its first (empty) claim and subscribe before the message exists.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let m = message(
        "a@origin.test",
        &["b@dest.test"],
        b"Subject: n\r\n\r\nx\r\n",
    );
    world.queue(&m).await;
    bus.publish_new_message(m.id, None).await.expect("publish");
    world.sink(sink).wait_for(1, Duration::from_secs(20)).await;
    assert_eq!(world.settled(m.id).await, vec!["delivered"]);
    worker.stop().await;
}

#[tokio::test]
async fn opportunistic_tls_is_used_when_offered_and_recorded_with_the_attempt() {
    let (world, sink) = TestWorld::start(SinkConfig {
        starttls: true,
        ..SinkConfig::default()
    })
    .await;
    world.mx("dest.test", 2);
    let m = message(
        "a@origin.test",
        &["b@dest.test"],
        b"Subject: tls\r\n\r\nx\r\n",
    );
    world.queue(&m).await;
    let worker = RunningWorker::start(&world, world.config(), None).await;
    let received = world.sink(sink).wait_for(1, Duration::from_secs(20)).await;
    assert!(
        received[0].tls,
        "the self-signed certificate was accepted opportunistically"
    );
    assert_eq!(world.settled(m.id).await, vec!["delivered"]);
    let (version, cipher): (Option<String>, Option<String>) =
        sqlx::query_as("SELECT tls_version, tls_cipher FROM attempts WHERE message_id = $1")
            .bind(m.id)
            .fetch_one(&world.db.pool)
            .await
            .expect("attempt");
    assert!(
        version.as_deref().is_some_and(|v| v.starts_with("TLS")),
        "{version:?}"
    );
    assert!(cipher.is_some());
    worker.stop().await;
}

#[tokio::test]
async fn a_domain_that_requires_verified_tls_is_deferred_when_the_certificate_does_not_verify() {
    let (world, sink) = TestWorld::start(SinkConfig {
        starttls: true,
        ..SinkConfig::default()
    })
    .await;
    world.mx("bank.test", 2);
    let mut config = world.config();
    config.tls_policy =
        tern_worker::delivery::tls_policy::TlsPolicy::parse("bank.test").expect("policy");
    let m = message(
        "a@origin.test",
        &["b@bank.test"],
        b"Subject: secret\r\n\r\nx\r\n",
    );
    world.queue(&m).await;
    let worker = RunningWorker::start(&world, config, None).await;
    assert_eq!(world.settled(m.id).await, vec!["deferred"]);
    let status: String = sqlx::query_scalar("SELECT last_status FROM jobs WHERE message_id = $1")
        .bind(m.id)
        .fetch_one(&world.db.pool)
        .await
        .expect("status");
    assert_eq!(status, "4.7.5");
    assert!(
        world.sink(sink).received().is_empty(),
        "nothing was sent without verified TLS"
    );
    worker.stop().await;
}

#[tokio::test]
async fn tern_as_best_mx_bounces_5_4_6_and_as_backup_mx_forwards_only_to_better_hosts() {
    let (mut world, primary) = TestWorld::start(SinkConfig::default()).await;
    let worse = world.add_sink(3, SinkConfig::default()).await;
    // loop.test: Tern (127.0.0.5) is the best MX. backup.test: Tern is the backup.
    world.dns.add_mx("loop.test", 10, "mx.tern.test");
    world.dns.add_mx("loop.test", 20, "other.loop.test");
    world
        .dns
        .add_a("other.loop.test", std::net::Ipv4Addr::new(127, 0, 0, 2));
    world.dns.add_mx("backup.test", 10, "primary.backup.test");
    world.dns.add_mx("backup.test", 20, "tern-worker.test");
    world.dns.add_mx("backup.test", 30, "worse.backup.test");
    world
        .dns
        .add_a("mx.tern.test", std::net::Ipv4Addr::new(127, 0, 0, 5));
    world
        .dns
        .add_a("tern-worker.test", std::net::Ipv4Addr::new(127, 0, 0, 6));
    world
        .dns
        .add_a("primary.backup.test", std::net::Ipv4Addr::new(127, 0, 0, 2));
    world
        .dns
        .add_a("worse.backup.test", std::net::Ipv4Addr::new(127, 0, 0, 3));
    let looped = message("", &["x@loop.test"], b"Subject: loop\r\n\r\nx\r\n");
    let backed_up = message("", &["y@backup.test"], b"Subject: backup\r\n\r\ny\r\n");
    world.queue(&looped).await;
    world.queue(&backed_up).await;
    let mut config = world.config();
    // Tern is known by its address (mx.tern.test) and by its hostname (tern-worker.test).
    config.myself =
        tern_worker::delivery::myself::Myself::new([config.hostname.clone()], vec![harness::ip(5)]);
    let worker = RunningWorker::start(&world, config, None).await;

    assert_eq!(world.settled(looped.id).await, ["bounced"]);
    let (status, reply): (String, String) =
        sqlx::query_as("SELECT last_status, last_reply FROM jobs WHERE message_id = $1")
            .bind(looped.id)
            .fetch_one(&world.db.pool)
            .await
            .expect("job");
    assert_eq!(status, "5.4.6");
    assert!(reply.contains("loops back to myself"), "{reply}");

    assert_eq!(world.settled(backed_up.id).await, ["delivered"]);
    let received = world.sink(primary).received();
    assert_eq!(received.len(), 1, "only the better host got mail");
    assert_eq!(received[0].rcpt_to, ["y@backup.test"]);
    assert!(world.sink(worse).received().is_empty());
    worker.stop().await;
}

#[tokio::test]
async fn a_suspended_destination_is_held_without_an_attempt_until_the_suspension_is_lifted() {
    use tern_common::control::{Owner, PgControlStore, Suspension};
    let (world, sink) = TestWorld::start(SinkConfig::default()).await;
    world.mx("dest.test", 2);
    let control = PgControlStore::new(world.db.pool.clone(), None);
    let until = OffsetDateTime::now_utc() + time::Duration::hours(1);
    control
        .put_suspension(
            Owner::Api,
            &Suspension {
                domain: "dest.test".into(),
                until,
                reason: "their maintenance".into(),
                owner: Owner::Api,
            },
        )
        .await
        .expect("suspend");
    let m = message(
        "a@origin.test",
        &["b@dest.test"],
        b"Subject: held\r\n\r\nx\r\n",
    );
    world.queue(&m).await;
    let worker = RunningWorker::start(&world, world.config(), None).await;

    let held_until =
        tern_testkit::wait::eventually("the job to be held", Duration::from_secs(10), || async {
            let (status, attempts, next): (String, i32, OffsetDateTime) = sqlx::query_as(
                "SELECT status, attempts, next_attempt_at FROM jobs WHERE message_id = $1",
            )
            .bind(m.id)
            .fetch_one(&world.db.pool)
            .await
            .expect("job");
            (status == "queued" && next > OffsetDateTime::now_utc()).then_some((attempts, next))
        })
        .await;
    assert_eq!(held_until.0, 0, "holding is not an attempt");
    assert_eq!(held_until.1.unix_timestamp(), until.unix_timestamp());
    assert!(world.sink(sink).received().is_empty());

    control
        .delete_suspension(Owner::Api, "dest.test")
        .await
        .expect("lift");
    world.sink(sink).wait_for(1, Duration::from_secs(20)).await;
    assert_eq!(world.settled(m.id).await, ["delivered"]);
    worker.stop().await;
}

#[tokio::test]
async fn a_domain_route_in_the_control_plane_overrides_mx() {
    use tern_common::control::{Domain, DomainKind, Owner, PgControlStore};
    let (mut world, _mx_sink) = TestWorld::start(SinkConfig::default()).await;
    let routed = world
        .add_sink(
            4,
            SinkConfig {
                lmtp: true,
                ..SinkConfig::default()
            },
        )
        .await;
    world.mx("dest.test", 2);
    let port = world.port;
    PgControlStore::new(world.db.pool.clone(), None)
        .put_domain(
            Owner::Api,
            &Domain {
                name: "dest.test".into(),
                kind: DomainKind::Local,
                route: Some(format!("lmtp:[127.0.0.4]:{port}")),
                owner: Owner::Api,
            },
        )
        .await
        .expect("route");
    let m = message(
        "a@origin.test",
        &["b@dest.test"],
        b"Subject: routed\r\n\r\nx\r\n",
    );
    world.queue(&m).await;
    let worker = RunningWorker::start(&world, world.config(), None).await;
    world
        .sink(routed)
        .wait_for(1, Duration::from_secs(20))
        .await;
    assert_eq!(world.settled(m.id).await, ["delivered"]);
    worker.stop().await;
}
