//! Where the database comes from: `DATABASE_URL`, or an embedded cluster
//! under `./.orderstream/pg` started for this process.

use std::path::Path;

use anyhow::Context;
use event_store::{EventStore, StoreOptions};
use pg_embedded::{Cluster, ClusterOptions};

const EMBEDDED_DATA_DIR: &str = ".orderstream/pg";
const EMBEDDED_DATABASE: &str = "orderstream";

pub struct Database {
    store: EventStore,
    description: String,
    embedded: Option<Cluster>,
}

impl Database {
    pub async fn from_environment(options: &StoreOptions) -> anyhow::Result<Database> {
        match std::env::var("DATABASE_URL") {
            Ok(url) => {
                let store = EventStore::connect(&url, options).await.with_context(|| {
                    format!("could not connect to DATABASE_URL ({})", redact(&url))
                })?;
                Ok(Database {
                    store,
                    description: redact(&url),
                    embedded: None,
                })
            }
            Err(_) => Database::embedded(options).await,
        }
    }

    async fn embedded(options: &StoreOptions) -> anyhow::Result<Database> {
        let data_dir = Path::new(EMBEDDED_DATA_DIR);
        let cluster = tokio::task::spawn_blocking(move || {
            Cluster::start_persistent(data_dir, &ClusterOptions::default())
        })
        .await
        .context("the embedded PostgreSQL start-up task failed")?
        .context("could not start the embedded PostgreSQL (or set DATABASE_URL)")?;
        let admin = sqlx::PgPool::connect(&cluster.url("postgres")).await?;
        let exists: bool =
            sqlx::query_scalar("SELECT EXISTS (SELECT FROM pg_database WHERE datname = $1)")
                .bind(EMBEDDED_DATABASE)
                .fetch_one(&admin)
                .await?;
        if !exists {
            sqlx::query(&format!("CREATE DATABASE {EMBEDDED_DATABASE}"))
                .execute(&admin)
                .await?;
        }
        admin.close().await;
        let url = cluster.url(EMBEDDED_DATABASE);
        let store = EventStore::connect(&url, options).await?;
        Ok(Database {
            store,
            description: format!(
                "embedded PostgreSQL at {url} (data in {})",
                cluster.data_dir().display()
            ),
            embedded: Some(cluster),
        })
    }

    pub fn store(&self) -> &EventStore {
        &self.store
    }

    pub fn description(&self) -> &str {
        &self.description
    }

    pub async fn migrate(&self) -> anyhow::Result<()> {
        self.store
            .migrate()
            .await
            .context("could not migrate the database")
    }

    /// Closes connections, then stops the embedded cluster if we started it.
    pub async fn shut_down(self) {
        self.store.pool().close().await;
        if let Some(cluster) = self.embedded {
            let _ = tokio::task::spawn_blocking(move || cluster.stop()).await;
        }
    }
}

/// The URL without its password, for logs and errors.
fn redact(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut parsed) => {
            if parsed.password().is_some() {
                let _ = parsed.set_password(Some("***"));
            }
            parsed.to_string()
        }
        Err(_) => "<unparseable url>".into(),
    }
}
