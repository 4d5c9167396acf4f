//! `GET /v1/cluster`: every running ingress, worker and API process, the control-plane revision
//! it runs, and the settings it was given (secrets redacted), so an operator sees that a change
//! reached every pod.

use axum::extract::State;
use serde::Serialize;
use tern_common::control::heartbeat::EVERY;
use utoipa::ToSchema;

use crate::auth::{Caller, Scope};
use crate::error::ApiError;
use crate::state::ApiState;

#[derive(Debug, Serialize, ToSchema)]
pub struct Cluster {
    /// The control plane's revision in the database now.
    pub revision: i64,
    pub processes: Vec<ProcessView>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ProcessView {
    pub id: String,
    /// `ingress`, `worker` or `api`.
    pub component: String,
    pub version: String,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub started_at: time::OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub heartbeat_at: time::OffsetDateTime,
    /// The revision this process runs; behind `revision` for at most a poll.
    pub revision: i64,
    /// The `TERN_*` and `OTEL_*` settings it was started with (defaults are not listed),
    /// passwords and tokens redacted.
    #[schema(value_type = Object)]
    pub settings: serde_json::Value,
}

#[utoipa::path(get, path = "/v1/cluster", tag = "cluster",
    responses((status = 200, body = Cluster)), security(("bearer" = [])))]
pub async fn cluster(
    caller: Caller,
    State(state): State<ApiState>,
) -> Result<axum::Json<Cluster>, ApiError> {
    caller.require(Scope::Read)?;
    let revision = state.control.revision().await?;
    // Three missed beats: the process is gone.
    let rows = state.processes.list(EVERY * 3).await?;
    Ok(axum::Json(Cluster {
        revision,
        processes: rows
            .into_iter()
            .map(|row| ProcessView {
                id: row.id,
                component: row.component,
                version: row.version,
                started_at: row.started_at,
                heartbeat_at: row.heartbeat_at,
                revision: row.revision,
                settings: row.settings,
            })
            .collect(),
    }))
}
