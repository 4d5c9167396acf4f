//! `/v1/certificates`: certificates the ingress serves by SNI beside its mounted files. A chain
//! and key go in as PEM and are checked as the ingress will use them; the key never comes out.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use serde::{Deserialize, Serialize};
use tern_common::control::{CertificateSummary, NewCertificate, Owner};
use utoipa::ToSchema;

use crate::auth::{Caller, Scope};
use crate::error::{ApiError, not_found};
use crate::extract::{Json, Path};
use crate::state::ApiState;

#[derive(Debug, Serialize, ToSchema)]
pub struct CertificateView {
    pub name: String,
    /// The leaf's subject, e.g. `CN=mx.example.com`.
    pub subject: String,
    /// The leaf's DNS names (`subjectAltName`), the names SNI selects it by.
    pub hostnames: Vec<String>,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub not_after: time::OffsetDateTime,
    /// Where the ingress takes it from: always `database` here. Mounted files are per pod and
    /// show in each ingress's settings in `GET /v1/cluster`.
    pub source: String,
    /// `api` or `crd`.
    pub owner: String,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub updated_at: time::OffsetDateTime,
}

impl From<CertificateSummary> for CertificateView {
    fn from(summary: CertificateSummary) -> Self {
        Self {
            name: summary.name,
            subject: summary.facts.subject,
            hostnames: summary.facts.hostnames,
            not_after: summary.facts.not_after,
            source: "database".to_owned(),
            owner: summary.owner.as_str().to_owned(),
            updated_at: summary.updated_at,
        }
    }
}

/// A new certificate: its name, the chain (leaf first) and the leaf's private key, as PEM.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CertificateUpload {
    pub name: String,
    pub chain_pem: String,
    pub key_pem: String,
}

/// A rotation: a new chain and key under the same name.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CertificateRotation {
    pub chain_pem: String,
    pub key_pem: String,
}

fn audit(caller: &Caller, action: &str, object: &str) {
    tracing::info!(token = %caller.name, action, object, "admin API write");
}

#[utoipa::path(get, path = "/v1/certificates", tag = "control plane",
    responses((status = 200, body = Vec<CertificateView>), (status = 401, body = crate::error::Problem)),
    security(("bearer" = [])))]
pub async fn list(
    caller: Caller,
    State(state): State<ApiState>,
) -> Result<axum::Json<Vec<CertificateView>>, ApiError> {
    caller.require(Scope::Read)?;
    let all = state.control.certificates().await?;
    Ok(axum::Json(all.into_iter().map(Into::into).collect()))
}

#[utoipa::path(get, path = "/v1/certificates/{name}", tag = "control plane",
    params(("name" = String, Path)),
    responses((status = 200, body = CertificateView), (status = 404, body = crate::error::Problem)),
    security(("bearer" = [])))]
pub async fn get(
    caller: Caller,
    State(state): State<ApiState>,
    Path(name): Path<String>,
) -> Result<axum::Json<CertificateView>, ApiError> {
    caller.require(Scope::Read)?;
    let found = state
        .control
        .certificate(&name)
        .await
        .map_err(not_found("certificate"))?;
    Ok(axum::Json(found.into()))
}

#[utoipa::path(post, path = "/v1/certificates", tag = "control plane",
    request_body = CertificateUpload,
    responses((status = 201, body = CertificateView), (status = 409, body = crate::error::Problem),
              (status = 422, body = crate::error::Problem)),
    security(("bearer" = [])))]
pub async fn create(
    caller: Caller,
    State(state): State<ApiState>,
    Json(body): Json<CertificateUpload>,
) -> Result<impl IntoResponse, ApiError> {
    caller.require(Scope::Write)?;
    let new = NewCertificate {
        name: body.name,
        chain_pem: body.chain_pem,
        key_pem: body.key_pem,
    };
    let added = state.control.add_certificate(Owner::Api, &new).await?;
    audit(&caller, "create certificate", &added.name);
    Ok((
        StatusCode::CREATED,
        axum::Json(CertificateView::from(added)),
    ))
}

#[utoipa::path(put, path = "/v1/certificates/{name}", tag = "control plane",
    params(("name" = String, Path)), request_body = CertificateRotation,
    responses((status = 200, body = CertificateView), (status = 404, body = crate::error::Problem),
              (status = 409, body = crate::error::Problem), (status = 422, body = crate::error::Problem)),
    security(("bearer" = [])))]
pub async fn rotate(
    caller: Caller,
    State(state): State<ApiState>,
    Path(name): Path<String>,
    Json(body): Json<CertificateRotation>,
) -> Result<axum::Json<CertificateView>, ApiError> {
    caller.require(Scope::Write)?;
    let new = NewCertificate {
        name,
        chain_pem: body.chain_pem,
        key_pem: body.key_pem,
    };
    let rotated = state
        .control
        .replace_certificate(Owner::Api, &new)
        .await
        .map_err(not_found("certificate"))?;
    audit(&caller, "rotate certificate", &rotated.name);
    Ok(axum::Json(rotated.into()))
}

#[utoipa::path(delete, path = "/v1/certificates/{name}", tag = "control plane",
    params(("name" = String, Path)),
    responses((status = 204), (status = 404, body = crate::error::Problem),
              (status = 409, body = crate::error::Problem)),
    security(("bearer" = [])))]
pub async fn delete(
    caller: Caller,
    State(state): State<ApiState>,
    Path(name): Path<String>,
) -> Result<StatusCode, ApiError> {
    caller.require(Scope::Write)?;
    state
        .control
        .delete_certificate(Owner::Api, &name)
        .await
        .map_err(not_found("certificate"))?;
    audit(&caller, "delete certificate", &name);
    Ok(StatusCode::NO_CONTENT)
}
