//! What every reconciler shares: the finalizer around its apply and cleanup, the metrics, and
//! how soon a failure is retried.

use std::fmt::Debug;
use std::sync::Arc;
use std::time::Duration;

use futures::{StreamExt as _, TryFuture};
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
/// change to one reconciles the resources that name it.
pub async fn run<K, Ctx, ReconcileFut>(
    client: &Client,
    context: Arc<Ctx>,
    reconcile: impl FnMut(Arc<K>, Arc<Ctx>) -> ReconcileFut,
    error_policy: impl Fn(Arc<K>, &Error, Arc<Ctx>) -> Action,
    secret_of: Option<fn(&K) -> Option<&str>>,
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
                        object.namespace() == namespace && secret_of(object) == Some(name.as_str())
                    })
                    .map(|object| ObjectRef::from_obj(&*object))
                    .collect::<Vec<_>>()
            },
        );
    }
    controller
        .graceful_shutdown_on(shutdown)
        .run(reconcile, error_policy, context)
        .for_each(|_| async {})
        .await;
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
