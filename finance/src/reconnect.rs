//! How the consumer comes back after it stopped: the reconnect backoff
//! (broker gone) and the wait for Finance's database (database gone, so
//! the consumer stops taking deliveries rather than retrying them into the
//! dead-letter queue).

use std::time::Duration;

use sqlx::PgPool;

const FIRST_DELAY: Duration = Duration::from_millis(200);
const LONGEST_DELAY: Duration = Duration::from_secs(30);

/// How long a database probe may take before it counts as unanswered.
const PROBE_TIMEOUT: Duration = Duration::from_secs(1);
/// Longest pause between database probes while it is down.
const LONGEST_PROBE_INTERVAL: Duration = Duration::from_secs(5);

/// Doubling delays between reconnects, from 200 ms to 30 s, back to the
/// first once a connection has worked: a long healthy spell must not make
/// the next outage cost 30 s.
#[derive(Debug)]
pub(crate) struct Backoff {
    next: Duration,
    longest: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff::new(LONGEST_DELAY)
    }
}

impl Backoff {
    fn new(longest: Duration) -> Backoff {
        Backoff {
            next: FIRST_DELAY.min(longest),
            longest,
        }
    }

    /// The delay to wait now; the one after is twice as long.
    pub(crate) fn next_delay(&mut self) -> Duration {
        let delay = self.next;
        self.next = (self.next * 2).min(self.longest);
        delay
    }

    /// A connection worked: the next outage starts from the first delay.
    pub(crate) fn reset(&mut self) {
        self.next = FIRST_DELAY.min(self.longest);
    }
}

/// Whether Finance's database answers `SELECT 1` within a second.
pub(crate) async fn database_answers(pool: &PgPool) -> bool {
    let ping = sqlx::query("SELECT 1").execute(pool);
    matches!(tokio::time::timeout(PROBE_TIMEOUT, ping).await, Ok(Ok(_)))
}

/// Returns once the database answers, probing with a backoff of its own
/// (200 ms doubling to 5 s).
pub(crate) async fn wait_for_database(pool: &PgPool) {
    let mut backoff = Backoff::new(LONGEST_PROBE_INTERVAL);
    while !database_answers(pool).await {
        tokio::time::sleep(backoff.next_delay()).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_double_up_to_the_longest() {
        let mut backoff = Backoff::default();
        let delays: Vec<_> = (0..10).map(|_| backoff.next_delay()).collect();
        assert_eq!(delays[0], Duration::from_millis(200));
        assert_eq!(delays[1], Duration::from_millis(400));
        assert_eq!(delays[7], Duration::from_millis(25_600));
        assert_eq!(delays[8], LONGEST_DELAY);
        assert_eq!(delays[9], LONGEST_DELAY);
    }

    #[test]
    fn a_reset_starts_again_from_the_first_delay() {
        let mut backoff = Backoff::default();
        for _ in 0..20 {
            backoff.next_delay();
        }
        backoff.reset();
        assert_eq!(backoff.next_delay(), FIRST_DELAY);
        assert_eq!(backoff.next_delay(), FIRST_DELAY * 2);
    }
}
