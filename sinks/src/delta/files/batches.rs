//! Commits sized for the table (docs/semantics.md §5): which of one writer's epochs go
//! into one commit.
//!
//! Commit epochs are rule time, so a writer that reads a backlog (a replay, a catch-up
//! after downtime, a fast bounded source) seals many epochs a second. Committing each
//! on its own would make as many table versions and small files. Instead a writer puts
//! the rows of consecutive epochs into the files of one *batch*, committed once with the
//! `txn` version of its last epoch: the epochs are exactly-once as before (a re-run skips
//! the epochs up to the `txn` version) and the table's rows are the same.
//!
//! - A batch takes the rows of a new epoch while it is young (opened less than
//!   `max_commit_rate` ago) and small (its files under the target size); otherwise the
//!   new epoch opens the next batch, and the batch is *closed*.
//! - A batch commits once its last epoch is sealed: at once if it is closed, as old as
//!   `max_commit_rate` or as big as the target size, otherwise when it turns
//!   `max_commit_rate` old or the input ends ([`wake_at`](CommitBatches::wake_at)).
//!
//! So a live stream, whose epochs end further apart than `max_commit_rate`, commits every
//! epoch as it is sealed, while a replay commits about once per `max_commit_rate`, in
//! files of many epochs. A rate of zero commits every epoch on its own.
//!
//! Batches cover consecutive ranges of epochs: an epoch belongs to the oldest batch whose
//! last epoch is not before it, so that committing a batch commits every epoch up to its
//! `txn` version. This is only the policy; the [sink](crate::delta::files::sink) keeps the
//! files.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// How a writer batches its epochs into commits; see the [module docs](self).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Batching {
    /// The least wall time a batch stays open for more epochs (`--max-commit-rate`);
    /// zero commits every epoch on its own.
    pub max_commit_rate: Duration,
    /// A batch whose files hold this many bytes takes no more epochs (the target file
    /// size).
    pub target_bytes: u64,
}

impl Batching {
    /// Every epoch its own commit.
    pub const EVERY_EPOCH: Batching = Batching {
        max_commit_rate: Duration::ZERO,
        target_bytes: u64::MAX,
    };
}

/// One writer's open batches of epochs; see the [module docs](self).
#[derive(Debug)]
pub(crate) struct CommitBatches {
    batching: Batching,
    /// Open batches, oldest first; their last epochs increase.
    open: VecDeque<Batch>,
    next_id: u64,
    /// The last epoch sealed: every epoch up to it has all its rows.
    sealed: Option<u64>,
}

/// Consecutive epochs committed together.
#[derive(Debug)]
struct Batch {
    id: u64,
    opened: Instant,
    /// Its last epoch so far (with rows).
    last: u64,
    /// It takes no epoch after `last`.
    closed: bool,
}

impl CommitBatches {
    pub(crate) fn new(batching: Batching) -> Self {
        CommitBatches {
            batching,
            open: VecDeque::new(),
            next_id: 0,
            sealed: None,
        }
    }

    /// The batch that takes rows of `epoch` (not sealed yet) at `now`; `bytes` gives the
    /// bytes a batch's files hold so far.
    pub(crate) fn batch_for(
        &mut self,
        epoch: u64,
        now: Instant,
        bytes: impl Fn(u64) -> u64,
    ) -> u64 {
        if let Some(batch) = self.open.iter().find(|b| epoch <= b.last) {
            return batch.id;
        }
        if let Some(newest) = self.open.back_mut() {
            let takes_more = !newest.closed
                && now < newest.opened + self.batching.max_commit_rate
                && bytes(newest.id) < self.batching.target_bytes;
            if takes_more {
                newest.last = epoch;
                return newest.id;
            }
            newest.closed = true;
        }
        let id = self.next_id;
        self.next_id += 1;
        self.open.push_back(Batch {
            id,
            opened: now,
            last: epoch,
            closed: false,
        });
        id
    }

    /// Every row of every epoch up to `epoch` has been given.
    pub(crate) fn seal(&mut self, epoch: u64) {
        self.sealed = self.sealed.max(Some(epoch));
    }

    /// The oldest batch, if it is complete and due at `now` (or `ended`: no more input
    /// comes); it leaves the open batches, and is then committed. Call until `None`.
    pub(crate) fn take_due(
        &mut self,
        now: Instant,
        ended: bool,
        bytes: impl Fn(u64) -> u64,
    ) -> Option<u64> {
        let oldest = self.oldest_complete()?;
        let due = oldest.closed
            || ended
            || now >= oldest.opened + self.batching.max_commit_rate
            || bytes(oldest.id) >= self.batching.target_bytes;
        due.then(|| self.open.pop_front().map(|b| b.id))?
    }

    /// When the oldest batch, complete but not yet due, becomes due by its age.
    pub(crate) fn wake_at(&self) -> Option<Instant> {
        let oldest = self.oldest_complete()?;
        Some(oldest.opened + self.batching.max_commit_rate)
    }

    /// The oldest batch, if its last epoch is sealed.
    fn oldest_complete(&self) -> Option<&Batch> {
        let oldest = self.open.front()?;
        self.sealed
            .is_some_and(|sealed| sealed >= oldest.last)
            .then_some(oldest)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RATE: Duration = Duration::from_secs(1);

    fn batches(target_bytes: u64) -> CommitBatches {
        CommitBatches::new(Batching {
            max_commit_rate: RATE,
            target_bytes,
        })
    }

    fn ms(start: Instant, ms: u64) -> Instant {
        start + Duration::from_millis(ms)
    }

    fn no_bytes(_: u64) -> u64 {
        0
    }

    #[test]
    fn a_replay_puts_the_epochs_of_each_commit_rate_into_one_batch() {
        let t = Instant::now();
        let mut b = batches(u64::MAX);
        // Epochs 0..=4 within the first second: one batch.
        for epoch in 0..5 {
            assert_eq!(b.batch_for(epoch, ms(t, epoch * 100), no_bytes), 0);
        }
        b.seal(3);
        assert_eq!(
            b.take_due(ms(t, 450), false, no_bytes),
            None,
            "epoch 4 not sealed"
        );
        b.seal(4);
        assert_eq!(
            b.take_due(ms(t, 500), false, no_bytes),
            None,
            "young and open"
        );
        assert_eq!(b.wake_at(), Some(ms(t, 1_000)));
        // Epoch 5 comes after the second: a new batch, and the first one is closed.
        assert_eq!(b.batch_for(5, ms(t, 1_100), no_bytes), 1);
        assert_eq!(b.take_due(ms(t, 1_100), false, no_bytes), Some(0));
        assert_eq!(b.take_due(ms(t, 1_100), false, no_bytes), None);
        assert_eq!(b.wake_at(), None, "epoch 5 is not sealed");
        b.seal(5);
        assert_eq!(b.wake_at(), Some(ms(t, 2_100)));
        assert_eq!(b.take_due(ms(t, 2_100), false, no_bytes), Some(1));
    }

    #[test]
    fn a_live_stream_commits_every_epoch_as_it_is_sealed() {
        let t = Instant::now();
        let mut b = batches(u64::MAX);
        for (i, epoch) in [10_u64, 11, 13].into_iter().enumerate() {
            let now = ms(t, i as u64 * 10_000);
            let id = b.batch_for(epoch, now, no_bytes);
            assert_eq!(id, i as u64);
            b.seal(epoch);
            let sealed = now + Duration::from_secs(10);
            assert_eq!(b.take_due(sealed, false, no_bytes), Some(id));
        }
    }

    #[test]
    fn an_epoch_between_batches_joins_the_later_one() {
        let t = Instant::now();
        let mut b = batches(u64::MAX);
        assert_eq!(b.batch_for(5, t, no_bytes), 0);
        assert_eq!(
            b.batch_for(8, ms(t, 2_000), no_bytes),
            1,
            "too old to take 8"
        );
        assert_eq!(b.batch_for(3, ms(t, 2_000), no_bytes), 0);
        assert_eq!(
            b.batch_for(7, ms(t, 2_000), no_bytes),
            1,
            "after 5, so in the later batch"
        );
        b.seal(5);
        assert_eq!(b.take_due(ms(t, 2_000), false, no_bytes), Some(0));
        b.seal(7);
        assert_eq!(
            b.take_due(ms(t, 2_000), true, no_bytes),
            None,
            "8 is not sealed"
        );
        b.seal(8);
        assert_eq!(
            b.take_due(ms(t, 2_000), true, no_bytes),
            Some(1),
            "the input ended"
        );
    }

    #[test]
    fn a_batch_that_reaches_the_target_size_takes_no_more_epochs_and_is_due() {
        let t = Instant::now();
        let mut b = batches(1_000);
        let full = |_: u64| 1_000;
        assert_eq!(b.batch_for(0, t, no_bytes), 0);
        assert_eq!(b.batch_for(1, t, full), 1);
        b.seal(1);
        assert_eq!(b.take_due(t, false, full), Some(0));
        assert_eq!(b.take_due(t, false, full), Some(1), "as big as the target");
    }

    #[test]
    fn a_zero_rate_commits_every_epoch_on_its_own() {
        let t = Instant::now();
        let mut b = CommitBatches::new(Batching::EVERY_EPOCH);
        assert_eq!(b.batch_for(0, t, no_bytes), 0);
        assert_eq!(b.batch_for(1, t, no_bytes), 1);
        assert_eq!(b.batch_for(2, t, no_bytes), 2);
        b.seal(1);
        assert_eq!(b.take_due(t, false, no_bytes), Some(0));
        assert_eq!(b.take_due(t, false, no_bytes), Some(1));
        assert_eq!(b.take_due(t, false, no_bytes), None);
    }
}
