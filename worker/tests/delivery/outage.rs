//! PostgreSQL going away while deliveries are in flight: what could not be recorded runs again
//! once its lease ends, while the worker that claimed it lives on.

use std::time::Duration;

use tern_testkit::sink::SinkConfig;
use tern_testkit::wait::eventually;
use tern_testkit::{PgCluster, TestDatabase};

use crate::harness::{RunningWorker, TestWorld, message};

/// The outage is longer than the pool waits for a connection (so recording the outcomes fails)
/// and shorter than the lease (so the leases are still live when PostgreSQL is back, and a
/// worker that renewed everything it owns would keep them forever).
#[tokio::test]
async fn outcomes_lost_to_an_outage_are_delivered_again_after_the_lease_not_held_forever() {
    let cluster = PgCluster::start();
    let db = TestDatabase::create_on(&cluster.admin_url()).await;
    let (world, sink) = TestWorld::start_on(
        db,
        SinkConfig {
            data_delay: Duration::from_millis(700),
            ..SinkConfig::default()
        },
    )
    .await;
    world.mx("dest.test", 2);
    let messages: Vec<_> = (0..3)
        .map(|n| {
            message(
                "a@origin.test",
                &[&format!("r{n}@dest.test")],
                format!("Subject: {n}\r\n\r\nbody\r\n").as_bytes(),
            )
        })
        .collect();
    for m in &messages {
        world.queue(m).await;
    }
    let mut config = world.config();
    config.lease = Duration::from_secs(12);
    config.database.commit_timeout = Duration::from_secs(1);
    config.destination_concurrency = 1;
    let worker = RunningWorker::start_as_deployed(config).await;

    // The first message is at the sink, its reply still to come: the deliveries are in flight.
    world.sink(sink).wait_for(1, Duration::from_secs(20)).await;
    // Shut down cleanly: the claims survive, so only the lease decides when the jobs run again.
    cluster.shut_down();
    // Every delivery of the group ends while PostgreSQL is away, so none is recorded; the
    // outage lasts a while after the last one (its reply is 0.7 s late, the pool waits 1 s).
    world.sink(sink).wait_for(3, Duration::from_secs(20)).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    cluster.start_server();

    for m in &messages {
        let statuses = eventually(
            "the unrecorded jobs to be delivered again",
            Duration::from_secs(30),
            || async {
                let statuses = world.statuses(m.id).await;
                (statuses == ["delivered"]).then_some(statuses)
            },
        )
        .await;
        assert_eq!(statuses, ["delivered"]);
    }
    // Each message was sent once before its outcome was lost and once after the lease ended.
    assert!(world.sink(sink).received().len() >= 4);
    worker.stop().await;
}
