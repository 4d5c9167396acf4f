//! A worker running in-process against a per-test database, the test DNS server and sink MX
//! hosts on 127.0.0.x, all sharing one port.

use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use tern_common::config::{DatabaseConfig, NatsConfig};
use tern_common::control::{ControlWatch, PgControlStore};
use tern_common::queue::PgJobStore;
use tern_common::queue::QueueId;
use tern_common::queue::{NewMessage, NewRecipient, PgQueueStore, QueueStore};
use tern_testkit::TestDatabase;
use tern_testkit::dns::TestDns;
use tern_testkit::sink::{SinkConfig, SinkServer};
use tern_testkit::wait::eventually;
use tern_worker::delivery::myself::Myself;
use tern_worker::delivery::route::RouteTable;
use tern_worker::delivery::tls_policy::TlsPolicy;
use tern_worker::schedule::RetrySchedule;
use tern_worker::{Worker, WorkerConfig};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

pub struct TestWorld {
    pub db: TestDatabase,
    pub dns: TestDns,
    /// The port every sink of this test listens on (MX hosts are found on the worker's SMTP port).
    pub port: u16,
    sinks: Vec<SinkServer>,
}

impl TestWorld {
    /// A world whose first sink (at 127.0.0.2) is configured by `first`.
    pub async fn start(first: SinkConfig) -> (Self, usize) {
        Self::start_on(TestDatabase::create().await, first).await
    }

    /// The same world on a database the test made itself (on a cluster it may stop, say).
    pub async fn start_on(db: TestDatabase, first: SinkConfig) -> (Self, usize) {
        let dns = TestDns::start().await;
        let sink = SinkServer::start(SinkConfig {
            ip: ip(2),
            port: 0,
            ..first
        })
        .await;
        let port = sink.addr().port();
        (
            Self {
                db,
                dns,
                port,
                sinks: vec![sink],
            },
            0,
        )
    }

    /// Another sink at 127.0.0.`last_octet` on the shared port; returns its index.
    pub async fn add_sink(&mut self, last_octet: u8, config: SinkConfig) -> usize {
        let sink = SinkServer::start(SinkConfig {
            ip: ip(last_octet),
            port: self.port,
            ..config
        })
        .await;
        self.sinks.push(sink);
        self.sinks.len() - 1
    }

    pub fn sink(&self, index: usize) -> &SinkServer {
        &self.sinks[index]
    }

    /// `domain` has one MX host, `mx.<domain>`, at 127.0.0.`last_octet`.
    pub fn mx(&self, domain: &str, last_octet: u8) {
        let host = format!("mx.{domain}");
        self.dns.add_mx(domain, 10, &host);
        self.dns.add_a(&host, Ipv4Addr::new(127, 0, 0, last_octet));
    }

    pub fn config(&self) -> WorkerConfig {
        WorkerConfig {
            database: DatabaseConfig {
                url: self.db.url.clone(),
                max_connections: 8,
                commit_timeout: Duration::from_secs(10),
            },
            nats: NatsConfig {
                url: String::new(),
                prefix: tern_testkit::services::unique_nats_prefix(),
            },
            admin_listen: "127.0.0.1:0".parse().expect("address"),
            telemetry: tern_common::telemetry::TelemetryConfig::off("tern-worker"),
            control_poll: Duration::from_millis(200),
            hostname: "tern-worker.test".to_owned(),
            id: format!("test-{}", Uuid::new_v4().simple()),
            routes: RouteTable::default(),
            tls_policy: TlsPolicy::default(),
            myself: Myself::default(),
            nameserver: Some(self.dns.addr()),
            smtp_port: self.port,
            concurrency: 10,
            destination_concurrency: 4,
            destination_rate: None,
            batch: 50,
            lease: Duration::from_secs(30),
            poll_interval: Duration::from_millis(200),
            retry: RetrySchedule::default(),
            connect_timeout: Duration::from_secs(5),
            shutdown_grace: Duration::from_secs(5),
            retention: tern_worker::config::Retention {
                body: Duration::from_secs(86_400),
                history: Duration::from_secs(7 * 86_400),
            },
        }
    }

    /// Queues a message as the ingress would.
    pub async fn queue(&self, message: &NewMessage) {
        PgQueueStore::new(self.db.pool.clone(), Duration::from_secs(10))
            .commit(message)
            .await
            .expect("queue the message");
    }

    /// The status of every job of a message, in recipient order.
    pub async fn statuses(&self, id: QueueId) -> Vec<String> {
        sqlx::query_scalar("SELECT status FROM jobs WHERE message_id = $1 ORDER BY rcpt_index")
            .bind(id)
            .fetch_all(&self.db.pool)
            .await
            .expect("statuses")
    }

    /// Waits until no job of `id` is queued or leased.
    pub async fn settled(&self, id: QueueId) -> Vec<String> {
        eventually(
            "the message's jobs to settle",
            Duration::from_secs(20),
            || async {
                let statuses = self.statuses(id).await;
                statuses
                    .iter()
                    .all(|s| s != "queued" && s != "leased")
                    .then_some(statuses)
            },
        )
        .await
    }
}

pub fn ip(last_octet: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(127, 0, 0, last_octet))
}

/// A worker task; stops (and waits) on drop of the returned guard's `stop`.
pub struct RunningWorker {
    stop: CancellationToken,
    task: Option<JoinHandle<()>>,
}

impl RunningWorker {
    pub async fn start(
        world: &TestWorld,
        config: WorkerConfig,
        bus: Option<tern_common::bus::Bus>,
    ) -> Self {
        Self::start_with_store(config, PgJobStore::new(world.db.pool.clone()), bus).await
    }

    /// A worker on the pool `tern worker` builds from its config (its own acquire timeout).
    pub async fn start_as_deployed(config: WorkerConfig) -> Self {
        let pool = tern_common::queue::connect_delivery_pool(&config.database).expect("pool");
        Self::start_with_store(config, PgJobStore::new(pool), None).await
    }

    async fn start_with_store(
        config: WorkerConfig,
        store: PgJobStore,
        bus: Option<tern_common::bus::Bus>,
    ) -> Self {
        let control = ControlWatch::spawn(
            PgControlStore::new(store.pool().clone(), None),
            None,
            config.control_poll,
            CancellationToken::new(),
        );
        let worker = Worker::new(config, store, control).expect("worker");
        let stop = CancellationToken::new();
        let task = tokio::spawn(tern_worker::run(worker, bus, stop.clone()));
        Self {
            stop,
            task: Some(task),
        }
    }

    pub async fn stop(mut self) {
        self.stop.cancel();
        if let Some(task) = self.task.take() {
            task.await.expect("worker task");
        }
    }
}

impl Drop for RunningWorker {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

pub fn message(from: &str, recipients: &[&str], body: &[u8]) -> NewMessage {
    let recipients = recipients.iter().map(|r| NewRecipient::new(r)).collect();
    NewMessage::local("client.example", from, recipients, body.to_vec())
}
