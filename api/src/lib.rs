//! Tern's admin REST API (`tern api`): the live control plane and the queue over HTTP, JSON in
//! and out, errors as RFC 9457 problem documents, bearer tokens with scopes.
//!
//! - `routes`: every `/v1` resource and the OpenAPI document ([`openapi`]).
//! - [`config`]: `tern api` settings ([`config::ApiArgs`] → [`config::ApiConfig`]).
//! - `auth`: the [`auth::Caller`] extractor.
//! - `tokens`: tokens, scopes and the token store.
//! - `error`: [`ApiError`] and its one mapping to a problem response.
//! - `extract`: JSON, query and path extractors whose rejections are problems too.
//! - `page`: opaque cursors over keyset pages.
//! - `state`: [`ApiState`], the handles the handlers share.

pub mod auth;
pub mod config;
mod error;
mod extract;
mod page;
mod routes;
mod state;
mod tokens;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use tower_http::limit::RequestBodyLimitLayer;

pub use error::{ApiError, Problem};
pub use routes::{ApiDoc, MAX_BODY};
pub use state::ApiState;

/// The API's router, without `/healthz`, `/readyz` and `/metrics` (the binary adds them).
pub fn app(state: ApiState) -> Router {
    routes::v1()
        .layer(DefaultBodyLimit::disable())
        .layer(RequestBodyLimitLayer::new(MAX_BODY))
        .with_state(state)
}

/// The OpenAPI document, as served at `/openapi.json` and committed as `docs/openapi.json`.
pub fn openapi() -> String {
    use utoipa::OpenApi as _;
    ApiDoc::openapi()
        .to_pretty_json()
        .unwrap_or_else(|error| format!("{{\"error\": \"{error}\"}}"))
}
