//! `orderstream serve` under load: the release binary as a child process
//! of the bench, its readiness, memory and CPU time.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::{proc_status_kb, BenchResult};

const ADMIN_TOKEN: &str = "loadtest-admin-token";

/// `orderstream serve` as a child process, killed on drop.
pub struct Service {
    child: Child,
    pub base: String,
    pub log: PathBuf,
}

impl Service {
    pub async fn start(binary: &Path, database_url: &str) -> BenchResult<Service> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let log = std::env::temp_dir().join(format!("orderstream-loadtest-{port}.log"));
        let child = Command::new(binary)
            .arg("serve")
            .env("DATABASE_URL", database_url)
            .env("ORDERSTREAM_BIND", format!("127.0.0.1:{port}"))
            .env("ORDERSTREAM_FULFILMENT", "auto")
            .env("ORDERSTREAM_ADMIN_TOKEN", ADMIN_TOKEN)
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log)?)
            .spawn()?;
        let mut service = Service {
            child,
            base: format!("http://127.0.0.1:{port}"),
            log,
        };
        let client = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(status) = service.child.try_wait()? {
                return Err(format!(
                    "the service exited with {status}; log: {}",
                    service.log.display()
                )
                .into());
            }
            let ready = client.get(service.url("/ready")).send().await;
            if ready.is_ok_and(|response| response.status() == 200) {
                return Ok(service);
            }
            if Instant::now() > deadline {
                // Dropping `service` kills it; its log stays for a look.
                return Err(format!(
                    "the service was not ready within 60 s; log: {}",
                    service.log.display()
                )
                .into());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// (VmHWM, VmRSS) in MiB.
    pub fn memory_mib(&self) -> BenchResult<(f64, f64)> {
        let mib =
            |field| -> BenchResult<f64> { Ok(proc_status_kb(self.pid(), field)? as f64 / 1024.0) };
        Ok((mib("VmHWM")?, mib("VmRSS")?))
    }

    /// CPU time the service's live threads have used so far (the sum of
    /// `/proc/<pid>/task/*/schedstat`: ns on a CPU, no clock-tick guessing;
    /// the tokio workers live as long as the process).
    pub fn cpu_seconds(&self) -> BenchResult<f64> {
        let mut nanos = 0u64;
        for task in std::fs::read_dir(format!("/proc/{}/task", self.pid()))? {
            let path = task?.path().join("schedstat");
            // A thread may end between the listing and the read.
            let Ok(schedstat) = std::fs::read_to_string(path) else {
                continue;
            };
            nanos += schedstat
                .split_whitespace()
                .next()
                .ok_or("empty schedstat")?
                .parse::<u64>()?;
        }
        Ok(nanos as f64 / 1e9)
    }

    /// Kills the service after a successful run and removes its log.
    pub fn stop(mut self) {
        self.terminate();
        let _ = std::fs::remove_file(&self.log);
    }

    fn terminate(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        self.terminate();
    }
}
