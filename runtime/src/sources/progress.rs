//! What a source partition's checkpoints need of its reading (docs/checkpoints.md §2):
//! for each boundary `B`, the place to read on from after a restore at `B` — before
//! the first record read with a rule time at or after `B` — and the partition's
//! watermark there.
//!
//! Places are taken at the start of each read call (a batch), so a restore reads at
//! most one batch more than it must, and leaves out again what is already in the
//! restored state (`Replay`).

use std::collections::VecDeque;

use crate::checkpoint::PartitionState;
use crate::sources::Position;

/// One partition's progress, for its checkpoint pieces.
#[derive(Debug, Default)]
pub(crate) struct Progress {
    /// `(b, place, max_ts)`: for the boundaries from `b` up to the next entry's, the
    /// batch holding the first record at or after them started at `place`, with the
    /// watermark's greatest event time `max_ts` there. In boundary order.
    firsts: VecDeque<(u64, Position, Option<u64>)>,
    /// Every boundary up to here (inclusive) has its entry.
    covered: u64,
}

impl Progress {
    /// A batch started at `start` (with the watermark at `max_ts`) and emitted records
    /// whose greatest rule time is `max_time`.
    pub(crate) fn batch(
        &mut self,
        start: Position,
        max_ts: Option<u64>,
        max_time: Option<u64>,
        interval: u64,
    ) {
        let Some(max_time) = max_time else { return };
        let top = max_time - max_time % interval;
        if top > self.covered {
            self.firsts.push_back((self.covered + 1, start, max_ts));
            self.covered = top;
        }
    }

    /// The piece of partition `partition` for the boundaries after `lo`: read on from
    /// the place of the first of them (earlier places are right for later boundaries
    /// too), having read up to `now` (with the watermark at `max_ts`).
    pub(crate) fn state(
        &mut self,
        partition: u32,
        lo: u64,
        now: Position,
        max_ts: Option<u64>,
        done: bool,
    ) -> PartitionState {
        // Entries wholly before the boundaries after lo are never needed again.
        while self.firsts.get(1).is_some_and(|next| next.0 <= lo + 1) {
            self.firsts.pop_front();
        }
        // The entries tile the boundaries from 1 to `covered`: if some boundary after
        // lo is covered, the first entry now is the one of lo's next boundary.
        let (resume, resume_ts) = match self.firsts.front() {
            Some(&(_, place, ts)) if self.covered > lo => (place, ts),
            _ => (now, max_ts),
        };
        PartitionState {
            partition,
            resume,
            max_ts: resume_ts,
            read_until: now,
            done,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(offset: u64) -> Position {
        Position { offset, lines: 0 }
    }

    #[test]
    fn the_place_before_the_first_record_at_or_after_a_boundary() {
        let mut progress = Progress::default();
        // Boundaries every 10: batches reaching 8, 25 and 27, then 41.
        progress.batch(at(0), None, Some(8), 10);
        progress.batch(at(100), Some(8), Some(25), 10);
        progress.batch(at(200), Some(25), Some(27), 10);
        progress.batch(at(300), Some(27), Some(41), 10);
        // For boundaries after 0 (10, 20, …): the batch that reached 25.
        let state = progress.state(0, 0, at(400), Some(41), false);
        assert_eq!((state.resume, state.max_ts), (at(100), Some(8)));
        assert_eq!(state.read_until, at(400));
        // After 20: boundary 30 first reached by the batch at 300.
        let state = progress.state(0, 20, at(400), Some(41), false);
        assert_eq!((state.resume, state.max_ts), (at(300), Some(27)));
        // After 40: nothing read reaches 50 yet: read on from where it is.
        let state = progress.state(0, 40, at(400), Some(41), false);
        assert_eq!((state.resume, state.max_ts), (at(400), Some(41)));
    }
}
