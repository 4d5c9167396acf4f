//! [`QueueError`]: the one error of every queue operation, commit, claim, finish, inspect, act
//! and sweep alike, so each caller maps it to its wire format once (the ingress to `451 4.3.0`,
//! the API to a problem, the worker to "the lease will expire").

/// Why a queue operation did not happen.
#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    #[error("queue operation timed out")]
    Timeout,
    /// The database is away or busy: worth trying again later.
    #[error("queue database unavailable: {0}")]
    Unavailable(#[source] sqlx::Error),
    /// The database refused the statement itself: trying again will not help.
    #[error("queue database rejected the statement: {0}")]
    Rejected(#[source] sqlx::Error),
}

impl QueueError {
    /// A bounded label for metrics.
    pub fn metric_label(&self) -> &'static str {
        match self {
            QueueError::Timeout => "timeout",
            QueueError::Unavailable(_) => "unavailable",
            QueueError::Rejected(_) => "rejected",
        }
    }

    /// Whether the same operation may succeed later (the database was away, not the statement
    /// wrong).
    pub fn is_transient(&self) -> bool {
        !matches!(self, QueueError::Rejected(_))
    }
}

/// Errors the database raised about the statement itself are not worth retrying on another
/// connection; everything else (I/O, pool exhaustion, shutdown) is the database being away.
/// SQLSTATE classes 08 (connection), 53 (resources), 57 (operator intervention, e.g. shutdown)
/// and 40 (rollback) are the database being away or busy too.
impl From<sqlx::Error> for QueueError {
    fn from(error: sqlx::Error) -> Self {
        let statement_fault = match &error {
            sqlx::Error::Database(db) => {
                let class = db
                    .code()
                    .map(|code| code.chars().take(2).collect::<String>());
                !matches!(class.as_deref(), Some("08" | "53" | "57" | "40"))
            }
            sqlx::Error::RowNotFound
            | sqlx::Error::ColumnDecode { .. }
            | sqlx::Error::ColumnNotFound(_)
            | sqlx::Error::TypeNotFound { .. }
            | sqlx::Error::Decode(_) => true,
            _ => false,
        };
        if statement_fault {
            QueueError::Rejected(error)
        } else {
            QueueError::Unavailable(error)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_database_being_away_is_transient_and_a_wrong_statement_is_not() {
        let away = QueueError::from(sqlx::Error::PoolTimedOut);
        assert!(matches!(away, QueueError::Unavailable(_)) && away.is_transient());
        let io = QueueError::from(sqlx::Error::Io(std::io::ErrorKind::ConnectionReset.into()));
        assert_eq!(io.metric_label(), "unavailable");
        let wrong = QueueError::from(sqlx::Error::RowNotFound);
        assert!(matches!(wrong, QueueError::Rejected(_)) && !wrong.is_transient());
        assert!(QueueError::Timeout.is_transient());
    }
}
