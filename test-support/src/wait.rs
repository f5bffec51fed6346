//! Waiting on a condition with a deadline: tests poll for what background
//! tasks (workers, consumers, a served process) will produce, and never
//! sleep a fixed time hoping it happened.

use std::future::Future;
use std::time::{Duration, Instant};

/// The first pause between two polls, and the longest: a quick outcome is
/// seen within milliseconds, and a slow one does not keep the (shared)
/// cores busy polling.
const FIRST_PAUSE: Duration = Duration::from_millis(5);
const LONGEST_PAUSE: Duration = Duration::from_millis(50);

/// Polls `condition` until it holds; panics naming `what` if it still does
/// not after `patience`.
pub async fn wait_until<F, Fut>(patience: Duration, what: &str, condition: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    assert!(
        eventually(patience, condition).await,
        "timed out after {patience:?} waiting for: {what}"
    );
}

/// Polls `condition` until it holds (`true`) or `patience` has passed
/// (`false`), for a caller that says more than [`wait_until`] on a timeout
/// (a server's log, say).
pub async fn eventually<F, Fut>(patience: Duration, mut condition: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = Instant::now() + patience;
    let mut pause = FIRST_PAUSE;
    loop {
        if condition().await {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(LONGEST_PAUSE);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    #[tokio::test]
    async fn a_condition_that_comes_true_is_seen() {
        let polls = AtomicU32::new(0);
        let held = eventually(Duration::from_secs(10), || async {
            polls.fetch_add(1, Ordering::SeqCst) >= 3
        })
        .await;
        assert!(held);
        assert_eq!(polls.load(Ordering::SeqCst), 4);
    }

    #[tokio::test]
    async fn a_condition_that_never_holds_gives_up_after_the_patience() {
        let started = Instant::now();
        let held = eventually(Duration::from_millis(100), || async { false }).await;
        assert!(!held);
        assert!(started.elapsed() >= Duration::from_millis(100));
    }

    #[tokio::test]
    #[should_panic(expected = "waiting for: the impossible")]
    async fn wait_until_names_what_it_waited_for() {
        wait_until(Duration::from_millis(20), "the impossible", || async {
            false
        })
        .await;
    }
}
