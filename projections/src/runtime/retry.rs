//! Exponential backoff with full jitter.

use std::time::Duration;

use rand::Rng;

/// The pause before attempt `attempt + 1`: random in [0, min(max, base·2^attempt)].
pub(crate) fn backoff(attempt: u32, base: Duration, max: Duration) -> Duration {
    let ceiling = base.saturating_mul(1 << attempt.min(16)).min(max);
    let micros = u64::try_from(ceiling.as_micros()).unwrap_or(u64::MAX);
    Duration::from_micros(rand::thread_rng().gen_range(0..=micros))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_but_never_passes_the_maximum() {
        let base = Duration::from_millis(10);
        let max = Duration::from_millis(300);
        for attempt in 0..40 {
            let ceiling = base.saturating_mul(1 << attempt.min(16)).min(max);
            for _ in 0..20 {
                assert!(backoff(attempt, base, max) <= ceiling);
            }
        }
    }
}
