//! Runs `scripts/quick-tour.sh` (the README's quick tour) against two
//! servers on port 0: one in auto fulfilment, one in manual.

use std::process::Stdio;

use crate::helpers::{Options, TestServer, ADMIN_TOKEN};

fn have(program: &str) -> bool {
    std::process::Command::new(program)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok()
}

#[tokio::test]
async fn the_quick_tour_script_passes_against_a_running_server() {
    if !have("curl") {
        eprintln!(
            "SKIPPED the_quick_tour_script_passes_against_a_running_server: curl is not installed"
        );
        return;
    }
    let auto = TestServer::start(Options::auto()).await;
    let manual = TestServer::start(Options::manual()).await;
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/quick-tour.sh");
    let output = tokio::process::Command::new("bash")
        .arg(script)
        .env("ORDERSTREAM_URL", &auto.base)
        .env("ORDERSTREAM_MANUAL_URL", &manual.base)
        .env("ORDERSTREAM_ADMIN_TOKEN", ADMIN_TOKEN)
        .env("QUICK_TOUR_TIMEOUT", "60")
        .output()
        .await
        .expect("run the quick tour");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "quick tour failed ({}):\n{stdout}\n{stderr}",
        output.status
    );
    assert!(stdout.contains("quick tour: all checks passed"), "{stdout}");
    auto.stop().await;
    manual.stop().await;
}
