//! `/v1/queue…` and `/v1/messages…`: what is queued, where a message is, and the actions on it.

use std::collections::BTreeMap;

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use serde::{Deserialize, Serialize};
use tern_common::queue::{
    AttemptRow, JobFilter, JobRow, JobStatus, MessageFilter, MessageRow, QueueAction, QueueId,
};
use time::OffsetDateTime;
use utoipa::{IntoParams, ToSchema};

use crate::auth::{Caller, Scope};
use crate::error::ApiError;
use crate::extract::{Json, Path, Query};
use crate::page::{Page, PageParams};
use crate::state::ApiState;

type Time = OffsetDateTime;

#[derive(Debug, Serialize, ToSchema)]
pub struct Summary {
    /// Jobs by status, every status listed.
    pub by_status: BTreeMap<String, i64>,
    /// Destinations with unfinished jobs, most first.
    pub destinations: Vec<DestinationView>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DestinationView {
    pub domain: String,
    pub queued: i64,
    pub deferred: i64,
    pub leased: i64,
    pub held: i64,
    /// How long its oldest due job has waited; absent when none is due.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub oldest_due_seconds: Option<f64>,
}

#[utoipa::path(get, path = "/v1/queue/summary", tag = "queue",
    responses((status = 200, body = Summary)), security(("bearer" = [])))]
pub async fn summary(
    caller: Caller,
    State(state): State<ApiState>,
) -> Result<axum::Json<Summary>, ApiError> {
    caller.require(Scope::Read)?;
    let summary = state.inspector.summary().await?;
    Ok(axum::Json(Summary {
        by_status: summary
            .by_status
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v))
            .collect(),
        destinations: summary
            .destinations
            .into_iter()
            .map(|d| DestinationView {
                domain: d.domain,
                queued: d.queued,
                deferred: d.deferred,
                leased: d.leased,
                held: d.held,
                oldest_due_seconds: d.oldest_due_seconds,
            })
            .collect(),
    }))
}

/// Declares a struct with the filters of `GET /v1/queue` and the bulk actions, plus `$extra`.
/// (serde's `flatten` would share them, but it cannot be combined with `deny_unknown_fields`
/// and reads numbers from a query string as strings.)
macro_rules! with_queue_filter {
    ($(#[$meta:meta])* $name:ident { $($(#[$fmeta:meta])* $field:ident: $ty:ty,)* }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Default, Deserialize, IntoParams, ToSchema)]
        #[serde(deny_unknown_fields)]
        #[into_params(parameter_in = Query)]
        pub struct $name {
            /// `queued`, `leased`, `deferred`, `held`, `delivered`, `bounced` or `expired`.
            pub status: Option<String>,
            /// Destination domain.
            pub domain: Option<String>,
            /// Envelope sender; empty for `<>`.
            pub sender: Option<String>,
            pub recipient: Option<String>,
            /// RFC 3339.
            #[serde(default, with = "time::serde::rfc3339::option")]
            #[param(value_type = Option<String>, format = DateTime)]
            #[schema(value_type = Option<String>, format = DateTime)]
            pub received_after: Option<Time>,
            /// RFC 3339.
            #[serde(default, with = "time::serde::rfc3339::option")]
            #[param(value_type = Option<String>, format = DateTime)]
            #[schema(value_type = Option<String>, format = DateTime)]
            pub received_before: Option<Time>,
            $($(#[$fmeta])* pub $field: $ty,)*
        }

        impl $name {
            fn to_filter(&self) -> Result<JobFilter, ApiError> {
                let status = self
                    .status
                    .as_deref()
                    .map(|s| s.parse::<JobStatus>())
                    .transpose()
                    .map_err(|reason| ApiError::invalid("status", reason))?;
                Ok(JobFilter {
                    status,
                    domain: self
                        .domain
                        .as_deref()
                        .map(|d| d.trim().trim_end_matches('.').to_ascii_lowercase()),
                    sender: self.sender.clone(),
                    recipient: self.recipient.clone(),
                    received_after: self.received_after,
                    received_before: self.received_before,
                    message: None,
                })
            }
        }
    };
}

with_queue_filter!(
    /// The filters of `GET /v1/queue`, and its page.
    QueueListParams {
        /// Rows per page, 1 to 500 (default 50).
        limit: Option<u32>,
        /// `next_cursor` of the previous page.
        cursor: Option<String>,
    }
);

with_queue_filter!(
    /// The body of a bulk action: the filters of `GET /v1/queue`, and for a bounce its reason.
    BulkAction {
        /// Why (bounce only): it goes into the report to the sender.
        reason: Option<String>,
    }
);

#[derive(Debug, Serialize, ToSchema)]
pub struct JobView {
    pub id: i64,
    pub queue_id: String,
    pub recipient: String,
    pub domain: String,
    pub status: String,
    pub attempts: i32,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub next_attempt_at: Time,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_status: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_reply: Option<String>,
    pub sender: String,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub received_at: Time,
}

impl From<JobRow> for JobView {
    fn from(job: JobRow) -> Self {
        Self {
            id: job.id,
            queue_id: job.message_id.to_string(),
            recipient: job.recipient,
            domain: job.domain,
            status: job.status.0.as_str().to_owned(),
            attempts: job.attempts,
            next_attempt_at: job.next_attempt_at,
            last_status: job.last_status,
            last_reply: job.last_reply,
            sender: job.mail_from,
            received_at: job.received_at,
        }
    }
}

#[utoipa::path(get, path = "/v1/queue", tag = "queue", params(QueueListParams),
    responses((status = 200, body = Page<JobView>), (status = 400, body = crate::error::Problem),
              (status = 422, body = crate::error::Problem)),
    security(("bearer" = [])))]
pub async fn list(
    caller: Caller,
    State(state): State<ApiState>,
    Query(params): Query<QueueListParams>,
) -> Result<axum::Json<Page<JobView>>, ApiError> {
    caller.require(Scope::Read)?;
    let filter = params.to_filter()?;
    let page = PageParams {
        limit: params.limit,
        cursor: params.cursor.clone(),
    };
    let limit = page.limit()?;
    let after = match page.after("job")? {
        None => 0,
        Some(key) => key
            .parse()
            .map_err(|_| ApiError::BadRequest("cursor: not a cursor of this listing".into()))?,
    };
    let rows = state.inspector.jobs(&filter, after, limit + 1).await?;
    let rows: Vec<JobView> = rows.into_iter().map(JobView::from).collect();
    Ok(axum::Json(Page::new(
        rows,
        limit,
        |j| j.id.to_string(),
        "job",
    )))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BounceReason {
    /// Goes into the report to the sender.
    pub reason: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Changed {
    /// How many recipient jobs the action changed.
    pub changed: u64,
}

fn action(name: &str, reason: Option<String>) -> Result<QueueAction, ApiError> {
    Ok(match name {
        "retry" => QueueAction::Retry,
        "hold" => QueueAction::Hold,
        "release" => QueueAction::Release,
        "bounce" => QueueAction::Bounce {
            reason: reason
                .map(|r| r.trim().to_owned())
                .filter(|r| !r.is_empty())
                .unwrap_or_else(|| "no reason given".to_owned()),
        },
        "delete" => QueueAction::Delete,
        _ => return Err(ApiError::NotFound("action")),
    })
}

#[utoipa::path(post, path = "/v1/queue/{action}", tag = "queue", request_body = BulkAction,
    params(("action" = String, Path, description = "retry, hold, release, bounce or delete")),
    responses((status = 200, body = Changed), (status = 404, body = crate::error::Problem),
              (status = 422, body = crate::error::Problem)),
    security(("bearer" = [])))]
pub async fn bulk(
    caller: Caller,
    State(state): State<ApiState>,
    Path(name): Path<String>,
    Json(body): Json<BulkAction>,
) -> Result<axum::Json<Changed>, ApiError> {
    caller.require(Scope::Write)?;
    let filter = body.to_filter()?;
    let action = action(&name, body.reason)?;
    let changed = state.actions.apply(&action, &filter).await?;
    tracing::info!(token = %caller.name, action = action.label(), ?filter, changed, "admin API queue action");
    Ok(axum::Json(Changed { changed }))
}

fn queue_id(text: &str) -> Result<QueueId, ApiError> {
    text.parse().map_err(|_| ApiError::NotFound("message"))
}

#[utoipa::path(post, path = "/v1/messages/{queue_id}/{action}", tag = "queue",
    request_body(content = BounceReason, description = "for a bounce: its reason"),
    params(("queue_id" = String, Path), ("action" = String, Path, description = "retry, hold, release or bounce")),
    responses((status = 200, body = Changed), (status = 404, body = crate::error::Problem)),
    security(("bearer" = [])))]
pub async fn message_action(
    caller: Caller,
    State(state): State<ApiState>,
    Path((id, name)): Path<(String, String)>,
    body: axum::body::Bytes,
) -> Result<axum::Json<Changed>, ApiError> {
    caller.require(Scope::Write)?;
    if name == "delete" {
        return Err(ApiError::NotFound("action"));
    }
    let id = queue_id(&id)?;
    // The body is optional: an action without one needs no JSON.
    let reason = if body.iter().all(u8::is_ascii_whitespace) {
        None
    } else {
        serde_json::from_slice::<BounceReason>(&body)
            .map_err(|error| ApiError::invalid("body", error.to_string()))?
            .reason
    };
    let action = action(&name, reason)?;
    act_on_message(&caller, &state, id, action).await
}

#[utoipa::path(delete, path = "/v1/messages/{queue_id}", tag = "queue",
    params(("queue_id" = String, Path)),
    responses((status = 200, body = Changed), (status = 404, body = crate::error::Problem)),
    security(("bearer" = [])))]
pub async fn delete_message(
    caller: Caller,
    State(state): State<ApiState>,
    Path(id): Path<String>,
) -> Result<axum::Json<Changed>, ApiError> {
    caller.require(Scope::Write)?;
    let id = queue_id(&id)?;
    act_on_message(&caller, &state, id, QueueAction::Delete).await
}

async fn act_on_message(
    caller: &Caller,
    state: &ApiState,
    id: QueueId,
    action: QueueAction,
) -> Result<axum::Json<Changed>, ApiError> {
    if state.inspector.raw_size(id).await?.is_none() {
        return Err(ApiError::NotFound("message"));
    }
    let filter = JobFilter {
        message: Some(id),
        ..JobFilter::default()
    };
    let changed = state.actions.apply(&action, &filter).await?;
    tracing::info!(token = %caller.name, action = action.label(), queue_id = %id, changed, "admin API message action");
    Ok(axum::Json(Changed { changed }))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct MessageSearch {
    /// The `Message-ID` header field, angle brackets included.
    pub message_id: Option<String>,
    pub sender: Option<String>,
    pub recipient: Option<String>,
    #[serde(default, with = "time::serde::rfc3339::option")]
    #[param(value_type = Option<String>, format = DateTime)]
    pub received_after: Option<Time>,
    #[serde(default, with = "time::serde::rfc3339::option")]
    #[param(value_type = Option<String>, format = DateTime)]
    pub received_before: Option<Time>,
    pub limit: Option<u32>,
    pub cursor: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct MessageSummaryView {
    pub queue_id: String,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub received_at: Time,
    pub sender: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message_id: Option<String>,
    pub size: i64,
    pub recipients: i64,
}

impl From<MessageRow> for MessageSummaryView {
    fn from(row: MessageRow) -> Self {
        Self {
            queue_id: row.id.to_string(),
            received_at: row.received_at,
            sender: row.mail_from,
            message_id: row.header_message_id,
            size: row.size,
            recipients: row.recipients,
        }
    }
}

#[utoipa::path(get, path = "/v1/messages", tag = "queue", params(MessageSearch),
    responses((status = 200, body = Page<MessageSummaryView>), (status = 400, body = crate::error::Problem)),
    security(("bearer" = [])))]
pub async fn search(
    caller: Caller,
    State(state): State<ApiState>,
    Query(params): Query<MessageSearch>,
) -> Result<axum::Json<Page<MessageSummaryView>>, ApiError> {
    caller.require(Scope::Read)?;
    let page = PageParams {
        limit: params.limit,
        cursor: params.cursor.clone(),
    };
    let limit = page.limit()?;
    let after = match page.after("message")? {
        None => QueueId::MIN,
        Some(key) => key
            .parse()
            .map_err(|_| ApiError::BadRequest("cursor: not a cursor of this listing".into()))?,
    };
    let filter = MessageFilter {
        header_message_id: params.message_id,
        sender: params.sender,
        recipient: params.recipient,
        received_after: params.received_after,
        received_before: params.received_before,
    };
    let rows = state.inspector.messages(&filter, after, limit + 1).await?;
    let rows: Vec<MessageSummaryView> = rows.into_iter().map(Into::into).collect();
    Ok(axum::Json(Page::new(
        rows,
        limit,
        |m| m.queue_id.clone(),
        "message",
    )))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AttemptView {
    pub job_id: i64,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub attempted_at: Time,
    pub worker: String,
    pub outcome: String,
    pub status: String,
    pub reply: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mx_host: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub remote_ip: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls_version: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls_cipher: Option<String>,
}

impl From<AttemptRow> for AttemptView {
    fn from(row: AttemptRow) -> Self {
        Self {
            job_id: row.job_id,
            attempted_at: row.attempted_at,
            worker: row.worker,
            outcome: row.outcome,
            status: row.status,
            reply: row.reply,
            mx_host: row.mx_host,
            remote_ip: row.remote_ip.map(|ip| ip.addr().to_string()),
            tls_version: row.tls_version,
            tls_cipher: row.tls_cipher,
        }
    }
}

/// "Where is my message": everything the queue knows of it.
#[derive(Debug, Serialize, ToSchema)]
pub struct MessageView {
    pub queue_id: String,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub received_at: Time,
    pub sender: String,
    pub client_ip: String,
    pub helo: String,
    /// The `with` keyword of our `Received:` field (ESMTPSA: TLS and AUTH).
    pub protocol: String,
    pub body_type: String,
    pub smtputf8: bool,
    pub size: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message_id: Option<String>,
    /// Header fields as stored, ours first: `[name, value]` pairs.
    pub headers: Vec<[String; 2]>,
    pub recipients: Vec<JobView>,
    pub attempts: Vec<AttemptView>,
    /// Queue ids of the delivery status notifications it caused.
    pub notifications: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub trace_id: Option<String>,
    /// `TERN_API_TRACE_URL` with the trace id filled in.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub trace_url: Option<String>,
}

#[utoipa::path(get, path = "/v1/messages/{queue_id}", tag = "queue",
    params(("queue_id" = String, Path)),
    responses((status = 200, body = MessageView), (status = 404, body = crate::error::Problem)),
    security(("bearer" = [])))]
pub async fn detail(
    caller: Caller,
    State(state): State<ApiState>,
    Path(id): Path<String>,
) -> Result<axum::Json<MessageView>, ApiError> {
    caller.require(Scope::Read)?;
    let id = queue_id(&id)?;
    let message = state
        .inspector
        .message(id)
        .await?
        .ok_or(ApiError::NotFound("message"))?;
    let trace_url = match (&state.trace_url, &message.trace_id) {
        (Some(template), Some(trace)) => Some(template.replace("{trace_id}", trace)),
        _ => None,
    };
    Ok(axum::Json(MessageView {
        queue_id: message.id.to_string(),
        received_at: message.received_at,
        sender: message.mail_from,
        client_ip: message.client_ip.to_string(),
        helo: message.helo,
        protocol: message.protocol,
        body_type: message.body_type,
        smtputf8: message.smtputf8,
        size: message.size,
        message_id: message.header_message_id,
        headers: message
            .headers
            .into_iter()
            .map(|(name, value)| [name, value])
            .collect(),
        recipients: message.recipients.into_iter().map(JobView::from).collect(),
        attempts: message
            .attempts
            .into_iter()
            .map(AttemptView::from)
            .collect(),
        notifications: message
            .notifications
            .iter()
            .map(|n| n.to_string())
            .collect(),
        trace_id: message.trace_id,
        trace_url,
    }))
}

#[utoipa::path(get, path = "/v1/messages/{queue_id}/raw", tag = "queue",
    params(("queue_id" = String, Path)),
    responses((status = 200, content_type = "message/rfc822", body = String),
              (status = 403, body = crate::error::Problem), (status = 404, body = crate::error::Problem)),
    security(("bearer" = [])))]
pub async fn raw(
    caller: Caller,
    State(state): State<ApiState>,
    Path(id): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    caller.require(Scope::Admin)?;
    let id = queue_id(&id)?;
    let body = state
        .inspector
        .raw(id)
        .await?
        .ok_or(ApiError::NotFound("message"))?;
    tracing::info!(token = %caller.name, queue_id = %id, "admin API read a stored message");
    Ok((
        StatusCode::OK,
        [(header::CONTENT_TYPE, "message/rfc822")],
        body,
    ))
}
