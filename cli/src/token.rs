//! `tern token create|list|revoke`: admin API tokens. A new token is printed once; only its
//! digest is stored.

use std::process::ExitCode;

use clap::Subcommand;
use tern_api::ApiError;
use tern_api::auth::{Scope, TokenStore};
use tern_common::config::DatabaseConfig;
use tern_common::queue;

#[derive(Subcommand)]
pub enum TokenCommand {
    /// Create a token and print it (once).
    Create {
        name: String,
        /// `read`, `write` or `admin` (each includes the ones before). Repeatable.
        #[arg(long = "scope", value_name = "SCOPE", required = true)]
        scopes: Vec<String>,
    },
    /// List tokens: name, scopes, owner, creation time.
    List,
    /// Revoke a token by name.
    Revoke { name: String },
}

pub async fn run(database: &DatabaseConfig, command: TokenCommand) -> anyhow::Result<ExitCode> {
    let pool = queue::connect_pool(database)?;
    let tokens = TokenStore::new(pool, None);
    let result = match command {
        TokenCommand::Create { name, scopes } => {
            let mut parsed = Vec::new();
            for scope in &scopes {
                match Scope::parse(scope) {
                    Some(scope) => parsed.push(scope),
                    None => {
                        eprintln!("tern token: '{scope}' is not a scope (read, write, admin)");
                        return Ok(ExitCode::from(64));
                    }
                }
            }
            tokens
                .create(&name, &parsed)
                .await
                .map(|token| println!("{token}"))
        }
        TokenCommand::List => tokens.list().await.map(|list| {
            for token in list {
                let scopes: Vec<&str> = token.scopes.iter().map(|s| s.as_str()).collect();
                println!(
                    "{}\t{}\t{}\t{}",
                    token.name,
                    scopes.join(","),
                    token.owner,
                    token.created_at
                );
            }
        }),
        TokenCommand::Revoke { name } => tokens.revoke(&name).await,
    };
    match result {
        Ok(()) => Ok(ExitCode::SUCCESS),
        Err(error @ (ApiError::Exists(_) | ApiError::NotFound(_))) => {
            eprintln!("tern token: {error}");
            Ok(ExitCode::from(1))
        }
        Err(error @ ApiError::Invalid { .. }) => {
            eprintln!("tern token: {error}");
            Ok(ExitCode::from(64))
        }
        Err(error) => Err(anyhow::anyhow!("tern token: {error}")),
    }
}
