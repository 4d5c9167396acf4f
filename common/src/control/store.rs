//! [`PgControlStore`]: the control plane in PostgreSQL, read whole into a snapshot and written
//! one change at a time.
//!
//! Contract, for the two writers (the admin API and the Kubernetes operator) and the pods:
//! - Every write is one transaction that checks the owner of the row it changes, changes it and
//!   bumps `control_revision`, so a snapshot read in one transaction is always one revision.
//! - A writer changes only rows it owns: another owner's row is [`ControlError::OwnedBy`], and
//!   nothing changes. Creating a row that exists is [`ControlError::Exists`] naming its owner.
//! - After the commit a change notice is published, best effort: readers poll as well.

use ipnet::IpNet;
use sqlx::{PgPool, Postgres, Transaction};
use time::OffsetDateTime;

use super::model::{
    BlockAction, BlockEntry, BlockKind, Certificate, Domain, DomainKind, NewBlockEntry, Owner,
    ParseError, Suspension, TrustedNetwork,
};
use crate::bus::Bus;

#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    #[error("not found")]
    NotFound,
    /// The row belongs to another writer and is read-only to this one.
    #[error("owned by {0}")]
    OwnedBy(Owner),
    #[error("already exists (owned by {0})")]
    Exists(Owner),
    #[error(transparent)]
    Invalid(#[from] ParseError),
    #[error("control-plane database: {0}")]
    Database(#[from] sqlx::Error),
    /// The cryptography library failed to make a key (nothing the caller sent is wrong).
    #[error("{0}")]
    Crypto(String),
}

/// What one pod's environment settings say, written as `config` rows.
#[derive(Debug, Clone, Default)]
pub struct ConfigRows {
    pub local_domains: Vec<String>,
    pub trusted_networks: Vec<IpNet>,
}

#[derive(Clone)]
pub struct PgControlStore {
    pool: PgPool,
    bus: Option<Bus>,
}

impl PgControlStore {
    /// `bus`: where change notices go; without it pods find changes by polling.
    pub fn new(pool: PgPool, bus: Option<Bus>) -> Self {
        Self { pool, bus }
    }

    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    pub async fn revision(&self) -> Result<i64, ControlError> {
        Ok(sqlx::query_scalar("SELECT revision FROM control_revision")
            .fetch_one(&self.pool)
            .await?)
    }

    pub async fn domains(&self) -> Result<Vec<Domain>, ControlError> {
        let mut tx = self.pool.begin().await?;
        list_domains(&mut tx).await
    }

    pub async fn networks(&self) -> Result<Vec<TrustedNetwork>, ControlError> {
        let mut tx = self.pool.begin().await?;
        list_networks(&mut tx).await
    }

    /// The entries in force (expired ones are left out).
    pub async fn blocklist(&self) -> Result<Vec<BlockEntry>, ControlError> {
        let mut tx = self.pool.begin().await?;
        list_blocklist(&mut tx).await
    }

    /// The suspensions in force.
    pub async fn suspensions(&self) -> Result<Vec<Suspension>, ControlError> {
        let mut tx = self.pool.begin().await?;
        list_suspensions(&mut tx).await
    }

    /// Creates `domain`, or changes it when `owner` owns it.
    pub async fn put_domain(&self, owner: Owner, domain: &Domain) -> Result<(), ControlError> {
        let name = Domain::normalise(&domain.name)?;
        let mut tx = self.pool.begin().await?;
        let existing: Option<String> =
            sqlx::query_scalar("SELECT owner FROM domains WHERE name = $1 FOR UPDATE")
                .bind(&name)
                .fetch_optional(&mut *tx)
                .await?;
        owned_by(existing.as_deref(), owner)?;
        sqlx::query(
            "INSERT INTO domains (name, kind, route, owner) VALUES ($1, $2, $3, $4)
             ON CONFLICT (name) DO UPDATE SET kind = $2, route = $3, updated_at = now()",
        )
        .bind(&name)
        .bind(domain.kind.as_str())
        .bind(domain.route.as_deref())
        .bind(owner.as_str())
        .execute(&mut *tx)
        .await?;
        self.commit(tx).await
    }

    pub async fn delete_domain(&self, owner: Owner, name: &str) -> Result<(), ControlError> {
        let name = Domain::normalise(name)?;
        let mut tx = self.pool.begin().await?;
        let existing: Option<String> =
            sqlx::query_scalar("SELECT owner FROM domains WHERE name = $1 FOR UPDATE")
                .bind(&name)
                .fetch_optional(&mut *tx)
                .await?;
        owned_by(
            Some(existing.as_deref().ok_or(ControlError::NotFound)?),
            owner,
        )?;
        sqlx::query("DELETE FROM domains WHERE name = $1")
            .bind(&name)
            .execute(&mut *tx)
            .await?;
        self.commit(tx).await
    }

    pub async fn add_network(
        &self,
        owner: Owner,
        network: IpNet,
        description: &str,
    ) -> Result<TrustedNetwork, ControlError> {
        let network = network.trunc();
        let mut tx = self.pool.begin().await?;
        let existing: Option<String> =
            sqlx::query_scalar("SELECT owner FROM trusted_networks WHERE network = $1")
                .bind(network)
                .fetch_optional(&mut *tx)
                .await?;
        if let Some(existing) = existing {
            return Err(ControlError::Exists(existing.parse()?));
        }
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO trusted_networks (network, description, owner) VALUES ($1, $2, $3)
             RETURNING id",
        )
        .bind(network)
        .bind(description)
        .bind(owner.as_str())
        .fetch_one(&mut *tx)
        .await?;
        self.commit(tx).await?;
        Ok(TrustedNetwork {
            id,
            network,
            description: description.to_owned(),
            owner,
        })
    }

    pub async fn delete_network(&self, owner: Owner, id: i64) -> Result<(), ControlError> {
        self.delete_by_id("trusted_networks", owner, id).await
    }

    pub async fn add_block(
        &self,
        owner: Owner,
        entry: &NewBlockEntry,
    ) -> Result<BlockEntry, ControlError> {
        let mut tx = self.pool.begin().await?;
        let existing: Option<String> =
            sqlx::query_scalar("SELECT owner FROM blocklist WHERE kind = $1 AND value = $2")
                .bind(entry.kind.as_str())
                .bind(&entry.value)
                .fetch_optional(&mut *tx)
                .await?;
        if let Some(existing) = existing {
            return Err(ControlError::Exists(existing.parse()?));
        }
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO blocklist (kind, value, action, reason, expires_at, owner)
             VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
        )
        .bind(entry.kind.as_str())
        .bind(&entry.value)
        .bind(entry.action.as_str())
        .bind(&entry.reason)
        .bind(entry.expires_at)
        .bind(owner.as_str())
        .fetch_one(&mut *tx)
        .await?;
        self.commit(tx).await?;
        Ok(BlockEntry {
            id,
            kind: entry.kind,
            value: entry.value.clone(),
            action: entry.action,
            reason: entry.reason.clone(),
            expires_at: entry.expires_at,
            owner,
        })
    }

    pub async fn delete_block(&self, owner: Owner, id: i64) -> Result<(), ControlError> {
        self.delete_by_id("blocklist", owner, id).await
    }

    /// Holds delivery to `suspension.domain` until its time; replaces an earlier one `owner` made.
    pub async fn put_suspension(
        &self,
        owner: Owner,
        suspension: &Suspension,
    ) -> Result<(), ControlError> {
        let domain = Domain::normalise(&suspension.domain)?;
        let mut tx = self.pool.begin().await?;
        let existing: Option<String> =
            sqlx::query_scalar("SELECT owner FROM suspensions WHERE domain = $1 FOR UPDATE")
                .bind(&domain)
                .fetch_optional(&mut *tx)
                .await?;
        owned_by(existing.as_deref(), owner)?;
        sqlx::query(
            "INSERT INTO suspensions (domain, until, reason, owner) VALUES ($1, $2, $3, $4)
             ON CONFLICT (domain) DO UPDATE SET until = $2, reason = $3",
        )
        .bind(&domain)
        .bind(suspension.until)
        .bind(&suspension.reason)
        .bind(owner.as_str())
        .execute(&mut *tx)
        .await?;
        self.commit(tx).await
    }

    /// Lifts a suspension: the jobs workers held for it (due exactly at its end) are due now.
    pub async fn delete_suspension(&self, owner: Owner, domain: &str) -> Result<(), ControlError> {
        let domain = Domain::normalise(domain)?;
        let mut tx = self.pool.begin().await?;
        let existing: Option<(String, OffsetDateTime)> =
            sqlx::query_as("SELECT owner, until FROM suspensions WHERE domain = $1 FOR UPDATE")
                .bind(&domain)
                .fetch_optional(&mut *tx)
                .await?;
        let (existing, until) = existing.ok_or(ControlError::NotFound)?;
        owned_by(Some(&existing), owner)?;
        sqlx::query("DELETE FROM suspensions WHERE domain = $1")
            .bind(&domain)
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "UPDATE jobs SET next_attempt_at = now(), updated_at = now()
              WHERE domain = $1 AND status IN ('queued', 'deferred') AND next_attempt_at = $2",
        )
        .bind(&domain)
        .bind(until)
        .execute(&mut *tx)
        .await?;
        self.commit(tx).await
    }

    /// Makes the `config` rows say what `rows` says: adds the missing, removes the rest. Rows of
    /// other owners are left alone (an API-made domain keeps its owner and route). The revision
    /// moves only when something changed, so pods starting with the same settings cost nothing.
    pub async fn sync_config(&self, rows: &ConfigRows) -> Result<bool, ControlError> {
        let mut tx = self.pool.begin().await?;
        // One pod at a time: two pods starting together must not interleave deletes and inserts.
        sqlx::query("SELECT revision FROM control_revision FOR UPDATE")
            .execute(&mut *tx)
            .await?;
        let mut domains = Vec::with_capacity(rows.local_domains.len());
        for name in &rows.local_domains {
            domains.push(Domain::normalise(name)?);
        }
        let networks: Vec<IpNet> = rows.trusted_networks.iter().map(IpNet::trunc).collect();
        let removed =
            sqlx::query("DELETE FROM domains WHERE owner = 'config' AND NOT (name = ANY($1))")
                .bind(&domains)
                .execute(&mut *tx)
                .await?
                .rows_affected();
        let added = sqlx::query(
            "INSERT INTO domains (name, kind, owner)
             SELECT name, 'local', 'config' FROM unnest($1::text[]) AS name
             ON CONFLICT (name) DO NOTHING",
        )
        .bind(&domains)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        let removed_networks = sqlx::query(
            "DELETE FROM trusted_networks WHERE owner = 'config' AND NOT (network = ANY($1))",
        )
        .bind(&networks)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        let added_networks = sqlx::query(
            "INSERT INTO trusted_networks (network, owner)
             SELECT network, 'config' FROM unnest($1::cidr[]) AS network
             ON CONFLICT (network) DO NOTHING",
        )
        .bind(&networks)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if removed + added + removed_networks + added_networks == 0 {
            tx.rollback().await?;
            return Ok(false);
        }
        self.commit(tx).await?;
        Ok(true)
    }

    async fn delete_by_id(
        &self,
        table: &'static str,
        owner: Owner,
        id: i64,
    ) -> Result<(), ControlError> {
        let mut tx = self.pool.begin().await?;
        let existing: Option<String> = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "SELECT owner FROM {table} WHERE id = $1 FOR UPDATE"
        )))
        .bind(id)
        .fetch_optional(&mut *tx)
        .await?;
        owned_by(
            Some(existing.as_deref().ok_or(ControlError::NotFound)?),
            owner,
        )?;
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "DELETE FROM {table} WHERE id = $1"
        )))
        .bind(id)
        .execute(&mut *tx)
        .await?;
        self.commit(tx).await
    }

    /// Bumps the revision, commits, then tells the pods.
    pub(super) async fn commit(
        &self,
        mut tx: Transaction<'static, Postgres>,
    ) -> Result<(), ControlError> {
        let revision: i64 = sqlx::query_scalar(
            "UPDATE control_revision SET revision = revision + 1, changed_at = now()
             RETURNING revision",
        )
        .fetch_one(&mut *tx)
        .await?;
        tx.commit().await?;
        if let Some(bus) = &self.bus
            && let Err(error) = bus.publish_control_change(revision).await
        {
            tracing::warn!(%error, revision, "control-plane notice not published; pods will poll");
        }
        Ok(())
    }
}

/// `Ok` when there is no row yet or `writer` owns it.
pub(super) fn owned_by(existing: Option<&str>, writer: Owner) -> Result<(), ControlError> {
    match existing {
        None => Ok(()),
        Some(owner) => {
            let owner: Owner = owner.parse()?;
            if owner == writer {
                Ok(())
            } else {
                Err(ControlError::OwnedBy(owner))
            }
        }
    }
}

pub(super) async fn list_domains(
    tx: &mut Transaction<'static, Postgres>,
) -> Result<Vec<Domain>, ControlError> {
    let rows: Vec<(String, String, Option<String>, String)> =
        sqlx::query_as("SELECT name, kind, route, owner FROM domains ORDER BY name")
            .fetch_all(&mut **tx)
            .await?;
    rows.into_iter()
        .map(|(name, kind, route, owner)| {
            Ok(Domain {
                name,
                kind: kind.parse::<DomainKind>()?,
                route,
                owner: owner.parse()?,
            })
        })
        .collect()
}

pub(super) async fn list_networks(
    tx: &mut Transaction<'static, Postgres>,
) -> Result<Vec<TrustedNetwork>, ControlError> {
    let rows: Vec<(i64, IpNet, String, String)> =
        sqlx::query_as("SELECT id, network, description, owner FROM trusted_networks ORDER BY id")
            .fetch_all(&mut **tx)
            .await?;
    rows.into_iter()
        .map(|(id, network, description, owner)| {
            Ok(TrustedNetwork {
                id,
                network,
                description,
                owner: owner.parse()?,
            })
        })
        .collect()
}

type BlockRow = (
    i64,
    String,
    String,
    String,
    String,
    Option<OffsetDateTime>,
    String,
);

pub(super) async fn list_blocklist(
    tx: &mut Transaction<'static, Postgres>,
) -> Result<Vec<BlockEntry>, ControlError> {
    let rows: Vec<BlockRow> = sqlx::query_as(
        "SELECT id, kind, value, action, reason, expires_at, owner FROM blocklist
          WHERE expires_at IS NULL OR expires_at > now() ORDER BY id",
    )
    .fetch_all(&mut **tx)
    .await?;
    rows.into_iter()
        .map(|(id, kind, value, action, reason, expires_at, owner)| {
            Ok(BlockEntry {
                id,
                kind: kind.parse::<BlockKind>()?,
                value,
                action: action.parse::<BlockAction>()?,
                reason,
                expires_at,
                owner: owner.parse()?,
            })
        })
        .collect()
}

pub(super) async fn list_suspensions(
    tx: &mut Transaction<'static, Postgres>,
) -> Result<Vec<Suspension>, ControlError> {
    let rows: Vec<(String, OffsetDateTime, String, String)> = sqlx::query_as(
        "SELECT domain, until, reason, owner FROM suspensions WHERE until > now() ORDER BY domain",
    )
    .fetch_all(&mut **tx)
    .await?;
    rows.into_iter()
        .map(|(domain, until, reason, owner)| {
            Ok(Suspension {
                domain,
                until,
                reason,
                owner: owner.parse()?,
            })
        })
        .collect()
}

type CertificateRow = (
    i64,
    String,
    String,
    String,
    Vec<String>,
    OffsetDateTime,
    String,
);

pub(super) async fn list_certificates(
    tx: &mut Transaction<'static, Postgres>,
) -> Result<Vec<Certificate>, ControlError> {
    let rows: Vec<CertificateRow> = sqlx::query_as(
        "SELECT id, name, chain_pem, key_pem, hostnames, not_after, owner FROM certificates
          ORDER BY id",
    )
    .fetch_all(&mut **tx)
    .await?;
    rows.into_iter()
        .map(
            |(id, name, chain_pem, key_pem, hostnames, not_after, owner)| {
                Ok(Certificate {
                    id,
                    name,
                    chain_pem,
                    key_pem,
                    hostnames,
                    not_after,
                    owner: owner.parse()?,
                })
            },
        )
        .collect()
}
