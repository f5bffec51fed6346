//! One fresh, migrated database per test, cloned from a template database.

use std::collections::BTreeMap;
use std::sync::Arc;

use pg_embedded::{Cluster, ClusterOptions};
use sqlx::migrate::Migrator;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{ConnectOptions, Connection, PgConnection, PgPool};
use tokio::sync::{Mutex, OnceCell};

use crate::TestSupportError;

/// The server every test of this process uses: `DATABASE_URL` when set,
/// else a private throwaway cluster started on first use.
struct TestServer {
    admin_url: String,
    _cluster: Option<Cluster>,
}

static SERVER: OnceCell<TestServer> = OnceCell::const_new();
/// One template per set of migrations (a process may test orderstream's
/// database and Finance's side by side).
static TEMPLATES: Mutex<BTreeMap<u64, Arc<OnceCell<String>>>> = Mutex::const_new(BTreeMap::new());

/// A database of its own for one test, with every migration applied.
#[derive(Debug, Clone)]
pub struct TestDatabase {
    name: String,
    url: String,
    pool: PgPool,
}

impl TestDatabase {
    /// Creates a fresh database from a template that `migrator` built once
    /// per process (and per set of migrations, across processes).
    pub async fn new(migrator: &'static Migrator) -> Result<TestDatabase, TestSupportError> {
        let server = SERVER.get_or_try_init(start_server).await?;
        let cell = TEMPLATES
            .lock()
            .await
            .entry(migrations_digest(migrator))
            .or_default()
            .clone();
        let template = cell
            .get_or_try_init(|| create_template(&server.admin_url, migrator))
            .await?;
        let name = format!("orderstream_test_{}", uuid::Uuid::new_v4().simple());
        let mut admin = admin_connection(&server.admin_url).await?;
        sqlx::query(&format!(
            r#"CREATE DATABASE "{name}" TEMPLATE "{template}""#
        ))
        .execute(&mut admin)
        .await?;
        admin.close().await?;
        let url = database_url(&server.admin_url, &name);
        let pool = PgPoolOptions::new()
            .max_connections(16)
            .connect(&url)
            .await?;
        Ok(TestDatabase { name, url, pool })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// URL of this test's database, for code that makes its own pools.
    pub fn url(&self) -> &str {
        &self.url
    }

    pub fn pool(&self) -> &PgPool {
        &self.pool
    }
}

async fn start_server() -> Result<TestServer, TestSupportError> {
    if let Ok(url) = std::env::var("DATABASE_URL") {
        return Ok(TestServer {
            admin_url: url,
            _cluster: None,
        });
    }
    let options = ClusterOptions {
        unsafe_fast: true,
        settings: vec![("max_connections".into(), "500".into())],
    };
    let cluster = tokio::task::spawn_blocking(move || Cluster::start_temporary(&options)).await??;
    Ok(TestServer {
        admin_url: cluster.url("postgres"),
        _cluster: Some(cluster),
    })
}

async fn admin_connection(admin_url: &str) -> Result<PgConnection, TestSupportError> {
    let options: PgConnectOptions = admin_url.parse()?;
    Ok(options.disable_statement_logging().connect().await?)
}

/// `admin_url` with its database replaced by `database`; query parameters
/// (a socket directory, `sslmode`...) are kept.
fn database_url(admin_url: &str, database: &str) -> String {
    let (base, query) = match admin_url.split_once('?') {
        Some((base, query)) => (base, Some(query)),
        None => (admin_url, None),
    };
    let scheme_end = base.find("://").map_or(0, |index| index + 3);
    let server = match base[scheme_end..].find('/') {
        Some(slash) => &base[..scheme_end + slash],
        None => base,
    };
    match query {
        Some(query) => format!("{server}/{database}?{query}"),
        None => format!("{server}/{database}"),
    }
}

/// Builds the template under a temporary name and renames it into place,
/// so a half-migrated template is never used; the name carries a digest of
/// the migrations, so a changed migration gets a new template.
async fn create_template(
    admin_url: &str,
    migrator: &'static Migrator,
) -> Result<String, TestSupportError> {
    let digest = migrations_digest(migrator);
    let template = format!("orderstream_template_{digest:016x}");
    let mut admin = admin_connection(admin_url).await?;
    let exists: bool =
        sqlx::query_scalar("SELECT EXISTS (SELECT FROM pg_database WHERE datname = $1)")
            .bind(&template)
            .fetch_one(&mut admin)
            .await?;
    if exists {
        return Ok(template);
    }
    let building = format!("orderstream_building_{}", uuid::Uuid::new_v4().simple());
    sqlx::query(&format!(r#"CREATE DATABASE "{building}""#))
        .execute(&mut admin)
        .await?;
    let mut connection = admin_connection(&database_url(admin_url, &building)).await?;
    migrator.run(&mut connection).await?;
    connection.close().await?;
    let rename = format!(r#"ALTER DATABASE "{building}" RENAME TO "{template}""#);
    match run_when_unused(&mut admin, &rename).await {
        Ok(()) => {}
        Err(TestSupportError::Database(sqlx::Error::Database(error)))
            if error.code().as_deref() == Some(DUPLICATE_DATABASE) =>
        {
            // Another process made the same template first; use theirs.
            let drop = format!(r#"DROP DATABASE IF EXISTS "{building}""#);
            run_when_unused(&mut admin, &drop).await?;
        }
        Err(error) => return Err(error),
    }
    admin.close().await?;
    Ok(template)
}

const DUPLICATE_DATABASE: &str = "42P04";
const OBJECT_IN_USE: &str = "55006";

/// Runs a statement that needs a database to have no sessions. A backend
/// ends a moment after its client disconnects, so "in use" right after
/// closing our own pool is retried for a while.
async fn run_when_unused(
    admin: &mut PgConnection,
    statement: &str,
) -> Result<(), TestSupportError> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        match sqlx::query(statement).execute(&mut *admin).await {
            Ok(_) => return Ok(()),
            Err(sqlx::Error::Database(error))
                if error.code().as_deref() == Some(OBJECT_IN_USE)
                    && std::time::Instant::now() < deadline =>
            {
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            }
            Err(error) => return Err(error.into()),
        }
    }
}

fn migrations_digest(migrator: &Migrator) -> u64 {
    // FNV-1a: stable across processes and Rust versions, unlike `DefaultHasher`.
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for migration in migrator.iter() {
        let bytes = migration
            .version
            .to_le_bytes()
            .into_iter()
            .chain(migration.checksum.iter().copied());
        for byte in bytes {
            hash ^= u64::from(byte);
            hash = hash.wrapping_mul(0x0100_0000_01b3);
        }
    }
    hash
}

#[cfg(test)]
mod tests {
    use super::database_url;

    #[test]
    fn the_database_is_replaced_and_the_parameters_kept() {
        assert_eq!(
            database_url("postgres://u@h:5432/db?sslmode=disable", "other"),
            "postgres://u@h:5432/other?sslmode=disable"
        );
        assert_eq!(
            database_url("postgres://u@h:5432", "other"),
            "postgres://u@h:5432/other"
        );
        assert_eq!(
            database_url(
                "postgres://postgres@localhost/postgres?host=/tmp/x/socket&port=5432",
                "t"
            ),
            "postgres://postgres@localhost/t?host=/tmp/x/socket&port=5432"
        );
    }
}
