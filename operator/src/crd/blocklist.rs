//! `MailBlocklist`: entries of the control plane's blocklist (and allowlist).

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// A set of blocklist entries, judged by every ingress pod at connect, HELO, MAIL and RCPT.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "tern.dev",
    version = "v1alpha1",
    kind = "MailBlocklist",
    namespaced,
    shortname = "mbl",
    category = "tern",
    status = "MailBlocklistStatus",
    printcolumn = r#"{"name":"Entries","type":"integer","jsonPath":".status.entries"}"#,
    printcolumn = r#"{"name":"Ready","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].status"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct MailBlocklistSpec {
    #[schemars(length(max = 10000))]
    pub entries: Vec<BlocklistEntry>,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct BlocklistEntry {
    /// What the value is matched against.
    #[serde(rename = "type")]
    pub entry_type: EntryType,
    /// An address, network, HELO name, address or domain, as `type` says.
    #[schemars(length(min = 1, max = 320))]
    pub value: String,
    /// `Reject` (5xx), `Tempfail` (4xx) or `Allow` (skip the later checks).
    #[serde(default)]
    pub action: EntryAction,
    /// Logged, and said in the reply.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub reason: String,
    /// When the entry stops applying; unset: never.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires: Option<Time>,
}

#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
pub enum EntryType {
    Ip,
    Cidr,
    Helo,
    Sender,
    SenderDomain,
    Recipient,
    RecipientDomain,
}

#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
pub enum EntryAction {
    #[default]
    Reject,
    Tempfail,
    Allow,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct MailBlocklistStatus {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// How many entries are in the control plane.
    #[serde(default)]
    pub entries: u32,
}
