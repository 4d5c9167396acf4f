//! The MailBlocklist reconciler: the resource's entries as one set of `crd` rows in the control
//! plane's blocklist (source `namespace/name`), replaced whole when the resource changes.

use std::sync::Arc;

use k8s_openapi::jiff::Timestamp;
use kube::runtime::controller::Action;
use kube::{Api, Client, ResourceExt as _};
use tern_common::control::{BlockAction, BlockKind, NewBlockEntry, Owner, PgControlStore};
use time::OffsetDateTime;

use crate::condition::{self, Outcome};
use crate::crd::{BlocklistEntry, EntryAction, EntryType, MailBlocklist, MailBlocklistStatus};
use crate::error::Error;
use crate::reconciler;

const FINALIZER: &str = "tern.dev/mailblocklist";

/// What the reconciler needs: the Kubernetes client, its event recorder and the control plane.
pub struct Context {
    pub client: Client,
    /// How often a settled resource is looked at again.
    pub resync: std::time::Duration,
    pub recorder: kube::runtime::events::Recorder,
    pub control: PgControlStore,
}

/// Runs the MailBlocklist controller until `shutdown` resolves.
pub async fn run(
    context: Arc<Context>,
    shutdown: impl Future<Output = ()> + Send + Sync + 'static,
) {
    let client = context.client.clone();
    let resync = context.resync;
    reconciler::run(
        &client,
        "MailBlocklist",
        context,
        reconcile,
        resync,
        None,
        shutdown,
    )
    .await;
}

/// The control plane's entries for `entries`; the first invalid one is named by its index.
pub fn desired(entries: &[BlocklistEntry]) -> Result<Vec<NewBlockEntry>, String> {
    entries
        .iter()
        .enumerate()
        .map(|(at, entry)| {
            let kind = match entry.entry_type {
                EntryType::Ip => BlockKind::Ip,
                EntryType::Cidr => BlockKind::Cidr,
                EntryType::Helo => BlockKind::Helo,
                EntryType::Sender => BlockKind::Sender,
                EntryType::SenderDomain => BlockKind::SenderDomain,
                EntryType::Recipient => BlockKind::Recipient,
                EntryType::RecipientDomain => BlockKind::RecipientDomain,
            };
            let action = match entry.action {
                EntryAction::Reject => BlockAction::Reject,
                EntryAction::Tempfail => BlockAction::Tempfail,
                EntryAction::Allow => BlockAction::Allow,
            };
            let expires = entry
                .expires
                .as_ref()
                .map(|time| {
                    OffsetDateTime::from_unix_timestamp_nanos(time.0.as_nanosecond())
                        .map_err(|error| format!("spec.entries[{at}].expires: {error}"))
                })
                .transpose()?;
            NewBlockEntry::new(kind, &entry.value, action, &entry.reason, expires)
                .map_err(|error| format!("spec.entries[{at}].{}: {}", error.field, error.reason))
        })
        .collect()
}

fn source(list: &MailBlocklist) -> String {
    format!(
        "{}/{}",
        list.namespace().unwrap_or_default(),
        list.name_any()
    )
}

async fn reconcile(list: Arc<MailBlocklist>, context: Arc<Context>) -> Result<Action, Error> {
    let context = &*context;
    reconciler::finalized(
        "MailBlocklist",
        &context.client,
        FINALIZER,
        list,
        |list, api| async move { apply(&list, &api, context).await },
        |list| async move { cleanup(&list, context).await },
    )
    .await
}

async fn apply(
    list: &MailBlocklist,
    api: &Api<MailBlocklist>,
    context: &Context,
) -> Result<Action, Error> {
    let previous = list.status.clone().unwrap_or_default();
    let (outcome, entries) = match desired(&list.spec.entries) {
        Err(message) => (
            Outcome::NotReady {
                reason: "InvalidEntry",
                message,
            },
            previous.entries,
        ),
        Ok(entries) => {
            let replaced = context
                .control
                .replace_blocks(Owner::Crd, &source(list), &entries)
                .await?;
            let outcome = if replaced.taken.is_empty() {
                Outcome::Ready
            } else {
                let taken: Vec<String> = replaced
                    .taken
                    .iter()
                    .map(|entry| format!("{} {}", entry.kind, entry.value))
                    .collect();
                Outcome::NotReady {
                    reason: "EntriesTaken",
                    message: format!(
                        "already in the blocklist from another writer, left out: {}",
                        taken.join(", ")
                    ),
                }
            };
            (outcome, u32::try_from(replaced.applied).unwrap_or(u32::MAX))
        }
    };
    let status = MailBlocklistStatus {
        conditions: vec![condition::ready(
            &outcome,
            list.metadata.generation,
            &previous.conditions,
            Timestamp::now(),
        )],
        observed_generation: list.metadata.generation,
        entries,
    };
    crate::status::apply(api, &list.name_any(), &status).await?;
    crate::events::on_transition(
        &context.recorder,
        list,
        &previous.conditions,
        &status.conditions[0],
    )
    .await;
    Ok(reconciler::again(outcome == Outcome::Ready, context.resync))
}

async fn cleanup(list: &MailBlocklist, context: &Context) -> Result<Action, Error> {
    context
        .control
        .replace_blocks(Owner::Crd, &source(list), &[])
        .await?;
    Ok(Action::await_change())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(entry_type: EntryType, value: &str) -> BlocklistEntry {
        BlocklistEntry {
            entry_type,
            value: value.into(),
            action: EntryAction::Tempfail,
            reason: "why".into(),
            expires: None,
        }
    }

    #[test]
    fn entries_are_normalised_and_a_bad_one_is_named() {
        let rows = desired(&[
            entry(EntryType::Cidr, "192.0.2.7/24"),
            entry(EntryType::Sender, "A@Example.ORG"),
        ])
        .expect("valid");
        assert_eq!(rows[0].value, "192.0.2.0/24");
        assert_eq!(
            (rows[0].kind, rows[0].action),
            (BlockKind::Cidr, BlockAction::Tempfail)
        );
        assert_eq!(rows[1].value, "a@example.org");
        let error = desired(&[
            entry(EntryType::Ip, "192.0.2.1"),
            entry(EntryType::Ip, "not an ip"),
        ])
        .expect_err("invalid");
        assert!(error.starts_with("spec.entries[1].value:"), "{error}");
    }
}

/// The exact calls the reconciler makes, against a scripted API (and the real blocklist).
#[cfg(test)]
mod scenarios {
    use std::time::Duration;

    use serde_json::json;
    use tern_testkit::TestDatabase;

    use super::*;
    use crate::mock_api::{self, Expect};

    const LIST: &str = "/apis/tern.dev/v1alpha1/namespaces/mail/mailblocklists/abuse";

    fn list(deleting: bool) -> serde_json::Value {
        let mut metadata = json!({
            "name": "abuse", "namespace": "mail", "uid": "u-2", "generation": 1,
            "resourceVersion": "4", "finalizers": [FINALIZER],
        });
        if deleting {
            metadata["deletionTimestamp"] = json!("2026-12-07T12:00:00Z");
        }
        json!({
            "apiVersion": "tern.dev/v1alpha1", "kind": "MailBlocklist", "metadata": metadata,
            "spec": {"entries": [
                {"type": "Cidr", "value": "192.0.2.0/24"},
                {"type": "SenderDomain", "value": "spam.example", "action": "Tempfail"},
            ]},
        })
    }

    async fn run(object: serde_json::Value, script: Vec<Expect>, control: &PgControlStore) {
        let (client, left) = mock_api::client(script);
        let context = Arc::new(Context {
            client: client.clone(),
            resync: Duration::from_secs(300),
            recorder: crate::events::recorder(client),
            control: control.clone(),
        });
        let object: MailBlocklist = serde_json::from_value(object).expect("a MailBlocklist");
        reconcile(Arc::new(object), context)
            .await
            .expect("reconciled");
        left.assert_done();
    }

    #[tokio::test]
    async fn apply_writes_the_entries_and_counts_them_in_the_status() {
        let db = TestDatabase::create().await;
        let control = PgControlStore::new(db.pool.clone(), None);
        let script = vec![
            Expect::new("PATCH", format!("{LIST}/status"), list(false)).body(|patch| {
                assert_eq!(patch["status"]["entries"], 2);
                assert_eq!(patch["status"]["conditions"][0]["status"], "True");
            }),
            Expect::new(
                "POST",
                "/apis/events.k8s.io/v1/namespaces/mail/events",
                json!(null),
            ),
        ];
        run(list(false), script, &control).await;
        let entries = control.blocklist().await.expect("blocklist");
        assert_eq!(entries.len(), 2);
        assert!(entries.iter().all(|entry| entry.owner == Owner::Crd));
    }

    #[tokio::test]
    async fn delete_removes_the_entries_then_the_finalizer() {
        let db = TestDatabase::create().await;
        let control = PgControlStore::new(db.pool.clone(), None);
        let entries = desired(
            &serde_json::from_value::<MailBlocklist>(list(false))
                .expect("list")
                .spec
                .entries,
        )
        .expect("entries");
        control
            .replace_blocks(Owner::Crd, "mail/abuse", &entries)
            .await
            .expect("the entries");
        let script = vec![Expect::new("PATCH", LIST, list(true)).body(|patch| {
            assert!(patch.to_string().contains("remove"), "{patch}");
        })];
        run(list(true), script, &control).await;
        assert!(control.blocklist().await.expect("blocklist").is_empty());
    }
}
