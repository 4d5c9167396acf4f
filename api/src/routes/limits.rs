//! `/v1/destination-limits`: how many connections the whole cluster may keep open to a
//! destination, and how many messages it may hand it per minute. A destination is named by a
//! host name or suffix (`google.com`) and applies to every site (MX host set, or relay host)
//! whose hosts all fall under it; the longest name wins. Unset fields take the workers' settings
//! (`TERN_WORKER_DESTINATION_CONCURRENCY`, `TERN_WORKER_DESTINATION_RATE`).

use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use tern_common::control::{DestinationLimit, Owner};
use utoipa::ToSchema;

use crate::auth::{Caller, Scope};
use crate::error::{ApiError, not_found};
use crate::extract::{Json, Path};
use crate::state::ApiState;

use super::control::audit;

#[derive(Debug, Serialize, ToSchema)]
pub struct DestinationLimitView {
    /// A host name or suffix: `google.com` covers `gmail-smtp-in.l.google.com`.
    pub destination: String,
    /// Connections open at once, by the whole cluster; absent: the workers' default.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_connections: Option<u32>,
    /// Messages per minute, by the whole cluster; absent: the workers' default (none unless set).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_messages_per_minute: Option<u32>,
    /// `api` or `crd`.
    pub owner: String,
}

impl From<DestinationLimit> for DestinationLimitView {
    fn from(limit: DestinationLimit) -> Self {
        Self {
            destination: limit.destination,
            max_connections: limit.max_connections,
            max_messages_per_minute: limit.max_messages_per_minute,
            owner: limit.owner.as_str().to_owned(),
        }
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DestinationLimitChange {
    /// At least 1; absent: the workers' default.
    #[serde(default)]
    pub max_connections: Option<u32>,
    /// At least 1; absent: the workers' default.
    #[serde(default)]
    pub max_messages_per_minute: Option<u32>,
}

#[utoipa::path(get, path = "/v1/destination-limits", tag = "control plane",
    responses((status = 200, body = Vec<DestinationLimitView>)), security(("bearer" = [])))]
pub async fn list(
    caller: Caller,
    State(state): State<ApiState>,
) -> Result<axum::Json<Vec<DestinationLimitView>>, ApiError> {
    caller.require(Scope::Read)?;
    let limits = state.control.destination_limits().await?;
    Ok(axum::Json(limits.into_iter().map(Into::into).collect()))
}

#[utoipa::path(put, path = "/v1/destination-limits/{destination}", tag = "control plane",
    request_body = DestinationLimitChange, params(("destination" = String, Path)),
    responses((status = 200, body = DestinationLimitView),
              (status = 409, body = crate::error::Problem),
              (status = 422, body = crate::error::Problem)),
    security(("bearer" = [])))]
pub async fn put(
    caller: Caller,
    State(state): State<ApiState>,
    Path(destination): Path<String>,
    Json(body): Json<DestinationLimitChange>,
) -> Result<axum::Json<DestinationLimitView>, ApiError> {
    caller.require(Scope::Write)?;
    let stored = state
        .control
        .put_destination_limit(
            Owner::Api,
            &DestinationLimit {
                destination,
                max_connections: body.max_connections,
                max_messages_per_minute: body.max_messages_per_minute,
                owner: Owner::Api,
            },
        )
        .await?;
    audit(&caller, "set destination limit", &stored.destination);
    Ok(axum::Json(stored.into()))
}

#[utoipa::path(delete, path = "/v1/destination-limits/{destination}", tag = "control plane",
    params(("destination" = String, Path)),
    responses((status = 204), (status = 404, body = crate::error::Problem),
              (status = 409, body = crate::error::Problem)),
    security(("bearer" = [])))]
pub async fn delete(
    caller: Caller,
    State(state): State<ApiState>,
    Path(destination): Path<String>,
) -> Result<StatusCode, ApiError> {
    caller.require(Scope::Write)?;
    state
        .control
        .delete_destination_limit(Owner::Api, &destination)
        .await
        .map_err(not_found("destination limit"))?;
    audit(&caller, "delete destination limit", &destination);
    Ok(StatusCode::NO_CONTENT)
}
