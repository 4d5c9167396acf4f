//! The durable queue, by concept.
//!
//! PostgreSQL is the source of truth: a message exists once its row and one job row per recipient
//! are committed, and only then may the ingress answer `250`.
//!
//! - `commit`: accepted messages in, atomically ([`QueueStore`], [`PgQueueStore`]).
//! - `claim`: the delivery side: recipient jobs claimed under a lease, finished with an attempt
//!   record, and the notifications they owe ([`PgJobStore`]).
//! - `inspect`: the summary, listings and one message's story, for the admin API.
//! - `act`: retry, hold, release, bounce and delete, safe against a worker's lease.
//! - `retention`: finished messages' bodies, then their history, swept in small batches.
//! - `status`: [`JobStatus`], the job status column typed.
//! - `error`: [`QueueError`], the one error of all of them.
//! - `id`: [`QueueId`], a message's identity and its one text form.
//! - `depth`: how much is queued and how old the oldest due job is, for the gauges.

mod act;
mod claim;
mod commit;
mod depth;
mod error;
mod id;
mod inspect;
mod partitions;
mod retention;
mod status;

pub use act::{QueueAction, QueueActions};
pub use claim::{
    ClaimedJob, DsnBatch, DsnOwed, FinishBatcher, FinishLoop, Finished, JobKey, JobState, Outcomes,
    OwedDsn, PgJobStore, Recording, StoredMessage,
};
pub use commit::{
    NewMessage, NewRecipient, PgQueueStore, QueueStore, connect_delivery_pool, connect_pool,
    migrate,
};
pub use depth::QueueDepth;
pub use error::QueueError;
pub use id::{InvalidQueueId, QueueId};
pub use inspect::{
    AttemptRow, DestinationSummary, JobFilter, JobRow, JobStatusColumn, MessageDetail,
    MessageFilter, MessageRow, QueueInspector, QueueSummary,
};
pub use partitions::{DAYS_AHEAD, DaysSwept};
pub use status::JobStatus;
