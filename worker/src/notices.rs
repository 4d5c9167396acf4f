//! JetStream notices wake the claim loop. A notice is acknowledged only after a claim that
//! started after it has committed, so a notice is never lost between NATS and PostgreSQL; if
//! NATS is away the worker keeps polling and resubscribes when it returns.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use tern_common::bus::Bus;
use tokio::sync::{Notify, watch};
use tokio_util::sync::CancellationToken;

pub(crate) async fn run(
    bus: Bus,
    wake: Arc<Notify>,
    mut claimed: watch::Receiver<u64>,
    stop: CancellationToken,
) {
    let mut delay = Duration::from_millis(200);
    loop {
        let subscribed = tokio::select! {
            () = stop.cancelled() => return,
            subscribed = bus.worker_notices() => subscribed,
        };
        let mut notices = match subscribed {
            Ok(notices) => {
                delay = Duration::from_millis(200);
                tracing::info!("listening for JetStream notices");
                notices
            }
            Err(error) => {
                tracing::warn!(%error, "no JetStream notices; polling only, retrying");
                tokio::select! {
                    () = stop.cancelled() => return,
                    () = tokio::time::sleep(delay) => {}
                }
                delay = (delay * 2).min(Duration::from_secs(10));
                continue;
            }
        };
        // Notices waiting for their claim, with the claim generation that settles them.
        let mut pending: Vec<(u64, async_nats::jetstream::Message)> = Vec::new();
        loop {
            tokio::select! {
                () = stop.cancelled() => return,
                next = notices.next() => match next {
                    Some(Ok(notice)) => {
                        // Claims bump the counter when they commit; the second bump from now
                        // belongs to a claim that started after this notice arrived.
                        pending.push((*claimed.borrow() + 2, notice));
                        wake.notify_one();
                    }
                    Some(Err(error)) => {
                        tracing::warn!(%error, "reading notices failed; resubscribing");
                        break;
                    }
                    None => break,
                },
                changed = claimed.changed() => {
                    if changed.is_err() {
                        return;
                    }
                    let generation = *claimed.borrow_and_update();
                    let (settled, waiting) = pending
                        .drain(..)
                        .partition::<Vec<_>, _>(|(target, _)| *target <= generation);
                    pending = waiting;
                    for (_, notice) in settled {
                        if let Err(error) = notice.ack().await {
                            tracing::debug!(%error, "acknowledging a notice failed; it comes again");
                        }
                    }
                }
            }
        }
    }
}
