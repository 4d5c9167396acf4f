//! Conditions as Kubernetes API conventions want them: a `Ready` condition per resource (and
//! specific ones where a kind has more to say), with the generation it judged and the time it
//! last changed.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use k8s_openapi::jiff::Timestamp;

/// How a reconcile ended, for the `Ready` condition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Ready,
    /// Not ready: a CamelCase reason and a sentence for people.
    NotReady {
        reason: &'static str,
        message: String,
    },
}

/// The `Ready` condition for `outcome` at `generation`; the transition time is kept from
/// `previous` when the status did not change, as the conventions ask.
pub fn ready(
    outcome: &Outcome,
    generation: Option<i64>,
    previous: &[Condition],
    now: Timestamp,
) -> Condition {
    let (status, reason, message) = match outcome {
        Outcome::Ready => (true, "Reconciled", "in the control plane".to_owned()),
        Outcome::NotReady { reason, message } => (false, *reason, message.clone()),
    };
    condition("Ready", status, reason, message, generation, previous, now)
}

/// A condition of type `type_`, its transition time kept from `previous` when its status did
/// not change.
pub fn condition(
    type_: &str,
    status: bool,
    reason: &str,
    message: String,
    generation: Option<i64>,
    previous: &[Condition],
    now: Timestamp,
) -> Condition {
    let status = if status { "True" } else { "False" };
    let last_transition_time = previous
        .iter()
        .find(|condition| condition.type_ == type_ && condition.status == status)
        .map(|condition| condition.last_transition_time.clone())
        .unwrap_or(Time(now));
    Condition {
        type_: type_.to_owned(),
        status: status.to_owned(),
        reason: reason.to_owned(),
        message,
        observed_generation: generation,
        last_transition_time,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_transition_time_moves_only_when_the_status_does() {
        let first: Timestamp = "2026-12-07T10:00:00Z".parse().expect("time");
        let later: Timestamp = "2026-12-07T11:00:00Z".parse().expect("time");
        let ready_then = ready(&Outcome::Ready, Some(1), &[], first);
        assert_eq!(ready_then.last_transition_time, Time(first));
        // Still ready at a new generation: same transition, new observed generation.
        let ready_again = ready(
            &Outcome::Ready,
            Some(2),
            std::slice::from_ref(&ready_then),
            later,
        );
        assert_eq!(ready_again.last_transition_time, Time(first));
        assert_eq!(ready_again.observed_generation, Some(2));
        // Not ready: a transition now, with the reason.
        let failed = Outcome::NotReady {
            reason: "SecretMissing",
            message: "no Secret alice".into(),
        };
        let broken = ready(&failed, Some(2), &[ready_again], later);
        assert_eq!(
            (broken.status.as_str(), broken.reason.as_str()),
            ("False", "SecretMissing")
        );
        assert_eq!(broken.last_transition_time, Time(later));
    }
}
