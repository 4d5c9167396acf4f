//! Reading the whole control plane at one revision, for the pods' snapshots: every table in
//! one read-only repeatable-read transaction.

use super::dkim::list_signing_keys;
use super::limits::list_destination_limits;
use super::policy;
use super::snapshot::{ControlPlane, ControlRows};
use super::store::{
    ControlError, PgControlStore, list_blocklist, list_certificates, list_domains, list_networks,
    list_suspensions,
};

impl PgControlStore {
    /// The whole control plane at one revision.
    pub async fn load(&self) -> Result<ControlPlane, ControlError> {
        let mut tx = self.pool().begin().await?;
        sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
            .execute(&mut *tx)
            .await?;
        let revision: i64 = sqlx::query_scalar("SELECT revision FROM control_revision")
            .fetch_one(&mut *tx)
            .await?;
        let domains = list_domains(&mut tx).await?;
        let networks = list_networks(&mut tx).await?;
        let blocklist = list_blocklist(&mut tx).await?;
        let suspensions = list_suspensions(&mut tx).await?;
        let certificates = list_certificates(&mut tx).await?;
        let dkim_keys = list_signing_keys(&mut tx).await?;
        let destination_limits = list_destination_limits(&mut tx).await?;
        let policy = policy::read(&mut tx)
            .await?
            .map(|stored| stored.document)
            .unwrap_or_default();
        tx.commit().await?;
        Ok(ControlPlane::new(
            revision,
            ControlRows {
                domains,
                networks: networks.into_iter().map(|n| n.network).collect(),
                blocklist,
                suspensions,
                certificates,
                dkim_keys,
                destination_limits,
                policy,
            },
        ))
    }
}
