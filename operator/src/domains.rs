//! The MailDomain reconciler: the domain's row in the control plane, owned by `crd`, so every
//! ingress pod takes mail for it (and every worker routes it) within a second of the change
//! notice; its DKIM keys, rotated (see [`crate::rotation`]), so the ingress signs its mail; and
//! the DNS records it should publish, checked against DNS at every reconcile.

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use k8s_openapi::jiff::Timestamp;
use kube::runtime::controller::Action;
use kube::runtime::events::EventType;
use kube::{Api, Client, ResourceExt as _};
use tern_common::control::{
    ControlError, Domain, DomainKind, Owner, PgControlStore, dkim_dns_name,
};
use tern_common::dns::Resolver;

use crate::condition::{self, Outcome};
use crate::crd::{self, DkimStatus, DnsRecord, MailDomain, MailDomainStatus};
use crate::dkim::{Keyring, StoredKey};
use crate::error::Error;
use crate::rotation::{self, Change, Phase};
use crate::{events, reconciler, records};

const FINALIZER: &str = "tern.dev/maildomain";

/// What the reconciler needs: the Kubernetes client and the control plane's writer.
pub struct Context {
    pub client: Client,
    /// How often a settled resource is looked at again.
    pub resync: std::time::Duration,
    pub recorder: kube::runtime::events::Recorder,
    pub control: PgControlStore,
    /// Where the records' publication is checked.
    pub resolver: Resolver,
    /// The MX host the domain's MX record names; unset: no MX record is proposed.
    pub mx_host: Option<String>,
}

/// Runs the MailDomain controller until `shutdown` resolves.
pub async fn run(
    context: Arc<Context>,
    shutdown: impl Future<Output = ()> + Send + Sync + 'static,
) {
    let client = context.client.clone();
    let resync = context.resync;
    reconciler::run(
        &client,
        "MailDomain",
        context,
        reconcile,
        resync,
        None,
        shutdown,
    )
    .await;
}

/// The control plane's row for `spec`. The name is normalised by the control plane's own rule;
/// one that is no domain name stays as written, and the control plane refuses it by name.
pub fn desired(spec: &crd::MailDomainSpec) -> Domain {
    Domain {
        name: Domain::normalise(&spec.domain).unwrap_or_else(|_| spec.domain.clone()),
        kind: match spec.kind {
            crd::DomainKind::Local => DomainKind::Local,
            crd::DomainKind::Relay => DomainKind::Relay,
        },
        route: spec.route.clone().filter(|route| !route.trim().is_empty()),
        owner: Owner::Crd,
    }
}

async fn reconcile(domain: Arc<MailDomain>, context: Arc<Context>) -> Result<Action, Error> {
    let context = &*context;
    reconciler::finalized(
        "MailDomain",
        &context.client,
        FINALIZER,
        domain,
        |domain, api| async move { apply(&domain, &api, context).await },
        |domain| async move { cleanup(&domain, context).await },
    )
    .await
}

async fn apply(
    domain: &MailDomain,
    api: &Api<MailDomain>,
    context: &Context,
) -> Result<Action, Error> {
    let previous = domain.status.clone().unwrap_or_default();
    let outcome = match context
        .control
        .put_domain(Owner::Crd, &desired(&domain.spec))
        .await
    {
        Ok(()) => Outcome::Ready,
        Err(error @ ControlError::Database(_)) => return Err(error.into()),
        Err(error) => {
            let reason = match &error {
                ControlError::OwnedBy(_) => "OwnedByAnotherWriter",
                _ => "Refused",
            };
            tracing::info!(domain = %domain.name_any(), reason, %error, "mail domain not ready");
            Outcome::NotReady {
                reason,
                message: format!("{}: {error}", domain.spec.domain),
            }
        }
    };
    // Its DKIM keys and the records to publish, once the domain is ours.
    let signing = if outcome == Outcome::Ready {
        signing(domain, context).await?
    } else {
        Signing {
            outcome,
            dkim: previous.dkim.clone(),
            dns_records: previous.dns_records.clone(),
            again: None,
            changes: Vec::new(),
        }
    };
    let now = Timestamp::now();
    let generation = domain.metadata.generation;
    let ready = condition::ready(&signing.outcome, generation, &previous.conditions, now);
    let status = MailDomainStatus {
        conditions: vec![
            ready.clone(),
            published(&signing.dns_records, generation, &previous.conditions, now),
        ],
        observed_generation: generation,
        dns_records: signing.dns_records,
        dkim: signing.dkim,
    };
    crate::status::apply(api, &domain.name_any(), &status).await?;
    for change in &signing.changes {
        let (reason, note) = rotation_event(change);
        tracing::info!(domain = %domain.name_any(), reason, note, "DKIM rotation");
        events::publish(&context.recorder, domain, EventType::Normal, reason, &note).await;
    }
    events::on_transition(&context.recorder, domain, &previous.conditions, &ready).await;
    let ready = signing.outcome == Outcome::Ready;
    Ok(match signing.again {
        Some(soon) if ready => Action::requeue(soon.min(context.resync)),
        _ => reconciler::again(ready, context.resync),
    })
}

/// What [`signing`] found and did.
struct Signing {
    outcome: Outcome,
    dkim: Option<DkimStatus>,
    dns_records: Vec<DnsRecord>,
    /// Sooner than the resync: a next key waiting for DNS, or a step falling due.
    again: Option<Duration>,
    changes: Vec<Change>,
}

/// The domain's keys moved on by the rotation (see [`crate::rotation`]) and put into the control
/// plane, or taken out of it when `spec.dkim` is unset; then the records to publish, checked in
/// DNS.
async fn signing(domain: &MailDomain, context: &Context) -> Result<Signing, Error> {
    let name = desired(&domain.spec).name;
    let Some(spec) = &domain.spec.dkim else {
        context
            .control
            .delete_dkim_keys_of(Owner::Crd, &name)
            .await?;
        let mut dns_records = records::desired(&name, context.mx_host.as_deref(), &[]);
        records::check(&context.resolver, &mut dns_records).await;
        return Ok(Signing {
            outcome: Outcome::Ready,
            dkim: None,
            dns_records,
            again: None,
            changes: Vec::new(),
        });
    };
    let secrets: Api<Secret> = Api::namespaced(
        context.client.clone(),
        &domain.namespace().unwrap_or_default(),
    );
    let keyring = Keyring::load(&secrets, domain).await?;

    // DNS first: whether it serves the next key's record decides the switch.
    let dkim_records = |keyring: &Keyring| -> Vec<(String, String)> {
        keyring
            .keys(&name)
            .iter()
            .map(StoredKey::dns_record)
            .collect()
    };
    let mut checked = records::desired(&name, context.mx_host.as_deref(), &dkim_records(&keyring));
    records::check(&context.resolver, &mut checked).await;
    let served = |selector: &str| {
        let record_name = dkim_dns_name(&name, selector);
        checked
            .iter()
            .any(|record| record.name == record_name && record.published)
    };
    let now = Timestamp::now();
    let (states, changes) = rotation::advance(keyring.states.clone(), spec, now, served);
    let keyring = keyring.store(&secrets, domain, states).await?;

    let outcome = into_control_plane(&context.control, &name, &keyring).await?;
    let mut dns_records =
        records::desired(&name, context.mx_host.as_deref(), &dkim_records(&keyring));
    for record in &mut dns_records {
        record.published = checked.iter().any(|seen| {
            seen == &DnsRecord {
                published: true,
                ..record.clone()
            }
        });
    }
    let selectors = |phase: Phase| {
        keyring
            .states
            .iter()
            .filter(move |key| key.phase == phase)
            .map(|key| key.selector.clone())
    };
    let next_step = rotation::next_due(&keyring.states, spec);
    let waiting = selectors(Phase::Next).next().is_some();
    let until_step = next_step.map(|at| {
        Duration::try_from(at.duration_since(now))
            .unwrap_or_default()
            .max(Duration::from_secs(1))
    });
    let again = match (waiting, until_step) {
        (true, _) => Some(reconciler::NOT_READY),
        (false, until) => until,
    };
    Ok(Signing {
        outcome,
        dkim: Some(DkimStatus {
            active_selector: selectors(Phase::Active).next(),
            next_selector: selectors(Phase::Next).next(),
            retiring_selectors: selectors(Phase::Retiring).collect(),
            next_step_at: next_step.map(Time),
        }),
        dns_records,
        again,
        changes,
    })
}

/// Puts the keyring's keys into the control plane, the signer first, and removes the keys of
/// `domain` the operator put there that the keyring no longer has.
async fn into_control_plane(
    control: &PgControlStore,
    domain: &str,
    keyring: &Keyring,
) -> Result<Outcome, Error> {
    let keys = keyring.keys(domain);
    for stored in &keys {
        match control
            .put_dkim_key(Owner::Crd, &stored.key, &stored.public_key, stored.signing)
            .await
        {
            Ok(_) => {}
            Err(error @ ControlError::Database(_)) => return Err(error.into()),
            Err(error) => {
                return Ok(Outcome::NotReady {
                    reason: "DkimKeyRefused",
                    message: format!("selector {}: {error}", stored.key.selector),
                });
            }
        }
    }
    for stale in control.dkim_keys(Some(domain)).await? {
        let kept = keys
            .iter()
            .any(|stored| stored.key.selector == stale.selector);
        if stale.owner == Owner::Crd && !kept {
            match control
                .delete_dkim_key(Owner::Crd, domain, &stale.selector)
                .await
            {
                Ok(()) | Err(ControlError::NotFound) => {}
                Err(error) => return Err(error.into()),
            }
        }
    }
    Ok(Outcome::Ready)
}

/// The `DnsPublished` condition: whether DNS serves every record the domain should publish.
fn published(
    records: &[DnsRecord],
    generation: Option<i64>,
    previous: &[Condition],
    now: Timestamp,
) -> Condition {
    let missing: Vec<String> = records
        .iter()
        .filter(|record| !record.published)
        .map(|record| format!("{} {}", record.record_type, record.name))
        .collect();
    let (status, reason, message) = if missing.is_empty() {
        (true, "Published", "DNS serves every record".to_owned())
    } else {
        (
            false,
            "NotPublished",
            format!("DNS does not serve: {}", missing.join(", ")),
        )
    };
    condition::condition(
        "DnsPublished",
        status,
        reason,
        message,
        generation,
        previous,
        now,
    )
}

/// The event for one step of the rotation: its reason and note.
fn rotation_event(change: &Change) -> (&'static str, String) {
    match change {
        Change::Made {
            selector,
            signing: true,
        } => ("DkimKeyMade", format!("made {selector}; signing with it")),
        Change::Made {
            selector,
            signing: false,
        } => (
            "DkimKeyMade",
            format!("made {selector}; signing moves to it once DNS serves its record"),
        ),
        Change::Switched {
            from: Some(from),
            to,
        } => (
            "DkimSigningSwitched",
            format!("signing with {to}; {from} stays published for the overlap"),
        ),
        Change::Switched { from: None, to } => {
            ("DkimSigningSwitched", format!("signing with {to}"))
        }
        Change::Removed { selector } => (
            "DkimKeyRemoved",
            format!("{selector} is no longer published"),
        ),
    }
}

async fn cleanup(domain: &MailDomain, context: &Context) -> Result<Action, Error> {
    let name = desired(&domain.spec).name;
    context
        .control
        .delete_dkim_keys_of(Owner::Crd, &name)
        .await?;
    match context.control.delete_domain(Owner::Crd, &name).await {
        // Gone already, or not ours: the finalizer goes, another writer's row stays.
        Ok(()) | Err(ControlError::NotFound | ControlError::OwnedBy(_)) => {
            Ok(Action::await_change())
        }
        Err(error) => Err(Error::Control(error)),
    }
}

#[cfg(test)]
mod scenarios;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_row_follows_the_spec() {
        let spec = crd::MailDomainSpec {
            domain: "Example.ORG.".into(),
            kind: crd::DomainKind::Relay,
            route: Some(" ".into()),
            dkim: None,
        };
        let row = desired(&spec);
        assert_eq!(row.name, "example.org");
        assert_eq!(row.kind, DomainKind::Relay);
        assert_eq!(row.route, None, "a blank route is no route");
        assert_eq!(row.owner, Owner::Crd);
    }
}
