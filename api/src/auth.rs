//! The [`Caller`] extractor: the bearer token of a request, checked against the token store.
//! Tokens and scopes themselves are [`crate::tokens`]'.

use axum::extract::FromRequestParts;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;

use crate::error::ApiError;
use crate::state::ApiState;
pub use crate::tokens::{Caller, Scope, TokenInfo, TokenStore, new_token};

impl FromRequestParts<ApiState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &ApiState) -> Result<Self, ApiError> {
        let token = parts
            .headers
            .get(AUTHORIZATION)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| {
                let (scheme, token) = value.split_once(' ')?;
                scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
            })
            .filter(|token| !token.is_empty())
            .ok_or(ApiError::Unauthenticated)?;
        state
            .tokens
            .authenticate(token)
            .await?
            .ok_or(ApiError::Unauthenticated)
    }
}
