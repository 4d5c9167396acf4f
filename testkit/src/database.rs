//! A fresh, migrated database per test.
//!
//! The first test to need one creates a template database with every migration applied; each
//! test then clones it (`CREATE DATABASE … TEMPLATE …`), which is much faster than migrating.
//! The template's name carries a digest of the migrations, so changing them makes a new one.

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{AssertSqlSafe, Connection, Executor, PgConnection, PgPool};

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../migrations");

/// Taken around template creation and cloning: two `CREATE DATABASE` from one template at once
/// fail with "source database is being accessed by other users".
const TEMPLATE_LOCK: i64 = 0x7465_726e_7465_7374;

pub struct TestDatabase {
    pub name: String,
    pub url: String,
    pub pool: PgPool,
}

impl TestDatabase {
    pub async fn create() -> Self {
        Self::create_on(&crate::services::database_url()).await
    }

    /// Creates a migrated database on the server whose maintenance URL is `admin_url`.
    pub async fn create_on(admin_url: &str) -> Self {
        let admin_options: PgConnectOptions = admin_url
            .parse()
            .expect("TERN_TEST_DATABASE_URL is a PostgreSQL URL");
        let mut admin = PgConnection::connect_with(&admin_options)
            .await
            .unwrap_or_else(|error| {
                panic!("cannot connect to the test PostgreSQL at {admin_url}: {error}")
            });
        let template = template_name();
        let name = format!("tern_test_{}", uuid::Uuid::new_v4().simple());
        sqlx::query("SELECT pg_advisory_lock($1)")
            .bind(TEMPLATE_LOCK)
            .execute(&mut admin)
            .await
            .expect("lock");
        let exists: bool =
            sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)")
                .bind(&template)
                .fetch_one(&mut admin)
                .await
                .expect("query pg_database");
        if !exists {
            create_template(&mut admin, &admin_options, &template).await;
        }
        admin
            .execute(AssertSqlSafe(format!(
                "CREATE DATABASE \"{name}\" TEMPLATE \"{template}\""
            )))
            .await
            .expect("clone the template database");
        sqlx::query("SELECT pg_advisory_unlock($1)")
            .bind(TEMPLATE_LOCK)
            .execute(&mut admin)
            .await
            .expect("unlock");
        let _ = admin.close().await;

        let url = replace_database(admin_url, &name);
        let database = Self::open(name, url).await;
        // The template may have been made days ago: today's partitions, as a worker makes them.
        sqlx::query("SELECT queue_prepare_partitions(3)")
            .execute(&database.pool)
            .await
            .expect("make today's partitions");
        database
    }

    /// A database with no migration applied, for tests of the migrations themselves.
    pub async fn empty() -> Self {
        let admin_url = crate::services::database_url();
        let mut admin = PgConnection::connect(&admin_url)
            .await
            .unwrap_or_else(|error| {
                panic!("cannot connect to the test PostgreSQL at {admin_url}: {error}")
            });
        let name = format!("tern_test_{}", uuid::Uuid::new_v4().simple());
        admin
            .execute(AssertSqlSafe(format!("CREATE DATABASE \"{name}\"")))
            .await
            .expect("create the database");
        let _ = admin.close().await;
        let url = replace_database(&admin_url, &name);
        Self::open(name, url).await
    }

    /// Another handle on the same database with its own connection pool, as a second process
    /// would have.
    pub async fn reopen(&self) -> Self {
        Self::open(self.name.clone(), self.url.clone()).await
    }

    async fn open(name: String, url: String) -> Self {
        let pool = PgPoolOptions::new()
            .max_connections(8)
            .connect(&url)
            .await
            .expect("connect to the test database");
        Self { name, url, pool }
    }
}

async fn create_template(
    admin: &mut PgConnection,
    admin_options: &PgConnectOptions,
    template: &str,
) {
    // A half-made template from an interrupted run would otherwise be cloned forever.
    admin
        .execute(AssertSqlSafe(format!(
            "DROP DATABASE IF EXISTS \"{template}_building\""
        )))
        .await
        .expect("drop");
    admin
        .execute(AssertSqlSafe(format!(
            "CREATE DATABASE \"{template}_building\""
        )))
        .await
        .expect("create template");
    {
        let mut conn = PgConnection::connect_with(
            &admin_options
                .clone()
                .database(&format!("{template}_building")),
        )
        .await
        .expect("connect to the template");
        MIGRATOR.run(&mut conn).await.expect("migrate the template");
        let _ = conn.close().await;
    }
    admin
        .execute(AssertSqlSafe(format!(
            "ALTER DATABASE \"{template}_building\" RENAME TO \"{template}\""
        )))
        .await
        .expect("publish the template");
}

fn template_name() -> String {
    // FNV-1a over every migration's version and checksum.
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for migration in MIGRATOR.iter() {
        for byte in migration
            .version
            .to_le_bytes()
            .iter()
            .chain(migration.checksum.iter())
        {
            hash ^= u64::from(*byte);
            hash = hash.wrapping_mul(0x0100_0000_01b3);
        }
    }
    format!("tern_template_{hash:016x}")
}

/// `postgres://u@h:p/postgres?x` → `postgres://u@h:p/<name>?x`.
fn replace_database(url: &str, name: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((base, query)) => (base, format!("?{query}")),
        None => (url, String::new()),
    };
    let scheme_end = base.find("://").map_or(0, |i| i + 3);
    match base[scheme_end..].find('/') {
        Some(slash) => format!("{}/{name}{query}", &base[..scheme_end + slash]),
        None => format!("{base}/{name}{query}"),
    }
}

#[cfg(test)]
mod tests {
    use super::replace_database;

    #[test]
    fn database_name_is_replaced_in_urls() {
        assert_eq!(
            replace_database("postgres://tern@127.0.0.1:5/postgres", "x"),
            "postgres://tern@127.0.0.1:5/x"
        );
        assert_eq!(
            replace_database("postgres://tern@h:5", "x"),
            "postgres://tern@h:5/x"
        );
        assert_eq!(
            replace_database("postgres://h/db?sslmode=disable", "x"),
            "postgres://h/x?sslmode=disable"
        );
    }
}
