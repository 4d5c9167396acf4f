//! `MailDomain`: a domain Tern takes mail for, its route, and its DKIM keys.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// A domain Tern accepts mail for from anyone: `Local` (mailboxes behind Tern, delivered over
/// the route) or `Relay` (Tern is the domain's gateway or backup MX).
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "tern.dev",
    version = "v1alpha1",
    kind = "MailDomain",
    namespaced,
    shortname = "md",
    category = "tern",
    status = "MailDomainStatus",
    printcolumn = r#"{"name":"Domain","type":"string","jsonPath":".spec.domain"}"#,
    printcolumn = r#"{"name":"Kind","type":"string","jsonPath":".spec.kind"}"#,
    printcolumn = r#"{"name":"Ready","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].status"}"#,
    printcolumn = r#"{"name":"Selector","type":"string","jsonPath":".status.dkim.activeSelector"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct MailDomainSpec {
    /// The domain name; it cannot be changed (make another MailDomain instead).
    #[x_kube(validation = Rule::new("self == oldSelf").message("domain is immutable"))]
    #[x_kube(validation = Rule::new("self.matches('^([a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?\\\\.)*[a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?\\\\.?$')").message("domain must be a domain name: dot-separated letters, digits and inner hyphens"))]
    #[schemars(length(max = 253))]
    pub domain: String,
    /// `Local` or `Relay`.
    pub kind: DomainKind,
    /// The next hop in transport syntax (`lmtp:[mailstore]:24`, `smtp:[gateway]:25`); unset:
    /// by MX.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub route: Option<String>,
    /// DKIM signing for mail from this domain; unset: not signed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dkim: Option<DkimSpec>,
}

#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
pub enum DomainKind {
    Local,
    Relay,
}

/// How this domain's DKIM keys are made and rotated. The operator makes each key pair into a
/// Secret the MailDomain owns; the private key never leaves the cluster's Secrets and the
/// control plane.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("self.rotation != 'Every' || has(self.rotateDays)").message("rotateDays is required when rotation is Every"))]
#[x_kube(validation = Rule::new("!has(self.rotateDays) || !has(self.overlapDays) || self.overlapDays < self.rotateDays").message("overlapDays must be shorter than rotateDays"))]
pub struct DkimSpec {
    /// `RsaSha256` (2048 bits; every verifier knows it) or `Ed25519Sha256` (RFC 8463).
    #[serde(default)]
    pub algorithm: DkimAlgorithm,
    /// Selectors are this prefix and the date the key was made (`tern-20261207`).
    #[serde(default = "default_selector_prefix")]
    #[x_kube(validation = Rule::new("self.matches('^[a-z0-9]([a-z0-9-]{0,40}[a-z0-9])?$')").message("selectorPrefix must be lower-case letters, digits and inner hyphens, at most 42"))]
    pub selector_prefix: String,
    /// `Never` keeps one key; `Every` makes a new one every `rotateDays`.
    #[serde(default)]
    pub rotation: Rotation,
    /// Days between keys, with `rotation: Every`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub rotate_days: Option<u32>,
    /// Days the retiring key stays published after signing moved to the new one, so that mail
    /// signed just before the switch still verifies.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub overlap_days: Option<u32>,
}

fn default_selector_prefix() -> String {
    "tern".to_owned()
}

#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
pub enum DkimAlgorithm {
    #[default]
    RsaSha256,
    Ed25519Sha256,
}

#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
pub enum Rotation {
    #[default]
    Never,
    Every,
}

/// What the operator found and did.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct MailDomainStatus {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// The records to publish in DNS for this domain, and whether DNS serves them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub dns_records: Vec<DnsRecord>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dkim: Option<DkimStatus>,
}

/// One DNS record to publish.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DnsRecord {
    /// `MX` or `TXT`.
    #[serde(rename = "type")]
    pub record_type: String,
    pub name: String,
    pub value: String,
    /// Whether DNS answered with exactly this value when last asked.
    pub published: bool,
}

/// Where DKIM rotation stands.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DkimStatus {
    /// The selector mail is signed with now.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub active_selector: Option<String>,
    /// The next key's selector, published and waiting for DNS before signing moves to it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_selector: Option<String>,
    /// Selectors no longer signing, kept published until their overlap ends.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub retiring_selectors: Vec<String>,
    /// When the rotation takes its next step by itself: a new key made, or a retiring key
    /// removed. Unset with `rotation: Never` and nothing retiring, or while a next key waits
    /// for DNS.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_step_at: Option<Time>,
}
