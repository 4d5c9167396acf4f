//! The jobs this worker is working on: claimed and neither finished nor given up. Only their
//! leases are renewed. A job whose outcome could not be recorded, or whose message could not be
//! loaded, leaves this set with its group, so its lease runs out and another attempt follows,
//! however long this worker lives.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tern_common::queue::JobKey;

/// Each job with the number of holds on it: a group holds its jobs, and the recording of an
/// outcome holds them again until it is in the database, so a lease is renewed until then.
#[derive(Debug, Default)]
pub(crate) struct InFlight {
    jobs: Mutex<HashMap<JobKey, u32>>,
}

/// The jobs of one group, in flight until this is dropped (whatever became of them).
#[derive(Debug)]
pub(crate) struct Held {
    in_flight: Arc<InFlight>,
    jobs: Vec<JobKey>,
}

impl InFlight {
    pub(crate) fn hold(self: &Arc<Self>, jobs: Vec<JobKey>) -> Held {
        let mut held = self.lock();
        for job in &jobs {
            *held.entry(*job).or_default() += 1;
        }
        drop(held);
        Held {
            in_flight: Arc::clone(self),
            jobs,
        }
    }

    /// The jobs whose leases to renew now.
    pub(crate) fn jobs(&self) -> Vec<JobKey> {
        self.lock().keys().copied().collect()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<JobKey, u32>> {
        self.jobs
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        let mut jobs = self.in_flight.lock();
        for job in &self.jobs {
            if let Some(holds) = jobs.get_mut(job) {
                *holds -= 1;
                if *holds == 0 {
                    jobs.remove(job);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(ids: &[i64]) -> Vec<JobKey> {
        let message_id = tern_common::queue::QueueId::new();
        ids.iter().map(|&id| JobKey { id, message_id }).collect()
    }

    fn ids(in_flight: &InFlight) -> Vec<i64> {
        let mut ids: Vec<i64> = in_flight.jobs().iter().map(|key| key.id).collect();
        ids.sort_unstable();
        ids
    }

    #[test]
    fn a_group_leaves_the_set_when_it_is_dropped_and_others_stay() {
        let in_flight = Arc::new(InFlight::default());
        let first = in_flight.hold(keys(&[1, 2]));
        let second = in_flight.hold(keys(&[3]));
        assert_eq!(ids(&in_flight), [1, 2, 3]);
        drop(first);
        assert_eq!(ids(&in_flight), [3]);
        drop(second);
        assert!(in_flight.jobs().is_empty());
    }

    #[test]
    fn a_job_held_twice_stays_until_both_are_dropped() {
        let in_flight = Arc::new(InFlight::default());
        let group = in_flight.hold(keys(&[1, 2]));
        let recording = in_flight.hold(vec![group.jobs[1]]);
        drop(group);
        assert_eq!(ids(&in_flight), [2]);
        drop(recording);
        assert!(in_flight.jobs().is_empty());
    }
}
