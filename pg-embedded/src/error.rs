//! Errors from starting a private cluster or creating a test database.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum EmbeddedError {
    #[error(
        "no PostgreSQL server binaries found (looked for initdb and postgres via `pg_config --bindir` \
         and in /usr/lib/postgresql/*/bin): install them (`apt-get install -y postgresql`) \
         or set DATABASE_URL to an existing server"
    )]
    BinariesNotFound,
    #[error("no `{program}` beside the server binaries in {bin_dir}")]
    ProgramNotFound { program: String, bin_dir: PathBuf },
    #[error("`{command}` failed: {output}")]
    CommandFailed { command: String, output: String },
    #[error("could not prepare {path}: {source}")]
    Filesystem {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("could not run `{command}`: {source}")]
    Spawn {
        command: String,
        #[source]
        source: std::io::Error,
    },
    #[error("PostgreSQL did not become ready within {seconds} s; see its log at {log}")]
    NotReady { seconds: u64, log: PathBuf },
    #[error("PostgreSQL exited during start-up; see its log at {log}")]
    ExitedEarly { log: PathBuf },
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    #[error("migration failed: {0}")]
    Migration(#[from] sqlx::migrate::MigrateError),
}
