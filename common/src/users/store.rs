//! [`UserStore`]: users and their senders in PostgreSQL, and authentication against them.

use std::net::IpAddr;

use sqlx::PgPool;

use crate::control::Owner;
use time::OffsetDateTime;

use super::{
    AuthOutcome, LockoutPolicy, MIN_PASSWORD, SenderRule, User, UsersError, normalize_login,
    password,
};

/// Users in PostgreSQL. Cheap to clone; share one per process.
#[derive(Clone)]
pub struct UserStore {
    pool: PgPool,
    lockout: LockoutPolicy,
}

/// Users with their senders aggregated, for [`user_from_row`]: the one with login `$1`, or all
/// when `$1` is NULL.
const SELECT_USERS_SQL: &str = "
SELECT u.id, u.login, u.disabled, u.created_at, u.updated_at, u.password_hash,
       coalesce(array_agg(s.sender ORDER BY s.sender) FILTER (WHERE s.sender IS NOT NULL), '{}')
  FROM users u LEFT JOIN user_senders s ON s.user_id = u.id
 WHERE $1::text IS NULL OR u.login = $1
 GROUP BY u.id
 ORDER BY u.login";

type UserRow = (
    i64,
    String,
    bool,
    OffsetDateTime,
    OffsetDateTime,
    String,
    Vec<String>,
);

fn user_from_row(row: UserRow) -> (User, String) {
    let (id, login, disabled, created_at, updated_at, hash, senders) = row;
    // Rows were validated on the way in; one edited by hand into nonsense just allows nothing.
    let mut senders: Vec<SenderRule> = senders
        .iter()
        .filter_map(|s| SenderRule::parse(s).ok())
        .collect();
    senders.sort();
    let user = User {
        id,
        login,
        disabled,
        senders,
        created_at,
        updated_at,
    };
    (user, hash)
}

fn check_password(password: &str) -> Result<(), UsersError> {
    if password.chars().count() < MIN_PASSWORD {
        return Err(UsersError::InvalidPassword("shorter than 8 characters"));
    }
    if password.len() > tern_smtp::auth::MAX_PASSWORD {
        return Err(UsersError::InvalidPassword("longer than 1024 octets"));
    }
    // SASL PLAIN separates fields with NUL, and a line-based prompt cannot carry a line break.
    if password.contains(['\0', '\r', '\n']) {
        return Err(UsersError::InvalidPassword("contains NUL or a line break"));
    }
    Ok(())
}

/// Makes the user `id`'s extra senders exactly `senders`.
async fn set_senders(
    tx: &mut sqlx::Transaction<'static, sqlx::Postgres>,
    id: i64,
    senders: &[SenderRule],
) -> Result<(), sqlx::Error> {
    let senders: Vec<String> = senders.iter().map(ToString::to_string).collect();
    sqlx::query("DELETE FROM user_senders WHERE user_id = $1")
        .bind(id)
        .execute(&mut **tx)
        .await?;
    sqlx::query(
        "INSERT INTO user_senders (user_id, sender)
         SELECT $1, s FROM unnest($2::text[]) AS s ON CONFLICT DO NOTHING",
    )
    .bind(id)
    .bind(&senders)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

fn is_unique_violation(error: &sqlx::Error) -> bool {
    matches!(error, sqlx::Error::Database(db) if db.is_unique_violation())
}

impl UserStore {
    pub fn new(pool: PgPool, lockout: LockoutPolicy) -> Self {
        Self { pool, lockout }
    }

    pub fn lockout(&self) -> LockoutPolicy {
        self.lockout
    }

    /// Adds a user who may also send as `senders`. [`UsersError::Exists`] if the login (in any
    /// case) is taken.
    pub async fn add(
        &self,
        login: &str,
        password: &str,
        senders: &[SenderRule],
    ) -> Result<User, UsersError> {
        let login = normalize_login(login)?;
        check_password(password)?;
        let hash = password::hash(password).await?;
        let mut tx = self.pool.begin().await?;
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO users (login, password_hash) VALUES ($1, $2) RETURNING id",
        )
        .bind(&login)
        .bind(&hash)
        .fetch_one(&mut *tx)
        .await
        .map_err(|error| {
            if is_unique_violation(&error) {
                UsersError::Exists(login.clone())
            } else {
                UsersError::Database(error)
            }
        })?;
        set_senders(&mut tx, id, senders).await?;
        tx.commit().await?;
        self.find(&login)
            .await?
            .ok_or_else(|| UsersError::NotFound(login))
    }

    /// The user as `owner` declares it, the way the operator keeps its users: made when missing
    /// (which needs `password`), else its password replaced when `password` is given; its state
    /// and senders set either way. A user another owner made is refused
    /// ([`UsersError::OwnedBy`]) and left as it is.
    pub async fn put_owned(
        &self,
        owner: Owner,
        login: &str,
        password: Option<&str>,
        disabled: bool,
        senders: &[SenderRule],
    ) -> Result<User, UsersError> {
        let login = normalize_login(login)?;
        let hash = match password {
            Some(password) => {
                check_password(password)?;
                Some(password::hash(password).await?)
            }
            None => None,
        };
        let mut tx = self.pool.begin().await?;
        let existing: Option<(i64, String)> =
            sqlx::query_as("SELECT id, owner FROM users WHERE login = $1 FOR UPDATE")
                .bind(&login)
                .fetch_optional(&mut *tx)
                .await?;
        let id = match existing {
            Some((_, found)) if found != owner.as_str() => {
                return Err(UsersError::OwnedBy {
                    login,
                    owner: found,
                });
            }
            Some((id, _)) => {
                sqlx::query(
                    "UPDATE users SET password_hash = coalesce($2, password_hash), disabled = $3,
                            updated_at = now()
                      WHERE id = $1",
                )
                .bind(id)
                .bind(&hash)
                .bind(disabled)
                .execute(&mut *tx)
                .await?;
                id
            }
            None => {
                let hash = hash.ok_or_else(|| UsersError::PasswordNeeded(login.clone()))?;
                sqlx::query_scalar(
                    "INSERT INTO users (login, password_hash, disabled, owner)
                     VALUES ($1, $2, $3, $4) RETURNING id",
                )
                .bind(&login)
                .bind(&hash)
                .bind(disabled)
                .bind(owner.as_str())
                .fetch_one(&mut *tx)
                .await?
            }
        };
        set_senders(&mut tx, id, senders).await?;
        tx.commit().await?;
        self.find(&login)
            .await?
            .ok_or_else(|| UsersError::NotFound(login))
    }

    /// Deletes the user when `owner` made it; a user another owner made is left alone and
    /// refused, and one that is not there is no error (the operator's finalizer may run twice).
    pub async fn delete_owned(&self, owner: Owner, login: &str) -> Result<(), UsersError> {
        let login = normalize_login(login)?;
        let found: Option<String> = sqlx::query_scalar(
            "WITH found AS (SELECT owner FROM users WHERE login = $1),
                  gone AS (DELETE FROM users WHERE login = $1 AND owner = $2)
             SELECT owner FROM found",
        )
        .bind(&login)
        .bind(owner.as_str())
        .fetch_optional(&self.pool)
        .await?;
        match found {
            Some(found) if found != owner.as_str() => Err(UsersError::OwnedBy {
                login,
                owner: found,
            }),
            _ => Ok(()),
        }
    }

    /// Who owns the user (`api` for those made with `tern user` or the API, `crd` for the
    /// operator's); `None` when there is no such user.
    pub async fn owner(&self, login: &str) -> Result<Option<String>, UsersError> {
        let login = normalize_login(login)?;
        Ok(
            sqlx::query_scalar("SELECT owner FROM users WHERE login = $1")
                .bind(&login)
                .fetch_optional(&self.pool)
                .await?,
        )
    }

    /// The user with this login (any case), if there is one.
    pub async fn find(&self, login: &str) -> Result<Option<User>, UsersError> {
        Ok(self.find_with_hash(login).await?.map(|(user, _)| user))
    }

    async fn find_with_hash(&self, login: &str) -> Result<Option<(User, String)>, UsersError> {
        let row: Option<UserRow> = sqlx::query_as(SELECT_USERS_SQL)
            .bind(Some(login.to_lowercase()))
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.map(user_from_row))
    }

    /// Every user, ordered by login.
    pub async fn list(&self) -> Result<Vec<User>, UsersError> {
        let rows: Vec<UserRow> = sqlx::query_as(SELECT_USERS_SQL)
            .bind(None::<String>)
            .fetch_all(&self.pool)
            .await?;
        Ok(rows.into_iter().map(|row| user_from_row(row).0).collect())
    }

    /// Replaces the password. [`UsersError::NotFound`] if there is no such user.
    pub async fn set_password(&self, login: &str, password: &str) -> Result<(), UsersError> {
        check_password(password)?;
        let hash = password::hash(password).await?;
        self.update(
            login,
            sqlx::query("UPDATE users SET password_hash = $2, updated_at = now() WHERE login = $1")
                .bind(login.to_lowercase())
                .bind(hash),
        )
        .await
    }

    /// A disabled user cannot authenticate; its row and senders are kept.
    pub async fn set_disabled(&self, login: &str, disabled: bool) -> Result<(), UsersError> {
        self.update(
            login,
            sqlx::query("UPDATE users SET disabled = $2, updated_at = now() WHERE login = $1")
                .bind(login.to_lowercase())
                .bind(disabled),
        )
        .await
    }

    /// Replaces the extra senders.
    pub async fn set_senders(&self, login: &str, senders: &[SenderRule]) -> Result<(), UsersError> {
        let senders: Vec<String> = senders.iter().map(ToString::to_string).collect();
        let found: Option<i64> = sqlx::query_scalar(
            "WITH u AS (UPDATE users SET updated_at = now() WHERE login = $1 RETURNING id),
                  gone AS (DELETE FROM user_senders WHERE user_id IN (SELECT id FROM u)),
                  added AS (INSERT INTO user_senders (user_id, sender)
                            SELECT u.id, s FROM u, unnest($2::text[]) AS s ON CONFLICT DO NOTHING)
             SELECT id FROM u",
        )
        .bind(login.to_lowercase())
        .bind(&senders)
        .fetch_optional(&self.pool)
        .await?;
        found
            .map(|_| ())
            .ok_or_else(|| UsersError::NotFound(login.to_lowercase()))
    }

    /// Deletes the user and its senders. [`UsersError::NotFound`] if there is no such user.
    pub async fn delete(&self, login: &str) -> Result<(), UsersError> {
        self.update(
            login,
            sqlx::query("DELETE FROM users WHERE login = $1").bind(login.to_lowercase()),
        )
        .await
    }

    async fn update(
        &self,
        login: &str,
        query: sqlx::query::Query<'_, sqlx::Postgres, sqlx::postgres::PgArguments>,
    ) -> Result<(), UsersError> {
        match query.execute(&self.pool).await?.rows_affected() {
            0 => Err(UsersError::NotFound(login.to_lowercase())),
            _ => Ok(()),
        }
    }

    /// Checks a login and password from `client_ip`.
    ///
    /// The attempt is counted against the login and the address first ([`LockoutPolicy`]); over
    /// either limit the answer is [`AuthOutcome::LockedOut`] whatever the password. Otherwise the
    /// password is verified (also for unknown logins, against a dummy hash); a disabled user gets
    /// [`AuthOutcome::BadCredentials`] even with the right password. Every outcome is logged with
    /// the login and address, never the password. An `Err` means the database could not be asked:
    /// the session should answer `454 4.7.0` and not count it as a failure.
    pub async fn authenticate(
        &self,
        login: &str,
        password: &str,
        client_ip: IpAddr,
    ) -> Result<AuthOutcome, UsersError> {
        let key = login.to_lowercase();
        if self
            .lockout
            .count_attempt(&self.pool, &key, client_ip)
            .await?
        {
            tracing::warn!(login = %key, %client_ip, outcome = "locked_out", "SMTP AUTH refused");
            return Ok(AuthOutcome::LockedOut);
        }
        let found = self.find_with_hash(&key).await?;
        let (user, hash) = match found {
            Some((user, hash)) => (Some(user), Some(hash)),
            None => (None, None),
        };
        let matches = password::verify(password, hash).await?;
        let outcome = match user {
            Some(user) if matches && !user.disabled => {
                self.lockout.succeeded(&self.pool, &key, client_ip).await?;
                tracing::info!(login = %key, %client_ip, outcome = "authenticated", "SMTP AUTH");
                return Ok(AuthOutcome::Authenticated(user));
            }
            Some(user) if user.disabled => "disabled",
            Some(_) => "wrong_password",
            None => "unknown_login",
        };
        tracing::warn!(login = %key, %client_ip, outcome, "SMTP AUTH failed");
        Ok(AuthOutcome::BadCredentials)
    }

    /// Deletes failure counters whose window has passed. Expired counters are harmless (the
    /// next attempt starts a new window); this only keeps the table small.
    pub async fn prune_failures(&self) -> Result<u64, UsersError> {
        self.lockout.prune(&self.pool).await
    }
}
