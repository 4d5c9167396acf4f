//! `/v1/troubleshoot/…`: questions about what the cluster would do, answered by the ingress pods
//! themselves over NATS, so that the answer is what a pod with its own settings and its live
//! policy decides.

use std::convert::Infallible;
use std::net::IpAddr;
use std::time::Duration;

use axum::extract::State;
use axum::response::sse::{Event, KeepAlive, Sse};
use futures::{Stream, StreamExt as _};
use ipnet::IpNet;
use serde::Deserialize;
use tern_common::troubleshoot::{
    PolicyAnswer, PolicyQuestion, PolicyReply, SmtpWatch, TranscriptLine,
};
use tokio_util::sync::CancellationToken;
use utoipa::{IntoParams, ToSchema};

use crate::auth::{Caller, Scope};
use crate::error::ApiError;
use crate::extract::{Json, Query};
use crate::state::ApiState;

/// How often a watch is renewed while its stream is open, and how long each renewal lasts: a
/// pod stops transcribing within `WATCH_LASTS` of the last client going away.
const WATCH_RENEW: Duration = Duration::from_secs(5);
const WATCH_LASTS: u32 = 15;

/// How long a pod may take: the checks' own DNS deadlines are 10 s by default.
const ANSWER_WAIT: Duration = Duration::from_secs(20);

/// The question (for the OpenAPI document; the body is [`PolicyQuestion`]).
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct PolicyQuestionSchema {
    /// The client's address.
    client: String,
    /// Its HELO name.
    helo: String,
    /// The envelope sender; `""` for `<>`.
    sender: String,
    recipients: Vec<String>,
    /// The message, header and body, for DKIM, ARC and DMARC.
    message: Option<String>,
    /// The SMTP AUTH login the client would use.
    login: Option<String>,
    /// The listener: `smtp` (the default), `submission` or `submissions`.
    listener: Option<String>,
}

/// What every check would decide and why, without receiving anything or changing any state:
/// the rate limits are described but not counted, greylisting is read but not recorded.
#[utoipa::path(post, path = "/v1/troubleshoot/policy", tag = "troubleshooting",
    request_body = PolicyQuestionSchema,
    responses((status = 200, body = Object, description = "pod, revision, outcome (accept, reject, defer) and every step: stage, check, result, reply, detail"),
              (status = 422, body = crate::error::Problem),
              (status = 503, body = crate::error::Problem, description = "no ingress pod answered")),
    security(("bearer" = [])))]
pub async fn policy(
    caller: Caller,
    State(state): State<ApiState>,
    Json(question): Json<PolicyQuestion>,
) -> Result<axum::Json<PolicyAnswer>, ApiError> {
    caller.require(Scope::Read)?;
    let Some(bus) = &state.bus else {
        return Err(ApiError::Unavailable);
    };
    match bus.ask_policy(&question, ANSWER_WAIT).await {
        Ok(PolicyReply::Answer(answer)) => Ok(axum::Json(answer)),
        Ok(PolicyReply::Refused(refusal)) => Err(ApiError::invalid(&refusal.field, refusal.reason)),
        Err(error) => {
            tracing::warn!(%error, "policy troubleshooting question not answered");
            Err(ApiError::Unavailable)
        }
    }
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct SmtpWatchQuery {
    /// The client network to follow: an address or a CIDR (`192.0.2.0/24`).
    pub client: String,
}

/// The live transcript of every new session from a client network, on every ingress pod, as
/// server-sent events (`event: line`, data: pod, session, client, direction, text). AUTH
/// exchanges and message content are withheld by the pods. Open as long as the client reads.
#[utoipa::path(get, path = "/v1/troubleshoot/smtp", tag = "troubleshooting",
    params(SmtpWatchQuery),
    responses((status = 200, content_type = "text/event-stream", description = "transcript lines, one event each"),
              (status = 400, body = crate::error::Problem),
              (status = 422, body = crate::error::Problem),
              (status = 503, body = crate::error::Problem, description = "no NATS to reach the pods")),
    security(("bearer" = [])))]
pub async fn smtp(
    caller: Caller,
    State(state): State<ApiState>,
    Query(query): Query<SmtpWatchQuery>,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    caller.require(Scope::Admin)?;
    let network = parse_network(&query.client)?;
    let Some(bus) = state.bus.clone() else {
        return Err(ApiError::Unavailable);
    };
    let id = uuid::Uuid::new_v4().simple().to_string();
    let lines = bus.transcript_lines(&id).await.map_err(|error| {
        tracing::warn!(%error, "SMTP transcript not subscribed");
        ApiError::Unavailable
    })?;
    tracing::info!(token = %caller.name, %network, watch = %id, "SMTP transcript opened");
    // Renew the watch until the stream is dropped (the client went away).
    let stop = CancellationToken::new();
    let watch = SmtpWatch {
        id,
        network,
        seconds: WATCH_LASTS,
    };
    let renewing = stop.clone();
    tokio::spawn(async move {
        loop {
            if let Err(error) = bus.publish_smtp_watch(&watch).await {
                tracing::warn!(%error, "SMTP watch not renewed");
            }
            tokio::select! {
                () = renewing.cancelled() => return,
                () = tokio::time::sleep(WATCH_RENEW) => {}
            }
        }
    });
    let guard = stop.drop_guard();
    let events = lines.filter_map(move |message| {
        let _renewing_while_open = &guard;
        let event = serde_json::from_slice::<TranscriptLine>(&message.payload)
            .ok()
            .and_then(|line| Event::default().event("line").json_data(line).ok())
            .map(Ok);
        std::future::ready(event)
    });
    Ok(Sse::new(events).keep_alive(KeepAlive::default()))
}

/// An address (a network of one) or a CIDR; 422 naming `client` otherwise.
fn parse_network(text: &str) -> Result<IpNet, ApiError> {
    let text = text.trim();
    text.parse::<IpNet>()
        .or_else(|_| text.parse::<IpAddr>().map(IpNet::from))
        .map_err(|_| {
            ApiError::invalid(
                "client",
                format!("'{text}' is neither an address nor a CIDR network"),
            )
        })
}
