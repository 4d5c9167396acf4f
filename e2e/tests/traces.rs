//! One trace per message: `tern ingress` and `tern worker`, both exporting to an OTLP receiver
//! inside the test, carry a message sent with swaks from its SMTP session through the commit and
//! the JetStream notice to a deferred first attempt and a delivered retry, every span in one
//! trace under the transaction that accepted it; a bounced message's notification joins the
//! trace of the message it reports on.
//!
//! Real processes rather than in-process components: the settings are read from the
//! environment as in production, the exporter is flushed by the shutdown path, and the two
//! components share nothing but PostgreSQL and NATS, as two pods would.

use std::time::Duration;

use tern_e2e::{Tern, free_port, migrate, swaks};
use tern_testkit::TestDatabase;
use tern_testkit::otlp::{OtlpReceiver, ReceivedSpan};
use tern_testkit::sink::{SinkConfig, SinkServer};
use tern_testkit::wait::eventually;

const BODY_MARKER: &str = "a-body-line-no-span-may-carry";

/// A message whose body carries [`BODY_MARKER`], from alice@example.org to `to`.
async fn send_marked(smtp: u16, to: &str) {
    let body = format!("Subject: traced\r\n\r\n{BODY_MARKER}\r\n");
    swaks(
        smtp,
        &["--from", "alice@example.org", "--to", to, "--data", &body],
    )
    .await;
}

async fn queue_id_of(db: &TestDatabase, recipient: &str) -> String {
    sqlx::query_scalar("SELECT replace(message_id::text, '-', '') FROM jobs WHERE recipient = $1")
        .bind(recipient)
        .fetch_one(&db.pool)
        .await
        .expect("the job of the recipient")
}

fn named<'a>(spans: &'a [ReceivedSpan], name: &str, queue_id: &str) -> Vec<&'a ReceivedSpan> {
    spans
        .iter()
        .filter(|s| s.name == name && s.attribute("tern.queue_id") == Some(queue_id))
        .collect()
}

fn only<'a>(spans: &'a [ReceivedSpan], name: &str, queue_id: &str) -> &'a ReceivedSpan {
    let found = named(spans, name, queue_id);
    assert_eq!(found.len(), 1, "one {name} for {queue_id}: {found:#?}");
    found[0]
}

fn child_of<'a>(spans: &'a [ReceivedSpan], name: &str, parent: &ReceivedSpan) -> &'a ReceivedSpan {
    spans
        .iter()
        .find(|s| s.name == name && s.parent_span_id == parent.span_id)
        .unwrap_or_else(|| panic!("a {name} span under {}", parent.name))
}

#[tokio::test]
async fn a_deferred_then_delivered_message_and_a_bounce_are_each_one_trace_from_session_to_attempts()
 {
    let receiver = OtlpReceiver::start().await.expect("OTLP receiver");
    let db = TestDatabase::create().await;
    migrate(&db.url).await;
    let deferring = SinkServer::start(
        SinkConfig::default()
            .rcpt_rule("bob@", "451 4.3.0 try again later")
            .rcpt_rule("nobody@", "550 5.1.1 no such user"),
    )
    .await;
    let port = deferring.addr().port();
    let smtp = free_port();
    let prefix = tern_testkit::services::unique_nats_prefix();
    let otel = [
        ("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.endpoint()),
        ("OTEL_BSP_SCHEDULE_DELAY", "200".to_owned()),
        ("TERN_NATS_PREFIX", prefix),
    ];
    let mut ingress_env = vec![
        ("TERN_INGRESS_SMTP_LISTEN", format!("127.0.0.1:{smtp}")),
        ("TERN_INGRESS_SUBMISSION_LISTEN", String::new()),
    ];
    ingress_env.extend(otel.iter().cloned());
    let mut worker_env = vec![
        ("TERN_WORKER_SMARTHOST", format!("smtp:[127.0.0.1]:{port}")),
        ("TERN_WORKER_POLL_INTERVAL", "200ms".to_owned()),
        ("TERN_WORKER_RETRY_FIRST", "1s".to_owned()),
        ("TERN_WORKER_RETRY_MAX", "2s".to_owned()),
        ("TERN_WORKER_HOSTNAME", "worker.test".to_owned()),
    ];
    worker_env.extend(otel.iter().cloned());
    let ingress = Tern::start("ingress", &db.url, &ingress_env).await;
    let worker = Tern::start("worker", &db.url, &worker_env).await;

    send_marked(smtp, "bob@tern.test").await;
    send_marked(smtp, "nobody@tern.test").await;
    let deferred = queue_id_of(&db, "bob@tern.test").await;
    let bounced = queue_id_of(&db, "nobody@tern.test").await;

    eventually(
        "bob's first attempt to be deferred and nobody's bounced",
        Duration::from_secs(30),
        || async {
            let states: Vec<String> = sqlx::query_scalar(
                "SELECT recipient || '=' || status FROM jobs
                  WHERE recipient IN ('bob@tern.test', 'nobody@tern.test') ORDER BY recipient",
            )
            .fetch_all(&db.pool)
            .await
            .expect("states");
            (states == ["bob@tern.test=deferred", "nobody@tern.test=bounced"]).then_some(())
        },
    )
    .await;
    // The same next hop, now accepting: the retry is delivered.
    drop(deferring);
    eventually(
        "the deferring sink to close",
        Duration::from_secs(10),
        || async {
            tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .is_err()
                .then_some(())
        },
    )
    .await;
    let accepting = SinkServer::start(SinkConfig::at([127, 0, 0, 1], port)).await;
    eventually(
        "bob's retry to be delivered",
        Duration::from_secs(30),
        || async {
            let received = accepting.received();
            received
                .iter()
                .any(|m| m.rcpt_to == ["bob@tern.test"])
                .then_some(())
        },
    )
    .await;
    let notification: String = eventually(
        "the bounce's notification to be delivered",
        Duration::from_secs(30),
        || async {
            sqlx::query_scalar(
                "SELECT replace(m.id::text, '-', '') FROM messages m
                   JOIN jobs j ON j.message_id = m.id
                  WHERE m.mail_from = '' AND j.status = 'delivered'",
            )
            .fetch_optional(&db.pool)
            .await
            .expect("notification")
        },
    )
    .await;

    // Graceful stops flush what the exporters still batch.
    ingress.signal("TERM").await;
    worker.signal("TERM").await;
    let spans = receiver
        .wait_for(
            "the spans of both messages, the retry and the notification",
            Duration::from_secs(60),
            |spans| {
                named(spans, "delivery.attempt", &deferred)
                    .iter()
                    .any(|s| s.attribute("tern.outcome") == Some("delivered"))
                    && !named(spans, "delivery.attempt", &notification).is_empty()
                    && !named(spans, "queue.publish", &bounced).is_empty()
                    && !named(spans, "queue.publish", &deferred).is_empty()
            },
        )
        .await;

    // The ingress side: session > transaction > commit, publish; commands as events.
    let transaction = only(&spans, "smtp.transaction", &deferred);
    assert_eq!(transaction.service, "tern-ingress");
    let session = spans
        .iter()
        .find(|s| s.span_id == transaction.parent_span_id)
        .expect("the transaction's parent");
    assert_eq!(session.name, "smtp.session");
    assert_eq!(session.trace_id, transaction.trace_id);
    assert_eq!(session.attribute("client.address"), Some("127.0.0.1"));
    assert_eq!(session.attribute("smtp.listener"), Some("smtp"));
    let commands: Vec<&str> = transaction
        .events
        .iter()
        .filter(|e| e.name == "smtp.command")
        .filter_map(|e| e.attributes.get("smtp.command").map(String::as_str))
        .collect();
    assert!(
        commands.starts_with(&["mail", "rcpt", "data"]),
        "{commands:?}"
    );
    assert_eq!(transaction.attribute("smtp.reply.code"), Some("250"));
    assert_eq!(transaction.attribute("tern.recipients"), Some("1"));
    assert_eq!(
        transaction.attribute("smtp.mail_from.domain"),
        Some("example.org")
    );
    let commit = child_of(&spans, "queue.commit", transaction);
    assert_eq!(commit.attribute("db.system.name"), Some("postgresql"));
    let publish = child_of(&spans, "queue.publish", transaction);
    assert_eq!(publish.attribute("messaging.system"), Some("nats"));
    assert_eq!(publish.trace_id, transaction.trace_id);

    // The worker side: every attempt is a child of the transaction, in its trace.
    let mut attempts = named(&spans, "delivery.attempt", &deferred);
    attempts.sort_by_key(|s| s.attribute("tern.attempt").map(str::to_owned));
    assert!(attempts.len() >= 2, "{attempts:#?}");
    for attempt in &attempts {
        assert_eq!(attempt.service, "tern-worker");
        assert_eq!(attempt.trace_id, transaction.trace_id);
        assert_eq!(attempt.parent_span_id, transaction.span_id);
    }
    let first = attempts[0];
    assert_eq!(first.attribute("tern.attempt"), Some("1"));
    assert_eq!(first.attribute("tern.outcome"), Some("deferred"));
    assert_eq!(first.attribute("smtp.reply.code"), Some("451"));
    assert_eq!(first.attribute("smtp.reply.enhanced_status"), Some("4.3.0"));
    let last = attempts[attempts.len() - 1];
    assert_eq!(last.attribute("tern.outcome"), Some("delivered"));
    assert_eq!(last.attribute("smtp.reply.code"), Some("250"));
    assert_eq!(last.attribute("server.address"), Some("127.0.0.1"));

    // The bounce and its notification: one trace.
    let bounce_transaction = only(&spans, "smtp.transaction", &bounced);
    assert_ne!(bounce_transaction.trace_id, transaction.trace_id);
    let bounce_attempt = only(&spans, "delivery.attempt", &bounced);
    assert_eq!(bounce_attempt.attribute("tern.outcome"), Some("bounced"));
    assert_eq!(bounce_attempt.attribute("smtp.reply.code"), Some("550"));
    for attempt in named(&spans, "delivery.attempt", &notification) {
        assert_eq!(attempt.trace_id, bounce_transaction.trace_id);
        assert_eq!(attempt.parent_span_id, bounce_transaction.span_id);
    }

    // Privacy: no body, no local part, in any attribute of any span or event.
    for span in &spans {
        let values = span
            .attributes
            .values()
            .chain(span.events.iter().flat_map(|e| e.attributes.values()));
        for value in values {
            assert!(
                !value.contains(BODY_MARKER),
                "{} carries the body",
                span.name
            );
            assert!(
                !value.contains("alice@") && !value.contains("bob@"),
                "{} carries an address: {value}",
                span.name
            );
        }
    }
}

const SENDER_TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const SENDER_SPAN: &str = "00f067aa0ba902b7";

/// Sends one message carrying the sender's `Traceparent:` header through an ingress started with
/// `join` and returns the exported transaction span.
async fn transaction_for_a_traceparent_header(join: bool) -> ReceivedSpan {
    let receiver = OtlpReceiver::start().await.expect("OTLP receiver");
    let db = TestDatabase::create().await;
    migrate(&db.url).await;
    let smtp = free_port();
    let ingress = Tern::start(
        "ingress",
        &db.url,
        &[
            ("TERN_INGRESS_SMTP_LISTEN", format!("127.0.0.1:{smtp}")),
            ("TERN_INGRESS_SUBMISSION_LISTEN", String::new()),
            ("TERN_INGRESS_TRACE_JOIN_TRACEPARENT", join.to_string()),
            ("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.endpoint()),
            ("OTEL_BSP_SCHEDULE_DELAY", "200".to_owned()),
        ],
    )
    .await;
    let traceparent = format!("Traceparent: 00-{SENDER_TRACE}-{SENDER_SPAN}-01");
    swaks(
        smtp,
        &[
            "--from",
            "alice@example.org",
            "--to",
            "bob@tern.test",
            "--header",
            &traceparent,
        ],
    )
    .await;
    ingress.signal("TERM").await;
    let spans = receiver
        .wait_for("the transaction span", Duration::from_secs(30), |spans| {
            spans.iter().any(|s| s.name == "smtp.transaction")
        })
        .await;
    spans
        .into_iter()
        .find(|s| s.name == "smtp.transaction")
        .expect("transaction")
}

#[tokio::test]
async fn a_traceparent_header_makes_the_transaction_a_child_of_the_senders_trace_only_when_enabled()
{
    let joined = transaction_for_a_traceparent_header(true).await;
    assert_eq!(joined.trace_id, SENDER_TRACE);
    assert_eq!(joined.parent_span_id, SENDER_SPAN);

    let separate = transaction_for_a_traceparent_header(false).await;
    assert_ne!(separate.trace_id, SENDER_TRACE);
    assert_ne!(separate.parent_span_id, SENDER_SPAN);
}
