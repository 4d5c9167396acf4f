//! What can go wrong in a reconcile, each with the label it is counted under.

use tern_common::control::ControlError;
use tern_common::users::UsersError;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The Kubernetes API refused or could not be reached.
    #[error("kubernetes: {0}")]
    Kube(#[from] kube::Error),
    /// The finalizer could not be added or removed, or its cleanup failed.
    #[error("finalizer: {0}")]
    Finalizer(#[source] Box<kube::runtime::finalizer::Error<Error>>),
    /// A Secret the resource names is missing or does not hold the key.
    #[error("{0}")]
    Secret(String),
    /// The users table refused the write (another owner's user, a bad value) or is down.
    #[error("users: {0}")]
    Users(#[from] UsersError),
    /// The control plane refused the write (another owner's row, a bad value) or is down.
    #[error("control plane: {0}")]
    Control(#[from] ControlError),
}

impl Error {
    /// The `error` label of `tern_operator_reconcile_errors_total`.
    pub fn metric_label(&self) -> &'static str {
        match self {
            Error::Kube(_) => "kubernetes",
            Error::Finalizer(_) => "finalizer",
            Error::Secret(_) => "secret",
            Error::Users(UsersError::Database(_)) => "database",
            Error::Users(_) => "refused",
            Error::Control(ControlError::Database(_)) => "database",
            Error::Control(_) => "refused",
        }
    }

    /// Whether trying again without a change to the resource could help.
    pub fn is_transient(&self) -> bool {
        match self {
            Error::Kube(_) | Error::Finalizer(_) | Error::Secret(_) => true,
            Error::Users(error) => {
                matches!(error, UsersError::Database(_) | UsersError::Hashing(_))
            }
            Error::Control(error) => matches!(error, ControlError::Database(_)),
        }
    }
}
