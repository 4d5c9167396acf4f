//! The MailCertificate reconciler: the certificate from a `kubernetes.io/tls` Secret (named, or
//! issued by cert-manager: see [`crate::cert_manager`]) put into the control plane (owned by `crd`, named `crd.<namespace>.<name>`), which every ingress pod serves
//! by SNI; the status says until when it is valid, its fingerprint, and how many ingress pods
//! serve it already. Secrets are watched, so a renewed certificate is taken within seconds.

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use kube::runtime::controller::Action;
use kube::{Api, Client, ResourceExt as _};
use tern_common::control::heartbeat::{self, Processes};
use tern_common::control::{ControlError, NewCertificate, Owner, PgControlStore, leaf_fingerprint};

use crate::cert_manager::{self, Requested};
use crate::condition::{self, Outcome};
use crate::crd::{MailCertificate, MailCertificateStatus};
use crate::error::Error;
use crate::reconciler;

const FINALIZER: &str = "tern.dev/mailcertificate";
/// How soon the count of serving pods is looked at again while some have not caught up.
const CATCHING_UP: Duration = Duration::from_secs(2);

/// What the reconciler needs: Kubernetes, the control plane, and the pods' heartbeats.
pub struct Context {
    pub client: Client,
    /// How often a settled resource is looked at again.
    pub resync: std::time::Duration,
    pub recorder: kube::runtime::events::Recorder,
    pub control: PgControlStore,
    pub processes: Processes,
}

/// Runs the MailCertificate controller until `shutdown` resolves; a Secret's change reconciles
/// the certificates made from it.
pub async fn run(
    context: Arc<Context>,
    shutdown: impl Future<Output = ()> + Send + Sync + 'static,
) {
    let client = context.client.clone();
    let resync = context.resync;
    reconciler::run(
        &client,
        "MailCertificate",
        context,
        reconcile,
        resync,
        Some(|certificate: &MailCertificate| Some(secret_of(certificate))),
        shutdown,
    )
    .await;
}

/// The Secret the certificate is read from: the one named, or the one cert-manager issues into.
pub fn secret_of(certificate: &MailCertificate) -> String {
    match &certificate.spec.secret_name {
        Some(name) => name.clone(),
        None => cert_manager::secret_name(certificate),
    }
}

/// The control plane's name for a resource's certificate.
pub fn stored_name(certificate: &MailCertificate) -> String {
    format!(
        "crd.{}.{}",
        certificate.namespace().unwrap_or_default(),
        certificate.name_any()
    )
}

/// Whether `served` (the certificate's names) covers `wanted`: exactly, or by a wildcard for
/// one label (`*.example.org` covers `mx.example.org`, not `example.org`).
pub fn covers(served: &[String], wanted: &str) -> bool {
    let wanted = wanted.to_ascii_lowercase();
    served.iter().any(|name| {
        let name = name.to_ascii_lowercase();
        match name.strip_prefix("*.") {
            Some(parent) => wanted
                .split_once('.')
                .is_some_and(|(label, rest)| !label.is_empty() && rest == parent),
            None => name == wanted,
        }
    })
}

async fn reconcile(
    certificate: Arc<MailCertificate>,
    context: Arc<Context>,
) -> Result<Action, Error> {
    let context = &*context;
    reconciler::finalized(
        "MailCertificate",
        &context.client,
        FINALIZER,
        certificate,
        |certificate, api| async move { apply(&certificate, &api, context).await },
        |certificate| async move { cleanup(&certificate, context).await },
    )
    .await
}

async fn apply(
    certificate: &MailCertificate,
    api: &Api<MailCertificate>,
    context: &Context,
) -> Result<Action, Error> {
    let previous = certificate.status.clone().unwrap_or_default();
    let mut status = MailCertificateStatus {
        observed_generation: certificate.metadata.generation,
        ..previous.clone()
    };
    let outcome = match put(certificate, &previous, context, &mut status).await {
        Ok(outcome) => outcome,
        Err(Error::Secret(message)) => Outcome::NotReady {
            reason: "SecretUnusable",
            message,
        },
        Err(Error::Control(
            error @ (ControlError::Invalid(_) | ControlError::OwnedBy(_) | ControlError::Exists(_)),
        )) => {
            let reason = match error {
                ControlError::Invalid(_) => "InvalidCertificate",
                _ => "OwnedByAnotherWriter",
            };
            Outcome::NotReady {
                reason,
                message: error.to_string(),
            }
        }
        Err(error) => return Err(error),
    };
    // The pods that run the certificate's revision or a later one serve it.
    let mut catching_up = false;
    if let Some(revision) = status.revision {
        let ingresses: Vec<_> = context
            .processes
            .list(heartbeat::EVERY * 3)
            .await
            .map_err(|error| Error::Control(error.into()))?
            .into_iter()
            .filter(|process| process.component == "ingress")
            .collect();
        let serving = ingresses
            .iter()
            .filter(|pod| pod.revision >= revision)
            .count();
        catching_up = serving < ingresses.len();
        status.serving_pods = u32::try_from(serving).unwrap_or(u32::MAX);
    }
    status.conditions = vec![condition::ready(
        &outcome,
        certificate.metadata.generation,
        &previous.conditions,
        Timestamp::now(),
    )];
    crate::status::apply(api, &certificate.name_any(), &status).await?;
    crate::events::on_transition(
        &context.recorder,
        certificate,
        &previous.conditions,
        &status.conditions[0],
    )
    .await;
    Ok(if catching_up {
        Action::requeue(CATCHING_UP)
    } else {
        reconciler::again(outcome == Outcome::Ready, context.resync)
    })
}

/// Writes the certificate when its Secret changed or its row is missing; fills `status` with
/// what the stored certificate says.
async fn put(
    certificate: &MailCertificate,
    previous: &MailCertificateStatus,
    context: &Context,
    status: &mut MailCertificateStatus,
) -> Result<Outcome, Error> {
    let namespace = certificate.namespace().unwrap_or_default();
    // From cert-manager: the Certificate asked for first, its Secret once issued.
    let mut issuing = None;
    if let Some(issuer) = &certificate.spec.issuer_ref {
        match cert_manager::request(&context.client, certificate, issuer).await? {
            Requested::NoCertManager => {
                return Ok(Outcome::NotReady {
                    reason: "CertManagerMissing",
                    message: "spec.issuerRef needs cert-manager: the cluster has no \
                              certificates.cert-manager.io"
                        .into(),
                });
            }
            Requested::Applied { not_ready } => issuing = not_ready,
        }
    }
    let secret_name = secret_of(certificate);
    let secrets: Api<Secret> = Api::namespaced(context.client.clone(), &namespace);
    let Some(secret) = secrets.get_opt(&secret_name).await? else {
        if certificate.spec.issuer_ref.is_some() {
            return Ok(Outcome::NotReady {
                reason: "Issuing",
                message: format!(
                    "cert-manager has not issued {namespace}/{secret_name} yet: {}",
                    issuing.unwrap_or_else(|| "no reason given".into())
                ),
            });
        }
        return Err(Error::Secret(format!(
            "Secret {namespace}/{secret_name} does not exist"
        )));
    };
    let version = secret.resource_version().unwrap_or_default();
    let name = stored_name(certificate);
    let stored = match context.control.certificate(&name).await {
        Ok(stored) => Some(stored),
        Err(ControlError::NotFound) => None,
        Err(error) => return Err(error.into()),
    };
    let summary = match stored {
        Some(stored) if previous.secret_version.as_deref() == Some(version.as_str()) => stored,
        stored => {
            let text = |key: &str| -> Result<String, Error> {
                let bytes = secret
                    .data
                    .as_ref()
                    .and_then(|data| data.get(key))
                    .ok_or_else(|| {
                        Error::Secret(format!("Secret {namespace}/{secret_name} has no {key}"))
                    })?;
                String::from_utf8(bytes.0.clone()).map_err(|_| {
                    Error::Secret(format!(
                        "{key} of Secret {namespace}/{secret_name} is not PEM"
                    ))
                })
            };
            let new = NewCertificate {
                name: name.clone(),
                chain_pem: text("tls.crt")?,
                key_pem: text("tls.key")?,
            };
            let summary = match stored {
                Some(_) => {
                    context
                        .control
                        .replace_certificate(Owner::Crd, &new)
                        .await?
                }
                None => context.control.add_certificate(Owner::Crd, &new).await?,
            };
            status.fingerprint = leaf_fingerprint(&new.chain_pem);
            status.revision = Some(context.control.revision().await?);
            status.secret_version = Some(version);
            summary
        }
    };
    status.not_after = Timestamp::from_second(summary.facts.not_after.unix_timestamp())
        .ok()
        .map(Time);
    let uncovered: Vec<&String> = certificate
        .spec
        .hostnames
        .iter()
        .filter(|wanted| !covers(&summary.facts.hostnames, wanted))
        .collect();
    if uncovered.is_empty() {
        Ok(Outcome::Ready)
    } else {
        Ok(Outcome::NotReady {
            reason: "HostnamesNotCovered",
            message: format!(
                "the certificate names {:?}, not {uncovered:?}",
                summary.facts.hostnames
            ),
        })
    }
}

async fn cleanup(certificate: &MailCertificate, context: &Context) -> Result<Action, Error> {
    match context
        .control
        .delete_certificate(Owner::Crd, &stored_name(certificate))
        .await
    {
        Ok(()) | Err(ControlError::NotFound | ControlError::OwnedBy(_)) => {
            Ok(Action::await_change())
        }
        Err(error) => Err(error.into()),
    }
}

#[cfg(test)]
mod scenarios;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcards_cover_one_label() {
        let served = ["*.example.org".to_owned(), "example.net".to_owned()];
        assert!(covers(&served, "mx.example.org"));
        assert!(covers(&served, "MX.Example.ORG"));
        assert!(!covers(&served, "example.org"));
        assert!(!covers(&served, "a.mx.example.org"));
        assert!(covers(&served, "example.net"));
        assert!(!covers(&served, "mx.example.net"));
    }
}
