//! What the handlers share: each is a small handle on one concern.

use tern_common::bus::Bus;
use tern_common::control::PgControlStore;
use tern_common::control::heartbeat::Processes;
use tern_common::queue::{QueueActions, QueueInspector};
use tern_common::users::UserStore;

use crate::tokens::TokenStore;

#[derive(Clone)]
pub struct ApiState {
    pub tokens: TokenStore,
    pub control: PgControlStore,
    pub inspector: QueueInspector,
    pub actions: QueueActions,
    /// SMTP AUTH users.
    pub users: UserStore,
    /// Every running process's heartbeat (`GET /v1/cluster`).
    pub processes: Processes,
    /// `TERN_API_TRACE_URL`: a trace's URL with `{trace_id}` in it, e.g. Jaeger's.
    pub trace_url: Option<String>,
    /// NATS, where the ingress pods answer troubleshooting questions; `None`: they cannot be
    /// asked (503).
    pub bus: Option<Bus>,
}
