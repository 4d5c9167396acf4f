//! `MailUser`: a login for SMTP AUTH whose password lives in a Secret.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// A user who may authenticate with SMTP AUTH on the submission listeners. The operator hashes
/// the password from the Secret with argon2id, as `tern user` does, and follows the Secret's
/// changes; the plain password is never stored or logged.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "tern.dev",
    version = "v1alpha1",
    kind = "MailUser",
    namespaced,
    shortname = "mu",
    category = "tern",
    status = "MailUserStatus",
    printcolumn = r#"{"name":"Login","type":"string","jsonPath":".spec.login"}"#,
    printcolumn = r#"{"name":"Enabled","type":"boolean","jsonPath":".spec.enabled"}"#,
    printcolumn = r#"{"name":"Ready","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].status"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct MailUserSpec {
    /// The login, an address (`alice@example.org`); it cannot be changed.
    #[x_kube(validation = Rule::new("self == oldSelf").message("login is immutable"))]
    #[x_kube(validation = Rule::new("self.matches('^[^@\\\\s]+@[^@\\\\s]+$')").message("login must be an address, local@domain"))]
    #[schemars(length(max = 320))]
    pub login: String,
    /// The Secret key holding the password, in this namespace.
    pub password_secret_ref: SecretKeyRef,
    /// A disabled user cannot authenticate.
    #[serde(default = "enabled")]
    pub enabled: bool,
    /// Senders the user may use in MAIL FROM besides its login: addresses, or `@domain` for a
    /// whole domain.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub allowed_senders: Vec<String>,
}

fn enabled() -> bool {
    true
}

/// A key of a Secret in the resource's namespace.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
pub struct SecretKeyRef {
    #[schemars(length(min = 1))]
    pub name: String,
    #[schemars(length(min = 1))]
    pub key: String,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct MailUserStatus {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// The Secret's resourceVersion whose password is in force, so a change is noticed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_version: Option<String>,
}
