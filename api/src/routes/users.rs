//! `/v1/users`: the SMTP AUTH users. Passwords go in (hashed with argon2id, as `tern user` does)
//! and never come out. Users the operator owns (`crd`) are read-only here.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use serde::{Deserialize, Serialize};
use tern_common::control::Owner;
use tern_common::users::{SenderRule, User, UsersError};
use utoipa::ToSchema;

use crate::auth::{Caller, Scope};
use crate::error::ApiError;
use crate::extract::{Json, Path};
use crate::state::ApiState;

#[derive(Debug, Serialize, ToSchema)]
pub struct UserView {
    pub login: String,
    pub disabled: bool,
    /// Extra envelope senders: `bob@example.org` or `@example.com`.
    pub senders: Vec<String>,
    pub owner: String,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: time::OffsetDateTime,
}

fn view(user: User, owner: Option<String>) -> UserView {
    UserView {
        login: user.login,
        disabled: user.disabled,
        senders: user.senders.iter().map(ToString::to_string).collect(),
        owner: owner.unwrap_or_else(|| Owner::Api.as_str().to_owned()),
        created_at: user.created_at,
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewUser {
    pub login: String,
    pub password: String,
    #[serde(default)]
    pub senders: Vec<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewPassword {
    pub password: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Senders {
    pub senders: Vec<String>,
}

impl From<UsersError> for ApiError {
    fn from(error: UsersError) -> Self {
        match error {
            UsersError::Exists(_) => ApiError::Exists(Owner::Api),
            UsersError::NotFound(_) => ApiError::NotFound("user"),
            UsersError::OwnedBy { owner, .. } => match owner.parse() {
                Ok(owner) => ApiError::OwnedBy(owner),
                Err(_) => ApiError::Internal(format!("owner {owner}")),
            },
            UsersError::PasswordNeeded(_) => ApiError::invalid("password", "required"),
            UsersError::InvalidLogin(reason) => ApiError::invalid("login", reason),
            UsersError::InvalidPassword(reason) => ApiError::invalid("password", reason),
            UsersError::InvalidSender(sender) => ApiError::invalid(
                "senders",
                format!("'{sender}' is not an address or @domain"),
            ),
            UsersError::Database(error) => error.into(),
            UsersError::Hashing(detail) => ApiError::Internal(detail),
        }
    }
}

fn senders(texts: &[String]) -> Result<Vec<SenderRule>, ApiError> {
    texts
        .iter()
        .map(|text| SenderRule::parse(text.trim()).map_err(ApiError::from))
        .collect()
}

/// The user must exist and be ours to change.
async fn writable(state: &ApiState, login: &str) -> Result<(), ApiError> {
    match state.users.owner(login).await? {
        None => Err(ApiError::NotFound("user")),
        Some(owner) if owner == Owner::Api.as_str() => Ok(()),
        Some(owner) => {
            Err(ApiError::OwnedBy(owner.parse().map_err(|_| {
                ApiError::Internal(format!("owner {owner}"))
            })?))
        }
    }
}

#[utoipa::path(get, path = "/v1/users", tag = "users",
    responses((status = 200, body = Vec<UserView>)), security(("bearer" = [])))]
pub async fn list(
    caller: Caller,
    State(state): State<ApiState>,
) -> Result<axum::Json<Vec<UserView>>, ApiError> {
    caller.require(Scope::Read)?;
    let mut out = Vec::new();
    for user in state.users.list().await? {
        let owner = state.users.owner(&user.login).await?;
        out.push(view(user, owner));
    }
    Ok(axum::Json(out))
}

#[utoipa::path(get, path = "/v1/users/{login}", tag = "users", params(("login" = String, Path)),
    responses((status = 200, body = UserView), (status = 404, body = crate::error::Problem)),
    security(("bearer" = [])))]
pub async fn get(
    caller: Caller,
    State(state): State<ApiState>,
    Path(login): Path<String>,
) -> Result<axum::Json<UserView>, ApiError> {
    caller.require(Scope::Read)?;
    let user = state
        .users
        .find(&login)
        .await?
        .ok_or(ApiError::NotFound("user"))?;
    let owner = state.users.owner(&login).await?;
    Ok(axum::Json(view(user, owner)))
}

#[utoipa::path(post, path = "/v1/users", tag = "users", request_body = NewUser,
    responses((status = 201, body = UserView), (status = 409, body = crate::error::Problem),
              (status = 422, body = crate::error::Problem)),
    security(("bearer" = [])))]
pub async fn create(
    caller: Caller,
    State(state): State<ApiState>,
    Json(body): Json<NewUser>,
) -> Result<impl IntoResponse, ApiError> {
    caller.require(Scope::Write)?;
    let senders = senders(&body.senders)?;
    let user = state
        .users
        .add(&body.login, &body.password, &senders)
        .await?;
    tracing::info!(token = %caller.name, action = "create user", object = %user.login, "admin API write");
    Ok((StatusCode::CREATED, axum::Json(view(user, None))))
}

#[utoipa::path(put, path = "/v1/users/{login}/password", tag = "users", request_body = NewPassword,
    params(("login" = String, Path)),
    responses((status = 204), (status = 404, body = crate::error::Problem),
              (status = 409, body = crate::error::Problem), (status = 422, body = crate::error::Problem)),
    security(("bearer" = [])))]
pub async fn password(
    caller: Caller,
    State(state): State<ApiState>,
    Path(login): Path<String>,
    Json(body): Json<NewPassword>,
) -> Result<StatusCode, ApiError> {
    caller.require(Scope::Write)?;
    writable(&state, &login).await?;
    state.users.set_password(&login, &body.password).await?;
    tracing::info!(token = %caller.name, action = "set password", object = %login, "admin API write");
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(put, path = "/v1/users/{login}/senders", tag = "users", request_body = Senders,
    params(("login" = String, Path)),
    responses((status = 200, body = UserView), (status = 404, body = crate::error::Problem),
              (status = 409, body = crate::error::Problem), (status = 422, body = crate::error::Problem)),
    security(("bearer" = [])))]
pub async fn set_senders(
    caller: Caller,
    State(state): State<ApiState>,
    Path(login): Path<String>,
    Json(body): Json<Senders>,
) -> Result<axum::Json<UserView>, ApiError> {
    caller.require(Scope::Write)?;
    let senders = senders(&body.senders)?;
    writable(&state, &login).await?;
    state.users.set_senders(&login, &senders).await?;
    tracing::info!(token = %caller.name, action = "set senders", object = %login, "admin API write");
    get(caller, State(state), Path(login)).await
}

#[utoipa::path(post, path = "/v1/users/{login}/{action}", tag = "users",
    params(("login" = String, Path), ("action" = String, Path, description = "disable or enable")),
    responses((status = 204), (status = 404, body = crate::error::Problem),
              (status = 409, body = crate::error::Problem)),
    security(("bearer" = [])))]
pub async fn switch(
    caller: Caller,
    State(state): State<ApiState>,
    Path((login, action)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    caller.require(Scope::Write)?;
    let disabled = match action.as_str() {
        "disable" => true,
        "enable" => false,
        _ => return Err(ApiError::NotFound("action")),
    };
    writable(&state, &login).await?;
    state.users.set_disabled(&login, disabled).await?;
    tracing::info!(token = %caller.name, action = %action, object = %login, "admin API write");
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(delete, path = "/v1/users/{login}", tag = "users", params(("login" = String, Path)),
    responses((status = 204), (status = 404, body = crate::error::Problem),
              (status = 409, body = crate::error::Problem)),
    security(("bearer" = [])))]
pub async fn delete(
    caller: Caller,
    State(state): State<ApiState>,
    Path(login): Path<String>,
) -> Result<StatusCode, ApiError> {
    caller.require(Scope::Write)?;
    writable(&state, &login).await?;
    state.users.delete(&login).await?;
    tracing::info!(token = %caller.name, action = "delete user", object = %login, "admin API write");
    Ok(StatusCode::NO_CONTENT)
}
