//! [`ApiError`], and the one place each becomes an RFC 9457 `application/problem+json` response.
//! Internal errors are logged with a correlation id that the problem carries; no SQL text or
//! stack reaches the client.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use tern_common::control::{ControlError, Owner, ParseError};
use tern_common::queue::QueueError;
use utoipa::ToSchema;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("a bearer token is required")]
    Unauthenticated,
    #[error("the token lacks the {0} scope")]
    Forbidden(&'static str),
    #[error("{0} not found")]
    NotFound(&'static str),
    /// The row belongs to another writer (`config`, `crd`) and is read-only here.
    #[error("owned by {0}; read-only here")]
    OwnedBy(Owner),
    #[error("already exists (owned by {0})")]
    Exists(Owner),
    /// A field of the request is unusable.
    #[error("{field}: {reason}")]
    Invalid { field: String, reason: String },
    /// The request as a whole is unusable (bad JSON, bad cursor, bad query).
    #[error("{0}")]
    BadRequest(String),
    #[error("request body too large")]
    TooLarge,
    #[error("the request body must be application/json")]
    UnsupportedMediaType,
    #[error("the database is unavailable")]
    Unavailable,
    #[error("internal error")]
    Internal(String),
}

/// An RFC 9457 problem document.
#[derive(Debug, Serialize, ToSchema)]
pub struct Problem {
    /// A URI naming the kind of problem.
    #[serde(rename = "type")]
    pub kind: String,
    pub title: String,
    pub status: u16,
    pub detail: String,
    /// The request field at fault (422).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// Who owns the row that could not be changed (409).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
    /// Quote it when reporting an internal error: the log line carries it too.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub correlation_id: Option<String>,
}

impl ApiError {
    pub fn invalid(field: &str, reason: impl Into<String>) -> Self {
        ApiError::Invalid {
            field: field.to_owned(),
            reason: reason.into(),
        }
    }

    fn status(&self) -> StatusCode {
        match self {
            ApiError::Unauthenticated => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::OwnedBy(_) | ApiError::Exists(_) => StatusCode::CONFLICT,
            ApiError::Invalid { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn slug(&self) -> &'static str {
        match self {
            ApiError::Unauthenticated => "unauthenticated",
            ApiError::Forbidden(_) => "forbidden",
            ApiError::NotFound(_) => "not-found",
            ApiError::OwnedBy(_) => "read-only",
            ApiError::Exists(_) => "exists",
            ApiError::Invalid { .. } => "invalid-field",
            ApiError::BadRequest(_) => "bad-request",
            ApiError::TooLarge => "too-large",
            ApiError::UnsupportedMediaType => "unsupported-media-type",
            ApiError::Unavailable => "unavailable",
            ApiError::Internal(_) => "internal",
        }
    }
}

impl From<sqlx::Error> for ApiError {
    fn from(error: sqlx::Error) -> Self {
        match error {
            sqlx::Error::PoolTimedOut | sqlx::Error::Io(_) | sqlx::Error::PoolClosed => {
                tracing::warn!(%error, "database unavailable");
                ApiError::Unavailable
            }
            other => ApiError::Internal(other.to_string()),
        }
    }
}

impl From<QueueError> for ApiError {
    fn from(error: QueueError) -> Self {
        match error {
            QueueError::Timeout | QueueError::Unavailable(_) => {
                tracing::warn!(%error, "queue database unavailable");
                ApiError::Unavailable
            }
            QueueError::Rejected(error) => ApiError::Internal(error.to_string()),
        }
    }
}

impl From<ControlError> for ApiError {
    fn from(error: ControlError) -> Self {
        match error {
            ControlError::NotFound => ApiError::NotFound("object"),
            ControlError::OwnedBy(owner) => ApiError::OwnedBy(owner),
            ControlError::Exists(owner) => ApiError::Exists(owner),
            ControlError::Invalid(ParseError { field, reason }) => ApiError::invalid(field, reason),
            ControlError::Database(error) => error.into(),
            ControlError::Crypto(detail) => ApiError::Internal(detail),
        }
    }
}

/// A control-plane error, with `NotFound` naming `what` was not found.
pub(crate) fn not_found(what: &'static str) -> impl Fn(ControlError) -> ApiError {
    move |error| match error {
        ControlError::NotFound => ApiError::NotFound(what),
        other => other.into(),
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        let correlation_id = match &self {
            ApiError::Internal(detail) => {
                let id = uuid::Uuid::new_v4().simple().to_string();
                tracing::error!(correlation_id = %id, error = %detail, "internal error in the admin API");
                Some(id)
            }
            _ => None,
        };
        let (field, owner) = match &self {
            ApiError::Invalid { field, .. } => (Some(field.clone()), None),
            ApiError::OwnedBy(owner) | ApiError::Exists(owner) => {
                (None, Some(owner.as_str().to_owned()))
            }
            _ => (None, None),
        };
        let problem = Problem {
            kind: format!("urn:tern:problem:{}", self.slug()),
            title: status.canonical_reason().unwrap_or("Error").to_owned(),
            status: status.as_u16(),
            detail: self.to_string(),
            field,
            owner,
            correlation_id,
        };
        let body = serde_json::to_vec(&problem).unwrap_or_default();
        let mut response = (status, body).into_response();
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        if matches!(self, ApiError::Unauthenticated) {
            headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        response
    }
}
