//! Delivering one destination's share of a claim: route it, connect once, send each message,
//! and record what happened to every recipient.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tern_common::control::{ControlWatch, Suspension};
use tern_common::queue::QueueId;
use tern_common::queue::{ClaimedJob, JobKey, PgJobStore, StoredMessage};
use tern_smtp::Body;
use tokio::sync::Semaphore;
use tracing::{Instrument, Span};

use crate::delivery::DeliveryError;
use crate::delivery::client::{
    ClientConfig, ConnectError, Connection, Envelope, EnvelopeRecipient, Protocol,
};
use crate::delivery::outcome::{self, Verdict};
use crate::metrics;
use crate::plan::{Plan, Planner};
use crate::pool::{ConnectionCache, Held};
use crate::record::{Attempt, Hop, Recorder};
use crate::throttle::{SiteLimits, Throttle};
use crate::trace;

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

/// What delivering a destination's share of a claim needs: routing, the client and its idle
/// connections, the destination limits (this worker's share and the cluster's), and the queue
/// to load from and record into.
pub(crate) struct Destinations {
    pub(crate) worker_id: String,
    /// The destination of jobs without a domain (local recipients such as `postmaster`).
    pub(crate) hostname: String,
    /// Suspensions, read at the start of each group.
    pub(crate) control: ControlWatch,
    pub(crate) planner: Planner,
    pub(crate) client: ClientConfig,
    pub(crate) connections: Arc<ConnectionCache>,
    pub(crate) limits: DestinationLimits,
    pub(crate) throttle: Arc<Throttle>,
    pub(crate) store: PgJobStore,
    pub(crate) recorder: Recorder,
}

/// One semaphore per site: this worker's groups for a site wait here, in memory, rather than
/// all asking PostgreSQL for the site's cluster-wide slots. Sized by the site's connection limit;
/// a changed limit makes a new one (permits of the old drain away with their groups).
#[derive(Default)]
pub(crate) struct DestinationLimits {
    semaphores: Mutex<HashMap<String, (u32, Arc<Semaphore>)>>,
}

impl DestinationLimits {
    fn get(&self, site: &str, limit: u32) -> Arc<Semaphore> {
        let mut map = self.semaphores.lock().unwrap_or_else(|p| p.into_inner());
        // Looked up first: the site's key is copied only the first time, not per group.
        if let Some((size, semaphore)) = map.get(site)
            && *size == limit
        {
            return Arc::clone(semaphore);
        }
        let semaphore = Arc::new(Semaphore::new(limit as usize));
        map.insert(site.to_owned(), (limit, Arc::clone(&semaphore)));
        semaphore
    }
}

/// Delivers one group. Every job ends finished (delivered, deferred, bounced, expired) unless
/// the store is unreachable; then its lease runs out and another attempt follows.
pub(crate) async fn deliver(destinations: &Destinations, group: Vec<ClaimedJob>) {
    let Some(first) = group.first() else { return };
    let domain = if first.domain.is_empty() {
        destinations.hostname.clone()
    } else {
        first.domain.clone()
    };
    let plane = destinations.control.current();
    if let Some(suspension) = plane.suspension(&domain, time::OffsetDateTime::now_utc())
        && hold(destinations, &group, &domain, suspension).await
    {
        return;
    }
    // Messages are loaded before routing so that each has its attempt span (in its own trace)
    // from the start; the routing of the group is a child of the first message's attempt.
    let messages: Vec<(StoredMessage, Vec<ClaimedJob>, Span)> = by_message(destinations, group)
        .await
        .into_iter()
        .map(|(message, jobs)| {
            let span = trace::attempt_span(&destinations.worker_id, &message, &jobs, &domain);
            (message, jobs, span)
        })
        .collect();
    let lookup = messages
        .first()
        .map_or_else(Span::none, |(_, _, span)| trace::mx_span(span, &domain));
    let plan = match destinations
        .planner
        .plan(&domain)
        .instrument(lookup.clone())
        .await
    {
        Ok(plan) => plan,
        Err(error) => {
            trace::failed(&lookup, "dns");
            let verdict = outcome::classify(&Err(error));
            for (message, jobs, span) in messages {
                destinations
                    .recorder
                    .record_all(&message, &jobs, &verdict)
                    .instrument(span)
                    .await;
            }
            return;
        }
    };
    drop(lookup);
    // The snapshot the group started with decides its limits too.
    let limits = destinations.throttle.limits(&plane, &plan.site);
    let messages = match limits.messages_per_minute {
        Some(per_minute) => within_rate(destinations, &plan, messages, per_minute).await,
        None => messages,
    };
    if messages.is_empty() {
        return;
    }
    let local = destinations.limits.get(plan.site.key(), limits.connections);
    let Ok(_permit) = local.acquire_owned().await else {
        return;
    };
    ::metrics::gauge!(metrics::DELIVERIES_ACTIVE).increment(1.0);
    let mut connection: Option<Held> = None;
    // A failure to reach any host applies to every message of the group: trying again at once
    // for the next message would only repeat it.
    let mut unreachable: Option<Verdict> = None;
    for (message, jobs, span) in messages {
        attempt(
            destinations,
            &plan,
            limits,
            &mut connection,
            &mut unreachable,
            &message,
            &jobs,
        )
        .instrument(span)
        .await;
    }
    if let Some(conn) = connection {
        destinations.connections.put(&plan.key, conn);
    }
    ::metrics::gauge!(metrics::DELIVERIES_ACTIVE).decrement(1.0);
}

/// The messages of a group that the site's messages-per-minute limit lets go now; the others are
/// handed back, due when the next minute starts, without an attempt counted.
async fn within_rate(
    destinations: &Destinations,
    plan: &Plan,
    mut messages: Vec<(StoredMessage, Vec<ClaimedJob>, Span)>,
    per_minute: u32,
) -> Vec<(StoredMessage, Vec<ClaimedJob>, Span)> {
    let wanted = u32::try_from(messages.len()).unwrap_or(u32::MAX);
    let (granted, next_minute) = match destinations
        .throttle
        .grant(&plan.site, wanted, per_minute)
        .await
    {
        Ok(grant) => grant,
        Err(error) => {
            ::metrics::counter!(metrics::STORE_ERRORS_TOTAL, "op" => "grant").increment(1);
            tracing::warn!(%error, site = plan.site.key(), "could not count against the destination's rate; leases will expire");
            return Vec::new();
        }
    };
    let later = messages.split_off((granted as usize).min(messages.len()));
    if later.is_empty() {
        return messages;
    }
    let keys: Vec<JobKey> = later
        .iter()
        .flat_map(|(_, jobs, _)| jobs.iter().map(ClaimedJob::key))
        .collect();
    ::metrics::counter!(metrics::RATE_POSTPONED_TOTAL).increment(later.len() as u64);
    match destinations
        .store
        .postpone(&destinations.worker_id, &keys, next_minute)
        .await
    {
        Ok(_) => {
            tracing::info!(site = plan.site.key(), postponed = later.len(), until = %next_minute, "destination's messages per minute spent")
        }
        Err(error) => {
            ::metrics::counter!(metrics::STORE_ERRORS_TOTAL, "op" => "postpone").increment(1);
            tracing::warn!(%error, "could not postpone jobs over the destination's rate; their leases will expire");
        }
    }
    messages
}

/// One message's attempt over the group's connection, opening one if there is none.
async fn attempt(
    destinations: &Destinations,
    plan: &Plan,
    limits: SiteLimits,
    connection: &mut Option<Held>,
    unreachable: &mut Option<Verdict>,
    message: &StoredMessage,
    jobs: &[ClaimedJob],
) {
    if let Some(verdict) = unreachable {
        destinations
            .recorder
            .record_all(message, jobs, verdict)
            .await;
        return;
    }
    if connection.is_none() {
        *connection = destinations.connections.take(&plan.key).await;
    }
    if connection.is_none() {
        // Every open connection holds one of the site's slots, cluster-wide; when none is free,
        // this worker's own idle connections to the site (for other domains) go first.
        let slot = destinations
            .throttle
            .slot(&plan.site, limits.connections, || {
                destinations.connections.close_idle_of(plan.site.key())
            })
            .await;
        let span = trace::connect_span();
        match connect(destinations, plan).instrument(span.clone()).await {
            Ok(c) => {
                trace::connected(&[&span], &c, plan.protocol);
                *connection = Some(Held {
                    connection: c,
                    slot,
                });
            }
            Err(verdict) => {
                trace::failed(&span, "connect");
                destinations
                    .recorder
                    .record_all(message, jobs, &verdict)
                    .await;
                *unreachable = Some(verdict);
                return;
            }
        }
    }
    let Some(held) = connection.as_mut() else {
        return;
    };
    trace::connected(&[&Span::current()], &held.connection, plan.protocol);
    // A large message came with its head only: the rest is read now, so one is held at a time.
    let whole;
    let message = if message.is_whole() {
        message
    } else {
        match destinations.store.load_whole(message).await {
            Ok(Some(loaded)) => {
                whole = loaded;
                &whole
            }
            Ok(None) => {
                tracing::warn!(queue_id = %message.id, "message vanished from the queue");
                return;
            }
            Err(error) => {
                ::metrics::counter!(metrics::STORE_ERRORS_TOTAL, "op" => "load").increment(1);
                tracing::warn!(queue_id = %message.id, %error, "loading a message failed; its leases will expire");
                return;
            }
        }
    };
    if !send_one(
        destinations,
        &mut held.connection,
        plan.protocol,
        message,
        jobs,
    )
    .await
    {
        *connection = None;
    }
}

/// Holds a suspended destination's jobs until the suspension ends, without an attempt. `false`:
/// the suspension was lifted after this worker's snapshot was taken, so deliver them now.
async fn hold(
    destinations: &Destinations,
    group: &[ClaimedJob],
    domain: &str,
    suspension: &Suspension,
) -> bool {
    let keys: Vec<JobKey> = group.iter().map(ClaimedJob::key).collect();
    match destinations
        .store
        .hold_for_suspension(&destinations.worker_id, &keys, domain)
        .await
    {
        Ok(Some(held)) => {
            tracing::info!(domain, held, until = %suspension.until, reason = %suspension.reason, "delivery suspended");
            true
        }
        Ok(None) => false,
        Err(error) => {
            ::metrics::counter!(metrics::STORE_ERRORS_TOTAL, "op" => "hold").increment(1);
            tracing::warn!(%error, domain, "could not hold a suspended destination's jobs; their leases will expire");
            true
        }
    }
}

/// Tries every address of every host in order; the last failure is the verdict.
async fn connect(destinations: &Destinations, plan: &Plan) -> Result<Connection, Verdict> {
    let mut last = Err(DeliveryError::NoAddress(plan.key.clone()));
    for host in &plan.hosts {
        for address in &host.addrs {
            ::metrics::counter!(metrics::CONNECTIONS_TOTAL).increment(1);
            match Connection::connect(
                *address,
                &host.name,
                plan.protocol,
                plan.tls,
                &destinations.client,
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
    destinations: &Destinations,
    conn: &mut Connection,
    protocol: Protocol,
    message: &StoredMessage,
    jobs: &[ClaimedJob],
) -> bool {
    let envelope = Envelope {
        mail_from: &message.mail_from,
        smtputf8: message.smtputf8,
        eight_bit: message.body_type == Body::EightBitMime,
        ret: message.dsn_ret,
        envid: message.dsn_envid.as_deref(),
        recipients: jobs
            .iter()
            .map(|job| EnvelopeRecipient {
                address: &job.recipient,
                notify: job.dsn_notify,
                orcpt: job.dsn_orcpt.as_deref(),
            })
            .collect(),
    };
    let peer_has_dsn = conn.capabilities().dsn;
    let final_hop = protocol == Protocol::Lmtp;
    let attempt = Attempt {
        host: conn.host_name().to_owned(),
        ip: conn.peer().ip(),
        port: conn.peer().port(),
        tls: conn.tls_info().cloned(),
    };
    match conn.send(&envelope, &message.body).await {
        Ok(replies) => {
            let verdicts: Vec<Verdict> = replies
                .into_iter()
                .map(|reply| outcome::classify(&Ok(reply)))
                .collect();
            let hop = Hop {
                attempt: Some(&attempt),
                next_hop_reports: peer_has_dsn && !final_hop,
                final_hop,
            };
            destinations
                .recorder
                .record(message, jobs, &verdicts, &hop)
                .await;
            true
        }
        Err(error) => {
            let verdict = outcome::classify(&Err(error));
            let verdicts = vec![verdict; jobs.len()];
            let hop = Hop {
                attempt: Some(&attempt),
                next_hop_reports: false,
                final_hop,
            };
            destinations
                .recorder
                .record(message, jobs, &verdicts, &hop)
                .await;
            false
        }
    }
}

/// The group's jobs by message, with each message loaded once. A message that cannot be loaded
/// is left leased: its lease expires and another attempt loads it.
async fn by_message(
    destinations: &Destinations,
    group: Vec<ClaimedJob>,
) -> Vec<(StoredMessage, Vec<ClaimedJob>)> {
    let mut order: Vec<QueueId> = Vec::new();
    let mut jobs: HashMap<QueueId, Vec<ClaimedJob>> = HashMap::new();
    for job in group {
        if !jobs.contains_key(&job.message_id) {
            order.push(job.message_id);
        }
        jobs.entry(job.message_id).or_default().push(job);
    }
    let loaded = match destinations.store.load_messages(&order).await {
        Ok(loaded) => loaded,
        Err(error) => {
            ::metrics::counter!(metrics::STORE_ERRORS_TOTAL, "op" => "load").increment(1);
            tracing::warn!(%error, "loading messages failed; their leases will expire");
            return Vec::new();
        }
    };
    let mut loaded: HashMap<QueueId, StoredMessage> =
        loaded.into_iter().map(|m| (m.id, m)).collect();
    let mut out = Vec::with_capacity(order.len());
    for id in order {
        match (loaded.remove(&id), jobs.remove(&id)) {
            (Some(message), Some(jobs)) => out.push((message, jobs)),
            _ => tracing::warn!(queue_id = %id, "message vanished from the queue"),
        }
    }
    out
}
