//! Errors from starting a private cluster.

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
    #[error(
        "PostgreSQL did not become ready within {seconds} s; the end of its log ({log}):\n{tail}"
    )]
    NotReady {
        seconds: u64,
        log: PathBuf,
        tail: String,
    },
    #[error("PostgreSQL exited during start-up; the end of its log ({log}):\n{tail}")]
    ExitedEarly { log: PathBuf, tail: String },
    #[error(
        "a PostgreSQL server (pid {pid}) runs on {data_dir} but not on the socket directory \
         {socket_dir} (started by another program or an older orderstream): stop it first"
    )]
    ForeignServer {
        pid: u32,
        data_dir: PathBuf,
        socket_dir: PathBuf,
    },
    #[error(
        "the socket directory {path} is {length} bytes long, PostgreSQL allows {max}: \
         run from a shorter directory or set DATABASE_URL"
    )]
    SocketPathTooLong {
        path: PathBuf,
        length: usize,
        max: usize,
    },
}
