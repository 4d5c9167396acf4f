//! The policy document: the policy checks' settings as control-plane data, changed through the
//! API (and later the operator) and followed by every ingress pod like the rest of the control
//! plane. Each field, when set, replaces the pod's environment setting of the same name
//! (`spf` ↔ `TERN_INGRESS_SPF`); unset fields keep the environment's. The values are checked
//! here, once, for every writer; the pod checks the combination with its own settings again and
//! keeps its previous policy if that fails.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use sqlx::{Postgres, Transaction};
use time::OffsetDateTime;

use super::model::{Owner, ParseError};
use super::store::{ControlError, PgControlStore, owned_by};
use crate::checks::Checks;
use crate::dnsbl;
use crate::ratelimit::Limit;

/// What Tern does with SPF.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SpfMode {
    Off,
    /// Check and record in `Authentication-Results:`, never refuse.
    Record,
    /// Check, record, and refuse `fail` (defer `temperror`).
    Reject,
}

/// What Tern does with a domain's DMARC policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DmarcMode {
    Off,
    /// Evaluate and record only.
    Record,
    /// Also mark failing mail of `p=quarantine` and `p=reject` domains with a header.
    Quarantine,
    /// Also refuse failing mail of `p=reject` domains (`550 5.7.1`) and mark `p=quarantine`.
    Reject,
}

macro_rules! mode_words {
    ($name:ident { $($variant:ident => $word:literal),+ }) => {
        impl $name {
            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $word),+ }
            }
        }

        impl FromStr for $name {
            type Err = String;
            fn from_str(text: &str) -> Result<Self, String> {
                match text.trim().to_ascii_lowercase().as_str() {
                    $($word => Ok($name::$variant),)+
                    other => Err(format!("'{other}' is not one of {}", [$($word),+].join(", "))),
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

mode_words!(SpfMode { Off => "off", Record => "record", Reject => "reject" });
mode_words!(DmarcMode { Off => "off", Record => "record", Quarantine => "quarantine", Reject => "reject" });

/// The policy checks' settings that the control plane may set; `None`: the pod's environment
/// setting of the same name applies.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyDocument {
    /// SPF at MAIL for port 25 strangers.
    pub spf: Option<SpfMode>,
    /// DKIM (and ARC) verification at the end of data.
    pub dkim_verify: Option<bool>,
    /// DMARC at the end of data (turns on DKIM verification and SPF recording).
    pub dmarc: Option<DmarcMode>,
    /// DNS blocklists and allowlists, each in postscreen's `zone[=filter][*weight]` form; an
    /// empty list asks none.
    pub dnsbl_sites: Option<Vec<String>>,
    /// Listings must weigh this much to refuse a client (at least 1).
    pub dnsbl_threshold: Option<i32>,
    /// The port 25 role's silence before its greeting, to catch early talkers (0: none).
    pub greet_delay_seconds: Option<u32>,
    /// Greylisting of port 25 strangers' recipients.
    pub greylist: Option<bool>,
    /// How long a new triplet is deferred.
    pub greylist_delay_seconds: Option<u32>,
    /// Cluster-wide limits as `COUNT/PERIOD` (`200/1h`); an empty string removes the limit.
    pub rate_limit_connections: Option<String>,
    pub rate_limit_client: Option<String>,
    pub rate_limit_recipient_domain: Option<String>,
    pub rate_limit_user: Option<String>,
    pub rate_limit_sender_domain: Option<String>,
    /// The reputation checks each listener role runs on strangers (`["dnsbl", "spf"]`); see
    /// [`Checks`]. A check listed here still has to be turned on by its own setting.
    pub checks_smtp: Option<Checks>,
    pub checks_submission: Option<Checks>,
    pub checks_submissions: Option<Checks>,
}

impl PolicyDocument {
    /// Checks every value set; the error names the field.
    pub fn validate(&self) -> Result<(), ParseError> {
        if let Some(sites) = &self.dnsbl_sites {
            for (at, site) in sites.iter().enumerate() {
                if site.contains(',') {
                    return Err(ParseError::new(
                        "dnsbl_sites",
                        format!("entry {at} holds a comma: give one site per entry"),
                    ));
                }
                dnsbl::parse_sites(site).map_err(|reason| {
                    ParseError::new("dnsbl_sites", format!("entry {at}: {reason}"))
                })?;
            }
        }
        if let Some(threshold) = self.dnsbl_threshold
            && threshold < 1
        {
            return Err(ParseError::new(
                "dnsbl_threshold",
                "must be at least 1 (a lower one refuses clients no list names)",
            ));
        }
        if self.greylist_delay_seconds == Some(0) {
            return Err(ParseError::new(
                "greylist_delay_seconds",
                "must be greater than zero",
            ));
        }
        for (field, limit) in self.rate_limits() {
            if let Some(text) = limit
                && !text.trim().is_empty()
            {
                text.parse::<Limit>()
                    .map_err(|reason| ParseError::new(field, reason))?;
            }
        }
        Ok(())
    }

    /// The rate-limit fields with their names.
    pub fn rate_limits(&self) -> [(&'static str, Option<&str>); 5] {
        [
            (
                "rate_limit_connections",
                self.rate_limit_connections.as_deref(),
            ),
            ("rate_limit_client", self.rate_limit_client.as_deref()),
            (
                "rate_limit_recipient_domain",
                self.rate_limit_recipient_domain.as_deref(),
            ),
            ("rate_limit_user", self.rate_limit_user.as_deref()),
            (
                "rate_limit_sender_domain",
                self.rate_limit_sender_domain.as_deref(),
            ),
        ]
    }
}

/// The stored document and who wrote it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredPolicy {
    pub document: PolicyDocument,
    pub owner: Owner,
    pub updated_at: OffsetDateTime,
}

impl PgControlStore {
    /// The policy document, if one was written.
    pub async fn policy(&self) -> Result<Option<StoredPolicy>, ControlError> {
        let mut tx = self.pool().begin().await?;
        read(&mut tx).await
    }

    /// Replaces the document, when there is none or `owner` wrote it.
    pub async fn put_policy(
        &self,
        owner: Owner,
        document: &PolicyDocument,
    ) -> Result<StoredPolicy, ControlError> {
        document.validate()?;
        let json = serde_json::to_value(document).map_err(|error| {
            ControlError::Invalid(ParseError::new("document", error.to_string()))
        })?;
        let mut tx = self.pool().begin().await?;
        let existing: Option<String> = sqlx::query_scalar("SELECT owner FROM policy FOR UPDATE")
            .fetch_optional(&mut *tx)
            .await?;
        owned_by(existing.as_deref(), owner)?;
        sqlx::query(
            "INSERT INTO policy (document, owner) VALUES ($1, $2)
             ON CONFLICT (singleton) DO UPDATE SET document = $1, updated_at = now()",
        )
        .bind(json)
        .bind(owner.as_str())
        .execute(&mut *tx)
        .await?;
        self.commit(tx).await?;
        self.policy().await?.ok_or(ControlError::NotFound)
    }

    /// Removes the document: every pod goes back to its environment settings.
    pub async fn delete_policy(&self, owner: Owner) -> Result<(), ControlError> {
        let mut tx = self.pool().begin().await?;
        let existing: Option<String> = sqlx::query_scalar("SELECT owner FROM policy FOR UPDATE")
            .fetch_optional(&mut *tx)
            .await?;
        owned_by(
            Some(existing.as_deref().ok_or(ControlError::NotFound)?),
            owner,
        )?;
        sqlx::query("DELETE FROM policy").execute(&mut *tx).await?;
        self.commit(tx).await
    }
}

/// The stored document, for the snapshot and the API.
pub(super) async fn read(
    tx: &mut Transaction<'static, Postgres>,
) -> Result<Option<StoredPolicy>, ControlError> {
    let row: Option<(serde_json::Value, String, OffsetDateTime)> =
        sqlx::query_as("SELECT document, owner, updated_at FROM policy")
            .fetch_optional(&mut **tx)
            .await?;
    row.map(|(document, owner, updated_at)| {
        let document = understood(document).map_err(|error| {
            ControlError::Invalid(ParseError::new("document", error.to_string()))
        })?;
        Ok(StoredPolicy {
            document,
            owner: owner.parse()?,
            updated_at,
        })
    })
    .transpose()
}

/// The stored document as this version understands it. A field written by a newer version is
/// left out with a warning rather than failing the whole control-plane read, which would keep a
/// pod on a stale snapshot during a rolling upgrade.
fn understood(stored: serde_json::Value) -> Result<PolicyDocument, serde_json::Error> {
    let mut stored = match serde_json::from_value(stored.clone()) {
        Ok(document) => return Ok(document),
        Err(_) => stored,
    };
    // Every field this version knows, serialised as null when unset.
    let known = serde_json::to_value(PolicyDocument::default())?;
    if let (serde_json::Value::Object(fields), serde_json::Value::Object(known)) =
        (&mut stored, &known)
    {
        let unknown: Vec<String> = fields
            .keys()
            .filter(|key| !known.contains_key(*key))
            .cloned()
            .collect();
        if !unknown.is_empty() {
            tracing::warn!(fields = ?unknown, "policy document fields this version does not know are left out");
            fields.retain(|key, _| known.contains_key(key));
        }
    }
    serde_json::from_value(stored)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_newer_writers_fields_are_left_out_not_fatal() {
        let stored = serde_json::json!({"spf": "reject", "from_the_future": true});
        let document = understood(stored).expect("understood");
        assert_eq!(document.spf, Some(SpfMode::Reject));
        // A known field of the wrong type is still an error.
        assert!(understood(serde_json::json!({"spf": 7})).is_err());
    }

    #[test]
    fn each_bad_value_names_its_field() {
        let cases = [
            (
                PolicyDocument {
                    dnsbl_sites: Some(vec!["zen.example*2".into(), "bad zone!".into()]),
                    ..Default::default()
                },
                "dnsbl_sites",
            ),
            (
                PolicyDocument {
                    dnsbl_sites: Some(vec!["a.example,b.example".into()]),
                    ..Default::default()
                },
                "dnsbl_sites",
            ),
            (
                PolicyDocument {
                    dnsbl_threshold: Some(0),
                    ..Default::default()
                },
                "dnsbl_threshold",
            ),
            (
                PolicyDocument {
                    greylist_delay_seconds: Some(0),
                    ..Default::default()
                },
                "greylist_delay_seconds",
            ),
            (
                PolicyDocument {
                    rate_limit_user: Some("lots".into()),
                    ..Default::default()
                },
                "rate_limit_user",
            ),
        ];
        for (document, field) in cases {
            assert_eq!(document.validate().expect_err(field).field, field);
        }
        let good = PolicyDocument {
            spf: Some(SpfMode::Reject),
            dnsbl_sites: Some(vec!["zen.example*2".into(), "wl.example*-1".into()]),
            rate_limit_client: Some(String::new()),
            rate_limit_user: Some("100/1h".into()),
            ..Default::default()
        };
        good.validate().expect("valid");
    }

    #[test]
    fn the_document_is_plain_json_with_modes_as_words() {
        let document: PolicyDocument =
            serde_json::from_str(r#"{"spf": "reject", "dmarc": "quarantine"}"#).expect("json");
        assert_eq!(document.spf, Some(SpfMode::Reject));
        assert_eq!(document.dmarc, Some(DmarcMode::Quarantine));
        assert!(serde_json::from_str::<PolicyDocument>(r#"{"spf": "maybe"}"#).is_err());
        assert!(serde_json::from_str::<PolicyDocument>(r#"{"color": 1}"#).is_err());
        assert_eq!("Record".parse::<SpfMode>(), Ok(SpfMode::Record));
        let document: PolicyDocument =
            serde_json::from_str(r#"{"checks_submission": ["connection_rate", "dnsbl"]}"#)
                .expect("json");
        assert_eq!(
            document.checks_submission.map(|checks| checks.to_string()),
            Some("dnsbl,connection_rate".to_owned())
        );
        assert!(serde_json::from_str::<PolicyDocument>(r#"{"checks_smtp": ["rbl"]}"#).is_err());
    }
}
