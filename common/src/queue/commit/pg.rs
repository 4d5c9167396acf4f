//! [`QueueStore`] on PostgreSQL.

use std::time::Duration;

use sqlx::PgPool;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};

use super::{NewMessage, QueueStore};
use crate::config::DatabaseConfig;
use crate::queue::QueueError;
use crate::telemetry::TraceContext;
use tern_smtp::Ret;

/// The migrations in `migrations/`, embedded in the binary.
static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../migrations");

/// A lazily connecting pool: the ingress starts (and answers 451) while PostgreSQL is down.
pub fn connect_pool(config: &DatabaseConfig) -> Result<PgPool, sqlx::Error> {
    let options: PgConnectOptions = config.url.parse()?;
    let options = options.application_name("tern");
    Ok(PgPoolOptions::new()
        .max_connections(config.max_connections)
        .min_connections(0)
        .acquire_timeout(config.commit_timeout)
        .connect_lazy_with(options))
}

/// The delivery workers' pool: their claims, lease renewals and outcomes commit without waiting
/// for the log flush (`synchronous_commit = off`). Losing the last moments of those to a
/// PostgreSQL crash can only make a job due again, that is a second delivery, never a loss:
/// the trade Postfix makes too, which does not fsync when it removes a delivered queue file.
/// Anything that creates mail (the ingress commit, queued notifications) stays synchronous.
pub fn connect_delivery_pool(config: &DatabaseConfig) -> Result<PgPool, sqlx::Error> {
    let options: PgConnectOptions = config.url.parse()?;
    // No JIT either: the worker's statements are short lookups, and on the queue partitioned by
    // day the planner's cost estimates, summed over the days, pass the JIT threshold, so that a
    // statement of 2 ms was compiled for 70.
    let options = options
        .application_name("tern-worker")
        .options([("synchronous_commit", "off"), ("jit", "off")]);
    Ok(PgPoolOptions::new()
        .max_connections(config.max_connections)
        .min_connections(0)
        .acquire_timeout(config.commit_timeout)
        .connect_lazy_with(options))
}

/// Applies every pending migration, then makes the queue's partitions of today and the coming
/// days, so that an ingress started before any worker has somewhere to commit.
pub async fn migrate(pool: &PgPool) -> Result<(), sqlx::migrate::MigrateError> {
    MIGRATOR.run(pool).await?;
    crate::queue::partitions::prepare_partitions(pool, crate::queue::DAYS_AHEAD)
        .await
        .map_err(sqlx::migrate::MigrateError::Execute)?;
    Ok(())
}

#[derive(Clone)]
pub struct PgQueueStore {
    pool: PgPool,
    commit_timeout: Duration,
}

impl PgQueueStore {
    pub fn new(pool: PgPool, commit_timeout: Duration) -> Self {
        Self {
            pool,
            commit_timeout,
        }
    }

    pub fn pool(&self) -> &PgPool {
        &self.pool
    }
}

/// One statement, so one round trip and one implicit transaction: the message row and its job
/// rows commit together or not at all.
const COMMIT_SQL: &str = "
WITH message AS (
    INSERT INTO messages (id, received_at, mail_from, helo, client_ip, protocol, body_type,
                          smtputf8, dsn_ret, dsn_envid, size, body, trace_context,
                          header_message_id, reports_on)
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $17, $18, $19)
    RETURNING id, received_at
)
INSERT INTO jobs (message_id, rcpt_index, recipient, domain, dsn_notify, dsn_orcpt, next_attempt_at)
SELECT message.id, (r.ord - 1)::integer, r.recipient, r.domain, r.notify, r.orcpt, message.received_at
  FROM message,
       unnest($13::text[], $14::text[], $15::text[], $16::text[])
         WITH ORDINALITY AS r (recipient, domain, notify, orcpt, ord)";

/// The statement that commits `message` and its jobs; also used inside the transaction that
/// queues a delivery status notification.
pub(crate) fn commit_query(
    message: &NewMessage,
) -> sqlx::query::Query<'_, sqlx::Postgres, sqlx::postgres::PgArguments> {
    let recipients = &message.recipients;
    let addresses: Vec<&str> = recipients.iter().map(|r| r.address.as_str()).collect();
    let domains: Vec<&str> = recipients.iter().map(|r| r.domain.as_str()).collect();
    let notify: Vec<Option<String>> = recipients
        .iter()
        .map(|r| r.dsn_notify.map(|notify| notify.to_string()))
        .collect();
    let orcpt: Vec<Option<&str>> = recipients.iter().map(|r| r.dsn_orcpt.as_deref()).collect();
    let size = i64::try_from(message.body.len()).unwrap_or(i64::MAX);
    sqlx::query(COMMIT_SQL)
        .bind(message.id)
        .bind(message.received_at)
        .bind(&message.mail_from)
        .bind(&message.helo)
        .bind(ipnet::IpNet::from(message.client_ip))
        .bind(message.protocol)
        .bind(message.body_type.as_str())
        .bind(message.smtputf8)
        .bind(message.dsn_ret.map(Ret::as_str))
        .bind(message.dsn_envid.as_deref())
        .bind(size)
        .bind(message.body.as_slice())
        .bind(addresses)
        .bind(domains)
        .bind(notify)
        .bind(orcpt)
        .bind(message.trace_context.as_ref().map(TraceContext::to_stored))
        .bind(tern_smtp::header::field(&message.body, "Message-ID"))
        .bind(message.reports_on)
}

impl QueueStore for PgQueueStore {
    async fn commit(&self, message: &NewMessage) -> Result<(), QueueError> {
        let query = commit_query(message);
        match tokio::time::timeout(self.commit_timeout, query.execute(&self.pool)).await {
            Err(_) => Err(QueueError::Timeout),
            Ok(Err(error)) => Err(error.into()),
            Ok(Ok(_)) => Ok(()),
        }
    }
}
