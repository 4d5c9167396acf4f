//! `/v1/tokens`: API tokens (admin scope). A new token's text is in the creation response only.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::auth::{Caller, Scope, TokenInfo};
use crate::error::ApiError;
use crate::extract::{Json, Path};
use crate::state::ApiState;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewToken {
    pub name: String,
    pub scopes: Vec<Scope>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CreatedToken {
    pub name: String,
    pub scopes: Vec<Scope>,
    /// Shown once: only its digest is kept.
    pub token: String,
}

#[utoipa::path(get, path = "/v1/tokens", tag = "tokens",
    responses((status = 200, body = Vec<TokenInfo>), (status = 403, body = crate::error::Problem)),
    security(("bearer" = [])))]
pub async fn list(
    caller: Caller,
    State(state): State<ApiState>,
) -> Result<axum::Json<Vec<TokenInfo>>, ApiError> {
    caller.require(Scope::Admin)?;
    Ok(axum::Json(state.tokens.list().await?))
}

#[utoipa::path(post, path = "/v1/tokens", tag = "tokens", request_body = NewToken,
    responses((status = 201, body = CreatedToken), (status = 409, body = crate::error::Problem),
              (status = 422, body = crate::error::Problem)),
    security(("bearer" = [])))]
pub async fn create(
    caller: Caller,
    State(state): State<ApiState>,
    Json(body): Json<NewToken>,
) -> Result<impl IntoResponse, ApiError> {
    caller.require(Scope::Admin)?;
    let token = state.tokens.create(&body.name, &body.scopes).await?;
    tracing::info!(token = %caller.name, action = "create token", object = %body.name, "admin API write");
    Ok((
        StatusCode::CREATED,
        axum::Json(CreatedToken {
            name: body.name.trim().to_owned(),
            scopes: body.scopes,
            token,
        }),
    ))
}

#[utoipa::path(delete, path = "/v1/tokens/{name}", tag = "tokens", params(("name" = String, Path)),
    responses((status = 204), (status = 404, body = crate::error::Problem)),
    security(("bearer" = [])))]
pub async fn revoke(
    caller: Caller,
    State(state): State<ApiState>,
    Path(name): Path<String>,
) -> Result<StatusCode, ApiError> {
    caller.require(Scope::Admin)?;
    state.tokens.revoke(&name).await?;
    tracing::info!(token = %caller.name, action = "revoke token", object = %name, "admin API write");
    Ok(StatusCode::NO_CONTENT)
}
