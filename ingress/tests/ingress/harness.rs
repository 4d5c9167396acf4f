//! Starts an in-process ingress on an ephemeral port with its own database and NATS prefix.

use std::net::SocketAddr;
use std::time::Duration;

use clap::Parser;
use futures::StreamExt;
use tern_common::bus::Bus;
use tern_common::control::{ControlWatch, PgControlStore};
use tern_common::queue::PgQueueStore;
use tern_common::users::UserStore;
use tern_ingress::{Ingress, IngressArgs, ListenerKind};
use tern_testkit::{SmtpClient, TestDatabase, TestReply, services};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

#[derive(Parser)]
struct Cli {
    #[command(flatten)]
    ingress: IngressArgs,
}

pub struct TestIngress {
    /// The port 25 role.
    pub addr: SocketAddr,
    /// Every listener, each bound to an ephemeral port: the port 25 role always, 587 and 465
    /// roles when the settings ask for them (`--submission-listen 127.0.0.1:0`, …).
    pub listeners: Vec<(SocketAddr, ListenerKind)>,
    pub db: TestDatabase,
    pub bus: Bus,
    pub shutdown: CancellationToken,
    task: Option<JoinHandle<()>>,
}

impl TestIngress {
    pub async fn start() -> Self {
        Self::start_with(&[]).await
    }

    /// `extra` are command-line settings, e.g. `["--max-recipients", "5"]`.
    pub async fn start_with(extra: &[&str]) -> Self {
        let db = TestDatabase::create().await;
        Self::start_on(db, extra).await
    }

    pub async fn start_on(db: TestDatabase, extra: &[&str]) -> Self {
        let prefix = services::unique_nats_prefix();
        let nats_url = services::nats_url();
        let mut args = vec![
            "tern",
            "--database-url",
            &db.url,
            "--database-commit-timeout",
            "3s",
            "--nats-url",
            &nats_url,
            "--nats-prefix",
            &prefix,
            "--hostname",
            "mx.tern.test",
        ];
        // Only the port 25 role unless a test asks for more.
        if !extra.contains(&"--submission-listen") {
            args.extend_from_slice(&["--submission-listen", ""]);
        }
        args.extend_from_slice(extra);
        let config = Cli::try_parse_from(args)
            .expect("valid test arguments")
            .ingress
            .validate()
            .expect("valid config");
        let bus = Bus::connect(&config.nats).await.expect("connect to NATS");
        bus.ensure_stream()
            .await
            .expect("create the work-queue stream");
        let pool = tern_common::queue::connect_pool(&config.database).expect("pool");
        let store = PgQueueStore::new(pool, config.database.commit_timeout);
        let mut bound = Vec::new();
        let mut listeners = Vec::new();
        for (_, kind) in &config.listeners {
            let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
            listeners.push((listener.local_addr().expect("addr"), *kind));
            bound.push((listener, *kind));
        }
        let shutdown = CancellationToken::new();
        let users = UserStore::new(db.pool.clone(), config.lockout);
        let control = ControlWatch::spawn(
            PgControlStore::new(db.pool.clone(), None),
            Some(bus.clone()),
            config.control_poll,
            shutdown.clone(),
        );
        let ingress = Ingress::new(
            &config,
            store,
            Some(bus.clone()),
            Some(users),
            control,
            Some(db.pool.clone()),
        );
        let task = tokio::spawn(tern_ingress::run(ingress, bound, shutdown.clone()));
        Self {
            addr: listeners[0].0,
            listeners,
            db,
            bus,
            shutdown,
            task: Some(task),
        }
    }

    /// The address of the listener of `kind`; panics when the settings did not ask for it.
    pub fn addr_of(&self, kind: ListenerKind) -> SocketAddr {
        self.listeners
            .iter()
            .find(|(_, k)| *k == kind)
            .map(|(addr, _)| *addr)
            .unwrap_or_else(|| panic!("no {} listener configured", kind.label()))
    }

    /// Connects and says EHLO; returns the client and the EHLO reply.
    pub async fn client(&self) -> (SmtpClient, TestReply) {
        let (mut client, greeting) = SmtpClient::connect(self.addr).await;
        assert_eq!(greeting.code, 220, "{greeting:?}");
        let ehlo = client.command("EHLO client.example").await;
        assert_eq!(ehlo.code, 250, "{ehlo:?}");
        (client, ehlo)
    }

    pub async fn count(&self, sql: &str) -> i64 {
        sqlx::query_scalar(sqlx::AssertSqlSafe(sql.to_owned()))
            .fetch_one(&self.db.pool)
            .await
            .expect("count query")
    }

    /// Message ids announced on the work-queue stream so far.
    pub async fn notices(&self, expected: usize) -> Vec<String> {
        let stream = self
            .bus
            .jetstream()
            .get_stream(&self.bus.names().stream)
            .await
            .expect("stream");
        let consumer = stream
            .create_consumer(async_nats::jetstream::consumer::pull::Config {
                durable_name: Some("test".into()),
                ..Default::default()
            })
            .await
            .expect("consumer");
        let mut messages = consumer
            .fetch()
            .max_messages(expected.max(1) + 10)
            .expires(Duration::from_secs(2))
            .messages()
            .await
            .expect("fetch");
        let mut ids = Vec::new();
        while let Some(message) = messages.next().await {
            let message = message.expect("message");
            ids.push(String::from_utf8_lossy(&message.payload).into_owned());
            if ids.len() >= expected {
                break;
            }
        }
        ids
    }

    /// Cancels the ingress and waits for it to drain.
    pub async fn stop(mut self) {
        self.shutdown.cancel();
        if let Some(task) = self.task.take() {
            tokio::time::timeout(Duration::from_secs(60), task)
                .await
                .expect("ingress stops")
                .expect("ingress task");
        }
    }
}

impl Drop for TestIngress {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// Queue id from a `250 2.0.0 Ok: queued as <id>` reply.
pub fn queue_id(reply: &TestReply) -> String {
    assert_eq!(reply.code, 250, "{reply:?}");
    reply
        .text()
        .rsplit(' ')
        .next()
        .expect("queue id")
        .to_owned()
}

/// One full transaction over an open session; returns the reply to the final dot.
pub async fn send_message(
    client: &mut SmtpClient,
    from: &str,
    to: &[&str],
    data: &[u8],
) -> TestReply {
    assert_eq!(
        client.command(&format!("MAIL FROM:<{from}>")).await.code,
        250
    );
    for rcpt in to {
        let reply = client.command(&format!("RCPT TO:<{rcpt}>")).await;
        assert_eq!(reply.code, 250, "RCPT {rcpt}: {reply:?}");
    }
    assert_eq!(client.command("DATA").await.code, 354);
    client.send(data).await;
    client.send(b".\r\n").await;
    client.reply().await
}
