//! The installed PostgreSQL binaries, the OS user that runs them, and the
//! files and directories of a cluster, kept private to that user.

use std::fs;
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::EmbeddedError;

/// The OS user that owns and runs the cluster when we are root.
pub(crate) const SERVICE_USER: &str = "postgres";
/// The cluster's superuser (initdb `-U`).
pub(crate) const SUPERUSER: &str = "postgres";

/// Every connection comes through the unix socket, whose directory only the
/// cluster's OS user (and root) may enter: that directory is the access
/// control, so the socket itself can trust whoever reaches it. No `host`
/// line: should TCP ever be switched on, every TCP connection is refused.
const PG_HBA: &str = "\
# Written by orderstream at every start; edits are overwritten.
# The only way in is the unix socket in a 0700 directory owned by the
# cluster's OS user, so only that user (and root) can connect.
local all all trust
";

/// Where a cluster keeps its data, its socket and its log.
#[derive(Debug, Clone)]
pub(crate) struct Layout {
    pub data_dir: PathBuf,
    pub socket_dir: PathBuf,
    pub log: PathBuf,
}

pub(crate) fn running_as_root() -> bool {
    fs::metadata("/proc/self").is_ok_and(|meta| meta.uid() == 0)
}

/// `initdb`, `postgres` and `pg_ctl` live together; prefer `pg_config`'s
/// answer, then the newest version under /usr/lib/postgresql.
pub(crate) fn find_bin_dir() -> Result<PathBuf, EmbeddedError> {
    let has_server = |dir: &Path| dir.join("initdb").exists() && dir.join("postgres").exists();
    if let Ok(output) = Command::new("pg_config").arg("--bindir").output() {
        if output.status.success() {
            let dir = PathBuf::from(String::from_utf8_lossy(&output.stdout).trim());
            if has_server(&dir) {
                return Ok(dir);
            }
        }
    }
    let mut candidates: Vec<(u32, PathBuf)> = fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let version = entry.file_name().to_string_lossy().parse::<u32>().ok()?;
            Some((version, entry.path().join("bin")))
        })
        .filter(|(_, dir)| has_server(dir))
        .collect();
    candidates.sort();
    candidates
        .pop()
        .map(|(_, dir)| dir)
        .ok_or(EmbeddedError::BinariesNotFound)
}

/// A command that runs `program` as the service user when we are root.
pub(crate) fn command_as_service_user(program: &Path) -> Command {
    if running_as_root() {
        let mut command = Command::new("runuser");
        command.args(["-u", SERVICE_USER, "--"]).arg(program);
        command
    } else {
        Command::new(program)
    }
}

/// Runs `command`, turning a failure into an error that carries its output.
pub(crate) fn run(mut command: Command, what: &str) -> Result<(), EmbeddedError> {
    let output = command.output().map_err(|source| EmbeddedError::Spawn {
        command: what.to_owned(),
        source,
    })?;
    if output.status.success() {
        Ok(())
    } else {
        Err(EmbeddedError::CommandFailed {
            command: what.to_owned(),
            output: String::from_utf8_lossy(&output.stderr).into_owned(),
        })
    }
}

pub(crate) fn give_to_service_user(path: &Path) -> Result<(), EmbeddedError> {
    if !running_as_root() {
        return Ok(());
    }
    let mut chown = Command::new("chown");
    chown.args(["-R", &format!("{SERVICE_USER}:")]).arg(path);
    run(
        chown,
        &format!("chown -R {SERVICE_USER}: {}", path.display()),
    )
}

pub(crate) fn filesystem(path: &Path) -> impl FnOnce(std::io::Error) -> EmbeddedError + '_ {
    move |source| EmbeddedError::Filesystem {
        path: path.to_path_buf(),
        source,
    }
}

/// The longest socket directory path: a unix socket's path (the directory
/// and `/.s.PGSQL.5432`) must fit in 107 bytes.
const MAX_SOCKET_DIR_BYTES: usize = 107 - "/.s.PGSQL.5432".len();

/// Creates (or locks down) the socket directory: a real directory, mode
/// 0700, owned by the cluster's OS user.
pub(crate) fn prepare_socket_dir(socket_dir: &Path) -> Result<(), EmbeddedError> {
    let length = socket_dir.as_os_str().len();
    if length > MAX_SOCKET_DIR_BYTES {
        return Err(EmbeddedError::SocketPathTooLong {
            path: socket_dir.to_path_buf(),
            length,
            max: MAX_SOCKET_DIR_BYTES,
        });
    }
    match fs::symlink_metadata(socket_dir) {
        Ok(meta) if meta.is_dir() => {}
        Ok(_) => {
            return Err(EmbeddedError::Filesystem {
                path: socket_dir.to_path_buf(),
                source: std::io::Error::other("exists and is not a directory"),
            })
        }
        Err(_) => fs::DirBuilder::new()
            .mode(0o700)
            .create(socket_dir)
            .map_err(filesystem(socket_dir))?,
    }
    fs::set_permissions(socket_dir, fs::Permissions::from_mode(0o700))
        .map_err(filesystem(socket_dir))?;
    give_to_service_user(socket_dir)
}

/// Opens the server's log for appending, readable by its owner only.
pub(crate) fn open_log(log: &Path) -> Result<fs::File, EmbeddedError> {
    let file = fs::OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(log)
        .map_err(filesystem(log))?;
    // A log made by an earlier version may be world-readable.
    file.set_permissions(fs::Permissions::from_mode(0o600))
        .map_err(filesystem(log))?;
    Ok(file)
}

/// The last `lines` lines of `log` written after byte `from`, for an error
/// message: what the server said when it failed.
pub(crate) fn log_tail(log: &Path, from: u64, lines: usize) -> String {
    let Ok(bytes) = fs::read(log) else {
        return String::from("(the log could not be read)");
    };
    let start = usize::try_from(from).unwrap_or(0).min(bytes.len());
    let text = String::from_utf8_lossy(&bytes[start..]);
    let all: Vec<&str> = text.lines().collect();
    let tail = all[all.len().saturating_sub(lines)..].join("\n");
    if tail.is_empty() {
        String::from("(the log is empty)")
    } else {
        tail
    }
}

pub(crate) fn init_cluster(
    bin_dir: &Path,
    data_dir: &Path,
    no_sync: bool,
) -> Result<(), EmbeddedError> {
    fs::create_dir_all(data_dir).map_err(filesystem(data_dir))?;
    fs::set_permissions(data_dir, fs::Permissions::from_mode(0o700))
        .map_err(filesystem(data_dir))?;
    give_to_service_user(data_dir)?;
    let mut initdb = command_as_service_user(&bin_dir.join("initdb"));
    initdb.arg("-D").arg(data_dir).args([
        "-U",
        SUPERUSER,
        "--auth=trust",
        "-E",
        "UTF8",
        "--locale=C",
    ]);
    if no_sync {
        initdb.arg("--no-sync");
    }
    run(initdb, &format!("initdb -D {}", data_dir.display()))
}

/// Replaces `pg_hba.conf` with the socket-only rules; also locks down a
/// cluster made by an earlier version, which allowed TCP from 127.0.0.1.
pub(crate) fn write_hba(data_dir: &Path) -> Result<(), EmbeddedError> {
    let path = data_dir.join("pg_hba.conf");
    // Truncating an existing file keeps its owner (the service user).
    let mut file = fs::OpenOptions::new()
        .write(true)
        .truncate(true)
        .create(true)
        .mode(0o600)
        .open(&path)
        .map_err(filesystem(&path))?;
    file.write_all(PG_HBA.as_bytes())
        .map_err(filesystem(&path))?;
    drop(file);
    give_to_service_user(&path)
}

/// `path` with every character outside the URL-safe set percent-encoded,
/// for a query parameter value.
pub(crate) fn percent_encode(path: &str) -> String {
    let mut encoded = String::with_capacity(path.len());
    for byte in path.bytes() {
        if byte.is_ascii_alphanumeric() || b"/-_.~".contains(&byte) {
            encoded.push(char::from(byte));
        } else {
            encoded.push_str(&format!("%{byte:02X}"));
        }
    }
    encoded
}
