//! Blocklist entries kept as a set by one source: the operator writes each MailBlocklist's entries
//! as a whole, replacing what that resource wrote before and nothing else.

use time::OffsetDateTime;

use super::model::{NewBlockEntry, Owner};
use super::store::{ControlError, PgControlStore};

/// What replacing a source's entries did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Replaced {
    /// Entries of the source now in the blocklist.
    pub applied: usize,
    /// Entries left out because another writer (or another source) has the same type and value.
    pub taken: Vec<NewBlockEntry>,
    /// Whether anything changed (and the revision moved).
    pub changed: bool,
}

type Stored = (String, String, String, String, Option<OffsetDateTime>);

fn stored(entry: &NewBlockEntry) -> Stored {
    (
        entry.kind.as_str().to_owned(),
        entry.value.clone(),
        entry.action.as_str().to_owned(),
        entry.reason.clone(),
        entry.expires_at,
    )
}

impl PgControlStore {
    /// Makes `source`'s entries (owned by `owner`) exactly `entries`. An entry whose type and
    /// value another row already has is left out and reported in [`Replaced::taken`]. When the
    /// stored set is already `entries`, nothing is written: the periodic re-check of a resource
    /// does not move the revision.
    pub async fn replace_blocks(
        &self,
        owner: Owner,
        source: &str,
        entries: &[NewBlockEntry],
    ) -> Result<Replaced, ControlError> {
        let mut tx = self.pool().begin().await?;
        // One source's writes in order: two reconciles of it cannot interleave.
        sqlx::query("SELECT pg_advisory_xact_lock(hashtext('blocklist:' || $1))")
            .bind(source)
            .execute(&mut *tx)
            .await?;
        let mut existing: Vec<Stored> = sqlx::query_as(
            "SELECT kind, value, action, reason, expires_at FROM blocklist
              WHERE owner = $1 AND source = $2",
        )
        .bind(owner.as_str())
        .bind(source)
        .fetch_all(&mut *tx)
        .await?;
        // The same type and value twice in one set: the first one counts, here and below.
        let mut seen = std::collections::HashSet::new();
        let mut wanted: Vec<Stored> = entries
            .iter()
            .filter(|entry| seen.insert((entry.kind, entry.value.as_str())))
            .map(stored)
            .collect();
        existing.sort();
        wanted.sort();
        if existing == wanted {
            return Ok(Replaced {
                applied: existing.len(),
                taken: Vec::new(),
                changed: false,
            });
        }
        sqlx::query("DELETE FROM blocklist WHERE owner = $1 AND source = $2")
            .bind(owner.as_str())
            .bind(source)
            .execute(&mut *tx)
            .await?;
        let mut replaced = Replaced {
            changed: true,
            ..Replaced::default()
        };
        let mut seen = std::collections::HashSet::new();
        for entry in entries {
            if !seen.insert((entry.kind, entry.value.as_str())) {
                continue;
            }
            let inserted: Option<i64> = sqlx::query_scalar(
                "INSERT INTO blocklist (kind, value, action, reason, expires_at, owner, source)
                 VALUES ($1, $2, $3, $4, $5, $6, $7)
                 ON CONFLICT (kind, value) DO NOTHING RETURNING id",
            )
            .bind(entry.kind.as_str())
            .bind(&entry.value)
            .bind(entry.action.as_str())
            .bind(&entry.reason)
            .bind(entry.expires_at)
            .bind(owner.as_str())
            .bind(source)
            .fetch_optional(&mut *tx)
            .await?;
            match inserted {
                Some(_) => replaced.applied += 1,
                None => replaced.taken.push(entry.clone()),
            }
        }
        self.commit(tx).await?;
        Ok(replaced)
    }
}
