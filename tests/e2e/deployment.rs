//! The binary as an operator deploys it: the embedded default (no
//! `DATABASE_URL`) coming back after a crash, a least-privilege role that
//! finds migrations missing, and log lines fit for files and log shippers.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use event_store::MIGRATOR;
use serde_json::{json, Value};
use test_support::TestDatabase;

use crate::helpers::PATIENCE;
use crate::served::free_port;

fn orderstream() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_orderstream"));
    command
        .env_remove("DATABASE_URL")
        .env_remove("ORDERSTREAM_LOG_FORMAT")
        .env("RUST_LOG", "info")
        .stdin(Stdio::null());
    command
}

/// `orderstream serve` on the embedded default, in `dir`.
struct EmbeddedServe {
    child: Child,
    base: String,
    log: PathBuf,
}

impl EmbeddedServe {
    async fn start(dir: &Path, client: &reqwest::Client, label: &str) -> EmbeddedServe {
        let port = free_port();
        let log = dir.join(format!("serve-{label}.log"));
        let child = orderstream()
            .arg("serve")
            .current_dir(dir)
            .env("ORDERSTREAM_BIND", format!("127.0.0.1:{port}"))
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).expect("create the log"))
            .spawn()
            .expect("spawn orderstream serve");
        let mut serve = EmbeddedServe {
            child,
            base: format!("http://127.0.0.1:{port}"),
            log,
        };
        serve.wait_ready(client).await;
        serve
    }

    async fn wait_ready(&mut self, client: &reqwest::Client) {
        let deadline = Instant::now() + PATIENCE;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!(
                    "serve exited with {status} before it was ready:\n{}",
                    std::fs::read_to_string(&self.log).unwrap_or_default()
                );
            }
            let ready = client.get(format!("{}/ready", self.base)).send().await;
            if ready.is_ok_and(|response| response.status() == 200) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "serve was not ready within {PATIENCE:?}:\n{}",
                std::fs::read_to_string(&self.log).unwrap_or_default()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    fn kill(&mut self) {
        self.child.kill().expect("SIGKILL serve");
        self.child.wait().expect("reap serve");
    }
}

impl Drop for EmbeddedServe {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn on_hand(client: &reqwest::Client, serve: &EmbeddedServe, sku: &str) -> Value {
    let response = client
        .get(format!("{}/inventory/{sku}", serve.base))
        .send()
        .await
        .expect("GET stock");
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.expect("JSON");
    body["on_hand"].clone()
}

fn postmaster_pid(data_dir: &Path) -> u32 {
    let pid_file = std::fs::read_to_string(data_dir.join("postmaster.pid")).expect("pid file");
    pid_file
        .lines()
        .next()
        .and_then(|line| line.trim().parse().ok())
        .expect("a pid on the first line")
}

async fn wait_until_gone(pid: u32) {
    let deadline = Instant::now() + PATIENCE;
    while Path::new("/proc").join(pid.to_string()).exists() {
        assert!(Instant::now() < deadline, "process {pid} did not exit");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn the_embedded_default_comes_back_after_a_kill_even_with_a_reused_pid_in_its_pid_file() {
    let dir = tempfile::tempdir().expect("temp dir");
    // As root the cluster runs as `postgres`, which must reach the data.
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let data_dir = dir.path().join(".orderstream/pg");
    let client = reqwest::Client::new();

    let mut first = EmbeddedServe::start(dir.path(), &client, "first").await;
    let receipt = client
        .post(format!("{}/inventory/SKU-1/receipts", first.base))
        .json(&json!({"quantity": 5}))
        .send()
        .await
        .expect("POST receipt");
    assert_eq!(receipt.status(), 201);

    // SIGKILL of the service alone: its PostgreSQL may still be shutting
    // down when the next one starts.
    first.kill();
    let mut second = EmbeddedServe::start(dir.path(), &client, "second").await;
    assert_eq!(on_hand(&client, &second, "SKU-1").await, json!(5));

    // Both die at once (as in a container kill): the pid file stays, and
    // its pid now belongs to an unrelated process.
    let postmaster = postmaster_pid(&data_dir);
    let killed = Command::new("kill")
        .args(["-KILL", &postmaster.to_string()])
        .status()
        .expect("run kill");
    assert!(killed.success());
    second.kill();
    wait_until_gone(postmaster).await;
    let mut unrelated = Command::new("sleep")
        .arg("60")
        .spawn()
        .expect("spawn sleep");
    let pid_file = data_dir.join("postmaster.pid");
    let stale = std::fs::read_to_string(&pid_file).expect("the killed server's pid file");
    let rest = stale.split_once('\n').map_or("", |(_, rest)| rest);
    std::fs::write(&pid_file, format!("{}\n{rest}", unrelated.id())).expect("reuse the pid");

    let began = Instant::now();
    let third = EmbeddedServe::start(dir.path(), &client, "third").await;
    assert_eq!(on_hand(&client, &third, "SKU-1").await, json!(5));
    let log = std::fs::read_to_string(&third.log).expect("log");
    assert!(log.contains("removing a stale postmaster.pid"), "{log}");
    assert!(
        began.elapsed() < Duration::from_secs(30),
        "no waiting out a pool timeout: {:?}",
        began.elapsed()
    );
    drop(third);
    unrelated.kill().expect("kill sleep");
    unrelated.wait().expect("reap sleep");
}

/// `url` (of a test database) for another database and user.
fn url_as(url: &str, user: &str, database: &str) -> String {
    let mut url = url::Url::parse(url).expect("a database URL");
    url.set_username(user).expect("set user");
    url.set_path(&format!("/{database}"));
    url.to_string()
}

/// What a finished `orderstream` said on standard error.
struct Finished {
    success: bool,
    stderr: String,
}

/// Runs `command` to its end; one that does not end (a `serve` that
/// serves instead of refusing) is killed after [`PATIENCE`] and fails.
async fn run_until_exit(command: &mut Command) -> Finished {
    let stderr = tempfile::NamedTempFile::new().expect("temp file");
    let mut child = command
        .stdout(Stdio::null())
        .stderr(stderr.reopen().expect("reopen"))
        .spawn()
        .expect("spawn orderstream");
    let deadline = Instant::now() + PATIENCE;
    let status = loop {
        if let Some(status) = child.try_wait().expect("poll orderstream") {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "orderstream did not exit within {PATIENCE:?}: {}",
                std::fs::read_to_string(stderr.path()).unwrap_or_default()
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    Finished {
        success: status.success(),
        stderr: std::fs::read_to_string(stderr.path()).expect("read stderr"),
    }
}

#[tokio::test]
async fn serve_as_a_role_without_ddl_rights_refuses_to_start_until_the_owner_migrates() {
    let database = TestDatabase::new(&MIGRATOR).await.expect("test database");
    let suffix = uuid::Uuid::new_v4().simple().to_string();
    let (fresh, role) = (format!("fresh_{suffix}"), format!("app_{suffix}"));
    sqlx::query(&format!(r#"CREATE DATABASE "{fresh}""#))
        .execute(database.pool())
        .await
        .expect("create database");
    sqlx::query(&format!(r#"CREATE ROLE "{role}" LOGIN"#))
        .execute(database.pool())
        .await
        .expect("create role");
    let app_url = url_as(database.url(), &role, &fresh);
    let owner_url = url_as(database.url(), "postgres", &fresh);

    let refused = run_until_exit(
        orderstream()
            .arg("serve")
            .env("DATABASE_URL", &app_url)
            .env("ORDERSTREAM_BIND", format!("127.0.0.1:{}", free_port())),
    )
    .await;
    let stderr = &refused.stderr;
    assert!(!refused.success, "serve started: {stderr}");
    let expected = format!(
        "{} migrations are not applied; run `orderstream migrate` as the database owner",
        MIGRATOR.iter().count()
    );
    assert!(stderr.contains(&expected), "{stderr}");

    let migrated =
        run_until_exit(orderstream().arg("migrate").env("DATABASE_URL", &owner_url)).await;
    assert!(migrated.success, "{}", migrated.stderr);
    let mut owner = sqlx::PgPool::connect(&owner_url).await.expect("connect");
    let applied: i64 = sqlx::query_scalar("SELECT count(*) FROM _sqlx_migrations WHERE success")
        .fetch_one(&owner)
        .await
        .expect("count migrations");
    assert_eq!(
        applied,
        i64::try_from(MIGRATOR.iter().count()).expect("count")
    );
    owner.close().await;
    owner = sqlx::PgPool::connect(database.url())
        .await
        .expect("connect");
    sqlx::query(&format!(r#"DROP DATABASE "{fresh}" WITH (FORCE)"#))
        .execute(&owner)
        .await
        .expect("drop database");
    sqlx::query(&format!(r#"DROP ROLE "{role}""#))
        .execute(&owner)
        .await
        .expect("drop role");
    owner.close().await;
}

#[tokio::test]
async fn logs_are_json_lines_on_request_plain_text_otherwise_and_never_show_the_password() {
    let database = TestDatabase::new(&MIGRATOR).await.expect("test database");
    // Trust authentication ignores the password; the log must not show it.
    let url = format!("{}&password=hunter2", database.url());

    let json_run = run_until_exit(
        orderstream()
            .arg("migrate")
            .env("DATABASE_URL", &url)
            .env("ORDERSTREAM_LOG_FORMAT", "json"),
    )
    .await;
    let stderr = &json_run.stderr;
    assert!(json_run.success, "{stderr}");
    assert!(!stderr.contains("hunter2"), "{stderr}");
    let lines: Vec<Value> = stderr
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|_| panic!("not JSON: {line}")))
        .collect();
    let configuration = lines
        .iter()
        .find(|line| line["fields"]["message"] == "configuration")
        .unwrap_or_else(|| panic!("no configuration line: {stderr}"));
    let printed = configuration["fields"]["config"].as_str().unwrap_or("");
    assert!(printed.contains("password=***"), "{printed}");

    // Standard error is a pipe here, not a terminal: no colour codes.
    let text_run = run_until_exit(orderstream().arg("migrate").env("DATABASE_URL", &url)).await;
    let stderr = &text_run.stderr;
    assert!(text_run.success, "{stderr}");
    assert!(stderr.contains("configuration"), "{stderr}");
    assert!(!stderr.contains('\u{1b}'), "ANSI escape codes: {stderr:?}");
    assert!(!stderr.contains("hunter2"), "{stderr}");
}
