//! Where the database comes from (`DATABASE_URL`, or an embedded cluster
//! started for this process), and whether its schema is up to date.

use anyhow::{bail, Context};
use event_store::{EventStore, StoreOptions};
use pg_embedded::{Cluster, ClusterOptions};

use crate::config::{Config, DatabaseSource};

/// PostgreSQL's `insufficient_privilege`: also "must be owner of ...".
const INSUFFICIENT_PRIVILEGE: &str = "42501";

pub struct Database {
    store: EventStore,
    embedded: Option<Cluster>,
}

impl Database {
    pub async fn open(config: &Config) -> anyhow::Result<Database> {
        match &config.database {
            DatabaseSource::Url(url) => {
                let store = EventStore::connect(url, &config.store)
                    .await
                    .with_context(|| {
                        format!(
                            "could not connect to DATABASE_URL ({})",
                            config.database.describe()
                        )
                    })?;
                Ok(Database {
                    store,
                    embedded: None,
                })
            }
            DatabaseSource::Embedded {
                data_dir,
                database,
                cluster,
            } => Database::embedded(data_dir, database, cluster, &config.store).await,
        }
    }

    async fn embedded(
        data_dir: &std::path::Path,
        database: &str,
        options: &ClusterOptions,
        store_options: &StoreOptions,
    ) -> anyhow::Result<Database> {
        let cluster = tokio::task::spawn_blocking({
            let data_dir = data_dir.to_path_buf();
            let options = options.clone();
            move || Cluster::start_persistent(&data_dir, &options)
        })
        .await
        .context("the embedded PostgreSQL start-up task failed")?
        .context("could not start the embedded PostgreSQL (or set DATABASE_URL)")?;
        let admin = sqlx::PgPool::connect(&cluster.url("postgres")).await?;
        let exists: bool =
            sqlx::query_scalar("SELECT EXISTS (SELECT FROM pg_database WHERE datname = $1)")
                .bind(database)
                .fetch_one(&admin)
                .await?;
        if !exists {
            sqlx::query(&format!(r#"CREATE DATABASE "{database}""#))
                .execute(&admin)
                .await?;
        }
        admin.close().await;
        let store = EventStore::connect(&cluster.url(database), store_options).await?;
        tracing::info!(
            data_dir = %cluster.data_dir().display(),
            socket_dir = %cluster.socket_dir().display(),
            "embedded PostgreSQL ready (unix socket only, private to this OS user)"
        );
        Ok(Database {
            store,
            embedded: Some(cluster),
        })
    }

    pub fn store(&self) -> &EventStore {
        &self.store
    }

    /// `orderstream migrate`: applies every pending migration.
    pub async fn migrate(&self) -> anyhow::Result<()> {
        self.store
            .migrate()
            .await
            .context("could not migrate the database")
    }

    /// Before serving: nothing to do when every migration is applied (so a
    /// role without DDL rights can serve); otherwise applies them if this
    /// connection may (the embedded cluster, or the schema's owner), and
    /// refuses to start if it may not.
    pub async fn ensure_migrated(&self) -> anyhow::Result<()> {
        let pending = self
            .store
            .pending_migrations()
            .await
            .context("could not read which migrations are applied (table _sqlx_migrations)")?;
        if pending.is_empty() {
            return Ok(());
        }
        let count = pending.len();
        tracing::info!(count, "applying pending migrations");
        match self.store.migrate().await {
            Ok(()) => Ok(()),
            Err(error) if self.embedded.is_none() && lacks_privilege(&error) => bail!(
                "{count} migrations are not applied; run `orderstream migrate` as the database \
                 owner (this role may not: {error})"
            ),
            Err(error) => Err(error).context("could not migrate the database"),
        }
    }

    /// Closes connections, then stops the embedded cluster if we started it.
    pub async fn shut_down(self) {
        self.store.pool().close().await;
        if let Some(cluster) = self.embedded {
            let _ = tokio::task::spawn_blocking(move || cluster.stop()).await;
        }
    }
}

fn lacks_privilege(error: &sqlx::migrate::MigrateError) -> bool {
    use sqlx::migrate::MigrateError;
    let database_error = match error {
        MigrateError::Execute(sqlx::Error::Database(error))
        | MigrateError::ExecuteMigration(sqlx::Error::Database(error), _) => error,
        _ => return false,
    };
    database_error.code().as_deref() == Some(INSUFFICIENT_PRIVILEGE)
}
