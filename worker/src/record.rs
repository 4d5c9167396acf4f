//! From verdicts to recorded outcomes: the next state of each recipient (retry time, expiry),
//! the notification it owes, and one store call per transaction.

use std::net::IpAddr;
use std::sync::Arc;

use tern_common::queue::{ClaimedJob, DsnOwed, FinishBatcher, Finished, JobState, StoredMessage};
use tern_smtp::Notify;
use time::OffsetDateTime;
use tokio::sync::Notify as Wake;
use tokio_util::task::TaskTracker;

use crate::delivery::client::TlsInfo;
use crate::delivery::outcome::{Outcome, Verdict};
use crate::in_flight::InFlight;
use crate::metrics;
use crate::schedule::{Next, RetrySchedule};
use crate::trace;

/// Who was talked to, for the attempt record.
pub(crate) struct Attempt {
    pub host: String,
    pub ip: IpAddr,
    pub port: u16,
    pub tls: Option<TlsInfo>,
}

impl Attempt {
    /// Postfix's `relay=` form: `host[ip]:port`.
    fn relay(&self) -> String {
        format!("{}[{}]:{}", self.host, self.ip, self.port)
    }
}

/// What the next hop means for notifications.
pub(crate) struct Hop<'a> {
    /// `None` when no server was reached.
    pub attempt: Option<&'a Attempt>,
    /// The next hop took NOTIFY itself (it supports DSN and is not the final store).
    pub next_hop_reports: bool,
    /// LMTP: the next hop is the mailbox store, so success means `delivered`, not `relayed`.
    pub final_hop: bool,
}

/// Writes what became of each job under this worker's leases, and wakes the DSN task when a
/// job owes a notification.
pub(crate) struct Recorder {
    /// Records under this worker's leases, together with other transactions' outcomes.
    pub(crate) finisher: FinishBatcher,
    /// Outcomes handed to the finisher whose answer is still awaited: a delivery goes on with
    /// its next message meanwhile, and the worker waits for these before it hands leases back.
    pub(crate) pending: TaskTracker,
    /// The worker's jobs in flight: a job stays there (its lease renewed) until its outcome is
    /// recorded, even when its group is done.
    pub(crate) in_flight: Arc<InFlight>,
    pub(crate) retry: RetrySchedule,
    pub(crate) dsn_wake: Arc<Wake>,
}

impl Recorder {
    /// Records the same verdict for every job of a message (routing and connection failures).
    pub(crate) async fn record_all(
        &self,
        message: &StoredMessage,
        jobs: &[ClaimedJob],
        verdict: &Verdict,
    ) {
        let verdicts = vec![verdict.clone(); jobs.len()];
        let hop = Hop {
            attempt: None,
            next_hop_reports: false,
            final_hop: false,
        };
        self.record(message, jobs, &verdicts, &hop).await;
    }

    /// Records one verdict per job, in one store call.
    pub(crate) async fn record(
        &self,
        message: &StoredMessage,
        jobs: &[ClaimedJob],
        verdicts: &[Verdict],
        hop: &Hop<'_>,
    ) {
        let now = OffsetDateTime::now_utc();
        let mut rng = fastrand::Rng::new();
        let queue_id = message.id;
        let message_id = tern_smtp::header::field(&message.body, "Message-ID");
        let relay = hop
            .attempt
            .map_or_else(|| "none".to_owned(), Attempt::relay);
        let delay = (now - message.received_at).as_seconds_f64().max(0.0);
        let rows: Vec<(JobState, String, String, Option<DsnOwed>)> = jobs
            .iter()
            .zip(verdicts)
            .map(|(job, verdict)| {
                let (state, status) = next_state(&self.retry, message, job, verdict, now, &mut rng);
                let dsn = dsn_owed(message, job, state, hop);
                let reply = verdict.to_string();
                let label = state_label(state);
                ::metrics::counter!(metrics::ATTEMPTS_TOTAL, "outcome" => label).increment(1);
                if !matches!(state, JobState::Deferred(_)) {
                    ::metrics::histogram!(metrics::DELIVERY_SECONDS, "outcome" => label)
                        .record(delay);
                }
                // One line per recipient and attempt, in the spirit of Postfix's
                // `to=<…>, relay=…, delay=…, dsn=…, status=…`.
                tracing::info!(
                    %queue_id,
                    message_id = message_id.as_deref(),
                    to = %job.recipient,
                    %relay,
                    delay = (delay * 100.0).round() / 100.0,
                    dsn = %status,
                    status = log_status(state),
                    %reply,
                    "delivery attempt"
                );
                (state, status, reply, dsn)
            })
            .collect();
        trace::attempt_finished(verdicts, rows.iter().map(|row| state_label(row.0)));
        let attempt = hop.attempt;
        let outcomes: Vec<Finished<'_>> = jobs
            .iter()
            .zip(&rows)
            .map(|(job, (state, status, reply, dsn))| Finished {
                job: job.key(),
                state: *state,
                status,
                reply,
                mx_host: attempt.map(|a| a.host.as_str()),
                remote_ip: attempt.map(|a| a.ip),
                tls_version: attempt
                    .and_then(|a| a.tls.as_ref())
                    .map(|t| t.version.as_str()),
                tls_cipher: attempt
                    .and_then(|a| a.tls.as_ref())
                    .map(|t| t.cipher.as_str()),
                dsn: *dsn,
            })
            .collect();
        let held = self
            .in_flight
            .hold(outcomes.iter().map(|outcome| outcome.job).collect());
        let recording = self.finisher.submit(&outcomes).await;
        let submitted = outcomes.len() as u64;
        let owes_dsn = rows.iter().any(|row| row.3.is_some());
        let dsn_wake = Arc::clone(&self.dsn_wake);
        self.pending.spawn(async move {
            let recorded = recording.recorded().await;
            drop(held);
            match recorded {
                Ok(recorded) => {
                    let lost = submitted - recorded.min(submitted);
                    if lost > 0 {
                        ::metrics::counter!(metrics::LEASES_LOST_TOTAL).increment(lost);
                        tracing::warn!(%queue_id, lost, "leases lost before the outcomes were recorded");
                    }
                    if owes_dsn {
                        dsn_wake.notify_one();
                    }
                }
                Err(error) => {
                    ::metrics::counter!(metrics::STORE_ERRORS_TOTAL, "op" => "finish").increment(1);
                    tracing::warn!(%queue_id, %error, "recording outcomes failed; the leases will expire and the jobs run again");
                }
            }
        });
    }
}

fn next_state(
    retry: &RetrySchedule,
    message: &StoredMessage,
    job: &ClaimedJob,
    verdict: &Verdict,
    now: OffsetDateTime,
    rng: &mut fastrand::Rng,
) -> (JobState, String) {
    match verdict.outcome {
        Outcome::Delivered => (JobState::Delivered, verdict.status.clone()),
        Outcome::Bounced => (JobState::Bounced, verdict.status.clone()),
        Outcome::Deferred => {
            let attempts = u32::try_from(job.attempts).unwrap_or(0).saturating_add(1);
            match retry.after_failure(message.received_at, now, attempts, rng) {
                Next::Retry(at) => (JobState::Deferred(at), verdict.status.clone()),
                // RFC 3463 5.4.7: delivery time expired; the last reply stays in the diagnostic.
                Next::Expired => (JobState::Expired, "5.4.7".to_owned()),
            }
        }
    }
}

/// Postfix's words for the `status` field of a delivery line.
fn log_status(state: JobState) -> &'static str {
    match state {
        JobState::Delivered => "sent",
        JobState::Deferred(_) => "deferred",
        JobState::Bounced => "bounced",
        JobState::Expired => "expired",
    }
}

fn state_label(state: JobState) -> &'static str {
    match state {
        JobState::Delivered => "delivered",
        JobState::Deferred(_) => "deferred",
        JobState::Bounced => "bounced",
        JobState::Expired => "expired",
    }
}

/// RFC 3461: failures are reported unless NOTIFY says otherwise (absent = FAILURE), successes
/// only on NOTIFY=SUCCESS and only when the next hop will not report them itself. Never for the
/// null sender: that is how bounce loops are avoided.
fn dsn_owed(
    message: &StoredMessage,
    job: &ClaimedJob,
    state: JobState,
    hop: &Hop<'_>,
) -> Option<DsnOwed> {
    if message.mail_from.is_empty() {
        return None;
    }
    let notify = job.dsn_notify.unwrap_or(Notify::ABSENT);
    match state {
        JobState::Bounced | JobState::Expired if notify.failure => Some(DsnOwed::Failed),
        JobState::Delivered if notify.success && !hop.next_hop_reports => Some(if hop.final_hop {
            DsnOwed::Delivered
        } else {
            DsnOwed::Relayed
        }),
        _ => None,
    }
}
