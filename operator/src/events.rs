//! Kubernetes events on transitions: one when a resource becomes Ready or stops being Ready, so
//! `kubectl describe` tells the story without the operator's logs.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::Resource;
use kube::runtime::events::{Event, EventType, Recorder};

use crate::FIELD_MANAGER;

/// The recorder for the operator's events.
pub fn recorder(client: kube::Client) -> Recorder {
    Recorder::new(client, FIELD_MANAGER.into())
}

/// Publishes an event when `now` changed `Ready`'s status from what `before` said (or there was
/// none). An event that cannot be published is logged, never a reason to fail the reconcile.
pub async fn on_transition<K>(
    recorder: &Recorder,
    object: &K,
    before: &[Condition],
    now: &Condition,
) where
    K: Resource<DynamicType = ()>,
{
    let was = before
        .iter()
        .find(|condition| condition.type_ == now.type_)
        .map(|condition| condition.status.as_str());
    if was == Some(now.status.as_str()) {
        return;
    }
    let type_ = if now.status == "True" {
        EventType::Normal
    } else {
        EventType::Warning
    };
    publish(recorder, object, type_, &now.reason, &now.message).await;
}

/// Publishes one event about `object`; one that cannot be published is logged.
pub async fn publish<K>(recorder: &Recorder, object: &K, type_: EventType, reason: &str, note: &str)
where
    K: Resource<DynamicType = ()>,
{
    let event = Event {
        type_,
        reason: reason.to_owned(),
        note: Some(note.chars().take(1000).collect()),
        action: "Reconcile".to_owned(),
        secondary: None,
    };
    if let Err(error) = recorder.publish(&event, &object.object_ref(&())).await {
        tracing::warn!(%error, "event not published");
    }
}
