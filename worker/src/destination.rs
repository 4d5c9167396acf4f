//! Delivering one destination's share of a claim: route it, connect once, send each message,
//! and record what happened to every recipient.

use std::collections::HashMap;
use std::sync::Arc;

use tern_common::jobs::{ClaimedJob, DsnOwed, Finished, JobState, StoredMessage};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::delivery::DeliveryError;
use crate::delivery::client::{
    ConnectError, Connection, Envelope, EnvelopeRecipient, Protocol, TlsMode,
};
use crate::delivery::mx::TargetHost;
use crate::delivery::outcome::{self, Outcome, Verdict};
use crate::delivery::route::Route;
use crate::metrics;
use crate::runner::Shared;
use crate::schedule::Next;

/// Messages one connection carries before the next group starts its own connection: enough to
/// reuse connections, few enough that one busy domain still spreads over several.
const MESSAGES_PER_GROUP: usize = 10;

/// Splits claimed jobs (sorted by domain, message, recipient) into groups of one domain and at
/// most [`MESSAGES_PER_GROUP`] messages, never splitting a message.
pub(crate) fn split(jobs: Vec<ClaimedJob>) -> Vec<Vec<ClaimedJob>> {
    let mut groups: Vec<Vec<ClaimedJob>> = Vec::new();
    let mut messages_in_last = 0;
    for job in jobs {
        let same_domain = groups
            .last()
            .and_then(|g| g.last())
            .is_some_and(|last| last.domain == job.domain);
        let same_message = same_domain
            && groups
                .last()
                .and_then(|g| g.last())
                .is_some_and(|last| last.message_id == job.message_id);
        if same_message {
            if let Some(group) = groups.last_mut() {
                group.push(job);
            }
        } else if same_domain && messages_in_last < MESSAGES_PER_GROUP {
            messages_in_last += 1;
            if let Some(group) = groups.last_mut() {
                group.push(job);
            }
        } else {
            messages_in_last = 1;
            groups.push(vec![job]);
        }
    }
    groups
}

/// Where a group goes: resolved hosts in the order to try, and how to speak to them.
struct Plan {
    key: String,
    protocol: Protocol,
    tls: TlsMode,
    hosts: Vec<TargetHost>,
}

/// Delivers one group. Every job ends finished (delivered, deferred, bounced, expired) unless
/// the store is unreachable; then its lease runs out and another attempt follows.
pub(crate) async fn deliver(shared: &Arc<Shared>, group: Vec<ClaimedJob>) {
    let Some(first) = group.first() else { return };
    let domain = if first.domain.is_empty() {
        shared.config.hostname.clone()
    } else {
        first.domain.clone()
    };
    let plan = match plan(shared, &domain).await {
        Ok(plan) => plan,
        Err(error) => {
            let verdict = outcome::classify(&Err(error));
            for (message, jobs) in by_message(shared, group).await {
                finish_all(shared, &message, &jobs, &verdict, None, false).await;
            }
            return;
        }
    };
    let limit = shared.destination_limit(&plan.key);
    let Ok(_permit) = limit.acquire_owned().await else {
        return;
    };
    ::metrics::gauge!(metrics::DELIVERIES_ACTIVE).increment(1.0);
    let mut connection: Option<Connection> = None;
    // A failure to reach any host applies to every message of the group: trying again at once
    // for the next message would only repeat it.
    let mut unreachable: Option<Verdict> = None;
    for (message, jobs) in by_message(shared, group).await {
        if let Some(verdict) = &unreachable {
            finish_all(shared, &message, &jobs, verdict, None, false).await;
            continue;
        }
        if connection.is_none() {
            match connect(shared, &plan).await {
                Ok(c) => connection = Some(c),
                Err(verdict) => {
                    finish_all(shared, &message, &jobs, &verdict, None, false).await;
                    unreachable = Some(verdict);
                    continue;
                }
            }
        }
        let Some(conn) = connection.as_mut() else {
            continue;
        };
        let keep = send_one(shared, conn, plan.protocol, &message, &jobs).await;
        if !keep || conn.reset().await.is_err() {
            connection = None;
        }
    }
    if let Some(conn) = connection {
        conn.quit().await;
    }
    ::metrics::gauge!(metrics::DELIVERIES_ACTIVE).decrement(1.0);
}

async fn plan(shared: &Shared, domain: &str) -> Result<Plan, DeliveryError> {
    let resolver = &shared.resolver;
    match shared.config.routes.lookup(domain) {
        Route::Mx { domain } => Ok(Plan {
            key: domain.clone(),
            protocol: Protocol::Smtp,
            tls: TlsMode::Opportunistic,
            hosts: resolver.resolve(&domain, shared.config.smtp_port).await?,
        }),
        Route::Relay {
            protocol,
            host,
            port,
            mx_lookup,
        } => {
            let hosts = if mx_lookup {
                resolver.resolve(&host, port).await?
            } else {
                resolver.resolve_host(&host, port).await?
            };
            Ok(Plan {
                key: format!("{host}:{port}"),
                protocol,
                tls: TlsMode::Opportunistic,
                hosts,
            })
        }
    }
}

/// Tries every address of every host in order; the last failure is the verdict.
async fn connect(shared: &Shared, plan: &Plan) -> Result<Connection, Verdict> {
    let mut last = Err(DeliveryError::NoAddress(plan.key.clone()));
    for host in &plan.hosts {
        for address in &host.addrs {
            ::metrics::counter!(metrics::CONNECTIONS_TOTAL).increment(1);
            match Connection::connect(
                *address,
                &host.name,
                plan.protocol,
                plan.tls,
                &shared.client,
            )
            .await
            {
                Ok(connection) => return Ok(connection),
                Err(ConnectError::Failed(error)) => {
                    tracing::debug!(host = %host.name, %address, %error, "connection failed");
                    last = Err(error);
                }
                Err(ConnectError::Refused(reply)) => {
                    tracing::debug!(host = %host.name, %address, %reply, "connection refused by reply");
                    last = Ok(reply);
                }
            }
        }
    }
    Err(outcome::classify(&last))
}

/// Sends one message. Returns whether the connection may carry another.
async fn send_one(
    shared: &Shared,
    conn: &mut Connection,
    protocol: Protocol,
    message: &StoredMessage,
    jobs: &[ClaimedJob],
) -> bool {
    let envelope = Envelope {
        mail_from: &message.mail_from,
        smtputf8: message.smtputf8,
        eight_bit: message.body_type != "7BIT",
        ret: message.dsn_ret.as_deref(),
        envid: message.dsn_envid.as_deref(),
        recipients: jobs
            .iter()
            .map(|job| EnvelopeRecipient {
                address: &job.recipient,
                notify: job.dsn_notify.as_deref(),
                orcpt: job.dsn_orcpt.as_deref(),
            })
            .collect(),
    };
    let peer_has_dsn = conn.capabilities().dsn;
    let final_hop = protocol == Protocol::Lmtp;
    let attempt = Attempt {
        host: Some(conn.host_name().to_owned()),
        ip: Some(conn.peer().ip()),
        tls: conn
            .tls_info()
            .map(|t| (t.version.clone(), t.cipher.clone())),
    };
    match conn.send(&envelope, &message.body).await {
        Ok(replies) => {
            for (job, reply) in jobs.iter().zip(replies) {
                let verdict = outcome::classify(&Ok(reply));
                let success_dsn = !peer_has_dsn || final_hop;
                finish(
                    shared,
                    message,
                    job,
                    &verdict,
                    Some(&attempt),
                    success_dsn,
                    final_hop,
                )
                .await;
            }
            true
        }
        Err(error) => {
            let verdict = outcome::classify(&Err(error));
            for job in jobs {
                finish(
                    shared,
                    message,
                    job,
                    &verdict,
                    Some(&attempt),
                    false,
                    final_hop,
                )
                .await;
            }
            false
        }
    }
}

/// Who was talked to, for the attempt record.
struct Attempt {
    host: Option<String>,
    ip: Option<std::net::IpAddr>,
    tls: Option<(String, String)>,
}

async fn finish_all(
    shared: &Shared,
    message: &StoredMessage,
    jobs: &[ClaimedJob],
    verdict: &Verdict,
    attempt: Option<&Attempt>,
    final_hop: bool,
) {
    for job in jobs {
        finish(shared, message, job, verdict, attempt, false, final_hop).await;
    }
}

/// Turns a verdict into the job's next state and records it with the attempt.
async fn finish(
    shared: &Shared,
    message: &StoredMessage,
    job: &ClaimedJob,
    verdict: &Verdict,
    attempt: Option<&Attempt>,
    success_dsn_owed: bool,
    final_hop: bool,
) {
    let now = OffsetDateTime::now_utc();
    let (state, status) = match verdict.outcome {
        Outcome::Delivered => (JobState::Delivered, verdict.status.clone()),
        Outcome::Bounced => (JobState::Bounced, verdict.status.clone()),
        Outcome::Deferred => {
            let attempts = u32::try_from(job.attempts).unwrap_or(0).saturating_add(1);
            let mut rng = fastrand::Rng::new();
            match shared
                .config
                .retry
                .after_failure(message.received_at, now, attempts, &mut rng)
            {
                Next::Retry(at) => (JobState::Deferred(at), verdict.status.clone()),
                // RFC 3463 5.4.7: delivery time expired; the last reply stays in the diagnostic.
                Next::Expired => (JobState::Expired, "5.4.7".to_owned()),
            }
        }
    };
    let dsn = dsn_owed(message, job, state, success_dsn_owed, final_hop);
    let reply = verdict.to_string();
    let finished = Finished {
        job_id: job.id,
        state,
        status: &status,
        reply: &reply,
        mx_host: attempt.and_then(|a| a.host.as_deref()),
        remote_ip: attempt.and_then(|a| a.ip),
        tls_version: attempt.and_then(|a| a.tls.as_ref().map(|t| t.0.as_str())),
        tls_cipher: attempt.and_then(|a| a.tls.as_ref().map(|t| t.1.as_str())),
        dsn,
    };
    let label = match state {
        JobState::Delivered => "delivered",
        JobState::Deferred(_) => "deferred",
        JobState::Bounced => "bounced",
        JobState::Expired => "expired",
    };
    ::metrics::counter!(metrics::RECIPIENTS_TOTAL, "outcome" => label).increment(1);
    let queue_id = message.id.simple();
    tracing::info!(%queue_id, rcpt = %job.recipient, outcome = label, %status, %reply, "delivery attempt");
    match shared.store.finish(&shared.config.id, &finished).await {
        Ok(true) => {
            if dsn.is_some() {
                shared.dsn_wake.notify_one();
            }
        }
        Ok(false) => {
            ::metrics::counter!(metrics::LEASES_LOST_TOTAL).increment(1);
            tracing::warn!(%queue_id, rcpt = %job.recipient, "lease lost before the outcome was recorded");
        }
        Err(error) => {
            ::metrics::counter!(metrics::STORE_ERRORS_TOTAL, "op" => "finish").increment(1);
            tracing::warn!(%queue_id, rcpt = %job.recipient, %error, "recording the outcome failed; the lease will expire and the job run again");
        }
    }
}

/// RFC 3461: failures are reported unless NOTIFY says otherwise (absent = FAILURE), successes
/// only on NOTIFY=SUCCESS and only when the next hop will not report them itself. Never for the
/// null sender: that is how bounce loops are avoided.
fn dsn_owed(
    message: &StoredMessage,
    job: &ClaimedJob,
    state: JobState,
    success_dsn_owed: bool,
    final_hop: bool,
) -> Option<DsnOwed> {
    if message.mail_from.is_empty() {
        return None;
    }
    let notify = job
        .dsn_notify
        .as_deref()
        .unwrap_or("FAILURE")
        .to_ascii_uppercase();
    let asked = |what: &str| notify.split(',').any(|n| n.trim() == what);
    match state {
        JobState::Bounced | JobState::Expired if asked("FAILURE") => Some(DsnOwed::Failed),
        JobState::Delivered if asked("SUCCESS") && success_dsn_owed => Some(if final_hop {
            DsnOwed::Delivered
        } else {
            DsnOwed::Relayed
        }),
        _ => None,
    }
}

/// The group's jobs by message, with each message loaded once. A message that cannot be loaded
/// is left leased: its lease expires and another attempt loads it.
async fn by_message(
    shared: &Shared,
    group: Vec<ClaimedJob>,
) -> Vec<(StoredMessage, Vec<ClaimedJob>)> {
    let mut order: Vec<Uuid> = Vec::new();
    let mut jobs: HashMap<Uuid, Vec<ClaimedJob>> = HashMap::new();
    for job in group {
        if !jobs.contains_key(&job.message_id) {
            order.push(job.message_id);
        }
        jobs.entry(job.message_id).or_default().push(job);
    }
    let mut out = Vec::with_capacity(order.len());
    for id in order {
        match shared.store.load_message(id).await {
            Ok(Some(message)) => out.push((message, jobs.remove(&id).unwrap_or_default())),
            Ok(None) => tracing::warn!(queue_id = %id.simple(), "message vanished from the queue"),
            Err(error) => {
                ::metrics::counter!(metrics::STORE_ERRORS_TOTAL, "op" => "load").increment(1);
                tracing::warn!(queue_id = %id.simple(), %error, "loading the message failed");
            }
        }
    }
    out
}
