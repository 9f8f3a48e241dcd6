//! What the synthetic sources (generator, walkthrough) share: a wall-clock rate limit
//! and the emission of a generated record.

use std::time::Instant;

use tidelake_operators::Transaction;

use super::Emitter;
use crate::dead_letter::Reason;

/// Emits records at a wall-clock rate: record `n` (from 0) is due `n / rate` seconds
/// after the first call, so the first is due at once.
#[derive(Clone, Debug)]
pub(crate) struct Throttle {
    per_second: f64,
    started: Option<Instant>,
}

impl Throttle {
    /// A throttle of `per_second` records per second of wall time.
    pub(crate) fn new(per_second: f64) -> Self {
        Throttle {
            per_second,
            started: None,
        }
    }

    /// How many records are due now, `emitted` having been emitted so far.
    pub(crate) fn allowance(&mut self, emitted: u64) -> u64 {
        let now = Instant::now();
        let started = *self.started.get_or_insert(now);
        let due = (now.duration_since(started).as_secs_f64() * self.per_second).floor();
        // `as` saturates; the record at time 0 is due at once.
        (due as u64).saturating_add(1).saturating_sub(emitted)
    }
}

/// How many records a synthetic reader may emit now: up to `max`, and, throttled, no
/// more than are due after the `emitted` so far (0: none yet, the reader is idle).
#[inline]
pub(crate) fn budget(throttle: &mut Option<Throttle>, emitted: u64, max: usize) -> u64 {
    let max = u64::try_from(max).unwrap_or(u64::MAX);
    match throttle {
        Some(throttle) => max.min(throttle.allowance(emitted)),
        None => max,
    }
}

/// Emits `record`; a late one goes to the dead letters as the CSV line
/// `account_id,ts,amount`.
#[inline]
pub(crate) fn emit_record(emit: &mut Emitter<'_>, seq: u64, account: &str, ts: u64, amount: f64) {
    if let Err(late) = emit.record(seq, Transaction::new(account, ts, amount)) {
        let raw = format!("{account},{ts},{amount}");
        emit.reject(seq, None, raw.as_bytes(), Reason::Late, late.detail);
    }
}
