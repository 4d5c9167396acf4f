//! The MailDomain reconciler: the domain's row in the control plane, owned by `crd`, so every
//! ingress pod takes mail for it (and every worker routes it) within a second of the change
//! notice; its DKIM key, so the ingress signs its mail; and the DNS records it should publish,
//! checked against DNS at every reconcile.

use std::sync::Arc;

use k8s_openapi::jiff::Timestamp;
use kube::runtime::controller::Action;
use kube::{Api, Client, ResourceExt as _};
use tern_common::control::{ControlError, Domain, DomainKind, Owner, PgControlStore};
use tern_common::dns::Resolver;

use crate::condition::{self, Outcome};
use crate::crd::{self, DkimStatus, DnsRecord, MailDomain, MailDomainStatus};
use crate::error::Error;
use crate::{dkim, reconciler, records};

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
    reconciler::run(&client, context, reconcile, error_policy, None, shutdown).await;
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

fn error_policy(domain: Arc<MailDomain>, error: &Error, context: Arc<Context>) -> Action {
    reconciler::retry("MailDomain", &*domain, error, context.resync)
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
    // Its DKIM key and the records to publish, once the domain is ours.
    let (outcome, dkim, dns_records) = if outcome == Outcome::Ready {
        signing(domain, context).await?
    } else {
        (outcome, previous.dkim.clone(), previous.dns_records.clone())
    };
    let status = MailDomainStatus {
        conditions: vec![condition::ready(
            &outcome,
            domain.metadata.generation,
            &previous.conditions,
            Timestamp::now(),
        )],
        observed_generation: domain.metadata.generation,
        dns_records,
        dkim,
    };
    crate::status::apply(api, &domain.name_any(), &status).await?;
    crate::events::on_transition(
        &context.recorder,
        domain,
        &previous.conditions,
        &status.conditions[0],
    )
    .await;
    Ok(reconciler::again(outcome == Outcome::Ready, context.resync))
}

/// The domain's signing key (made into its Secret the first time) put into the control plane,
/// or its keys taken out when `spec.dkim` is unset; then the records to publish, checked in DNS.
async fn signing(
    domain: &MailDomain,
    context: &Context,
) -> Result<(Outcome, Option<DkimStatus>, Vec<DnsRecord>), Error> {
    let name = desired(&domain.spec).name;
    let mut outcome = Outcome::Ready;
    let mut dkim_records = Vec::new();
    let status = match &domain.spec.dkim {
        None => {
            context
                .control
                .delete_dkim_keys_of(Owner::Crd, &name)
                .await?;
            None
        }
        Some(spec) => {
            let stored = dkim::key(&context.client, domain, &name, spec).await?;
            match context
                .control
                .put_dkim_key(Owner::Crd, &stored.key, &stored.public_key, true)
                .await
            {
                Ok(summary) => dkim_records.push((summary.dns_name(), summary.dns_txt())),
                Err(error @ ControlError::Database(_)) => return Err(error.into()),
                Err(error) => {
                    outcome = Outcome::NotReady {
                        reason: "DkimKeyRefused",
                        message: format!("selector {}: {error}", stored.key.selector),
                    };
                }
            }
            Some(DkimStatus {
                active_selector: Some(stored.key.selector),
                ..DkimStatus::default()
            })
        }
    };
    let mut dns_records = records::desired(&name, context.mx_host.as_deref(), &dkim_records);
    records::check(&context.resolver, &mut dns_records).await;
    Ok((outcome, status, dns_records))
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
