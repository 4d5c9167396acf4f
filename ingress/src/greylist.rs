//! Greylisting at RCPT on the port 25 role, for strangers only (not authenticated, not in a
//! trusted network, not allowlisted): the one place a greylist answer becomes a reply. A
//! database that cannot answer defers the recipient (`451 4.3.0`): greylisting exists to keep
//! mail out, so it never silently lets it in.

use std::net::IpAddr;
use std::time::Duration;

use tern_common::greylist::{Grey, Greylist, Triplet};
use tern_smtp::{Refusal, Reply};
use tokio_util::sync::CancellationToken;

use crate::metrics;

/// The reply that defers this recipient, or `None` to accept it.
pub(crate) async fn at_rcpt(
    greylist: &Greylist,
    client: IpAddr,
    sender: &str,
    recipient: &str,
) -> Option<Reply> {
    let triplet = Triplet::new(client, sender, recipient);
    let (result, reply) = match greylist.check(&triplet).await {
        Ok(Grey::Passed) => ("passed", None),
        Ok(Grey::ClientAllowed) => ("client_allowed", None),
        Ok(Grey::Deferred { retry_after }) => {
            tracing::info!(client = %client, from = sender, rcpt = recipient, retry_after = retry_after.as_secs(), "greylisted");
            let reply = Reply::new(
                451,
                "4.7.1",
                format!(
                    "<{recipient}>: Recipient address rejected: Greylisted, try again in {} seconds",
                    retry_after.as_secs().max(1)
                ),
            );
            ("deferred", Some(reply.because(Refusal::Greylisted)))
        }
        Err(error) => {
            tracing::warn!(client = %client, %error, "greylist not reachable; recipient deferred");
            ("error", Some(Reply::policy_unavailable()))
        }
    };
    metrics::greylist_result(result);
    reply
}

/// Forgets expired triplets, in small batches, once an hour, while greylisting is on. Every pod
/// does it; the batches take only rows nobody has seen for the maximum age, so they never get in
/// each other's way.
/// `current` is the greylist in force, if greylisting is on.
pub(crate) async fn expire(current: impl Fn() -> Option<Greylist>, stop: CancellationToken) {
    const EVERY: Duration = Duration::from_secs(3600);
    loop {
        while let Some(greylist) = current() {
            match greylist.expire(1000).await {
                Ok(1000) => continue,
                Ok(0) => break,
                Ok(count) => {
                    tracing::debug!(count, "expired greylist triplets deleted");
                    break;
                }
                Err(error) => {
                    tracing::warn!(%error, "greylist expiry failed; next time");
                    break;
                }
            }
        }
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(EVERY) => {}
        }
    }
}
