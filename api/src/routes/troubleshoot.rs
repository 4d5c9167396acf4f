//! `/v1/troubleshoot/…`: questions about what the cluster would do, answered by the ingress pods
//! themselves over NATS, so that the answer is what a pod with its own settings and its live
//! policy decides.

use std::time::Duration;

use axum::extract::State;
use tern_common::troubleshoot::{PolicyAnswer, PolicyQuestion, PolicyReply};
use utoipa::ToSchema;

use crate::auth::{Caller, Scope};
use crate::error::ApiError;
use crate::extract::Json;
use crate::state::ApiState;

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
