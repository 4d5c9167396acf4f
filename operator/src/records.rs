//! The DNS records a MailDomain needs published, and whether DNS serves them: MX (when the
//! operator knows the MX host), SPF, one DKIM record per live selector, and DMARC.

use std::time::Duration;

use tern_common::dns::{RecordType, Resolver};

use crate::crd::DnsRecord;

/// How long one record's question may take: a silent name server must not hold a reconcile.
const ASK: Duration = Duration::from_secs(3);

/// The records `domain` should publish, none yet known to be published.
pub fn desired(domain: &str, mx_host: Option<&str>, dkim: &[(String, String)]) -> Vec<DnsRecord> {
    let record = |record_type: &str, name: String, value: String| DnsRecord {
        record_type: record_type.to_owned(),
        name,
        value,
        published: false,
    };
    let mut records = Vec::new();
    if let Some(host) = mx_host {
        records.push(record("MX", domain.to_owned(), format!("10 {host}")));
    }
    // Mail from the domain leaves through Tern's MX hosts; nothing else may send as it.
    let spf = if mx_host.is_some() {
        "v=spf1 mx -all"
    } else {
        "v=spf1 -all"
    };
    records.push(record("TXT", domain.to_owned(), spf.to_owned()));
    for (name, value) in dkim {
        records.push(record("TXT", name.clone(), value.clone()));
    }
    // Reports first: `p=none` until the owner has seen them and moves to quarantine or reject.
    records.push(record(
        "TXT",
        format!("_dmarc.{domain}"),
        "v=DMARC1; p=none".to_owned(),
    ));
    records
}

/// Text compared as DNS carries it: spacing around `;` does not matter; case does (a key's
/// base64 is case-sensitive).
fn canonical(text: &str) -> String {
    text.split(';')
        .map(|part| part.split_whitespace().collect::<Vec<_>>().join(" "))
        .filter(|part| !part.is_empty())
        .collect::<Vec<_>>()
        .join(";")
}

/// Asks DNS for each record: published when an answer matches. An MX record matches by its
/// host (the preference is the owner's choice); an SPF or DMARC record by its text. A record
/// DNS could not be asked about stays unpublished.
pub async fn check(resolver: &Resolver, records: &mut [DnsRecord]) {
    for record in records.iter_mut() {
        let record_type = if record.record_type == "MX" {
            RecordType::MX
        } else {
            RecordType::TXT
        };
        let asked = tokio::time::timeout(ASK, resolver.texts(&record.name, record_type)).await;
        let Ok(Ok(answers)) = asked else {
            tracing::warn!(name = %record.name, ?record_type, "DNS did not answer; the record counts as unpublished");
            continue;
        };
        record.published = match record_type {
            RecordType::MX => {
                let host = record.value.split_whitespace().last().unwrap_or_default();
                answers.iter().any(|answer| {
                    answer
                        .split_whitespace()
                        .last()
                        .is_some_and(|found| found.eq_ignore_ascii_case(host))
                })
            }
            _ => answers
                .iter()
                .any(|answer| canonical(answer) == canonical(&record.value)),
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_records_of_a_domain() {
        let dkim = [(
            "s._domainkey.example.org".to_owned(),
            "v=DKIM1; k=ed25519; p=AAA".to_owned(),
        )];
        let records = desired("example.org", Some("mx.example.net"), &dkim);
        let shown: Vec<(&str, &str, &str)> = records
            .iter()
            .map(|r| (r.record_type.as_str(), r.name.as_str(), r.value.as_str()))
            .collect();
        assert_eq!(
            shown,
            [
                ("MX", "example.org", "10 mx.example.net"),
                ("TXT", "example.org", "v=spf1 mx -all"),
                (
                    "TXT",
                    "s._domainkey.example.org",
                    "v=DKIM1; k=ed25519; p=AAA"
                ),
                ("TXT", "_dmarc.example.org", "v=DMARC1; p=none"),
            ]
        );
        assert!(records.iter().all(|r| !r.published));
        assert_eq!(desired("example.org", None, &[])[0].value, "v=spf1 -all");
        assert_eq!(
            canonical("v=DKIM1;  k=rsa ;p=X"),
            canonical("v=DKIM1; k=rsa; p=X")
        );
        assert_ne!(
            canonical("v=DKIM1; k=rsa; p=X"),
            canonical("v=DKIM1; k=rsa; p=x")
        );
    }
}
