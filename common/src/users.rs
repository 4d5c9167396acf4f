//! Users who may authenticate with SMTP AUTH, kept in PostgreSQL.
//!
//! - [`UserStore`]: add, change, delete and list users, and [`UserStore::authenticate`] for the
//!   ingress, with argon2id hashes and a lockout shared by every ingress pod ([`LockoutPolicy`]).
//! - [`User::may_send_as`]: which envelope senders an authenticated user may use.
//!
//! Logins are case-insensitive: they are stored and looked up lower-cased.

use std::fmt;

use tern_smtp::{Domain, ReversePath};
use time::OffsetDateTime;

mod lockout;
mod password;
mod store;

pub use lockout::LockoutPolicy;
pub use store::UserStore;

/// Longest login, in octets (the SASL decoder enforces the same bound).
pub const MAX_LOGIN: usize = tern_smtp::auth::MAX_LOGIN;
/// Shortest password `UserStore` accepts for a new user or a password change.
pub const MIN_PASSWORD: usize = 8;

/// A user as stored, without the password hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub id: i64,
    /// Lower-cased.
    pub login: String,
    pub disabled: bool,
    /// Extra senders beyond the login itself, sorted.
    pub senders: Vec<SenderRule>,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
}

impl User {
    /// Whether this user may use `sender` as the envelope sender (MAIL FROM).
    ///
    /// - The null sender `<>` is allowed: a mail client sending a delivery or read notification
    ///   uses it, and it cannot be used to impersonate anyone (Postfix's
    ///   `reject_sender_login_mismatch` lets it through too).
    /// - A login that is an address allows exactly that address.
    /// - [`SenderRule::Address`] allows one address, [`SenderRule::Domain`] any in that domain.
    ///
    /// Comparison is case-insensitive for the whole address, local part included: a mailbox that
    /// differs from one's own only by case is in practice the same mailbox.
    pub fn may_send_as(&self, sender: &ReversePath) -> bool {
        let ReversePath::Mailbox(mailbox) = sender else {
            return true;
        };
        let domain = match &mailbox.domain {
            Domain::Name(name) => name.to_lowercase(),
            Domain::Literal(_) => return false,
        };
        let local = mailbox.local.to_lowercase();
        let own = match SenderRule::parse(&self.login) {
            Ok(address @ SenderRule::Address { .. }) => Some(address),
            _ => None,
        };
        own.iter()
            .chain(self.senders.iter())
            .any(|rule| rule.allows(&local, &domain))
    }
}

/// One address or a whole domain a user may send as.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum SenderRule {
    /// `alice@example.com`, lower-cased.
    Address { local: String, domain: String },
    /// `@example.com` (also written `example.com`), lower-cased.
    Domain(String),
}

impl SenderRule {
    /// `alice@example.com`, `@example.com` or `example.com`; any case.
    pub fn parse(text: &str) -> Result<Self, UsersError> {
        let invalid = || UsersError::InvalidSender(text.to_owned());
        if text.is_empty()
            || text.len() > MAX_LOGIN
            || text
                .chars()
                .any(|c| c.is_control() || c.is_whitespace() || c == '<' || c == '>')
        {
            return Err(invalid());
        }
        let lower = text.to_lowercase();
        let (local, domain) = match lower.rsplit_once('@') {
            Some((local, domain)) => (Some(local), domain),
            None => (None, lower.as_str()),
        };
        let domain_ok = !domain.is_empty()
            && !domain.starts_with('.')
            && !domain.ends_with('.')
            && !domain.contains("..")
            && !domain.contains('@')
            && !domain.starts_with('[');
        if !domain_ok {
            return Err(invalid());
        }
        match local {
            None | Some("") => Ok(SenderRule::Domain(domain.to_owned())),
            Some(local) => Ok(SenderRule::Address {
                local: local.to_owned(),
                domain: domain.to_owned(),
            }),
        }
    }

    fn allows(&self, local: &str, domain: &str) -> bool {
        match self {
            SenderRule::Address {
                local: own_local,
                domain: own_domain,
            } => own_local == local && own_domain == domain,
            SenderRule::Domain(own_domain) => own_domain == domain,
        }
    }
}

/// The stored form: `alice@example.com` or `@example.com`.
impl fmt::Display for SenderRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SenderRule::Address { local, domain } => write!(f, "{local}@{domain}"),
            SenderRule::Domain(domain) => write!(f, "@{domain}"),
        }
    }
}

/// What [`UserStore::authenticate`] decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthOutcome {
    Authenticated(User),
    /// Unknown login, wrong password or a disabled user; deliberately not told apart.
    BadCredentials,
    /// Too many failures for this login or client address within the window: refused without
    /// looking at the password.
    LockedOut,
}

#[derive(Debug, thiserror::Error)]
pub enum UsersError {
    #[error("user {0} already exists")]
    Exists(String),
    #[error("no user {0}")]
    NotFound(String),
    /// Another writer (`api` or `crd`) made the user; only it may change it.
    #[error("user {login} is owned by {owner}")]
    OwnedBy { login: String, owner: String },
    /// A user that does not exist yet cannot be made without a password.
    #[error("user {0} needs a password to be created")]
    PasswordNeeded(String),
    #[error("invalid login: {0}")]
    InvalidLogin(&'static str),
    #[error("invalid password: {0}")]
    InvalidPassword(&'static str),
    #[error("invalid sender {0:?}: expected alice@example.com, @example.com or example.com")]
    InvalidSender(String),
    #[error("user database unavailable: {0}")]
    Database(#[from] sqlx::Error),
    #[error("password hashing failed: {0}")]
    Hashing(String),
}

/// The stored form of a login: lower-cased, checked for length and control characters.
pub fn normalize_login(login: &str) -> Result<String, UsersError> {
    if login.is_empty() {
        return Err(UsersError::InvalidLogin("empty"));
    }
    if login.len() > MAX_LOGIN {
        return Err(UsersError::InvalidLogin("longer than 255 octets"));
    }
    if login.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return Err(UsersError::InvalidLogin(
            "contains whitespace or a control character",
        ));
    }
    Ok(login.to_lowercase())
}

#[cfg(test)]
mod tests;
