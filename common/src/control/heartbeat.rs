//! Each running ingress, worker and API process keeps a row in `processes`: what it is, since
//! when, the control-plane revision it runs and its settings (secrets redacted), so an operator
//! sees in `GET /v1/cluster` that a change reached every pod. The row is refreshed every
//! [`EVERY`] and deleted when the process stops; a row whose heartbeat is old is a process that
//! died without saying so.

use std::time::Duration;

use sqlx::PgPool;
use time::OffsetDateTime;
use tokio_util::sync::CancellationToken;

use super::watch::ControlWatch;

pub const EVERY: Duration = Duration::from_secs(10);

/// Who this process is.
#[derive(Debug, Clone)]
pub struct Process {
    pub id: String,
    pub component: &'static str,
    pub version: &'static str,
    pub started_at: OffsetDateTime,
    pub settings: serde_json::Value,
}

/// A process as `GET /v1/cluster` lists it.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct ProcessRow {
    pub id: String,
    pub component: String,
    pub version: String,
    pub started_at: OffsetDateTime,
    pub heartbeat_at: OffsetDateTime,
    pub revision: i64,
    pub settings: serde_json::Value,
}

/// Beats every [`EVERY`] and at once when the snapshot is swapped, until `stop`; then removes
/// the row. `control`: where the revision in force comes from (none for the API, which holds no
/// snapshot: it reports the stored revision).
pub async fn run(
    pool: PgPool,
    process: Process,
    mut control: Option<ControlWatch>,
    stop: CancellationToken,
) {
    loop {
        let revision = control.as_ref().map(|watch| watch.current().revision);
        if let Err(error) = beat(&pool, &process, revision).await {
            tracing::debug!(%error, "heartbeat not written");
        }
        let swapped = async {
            match control.as_mut() {
                Some(watch) => watch.changed().await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            () = stop.cancelled() => break,
            () = swapped => {}
            () = tokio::time::sleep(EVERY) => {}
        }
    }
    let _ = sqlx::query("DELETE FROM processes WHERE id = $1")
        .bind(&process.id)
        .execute(&pool)
        .await;
}

async fn beat(pool: &PgPool, process: &Process, revision: Option<i64>) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO processes (id, component, version, started_at, heartbeat_at, revision, settings)
         VALUES ($1, $2, $3, $4, now(),
                 COALESCE($5, (SELECT revision FROM control_revision)), $6)
         ON CONFLICT (id) DO UPDATE
            SET heartbeat_at = now(), revision = EXCLUDED.revision, settings = EXCLUDED.settings",
    )
    .bind(&process.id)
    .bind(process.component)
    .bind(process.version)
    .bind(process.started_at)
    .bind(revision)
    .bind(&process.settings)
    .execute(pool)
    .await?;
    Ok(())
}

/// The processes table, read.
#[derive(Clone)]
pub struct Processes {
    pool: PgPool,
}

impl Processes {
    pub fn new(pool: PgPool) -> Self {
        Self { pool }
    }

    /// Every process that beat within `within`; see [`list`].
    pub async fn list(&self, within: Duration) -> Result<Vec<ProcessRow>, sqlx::Error> {
        list(&self.pool, within).await
    }
}

/// Every process that beat within `within`, by component and id; rows six times older are
/// deleted (their processes died without removing them).
pub async fn list(pool: &PgPool, within: Duration) -> Result<Vec<ProcessRow>, sqlx::Error> {
    let within = within.as_secs_f64();
    sqlx::query("DELETE FROM processes WHERE heartbeat_at < now() - make_interval(secs => $1 * 6)")
        .bind(within)
        .execute(pool)
        .await?;
    sqlx::query_as(
        "SELECT id, component, version, started_at, heartbeat_at, revision, settings
           FROM processes WHERE heartbeat_at >= now() - make_interval(secs => $1)
          ORDER BY component, id",
    )
    .bind(within)
    .fetch_all(pool)
    .await
}

/// A setting's value fit to show: passwords in URLs and secret-named settings redacted.
pub fn redact(name: &str, value: &str) -> String {
    let upper = name.to_ascii_uppercase();
    if ["PASSWORD", "SECRET", "TOKEN", "KEY"]
        .iter()
        .any(|word| upper.contains(word) && !upper.ends_with("_FILE"))
    {
        return "(redacted)".to_owned();
    }
    // scheme://user:password@host → scheme://user:(redacted)@host
    if let Some((scheme, rest)) = value.split_once("://")
        && let Some((credentials, host)) = rest.split_once('@')
        && let Some((user, _)) = credentials.split_once(':')
    {
        return format!("{scheme}://{user}:(redacted)@{host}");
    }
    value.to_owned()
}

/// This process's `TERN_*` and `OTEL_*` settings from its environment, redacted.
pub fn settings_from_env() -> serde_json::Value {
    let mut settings = serde_json::Map::new();
    let mut vars: Vec<(String, String)> = std::env::vars()
        .filter(|(name, _)| name.starts_with("TERN_") || name.starts_with("OTEL_"))
        .collect();
    vars.sort();
    for (name, value) in vars {
        let shown = redact(&name, &value);
        settings.insert(name, serde_json::Value::String(shown));
    }
    serde_json::Value::Object(settings)
}

#[cfg(test)]
mod tests {
    use super::redact;

    #[test]
    fn secrets_are_redacted_and_the_rest_shown() {
        assert_eq!(
            redact("TERN_DATABASE_URL", "postgres://tern:hunter2@db:5432/tern"),
            "postgres://tern:(redacted)@db:5432/tern"
        );
        assert_eq!(
            redact("TERN_DATABASE_URL", "postgres://tern@db/tern"),
            "postgres://tern@db/tern"
        );
        assert_eq!(redact("TERN_API_TOKEN", "abc"), "(redacted)");
        assert_eq!(
            redact("OTEL_EXPORTER_OTLP_HEADERS_SECRET", "x"),
            "(redacted)"
        );
        assert_eq!(
            redact("TERN_API_BOOTSTRAP_TOKEN_FILE", "/run/secrets/token"),
            "/run/secrets/token"
        );
        assert_eq!(redact("TERN_INGRESS_HOSTNAME", "mx.example"), "mx.example");
    }
}
