//! Delivery limits per destination: how many connections the whole cluster may hold open to a
//! site at once, and how many messages it may hand it per minute. A site is where mail goes as a
//! mailbox provider sees it, the set of MX hosts (every domain hosted by one provider shares
//! them), or a relay host. A limit row names a host name or a suffix of one: `google.com`
//! applies to a site whose MX hosts are all `google.com` or end in `.google.com`; the longest
//! name that applies wins. The workers enforce them (`tern_worker::throttle`).

use sqlx::{Postgres, Transaction};

use super::model::{Domain, Owner, ParseError};
use super::store::{ControlError, PgControlStore, owned_by};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DestinationLimit {
    /// A host name or suffix, lower-cased, without a trailing dot.
    pub destination: String,
    /// `None`: the workers' default.
    pub max_connections: Option<u32>,
    /// `None`: no limit.
    pub max_messages_per_minute: Option<u32>,
    pub owner: Owner,
}

impl DestinationLimit {
    /// Whether this row applies to a site of these hosts (lower-cased, no trailing dots).
    pub fn applies_to(&self, hosts: &[String]) -> bool {
        !hosts.is_empty()
            && hosts.iter().all(|host| {
                host == &self.destination
                    || host
                        .strip_suffix(self.destination.as_str())
                        .is_some_and(|head| head.ends_with('.'))
            })
    }

    fn check(&self) -> Result<(), ParseError> {
        for (field, value) in [
            ("max_connections", self.max_connections),
            ("max_messages_per_minute", self.max_messages_per_minute),
        ] {
            if value.is_some_and(|n| n == 0 || n > i32::MAX as u32) {
                return Err(ParseError::new(field, "must be at least 1"));
            }
        }
        Ok(())
    }
}

/// The row that applies to a site: the longest destination whose name covers every host.
pub(super) fn most_specific<'a>(
    limits: &'a [DestinationLimit],
    hosts: &[String],
) -> Option<&'a DestinationLimit> {
    limits
        .iter()
        .filter(|limit| limit.applies_to(hosts))
        .max_by_key(|limit| limit.destination.len())
}

type Row = (String, Option<i32>, Option<i32>, String);

fn from_row(
    (destination, connections, messages, owner): Row,
) -> Result<DestinationLimit, ControlError> {
    let positive = |n: Option<i32>| n.and_then(|n| u32::try_from(n).ok());
    Ok(DestinationLimit {
        destination,
        max_connections: positive(connections),
        max_messages_per_minute: positive(messages),
        owner: owner.parse()?,
    })
}

pub(super) async fn list_destination_limits(
    tx: &mut Transaction<'static, Postgres>,
) -> Result<Vec<DestinationLimit>, ControlError> {
    let rows: Vec<Row> = sqlx::query_as(
        "SELECT destination, max_connections, max_messages_per_minute, owner
           FROM destination_limits ORDER BY destination",
    )
    .fetch_all(&mut **tx)
    .await?;
    rows.into_iter().map(from_row).collect()
}

/// The owner of `destination`'s row, locked until the transaction ends; `None`: no row.
async fn locked_owner(
    tx: &mut Transaction<'static, Postgres>,
    destination: &str,
) -> Result<Option<String>, ControlError> {
    Ok(
        sqlx::query_scalar(
            "SELECT owner FROM destination_limits WHERE destination = $1 FOR UPDATE",
        )
        .bind(destination)
        .fetch_optional(&mut **tx)
        .await?,
    )
}

impl PgControlStore {
    pub async fn destination_limits(&self) -> Result<Vec<DestinationLimit>, ControlError> {
        let mut tx = self.pool().begin().await?;
        list_destination_limits(&mut tx).await
    }

    /// Sets the limits of `limit.destination` (a host name or suffix); replaces `owner`'s row.
    pub async fn put_destination_limit(
        &self,
        owner: Owner,
        limit: &DestinationLimit,
    ) -> Result<DestinationLimit, ControlError> {
        limit.check()?;
        let destination = Domain::normalise(&limit.destination).map_err(|_| {
            ParseError::new(
                "destination",
                format!("'{}' is not a host name", limit.destination),
            )
        })?;
        let mut tx = self.pool().begin().await?;
        owned_by(locked_owner(&mut tx, &destination).await?.as_deref(), owner)?;
        let as_column = |n: Option<u32>| n.map(|n| n as i32);
        sqlx::query(
            "INSERT INTO destination_limits
                    (destination, max_connections, max_messages_per_minute, owner)
             VALUES ($1, $2, $3, $4)
             ON CONFLICT (destination) DO UPDATE
                SET max_connections = $2, max_messages_per_minute = $3, updated_at = now()",
        )
        .bind(&destination)
        .bind(as_column(limit.max_connections))
        .bind(as_column(limit.max_messages_per_minute))
        .bind(owner.as_str())
        .execute(&mut *tx)
        .await?;
        self.commit(tx).await?;
        Ok(DestinationLimit {
            destination,
            owner,
            ..limit.clone()
        })
    }

    pub async fn delete_destination_limit(
        &self,
        owner: Owner,
        destination: &str,
    ) -> Result<(), ControlError> {
        let destination = Domain::normalise(destination)?;
        let mut tx = self.pool().begin().await?;
        let existing = locked_owner(&mut tx, &destination).await?;
        owned_by(Some(&existing.ok_or(ControlError::NotFound)?), owner)?;
        sqlx::query("DELETE FROM destination_limits WHERE destination = $1")
            .bind(&destination)
            .execute(&mut *tx)
            .await?;
        self.commit(tx).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limit(destination: &str, connections: u32) -> DestinationLimit {
        DestinationLimit {
            destination: destination.to_owned(),
            max_connections: Some(connections),
            max_messages_per_minute: None,
            owner: Owner::Api,
        }
    }

    fn hosts(names: &[&str]) -> Vec<String> {
        names.iter().map(|name| (*name).to_owned()).collect()
    }

    #[test]
    fn the_longest_name_covering_every_host_of_the_site_applies() {
        let limits = [
            limit("google.com", 10),
            limit("l.google.com", 4),
            limit("example.org", 2),
        ];
        let gmail = hosts(&[
            "alt1.gmail-smtp-in.l.google.com",
            "gmail-smtp-in.l.google.com",
        ]);
        assert_eq!(
            most_specific(&limits, &gmail).map(|l| l.max_connections),
            Some(Some(4))
        );
        let workspace = hosts(&["aspmx.l.google.com", "alt1.aspmx.google.com"]);
        assert_eq!(
            most_specific(&limits, &workspace).map(|l| l.max_connections),
            Some(Some(10))
        );
        // One host outside the name: the row does not speak for the site.
        let mixed = hosts(&["mx.google.com", "mx.elsewhere.net"]);
        assert_eq!(most_specific(&limits, &mixed), None);
        // A suffix matches whole labels only.
        assert_eq!(most_specific(&limits, &hosts(&["mx.notexample.org"])), None);
        assert_eq!(
            most_specific(&limits, &hosts(&["example.org"])).map(|l| l.max_connections),
            Some(Some(2))
        );
        assert_eq!(most_specific(&limits, &[]), None);
    }

    #[test]
    fn limits_are_at_least_one() {
        let mut zero = limit("example.org", 0);
        assert_eq!(zero.check().map_err(|e| e.field), Err("max_connections"));
        zero.max_connections = None;
        zero.max_messages_per_minute = Some(0);
        assert_eq!(
            zero.check().map_err(|e| e.field),
            Err("max_messages_per_minute")
        );
        zero.max_messages_per_minute = Some(60);
        assert_eq!(zero.check(), Ok(()));
    }
}
