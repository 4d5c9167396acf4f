//! Destination limits held by the whole cluster: three workers, one provider's MX host shared by
//! several domains, and a sink that counts the connections open at once.

use std::net::Ipv4Addr;
use std::time::Duration;

use tern_common::control::{DestinationLimit, Owner, PgControlStore};
use tern_testkit::sink::SinkConfig;
use tern_testkit::wait::eventually;

use crate::harness::{RunningWorker, TestWorld, message};

/// Every domain of `domains` has its mail exchanged by `host` at 127.0.0.`octet`.
fn hosted_at(world: &TestWorld, domains: &[&str], host: &str, octet: u8) {
    world.dns.add_a(host, Ipv4Addr::new(127, 0, 0, octet));
    for domain in domains {
        world.dns.add_mx(domain, 10, host);
    }
}

#[tokio::test]
async fn three_workers_hold_a_sites_connection_limit_together_and_drain_the_queue() {
    // A slow provider: each reply takes a moment, so deliveries overlap.
    let slow = SinkConfig {
        reply_delay: Duration::from_millis(15),
        ..SinkConfig::default()
    };
    let (mut world, limited) = TestWorld::start(slow.clone()).await;
    let free = world.add_sink(3, slow).await;
    // Three domains at one provider (one site), limited to 2 connections by a row naming the
    // provider; three at another provider with no row, for contrast.
    hosted_at(
        &world,
        &["a.test", "b.test", "c.test"],
        "mx1.provider.test",
        2,
    );
    hosted_at(
        &world,
        &["d.test", "e.test", "f.test"],
        "mx.elsewhere.test",
        3,
    );
    PgControlStore::new(world.db.pool.clone(), None)
        .put_destination_limit(
            Owner::Api,
            &DestinationLimit {
                destination: "Provider.Test.".to_owned(),
                max_connections: Some(2),
                max_messages_per_minute: None,
                owner: Owner::Api,
            },
        )
        .await
        .expect("limit");

    let mut workers = Vec::new();
    for _ in 0..3 {
        let mut config = world.config();
        config.destination_concurrency = 10;
        workers.push(RunningWorker::start(&world, config, None).await);
    }
    let per_site = 60;
    for n in 0..per_site {
        for domains in [
            ["a.test", "b.test", "c.test"],
            ["d.test", "e.test", "f.test"],
        ] {
            let to = format!("user{n}@{}", domains[n % 3]);
            world
                .queue(&message(
                    "from@client.example",
                    &[&to],
                    b"Subject: limits\r\n\r\nhi\r\n",
                ))
                .await;
        }
    }
    world
        .sink(limited)
        .wait_for(per_site, Duration::from_secs(60))
        .await;
    world
        .sink(free)
        .wait_for(per_site, Duration::from_secs(60))
        .await;
    let peak = world.sink(limited).peak_connections();
    assert!(peak <= 2, "the limited site saw {peak} connections at once");
    assert!(peak >= 1);
    // The same load without a row opens more than 2: the sink would have seen a breach.
    let unlimited_peak = world.sink(free).peak_connections();
    assert!(
        unlimited_peak > 2,
        "the unlimited site saw only {unlimited_peak}"
    );

    // Idle connections close and give their slots back.
    let slots = eventually("every slot given back", Duration::from_secs(15), || async {
        let held: i64 = sqlx::query_scalar("SELECT count(*) FROM destination_slots")
            .fetch_one(&world.db.pool)
            .await
            .expect("slots");
        (held == 0).then_some(held)
    })
    .await;
    assert_eq!(slots, 0);
    for worker in workers {
        worker.stop().await;
    }
}

#[tokio::test]
async fn a_sites_messages_per_minute_are_counted_across_workers_and_the_rest_wait_a_minute() {
    let (world, sink) = TestWorld::start(SinkConfig::default()).await;
    hosted_at(&world, &["a.test", "b.test"], "mx.provider.test", 2);
    PgControlStore::new(world.db.pool.clone(), None)
        .put_destination_limit(
            Owner::Api,
            &DestinationLimit {
                destination: "provider.test".to_owned(),
                max_connections: None,
                max_messages_per_minute: Some(5),
                owner: Owner::Api,
            },
        )
        .await
        .expect("limit");
    let mut workers = Vec::new();
    for _ in 0..2 {
        workers.push(RunningWorker::start(&world, world.config(), None).await);
    }
    for n in 0..12 {
        let to = format!("user{n}@{}", if n % 2 == 0 { "a.test" } else { "b.test" });
        world
            .queue(&message(
                "from@client.example",
                &[&to],
                b"Subject: rate\r\n\r\nhi\r\n",
            ))
            .await;
    }
    world.sink(sink).wait_for(5, Duration::from_secs(20)).await;
    // The rest are put off to the next minute, without an attempt counted.
    let postponed = eventually("the rest postponed", Duration::from_secs(20), || async {
        // Put off: due later, at the start of a minute, within the next one.
        let rows: Vec<(i32, bool)> = sqlx::query_as(
            "SELECT attempts, next_attempt_at = date_trunc('minute', next_attempt_at)
                              AND next_attempt_at <= now() + interval '1 minute'
               FROM jobs WHERE status IN ('queued', 'deferred') AND next_attempt_at > now()",
        )
        .fetch_all(&world.db.pool)
        .await
        .expect("jobs");
        let sent = world.sink(sink).received().len();
        (sent + rows.len() == 12).then_some(rows)
    })
    .await;
    // Within one minute, at most 5 went; if the minute turned during the test, 5 more may have.
    let sent = world.sink(sink).received().len();
    assert!(sent == 5 || sent == 10, "{sent} sent");
    assert!(
        postponed.iter().all(|(attempts, _)| *attempts == 0),
        "{postponed:?}"
    );
    assert!(
        postponed.iter().all(|(_, next_minute)| *next_minute),
        "{postponed:?}"
    );
    for worker in workers {
        worker.stop().await;
    }
}
