//! The MailUser reconciler: the user's row in PostgreSQL, owned by `crd`, with the password from
//! the Secret hashed as `tern user` hashes it. The password is read again when the Secret changes
//! (its resourceVersion, kept in status) or the row is gone; it is never stored in plain text,
//! logged, or written to the resource.

use std::sync::Arc;

use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::jiff::Timestamp;
use kube::runtime::controller::Action;
use kube::{Api, Client, ResourceExt as _};
use tern_common::control::Owner;
use tern_common::users::{SenderRule, UserStore, UsersError};

use crate::condition::{self, Outcome};
use crate::crd::{MailUser, MailUserStatus};
use crate::error::Error;
use crate::reconciler;

const FINALIZER: &str = "tern.dev/mailuser";

/// What the reconciler needs: the Kubernetes client and the users table.
pub struct Context {
    pub client: Client,
    /// How often a settled resource is looked at again.
    pub resync: std::time::Duration,
    pub recorder: kube::runtime::events::Recorder,
    pub users: UserStore,
}

/// Runs the MailUser controller until `shutdown` resolves. Secrets are watched too: a change to
/// one reconciles the users that name it.
pub async fn run(
    context: Arc<Context>,
    shutdown: impl Future<Output = ()> + Send + Sync + 'static,
) {
    let client = context.client.clone();
    reconciler::run(
        &client,
        context,
        reconcile,
        error_policy,
        Some(|user: &MailUser| Some(user.spec.password_secret_ref.name.as_str())),
        shutdown,
    )
    .await;
}

async fn reconcile(user: Arc<MailUser>, context: Arc<Context>) -> Result<Action, Error> {
    let context = &*context;
    reconciler::finalized(
        "MailUser",
        &context.client,
        FINALIZER,
        user,
        |user, api| async move { apply(&user, &api, context).await },
        |user| async move { cleanup(&user, context).await },
    )
    .await
}

fn error_policy(user: Arc<MailUser>, error: &Error, context: Arc<Context>) -> Action {
    reconciler::retry("MailUser", &*user, error, context.resync)
}

async fn apply(user: &MailUser, api: &Api<MailUser>, context: &Context) -> Result<Action, Error> {
    let previous = user.status.clone().unwrap_or_default();
    let (outcome, secret_version) = match put(user, &previous, context).await {
        Ok(version) => (Outcome::Ready, Some(version)),
        Err(error) if !error.is_transient() || matches!(error, Error::Secret(_)) => {
            let reason = match &error {
                Error::Secret(_) => "SecretUnusable",
                Error::Users(UsersError::OwnedBy { .. }) => "OwnedByAnotherWriter",
                Error::Users(UsersError::InvalidPassword(_)) => "InvalidPassword",
                Error::Users(UsersError::InvalidSender(_)) => "InvalidSender",
                _ => "Refused",
            };
            tracing::info!(user = %user.name_any(), reason, %error, "mail user not ready");
            let outcome = Outcome::NotReady {
                reason,
                message: error.to_string(),
            };
            (outcome, previous.secret_version.clone())
        }
        Err(error) => return Err(error),
    };
    let status = MailUserStatus {
        conditions: vec![condition::ready(
            &outcome,
            user.metadata.generation,
            &previous.conditions,
            Timestamp::now(),
        )],
        observed_generation: user.metadata.generation,
        secret_version,
    };
    crate::status::apply(api, &user.name_any(), &status).await?;
    crate::events::on_transition(
        &context.recorder,
        user,
        &previous.conditions,
        &status.conditions[0],
    )
    .await;
    Ok(reconciler::again(outcome == Outcome::Ready, context.resync))
}

/// Writes the user's row; the Secret's resourceVersion whose password is in force.
async fn put(
    user: &MailUser,
    previous: &MailUserStatus,
    context: &Context,
) -> Result<String, Error> {
    let spec = &user.spec;
    let senders = spec
        .allowed_senders
        .iter()
        .map(|sender| SenderRule::parse(sender))
        .collect::<Result<Vec<_>, _>>()?;
    let namespace = user.namespace().unwrap_or_default();
    let reference = &spec.password_secret_ref;
    let secrets: Api<Secret> = Api::namespaced(context.client.clone(), &namespace);
    let secret = secrets.get_opt(&reference.name).await?.ok_or_else(|| {
        Error::Secret(format!(
            "Secret {namespace}/{} does not exist",
            reference.name
        ))
    })?;
    let version = secret.resource_version().unwrap_or_default();
    // The password is read only when it has to be (re)set: argon2id is slow on purpose.
    let stored = context.users.find(&spec.login).await?;
    let password = if stored.is_none() || previous.secret_version.as_deref() != Some(&version) {
        let bytes = secret
            .data
            .as_ref()
            .and_then(|data| data.get(&reference.key))
            .ok_or_else(|| {
                Error::Secret(format!(
                    "Secret {namespace}/{} has no key {}",
                    reference.name, reference.key
                ))
            })?;
        let text = String::from_utf8(bytes.0.clone()).map_err(|_| {
            Error::Secret(format!(
                "key {} of Secret {namespace}/{} is not UTF-8",
                reference.key, reference.name
            ))
        })?;
        Some(zeroize::Zeroizing::new(text))
    } else {
        None
    };
    context
        .users
        .put_owned(
            Owner::Crd,
            &spec.login,
            password.as_deref().map(String::as_str),
            !spec.enabled,
            &senders,
        )
        .await?;
    Ok(version)
}

async fn cleanup(user: &MailUser, context: &Context) -> Result<Action, Error> {
    match context
        .users
        .delete_owned(Owner::Crd, &user.spec.login)
        .await
    {
        // Not ours to remove: the finalizer goes, the other writer's user stays.
        Ok(()) | Err(UsersError::OwnedBy { .. }) => Ok(Action::await_change()),
        Err(error) => Err(error.into()),
    }
}
