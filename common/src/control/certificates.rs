//! Certificates in the control plane: checked once when written, then served by SNI.
//!
//! A chain and key are accepted only when the ingress could serve them: PEM that parses as
//! X.509, a leaf that names at least one DNS host (clients match `subjectAltName`, never the
//! common name), not expired, and a private key that belongs to the leaf. What the listing shows
//! (subject, host names, expiry) is read from the leaf here and stored beside it.

use rustls::sign::CertifiedKey;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use time::OffsetDateTime;
use x509_parser::extensions::GeneralName;
use x509_parser::prelude::{FromDer, X509Certificate};

use super::model::{Owner, ParseError};
use super::store::{ControlError, PgControlStore, owned_by};

/// What a caller hands in: the names are its own, the rest is PEM.
#[derive(Clone)]
pub struct NewCertificate {
    pub name: String,
    pub chain_pem: String,
    pub key_pem: String,
}

/// What the leaf says about itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertificateFacts {
    pub subject: String,
    pub hostnames: Vec<String>,
    pub not_after: OffsetDateTime,
}

/// A certificate as listed: everything but the key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertificateSummary {
    pub name: String,
    pub facts: CertificateFacts,
    pub owner: Owner,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
}

const NAME_MAX: usize = 253;

/// The SHA-256 of the chain's first (leaf) certificate, lower-case hex, as `openssl x509
/// -fingerprint -sha256` shows it without the colons; `None` when there is no certificate.
pub fn leaf_fingerprint(chain_pem: &str) -> Option<String> {
    let leaf = CertificateDer::pem_slice_iter(chain_pem.as_bytes())
        .next()?
        .ok()?;
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, leaf.as_ref());
    Some(
        digest
            .as_ref()
            .iter()
            .map(|byte| format!("{byte:02x}"))
            .collect(),
    )
}

/// Checks `chain_pem` and `key_pem` as the ingress will use them; errors name the field.
pub fn inspect(
    chain_pem: &str,
    key_pem: &str,
    now: OffsetDateTime,
) -> Result<CertificateFacts, ParseError> {
    let chain = CertificateDer::pem_slice_iter(chain_pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|error| ParseError::new("chain_pem", format!("not PEM: {error}")))?;
    let leaf = chain.first().ok_or_else(|| {
        ParseError::new("chain_pem", "holds no -----BEGIN CERTIFICATE----- block")
    })?;
    for (position, der) in chain.iter().enumerate() {
        X509Certificate::from_der(der).map_err(|error| {
            ParseError::new(
                "chain_pem",
                format!("certificate {} is not X.509: {error}", position + 1),
            )
        })?;
    }
    let facts = leaf_facts(leaf)?;
    if facts.not_after <= now {
        return Err(ParseError::new(
            "chain_pem",
            format!("the leaf expired at {}", facts.not_after),
        ));
    }
    let key = PrivateKeyDer::from_pem_slice(key_pem.as_bytes())
        .map_err(|error| ParseError::new("key_pem", format!("no PEM private key: {error}")))?;
    let provider = rustls::crypto::aws_lc_rs::default_provider();
    CertifiedKey::from_der(chain, key, &provider).map_err(|error| {
        ParseError::new(
            "key_pem",
            format!("does not belong to the leaf certificate: {error}"),
        )
    })?;
    Ok(facts)
}

fn leaf_facts(leaf: &CertificateDer<'_>) -> Result<CertificateFacts, ParseError> {
    let (_, cert) = X509Certificate::from_der(leaf)
        .map_err(|error| ParseError::new("chain_pem", format!("leaf is not X.509: {error}")))?;
    let hostnames: Vec<String> = cert
        .subject_alternative_name()
        .ok()
        .flatten()
        .map(|san| {
            san.value
                .general_names
                .iter()
                .filter_map(|name| match name {
                    GeneralName::DNSName(host) => Some(host.to_ascii_lowercase()),
                    _ => None,
                })
                .collect()
        })
        .unwrap_or_default();
    if hostnames.is_empty() {
        return Err(ParseError::new(
            "chain_pem",
            "the leaf names no DNS host in subjectAltName, so no client could verify it",
        ));
    }
    Ok(CertificateFacts {
        subject: cert.subject().to_string(),
        hostnames,
        not_after: cert.validity().not_after.to_datetime(),
    })
}

fn check_name(name: &str) -> Result<(), ParseError> {
    let usable = !name.is_empty()
        && name.len() <= NAME_MAX
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_'));
    if usable {
        Ok(())
    } else {
        Err(ParseError::new(
            "name",
            format!("'{name}' must be 1 to {NAME_MAX} of A-Z a-z 0-9 - . _"),
        ))
    }
}

type SummaryRow = (
    String,
    String,
    Vec<String>,
    OffsetDateTime,
    String,
    OffsetDateTime,
    OffsetDateTime,
);

/// The listed columns, as a literal so that the queries stay static.
macro_rules! summary_select {
    ($rest:literal) => {
        concat!(
            "SELECT name, subject, hostnames, not_after, owner, created_at, updated_at
               FROM certificates ",
            $rest
        )
    };
}

fn summary(row: SummaryRow) -> Result<CertificateSummary, ControlError> {
    let (name, subject, hostnames, not_after, owner, created_at, updated_at) = row;
    Ok(CertificateSummary {
        name,
        facts: CertificateFacts {
            subject,
            hostnames,
            not_after,
        },
        owner: owner.parse()?,
        created_at,
        updated_at,
    })
}

impl PgControlStore {
    /// Every certificate, by name, without keys.
    pub async fn certificates(&self) -> Result<Vec<CertificateSummary>, ControlError> {
        let rows: Vec<SummaryRow> = sqlx::query_as(summary_select!("ORDER BY name"))
            .fetch_all(self.pool())
            .await?;
        rows.into_iter().map(summary).collect()
    }

    pub async fn certificate(&self, name: &str) -> Result<CertificateSummary, ControlError> {
        let row: Option<SummaryRow> = sqlx::query_as(summary_select!("WHERE name = $1"))
            .bind(name)
            .fetch_optional(self.pool())
            .await?;
        summary(row.ok_or(ControlError::NotFound)?)
    }

    /// Adds a certificate; a name in use is [`ControlError::Exists`].
    pub async fn add_certificate(
        &self,
        owner: Owner,
        new: &NewCertificate,
    ) -> Result<CertificateSummary, ControlError> {
        check_name(&new.name)?;
        let facts = inspect(&new.chain_pem, &new.key_pem, OffsetDateTime::now_utc())?;
        let mut tx = self.pool().begin().await?;
        let existing: Option<String> =
            sqlx::query_scalar("SELECT owner FROM certificates WHERE name = $1")
                .bind(&new.name)
                .fetch_optional(&mut *tx)
                .await?;
        if let Some(existing) = existing {
            return Err(ControlError::Exists(existing.parse()?));
        }
        sqlx::query(
            "INSERT INTO certificates (name, chain_pem, key_pem, hostnames, not_after, subject, owner)
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(&new.name)
        .bind(&new.chain_pem)
        .bind(&new.key_pem)
        .bind(&facts.hostnames)
        .bind(facts.not_after)
        .bind(&facts.subject)
        .bind(owner.as_str())
        .execute(&mut *tx)
        .await?;
        self.commit(tx).await?;
        self.certificate(&new.name).await
    }

    /// Rotates the chain and key of a certificate `owner` owns, keeping its name.
    pub async fn replace_certificate(
        &self,
        owner: Owner,
        new: &NewCertificate,
    ) -> Result<CertificateSummary, ControlError> {
        let facts = inspect(&new.chain_pem, &new.key_pem, OffsetDateTime::now_utc())?;
        let mut tx = self.pool().begin().await?;
        let existing: Option<String> =
            sqlx::query_scalar("SELECT owner FROM certificates WHERE name = $1 FOR UPDATE")
                .bind(&new.name)
                .fetch_optional(&mut *tx)
                .await?;
        owned_by(
            Some(existing.as_deref().ok_or(ControlError::NotFound)?),
            owner,
        )?;
        sqlx::query(
            "UPDATE certificates SET chain_pem = $2, key_pem = $3, hostnames = $4, not_after = $5,
                    subject = $6, updated_at = now()
              WHERE name = $1",
        )
        .bind(&new.name)
        .bind(&new.chain_pem)
        .bind(&new.key_pem)
        .bind(&facts.hostnames)
        .bind(facts.not_after)
        .bind(&facts.subject)
        .execute(&mut *tx)
        .await?;
        self.commit(tx).await?;
        self.certificate(&new.name).await
    }

    pub async fn delete_certificate(&self, owner: Owner, name: &str) -> Result<(), ControlError> {
        let mut tx = self.pool().begin().await?;
        let existing: Option<String> =
            sqlx::query_scalar("SELECT owner FROM certificates WHERE name = $1 FOR UPDATE")
                .bind(name)
                .fetch_optional(&mut *tx)
                .await?;
        owned_by(
            Some(existing.as_deref().ok_or(ControlError::NotFound)?),
            owner,
        )?;
        sqlx::query("DELETE FROM certificates WHERE name = $1")
            .bind(name)
            .execute(&mut *tx)
            .await?;
        self.commit(tx).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn self_signed(names: &[&str]) -> (String, String) {
        let names = names.iter().map(|n| n.to_string()).collect::<Vec<_>>();
        let made = rcgen::generate_simple_self_signed(names).expect("certificate");
        (made.cert.pem(), made.signing_key.serialize_pem())
    }

    #[test]
    fn a_good_pair_yields_its_names_and_expiry() {
        let (chain, key) = self_signed(&["mx.example.test", "*.example.test"]);
        let facts = inspect(&chain, &key, OffsetDateTime::now_utc()).expect("accepted");
        assert_eq!(facts.hostnames, ["mx.example.test", "*.example.test"]);
        assert!(facts.not_after > OffsetDateTime::now_utc());
    }

    #[test]
    fn each_fault_names_its_field() {
        let (chain, key) = self_signed(&["mx.example.test"]);
        let (_, other_key) = self_signed(&["other.example.test"]);
        let now = OffsetDateTime::now_utc();
        let field =
            |chain: &str, key: &str, now| inspect(chain, key, now).expect_err("refused").field;
        assert_eq!(field("no pem here", &key, now), "chain_pem");
        assert_eq!(
            field(
                "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
                &key,
                now
            ),
            "chain_pem"
        );
        assert_eq!(field(&chain, "not a key", now), "key_pem");
        assert_eq!(field(&chain, &other_key, now), "key_pem");
        let after_expiry = now + time::Duration::days(365 * 5000);
        let expired = inspect(&chain, &key, after_expiry).expect_err("refused");
        assert_eq!(expired.field, "chain_pem");
        assert!(expired.reason.contains("expired"), "{}", expired.reason);
    }

    #[test]
    fn a_leaf_without_dns_names_is_refused() {
        let (chain, key) = self_signed(&["192.0.2.1"]);
        let refused = inspect(&chain, &key, OffsetDateTime::now_utc()).expect_err("refused");
        assert_eq!(refused.field, "chain_pem");
        assert!(
            refused.reason.contains("subjectAltName"),
            "{}",
            refused.reason
        );
    }

    #[test]
    fn names_are_kubernetes_like() {
        assert!(check_name("mx-example.test_1").is_ok());
        assert_eq!(check_name("").expect_err("refused").field, "name");
        assert_eq!(check_name("a b").expect_err("refused").field, "name");
        assert_eq!(
            check_name(&"a".repeat(254)).expect_err("refused").field,
            "name"
        );
    }
}
