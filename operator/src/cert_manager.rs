//! MailCertificates made by cert-manager: for a MailCertificate with an `issuerRef`, the operator
//! applies a cert-manager `Certificate` of the same name, owned by the MailCertificate, for its
//! hostnames; cert-manager issues it into the Secret `<name>-tls`, which the operator then serves
//! like any TLS Secret (and follows through renewals, since Secrets are watched).

use kube::api::{ApiResource, DynamicObject, GroupVersionKind, Patch, PatchParams};
use kube::{Api, Client, Resource as _, ResourceExt as _};
use serde_json::json;

use crate::FIELD_MANAGER;
use crate::crd::{IssuerKind, IssuerRef, MailCertificate};
use crate::error::Error;

/// What applying the `Certificate` found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Requested {
    /// cert-manager has it; its `Ready` condition's message while it is not issued yet.
    Applied { not_ready: Option<String> },
    /// The cluster has no cert-manager `Certificate` kind: cert-manager is not installed.
    NoCertManager,
}

/// The Secret cert-manager issues `certificate` into.
pub fn secret_name(certificate: &MailCertificate) -> String {
    format!("{}-tls", certificate.name_any())
}

fn resource() -> ApiResource {
    ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("cert-manager.io", "v1", "Certificate"),
        "certificates",
    )
}

/// The cert-manager `Certificate` for `certificate`, issued by `issuer`.
pub fn desired(certificate: &MailCertificate, issuer: &IssuerRef) -> serde_json::Value {
    let kind = match issuer.kind.unwrap_or(IssuerKind::Issuer) {
        IssuerKind::Issuer => "Issuer",
        IssuerKind::ClusterIssuer => "ClusterIssuer",
    };
    json!({
        "apiVersion": "cert-manager.io/v1",
        "kind": "Certificate",
        "metadata": {
            "name": certificate.name_any(),
            // Deleted with its MailCertificate by Kubernetes' garbage collector.
            "ownerReferences": certificate.controller_owner_ref(&()).map(|owner| vec![owner]),
        },
        "spec": {
            "secretName": secret_name(certificate),
            "dnsNames": certificate.spec.hostnames,
            "issuerRef": {"name": issuer.name, "kind": kind, "group": "cert-manager.io"},
            // A renewal gets a new key, so a leaked key is good only until the next renewal.
            "privateKey": {"rotationPolicy": "Always"},
        },
    })
}

/// Applies the `Certificate` for `certificate` (server-side apply, so a change of hostnames or
/// issuer reaches cert-manager), and says how far cert-manager is.
pub async fn request(
    client: &Client,
    certificate: &MailCertificate,
    issuer: &IssuerRef,
) -> Result<Requested, Error> {
    let namespace = certificate.namespace().unwrap_or_default();
    let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), &namespace, &resource());
    let applied = api
        .patch(
            &certificate.name_any(),
            &PatchParams::apply(FIELD_MANAGER).force(),
            &Patch::Apply(desired(certificate, issuer)),
        )
        .await;
    match applied {
        Ok(object) => Ok(Requested::Applied {
            not_ready: not_ready(&object),
        }),
        Err(kube::Error::Api(status)) if status.code == 404 => Ok(Requested::NoCertManager),
        Err(error) => Err(error.into()),
    }
}

/// The message of the `Certificate`'s `Ready` condition unless it is `True`.
fn not_ready(object: &DynamicObject) -> Option<String> {
    let conditions = object.data["status"]["conditions"].as_array();
    let ready = conditions.and_then(|conditions| {
        conditions
            .iter()
            .find(|condition| condition["type"] == "Ready")
    });
    match ready {
        Some(ready) if ready["status"] == "True" => None,
        Some(ready) => Some(ready["message"].as_str().unwrap_or("not ready").to_owned()),
        None => Some("not issued yet".to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crd::MailCertificateSpec;

    #[test]
    fn the_certificate_asks_for_the_hostnames_from_the_issuer() {
        let mut certificate = MailCertificate::new(
            "mx",
            MailCertificateSpec {
                hostnames: vec!["mx.example.org".into(), "smtp.example.org".into()],
                secret_name: None,
                issuer_ref: None,
            },
        );
        certificate.metadata.namespace = Some("mail".into());
        certificate.metadata.uid = Some("u-1".into());
        let issuer = IssuerRef {
            name: "letsencrypt".into(),
            kind: Some(IssuerKind::ClusterIssuer),
        };
        let wanted = desired(&certificate, &issuer);
        assert_eq!(wanted["metadata"]["name"], "mx");
        assert_eq!(
            wanted["metadata"]["ownerReferences"][0]["kind"],
            "MailCertificate"
        );
        assert_eq!(wanted["metadata"]["ownerReferences"][0]["controller"], true);
        assert_eq!(wanted["spec"]["secretName"], "mx-tls");
        assert_eq!(
            wanted["spec"]["dnsNames"],
            json!(["mx.example.org", "smtp.example.org"])
        );
        assert_eq!(
            wanted["spec"]["issuerRef"],
            json!({"name": "letsencrypt", "kind": "ClusterIssuer", "group": "cert-manager.io"})
        );

        let issued = |status: serde_json::Value| {
            let mut object = DynamicObject::new("mx", &resource());
            object.data = json!({ "status": status });
            not_ready(&object)
        };
        assert_eq!(issued(json!({})), Some("not issued yet".into()));
        assert_eq!(
            issued(
                json!({"conditions": [{"type": "Ready", "status": "False", "message": "Issuing certificate as Secret does not exist"}]})
            ),
            Some("Issuing certificate as Secret does not exist".into())
        );
        assert_eq!(
            issued(json!({"conditions": [{"type": "Ready", "status": "True"}]})),
            None
        );
    }
}
