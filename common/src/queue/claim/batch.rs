//! Group commit for outcomes: the attempts a worker finishes while one finish statement runs
//! are recorded together by the next one.
//!
//! One statement per SMTP transaction cost PostgreSQL about 0.29 ms of CPU per one-recipient
//! message; one statement for a hundred of them about 0.08 ms per message (`make bench-scale`,
//! the simulation's `--finish-per` cells). Nothing waits on a timer: a statement starts as soon
//! as the previous one is done, with whatever has queued meanwhile, so a quiet worker records
//! each attempt at once and a busy one in batches as large as its load makes them.
//!
//! Each caller still learns what became of its own jobs (how many were recorded, or the error)
//! through its [`Recording`]; a worker's delivery goes on with its next message meanwhile, and
//! the worker waits for every recording before it hands leases back.

use std::collections::HashSet;
use std::future::Future;
use std::sync::Arc;

use tokio::sync::{mpsc, oneshot};

use super::{Finished, Outcomes, PgJobStore};
use crate::queue::QueueError;

/// Requests queued for the statement after the current one; callers wait beyond that.
const QUEUED_REQUESTS: usize = 1024;

/// The callers' side: cheap to clone, one per worker.
#[derive(Clone)]
pub struct FinishBatcher {
    requests: mpsc::Sender<Request>,
}

/// The side that runs the statements; see [`FinishLoop::run`].
pub struct FinishLoop {
    requests: mpsc::Receiver<Request>,
    store: PgJobStore,
    owner: String,
    max_jobs: usize,
}

struct Request {
    outcomes: Outcomes,
    recorded: oneshot::Sender<Result<u64, Arc<QueueError>>>,
}

impl FinishBatcher {
    /// Outcomes recorded as `owner` (the leases' holder), at most `max_jobs` in one statement.
    pub fn new(store: PgJobStore, owner: String, max_jobs: usize) -> (FinishBatcher, FinishLoop) {
        let (sender, requests) = mpsc::channel(QUEUED_REQUESTS);
        let batcher = FinishBatcher { requests: sender };
        let run = FinishLoop {
            requests,
            store,
            owner,
            max_jobs: max_jobs.max(1),
        };
        (batcher, run)
    }

    /// Records one attempt's outcomes, as [`PgJobStore::finish`] does, with whatever else is
    /// waiting. Returns how many were recorded (fewer when leases were lost).
    pub async fn finish(&self, outcomes: &[Finished<'_>]) -> Result<u64, Arc<QueueError>> {
        self.submit(outcomes).await.recorded().await
    }

    /// Queues one attempt's outcomes for the next statement and returns at once (waiting only
    /// while the queue is full): a delivery goes on with its next message while they are
    /// recorded, and awaits [`Recording::recorded`] when it needs to know.
    pub async fn submit(&self, outcomes: &[Finished<'_>]) -> Recording {
        let (recorded, answer) = oneshot::channel();
        let request = Request {
            outcomes: Outcomes::from(outcomes),
            recorded,
        };
        // Refused when the loop has stopped: the answer's sender is dropped with the request,
        // so `recorded` reports it.
        let _ = self.requests.send(request).await;
        Recording(answer)
    }
}

/// Outcomes on their way to the database.
pub struct Recording(oneshot::Receiver<Result<u64, Arc<QueueError>>>);

impl Recording {
    /// How many of the outcomes were recorded (fewer when leases were lost), or why none were.
    /// A loop that has stopped answers [`QueueError::Timeout`]: the leases simply run out.
    pub async fn recorded(self) -> Result<u64, Arc<QueueError>> {
        self.0
            .await
            .unwrap_or_else(|_| Err(Arc::new(QueueError::Timeout)))
    }
}

impl FinishLoop {
    /// Records batches until `stop` and every request before it are done. Stop it only once
    /// nothing will call [`FinishBatcher::finish`] any more; a request after that gets
    /// [`QueueError::Timeout`] and its leases simply run out.
    pub async fn run(mut self, stop: impl Future<Output = ()>) {
        tokio::pin!(stop);
        let mut stopping = false;
        loop {
            let next = if stopping {
                self.requests.recv().await
            } else {
                tokio::select! {
                    biased;
                    request = self.requests.recv() => request,
                    () = &mut stop => {
                        // What is queued is still recorded; nothing new gets in.
                        stopping = true;
                        self.requests.close();
                        continue;
                    }
                }
            };
            let Some(first) = next else { return };
            let mut batch = vec![first];
            let mut jobs = batch[0].outcomes.len();
            while jobs < self.max_jobs {
                let Ok(request) = self.requests.try_recv() else {
                    break;
                };
                jobs += request.outcomes.len();
                batch.push(request);
            }
            self.record(batch).await;
        }
    }

    async fn record(&self, mut batch: Vec<Request>) {
        // Each request's jobs keep their place in the statement's columns: its share of the
        // answer is counted over its own range, without copying its ids.
        let mut all = Outcomes::default();
        let mut ends = Vec::with_capacity(batch.len());
        for request in &mut batch {
            all.append(&mut request.outcomes);
            ends.push(all.len());
        }
        match self.store.finish_outcomes(&self.owner, &all).await {
            Ok(recorded) => {
                let recorded: HashSet<i64> = recorded.into_iter().collect();
                let mut start = 0;
                for (request, end) in batch.into_iter().zip(ends) {
                    let mine = &all.job_ids()[start..end];
                    let count = mine.iter().filter(|id| recorded.contains(id)).count();
                    let _ = request.recorded.send(Ok(count as u64));
                    start = end;
                }
            }
            Err(error) => {
                let error = Arc::new(error);
                for request in batch {
                    let _ = request.recorded.send(Err(Arc::clone(&error)));
                }
            }
        }
    }
}
