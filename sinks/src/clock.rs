//! Where the sinks take the time and fresh ids from: the system's clock and random
//! UUIDs, or, in tests, a [`PinnedClock`] that stands still and counts its ids, so
//! commit timestamps, file modification times, retention and file names are fixed.
//!
//! A [`DeltaTable`](crate::delta::DeltaTable) carries one (the system's unless told)
//! and hands it to everything that writes to it.

use std::fmt::Debug;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

/// A source of the current time and of unique ids.
pub trait Clock: Send + Sync + Debug {
    /// Milliseconds since the Unix epoch.
    fn now_ms(&self) -> i64;
    /// A new unique id, a v4 UUID (table ids, commit `txnId`s, file names).
    fn new_id(&self) -> uuid::Uuid;
}

/// A clock shared by a table and its writers.
pub type SharedClock = Arc<dyn Clock>;

/// The system's clock and random v4 UUIDs.
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ms(&self) -> i64 {
        chrono::Utc::now().timestamp_millis()
    }

    fn new_id(&self) -> uuid::Uuid {
        uuid::Uuid::new_v4()
    }
}

/// The system clock, shared.
pub fn system() -> SharedClock {
    Arc::new(SystemClock)
}

/// A clock that shows the time it was set to, and ids counted from 1 (each a valid v4
/// UUID whose last bytes are the count): for tests.
#[derive(Debug)]
pub struct PinnedClock {
    ms: AtomicI64,
    ids: AtomicU64,
}

impl PinnedClock {
    /// A clock showing `ms` since the epoch.
    pub fn at(ms: i64) -> Arc<PinnedClock> {
        Arc::new(PinnedClock {
            ms: AtomicI64::new(ms),
            ids: AtomicU64::new(0),
        })
    }

    /// Sets the time to `ms`.
    pub fn set(&self, ms: i64) {
        self.ms.store(ms, Ordering::SeqCst);
    }

    /// Moves the time on by `ms`.
    pub fn advance(&self, ms: i64) {
        self.ms.fetch_add(ms, Ordering::SeqCst);
    }
}

impl Clock for PinnedClock {
    fn now_ms(&self) -> i64 {
        self.ms.load(Ordering::SeqCst)
    }

    fn new_id(&self) -> uuid::Uuid {
        let n = self.ids.fetch_add(1, Ordering::SeqCst) + 1;
        let mut bytes = [0u8; 16];
        bytes[8..].copy_from_slice(&n.to_be_bytes());
        uuid::Builder::from_random_bytes(bytes).into_uuid()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pinned_clock_stands_still_and_counts_distinct_v4_ids() {
        let clock = PinnedClock::at(1_000);
        assert_eq!(clock.now_ms(), 1_000);
        clock.advance(500);
        assert_eq!(clock.now_ms(), 1_500);
        clock.set(7);
        assert_eq!(clock.now_ms(), 7);
        let (a, b) = (clock.new_id(), clock.new_id());
        assert_ne!(a, b);
        assert_eq!(a.get_version_num(), 4);
        assert_eq!(a.to_string(), "00000000-0000-4000-8000-000000000001");
        assert_eq!(b.to_string(), "00000000-0000-4000-8000-000000000002");
        assert!(SystemClock.now_ms() > 1_700_000_000_000);
    }
}
