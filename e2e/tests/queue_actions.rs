//! Queue actions through `tern api` on a running `tern worker`: retry makes a deferred job due
//! at once, and a hold that races the worker's lease wins over the worker's finish.

use std::time::Duration;

use tern_e2e::cluster::{Api, Nats};
use tern_e2e::{Tern, free_port, migrate, swaks};
use tern_testkit::TestDatabase;
use tern_testkit::sink::{SinkConfig, SinkServer};
use tern_testkit::wait::eventually;

/// An ingress for `dest.test` and a worker sending everything to `127.0.0.1:sink_port`.
struct Cluster {
    _nats: Nats,
    _ingress: Tern,
    _worker: Tern,
    api: Api,
    smtp: u16,
    _db: TestDatabase,
}

impl Cluster {
    async fn start(sink_port: u16) -> Self {
        let db = TestDatabase::create().await;
        migrate(&db.url).await;
        let nats = Nats::start();
        let smtp = free_port();
        let mut ingress_env = nats.env().to_vec();
        ingress_env.extend([
            ("TERN_INGRESS_SMTP_LISTEN", format!("127.0.0.1:{smtp}")),
            ("TERN_INGRESS_SUBMISSION_LISTEN", String::new()),
            ("TERN_INGRESS_LOCAL_DOMAINS", "dest.test".to_owned()),
        ]);
        let ingress = Tern::start("ingress", &db.url, &ingress_env).await;
        let mut worker_env = nats.env().to_vec();
        worker_env.extend([
            (
                "TERN_WORKER_SMARTHOST",
                format!("smtp:[127.0.0.1]:{sink_port}"),
            ),
            ("TERN_WORKER_POLL_INTERVAL", "200ms".to_owned()),
            ("TERN_WORKER_HOSTNAME", "worker.test".to_owned()),
            // The first retry is far off: only the API's retry can make it happen in the test.
            ("TERN_WORKER_RETRY_FIRST", "10m".to_owned()),
        ]);
        let worker = Tern::start("worker", &db.url, &worker_env).await;
        let api = Api::with_nats(&db.url, &nats).await;
        Self {
            _nats: nats,
            _ingress: ingress,
            _worker: worker,
            api,
            smtp,
            _db: db,
        }
    }

    /// Sends one message to `to` through the ingress; its queue id.
    async fn send(&self, to: &str) -> String {
        let transcript = swaks(self.smtp, &["--from", "a@origin.test", "--to", to]).await;
        transcript
            .lines()
            .find_map(|l| l.split("queued as ").nth(1))
            .unwrap_or_else(|| panic!("not queued: {transcript}"))
            .trim()
            .to_owned()
    }

    /// The first recipient's status, as the API reports it.
    async fn status(&self, queue_id: &str) -> String {
        let detail = self.api.get_json(&format!("/v1/messages/{queue_id}")).await;
        detail["recipients"][0]["status"]
            .as_str()
            .unwrap_or("")
            .to_owned()
    }

    async fn status_becomes(&self, queue_id: &str, wanted: &str, within: Duration) {
        eventually(&format!("the job to be {wanted}"), within, || async {
            (self.status(queue_id).await == wanted).then_some(())
        })
        .await;
    }

    /// `POST /v1/messages/{queue_id}/{action}`: how many jobs it changed.
    async fn act(&self, queue_id: &str, action: &str) -> u64 {
        let (status, body) = self
            .api
            .call("POST", &format!("/v1/messages/{queue_id}/{action}"), None)
            .await;
        assert_eq!(status, 200, "{action}: {body}");
        let value: serde_json::Value = serde_json::from_str(&body).expect("JSON");
        value["changed"].as_u64().expect("changed")
    }
}

#[tokio::test]
async fn retry_delivers_a_deferred_job_at_once() {
    // Nothing listens on the sink's port yet: the first attempt is refused and deferred.
    let sink_port = free_port();
    let cluster = Cluster::start(sink_port).await;
    let queue_id = cluster.send("b@dest.test").await;
    cluster
        .status_becomes(&queue_id, "deferred", Duration::from_secs(15))
        .await;
    let sink = SinkServer::start(SinkConfig::at([127, 0, 0, 1], sink_port)).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(
        sink.received().is_empty(),
        "nothing is due before the retry"
    );

    assert_eq!(cluster.act(&queue_id, "retry").await, 1);
    let received = sink.wait_for(1, Duration::from_secs(10)).await;
    assert_eq!(received[0].rcpt_to, ["b@dest.test"]);
    cluster
        .status_becomes(&queue_id, "delivered", Duration::from_secs(10))
        .await;
    assert_eq!(
        cluster.act(&queue_id, "retry").await,
        0,
        "a delivered job is not retried"
    );
}

#[tokio::test]
async fn a_hold_that_races_the_workers_lease_is_not_overwritten_by_its_finish() {
    // The sink takes three seconds to confirm each message: long enough to act meanwhile.
    let sink = SinkServer::start(SinkConfig {
        data_delay: Duration::from_secs(3),
        ..SinkConfig::default()
    })
    .await;
    let cluster = Cluster::start(sink.addr().port()).await;
    let queue_id = cluster.send("b@dest.test").await;
    cluster
        .status_becomes(&queue_id, "leased", Duration::from_secs(10))
        .await;

    assert_eq!(cluster.act(&queue_id, "hold").await, 1);
    // The delivery in flight completes at the sink (a duplicate later is what RFC 5321 accepts
    // over a loss); the worker's fenced finish records nothing over the hold.
    sink.wait_for(1, Duration::from_secs(10)).await;
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert_eq!(cluster.status(&queue_id).await, "held");
    assert_eq!(sink.received().len(), 1, "nothing runs a held job");
    let leased = cluster.api.get_json("/v1/queue?status=leased").await;
    assert_eq!(leased["items"], serde_json::json!([]), "{leased}");

    assert_eq!(cluster.act(&queue_id, "release").await, 1);
    cluster
        .status_becomes(&queue_id, "delivered", Duration::from_secs(15))
        .await;
    assert_eq!(sink.received().len(), 2);
}
