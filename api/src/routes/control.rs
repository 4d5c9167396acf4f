//! `/v1/domains`, `/v1/networks`, `/v1/blocklist`, `/v1/suspensions`: the control plane. Writes
//! go through the same store functions the operator uses, as owner `api`; rows owned by `config`
//! or `crd` answer 409 naming their owner.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use serde::{Deserialize, Serialize};
use tern_common::control::{
    BlockAction, BlockEntry, BlockKind, Domain, DomainKind, NewBlockEntry, Owner, Suspension,
};
use tern_common::route::Route;
use time::OffsetDateTime;
use utoipa::ToSchema;

use crate::auth::{Caller, Scope};
use crate::error::{ApiError, not_found};
use crate::extract::{Json, Path};
use crate::state::ApiState;

pub(super) fn audit(caller: &Caller, action: &str, object: &str) {
    tracing::info!(token = %caller.name, action, object, "admin API write");
}

// ---- domains ----

#[derive(Debug, Serialize, ToSchema)]
pub struct DomainView {
    pub name: String,
    /// `local` (mailboxes behind Tern) or `relay` (Tern is its gateway or backup MX).
    pub kind: String,
    /// Transport syntax, e.g. `lmtp:[10.0.0.5]:24`; absent: by MX.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub route: Option<String>,
    /// `config`, `api` or `crd`.
    pub owner: String,
}

impl From<&Domain> for DomainView {
    fn from(domain: &Domain) -> Self {
        Self {
            name: domain.name.clone(),
            kind: domain.kind.as_str().to_owned(),
            route: domain.route.clone(),
            owner: domain.owner.as_str().to_owned(),
        }
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewDomain {
    pub name: String,
    /// `local` or `relay`.
    pub kind: String,
    pub route: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DomainChange {
    /// `local` or `relay`.
    pub kind: String,
    pub route: Option<String>,
}

fn domain(name: &str, kind: &str, route: Option<String>) -> Result<Domain, ApiError> {
    let name = Domain::normalise(name).map_err(|e| ApiError::invalid("name", e.reason))?;
    let kind: DomainKind = kind
        .parse()
        .map_err(|e: tern_common::control::ParseError| ApiError::invalid("kind", e.reason))?;
    let route = route.map(|r| r.trim().to_owned()).filter(|r| !r.is_empty());
    if let Some(spec) = &route {
        Route::for_domain(&name, spec).map_err(|e| ApiError::invalid("route", e.to_string()))?;
    }
    Ok(Domain {
        name,
        kind,
        route,
        owner: Owner::Api,
    })
}

#[utoipa::path(get, path = "/v1/domains", tag = "control plane",
    responses((status = 200, body = Vec<DomainView>), (status = 401, body = crate::error::Problem)),
    security(("bearer" = [])))]
pub async fn list_domains(
    caller: Caller,
    State(state): State<ApiState>,
) -> Result<axum::Json<Vec<DomainView>>, ApiError> {
    caller.require(Scope::Read)?;
    let domains = state.control.domains().await?;
    Ok(axum::Json(domains.iter().map(DomainView::from).collect()))
}

#[utoipa::path(get, path = "/v1/domains/{name}", tag = "control plane",
    params(("name" = String, Path)),
    responses((status = 200, body = DomainView), (status = 404, body = crate::error::Problem)),
    security(("bearer" = [])))]
pub async fn get_domain(
    caller: Caller,
    State(state): State<ApiState>,
    Path(name): Path<String>,
) -> Result<axum::Json<DomainView>, ApiError> {
    caller.require(Scope::Read)?;
    let name = Domain::normalise(&name).map_err(|e| ApiError::invalid("name", e.reason))?;
    let domains = state.control.domains().await?;
    let found = domains
        .iter()
        .find(|d| d.name == name)
        .ok_or(ApiError::NotFound("domain"))?;
    Ok(axum::Json(found.into()))
}

#[utoipa::path(post, path = "/v1/domains", tag = "control plane", request_body = NewDomain,
    responses((status = 201, body = DomainView), (status = 409, body = crate::error::Problem),
              (status = 422, body = crate::error::Problem)),
    security(("bearer" = [])))]
pub async fn create_domain(
    caller: Caller,
    State(state): State<ApiState>,
    Json(body): Json<NewDomain>,
) -> Result<impl IntoResponse, ApiError> {
    caller.require(Scope::Write)?;
    let domain = domain(&body.name, &body.kind, body.route)?;
    if let Some(existing) = state
        .control
        .domains()
        .await?
        .into_iter()
        .find(|d| d.name == domain.name)
    {
        return Err(ApiError::Exists(existing.owner));
    }
    state.control.put_domain(Owner::Api, &domain).await?;
    audit(&caller, "create domain", &domain.name);
    Ok((StatusCode::CREATED, axum::Json(DomainView::from(&domain))))
}

#[utoipa::path(put, path = "/v1/domains/{name}", tag = "control plane", request_body = DomainChange,
    params(("name" = String, Path)),
    responses((status = 200, body = DomainView), (status = 409, body = crate::error::Problem),
              (status = 422, body = crate::error::Problem)),
    security(("bearer" = [])))]
pub async fn put_domain(
    caller: Caller,
    State(state): State<ApiState>,
    Path(name): Path<String>,
    Json(body): Json<DomainChange>,
) -> Result<axum::Json<DomainView>, ApiError> {
    caller.require(Scope::Write)?;
    let domain = domain(&name, &body.kind, body.route)?;
    state.control.put_domain(Owner::Api, &domain).await?;
    audit(&caller, "put domain", &domain.name);
    Ok(axum::Json(DomainView::from(&domain)))
}

#[utoipa::path(delete, path = "/v1/domains/{name}", tag = "control plane",
    params(("name" = String, Path)),
    responses((status = 204), (status = 404, body = crate::error::Problem),
              (status = 409, body = crate::error::Problem)),
    security(("bearer" = [])))]
pub async fn delete_domain(
    caller: Caller,
    State(state): State<ApiState>,
    Path(name): Path<String>,
) -> Result<StatusCode, ApiError> {
    caller.require(Scope::Write)?;
    state
        .control
        .delete_domain(Owner::Api, &name)
        .await
        .map_err(not_found("domain"))?;
    audit(&caller, "delete domain", &name);
    Ok(StatusCode::NO_CONTENT)
}

// ---- trusted networks ----

#[derive(Debug, Serialize, ToSchema)]
pub struct NetworkView {
    pub id: i64,
    /// CIDR, e.g. `10.0.0.0/8`.
    pub network: String,
    pub description: String,
    pub owner: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewNetwork {
    /// A CIDR network or a single address.
    pub network: String,
    #[serde(default)]
    pub description: String,
}

#[utoipa::path(get, path = "/v1/networks", tag = "control plane",
    responses((status = 200, body = Vec<NetworkView>)), security(("bearer" = [])))]
pub async fn list_networks(
    caller: Caller,
    State(state): State<ApiState>,
) -> Result<axum::Json<Vec<NetworkView>>, ApiError> {
    caller.require(Scope::Read)?;
    let networks = state.control.networks().await?;
    Ok(axum::Json(
        networks
            .into_iter()
            .map(|n| NetworkView {
                id: n.id,
                network: n.network.to_string(),
                description: n.description,
                owner: n.owner.as_str().to_owned(),
            })
            .collect(),
    ))
}

#[utoipa::path(post, path = "/v1/networks", tag = "control plane", request_body = NewNetwork,
    responses((status = 201, body = NetworkView), (status = 409, body = crate::error::Problem),
              (status = 422, body = crate::error::Problem)),
    security(("bearer" = [])))]
pub async fn create_network(
    caller: Caller,
    State(state): State<ApiState>,
    Json(body): Json<NewNetwork>,
) -> Result<impl IntoResponse, ApiError> {
    caller.require(Scope::Write)?;
    let text = body.network.trim();
    let network = text
        .parse::<ipnet::IpNet>()
        .or_else(|_| text.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
        .map_err(|_| ApiError::invalid("network", format!("'{text}' is not a CIDR network")))?;
    let added = state
        .control
        .add_network(Owner::Api, network, body.description.trim())
        .await?;
    audit(&caller, "add network", &added.network.to_string());
    Ok((
        StatusCode::CREATED,
        axum::Json(NetworkView {
            id: added.id,
            network: added.network.to_string(),
            description: added.description,
            owner: added.owner.as_str().to_owned(),
        }),
    ))
}

#[utoipa::path(delete, path = "/v1/networks/{id}", tag = "control plane",
    params(("id" = i64, Path)),
    responses((status = 204), (status = 404, body = crate::error::Problem),
              (status = 409, body = crate::error::Problem)),
    security(("bearer" = [])))]
pub async fn delete_network(
    caller: Caller,
    State(state): State<ApiState>,
    Path(id): Path<i64>,
) -> Result<StatusCode, ApiError> {
    caller.require(Scope::Write)?;
    state
        .control
        .delete_network(Owner::Api, id)
        .await
        .map_err(not_found("network"))?;
    audit(&caller, "delete network", &id.to_string());
    Ok(StatusCode::NO_CONTENT)
}

// ---- blocklist ----

#[derive(Debug, Serialize, ToSchema)]
pub struct BlockView {
    pub id: i64,
    /// `ip`, `cidr`, `helo`, `sender`, `sender_domain`, `recipient` or `recipient_domain`.
    pub kind: String,
    pub value: String,
    /// `reject`, `tempfail` or `allow`.
    pub action: String,
    pub reason: String,
    #[serde(
        with = "time::serde::rfc3339::option",
        skip_serializing_if = "Option::is_none"
    )]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub expires_at: Option<OffsetDateTime>,
    pub owner: String,
}

impl From<BlockEntry> for BlockView {
    fn from(entry: BlockEntry) -> Self {
        Self {
            id: entry.id,
            kind: entry.kind.as_str().to_owned(),
            value: entry.value,
            action: entry.action.as_str().to_owned(),
            reason: entry.reason,
            expires_at: entry.expires_at,
            owner: entry.owner.as_str().to_owned(),
        }
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewBlock {
    pub kind: String,
    pub value: String,
    pub action: String,
    #[serde(default)]
    pub reason: String,
    /// RFC 3339; absent: never expires.
    #[serde(default, with = "time::serde::rfc3339::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub expires_at: Option<OffsetDateTime>,
}

#[utoipa::path(get, path = "/v1/blocklist", tag = "control plane",
    responses((status = 200, body = Vec<BlockView>)), security(("bearer" = [])))]
pub async fn list_blocklist(
    caller: Caller,
    State(state): State<ApiState>,
) -> Result<axum::Json<Vec<BlockView>>, ApiError> {
    caller.require(Scope::Read)?;
    let entries = state.control.blocklist().await?;
    Ok(axum::Json(
        entries.into_iter().map(BlockView::from).collect(),
    ))
}

#[utoipa::path(post, path = "/v1/blocklist", tag = "control plane", request_body = NewBlock,
    responses((status = 201, body = BlockView), (status = 409, body = crate::error::Problem),
              (status = 422, body = crate::error::Problem)),
    security(("bearer" = [])))]
pub async fn create_block(
    caller: Caller,
    State(state): State<ApiState>,
    Json(body): Json<NewBlock>,
) -> Result<impl IntoResponse, ApiError> {
    caller.require(Scope::Write)?;
    let invalid = |e: tern_common::control::ParseError| ApiError::invalid(e.field, e.reason);
    let kind: BlockKind = body.kind.parse().map_err(invalid)?;
    let action: BlockAction = body.action.parse().map_err(invalid)?;
    if body
        .expires_at
        .is_some_and(|at| at <= OffsetDateTime::now_utc())
    {
        return Err(ApiError::invalid("expires_at", "must be in the future"));
    }
    let entry = NewBlockEntry::new(kind, &body.value, action, &body.reason, body.expires_at)
        .map_err(invalid)?;
    let added = state.control.add_block(Owner::Api, &entry).await?;
    audit(
        &caller,
        "add blocklist entry",
        &format!("{kind} {}", added.value),
    );
    Ok((StatusCode::CREATED, axum::Json(BlockView::from(added))))
}

#[utoipa::path(delete, path = "/v1/blocklist/{id}", tag = "control plane",
    params(("id" = i64, Path)),
    responses((status = 204), (status = 404, body = crate::error::Problem),
              (status = 409, body = crate::error::Problem)),
    security(("bearer" = [])))]
pub async fn delete_block(
    caller: Caller,
    State(state): State<ApiState>,
    Path(id): Path<i64>,
) -> Result<StatusCode, ApiError> {
    caller.require(Scope::Write)?;
    state
        .control
        .delete_block(Owner::Api, id)
        .await
        .map_err(not_found("blocklist entry"))?;
    audit(&caller, "delete blocklist entry", &id.to_string());
    Ok(StatusCode::NO_CONTENT)
}

// ---- suspensions ----

#[derive(Debug, Serialize, ToSchema)]
pub struct SuspensionView {
    pub domain: String,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub until: OffsetDateTime,
    pub reason: String,
    pub owner: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SuspensionChange {
    /// RFC 3339, in the future.
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub until: OffsetDateTime,
    #[serde(default)]
    pub reason: String,
}

#[utoipa::path(get, path = "/v1/suspensions", tag = "control plane",
    responses((status = 200, body = Vec<SuspensionView>)), security(("bearer" = [])))]
pub async fn list_suspensions(
    caller: Caller,
    State(state): State<ApiState>,
) -> Result<axum::Json<Vec<SuspensionView>>, ApiError> {
    caller.require(Scope::Read)?;
    let suspensions = state.control.suspensions().await?;
    Ok(axum::Json(
        suspensions
            .into_iter()
            .map(|s| SuspensionView {
                domain: s.domain,
                until: s.until,
                reason: s.reason,
                owner: s.owner.as_str().to_owned(),
            })
            .collect(),
    ))
}

#[utoipa::path(put, path = "/v1/suspensions/{domain}", tag = "control plane",
    request_body = SuspensionChange, params(("domain" = String, Path)),
    responses((status = 200, body = SuspensionView), (status = 409, body = crate::error::Problem),
              (status = 422, body = crate::error::Problem)),
    security(("bearer" = [])))]
pub async fn put_suspension(
    caller: Caller,
    State(state): State<ApiState>,
    Path(domain): Path<String>,
    Json(body): Json<SuspensionChange>,
) -> Result<axum::Json<SuspensionView>, ApiError> {
    caller.require(Scope::Write)?;
    let domain = Domain::normalise(&domain).map_err(|e| ApiError::invalid("domain", e.reason))?;
    if body.until <= OffsetDateTime::now_utc() {
        return Err(ApiError::invalid("until", "must be in the future"));
    }
    let suspension = Suspension {
        domain,
        until: body.until,
        reason: body.reason.trim().to_owned(),
        owner: Owner::Api,
    };
    state
        .control
        .put_suspension(Owner::Api, &suspension)
        .await?;
    audit(&caller, "suspend", &suspension.domain);
    Ok(axum::Json(SuspensionView {
        domain: suspension.domain,
        until: suspension.until,
        reason: suspension.reason,
        owner: Owner::Api.as_str().to_owned(),
    }))
}

#[utoipa::path(delete, path = "/v1/suspensions/{domain}", tag = "control plane",
    params(("domain" = String, Path)),
    responses((status = 204), (status = 404, body = crate::error::Problem),
              (status = 409, body = crate::error::Problem)),
    security(("bearer" = [])))]
pub async fn delete_suspension(
    caller: Caller,
    State(state): State<ApiState>,
    Path(domain): Path<String>,
) -> Result<StatusCode, ApiError> {
    caller.require(Scope::Write)?;
    state
        .control
        .delete_suspension(Owner::Api, &domain)
        .await
        .map_err(not_found("suspension"))?;
    audit(&caller, "lift suspension", &domain);
    Ok(StatusCode::NO_CONTENT)
}
