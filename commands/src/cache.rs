//! Recently used aggregate states, so that a command on a hot stream (a
//! busy SKU's inventory, an order moving through the choreography) can
//! skip the two reads of a load.
//!
//! A cached state is only ever a guess. The append that follows a decision
//! made on it still expects the cached version exactly, so a stale guess
//! (another process wrote to the stream) ends as a version conflict and the
//! command is decided again on the stored state. A decision that writes
//! nothing (a refusal, or "already in effect") is never trusted from the
//! cache either: no append would check it, so it is decided again on the
//! stored state before it is returned.

use std::any::Any;
use std::num::NonZeroUsize;
use std::sync::{Arc, Mutex, PoisonError};

use aggregates::Aggregate;
use lru::LruCache;

use crate::Loaded;

#[derive(Debug)]
pub(crate) struct StateCache {
    /// `None` when caching is switched off (capacity 0).
    entries: Option<Mutex<LruCache<String, CachedState>>>,
}

#[derive(Debug, Clone)]
struct CachedState {
    /// An `A: Aggregate`; the stream id fixes its type, and a state of
    /// another type is treated as a miss.
    state: Arc<dyn Any + Send + Sync>,
    version: i64,
}

impl StateCache {
    pub(crate) fn new(capacity: usize) -> StateCache {
        StateCache {
            entries: NonZeroUsize::new(capacity)
                .map(|capacity| Mutex::new(LruCache::new(capacity))),
        }
    }

    /// A cache that keeps everything put in it: a decision's or a batch's
    /// own states, bounded by what they read (and nothing allocated ahead).
    pub(crate) fn unbounded() -> StateCache {
        StateCache {
            entries: Some(Mutex::new(LruCache::unbounded())),
        }
    }

    /// The cached state of `stream_id`, if any.
    pub(crate) fn get<A: Aggregate>(&self, stream_id: &str) -> Option<Loaded<A>> {
        let cached = self.lock()?.get(stream_id).cloned()?;
        let state = cached.state.downcast_ref::<A>()?.clone();
        Some(Loaded {
            stream_id: stream_id.to_owned(),
            state,
            version: cached.version,
        })
    }

    /// Remembers `state` as the stream's state at `version`, unless a later
    /// version is cached already (commands on one stream can finish out of
    /// order).
    pub(crate) fn put<A: Aggregate>(&self, stream_id: &str, state: &A, version: i64) {
        let Some(mut entries) = self.lock() else {
            return;
        };
        if entries
            .peek(stream_id)
            .is_some_and(|cached| cached.version > version)
        {
            return;
        }
        entries.put(
            stream_id.to_owned(),
            CachedState {
                state: Arc::new(state.clone()),
                version,
            },
        );
    }

    /// Drops what is kept of `stream_id`: it proved stale.
    pub(crate) fn forget(&self, stream_id: &str) {
        if let Some(mut entries) = self.lock() {
            entries.pop(stream_id);
        }
    }

    /// Takes every state of `other` that is newer than the one kept here.
    pub(crate) fn absorb(&self, other: &StateCache) {
        let Some(theirs) = other.lock() else {
            return;
        };
        let Some(mut entries) = self.lock() else {
            return;
        };
        for (stream_id, cached) in theirs.iter() {
            if entries
                .peek(stream_id)
                .is_some_and(|kept| kept.version > cached.version)
            {
                continue;
            }
            entries.put(stream_id.clone(), cached.clone());
        }
    }

    fn lock(&self) -> Option<std::sync::MutexGuard<'_, LruCache<String, CachedState>>> {
        // A panic while the lock was held cannot leave an entry half
        // written (each operation is one call), so poisoning is ignored.
        self.entries
            .as_ref()
            .map(|entries| entries.lock().unwrap_or_else(PoisonError::into_inner))
    }
}

#[cfg(test)]
mod tests {
    use aggregates::order::Order;

    use super::*;

    #[test]
    fn keeps_the_latest_version() {
        let cache = StateCache::new(2);
        cache.put("order-1", &Order::default(), 3);
        cache.put("order-1", &Order::default(), 2);
        assert_eq!(cache.get::<Order>("order-1").map(|l| l.version), Some(3));
        cache.put("order-1", &Order::default(), 4);
        assert_eq!(cache.get::<Order>("order-1").map(|l| l.version), Some(4));
    }

    #[test]
    fn evicts_the_least_recently_used_and_can_be_switched_off() {
        let cache = StateCache::new(2);
        for (index, stream) in ["order-1", "order-2", "order-3"].into_iter().enumerate() {
            cache.put(stream, &Order::default(), index as i64);
        }
        assert!(cache.get::<Order>("order-1").is_none());
        assert!(cache.get::<Order>("order-3").is_some());

        let off = StateCache::new(0);
        off.put("order-1", &Order::default(), 1);
        assert!(off.get::<Order>("order-1").is_none());
    }

    #[test]
    fn a_state_of_another_type_is_a_miss() {
        let cache = StateCache::new(2);
        cache.put("order-1", &Order::default(), 1);
        assert!(cache
            .get::<aggregates::payment::Payment>("order-1")
            .is_none());
    }
}
