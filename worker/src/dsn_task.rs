//! Queues the delivery status notifications finished jobs owe, one per message and kind, in the
//! transaction that clears what they cover: each notification is queued exactly once.

use std::sync::Arc;
use std::time::Duration;

use tern_common::queue::{DsnBatch, DsnOwed, OwedDsn, PgJobStore};
use tern_common::queue::{NewMessage, NewRecipient};
use time::OffsetDateTime;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::delivery::dsn::{self, Action, DsnInput, DsnRecipient, Ret};
use crate::metrics;

/// What the DSN task needs.
pub(crate) struct DsnTask {
    pub(crate) store: PgJobStore,
    /// The reporting MTA, and the sender domain of every report.
    pub(crate) hostname: String,
    /// Woken when a finished job owes a notification.
    pub(crate) wake: Arc<Notify>,
    /// How often to look anyway (a wake-up from another worker's finish never reaches us).
    pub(crate) poll_interval: Duration,
}

pub(crate) async fn run(task: DsnTask, stop: CancellationToken) {
    let hostname = task.hostname.as_str();
    loop {
        loop {
            match task.store.next_dsn_batch().await {
                Ok(Some(batch)) => {
                    let (kinds, notifications): (Vec<&str>, Vec<NewMessage>) =
                        notifications(hostname, &batch).into_iter().unzip();
                    let queue_id = batch.message.id;
                    match batch.commit(&notifications).await {
                        Ok(()) => {
                            for kind in kinds {
                                ::metrics::counter!(metrics::DSNS_QUEUED_TOTAL, "kind" => kind)
                                    .increment(1);
                            }
                            for n in &notifications {
                                tracing::info!(%queue_id, dsn_queue_id = %n.id, to = %n.recipients[0].address, "delivery status notification queued");
                            }
                        }
                        Err(error) => {
                            ::metrics::counter!(metrics::STORE_ERRORS_TOTAL, "op" => "dsn")
                                .increment(1);
                            tracing::warn!(%queue_id, %error, "queueing a notification failed; will retry");
                            break;
                        }
                    }
                }
                Ok(None) => break,
                Err(error) => {
                    ::metrics::counter!(metrics::STORE_ERRORS_TOTAL, "op" => "dsn").increment(1);
                    tracing::warn!(%error, "looking for owed notifications failed");
                    break;
                }
            }
        }
        tokio::select! {
            () = stop.cancelled() => return,
            () = task.wake.notified() => {}
            () = tokio::time::sleep(task.poll_interval) => {}
        }
    }
}

/// One notification for the failures and one for the successes of a batch (each only if owed),
/// with its kind as a metric label (`failure` is a bounce).
fn notifications(hostname: &str, batch: &DsnBatch) -> Vec<(&'static str, NewMessage)> {
    let message = &batch.message;
    if message.mail_from.is_empty() {
        return Vec::new();
    }
    let (failed, succeeded): (Vec<&OwedDsn>, Vec<&OwedDsn>) = batch
        .owed
        .iter()
        .partition(|owed| owed.kind == DsnOwed::Failed);
    [("failure", failed), ("success", succeeded)]
        .into_iter()
        .filter(|(_, owed)| !owed.is_empty())
        .map(|(kind, owed)| (kind, notification(hostname, batch, &owed)))
        .collect()
}

fn notification(hostname: &str, batch: &DsnBatch, owed: &[&OwedDsn]) -> NewMessage {
    let message = &batch.message;
    let now = OffsetDateTime::now_utc();
    let recipients: Vec<DsnRecipient<'_>> = owed
        .iter()
        .map(|o| DsnRecipient {
            final_recipient: &o.recipient,
            original_recipient: o.dsn_orcpt.as_deref(),
            action: match o.kind {
                DsnOwed::Failed => Action::Failed,
                DsnOwed::Delivered => Action::Delivered,
                DsnOwed::Relayed => Action::Relayed,
            },
            status: &o.status,
            remote_mta: o.remote_mta.as_deref(),
            diagnostic: o.last_reply.as_deref(),
            last_attempt: Some(o.updated_at),
            will_retry_until: None,
        })
        .collect();
    let queue_id = message.id.to_string();
    let smtputf8 = message.smtputf8 || !message.mail_from.is_ascii();
    let body = dsn::build(&DsnInput {
        reporting_mta: hostname,
        original_envelope_id: message.dsn_envid.as_deref(),
        arrival_date: message.received_at,
        queue_id: &queue_id,
        original_sender: &message.mail_from,
        ret: message.dsn_ret.map(Ret::from).unwrap_or_default(),
        recipients,
        original_message: &message.body,
        now,
        message_id_domain: hostname,
        smtputf8,
    });
    let mut notification = NewMessage::local(
        hostname,
        "",
        vec![NewRecipient::new(&message.mail_from)],
        body,
    );
    notification.smtputf8 |= smtputf8;
    // The report's deliveries join the trace of the message it reports on.
    notification.trace_context = message.trace_context();
    notification.reports_on = Some(message.id);
    notification
}
