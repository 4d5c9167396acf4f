//! Failed-attempt limits shared by every ingress pod through PostgreSQL.
//!
//! Each login and each client address (an IPv4 address, or the /64 of an IPv6 one, since a
//! single host usually owns a whole /64) has a fixed window. An attempt is counted *before* its
//! password is checked, in one atomic upsert, so concurrent attempts on many pods can never check
//! more than `max_per_login` passwords per window; a success then deletes the login's row and
//! returns the attempt to the address, so a busy NAT full of good users is not locked out.

use std::net::IpAddr;
use std::time::Duration;

use sqlx::PgPool;

use super::UsersError;

/// How many failures lock a login or a client address out, and for how long.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LockoutPolicy {
    /// Failed attempts per login within `window` before further attempts are refused.
    pub max_per_login: u32,
    /// Failed attempts per client address within `window`, across all logins.
    pub max_per_ip: u32,
    /// Counting starts at the first failure; the lockout lifts when the window has passed.
    pub window: Duration,
}

impl Default for LockoutPolicy {
    fn default() -> Self {
        Self {
            max_per_login: 5,
            max_per_ip: 20,
            window: Duration::from_secs(15 * 60),
        }
    }
}

/// The counter key of a client address.
pub(super) fn ip_key(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => v4.to_string(),
            None => {
                let prefix = u128::from(v6) & !((1u128 << 64) - 1);
                format!("{}/64", std::net::Ipv6Addr::from(prefix))
            }
        },
    }
}

/// Counts an attempt for `login` and `ip`, one statement. Rows are always taken in the same
/// order (login, then address), so two concurrent attempts cannot deadlock.
const COUNT_ATTEMPT_SQL: &str = "
INSERT INTO auth_failures AS f (scope, key, window_start, failures)
VALUES ('login', $1, now(), 1), ('ip', $2, now(), 1)
ON CONFLICT (scope, key) DO UPDATE SET
    window_start = CASE WHEN f.window_start > now() - make_interval(secs => $3)
                        THEN f.window_start ELSE now() END,
    failures     = CASE WHEN f.window_start > now() - make_interval(secs => $3)
                        THEN least(f.failures + 1, 1000000) ELSE 1 END
RETURNING scope, failures";

/// A success: the login starts afresh and the address gets its attempt back.
const SUCCEEDED_SQL: &str = "
WITH login AS (DELETE FROM auth_failures WHERE scope = 'login' AND key = $1)
UPDATE auth_failures SET failures = failures - 1
 WHERE scope = 'ip' AND key = $2 AND failures > 0";

const PRUNE_SQL: &str =
    "DELETE FROM auth_failures WHERE window_start <= now() - make_interval(secs => $1)";

impl LockoutPolicy {
    /// Counts one attempt; `true` when it is over a limit and must be refused unchecked.
    pub(super) async fn count_attempt(
        &self,
        pool: &PgPool,
        login: &str,
        ip: IpAddr,
    ) -> Result<bool, UsersError> {
        let counts: Vec<(String, i32)> = sqlx::query_as(COUNT_ATTEMPT_SQL)
            .bind(login)
            .bind(ip_key(ip))
            .bind(self.window.as_secs_f64())
            .fetch_all(pool)
            .await?;
        Ok(counts.iter().any(|(scope, failures)| {
            let limit = if scope == "login" {
                self.max_per_login
            } else {
                self.max_per_ip
            };
            i64::from(*failures) > i64::from(limit)
        }))
    }

    pub(super) async fn succeeded(
        &self,
        pool: &PgPool,
        login: &str,
        ip: IpAddr,
    ) -> Result<(), UsersError> {
        sqlx::query(SUCCEEDED_SQL)
            .bind(login)
            .bind(ip_key(ip))
            .execute(pool)
            .await?;
        Ok(())
    }

    /// Deletes counters whose window has passed; returns how many.
    pub(super) async fn prune(&self, pool: &PgPool) -> Result<u64, UsersError> {
        let done = sqlx::query(PRUNE_SQL)
            .bind(self.window.as_secs_f64())
            .execute(pool)
            .await?;
        Ok(done.rows_affected())
    }
}
