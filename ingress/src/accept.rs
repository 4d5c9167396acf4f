//! Accept-and-commit: a finished SMTP transaction becomes a durable queue entry.
//!
//! Order matters: the message and its recipient jobs are committed in one transaction, then the
//! client hears `250`, and the JetStream notice goes out on its own task. A failed or slow publish
//! never delays or fails the transaction: PostgreSQL is the truth and workers also poll it.

use std::net::IpAddr;
use std::time::Instant;

use tern_common::bus::Bus;
use tern_common::queue::QueueId;
use tern_common::queue::{NewMessage, NewRecipient, QueueStore};
use tern_common::telemetry::TraceContext;
use tern_smtp::{Domain, ForwardPath, Reply, ReversePath, Transaction};
use time::OffsetDateTime;
use tokio_util::task::TaskTracker;
use tracing::{Instrument, Span};

use crate::findings::Findings;
use crate::metrics;
use crate::received::{ReceivedInfo, received_header};
use crate::signing::DkimSigning;
use crate::submission::missing_headers;
use crate::tls::TlsInfo;
use crate::trace;

/// What is known about the client when a message arrives.
#[derive(Debug, Clone)]
pub(crate) struct Client {
    /// From the socket, or from a trusted load balancer's PROXY header.
    pub(crate) ip: IpAddr,
    pub(crate) tls: Option<TlsInfo>,
    /// The SMTP AUTH login, once the client has authenticated.
    pub(crate) login: Option<String>,
    /// In a trusted network: its messages' `Authentication-Results:` fields are believed.
    pub(crate) trusted: bool,
    /// What the policy checks learned about the open transaction (reset at MAIL).
    pub(crate) findings: Findings,
}

/// Turns finished transactions into queue entries: the queue to commit to, the bus that wakes
/// the workers, and the name this ingress stamps into `Received:`.
pub(crate) struct Committer<Q> {
    store: Q,
    bus: Option<Bus>,
    hostname: String,
    /// Notices still being published; awaited (briefly) on shutdown.
    notices: TaskTracker,
    /// Signs what authenticated users and trusted networks send; `None`: nothing is signed.
    signing: Option<DkimSigning>,
}

impl<Q> Committer<Q> {
    pub(crate) fn new(store: Q, bus: Option<Bus>, hostname: String) -> Self {
        Self {
            store,
            bus,
            hostname,
            notices: TaskTracker::new(),
            signing: None,
        }
    }

    pub(crate) fn with_signing(mut self, signing: DkimSigning) -> Self {
        self.signing = Some(signing);
        self
    }

    /// Waits up to `grace` for the notices still being published; `false` if some were not.
    pub(crate) async fn drain_notices(&self, grace: std::time::Duration) -> bool {
        self.notices.close();
        tokio::time::timeout(grace, self.notices.wait())
            .await
            .is_ok()
    }

    /// Publishes "message committed" on its own task: the SMTP reply does not wait for it.
    /// The notice's span is a child of `transaction`; its context travels in the notice headers.
    fn notify(&self, id: QueueId, transaction: &Span) {
        let Some(bus) = self.bus.clone() else { return };
        let span = if transaction.is_disabled() {
            Span::none()
        } else {
            let queue_id = id.to_string();
            trace::publish_span(transaction, &bus.names().new_message_subject, &queue_id)
        };
        let context = TraceContext::of_span(&span);
        let failed_span = span.clone();
        let publish = async move {
            if let Err(error) = bus.publish_new_message(id, context.as_ref()).await {
                trace::failed(&failed_span, "publish");
                ::metrics::counter!(metrics::NOTICE_FAILURES_TOTAL).increment(1);
                tracing::warn!(queue_id = %id, %error, "JetStream notice not published; workers will find the jobs by polling");
            }
        };
        self.notices.spawn(publish.instrument(span));
    }
}

impl<Q: QueueStore> Committer<Q> {
    /// Commits `transaction` and returns the queue id, or the reply to give instead.
    pub(crate) async fn accept(
        &self,
        transaction: Transaction,
        client: &Client,
        span: &Span,
    ) -> Result<String, Reply> {
        let client_ip = client.ip;
        let id = QueueId::new();
        let queue_id = id.to_string();
        let signing = self
            .signing
            .as_ref()
            .filter(|_| client.login.is_some() || client.trusted);
        let mut message = build(&self.hostname, transaction, client, id, &queue_id, signing);
        message.trace_context =
            trace::message_ready(span, &message, &queue_id, client.login.is_some());
        let commit_span = trace::commit_span(span, &queue_id);
        let started = Instant::now();
        let committed = self
            .store
            .commit(&message)
            .instrument(commit_span.clone())
            .await;
        ::metrics::histogram!(metrics::COMMIT_SECONDS).record(started.elapsed().as_secs_f64());
        match committed {
            Ok(()) => {
                ::metrics::counter!(metrics::MESSAGES_ACCEPTED_TOTAL).increment(1);
                ::metrics::counter!(metrics::MESSAGE_BYTES_TOTAL)
                    .increment(message.body.len() as u64);
                let message_id = tern_smtp::header::field(&message.body, "Message-ID");
                tracing::info!(
                    queue_id = %queue_id,
                    message_id = message_id.as_deref(),
                    from = %message.mail_from,
                    nrcpt = message.recipients.len(),
                    size = message.body.len(),
                    client = %client_ip,
                    "message accepted"
                );
                self.notify(id, span);
                Ok(queue_id)
            }
            Err(error) => {
                trace::failed(&commit_span, error.metric_label());
                ::metrics::counter!(metrics::COMMIT_ERRORS_TOTAL, "reason" => error.metric_label())
                    .increment(1);
                tracing::warn!(queue_id = %queue_id, client = %client_ip, %error, "queue commit failed; answered 451");
                Err(Reply::store_unavailable())
            }
        }
    }
}

fn build(
    hostname: &str,
    transaction: Transaction,
    client: &Client,
    id: QueueId,
    queue_id: &str,
    signing: Option<&DkimSigning>,
) -> NewMessage {
    let client_ip = client.ip;
    let Transaction { envelope, mut body } = transaction;
    // RFC 8601 5: results under our name from outside are forgeries; they go before ours is
    // added. Only the header section is read, and nothing is copied when none is there.
    if !client.trusted
        && let Some(cleaned) = tern_smtp::header::without_fields(&body, |name, value| {
            name.eq_ignore_ascii_case(b"Authentication-Results") && claims(value, hostname)
        })
    {
        body = cleaned;
    }
    let recipients: Vec<NewRecipient> = envelope.recipients.iter().map(new_recipient).collect();
    let protocol = with_keyword(
        envelope.params.smtputf8,
        envelope.esmtp,
        client.tls.is_some(),
        client.login.is_some(),
    );
    let received_at = OffsetDateTime::now_utc();
    let single = match recipients.as_slice() {
        [only] => Some(only.address.as_str()),
        _ => None,
    };
    let header = received_header(&ReceivedInfo {
        helo: &envelope.helo,
        client_ip,
        hostname,
        protocol,
        tls: client.tls,
        queue_id,
        single_recipient: single,
        at: received_at,
    });
    // RFC 6409 8.2/8.3: a submission gets the Message-ID and Date its client left out.
    let fixups = match client.login {
        Some(_) => missing_headers(&body, hostname, queue_id, received_at),
        None => String::new(),
    };
    // The message as it leaves us, fix-ups included, is what is signed.
    let signatures = signing
        .map(|signing| {
            let sender_domain = match &envelope.from {
                ReversePath::Mailbox(mailbox) => match &mailbox.domain {
                    Domain::Name(name) => Some(name.to_lowercase()),
                    Domain::Literal(_) => None,
                },
                ReversePath::Null => None,
            };
            signing.sign([fixups.as_bytes(), &body], sender_domain.as_deref())
        })
        .unwrap_or_default();
    // RFC 8601: our verdicts, under our name, above the trace field we add.
    let mut results = signatures;
    if let Some(why) = &client.findings.quarantine {
        results.push_str(&format!("X-Tern-Quarantine: {why}\r\n"));
    }
    if !client.findings.methods.is_empty() {
        let methods = client.findings.methods.join(";\r\n\t");
        results.push_str(&format!(
            "Authentication-Results: {hostname}; {methods}\r\n"
        ));
    }
    // The fields go in front of the body in its own buffer: a 25 MB body is moved, not held
    // twice (a large buffer grows in place where the allocator can remap it).
    let mut stored = body;
    let prefix = [results.as_bytes(), header.as_bytes(), fixups.as_bytes()].concat();
    stored.splice(0..0, prefix);
    let mail_from = match &envelope.from {
        ReversePath::Null => String::new(),
        ReversePath::Mailbox(mailbox) => mailbox.to_string(),
    };
    NewMessage {
        id,
        received_at,
        mail_from,
        helo: envelope.helo.clone(),
        client_ip,
        protocol,
        body_type: envelope.params.body,
        smtputf8: envelope.params.smtputf8,
        dsn_ret: envelope.params.ret,
        dsn_envid: envelope.params.envid.clone(),
        recipients,
        body: stored,
        trace_context: None,
        reports_on: None,
    }
}

/// Whether an `Authentication-Results:` value's authserv-id (its first token) is `hostname`.
fn claims(value: &[u8], hostname: &str) -> bool {
    let id = value
        .split(|&b| b == b';' || b.is_ascii_whitespace())
        .find(|token| !token.is_empty());
    id.is_some_and(|id| id.eq_ignore_ascii_case(hostname.as_bytes()))
}

/// The `with` keyword of RFC 3848 and RFC 6531: S for TLS, A for AUTH.
fn with_keyword(utf8: bool, esmtp: bool, tls: bool, authenticated: bool) -> &'static str {
    match (utf8, esmtp, tls, authenticated) {
        (true, _, false, false) => "UTF8SMTP",
        (true, _, false, true) => "UTF8SMTPA",
        (true, _, true, false) => "UTF8SMTPS",
        (true, _, true, true) => "UTF8SMTPSA",
        (false, true, false, false) => "ESMTP",
        (false, true, false, true) => "ESMTPA",
        (false, true, true, false) => "ESMTPS",
        (false, true, true, true) => "ESMTPSA",
        (false, false, _, _) => "SMTP",
    }
}

fn new_recipient(recipient: &tern_smtp::Recipient) -> NewRecipient {
    let (address, domain) = match &recipient.path {
        ForwardPath::Postmaster => ("postmaster".to_owned(), String::new()),
        ForwardPath::Mailbox(mailbox) => {
            let domain = match &mailbox.domain {
                Domain::Name(name) => name.to_lowercase(),
                Domain::Literal(literal) => format!("[{literal}]"),
            };
            (mailbox.to_string(), domain)
        }
    };
    NewRecipient {
        address,
        domain,
        dsn_notify: recipient.params.notify,
        dsn_orcpt: recipient
            .params
            .orcpt
            .as_ref()
            .map(|o| format!("{};{}", o.addr_type, o.addr)),
    }
}
