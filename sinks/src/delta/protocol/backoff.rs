//! Jittered exponential backoff between attempts at a commit, shared by every writer
//! that retries a put-if-absent after losing a race (the epoch committer, OPTIMIZE).
//!
//! Writers racing for the same version spread out: each waits a random share (from none
//! to all: "full jitter") of its current backoff, which doubles after every wait up to a
//! maximum. With many writers sealing epochs at the same moment, full jitter spreads
//! their retries over the whole backoff instead of bunching them in its second half, so
//! fewer puts lose and the last writer lands sooner (docs/scaling.md §4).

use std::time::Duration;

use rand_core::{Rng, SeedableRng};
use rand_pcg::Pcg64Mcg;

/// The first backoff of a commit, unless its writer says otherwise.
pub const DEFAULT_MIN_BACKOFF: Duration = Duration::from_millis(1);

/// The longest backoff of a commit, unless its writer says otherwise.
pub const DEFAULT_MAX_BACKOFF: Duration = Duration::from_millis(100);

/// The waits of one commit's retries; see the [module docs](self).
#[derive(Clone, Debug)]
pub struct Backoff {
    next: Duration,
    max: Duration,
    rng: Pcg64Mcg,
}

impl Backoff {
    /// Waits starting at `min` and doubling up to `max`, with a fresh random seed.
    pub fn new(min: Duration, max: Duration) -> Self {
        Backoff {
            next: min,
            max,
            rng: Pcg64Mcg::seed_from_u64(uuid::Uuid::new_v4().as_u64_pair().0),
        }
    }

    /// The next wait: a random share (none to all) of the current backoff, which then
    /// doubles (up to the maximum).
    pub fn next_wait(&mut self) -> Duration {
        let nanos = u64::try_from(self.next.as_nanos())
            .unwrap_or(u64::MAX)
            .max(1);
        let jittered = Duration::from_nanos(self.rng.next_u64() % (nanos + 1));
        self.next = (self.next * 2).min(self.max);
        jittered
    }

    /// Sleeps the [next wait](Self::next_wait).
    pub async fn sleep(&mut self) {
        tokio::time::sleep(self.next_wait()).await;
    }
}

impl Default for Backoff {
    /// From [`DEFAULT_MIN_BACKOFF`] to [`DEFAULT_MAX_BACKOFF`].
    fn default() -> Self {
        Backoff::new(DEFAULT_MIN_BACKOFF, DEFAULT_MAX_BACKOFF)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waits_are_jittered_shares_of_a_doubling_capped_backoff() {
        let mut sum = Duration::ZERO;
        for _ in 0..200 {
            let mut backoff = Backoff::new(Duration::from_millis(4), Duration::from_millis(20));
            for nominal in [4, 8, 16, 20, 20] {
                let wait = backoff.next_wait();
                assert!(
                    wait <= Duration::from_millis(nominal),
                    "{wait:?} of {nominal} ms"
                );
                if nominal == 20 {
                    sum += wait;
                }
            }
        }
        // 400 waits uniform in [0, 20 ms]: their mean is 10 ms.
        let mean = sum / 400;
        assert!(
            Duration::from_millis(8) < mean && mean < Duration::from_millis(12),
            "{mean:?}"
        );
    }
}
