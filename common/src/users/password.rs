//! argon2id hashing and verification, off the async runtime.
//!
//! Both take tens of milliseconds of CPU on purpose, so they run on the blocking pool and never
//! stall a runtime worker that is serving other sessions.

use std::sync::OnceLock;

use argon2::Argon2;
use argon2::password_hash::{PasswordHasher as _, PasswordVerifier as _};
use zeroize::Zeroizing;

use super::UsersError;

/// A PHC string for a new password: argon2id v19 with the crate's defaults (19 MiB, 2 passes,
/// 1 lane, the OWASP recommendation) and a fresh random salt.
pub(super) async fn hash(password: &str) -> Result<String, UsersError> {
    let password = Zeroizing::new(password.to_owned());
    tokio::task::spawn_blocking(move || hash_now(&password))
        .await
        .map_err(|error| UsersError::Hashing(error.to_string()))?
}

/// Whether `password` matches `stored`. With no stored hash (unknown user) the password is still
/// checked against a fixed hash, so an unknown login costs as much time as a known one and the
/// answer time does not tell which logins exist.
pub(super) async fn verify(password: &str, stored: Option<String>) -> Result<bool, UsersError> {
    let password = Zeroizing::new(password.to_owned());
    tokio::task::spawn_blocking(move || {
        let (hash, known) = match stored {
            Some(hash) => (hash, true),
            None => (dummy_hash()?.to_owned(), false),
        };
        let matches = Argon2::default()
            .verify_password(password.as_bytes(), hash.as_str())
            .is_ok();
        Ok(known && matches)
    })
    .await
    .map_err(|error| UsersError::Hashing(error.to_string()))?
}

fn hash_now(password: &str) -> Result<String, UsersError> {
    Argon2::default()
        .hash_password(password.as_bytes())
        .map(|hash| hash.to_string())
        .map_err(|error| UsersError::Hashing(error.to_string()))
}

/// Made once per process from a random salt; nobody knows a password for it that matters.
fn dummy_hash() -> Result<&'static str, UsersError> {
    static DUMMY: OnceLock<String> = OnceLock::new();
    if let Some(hash) = DUMMY.get() {
        return Ok(hash);
    }
    let hash = hash_now("tern: no such user")?;
    Ok(DUMMY.get_or_init(|| hash))
}
