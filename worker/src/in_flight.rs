//! The jobs this worker is working on: claimed and neither finished nor given up. Only their
//! leases are renewed. A job whose outcome could not be recorded, or whose message could not be
//! loaded, leaves this set with its group, so its lease runs out and another attempt follows,
//! however long this worker lives.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

#[derive(Debug, Default)]
pub(crate) struct InFlight {
    jobs: Mutex<HashSet<i64>>,
}

/// The jobs of one group, in flight until this is dropped (whatever became of them).
#[derive(Debug)]
pub(crate) struct Held {
    in_flight: Arc<InFlight>,
    jobs: Vec<i64>,
}

impl InFlight {
    pub(crate) fn hold(self: &Arc<Self>, jobs: Vec<i64>) -> Held {
        self.lock().extend(jobs.iter().copied());
        Held {
            in_flight: Arc::clone(self),
            jobs,
        }
    }

    /// The jobs whose leases to renew now.
    pub(crate) fn jobs(&self) -> Vec<i64> {
        self.lock().iter().copied().collect()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashSet<i64>> {
        self.jobs
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        let mut jobs = self.in_flight.lock();
        for job in &self.jobs {
            jobs.remove(job);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_group_leaves_the_set_when_it_is_dropped_and_others_stay() {
        let in_flight = Arc::new(InFlight::default());
        let first = in_flight.hold(vec![1, 2]);
        let second = in_flight.hold(vec![3]);
        let mut jobs = in_flight.jobs();
        jobs.sort_unstable();
        assert_eq!(jobs, [1, 2, 3]);
        drop(first);
        assert_eq!(in_flight.jobs(), [3]);
        drop(second);
        assert!(in_flight.jobs().is_empty());
    }
}
