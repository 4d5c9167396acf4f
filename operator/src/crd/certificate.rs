//! `MailCertificate`: a certificate every ingress pod serves by SNI, from a TLS Secret or made by
//! cert-manager.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The certificate for `hostnames`, from exactly one source: an existing `kubernetes.io/tls`
/// Secret (`secretName`), or a cert-manager issuer (`issuerRef`) for which the operator makes
/// the cert-manager `Certificate` and follows its Secret.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "tern.dev",
    version = "v1alpha1",
    kind = "MailCertificate",
    namespaced,
    shortname = "mcert",
    category = "tern",
    status = "MailCertificateStatus",
    printcolumn = r#"{"name":"Hostnames","type":"string","jsonPath":".spec.hostnames"}"#,
    printcolumn = r#"{"name":"Not After","type":"date","jsonPath":".status.notAfter"}"#,
    printcolumn = r#"{"name":"Serving","type":"integer","jsonPath":".status.servingPods"}"#,
    printcolumn = r#"{"name":"Ready","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].status"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[x_kube(validation = Rule::new("has(self.secretName) != has(self.issuerRef)").message("set exactly one of secretName and issuerRef"))]
#[serde(rename_all = "camelCase")]
pub struct MailCertificateSpec {
    /// The names clients ask for by SNI (`mx.example.org`, `*.example.org`).
    #[schemars(length(min = 1, max = 100))]
    pub hostnames: Vec<String>,
    /// A `kubernetes.io/tls` Secret in this namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_name: Option<String>,
    /// A cert-manager Issuer or ClusterIssuer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issuer_ref: Option<IssuerRef>,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct IssuerRef {
    #[schemars(length(min = 1))]
    pub name: String,
    /// `Issuer` (the default) or `ClusterIssuer`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<IssuerKind>,
}

#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
pub enum IssuerKind {
    Issuer,
    ClusterIssuer,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct MailCertificateStatus {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub not_after: Option<Time>,
    /// SHA-256 of the leaf certificate, hex.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fingerprint: Option<String>,
    /// How many ingress pods serve this certificate now: those whose control-plane snapshot is
    /// at least as new as the certificate's last write.
    #[serde(default)]
    pub serving_pods: u32,
    /// The Secret's resourceVersion whose certificate is in the control plane.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_version: Option<String>,
    /// The control plane's revision of the certificate's last write.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revision: Option<i64>,
}
