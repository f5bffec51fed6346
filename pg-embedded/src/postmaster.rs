//! Who holds a data directory: reading `postmaster.pid` and checking, from
//! `/proc`, that its pid is really a PostgreSQL server of that directory.
//!
//! A pid file outlives a server killed with SIGKILL, and its pid may since
//! belong to any other process. PostgreSQL then refuses to start ("lock file
//! already exists") and `pg_ctl status` calls the cluster running; so the
//! pid is trusted only when that process is a `postgres` whose working
//! directory (a postmaster changes into its data directory) is ours.

use std::fs;
use std::path::{Path, PathBuf};

use crate::install::filesystem;
use crate::EmbeddedError;

/// What holds a data directory right now.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Holder {
    /// No pid file: free.
    Nobody,
    /// A pid file whose pid is dead or belongs to something else.
    Stale { pid: u32 },
    /// A live server of this data directory.
    Server(RunningServer),
}

#[derive(Debug, PartialEq, Eq)]
pub(crate) struct RunningServer {
    pub pid: u32,
    /// The first unix socket directory it listens on, if any.
    pub socket_dir: Option<PathBuf>,
    /// Nothing of ours supervises it (its parent is not a watchdog shell):
    /// nobody will stop it, so a new owner may.
    pub orphaned: bool,
}

pub(crate) fn holder(data_dir: &Path) -> Holder {
    let Ok(pid_file) = fs::read_to_string(data_dir.join("postmaster.pid")) else {
        return Holder::Nobody;
    };
    let lines: Vec<&str> = pid_file.lines().collect();
    let Some(pid) = lines
        .first()
        .and_then(|line| line.trim().parse::<u32>().ok())
    else {
        // Written half-way (a crash while starting): nothing to trust.
        return Holder::Stale { pid: 0 };
    };
    if !is_postmaster_of(pid, data_dir) {
        return Holder::Stale { pid };
    }
    let socket_dir = lines
        .get(4)
        .map(|line| line.trim())
        .filter(|line| !line.is_empty())
        .map(PathBuf::from);
    Holder::Server(RunningServer {
        pid,
        socket_dir,
        orphaned: !parent_is_watchdog(pid),
    })
}

/// True while `pid` is a live `postgres` process working in `data_dir`.
pub(crate) fn is_postmaster_of(pid: u32, data_dir: &Path) -> bool {
    let proc = Path::new("/proc").join(pid.to_string());
    let is_postgres =
        fs::read_to_string(proc.join("comm")).is_ok_and(|comm| comm.trim() == "postgres");
    // Reading another user's cwd is refused, which also rules it out.
    let works_there = match (fs::read_link(proc.join("cwd")), fs::canonicalize(data_dir)) {
        (Ok(cwd), Ok(data_dir)) => cwd == data_dir,
        _ => false,
    };
    is_postgres && works_there && !is_zombie(&proc)
}

fn is_zombie(proc: &Path) -> bool {
    stat_fields(proc).is_some_and(|fields| fields.first().is_some_and(|state| *state == "Z"))
}

/// The fields of `/proc/<pid>/stat` after the command name (state first).
fn stat_fields(proc: &Path) -> Option<Vec<String>> {
    let stat = fs::read_to_string(proc.join("stat")).ok()?;
    // The command name is in parentheses and may itself hold spaces.
    let after_name = &stat[stat.rfind(')')? + 1..];
    Some(after_name.split_whitespace().map(str::to_owned).collect())
}

fn parent_is_watchdog(pid: u32) -> bool {
    let proc = Path::new("/proc").join(pid.to_string());
    let Some(parent) = stat_fields(&proc).and_then(|fields| fields.get(1).cloned()) else {
        return false;
    };
    fs::read_to_string(Path::new("/proc").join(parent).join("comm"))
        .is_ok_and(|comm| comm.trim() == "sh")
}

/// Removes what a dead server left behind: the pid file and the socket's
/// lock files (which also name a pid that may have been reused). Only
/// called once no server of this data directory is running.
pub(crate) fn remove_leftovers(data_dir: &Path, socket_dir: &Path) -> Result<(), EmbeddedError> {
    let pid_file = data_dir.join("postmaster.pid");
    if pid_file.exists() {
        fs::remove_file(&pid_file).map_err(filesystem(&pid_file))?;
    }
    let Ok(entries) = fs::read_dir(socket_dir) else {
        return Ok(());
    };
    for entry in entries.flatten() {
        if entry.file_name().to_string_lossy().starts_with(".s.PGSQL.") {
            let path = entry.path();
            fs::remove_file(&path).map_err(filesystem(&path))?;
        }
    }
    Ok(())
}
