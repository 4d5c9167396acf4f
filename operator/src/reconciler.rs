//! What every reconciler shares: the finalizer around its apply and cleanup, the metrics, and
//! how soon a failure is retried.

use std::fmt::Debug;
use std::sync::Arc;
use std::time::Duration;

use kube::core::NamespaceResourceScope;
use kube::runtime::controller::Action;
use kube::runtime::finalizer::{Event, finalizer};
use kube::{Api, Client, Resource, ResourceExt as _};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::Error;
use crate::metrics;

/// How soon a resource that is not Ready for a reason outside Kubernetes is looked at again (a
/// Secret that appears is seen at once through its watch).
pub const NOT_READY: Duration = Duration::from_secs(60);

/// Runs `apply` (or, once the resource is being deleted, `cleanup`) under the finalizer
/// `name`, so the control plane's rows go before the resource does.
pub async fn finalized<K, ApplyFut, CleanupFut>(
    kind: &'static str,
    client: &Client,
    name: &str,
    object: Arc<K>,
    apply: impl FnOnce(Arc<K>, Api<K>) -> ApplyFut,
    cleanup: impl FnOnce(Arc<K>) -> CleanupFut,
) -> Result<Action, Error>
where
    K: Resource<DynamicType = (), Scope = NamespaceResourceScope>
        + Clone
        + DeserializeOwned
        + Serialize
        + Debug,
    ApplyFut: Future<Output = Result<Action, Error>>,
    CleanupFut: Future<Output = Result<Action, Error>>,
{
    let _timer = metrics::reconcile_started(kind);
    let namespace = object.namespace().unwrap_or_default();
    let api: Api<K> = Api::namespaced(client.clone(), &namespace);
    finalizer(&api, name, object, |event| async {
        match event {
            Event::Apply(object) => apply(object, api.clone()).await,
            Event::Cleanup(object) => cleanup(object).await,
        }
    })
    .await
    .map_err(|error| Error::Finalizer(Box::new(error)))
}

/// The controllers' error policy: soon when waiting can help, at the next resync otherwise.
pub fn retry<K: Resource<DynamicType = ()>>(
    kind: &'static str,
    object: &K,
    error: &Error,
    resync: Duration,
) -> Action {
    metrics::reconcile_failed(kind, error);
    tracing::warn!(kind, name = %object.name_any(), %error, "reconcile failed; retrying");
    if error.is_transient() {
        Action::requeue(Duration::from_secs(5))
    } else {
        Action::requeue(resync)
    }
}

/// When to look again after an apply that ended in `ready`: a settled resource at the next
/// `resync` (every settled resource is looked at again that often, which puts back a row
/// changed or deleted behind the operator's back).
pub fn again(ready: bool, resync: Duration) -> Action {
    Action::requeue(if ready { resync } else { NOT_READY.min(resync) })
}
