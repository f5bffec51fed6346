//! Start-up of the embedded cluster when things are not clean (a pid file
//! left by a killed server, naming a dead or a reused pid; a setting the
//! server rejects), and who can reach it: its own OS user only.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use pg_embedded::{Cluster, ClusterOptions};
use sqlx::Connection;

fn fast() -> ClusterOptions {
    ClusterOptions {
        unsafe_fast: true,
        ..ClusterOptions::default()
    }
}

/// A directory the service user (`postgres`, when the tests run as root)
/// can reach, with the data directory's path inside it.
fn reachable_parent() -> (tempfile::TempDir, PathBuf) {
    let parent = tempfile::tempdir().expect("temp dir");
    std::fs::set_permissions(parent.path(), std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let data_dir = parent.path().join("pg");
    (parent, data_dir)
}

async fn start(data_dir: &Path) -> Cluster {
    let data_dir = data_dir.to_path_buf();
    tokio::task::spawn_blocking(move || Cluster::start_persistent(&data_dir, &fast()))
        .await
        .expect("join")
        .expect("start the cluster")
}

async fn stop(cluster: Cluster) {
    tokio::task::spawn_blocking(move || cluster.stop())
        .await
        .expect("stop");
}

async fn marker_count(cluster: &Cluster) -> i64 {
    let mut connection = sqlx::PgConnection::connect(&cluster.url("postgres"))
        .await
        .expect("connect to the restarted cluster");
    let count = sqlx::query_scalar("SELECT count(*) FROM pg_database WHERE datname = 'marker'")
        .fetch_one(&mut connection)
        .await
        .expect("query");
    connection.close().await.expect("close");
    count
}

/// The files a server killed with SIGKILL leaves behind, as they were
/// while it ran, with their pid replaced by `pid`.
struct Leftovers {
    files: Vec<(PathBuf, String)>,
}

impl Leftovers {
    fn capture(cluster: &Cluster) -> Leftovers {
        let files = [
            cluster.data_dir().join("postmaster.pid"),
            cluster.socket_dir().join(".s.PGSQL.5432.lock"),
        ]
        .into_iter()
        .map(|path| {
            let text = std::fs::read_to_string(&path).expect("read a lock file of the server");
            (path, text)
        })
        .collect();
        Leftovers { files }
    }

    fn write_with_pid(&self, pid: u32) {
        for (path, text) in &self.files {
            let rest = text.split_once('\n').map_or("", |(_, rest)| rest);
            std::fs::write(path, format!("{pid}\n{rest}")).expect("write a stale lock file");
        }
    }
}

/// Creates a database called `marker`, stops the server, and puts back its
/// lock files naming `pid`, as if it had been killed.
async fn kill_leaving_pid(data_dir: &Path, pid: u32) {
    let cluster = start(data_dir).await;
    let mut connection = sqlx::PgConnection::connect(&cluster.url("postgres"))
        .await
        .expect("connect");
    sqlx::query("CREATE DATABASE marker")
        .execute(&mut connection)
        .await
        .expect("create");
    connection.close().await.expect("close");
    let leftovers = Leftovers::capture(&cluster);
    stop(cluster).await;
    leftovers.write_with_pid(pid);
}

#[tokio::test]
async fn a_pid_file_naming_a_dead_process_is_recovered() {
    let (_parent, data_dir) = reachable_parent();
    let mut finished = Command::new("true").spawn().expect("spawn true");
    let dead_pid = finished.id();
    finished.wait().expect("reap true");
    kill_leaving_pid(&data_dir, dead_pid).await;

    let again = start(&data_dir).await;
    assert_eq!(marker_count(&again).await, 1, "the data survived");
    stop(again).await;
}

#[tokio::test]
async fn a_pid_file_naming_a_live_unrelated_process_is_recovered() {
    let (_parent, data_dir) = reachable_parent();
    let mut unrelated = Command::new("sleep")
        .arg("60")
        .spawn()
        .expect("spawn sleep");
    kill_leaving_pid(&data_dir, unrelated.id()).await;

    let again = start(&data_dir).await;
    assert_eq!(marker_count(&again).await, 1, "the data survived");
    assert!(
        unrelated.try_wait().expect("poll sleep").is_none(),
        "the process that reused the pid was left alone"
    );
    stop(again).await;
    unrelated.kill().expect("kill sleep");
    unrelated.wait().expect("reap sleep");
}

#[tokio::test]
async fn a_server_that_fails_at_start_is_reported_at_once_with_its_log() {
    let options = ClusterOptions {
        unsafe_fast: true,
        settings: vec![("shared_buffers".into(), "plenty".into())],
    };
    let began = Instant::now();
    let error = tokio::task::spawn_blocking(move || Cluster::start_temporary(&options))
        .await
        .expect("join")
        .expect_err("the server rejects the setting");
    let waited = began.elapsed();
    eprintln!("a bad setting was reported after {waited:?} (initdb included)");
    let message = error.to_string();
    assert!(
        message.contains("exited during start-up"),
        "the error says the server exited: {message}"
    );
    assert!(
        message.contains("shared_buffers"),
        "the error quotes the server's log: {message}"
    );
    // Not a timing test: far below the 60 s readiness timeout it used to wait.
    assert!(
        waited < Duration::from_secs(20),
        "reported after {waited:?}"
    );
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).expect("stat").permissions().mode() & 0o777
}

#[tokio::test]
async fn only_the_clusters_own_os_user_can_connect() {
    let (_parent, data_dir) = reachable_parent();
    let cluster = start(&data_dir).await;
    assert_eq!(mode(cluster.socket_dir()), 0o700, "socket directory");
    assert_eq!(mode(cluster.data_dir()), 0o700, "data directory");
    assert_eq!(mode(cluster.log_path()), 0o600, "log");
    assert_eq!(
        mode(&cluster.data_dir().join("pg_hba.conf")),
        0o600,
        "pg_hba.conf"
    );

    let mut connection = sqlx::PgConnection::connect(&cluster.url("postgres"))
        .await
        .expect("the owner connects");
    let listen: String = sqlx::query_scalar("SHOW listen_addresses")
        .fetch_one(&mut connection)
        .await
        .expect("show");
    assert_eq!(listen, "", "no TCP listener");
    connection.close().await.expect("close");

    let running_as_root = std::fs::metadata("/proc/self")
        .map(|meta| std::os::unix::fs::MetadataExt::uid(&meta) == 0)
        .expect("stat /proc/self");
    if running_as_root {
        let psql = pg_embedded::client_program("psql").expect("psql is installed");
        let output = Command::new("runuser")
            .args(["-u", "nobody", "--"])
            .arg(&psql)
            .arg("-X")
            .arg("-h")
            .arg(cluster.socket_dir())
            .args([
                "-p", "5432", "-U", "postgres", "-d", "postgres", "-c", "SELECT 1",
            ])
            .output()
            .expect("run psql as nobody (runuser is part of util-linux)");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success(), "nobody connected: {stderr}");
        assert!(
            stderr.contains("Permission denied"),
            "refused by the socket directory's mode: {stderr}"
        );
    }
    stop(cluster).await;
}

#[test]
fn a_data_directory_too_deep_for_a_socket_path_is_refused_with_the_reason() {
    let parent = tempfile::tempdir().expect("temp dir");
    let deep = parent.path().join("d".repeat(100)).join("pg");
    let error = Cluster::start_persistent(&deep, &fast()).expect_err("too long a socket path");
    let message = error.to_string();
    assert!(message.contains("set DATABASE_URL"), "{message}");
    assert!(!deep.exists(), "nothing created");
}
