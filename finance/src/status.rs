//! What the consumer is doing right now, shared with the HTTP side: whether
//! it is consuming (readiness) and the timestamp of the message it holds or
//! took last (lag in seconds).
//!
//! Set by guards the consumer holds, so that every way out of consuming or
//! handling (an error, the broker closing, the task being aborted) resets
//! the state: nothing has to remember to clear it.

use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;

use lapin::message::Delivery;

/// No timestamp seen yet.
const NONE: i64 = i64::MIN;

/// Cheap to clone: one `Arc`. One per consumer; the consumer and the
/// router of the same Finance share it.
#[derive(Debug, Clone)]
pub struct ConsumerStatus {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    consuming: AtomicBool,
    /// How many times consuming has started: a reconnect shows as a new
    /// number even when the gap was too short to see `consuming` false.
    sessions: AtomicU64,
    in_hand: AtomicBool,
    /// Unix seconds of the last delivery that carried a timestamp.
    last_timestamp: AtomicI64,
}

impl Default for ConsumerStatus {
    fn default() -> Self {
        ConsumerStatus {
            inner: Arc::new(Inner {
                consuming: AtomicBool::new(false),
                sessions: AtomicU64::new(0),
                in_hand: AtomicBool::new(false),
                last_timestamp: AtomicI64::new(NONE),
            }),
        }
    }
}

impl ConsumerStatus {
    /// Whether the topology is declared and the broker delivers to the
    /// consumer now.
    pub fn is_consuming(&self) -> bool {
        self.inner.consuming.load(Ordering::Acquire)
    }

    /// How many times the consumer has started consuming (1 + reconnects).
    pub fn sessions(&self) -> u64 {
        self.inner.sessions.load(Ordering::Acquire)
    }

    /// Marks the consumer as consuming until the guard is dropped.
    pub fn consuming(&self) -> Consuming {
        self.inner.sessions.fetch_add(1, Ordering::AcqRel);
        self.inner.consuming.store(true, Ordering::Release);
        Consuming {
            inner: Arc::clone(&self.inner),
        }
    }

    /// Marks `delivery` as in hand until the guard is dropped.
    pub fn handling(&self, delivery: &Delivery) -> Handling {
        if let Some(seconds) = delivery
            .properties
            .timestamp()
            .and_then(|t| i64::try_from(t).ok())
        {
            self.inner.last_timestamp.store(seconds, Ordering::Release);
        }
        self.inner.in_hand.store(true, Ordering::Release);
        Handling {
            inner: Arc::clone(&self.inner),
        }
    }

    /// How far behind the consumer is at `now` (unix seconds), given how
    /// many messages wait in the inbox (`None`: the broker did not say).
    ///
    /// The queue is consumed in order, so while the consumer holds a
    /// message or messages wait behind the last one it took, that last
    /// message is the oldest not yet booked, and its age is the lag. With
    /// the inbox empty and nothing in hand it has caught up: 0. `None`
    /// when unknown: nothing in hand and the broker did not answer, or
    /// messages wait but none has come with a timestamp since the start.
    pub fn lag_seconds(&self, ready: Option<u32>, now: i64) -> Option<f64> {
        let in_hand = self.inner.in_hand.load(Ordering::Acquire);
        let behind = match ready {
            _ if in_hand => true,
            Some(ready) => ready > 0,
            None => return None,
        };
        if !behind {
            return Some(0.0);
        }
        match self.inner.last_timestamp.load(Ordering::Acquire) {
            NONE => None,
            // A clock behind the publisher's is no lag, not a negative one.
            seconds => Some(now.saturating_sub(seconds).max(0) as f64),
        }
    }
}

/// The consumer consumes while this lives.
#[derive(Debug)]
pub struct Consuming {
    inner: Arc<Inner>,
}

impl Drop for Consuming {
    fn drop(&mut self) {
        self.inner.consuming.store(false, Ordering::Release);
    }
}

/// A delivery is in hand while this lives.
#[derive(Debug)]
pub struct Handling {
    inner: Arc<Inner>,
}

impl Drop for Handling {
    fn drop(&mut self) {
        self.inner.in_hand.store(false, Ordering::Release);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status_with(last: i64, in_hand: bool) -> ConsumerStatus {
        let status = ConsumerStatus::default();
        status.inner.last_timestamp.store(last, Ordering::Release);
        status.inner.in_hand.store(in_hand, Ordering::Release);
        status
    }

    #[test]
    fn caught_up_is_no_lag_however_old_the_last_message() {
        assert_eq!(
            status_with(1_000, false).lag_seconds(Some(0), 5_000),
            Some(0.0)
        );
    }

    #[test]
    fn waiting_messages_or_one_in_hand_count_from_the_last_taken() {
        assert_eq!(
            status_with(1_000, false).lag_seconds(Some(3), 1_400),
            Some(400.0)
        );
        assert_eq!(
            status_with(1_000, true).lag_seconds(Some(0), 1_400),
            Some(400.0)
        );
        assert_eq!(
            status_with(1_000, true).lag_seconds(None, 1_400),
            Some(400.0)
        );
        // The publisher's clock ahead of ours.
        assert_eq!(status_with(2_000, true).lag_seconds(None, 1_400), Some(0.0));
    }

    #[test]
    fn unknown_when_neither_the_broker_nor_a_message_says() {
        assert_eq!(status_with(1_000, false).lag_seconds(None, 1_400), None);
        assert_eq!(status_with(NONE, false).lag_seconds(Some(3), 1_400), None);
    }

    #[test]
    fn the_guards_reset_what_they_set() {
        let status = ConsumerStatus::default();
        let consuming = status.consuming();
        assert!(status.is_consuming());
        drop(consuming);
        assert!(!status.is_consuming());
    }
}
