//! The served binary and the browser: `orderstream serve` (this build's
//! debug binary, its console embedded) on a database of the test's own,
//! and the scenario scripts of this directory run by Node.js with
//! Playwright driving Debian's headless Chromium.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use event_store::MIGRATOR;
use serde_json::Value;
use test_support::TestDatabase;
use tokio::sync::Mutex;

pub const TOKEN: &str = "console-browser-test-token";
/// Longest any awaited outcome may take, server start included.
pub const PATIENCE: Duration = Duration::from_secs(60);
/// One browser at a time: two cores are shared with the servers.
static BROWSER: Mutex<()> = Mutex::const_new(());

pub struct Served {
    child: Child,
    pub base: String,
    pub db: TestDatabase,
    pub client: reqwest::Client,
    log: PathBuf,
}

fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind port 0");
    listener.local_addr().expect("local address").port()
}

impl Served {
    /// `orderstream serve` on a fresh database with `fulfilment` (`auto`
    /// or `manual`), once `GET /ready` answers.
    pub async fn start(fulfilment: &str) -> Served {
        Served::start_with(fulfilment, &[]).await
    }

    /// As [`Served::start`], with more of `serve`'s settings.
    pub async fn start_with(fulfilment: &str, environment: &[(&str, &str)]) -> Served {
        let db = TestDatabase::new(&MIGRATOR).await.expect("test database");
        let port = free_port();
        let log = std::env::temp_dir().join(format!(
            "orderstream-console-{}.log",
            uuid::Uuid::new_v4().simple()
        ));
        let child = Command::new(env!("CARGO_BIN_EXE_orderstream"))
            .arg("serve")
            .env("DATABASE_URL", db.url())
            .env("ORDERSTREAM_BIND", format!("127.0.0.1:{port}"))
            .env("ORDERSTREAM_ADMIN_TOKEN", TOKEN)
            .env("ORDERSTREAM_FULFILMENT", fulfilment)
            .env("RUST_LOG", "warn")
            .env_remove("ORDERSTREAM_AMQP_URL")
            .envs(environment.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).expect("server log"))
            .spawn()
            .expect("spawn orderstream serve");
        let served = Served {
            child,
            base: format!("http://127.0.0.1:{port}"),
            db,
            client: reqwest::Client::new(),
            log,
        };
        served
            .wait_until("the server is ready", || async {
                served
                    .client
                    .get(served.url("/ready"))
                    .send()
                    .await
                    .is_ok_and(|answer| answer.status().is_success())
            })
            .await;
        served
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// [`test_support::wait_until`] with [`PATIENCE`], telling the
    /// server's log on a timeout.
    pub async fn wait_until<Fut>(&self, what: &str, condition: impl FnMut() -> Fut)
    where
        Fut: std::future::Future<Output = bool>,
    {
        assert!(
            test_support::eventually(PATIENCE, condition).await,
            "timed out after {PATIENCE:?} waiting for: {what}; server log:\n{}",
            std::fs::read_to_string(&self.log).unwrap_or_default()
        );
    }

    /// `POST path` with a JSON body; the status and the JSON answer.
    pub async fn post(&self, path: &str, body: Value) -> (u16, Value) {
        let answer = self
            .client
            .post(self.url(path))
            .json(&body)
            .send()
            .await
            .expect("POST");
        let status = answer.status().as_u16();
        (status, answer.json().await.unwrap_or(Value::Null))
    }

    pub async fn get(&self, path: &str) -> Value {
        self.client
            .get(self.url(path))
            .bearer_auth(TOKEN)
            .send()
            .await
            .expect("GET")
            .json()
            .await
            .expect("JSON answer")
    }

    /// Runs `tests/browser/<script>` against this server; panics with its
    /// output unless it exits 0.
    pub async fn browser(&self, script: &str, environment: &[(&str, String)]) {
        let _one_at_a_time = BROWSER.lock().await;
        let directory = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser");
        let prerequisites = prerequisites(&directory);
        let output = tokio::process::Command::new("node")
            .arg(directory.join(script))
            .current_dir(&directory)
            .env("CONSOLE_URL", &self.base)
            .env("CONSOLE_TOKEN", TOKEN)
            .env("CONSOLE_CHROMIUM", prerequisites.chromium)
            .env("CONSOLE_SCREENSHOTS", screenshots())
            .envs(
                environment
                    .iter()
                    .map(|(key, value)| (*key, value.as_str())),
            )
            .stdin(Stdio::null())
            .kill_on_drop(true)
            .output();
        let output = tokio::time::timeout(Duration::from_secs(240), output)
            .await
            .unwrap_or_else(|_| panic!("{script} ran longer than 240 s"))
            .expect("run node");
        let stdout = String::from_utf8_lossy(&output.stdout);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            output.status.success(),
            "{script} failed ({}):\n{stdout}\n{stderr}\nserver log:\n{}",
            output.status,
            std::fs::read_to_string(&self.log).unwrap_or_default()
        );
        print!("{stdout}");
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.log);
    }
}

struct Prerequisites {
    chromium: PathBuf,
}

/// Chromium, Node.js and `npm ci` done, or a failure that says what to
/// install: a browser test is never skipped.
fn prerequisites(directory: &Path) -> Prerequisites {
    let chromium = std::env::var_os("CONSOLE_CHROMIUM")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/bin/chromium"));
    assert!(
        chromium.exists(),
        "the console's browser tests need Chromium at {}: apt-get install -y chromium \
         (scripts/test.sh installs it), or set CONSOLE_CHROMIUM",
        chromium.display()
    );
    let node = Command::new("node").arg("--version").output();
    assert!(
        node.is_ok_and(|output| output.status.success()),
        "the console's browser tests need Node.js: apt-get install -y nodejs npm"
    );
    assert!(
        directory.join("node_modules/playwright-core").exists(),
        "the console's browser tests need playwright-core: npm ci --prefix {} \
         (scripts/test.sh runs it)",
        directory.display()
    );
    Prerequisites { chromium }
}

/// `target/console-screenshots/`: the tests' pictures, kept as artefacts.
fn screenshots() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("target"));
    let directory = target.join("console-screenshots");
    std::fs::create_dir_all(&directory).expect("create the screenshot directory");
    directory
}
