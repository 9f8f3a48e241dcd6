//! The element operators consume: a record, its rule time and its source position.

use serde::{Deserialize, Serialize};

/// A record as it flows between operators.
///
/// `time` is the rule's time in milliseconds (the event time `ts` in event mode, the
/// ingestion time in ingestion mode). `(partition, seq)` is the record's position in its
/// source; `(time, partition, seq)` is the total order in which a keyed operator sees the
/// records of one key (docs/semantics.md §1, §2).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Event<R> {
    /// The rule's time of this record, in milliseconds since the Unix epoch.
    pub time: u64,
    /// The source partition the record was read from.
    pub partition: u32,
    /// The record's sequence number within its partition (offset, byte position, index).
    pub seq: u64,
    /// The record itself.
    pub record: R,
}

impl<R> Event<R> {
    /// An event at rule time `time` and source position `(partition, seq)`.
    pub fn new(time: u64, partition: u32, seq: u64, record: R) -> Self {
        Event {
            time,
            partition,
            seq,
            record,
        }
    }

    /// The same event with its record mapped by `f`.
    #[inline]
    pub fn map<U>(self, f: impl FnOnce(R) -> U) -> Event<U> {
        Event::new(self.time, self.partition, self.seq, f(self.record))
    }

    /// The key that orders events: `(time, partition, seq)`.
    #[inline]
    pub fn order(&self) -> (u64, u32, u64) {
        (self.time, self.partition, self.seq)
    }
}
