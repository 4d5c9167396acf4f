//! DKIM signing keys in the control plane: generated here (the private key never leaves the
//! control plane except to the ingress pods that sign with it), listed with the DNS record to
//! publish, and switched on or off for signing so that a key can be rotated without a gap.

use std::fmt;

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::KeySize;
use aws_lc_rs::signature::{Ed25519KeyPair, KeyPair, RsaKeyPair};
use base64::Engine as _;
use sqlx::{Postgres, Transaction};
use time::OffsetDateTime;

use super::model::{DkimAlgorithm, Domain, Owner, ParseError, ldh_labels};
use super::store::{ControlError, PgControlStore, owned_by};

/// A key as the ingress signs with it.
#[derive(Clone, PartialEq, Eq)]
pub struct DkimKey {
    pub domain: String,
    pub selector: String,
    pub algorithm: DkimAlgorithm,
    /// PKCS#8 DER.
    pub private_key: Vec<u8>,
}

impl fmt::Debug for DkimKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DkimKey")
            .field("domain", &self.domain)
            .field("selector", &self.selector)
            .field("algorithm", &self.algorithm)
            .finish_non_exhaustive()
    }
}

/// A key as listed: everything but the private key, and the DNS record that publishes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DkimKeySummary {
    pub domain: String,
    pub selector: String,
    pub algorithm: DkimAlgorithm,
    /// What the record's `p=` carries: SubjectPublicKeyInfo for RSA, the raw 32 octets for
    /// Ed25519 (RFC 8463 4.2).
    pub public_key: Vec<u8>,
    pub signing: bool,
    pub owner: Owner,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
}

impl DkimKeySummary {
    /// Where the record goes: `<selector>._domainkey.<domain>`.
    pub fn dns_name(&self) -> String {
        dns_name(&self.domain, &self.selector)
    }

    /// The TXT record's text.
    pub fn dns_txt(&self) -> String {
        dns_txt(self.algorithm, &self.public_key)
    }
}

/// Where a key's record goes: `<selector>._domainkey.<domain>`.
pub fn dns_name(domain: &str, selector: &str) -> String {
    format!("{selector}._domainkey.{domain}")
}

/// A key's TXT record text (a resolver joins the 255-octet strings it is split into);
/// `public_key` as `p=` carries it.
pub fn dns_txt(algorithm: DkimAlgorithm, public_key: &[u8]) -> String {
    let kind = match algorithm {
        DkimAlgorithm::RsaSha256 => "rsa",
        DkimAlgorithm::Ed25519Sha256 => "ed25519",
    };
    let key = base64::engine::general_purpose::STANDARD.encode(public_key);
    format!("v=DKIM1; k={kind}; p={key}")
}

/// What a caller asks for; the key pair is made here.
#[derive(Debug, Clone)]
pub struct NewDkimKey {
    pub domain: String,
    pub selector: String,
    pub algorithm: DkimAlgorithm,
    pub signing: bool,
}

/// A fresh key pair: (PKCS#8 private key, the public key as `p=` carries it). RSA keys are 2048
/// bits, what RFC 8301 asks signers for and what fits a DNS TXT record comfortably.
pub fn generate(algorithm: DkimAlgorithm) -> Result<(Vec<u8>, Vec<u8>), ControlError> {
    let failed = || ControlError::Crypto(format!("{algorithm} key generation failed"));
    match algorithm {
        DkimAlgorithm::RsaSha256 => {
            let pair = RsaKeyPair::generate(KeySize::Rsa2048).map_err(|_| failed())?;
            let private =
                AsDer::<aws_lc_rs::encoding::Pkcs8V1Der>::as_der(&pair).map_err(|_| failed())?;
            let public = pair.public_key().as_der().map_err(|_| failed())?;
            Ok((private.as_ref().to_vec(), public.as_ref().to_vec()))
        }
        DkimAlgorithm::Ed25519Sha256 => {
            // Version 1, without the public key inside: what openssl and most tools read.
            let private =
                Ed25519KeyPair::generate_pkcs8v1(&SystemRandom::new()).map_err(|_| failed())?;
            let pair = Ed25519KeyPair::from_pkcs8_maybe_unchecked(private.as_ref())
                .map_err(|_| failed())?;
            Ok((
                private.as_ref().to_vec(),
                pair.public_key().as_ref().to_vec(),
            ))
        }
    }
}

/// A selector is a dot-separated run of DNS labels (RFC 6376 3.1).
pub fn check_selector(selector: &str) -> Result<String, ParseError> {
    let selector = selector.trim().to_ascii_lowercase();
    if ldh_labels(&selector, 63) {
        Ok(selector)
    } else {
        Err(ParseError::new(
            "selector",
            format!("'{selector}' is not a selector: DNS labels of A-Z a-z 0-9 -, up to 63 octets"),
        ))
    }
}

fn check_domain(domain: &str) -> Result<String, ParseError> {
    Domain::normalise(domain).map_err(|error| ParseError::new("domain", error.reason))
}

type SummaryRow = (
    String,
    String,
    String,
    Vec<u8>,
    bool,
    String,
    OffsetDateTime,
    OffsetDateTime,
);

macro_rules! summary_select {
    ($rest:literal) => {
        concat!(
            "SELECT domain, selector, algorithm, public_key, signing, owner, created_at, updated_at
               FROM dkim_keys ",
            $rest
        )
    };
}

fn summary(row: SummaryRow) -> Result<DkimKeySummary, ControlError> {
    let (domain, selector, algorithm, public_key, signing, owner, created_at, updated_at) = row;
    Ok(DkimKeySummary {
        domain,
        selector,
        algorithm: algorithm.parse()?,
        public_key,
        signing,
        owner: owner.parse()?,
        created_at,
        updated_at,
    })
}

impl PgControlStore {
    /// Every key, or one domain's, by domain and selector.
    pub async fn dkim_keys(
        &self,
        domain: Option<&str>,
    ) -> Result<Vec<DkimKeySummary>, ControlError> {
        let domain = domain.map(check_domain).transpose()?;
        let rows: Vec<SummaryRow> = sqlx::query_as(summary_select!(
            "WHERE $1::text IS NULL OR domain = $1 ORDER BY domain, selector"
        ))
        .bind(domain)
        .fetch_all(self.pool())
        .await?;
        rows.into_iter().map(summary).collect()
    }

    pub async fn dkim_key(
        &self,
        domain: &str,
        selector: &str,
    ) -> Result<DkimKeySummary, ControlError> {
        let row: Option<SummaryRow> =
            sqlx::query_as(summary_select!("WHERE domain = $1 AND selector = $2"))
                .bind(check_domain(domain)?)
                .bind(check_selector(selector)?)
                .fetch_optional(self.pool())
                .await?;
        summary(row.ok_or(ControlError::NotFound)?)
    }

    /// Makes a key pair for a domain's new selector; a selector in use is
    /// [`ControlError::Exists`].
    pub async fn generate_dkim_key(
        &self,
        owner: Owner,
        new: &NewDkimKey,
    ) -> Result<DkimKeySummary, ControlError> {
        let domain = check_domain(&new.domain)?;
        let selector = check_selector(&new.selector)?;
        let (private_key, public_key) = generate(new.algorithm)?;
        let mut tx = self.pool().begin().await?;
        let existing: Option<String> =
            sqlx::query_scalar("SELECT owner FROM dkim_keys WHERE domain = $1 AND selector = $2")
                .bind(&domain)
                .bind(&selector)
                .fetch_optional(&mut *tx)
                .await?;
        if let Some(existing) = existing {
            return Err(ControlError::Exists(existing.parse()?));
        }
        let key = DkimKey {
            domain,
            selector,
            algorithm: new.algorithm,
            private_key,
        };
        insert(&mut tx, owner, &key, &public_key, new.signing).await?;
        self.commit(tx).await?;
        self.dkim_key(&key.domain, &key.selector).await
    }

    /// Stores a key pair made elsewhere (the operator keeps its private keys in Secrets): added
    /// when the selector is new, its signing switched when `owner` already has it, refused
    /// ([`ControlError::OwnedBy`]) when another writer has. Nothing is written when the stored
    /// key is already so, so that a periodic re-check does not move the revision.
    pub async fn put_dkim_key(
        &self,
        owner: Owner,
        key: &DkimKey,
        public_key: &[u8],
        signing: bool,
    ) -> Result<DkimKeySummary, ControlError> {
        let domain = check_domain(&key.domain)?;
        let selector = check_selector(&key.selector)?;
        let mut tx = self.pool().begin().await?;
        let existing: Option<(String, bool)> = sqlx::query_as(
            "SELECT owner, signing FROM dkim_keys WHERE domain = $1 AND selector = $2 FOR UPDATE",
        )
        .bind(&domain)
        .bind(&selector)
        .fetch_optional(&mut *tx)
        .await?;
        match existing {
            Some((found, _)) if found != owner.as_str() => {
                return Err(ControlError::OwnedBy(found.parse()?));
            }
            Some((_, now)) if now == signing => {
                drop(tx);
                return self.dkim_key(&domain, &selector).await;
            }
            Some(_) => {
                sqlx::query(
                    "UPDATE dkim_keys SET signing = $3, updated_at = now()
                      WHERE domain = $1 AND selector = $2",
                )
                .bind(&domain)
                .bind(&selector)
                .bind(signing)
                .execute(&mut *tx)
                .await?;
            }
            None => {
                let key = DkimKey {
                    domain: domain.clone(),
                    selector: selector.clone(),
                    ..key.clone()
                };
                insert(&mut tx, owner, &key, public_key, signing).await?;
            }
        }
        self.commit(tx).await?;
        self.dkim_key(&domain, &selector).await
    }

    /// Removes every key of `domain` that `owner` made (the operator's, when its MailDomain
    /// goes); the others stay.
    pub async fn delete_dkim_keys_of(
        &self,
        owner: Owner,
        domain: &str,
    ) -> Result<(), ControlError> {
        let domain = check_domain(domain)?;
        let mut tx = self.pool().begin().await?;
        let gone = sqlx::query("DELETE FROM dkim_keys WHERE domain = $1 AND owner = $2")
            .bind(&domain)
            .bind(owner.as_str())
            .execute(&mut *tx)
            .await?;
        if gone.rows_affected() == 0 {
            return Ok(());
        }
        self.commit(tx).await
    }

    /// Starts or stops a key `owner` owns signing; it stays listed (and published) either way.
    pub async fn set_dkim_signing(
        &self,
        owner: Owner,
        domain: &str,
        selector: &str,
        signing: bool,
    ) -> Result<DkimKeySummary, ControlError> {
        let (domain, selector) = (check_domain(domain)?, check_selector(selector)?);
        let mut tx = self.pool().begin().await?;
        lock_owned(&mut tx, owner, &domain, &selector).await?;
        sqlx::query(
            "UPDATE dkim_keys SET signing = $3, updated_at = now()
              WHERE domain = $1 AND selector = $2",
        )
        .bind(&domain)
        .bind(&selector)
        .bind(signing)
        .execute(&mut *tx)
        .await?;
        self.commit(tx).await?;
        self.dkim_key(&domain, &selector).await
    }

    pub async fn delete_dkim_key(
        &self,
        owner: Owner,
        domain: &str,
        selector: &str,
    ) -> Result<(), ControlError> {
        let (domain, selector) = (check_domain(domain)?, check_selector(selector)?);
        let mut tx = self.pool().begin().await?;
        lock_owned(&mut tx, owner, &domain, &selector).await?;
        sqlx::query("DELETE FROM dkim_keys WHERE domain = $1 AND selector = $2")
            .bind(&domain)
            .bind(&selector)
            .execute(&mut *tx)
            .await?;
        self.commit(tx).await
    }
}

/// Adds `key` (its domain and selector already checked).
async fn insert(
    tx: &mut Transaction<'static, Postgres>,
    owner: Owner,
    key: &DkimKey,
    public_key: &[u8],
    signing: bool,
) -> Result<(), ControlError> {
    sqlx::query(
        "INSERT INTO dkim_keys (domain, selector, algorithm, private_key, public_key, signing, owner)
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(&key.domain)
    .bind(&key.selector)
    .bind(key.algorithm.as_str())
    .bind(&key.private_key)
    .bind(public_key)
    .bind(signing)
    .bind(owner.as_str())
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Locks an existing key for a change, if `owner` owns it.
async fn lock_owned(
    tx: &mut Transaction<'static, Postgres>,
    owner: Owner,
    domain: &str,
    selector: &str,
) -> Result<(), ControlError> {
    let existing: Option<String> = sqlx::query_scalar(
        "SELECT owner FROM dkim_keys WHERE domain = $1 AND selector = $2 FOR UPDATE",
    )
    .bind(domain)
    .bind(selector)
    .fetch_optional(&mut **tx)
    .await?;
    owned_by(
        Some(existing.as_deref().ok_or(ControlError::NotFound)?),
        owner,
    )
}

/// The keys that sign, for the snapshot.
pub(super) async fn list_signing_keys(
    tx: &mut Transaction<'static, Postgres>,
) -> Result<Vec<DkimKey>, ControlError> {
    let rows: Vec<(String, String, String, Vec<u8>)> = sqlx::query_as(
        "SELECT domain, selector, algorithm, private_key FROM dkim_keys
          WHERE signing ORDER BY domain, selector",
    )
    .fetch_all(&mut **tx)
    .await?;
    rows.into_iter()
        .map(|(domain, selector, algorithm, private_key)| {
            Ok(DkimKey {
                domain,
                selector,
                algorithm: algorithm.parse()?,
                private_key,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_keys_have_the_published_shape() {
        let (private, public) = generate(DkimAlgorithm::Ed25519Sha256).expect("ed25519");
        assert_eq!(public.len(), 32);
        Ed25519KeyPair::from_pkcs8_maybe_unchecked(&private).expect("PKCS#8");
        let (private, public) = generate(DkimAlgorithm::RsaSha256).expect("rsa");
        let pair = RsaKeyPair::from_pkcs8(&private).expect("PKCS#8");
        assert_eq!(pair.public_modulus_len(), 256);
        // SubjectPublicKeyInfo: a SEQUENCE holding the rsaEncryption OID.
        assert_eq!(public[0], 0x30);
        let oid = [0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01];
        assert!(public.windows(oid.len()).any(|w| w == oid));
    }

    #[test]
    fn selectors_are_dns_labels() {
        assert_eq!(check_selector("Sel2026.a").expect("ok"), "sel2026.a");
        for bad in ["", "a..b", "-a", "a b", "a_b", &"a".repeat(64)] {
            assert_eq!(check_selector(bad).expect_err(bad).field, "selector");
        }
    }

    #[test]
    fn the_record_names_the_algorithm() {
        let summary = DkimKeySummary {
            domain: "example.org".into(),
            selector: "s1".into(),
            algorithm: DkimAlgorithm::Ed25519Sha256,
            public_key: vec![0; 32],
            signing: true,
            owner: Owner::Api,
            created_at: OffsetDateTime::UNIX_EPOCH,
            updated_at: OffsetDateTime::UNIX_EPOCH,
        };
        assert_eq!(summary.dns_name(), "s1._domainkey.example.org");
        assert_eq!(
            summary.dns_txt(),
            "v=DKIM1; k=ed25519; p=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="
        );
    }
}
