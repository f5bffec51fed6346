//! Retrying a handler: exponential backoff with full jitter, and the rule
//! that only the handler's own failures count toward parking. An
//! unreachable database or a lost race is waited out for as long as it
//! lasts (the pause capped at `outage_retry_max`), so an outage never parks
//! a good event; a newer owner stops the retries at once.

use std::error::Error as _;
use std::future::Future;
use std::time::Duration;

use event_store::StoreError;
use rand::Rng;
use tokio::sync::watch;

use super::error::RuntimeError;
use super::RuntimeOptions;
use crate::HandlerError;

/// The pause before attempt `attempt + 1`: random in [0, min(max, base·2^attempt)].
pub(crate) fn backoff(attempt: u32, base: Duration, max: Duration) -> Duration {
    let ceiling = base.saturating_mul(1 << attempt.min(16)).min(max);
    let micros = u64::try_from(ceiling.as_micros()).unwrap_or(u64::MAX);
    Duration::from_micros(rand::thread_rng().gen_range(0..=micros))
}

/// Why [`retry`] gave up.
#[derive(Debug)]
pub(crate) enum GaveUp {
    /// The handler failed `attempts` times: park the event.
    Parkable { attempts: u32, error: HandlerError },
    /// A newer owner exists, or the runtime is stopping: leave the event
    /// for whoever runs the subscription next, and stop.
    Interrupted(RuntimeError),
}

/// Runs `attempt` until it succeeds, the handler has failed
/// `options.max_attempts` times, or it must stop (`stopped` turned true,
/// or the subscription was fenced).
pub(crate) async fn retry<F, Fut>(
    options: &RuntimeOptions,
    subscription: &str,
    stopped: &mut watch::Receiver<bool>,
    attempt: F,
) -> Result<(), GaveUp>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<(), HandlerError>>,
{
    retry_after(options, subscription, stopped, None, attempt).await
}

/// [`retry`], where `failed`, if any, is how a first try made elsewhere
/// (a reactor's batch) failed: it is counted, and waited after, as if
/// `attempt` had returned it.
pub(crate) async fn retry_after<F, Fut>(
    options: &RuntimeOptions,
    subscription: &str,
    stopped: &mut watch::Receiver<bool>,
    mut failed: Option<HandlerError>,
    mut attempt: F,
) -> Result<(), GaveUp>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<(), HandlerError>>,
{
    let mut attempts = 0;
    let mut waits = 0;
    loop {
        let error = match failed.take() {
            Some(error) => error,
            None => match attempt().await {
                Ok(()) => return Ok(()),
                Err(error) => error,
            },
        };
        if is_fencing(&error) {
            return Err(GaveUp::Interrupted(RuntimeError::LostOwnership));
        }
        let delay = if error.counts_toward_parking() {
            attempts += 1;
            if attempts >= options.max_attempts {
                return Err(GaveUp::Parkable { attempts, error });
            }
            tracing::debug!(subscription, attempts, %error, "handler failed; retrying");
            backoff(attempts, options.retry_base, options.retry_max)
        } else {
            waits += 1;
            if waits == 1 || waits % 20 == 0 {
                tracing::warn!(subscription, class = ?error.class(), %error,
                    "handler could not run; waiting (not counted as a failure)");
            }
            backoff(waits, options.retry_base, options.outage_retry_max)
        };
        tokio::select! {
            _ = stopped.changed() => {
                return Err(GaveUp::Interrupted(RuntimeError::Stopping));
            }
            _ = tokio::time::sleep(delay) => {}
        }
    }
}

/// Whether `error` says a newer owner has the subscription.
pub(crate) fn is_fencing(error: &HandlerError) -> bool {
    let mut cause: Option<&(dyn std::error::Error + 'static)> = error.source();
    while let Some(error) = cause {
        if matches!(
            error.downcast_ref::<StoreError>(),
            Some(StoreError::Fenced { .. })
        ) || matches!(
            error.downcast_ref::<RuntimeError>(),
            Some(RuntimeError::LostOwnership | RuntimeError::Store(StoreError::Fenced { .. }))
        ) {
            return true;
        }
        cause = error.source();
    }
    false
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

    #[test]
    fn a_fenced_store_error_is_recognised_through_a_handler_error() {
        let fenced = HandlerError::from(StoreError::Fenced {
            subscription: "stock".into(),
            epoch: 3,
        });
        assert!(is_fencing(&fenced));
        assert!(!is_fencing(&HandlerError::new("poison")));
    }
}
