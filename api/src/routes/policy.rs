//! `/v1/policy`: the policy checks' settings as control-plane data. The document's fields are
//! the ingress's policy settings by their environment names without the `TERN_INGRESS_` prefix;
//! a field left out keeps each pod's environment setting. Every ingress pod follows a change
//! like the rest of the control plane.

use axum::extract::State;
use axum::http::StatusCode;
use serde::Serialize;
use tern_common::control::{Owner, PolicyDocument, StoredPolicy};
use utoipa::ToSchema;

use crate::auth::{Caller, Scope};
use crate::error::{ApiError, not_found};
use crate::extract::Json;
use crate::state::ApiState;

#[derive(Debug, Serialize, ToSchema)]
pub struct PolicyView {
    /// What the control plane sets; fields left out keep each pod's environment setting.
    #[schema(value_type = Object)]
    pub document: PolicyDocument,
    /// `api` or `crd`; `null` while no document was written.
    pub owner: Option<String>,
    #[serde(with = "time::serde::rfc3339::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub updated_at: Option<time::OffsetDateTime>,
}

impl From<Option<StoredPolicy>> for PolicyView {
    fn from(stored: Option<StoredPolicy>) -> Self {
        match stored {
            Some(stored) => Self {
                document: stored.document,
                owner: Some(stored.owner.as_str().to_owned()),
                updated_at: Some(stored.updated_at),
            },
            None => Self {
                document: PolicyDocument::default(),
                owner: None,
                updated_at: None,
            },
        }
    }
}

fn audit(caller: &Caller, action: &str) {
    tracing::info!(token = %caller.name, action, object = "policy", "admin API write");
}

#[utoipa::path(get, path = "/v1/policy", tag = "policy",
    responses((status = 200, body = PolicyView)),
    security(("bearer" = [])))]
pub async fn get(
    caller: Caller,
    State(state): State<ApiState>,
) -> Result<axum::Json<PolicyView>, ApiError> {
    caller.require(Scope::Read)?;
    Ok(axum::Json(state.control.policy().await?.into()))
}

/// The whole document: fields left out go back to each pod's environment setting.
#[utoipa::path(put, path = "/v1/policy", tag = "policy",
    request_body(content = Object, description = "spf, dkim_verify, dmarc, dnsbl_sites, dnsbl_threshold, greet_delay_seconds, greylist, greylist_delay_seconds, rate_limit_connections, rate_limit_client, rate_limit_recipient_domain, rate_limit_user, rate_limit_sender_domain, checks_smtp, checks_submission, checks_submissions (each a list of check names)"),
    responses((status = 200, body = PolicyView), (status = 409, body = crate::error::Problem),
              (status = 422, body = crate::error::Problem)),
    security(("bearer" = [])))]
pub async fn put(
    caller: Caller,
    State(state): State<ApiState>,
    Json(document): Json<PolicyDocument>,
) -> Result<axum::Json<PolicyView>, ApiError> {
    caller.require(Scope::Write)?;
    let stored = state.control.put_policy(Owner::Api, &document).await?;
    audit(&caller, "replace policy");
    Ok(axum::Json(Some(stored).into()))
}

/// Removes the document: every pod goes back to its environment settings.
#[utoipa::path(delete, path = "/v1/policy", tag = "policy",
    responses((status = 204), (status = 404, body = crate::error::Problem),
              (status = 409, body = crate::error::Problem)),
    security(("bearer" = [])))]
pub async fn delete(caller: Caller, State(state): State<ApiState>) -> Result<StatusCode, ApiError> {
    caller.require(Scope::Write)?;
    state
        .control
        .delete_policy(Owner::Api)
        .await
        .map_err(not_found("policy document"))?;
    audit(&caller, "delete policy");
    Ok(StatusCode::NO_CONTENT)
}
