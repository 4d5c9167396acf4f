//! `/v1/dkim-keys`: the keys the ingress signs mail with. Tern makes each key pair itself and
//! answers with the DNS record to publish; the private key never comes out. A domain may have
//! several selectors: every key set to sign adds its signature, so a new key can be published,
//! then made to sign, before the old one stops.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use serde::{Deserialize, Serialize};
use tern_common::control::{ControlError, DkimAlgorithm, DkimKeySummary, NewDkimKey, Owner};
use utoipa::{IntoParams, ToSchema};

use crate::auth::{Caller, Scope};
use crate::error::{ApiError, not_found};
use crate::extract::{Json, Path, Query};
use crate::state::ApiState;

#[derive(Debug, Serialize, ToSchema)]
pub struct DkimKeyView {
    pub domain: String,
    pub selector: String,
    /// `rsa-sha256` (2048 bits) or `ed25519-sha256`.
    pub algorithm: String,
    /// Whether the ingress signs with it.
    pub signing: bool,
    /// Where to publish the record: `<selector>._domainkey.<domain>`.
    pub dns_name: String,
    /// The TXT record to publish there.
    pub dns_txt: String,
    /// `api` or `crd`.
    pub owner: String,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: time::OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub updated_at: time::OffsetDateTime,
}

impl From<DkimKeySummary> for DkimKeyView {
    fn from(key: DkimKeySummary) -> Self {
        Self {
            dns_name: key.dns_name(),
            dns_txt: key.dns_txt(),
            domain: key.domain,
            selector: key.selector,
            algorithm: key.algorithm.as_str().to_owned(),
            signing: key.signing,
            owner: key.owner.as_str().to_owned(),
            created_at: key.created_at,
            updated_at: key.updated_at,
        }
    }
}

/// A key to make for a domain's new selector.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DkimKeyRequest {
    pub domain: String,
    pub selector: String,
    /// `rsa-sha256` (the default) or `ed25519-sha256`.
    #[serde(default)]
    pub algorithm: Option<String>,
    /// Whether it signs at once (the default); make a rotation's new key with `false`, publish
    /// its record, then switch it on.
    #[serde(default)]
    pub signing: Option<bool>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DkimKeyChange {
    pub signing: bool,
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct DkimKeyFilter {
    /// Only this domain's keys.
    pub domain: Option<String>,
}

fn audit(caller: &Caller, action: &str, domain: &str, selector: &str) {
    tracing::info!(token = %caller.name, action, object = %format!("{selector}._domainkey.{domain}"), "admin API write");
}

#[utoipa::path(get, path = "/v1/dkim-keys", tag = "control plane", params(DkimKeyFilter),
    responses((status = 200, body = Vec<DkimKeyView>), (status = 422, body = crate::error::Problem)),
    security(("bearer" = [])))]
pub async fn list(
    caller: Caller,
    State(state): State<ApiState>,
    Query(filter): Query<DkimKeyFilter>,
) -> Result<axum::Json<Vec<DkimKeyView>>, ApiError> {
    caller.require(Scope::Read)?;
    let keys = state.control.dkim_keys(filter.domain.as_deref()).await?;
    Ok(axum::Json(keys.into_iter().map(Into::into).collect()))
}

#[utoipa::path(get, path = "/v1/dkim-keys/{domain}/{selector}", tag = "control plane",
    params(("domain" = String, Path), ("selector" = String, Path)),
    responses((status = 200, body = DkimKeyView), (status = 404, body = crate::error::Problem)),
    security(("bearer" = [])))]
pub async fn get(
    caller: Caller,
    State(state): State<ApiState>,
    Path((domain, selector)): Path<(String, String)>,
) -> Result<axum::Json<DkimKeyView>, ApiError> {
    caller.require(Scope::Read)?;
    let key = state
        .control
        .dkim_key(&domain, &selector)
        .await
        .map_err(not_found("DKIM key"))?;
    Ok(axum::Json(key.into()))
}

#[utoipa::path(post, path = "/v1/dkim-keys", tag = "control plane",
    request_body = DkimKeyRequest,
    responses((status = 201, body = DkimKeyView), (status = 409, body = crate::error::Problem),
              (status = 422, body = crate::error::Problem)),
    security(("bearer" = [])))]
pub async fn create(
    caller: Caller,
    State(state): State<ApiState>,
    Json(body): Json<DkimKeyRequest>,
) -> Result<impl IntoResponse, ApiError> {
    caller.require(Scope::Write)?;
    let algorithm = match body.algorithm.as_deref() {
        None => DkimAlgorithm::RsaSha256,
        Some(text) => text.parse().map_err(ControlError::from)?,
    };
    let new = NewDkimKey {
        domain: body.domain,
        selector: body.selector,
        algorithm,
        signing: body.signing.unwrap_or(true),
    };
    let made = state.control.generate_dkim_key(Owner::Api, &new).await?;
    audit(&caller, "create DKIM key", &made.domain, &made.selector);
    Ok((StatusCode::CREATED, axum::Json(DkimKeyView::from(made))))
}

#[utoipa::path(patch, path = "/v1/dkim-keys/{domain}/{selector}", tag = "control plane",
    params(("domain" = String, Path), ("selector" = String, Path)), request_body = DkimKeyChange,
    responses((status = 200, body = DkimKeyView), (status = 404, body = crate::error::Problem),
              (status = 409, body = crate::error::Problem), (status = 422, body = crate::error::Problem)),
    security(("bearer" = [])))]
pub async fn change(
    caller: Caller,
    State(state): State<ApiState>,
    Path((domain, selector)): Path<(String, String)>,
    Json(body): Json<DkimKeyChange>,
) -> Result<axum::Json<DkimKeyView>, ApiError> {
    caller.require(Scope::Write)?;
    let key = state
        .control
        .set_dkim_signing(Owner::Api, &domain, &selector, body.signing)
        .await
        .map_err(not_found("DKIM key"))?;
    let action = if body.signing {
        "start DKIM key signing"
    } else {
        "stop DKIM key signing"
    };
    audit(&caller, action, &key.domain, &key.selector);
    Ok(axum::Json(key.into()))
}

#[utoipa::path(delete, path = "/v1/dkim-keys/{domain}/{selector}", tag = "control plane",
    params(("domain" = String, Path), ("selector" = String, Path)),
    responses((status = 204), (status = 404, body = crate::error::Problem),
              (status = 409, body = crate::error::Problem)),
    security(("bearer" = [])))]
pub async fn delete(
    caller: Caller,
    State(state): State<ApiState>,
    Path((domain, selector)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    caller.require(Scope::Write)?;
    state
        .control
        .delete_dkim_key(Owner::Api, &domain, &selector)
        .await
        .map_err(not_found("DKIM key"))?;
    audit(&caller, "delete DKIM key", &domain, &selector);
    Ok(StatusCode::NO_CONTENT)
}
