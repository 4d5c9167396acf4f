//! Bearer tokens with scopes. Tokens are random, shown once, and stored only as SHA-256 digests
//! (`api_tokens`); a bootstrap admin token read from a file (a mounted Secret) needs no row.
//! Scopes nest: `admin` includes `write`, which includes `read`.

use base64::Engine as _;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use sqlx::PgPool;
use utoipa::ToSchema;

use crate::error::ApiError;

/// What a token may do.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, ToSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Scope {
    /// Look at everything but message contents.
    Read,
    /// Change the control plane and act on the queue.
    Write,
    /// Tokens, and the stored messages themselves.
    Admin,
}

impl Scope {
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Read => "read",
            Scope::Write => "write",
            Scope::Admin => "admin",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "read" => Some(Scope::Read),
            "write" => Some(Scope::Write),
            "admin" => Some(Scope::Admin),
            _ => None,
        }
    }
}

impl std::fmt::Display for Scope {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Who is calling: the token's name and the widest scope it has.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    pub name: String,
    pub scope: Scope,
}

impl Caller {
    pub fn require(&self, scope: Scope) -> Result<(), ApiError> {
        if self.scope >= scope {
            Ok(())
        } else {
            Err(ApiError::Forbidden(scope.as_str()))
        }
    }
}

/// The token table and the bootstrap token.
#[derive(Clone)]
pub struct TokenStore {
    pool: PgPool,
    bootstrap: Option<[u8; 32]>,
}

/// A token as listed: never the token itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct TokenInfo {
    pub name: String,
    pub scopes: Vec<Scope>,
    pub owner: String,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: time::OffsetDateTime,
}

impl TokenStore {
    /// `bootstrap`: the bootstrap admin token's text, if one is configured.
    pub fn new(pool: PgPool, bootstrap: Option<&str>) -> Self {
        Self {
            pool,
            bootstrap: bootstrap.map(|token| digest(token.trim())),
        }
    }

    pub async fn authenticate(&self, token: &str) -> Result<Option<Caller>, ApiError> {
        let digest = digest(token);
        if self.bootstrap == Some(digest) {
            return Ok(Some(Caller {
                name: "bootstrap".to_owned(),
                scope: Scope::Admin,
            }));
        }
        let row: Option<(String, Vec<String>)> =
            sqlx::query_as("SELECT name, scopes FROM api_tokens WHERE digest = $1")
                .bind(digest.as_slice())
                .fetch_optional(&self.pool)
                .await?;
        Ok(row.map(|(name, scopes)| Caller {
            name,
            scope: scopes
                .iter()
                .filter_map(|s| Scope::parse(s))
                .max()
                .unwrap_or(Scope::Read),
        }))
    }

    /// Creates a token named `name`; returns its text, which is not kept anywhere.
    pub async fn create(&self, name: &str, scopes: &[Scope]) -> Result<String, ApiError> {
        let name = name.trim();
        if name.is_empty()
            || name.len() > 64
            || !name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
        {
            return Err(ApiError::invalid(
                "name",
                "1 to 64 letters, digits, '-', '_' or '.'",
            ));
        }
        if scopes.is_empty() {
            return Err(ApiError::invalid(
                "scopes",
                "at least one of read, write, admin",
            ));
        }
        let token = new_token();
        let scopes: Vec<&str> = scopes.iter().map(|s| s.as_str()).collect();
        let inserted = sqlx::query(
            "INSERT INTO api_tokens (name, digest, scopes, owner) VALUES ($1, $2, $3, 'api')
             ON CONFLICT (name) DO NOTHING",
        )
        .bind(name)
        .bind(digest(&token).as_slice())
        .bind(&scopes)
        .execute(&self.pool)
        .await?;
        if inserted.rows_affected() == 0 {
            return Err(ApiError::Exists(tern_common::control::Owner::Api));
        }
        Ok(token)
    }

    pub async fn list(&self) -> Result<Vec<TokenInfo>, ApiError> {
        let rows: Vec<(String, Vec<String>, String, time::OffsetDateTime)> =
            sqlx::query_as("SELECT name, scopes, owner, created_at FROM api_tokens ORDER BY name")
                .fetch_all(&self.pool)
                .await?;
        Ok(rows
            .into_iter()
            .map(|(name, scopes, owner, created_at)| TokenInfo {
                name,
                scopes: scopes.iter().filter_map(|s| Scope::parse(s)).collect(),
                owner,
                created_at,
            })
            .collect())
    }

    pub async fn revoke(&self, name: &str) -> Result<(), ApiError> {
        let done = sqlx::query("DELETE FROM api_tokens WHERE name = $1")
            .bind(name)
            .execute(&self.pool)
            .await?;
        if done.rows_affected() == 0 {
            return Err(ApiError::NotFound("token"));
        }
        Ok(())
    }
}

/// 32 random bytes (from the operating system's generator, through UUIDv4), URL-safe base64.
pub fn new_token() -> String {
    let mut bytes = [0u8; 32];
    bytes[..16].copy_from_slice(uuid::Uuid::new_v4().as_bytes());
    bytes[16..].copy_from_slice(uuid::Uuid::new_v4().as_bytes());
    format!(
        "tern_{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    )
}

fn digest(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}
