//! What every reconciler shares: the finalizer around its apply and cleanup, the metrics, and
//! how soon a failure is retried (backing off, per resource).

use std::collections::HashMap;
use std::fmt::Debug;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::{StreamExt as _, TryFuture, TryFutureExt as _};
use k8s_openapi::api::core::v1::Secret;
use kube::core::NamespaceResourceScope;
use kube::runtime::controller::{Action, Controller};
use kube::runtime::finalizer::{Event, finalizer};
use kube::runtime::reflector::ObjectRef;
use kube::runtime::watcher;
use kube::{Api, Client, Resource, ResourceExt as _};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::Error;
use crate::metrics;

/// How soon a resource that is not Ready for a reason outside Kubernetes is looked at again (a
/// Secret that appears is seen at once through its watch).
pub const NOT_READY: Duration = Duration::from_secs(60);

/// Runs the controller of `K` in every namespace until `shutdown`. `secret_of` names the Secret
/// a resource reads (a password, a certificate), if any: Secrets are then watched too, and a
/// change to one reconciles the resources that name it. A failed reconcile is retried with
/// [`backoff`], counted per resource and reset by a reconcile that succeeds.
pub async fn run<K, Ctx, ReconcileFut>(
    client: &Client,
    kind: &'static str,
    context: Arc<Ctx>,
    mut reconcile: impl FnMut(Arc<K>, Arc<Ctx>) -> ReconcileFut,
    resync: Duration,
    secret_of: Option<fn(&K) -> Option<String>>,
    shutdown: impl Future<Output = ()> + Send + Sync + 'static,
) where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + Debug + Send + Sync + 'static,
    ReconcileFut: TryFuture<Ok = Action, Error = Error> + Send + 'static,
{
    let mut controller = Controller::new(Api::<K>::all(client.clone()), watcher::Config::default());
    if let Some(secret_of) = secret_of {
        let known = controller.store();
        let secrets: Api<Secret> = Api::all(client.clone());
        controller = controller.watches(
            secrets,
            watcher::Config::default(),
            move |secret: Secret| {
                let (namespace, name) = (secret.namespace(), secret.name_any());
                known
                    .state()
                    .into_iter()
                    .filter(|object| {
                        object.namespace() == namespace && secret_of(object).as_ref() == Some(&name)
                    })
                    .map(|object| ObjectRef::from_obj(&*object))
                    .collect::<Vec<_>>()
            },
        );
    }
    let failures: Arc<Mutex<HashMap<ObjectRef<K>, u32>>> = Arc::default();
    let succeeded = Arc::clone(&failures);
    let reconcile = move |object: Arc<K>, context: Arc<Ctx>| {
        let key = ObjectRef::from_obj(&*object);
        let succeeded = Arc::clone(&succeeded);
        reconcile(object, context).map_ok(move |action| {
            lock(&succeeded).remove(&key);
            action
        })
    };
    let error_policy = move |object: Arc<K>, error: &Error, _: Arc<Ctx>| {
        let mut failures = lock(&failures);
        let count = failures.entry(ObjectRef::from_obj(&*object)).or_default();
        *count = count.saturating_add(1);
        retry(kind, &*object, error, *count, resync)
    };
    controller
        .graceful_shutdown_on(shutdown)
        .run(reconcile, error_policy, context)
        .for_each(|_| async {})
        .await;
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

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

/// The controllers' error policy: a failure that waiting can mend is retried after
/// [`backoff`]; any other at the next resync, since only a change to the resource (which
/// reconciles at once) or to the world outside can mend it.
fn retry<K: Resource<DynamicType = ()>>(
    kind: &'static str,
    object: &K,
    error: &Error,
    failures: u32,
    resync: Duration,
) -> Action {
    metrics::reconcile_failed(kind, error);
    let after = if error.is_transient() {
        backoff(failures).min(resync)
    } else {
        resync
    };
    tracing::warn!(kind, name = %object.name_any(), %error, failures, retry_in = ?after, "reconcile failed");
    Action::requeue(after)
}

/// How long to wait after the `failures`-th failure in a row: 5 s, doubling, at most 5 min.
pub fn backoff(failures: u32) -> Duration {
    const FIRST: Duration = Duration::from_secs(5);
    const MOST: Duration = Duration::from_secs(300);
    FIRST
        .saturating_mul(2u32.saturating_pow(failures.saturating_sub(1)))
        .min(MOST)
}

/// When to look again after an apply that ended in `ready`: a settled resource at the next
/// `resync` (every settled resource is looked at again that often, which puts back a row
/// changed or deleted behind the operator's back).
pub fn again(ready: bool, resync: Duration) -> Action {
    Action::requeue(if ready { resync } else { NOT_READY.min(resync) })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_back_off_to_five_minutes() {
        let waits: Vec<u64> = [1, 2, 3, 4, 6, 7, 40, u32::MAX]
            .into_iter()
            .map(|failures| backoff(failures).as_secs())
            .collect();
        assert_eq!(waits, [5, 10, 20, 40, 160, 300, 300, 300]);
    }
}
