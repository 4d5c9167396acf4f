//! NATS JetStream notices that wake delivery workers.
//!
//! PostgreSQL holds the queue; a notice only says "message X has due jobs". Workers also poll the
//! database, so a lost notice delays nothing for long and a failed publish never fails an SMTP
//! transaction. Notices carry the message id as `Nats-Msg-Id`, so JetStream drops a duplicate
//! published within its deduplication window, and the W3C trace context of the transaction
//! that committed the message as `traceparent`/`tracestate` headers.

use std::time::Duration;

use crate::queue::QueueId;
use async_nats::jetstream::{self, message::PublishMessage, stream};
use bytes::Bytes;

use crate::config::NatsConfig;
use crate::telemetry::{TraceContext, context};
use crate::troubleshoot::{self, PolicyQuestion, PolicyReply, SmtpWatch, TranscriptLine};

/// Failures talking to NATS. None of them is fatal to the ingress.
#[derive(Debug, thiserror::Error)]
pub enum BusError {
    #[error("cannot connect to NATS: {0}")]
    Connect(#[from] async_nats::ConnectError),
    #[error("cannot create the work-queue stream: {0}")]
    Stream(#[from] jetstream::context::CreateStreamError),
    #[error("cannot publish a notice: {0}")]
    Publish(#[from] jetstream::context::PublishError),
    #[error("cannot subscribe to notices: {0}")]
    Subscribe(String),
    #[error("cannot publish a control-plane notice: {0}")]
    Control(String),
    /// Nobody answered a troubleshooting question (no ingress pod, or none in time).
    #[error("no ingress pod answered: {0}")]
    NoAnswer(String),
}

/// Names derived from the configured prefix, so installations and tests can share one NATS.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueNames {
    /// The work-queue stream, e.g. `tern_queue`.
    pub stream: String,
    /// Subject of "new message committed" notices, e.g. `tern.queue.new`.
    pub new_message_subject: String,
    /// Subject of "the control plane changed" notices, e.g. `tern.control.changed`: plain NATS,
    /// not JetStream, since every pod wants every one and a missed one costs only a poll.
    pub control_subject: String,
}

impl QueueNames {
    pub fn new(prefix: &str) -> Self {
        Self {
            stream: format!("{prefix}_queue"),
            new_message_subject: format!("{prefix}.queue.new"),
            control_subject: format!("{prefix}.control.changed"),
        }
    }

    fn subjects(prefix: &str) -> String {
        format!("{prefix}.queue.>")
    }
}

/// A connected JetStream context and the names it publishes to.
#[derive(Clone)]
pub struct Bus {
    client: async_nats::Client,
    jetstream: jetstream::Context,
    names: QueueNames,
    prefix: String,
}

impl Bus {
    /// Connects without waiting for the server: the client keeps reconnecting in the background,
    /// so the ingress starts and keeps accepting mail while NATS is away.
    pub async fn connect(config: &NatsConfig) -> Result<Self, BusError> {
        let client = async_nats::ConnectOptions::new()
            .name("tern")
            .retry_on_initial_connect()
            .connection_timeout(Duration::from_secs(5))
            .connect(config.url.as_str())
            .await?;
        let mut jetstream = jetstream::new(client.clone());
        jetstream.set_timeout(Duration::from_secs(5));
        Ok(Self {
            client,
            jetstream,
            names: QueueNames::new(&config.prefix),
            prefix: config.prefix.clone(),
        })
    }

    pub fn names(&self) -> &QueueNames {
        &self.names
    }

    pub fn client(&self) -> &async_nats::Client {
        &self.client
    }

    pub fn jetstream(&self) -> &jetstream::Context {
        &self.jetstream
    }

    pub fn is_connected(&self) -> bool {
        self.client.connection_state() == async_nats::connection::State::Connected
    }

    /// Creates the work-queue stream if it does not exist (idempotent).
    pub async fn ensure_stream(&self) -> Result<(), BusError> {
        self.jetstream
            .get_or_create_stream(stream::Config {
                name: self.names.stream.clone(),
                subjects: vec![QueueNames::subjects(&self.prefix)],
                retention: stream::RetentionPolicy::WorkQueue,
                storage: stream::StorageType::File,
                duplicate_window: Duration::from_secs(120),
                ..Default::default()
            })
            .await?;
        Ok(())
    }

    /// Publishes "message `id` was committed" and waits for JetStream to store it. `trace` (the
    /// publishing span's context) goes in the W3C `traceparent`/`tracestate` headers.
    pub async fn publish_new_message(
        &self,
        id: QueueId,
        trace: Option<&TraceContext>,
    ) -> Result<(), BusError> {
        let id = id.to_string();
        let mut notice = PublishMessage::build()
            .payload(Bytes::from(id.clone()))
            .message_id(id);
        if let Some(trace) = trace {
            notice = notice.header(context::TRACEPARENT, trace.traceparent.as_str());
            if let Some(state) = &trace.tracestate {
                notice = notice.header(context::TRACESTATE, state.as_str());
            }
        }
        let ack = self
            .jetstream
            .send_publish(self.names.new_message_subject.clone(), notice)
            .await?;
        ack.await?;
        Ok(())
    }

    /// Says that the control plane is now at `revision` (best effort: pods also poll). Gives up
    /// after a moment: while NATS is away the client would wait for it, and so would the write.
    pub async fn publish_control_change(&self, revision: i64) -> Result<(), BusError> {
        let publish = async {
            self.client
                .publish(
                    self.names.control_subject.clone(),
                    Bytes::from(revision.to_string()),
                )
                .await
                .map_err(|e| BusError::Control(e.to_string()))?;
            self.client
                .flush()
                .await
                .map_err(|e| BusError::Control(e.to_string()))
        };
        match tokio::time::timeout(Duration::from_secs(1), publish).await {
            Ok(result) => result,
            Err(_) => Err(BusError::Control(
                "NATS did not take the notice in 1s".to_owned(),
            )),
        }
    }

    /// Every control-plane notice from now on (each subscriber gets each one).
    pub async fn control_changes(&self) -> Result<async_nats::Subscriber, BusError> {
        self.client
            .subscribe(self.names.control_subject.clone())
            .await
            .map_err(|e| BusError::Subscribe(e.to_string()))
    }

    /// Asks one ingress pod what its policy would decide (see [`crate::troubleshoot`]).
    pub async fn ask_policy(
        &self,
        question: &PolicyQuestion,
        wait: Duration,
    ) -> Result<PolicyReply, BusError> {
        let payload = serde_json::to_vec(question)
            .map_err(|e| BusError::NoAnswer(format!("question not encoded: {e}")))?;
        let request = self
            .client
            .request(troubleshoot::policy_subject(&self.prefix), payload.into());
        let reply = match tokio::time::timeout(wait, request).await {
            Ok(Ok(reply)) => reply,
            Ok(Err(error)) => return Err(BusError::NoAnswer(error.to_string())),
            Err(_) => {
                return Err(BusError::NoAnswer(format!(
                    "none within {}s",
                    wait.as_secs()
                )));
            }
        };
        serde_json::from_slice(&reply.payload)
            .map_err(|e| BusError::NoAnswer(format!("an answer that does not parse: {e}")))
    }

    /// The policy questions for this pod to answer; each goes to one pod of the group.
    pub async fn policy_questions(&self) -> Result<async_nats::Subscriber, BusError> {
        self.client
            .queue_subscribe(
                troubleshoot::policy_subject(&self.prefix),
                troubleshoot::ANSWERING_GROUP.to_owned(),
            )
            .await
            .map_err(|e| BusError::Subscribe(e.to_string()))
    }

    /// Asks every ingress pod to transcribe sessions from a network (best effort; renewed).
    pub async fn publish_smtp_watch(&self, watch: &SmtpWatch) -> Result<(), BusError> {
        let payload = serde_json::to_vec(watch).map_err(|e| BusError::Control(e.to_string()))?;
        self.client
            .publish(
                troubleshoot::smtp_watch_subject(&self.prefix),
                payload.into(),
            )
            .await
            .map_err(|e| BusError::Control(e.to_string()))
    }

    /// Every watch request from now on (each pod hears each one).
    pub async fn smtp_watches(&self) -> Result<async_nats::Subscriber, BusError> {
        self.client
            .subscribe(troubleshoot::smtp_watch_subject(&self.prefix))
            .await
            .map_err(|e| BusError::Subscribe(e.to_string()))
    }

    /// The transcript lines of watch `id`.
    pub async fn transcript_lines(&self, id: &str) -> Result<async_nats::Subscriber, BusError> {
        self.client
            .subscribe(troubleshoot::smtp_transcript_subject(&self.prefix, id))
            .await
            .map_err(|e| BusError::Subscribe(e.to_string()))
    }

    /// Sends one transcript line to watch `id` (best effort: a debugging aid).
    pub async fn publish_transcript_line(&self, id: &str, line: &TranscriptLine) {
        if let Ok(payload) = serde_json::to_vec(line) {
            let subject = troubleshoot::smtp_transcript_subject(&self.prefix, id);
            let _ = self.client.publish(subject, payload.into()).await;
        }
    }

    /// Notices for the delivery workers: every worker pulls from one durable consumer, so each
    /// notice wakes one worker. The caller acknowledges a notice once the claim it caused is
    /// committed; an unacknowledged notice is redelivered after `ack_wait`.
    pub async fn worker_notices(&self) -> Result<jetstream::consumer::pull::Stream, BusError> {
        use jetstream::consumer::{AckPolicy, pull};
        let subscribe = |e: &dyn std::fmt::Display| BusError::Subscribe(e.to_string());
        self.ensure_stream().await?;
        let stream = self
            .jetstream
            .get_stream(&self.names.stream)
            .await
            .map_err(|e| subscribe(&e))?;
        let durable = format!("{}_workers", self.prefix);
        let consumer = stream
            .get_or_create_consumer(
                &durable,
                pull::Config {
                    durable_name: Some(durable.clone()),
                    ack_policy: AckPolicy::Explicit,
                    ack_wait: Duration::from_secs(30),
                    ..Default::default()
                },
            )
            .await
            .map_err(|e| subscribe(&e))?;
        consumer.messages().await.map_err(|e| subscribe(&e))
    }
}
