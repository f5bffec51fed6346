//! The installed RabbitMQ scripts, the OS user that runs them, and small
//! helpers for files, ports and commands.

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::BrokerError;

/// Overrides where the `rabbitmq-server` script is (a path to it): for a
/// tarball install, and for tests of the "not installed" error.
pub const SERVER_ENV: &str = "ORDERSTREAM_RABBITMQ_SERVER";

/// The user the Debian package creates and its own scripts run the node as.
const PACKAGE_USER: &str = "rabbitmq";
/// Created when we are root and the package's user does not exist (a
/// tarball install), so the node never runs as root.
const FALLBACK_USER: &str = "orderstream-rabbitmq";

/// Debian's `/usr/sbin/rabbitmq-server` is a wrapper that switches to the
/// `rabbitmq` user, `cd`s to /var/lib/rabbitmq and redirects the output to
/// /var/log/rabbitmq: the system service's settings. We run the real script
/// (`sbin/rabbitmq-server` of the versioned server directory) ourselves.
const PACKAGE_SCRIPT: &str = "/usr/lib/rabbitmq/bin/rabbitmq-server";
const PACKAGE_LIB: &str = "/usr/lib/rabbitmq/lib";

/// The scripts of one RabbitMQ installation.
#[derive(Debug, Clone)]
pub(crate) struct Installation {
    pub server: PathBuf,
    pub ctl: PathBuf,
}

pub(crate) fn running_as_root() -> bool {
    fs::metadata("/proc/self").is_ok_and(|meta| meta.uid() == 0)
}

/// Finds `rabbitmq-server`: the override, Debian's package, then `PATH`
/// (skipping Debian's wrapper); `rabbitmqctl` is its sibling.
pub(crate) fn find_installation() -> Result<Installation, BrokerError> {
    let server = match std::env::var_os(SERVER_ENV) {
        Some(path) => {
            let path = PathBuf::from(path);
            if !path.is_file() {
                return Err(BrokerError::ServerNotFound {
                    looked: format!("{} (from {SERVER_ENV})", path.display()),
                });
            }
            canonical(&path)
        }
        None => find_server().ok_or_else(|| BrokerError::ServerNotFound {
            looked: format!(
                "{PACKAGE_SCRIPT}, {PACKAGE_LIB}/rabbitmq_server-*/sbin and rabbitmq-server \
                 on PATH; {SERVER_ENV} overrides"
            ),
        })?,
    };
    let dir = server.parent().unwrap_or(Path::new("/")).to_path_buf();
    let ctl = dir.join("rabbitmqctl");
    if !ctl.is_file() {
        return Err(BrokerError::ProgramNotFound {
            program: "rabbitmqctl".into(),
            dir,
        });
    }
    Ok(Installation { server, ctl })
}

fn canonical(path: &Path) -> PathBuf {
    fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf())
}

fn find_server() -> Option<PathBuf> {
    let package = Path::new(PACKAGE_SCRIPT);
    if package.is_file() {
        return Some(canonical(package));
    }
    let mut versioned: Vec<PathBuf> = fs::read_dir(PACKAGE_LIB)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|entry| {
            entry
                .file_name()
                .to_string_lossy()
                .starts_with("rabbitmq_server-")
        })
        .map(|entry| entry.path().join("sbin/rabbitmq-server"))
        .filter(|path| path.is_file())
        .collect();
    // Lexical order is wrong for 3.9 against 3.10; compare the numbers.
    versioned.sort_by_key(|path| version_of(path));
    if let Some(newest) = versioned.pop() {
        return Some(newest);
    }
    let path_var = std::env::var_os("PATH")?;
    std::env::split_paths(&path_var)
        .map(|dir| dir.join("rabbitmq-server"))
        .filter(|path| path.is_file())
        .map(|path| canonical(&path))
        .find(|path| {
            path.file_name()
                .is_some_and(|name| name == "rabbitmq-server")
        })
}

fn version_of(server: &Path) -> Vec<u32> {
    server
        .ancestors()
        .filter_map(|dir| dir.file_name()?.to_str()?.strip_prefix("rabbitmq_server-"))
        .next()
        .map(|version| {
            version
                .split('.')
                .filter_map(|part| part.parse().ok())
                .collect()
        })
        .unwrap_or_default()
}

/// The OS user the node runs as when we are root: the package's `rabbitmq`,
/// else a system user of our own, created on first use.
pub(crate) fn service_user() -> Result<Option<&'static str>, BrokerError> {
    if !running_as_root() {
        return Ok(None);
    }
    if user_exists(PACKAGE_USER) {
        return Ok(Some(PACKAGE_USER));
    }
    if !user_exists(FALLBACK_USER) {
        let mut useradd = Command::new("useradd");
        useradd.args([
            "--system",
            "--no-create-home",
            "--shell",
            "/usr/sbin/nologin",
            FALLBACK_USER,
        ]);
        run(useradd, &format!("useradd --system {FALLBACK_USER}")).map_err(|error| {
            BrokerError::NoServiceUser {
                reason: error.to_string(),
            }
        })?;
    }
    Ok(Some(FALLBACK_USER))
}

fn user_exists(name: &str) -> bool {
    Command::new("id")
        .arg("-u")
        .arg(name)
        .output()
        .is_ok_and(|output| output.status.success())
}

/// A command running `program` as `user` (when given) with exactly `env`
/// added to a minimal environment: `runuser` would otherwise decide what
/// HOME is, and HOME is where Erlang finds the node's cookie.
pub(crate) fn command_as(user: Option<&str>, program: &Path, env: &[(String, String)]) -> Command {
    let mut command = match user {
        Some(user) => {
            let mut command = Command::new("runuser");
            command.args(["-u", user, "--"]).arg(program);
            command
        }
        None => Command::new(program),
    };
    command.env_clear();
    for name in ["PATH", "LANG", "LC_ALL", "TMPDIR"] {
        if let Some(value) = std::env::var_os(name) {
            command.env(name, value);
        }
    }
    command.envs(env.iter().map(|(name, value)| (name, value)));
    command
}

/// Runs `command`, turning a failure into an error that carries its output.
pub(crate) fn run(mut command: Command, what: &str) -> Result<String, BrokerError> {
    let output = command.output().map_err(|source| BrokerError::Spawn {
        command: what.to_owned(),
        source,
    })?;
    if output.status.success() {
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    } else {
        Err(BrokerError::CommandFailed {
            command: what.to_owned(),
            output: format!(
                "{}{}",
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            ),
        })
    }
}

/// Gives `path` (recursively) to the service user, when there is one.
pub(crate) fn give_to(user: Option<&str>, path: &Path) -> Result<(), BrokerError> {
    let Some(user) = user else {
        return Ok(());
    };
    let mut chown = Command::new("chown");
    chown.args(["-R", &format!("{user}:")]).arg(path);
    run(chown, &format!("chown -R {user}: {}", path.display())).map(drop)
}

pub(crate) fn filesystem(path: &Path) -> impl FnOnce(std::io::Error) -> BrokerError + '_ {
    move |source| BrokerError::Filesystem {
        path: path.to_path_buf(),
        source,
    }
}

/// A TCP port on 127.0.0.1 that nothing listens on right now. Another
/// program may take it before the node does; the node then fails to start
/// with a clear log line, which is rare enough for tests.
pub(crate) fn free_port() -> Result<u16, BrokerError> {
    let listener =
        std::net::TcpListener::bind(("127.0.0.1", 0)).map_err(|source| BrokerError::Spawn {
            command: "bind 127.0.0.1:0 to find a free port".into(),
            source,
        })?;
    let port = listener
        .local_addr()
        .map_err(|source| BrokerError::Spawn {
            command: "read the free port".into(),
            source,
        })?
        .port();
    Ok(port)
}

/// The last `lines` lines of `log` written after byte `from`, for an error
/// message: what the node said when it failed.
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

#[cfg(test)]
mod tests {
    use super::version_of;
    use std::path::Path;

    #[test]
    fn versions_compare_as_numbers() {
        let older = version_of(Path::new(
            "/usr/lib/rabbitmq/lib/rabbitmq_server-3.9.27/sbin/rabbitmq-server",
        ));
        let newer = version_of(Path::new(
            "/usr/lib/rabbitmq/lib/rabbitmq_server-3.10.8/sbin/rabbitmq-server",
        ));
        assert_eq!(newer, vec![3, 10, 8]);
        assert!(older < newer);
    }
}
