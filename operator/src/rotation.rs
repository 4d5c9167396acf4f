//! DKIM rotation as a state machine over a domain's keys, with no I/O: the reconciler loads the
//! keys, asks DNS which selectors it serves, calls [`advance`], and stores what comes back.
//!
//! A key is `Next` (made and published, not signing: waiting for DNS to serve it), `Active`
//! (signing) or `Retiring` (no longer signing, still published so that mail signed before the
//! switch verifies; removed when the overlap ends). The steps, in order:
//!
//! 1. More than one `Active` key (a hand edit, or a write cut in half): the newest signs, the
//!    others retire.
//! 2. A `Retiring` key whose overlap has ended is removed.
//! 3. A `Next` key of another algorithm than the spec's (the spec changed mid-rotation) is
//!    dropped: it never signed, so nothing needs it.
//! 4. No `Active` key: a `Next` key starts signing at once, or else a new key is made signing.
//!    With nothing to sign with, waiting for DNS gains nothing.
//! 5. An `Active` key that is due (`rotation: Every` and `rotateDays` since it started
//!    signing, or of another algorithm than the spec's) gets a `Next` key beside it.
//! 6. A `Next` key DNS serves starts signing, and the `Active` key retires.

use std::time::Duration;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Serialize};

use crate::crd::{DkimAlgorithm, DkimSpec, Rotation};

/// How long a retiring key stays published when `overlapDays` is unset: longer than a message
/// may wait in Tern's queue (five days by default), since it was signed when it came in.
pub const DEFAULT_OVERLAP_DAYS: u32 = 7;

const DAY: Duration = Duration::from_secs(24 * 60 * 60);

#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    Next,
    Active,
    Retiring,
}

/// One key's place in the rotation (its key material is kept beside it, not here).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct KeyState {
    pub selector: String,
    pub algorithm: DkimAlgorithm,
    pub phase: Phase,
    pub created: Time,
    /// When the key entered its phase.
    pub since: Time,
}

/// What [`advance`] did, for events and logs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// A key was made; `signing` when it signs at once (there was none to sign with).
    Made { selector: String, signing: bool },
    /// Signing moved from `from` (now retiring) to `to`.
    Switched { from: Option<String>, to: String },
    /// A key left: its overlap ended, or it never signed and is no longer wanted.
    Removed { selector: String },
}

/// The keys after every step that applies at `now`, and what changed. `served` tells whether DNS
/// serves a selector's record as published in the status.
pub fn advance(
    mut keys: Vec<KeyState>,
    spec: &DkimSpec,
    now: Timestamp,
    served: impl Fn(&str) -> bool,
) -> (Vec<KeyState>, Vec<Change>) {
    let mut changes = Vec::new();
    let at = Time(now);

    // 1. One signer: the newest.
    let newest_active = keys
        .iter()
        .filter(|key| key.phase == Phase::Active)
        .max_by_key(|key| key.since.0)
        .map(|key| key.selector.clone());
    for key in &mut keys {
        if key.phase == Phase::Active && Some(&key.selector) != newest_active.as_ref() {
            key.phase = Phase::Retiring;
            key.since = at.clone();
        }
    }

    // 2, 3. Overlaps ended; next keys of the wrong algorithm.
    let overlap = days(spec.overlap_days.unwrap_or(DEFAULT_OVERLAP_DAYS));
    keys.retain(|key| {
        let gone = match key.phase {
            Phase::Retiring => now >= key.since.0 + overlap,
            Phase::Next => key.algorithm != spec.algorithm,
            Phase::Active => false,
        };
        if gone {
            changes.push(Change::Removed {
                selector: key.selector.clone(),
            });
        }
        !gone
    });

    // 4. Something signs.
    if !keys.iter().any(|key| key.phase == Phase::Active) {
        if let Some(next) = keys.iter_mut().find(|key| key.phase == Phase::Next) {
            next.phase = Phase::Active;
            next.since = at.clone();
            changes.push(Change::Switched {
                from: None,
                to: next.selector.clone(),
            });
        } else {
            let key = made(&keys, spec, Phase::Active, &at);
            changes.push(Change::Made {
                selector: key.selector.clone(),
                signing: true,
            });
            keys.push(key);
        }
        return (keys, changes);
    }

    // 5. A due key gets its successor.
    let next = keys.iter().position(|key| key.phase == Phase::Next);
    let Some(active) = keys.iter().position(|key| key.phase == Phase::Active) else {
        return (keys, changes);
    };
    let Some(next) = next else {
        if due(&keys[active], spec, now) {
            let key = made(&keys, spec, Phase::Next, &at);
            changes.push(Change::Made {
                selector: key.selector.clone(),
                signing: false,
            });
            keys.push(key);
        }
        return (keys, changes);
    };

    // 6. Served: signing moves.
    if served(&keys[next].selector) {
        keys[active].phase = Phase::Retiring;
        keys[active].since = at.clone();
        keys[next].phase = Phase::Active;
        keys[next].since = at;
        changes.push(Change::Switched {
            from: Some(keys[active].selector.clone()),
            to: keys[next].selector.clone(),
        });
    }
    (keys, changes)
}

/// Whether `active` should be followed by a new key at `now`.
fn due(active: &KeyState, spec: &DkimSpec, now: Timestamp) -> bool {
    active.algorithm != spec.algorithm
        || (spec.rotation == Rotation::Every
            && spec
                .rotate_days
                .is_some_and(|rotate| now >= active.since.0 + days(rotate)))
}

/// When the next step falls due with nothing else changing (a key due for rotation, an overlap
/// ending); `None` when only DNS or the spec can move the rotation on.
pub fn next_due(keys: &[KeyState], spec: &DkimSpec) -> Option<Timestamp> {
    let overlap = days(spec.overlap_days.unwrap_or(DEFAULT_OVERLAP_DAYS));
    let waiting = keys.iter().any(|key| key.phase == Phase::Next);
    keys.iter()
        .filter_map(|key| match key.phase {
            Phase::Retiring => Some(key.since.0 + overlap),
            Phase::Active if !waiting && spec.rotation == Rotation::Every => {
                spec.rotate_days.map(|rotate| key.since.0 + days(rotate))
            }
            _ => None,
        })
        .min()
}

/// A new key: the prefix and today's date, with `-2`, `-3`… when that selector is taken.
fn made(keys: &[KeyState], spec: &DkimSpec, phase: Phase, at: &Time) -> KeyState {
    let base = format!("{}-{}", spec.selector_prefix, at.0.strftime("%Y%m%d"));
    let taken = |selector: &str| keys.iter().any(|key| key.selector == selector);
    let selector = std::iter::once(base.clone())
        .chain((2..).map(|n| format!("{base}-{n}")))
        .find(|selector| !taken(selector))
        .unwrap_or(base);
    KeyState {
        selector,
        algorithm: spec.algorithm,
        phase,
        created: at.clone(),
        since: at.clone(),
    }
}

fn days(count: u32) -> SignedDuration {
    SignedDuration::try_from(DAY * count).unwrap_or(SignedDuration::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(rotate_days: Option<u32>, overlap_days: Option<u32>) -> DkimSpec {
        DkimSpec {
            algorithm: DkimAlgorithm::Ed25519Sha256,
            selector_prefix: "tern".into(),
            rotation: if rotate_days.is_some() {
                Rotation::Every
            } else {
                Rotation::Never
            },
            rotate_days,
            overlap_days,
        }
    }

    fn day(n: i64) -> Timestamp {
        let start: Timestamp = "2026-12-01T09:00:00Z".parse().expect("time");
        start + SignedDuration::from_hours(24 * n)
    }

    fn phases(keys: &[KeyState]) -> Vec<(&str, Phase)> {
        keys.iter()
            .map(|key| (key.selector.as_str(), key.phase))
            .collect()
    }

    #[test]
    fn a_rotation_goes_through_every_phase() {
        let spec = spec(Some(30), Some(2));
        let nothing_served = |_: &str| false;

        // The first key signs at once.
        let (keys, changes) = advance(Vec::new(), &spec, day(0), nothing_served);
        assert_eq!(phases(&keys), [("tern-20261201", Phase::Active)]);
        assert_eq!(
            changes,
            [Change::Made {
                selector: "tern-20261201".into(),
                signing: true
            }]
        );

        // Not due yet: nothing moves.
        let (keys, changes) = advance(keys, &spec, day(29), nothing_served);
        assert!(changes.is_empty());
        assert_eq!(next_due(&keys, &spec), Some(day(30)));

        // Due: the next key is made and published, and waits.
        let (keys, _) = advance(keys, &spec, day(30), nothing_served);
        assert_eq!(
            phases(&keys),
            [
                ("tern-20261201", Phase::Active),
                ("tern-20261231", Phase::Next)
            ]
        );
        assert_eq!(next_due(&keys, &spec), None, "only DNS moves it on now");
        let (keys, changes) = advance(keys, &spec, day(35), nothing_served);
        assert!(changes.is_empty(), "no switch before DNS serves it");

        // DNS serves it: signing moves, the old key retires for the overlap, then goes.
        let (keys, changes) = advance(keys, &spec, day(36), |selector| selector == "tern-20261231");
        assert_eq!(
            phases(&keys),
            [
                ("tern-20261201", Phase::Retiring),
                ("tern-20261231", Phase::Active)
            ]
        );
        assert_eq!(
            changes,
            [Change::Switched {
                from: Some("tern-20261201".into()),
                to: "tern-20261231".into()
            }]
        );
        assert_eq!(next_due(&keys, &spec), Some(day(38)));
        let (keys, changes) = advance(keys, &spec, day(37), nothing_served);
        assert!(changes.is_empty(), "the overlap has a day to run");
        let (keys, changes) = advance(keys, &spec, day(38), nothing_served);
        assert_eq!(phases(&keys), [("tern-20261231", Phase::Active)]);
        assert_eq!(
            changes,
            [Change::Removed {
                selector: "tern-20261201".into()
            }]
        );
        // The next rotation counts from when the new key started signing.
        assert_eq!(next_due(&keys, &spec), Some(day(36 + 30)));
    }

    #[test]
    fn never_keeps_one_key_and_an_algorithm_change_rotates() {
        let never = spec(None, None);
        let (keys, _) = advance(Vec::new(), &never, day(0), |_| true);
        let (keys, changes) = advance(keys, &never, day(400), |_| true);
        assert!(changes.is_empty());
        assert_eq!(next_due(&keys, &never), None);

        // A new algorithm is a rotation, with the same wait for DNS.
        let rsa = DkimSpec {
            algorithm: DkimAlgorithm::RsaSha256,
            ..never.clone()
        };
        let (keys, _) = advance(keys, &rsa, day(400), |_| false);
        assert_eq!(keys[1].phase, Phase::Next);
        assert_eq!(keys[1].algorithm, DkimAlgorithm::RsaSha256);
        let unused = keys[1].selector.clone();
        assert_eq!(unused, "tern-20280105");
        // Changed back before DNS served it: the unused key goes, and the old one signs on.
        let (keys, changes) = advance(keys, &never, day(401), |_| true);
        assert_eq!(phases(&keys), [("tern-20261201", Phase::Active)]);
        assert_eq!(changes, [Change::Removed { selector: unused }]);
    }

    #[test]
    fn broken_states_are_mended() {
        let spec = spec(Some(10), None);
        let key = |selector: &str, phase, since| KeyState {
            selector: selector.into(),
            algorithm: DkimAlgorithm::Ed25519Sha256,
            phase,
            created: Time(day(0)),
            since: Time(since),
        };
        // Two signers: the newest stays.
        let (keys, _) = advance(
            vec![
                key("a", Phase::Active, day(1)),
                key("b", Phase::Active, day(2)),
            ],
            &spec,
            day(3),
            |_| false,
        );
        assert_eq!(
            phases(&keys),
            [("a", Phase::Retiring), ("b", Phase::Active)]
        );
        // No signer but a next key: it signs without waiting.
        let (keys, changes) = advance(vec![key("c", Phase::Next, day(1))], &spec, day(3), |_| {
            false
        });
        assert_eq!(phases(&keys), [("c", Phase::Active)]);
        assert_eq!(
            changes,
            [Change::Switched {
                from: None,
                to: "c".into()
            }]
        );
        // A selector made twice on one day gets a suffix.
        let (keys, _) = advance(
            vec![key("tern-20261204", Phase::Active, day(-20))],
            &spec,
            day(3),
            |_| false,
        );
        assert_eq!(keys[1].selector, "tern-20261204-2");
        // The default overlap is a week.
        let (keys, _) = advance(
            vec![
                key("old", Phase::Retiring, day(0)),
                key("new", Phase::Active, day(0)),
            ],
            &spec,
            day(6),
            |_| false,
        );
        assert_eq!(keys.len(), 2);
        let (keys, _) = advance(keys, &spec, day(7), |_| false);
        assert_eq!(phases(&keys), [("new", Phase::Active)]);
    }
}
