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
    let resync = context.resync;
    reconciler::run(
        &client,
        "MailUser",
        context,
        reconcile,
        resync,
        Some(|user: &MailUser| Some(user.spec.password_secret_ref.name.clone())),
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

/// The exact calls the reconciler makes, against a scripted API (and the real users table).
#[cfg(test)]
mod scenarios {
    use std::time::Duration;

    use serde_json::json;
    use tern_common::users::LockoutPolicy;
    use tern_testkit::TestDatabase;

    use super::*;
    use crate::mock_api::{self, Expect};

    const USER: &str = "/apis/tern.dev/v1alpha1/namespaces/mail/mailusers/alice";

    fn user(finalizers: &[&str], deleting: bool) -> serde_json::Value {
        let mut metadata = json!({
            "name": "alice", "namespace": "mail", "uid": "u-1", "generation": 3,
            "resourceVersion": "10", "finalizers": finalizers,
        });
        if deleting {
            metadata["deletionTimestamp"] = json!("2026-12-07T12:00:00Z");
        }
        json!({
            "apiVersion": "tern.dev/v1alpha1", "kind": "MailUser", "metadata": metadata,
            "spec": {"login": "alice@example.org",
                     "passwordSecretRef": {"name": "alice-password", "key": "password"},
                     "allowedSenders": ["@example.org"]},
        })
    }

    async fn run(object: serde_json::Value, script: Vec<Expect>, users: &UserStore) -> Action {
        let (client, left) = mock_api::client(script);
        let context = Arc::new(Context {
            client: client.clone(),
            resync: Duration::from_secs(300),
            recorder: crate::events::recorder(client),
            users: users.clone(),
        });
        let object: MailUser = serde_json::from_value(object).expect("a MailUser");
        let action = reconcile(Arc::new(object), context)
            .await
            .expect("reconciled");
        left.assert_done();
        action
    }

    #[tokio::test]
    async fn a_new_user_first_gets_its_finalizer_and_nothing_else() {
        let db = TestDatabase::create().await;
        let users = UserStore::new(db.pool.clone(), LockoutPolicy::default());
        let script = vec![
            Expect::new("PATCH", USER, user(&[FINALIZER], false)).body(|patch| {
                let text = patch.to_string();
                assert!(
                    text.contains("/metadata/finalizers") && text.contains(FINALIZER),
                    "{text}"
                );
            }),
        ];
        run(user(&[], false), script, &users).await;
        assert!(
            users
                .find("alice@example.org")
                .await
                .expect("find")
                .is_none()
        );
    }

    #[tokio::test]
    async fn apply_reads_the_secret_writes_the_user_and_applies_the_status() {
        let db = TestDatabase::create().await;
        let users = UserStore::new(db.pool.clone(), LockoutPolicy::default());
        let secret = json!({
            "apiVersion": "v1", "kind": "Secret",
            "metadata": {"name": "alice-password", "namespace": "mail", "resourceVersion": "7"},
            // "a long enough password"
            "data": {"password": "YSBsb25nIGVub3VnaCBwYXNzd29yZA=="},
        });
        let script = vec![
            Expect::new(
                "GET",
                "/api/v1/namespaces/mail/secrets/alice-password",
                secret,
            ),
            Expect::new("PATCH", format!("{USER}/status"), user(&[FINALIZER], false)).body(
                |patch| {
                    let status = &patch["status"];
                    assert_eq!(status["conditions"][0]["type"], "Ready");
                    assert_eq!(status["conditions"][0]["status"], "True");
                    assert_eq!(status["conditions"][0]["observedGeneration"], 3);
                    assert_eq!(status["secretVersion"], "7");
                    assert!(!patch.to_string().contains("long enough"), "{patch}");
                },
            ),
            // Ready for the first time: one event.
            Expect::new(
                "POST",
                "/apis/events.k8s.io/v1/namespaces/mail/events",
                json!(null),
            )
            .body(|event| assert_eq!(event["reason"], "Reconciled")),
        ];
        let action = run(user(&[FINALIZER], false), script, &users).await;
        assert_eq!(action, Action::requeue(Duration::from_secs(300)));
        let stored = users
            .find("alice@example.org")
            .await
            .expect("find")
            .expect("the user");
        assert_eq!(stored.senders.len(), 1);
        assert_eq!(
            users
                .owner("alice@example.org")
                .await
                .expect("owner")
                .as_deref(),
            Some("crd")
        );
    }

    #[tokio::test]
    async fn delete_removes_the_user_then_the_finalizer() {
        let db = TestDatabase::create().await;
        let users = UserStore::new(db.pool.clone(), LockoutPolicy::default());
        users
            .put_owned(
                Owner::Crd,
                "alice@example.org",
                Some("a long enough password"),
                false,
                &[],
            )
            .await
            .expect("the user");
        let script = vec![Expect::new("PATCH", USER, user(&[], true)).body(|patch| {
            let text = patch.to_string();
            assert!(
                text.contains("remove") && text.contains("/metadata/finalizers"),
                "{text}"
            );
        })];
        run(user(&[FINALIZER], true), script, &users).await;
        assert!(
            users
                .find("alice@example.org")
                .await
                .expect("find")
                .is_none()
        );
    }
}
