//! One reconciler at a time among the operator's replicas: a `coordination.k8s.io` Lease, taken
//! when free or expired, renewed while leading, and given up on shutdown so another replica takes
//! over at once instead of waiting for it to expire.

use std::time::Duration;

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use kube::api::{ObjectMeta, PostParams};
use kube::{Api, Client};
use tokio_util::sync::CancellationToken;

/// How long a lease lasts without renewal; a crashed leader is replaced after this.
const LEASE: Duration = Duration::from_secs(15);
/// How often the leader renews, and a follower tries.
const RENEW: Duration = Duration::from_secs(3);

pub struct Elector {
    leases: Api<Lease>,
    name: String,
    identity: String,
}

impl Elector {
    /// The Lease `name` in `namespace`, held as `identity` (unique per replica).
    pub fn new(client: Client, namespace: &str, name: &str, identity: String) -> Self {
        Self {
            leases: Api::namespaced(client, namespace),
            name: name.to_owned(),
            identity,
        }
    }

    /// Takes the lease when it is free, expired or already ours (renewing it); `false` when
    /// another replica holds it, or won the race for it.
    pub async fn acquire(&self) -> Result<bool, kube::Error> {
        let now = Timestamp::now();
        let Some(lease) = self.leases.get_opt(&self.name).await? else {
            let lease = Lease {
                metadata: ObjectMeta {
                    name: Some(self.name.clone()),
                    ..ObjectMeta::default()
                },
                spec: Some(self.spec(None, now)),
            };
            return won(self.leases.create(&PostParams::default(), &lease).await);
        };
        let spec = lease.spec.clone().unwrap_or_default();
        let ours = spec.holder_identity.as_deref() == Some(self.identity.as_str());
        if !ours && !free(&spec, now) {
            return Ok(false);
        }
        let renewed = Lease {
            metadata: lease.metadata.clone(),
            spec: Some(self.spec(Some(&spec), now)),
        };
        // The resourceVersion in `metadata` makes this a compare-and-swap: of two replicas
        // taking an expired lease, one gets a conflict.
        won(self
            .leases
            .replace(&self.name, &PostParams::default(), &renewed)
            .await)
    }

    /// Gives the lease up if it is ours, so the next replica need not wait for it to expire.
    pub async fn release(&self) {
        let Ok(Some(lease)) = self.leases.get_opt(&self.name).await else {
            return;
        };
        let mut spec = lease.spec.clone().unwrap_or_default();
        if spec.holder_identity.as_deref() != Some(self.identity.as_str()) {
            return;
        }
        spec.holder_identity = None;
        let released = Lease {
            metadata: lease.metadata,
            spec: Some(spec),
        };
        match self
            .leases
            .replace(&self.name, &PostParams::default(), &released)
            .await
        {
            Ok(_) => tracing::info!(identity = %self.identity, "leadership handed over"),
            Err(error) => tracing::warn!(%error, "lease not released; it expires on its own"),
        }
    }

    /// The spec that makes the lease ours as of `now`, after `previous`.
    fn spec(&self, previous: Option<&LeaseSpec>, now: Timestamp) -> LeaseSpec {
        let ours = previous
            .and_then(|spec| spec.holder_identity.as_deref())
            .is_some_and(|holder| holder == self.identity);
        let transitions = previous
            .and_then(|spec| spec.lease_transitions)
            .unwrap_or(0);
        LeaseSpec {
            holder_identity: Some(self.identity.clone()),
            lease_duration_seconds: Some(LEASE.as_secs() as i32),
            acquire_time: match previous {
                Some(spec) if ours => spec.acquire_time.clone(),
                _ => Some(MicroTime(now)),
            },
            renew_time: Some(MicroTime(now)),
            lease_transitions: Some(if ours || previous.is_none() {
                transitions
            } else {
                transitions + 1
            }),
            ..LeaseSpec::default()
        }
    }
}

/// Whether a lease held by someone else may be taken: nobody holds it, or its holder has not
/// renewed it within its duration.
fn free(spec: &LeaseSpec, now: Timestamp) -> bool {
    let Some(_) = spec.holder_identity else {
        return true;
    };
    let (Some(renewed), Some(seconds)) = (&spec.renew_time, spec.lease_duration_seconds) else {
        return true;
    };
    renewed.0 + SignedDuration::from_secs(seconds.into()) < now
}

/// A create or replace that lost a race (409) is not an error: someone else leads.
fn won(result: Result<Lease, kube::Error>) -> Result<bool, kube::Error> {
    match result {
        Ok(_) => Ok(true),
        Err(kube::Error::Api(status)) if status.code == 409 => Ok(false),
        Err(error) => Err(error),
    }
}

/// Runs `lead` whenever this replica holds the lease, until `shutdown`: `lead` gets a token that
/// is cancelled when leadership is lost or the process stops. On shutdown the lease is released.
pub async fn run<F, Fut>(elector: Elector, shutdown: CancellationToken, lead: F)
where
    F: Fn(CancellationToken) -> Fut,
    Fut: Future<Output = ()>,
{
    loop {
        // Follow until the lease is ours.
        loop {
            match elector.acquire().await {
                Ok(true) => break,
                Ok(false) => {}
                Err(error) => tracing::warn!(%error, "lease not reachable"),
            }
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = tokio::time::sleep(RENEW) => {}
            }
        }
        tracing::info!(identity = %elector.identity, "leading");
        metrics::gauge!("tern_operator_leader").set(1.0);
        let stop = shutdown.child_token();
        let renewing = async {
            let mut last = tokio::time::Instant::now();
            loop {
                tokio::select! {
                    () = stop.cancelled() => return,
                    () = tokio::time::sleep(RENEW) => {}
                }
                match elector.acquire().await {
                    Ok(true) => last = tokio::time::Instant::now(),
                    Ok(false) => break,
                    // A blip: keep leading while the lease we hold is still good.
                    Err(error) if last.elapsed() < LEASE - RENEW => {
                        tracing::warn!(%error, "lease not renewed; trying again");
                    }
                    Err(_) => break,
                }
            }
            tracing::warn!("leadership lost");
            stop.cancel();
        };
        tokio::join!(lead(stop.clone()), renewing);
        metrics::gauge!("tern_operator_leader").set(0.0);
        if shutdown.is_cancelled() {
            elector.release().await;
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn held(renewed: &str, seconds: i32) -> LeaseSpec {
        LeaseSpec {
            holder_identity: Some("other".into()),
            renew_time: Some(MicroTime(renewed.parse().expect("time"))),
            lease_duration_seconds: Some(seconds),
            ..LeaseSpec::default()
        }
    }

    #[test]
    fn a_lease_is_free_when_unheld_or_expired() {
        let now: Timestamp = "2026-12-07T12:00:20Z".parse().expect("time");
        assert!(free(&LeaseSpec::default(), now));
        assert!(
            !free(&held("2026-12-07T12:00:10Z", 15), now),
            "renewed 10 s ago"
        );
        assert!(
            free(&held("2026-12-07T12:00:00Z", 15), now),
            "expired 5 s ago"
        );
    }
}
