//! Errors from creating a test database or restoring one.

#[derive(Debug, thiserror::Error)]
pub enum TestSupportError {
    #[error("the test cluster: {0}")]
    Cluster(#[from] pg_embedded::EmbeddedError),
    #[error("a blocking task of the test set-up failed: {0}")]
    Task(#[from] tokio::task::JoinError),
    #[error("`{command}` failed: {output}")]
    CommandFailed { command: String, output: String },
    #[error("could not run `{command}`: {source}")]
    Spawn {
        command: String,
        #[source]
        source: std::io::Error,
    },
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    #[error("migration failed: {0}")]
    Migration(#[from] sqlx::migrate::MigrateError),
}
