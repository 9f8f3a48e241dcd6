//! The `walkthrough` source: the 50 transactions of Flink's fraud-detection
//! walkthrough, cycled (docs/semantics.md §4).
//!
//! The list is `TransactionIterator` of `flink-walkthrough-common`
//! (`apache/flink`, `flink-walkthroughs/flink-walkthrough-common/src/main/java/org/
//! apache/flink/walkthrough/common/source/TransactionIterator.java`). Record
//! `k = 0, 1, 2, …` is entry `k mod 50`, its account id the entry's decimal number,
//! `ts = 2019-01-01T00:00:00Z + k × 6 min`, and its position `seq = k` in the only
//! partition. By default it replays 10 records per second of wall time, as the Flink
//! walkthrough's source does, and cycles until event time reaches year 10000.

use serde::{Deserialize, Serialize};

use super::synthetic::{Throttle, budget, emit_record};
use super::validate::MAX_TS;
use super::{Emitter, PartitionReader, Position, ReadStatus, Source, SourceError};

/// `(account, amount)` of the walkthrough's transactions, in order.
pub const TRANSACTIONS: [(u8, f64); 50] = [
    (1, 188.23),
    (2, 374.79),
    (3, 112.15),
    (4, 478.75),
    (5, 208.85),
    (1, 379.64),
    (2, 351.44),
    (3, 320.75),
    (4, 259.42),
    (5, 273.44),
    (1, 267.25),
    (2, 397.15),
    (3, 0.219),
    (4, 231.94),
    (5, 384.73),
    (1, 419.62),
    (2, 412.91),
    (3, 0.77),
    (4, 22.10),
    (5, 377.54),
    (1, 375.44),
    (2, 230.18),
    (3, 0.80),
    (4, 350.89),
    (5, 127.55),
    (1, 483.91),
    (2, 228.22),
    (3, 871.15),
    (4, 64.19),
    (5, 79.43),
    (1, 56.12),
    (2, 256.48),
    (3, 148.16),
    (4, 199.95),
    (5, 252.37),
    (1, 274.73),
    (2, 473.54),
    (3, 119.92),
    (4, 323.59),
    (5, 353.16),
    (1, 211.90),
    (2, 280.93),
    (3, 347.89),
    (4, 459.86),
    (5, 82.31),
    (1, 373.26),
    (2, 479.83),
    (3, 454.25),
    (4, 83.64),
    (5, 292.44),
];

/// Event time of record 0: 2019-01-01T00:00:00Z.
pub const START_MS: u64 = 1_546_300_800_000;
/// Event time between consecutive records: 6 minutes.
pub const STEP_MS: u64 = 360_000;
/// The `source` name of the walkthrough's dead letters.
pub const SOURCE_NAME: &str = "walkthrough";

/// Account ids `"1"` to `"5"`, indexed by account number.
const ACCOUNT_IDS: [&str; 6] = ["0", "1", "2", "3", "4", "5"];

/// Record `k` of the walkthrough: `(account id, ts, amount)`.
pub fn record(k: u64) -> (&'static str, u64, f64) {
    let (account, amount) = TRANSACTIONS[(k % TRANSACTIONS.len() as u64) as usize];
    (
        ACCOUNT_IDS[usize::from(account)],
        START_MS + k * STEP_MS,
        amount,
    )
}

/// Options of the walkthrough source.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WalkthroughConfig {
    /// Records per second of wall time; `None` is unthrottled.
    pub rate: Option<f64>,
    /// Records in all; `None` cycles forever.
    pub count: Option<u64>,
}

impl Default for WalkthroughConfig {
    fn default() -> Self {
        WalkthroughConfig {
            rate: Some(10.0),
            count: None,
        }
    }
}

impl WalkthroughConfig {
    /// Checks the options.
    pub fn validate(&self) -> Result<(), SourceError> {
        if let Some(rate) = self.rate
            && !(rate.is_finite() && rate > 0.0)
        {
            return Err(SourceError::Config(format!(
                "walkthrough: rate {rate} must be a positive number of records per second"
            )));
        }
        if let Some(count) = self.count
            && count > records_before_year_10000()
        {
            return Err(SourceError::Config(format!(
                "walkthrough: {count} records at 6-minute steps run past year 10000"
            )));
        }
        Ok(())
    }
}

/// How many records have an event time before year 10000.
fn records_before_year_10000() -> u64 {
    (MAX_TS - START_MS).div_ceil(STEP_MS)
}

/// The walkthrough source: one partition.
#[derive(Clone, Debug)]
pub struct WalkthroughSource {
    config: WalkthroughConfig,
}

impl WalkthroughSource {
    /// A walkthrough source with checked options.
    pub fn new(config: WalkthroughConfig) -> Result<Self, SourceError> {
        config.validate()?;
        Ok(WalkthroughSource { config })
    }

    /// The options.
    pub fn config(&self) -> &WalkthroughConfig {
        &self.config
    }
}

impl Source for WalkthroughSource {
    fn partitions(&self) -> u32 {
        1
    }

    fn bounded(&self) -> bool {
        self.config.count.is_some()
    }

    fn source_name(&self, _partition: u32) -> String {
        SOURCE_NAME.to_owned()
    }

    fn open(&self, partition: u32) -> Result<Box<dyn PartitionReader>, SourceError> {
        Ok(Box::new(self.reader(partition)?))
    }

    fn open_at(
        &self,
        partition: u32,
        position: Position,
    ) -> Result<Box<dyn PartitionReader>, SourceError> {
        let mut reader = self.reader(partition)?;
        reader.next = position.offset.min(reader.end);
        reader.opened_at = reader.next;
        Ok(Box::new(reader))
    }
}

impl WalkthroughSource {
    fn reader(&self, partition: u32) -> Result<WalkthroughReader, SourceError> {
        if partition != 0 {
            return Err(SourceError::Config(format!(
                "walkthrough: partition {partition} does not exist (there is 1)"
            )));
        }
        let end = self
            .config
            .count
            .unwrap_or(u64::MAX)
            .min(records_before_year_10000());
        Ok(WalkthroughReader {
            next: 0,
            end,
            opened_at: 0,
            throttle: self.config.rate.map(Throttle::new),
        })
    }
}

/// Reads the walkthrough's only partition.
#[derive(Debug)]
struct WalkthroughReader {
    /// The next record.
    next: u64,
    /// The number of records.
    end: u64,
    /// The record it was opened at (the throttle counts from there).
    opened_at: u64,
    throttle: Option<Throttle>,
}

impl PartitionReader for WalkthroughReader {
    fn first_ts(&mut self) -> Result<Option<u64>, SourceError> {
        Ok((self.next < self.end).then(|| record(self.next).1))
    }

    fn read(&mut self, max: usize, emit: &mut Emitter<'_>) -> Result<ReadStatus, SourceError> {
        if self.next >= self.end {
            return Ok(ReadStatus::Done);
        }
        let budget = budget(&mut self.throttle, self.next - self.opened_at, max);
        if budget == 0 {
            return Ok(ReadStatus::Idle);
        }
        let stop = self.end.min(self.next.saturating_add(budget));
        while self.next < stop {
            let (account, ts, amount) = record(self.next);
            emit_record(emit, self.next, account, ts, amount);
            self.next += 1;
        }
        Ok(if self.next >= self.end {
            ReadStatus::Done
        } else {
            ReadStatus::More
        })
    }

    fn position(&self) -> Option<Position> {
        Some(Position {
            offset: self.next,
            lines: 0,
        })
    }
}

#[cfg(test)]
mod tests {
    use tidelake_operators::Transaction;
    use tidelake_operators::fraud::{LARGE, SMALL};

    use super::*;
    use crate::sources::{ReadBatch, RuleTime, Watermark};

    fn unthrottled(count: Option<u64>) -> WalkthroughSource {
        WalkthroughSource::new(WalkthroughConfig { rate: None, count }).expect("valid")
    }

    /// Reads up to `records` records in calls of `max`.
    fn read(
        source: &WalkthroughSource,
        records: usize,
        max: usize,
    ) -> (Vec<(u64, Transaction)>, ReadStatus) {
        let mut reader = source.open(0).expect("opens");
        let mut watermark = Watermark::new(0);
        let mut out = ReadBatch::default();
        let mut status = ReadStatus::More;
        while out.events.len() < records && status == ReadStatus::More {
            let want = max.min(records - out.events.len());
            let mut emit = Emitter::new(
                SOURCE_NAME,
                0,
                RuleTime::Event,
                &mut watermark,
                0,
                100,
                &mut out,
            );
            status = reader.read(want, &mut emit).expect("reads");
        }
        assert!(out.dead_letters.is_empty());
        let records = out
            .events
            .iter()
            .map(|e| (e.seq, e.record.clone()))
            .collect();
        (records, status)
    }

    #[test]
    fn first_cycle_is_flinks_list() {
        let (records, _) = read(&unthrottled(None), 50, 7);
        assert_eq!(records.len(), 50);
        let expected = [
            188.23, 374.79, 112.15, 478.75, 208.85, 379.64, 351.44, 320.75, 259.42, 273.44, 267.25,
            397.15, 0.219, 231.94, 384.73, 419.62, 412.91, 0.77, 22.10, 377.54, 375.44, 230.18,
            0.80, 350.89, 127.55, 483.91, 228.22, 871.15, 64.19, 79.43, 56.12, 256.48, 148.16,
            199.95, 252.37, 274.73, 473.54, 119.92, 323.59, 353.16, 211.90, 280.93, 347.89, 459.86,
            82.31, 373.26, 479.83, 454.25, 83.64, 292.44,
        ];
        for (k, (seq, tx)) in records.iter().enumerate() {
            assert_eq!(*seq, k as u64);
            assert_eq!(tx.account_id, (k % 5 + 1).to_string());
            assert_eq!(tx.amount, expected[k], "entry {k}");
            assert_eq!(tx.ts, 1_546_300_800_000 + k as u64 * 6 * 60 * 1000);
        }
    }

    #[test]
    fn second_cycle_repeats_300_minutes_later() {
        let (records, _) = read(&unthrottled(None), 101, 1_000);
        for k in 0..51 {
            let (first, again) = (&records[k].1, &records[k + 50].1);
            assert_eq!(records[k + 50].0, k as u64 + 50);
            assert_eq!(
                (&again.account_id, again.amount),
                (&first.account_id, first.amount)
            );
            assert_eq!(again.ts, first.ts + 300 * 60 * 1000);
        }
    }

    #[test]
    fn account_3_goes_small_then_large() {
        let (records, _) = read(&unthrottled(None), 100, 1_000);
        let account_3: Vec<(u64, &Transaction)> = records
            .iter()
            .filter(|(_, t)| t.account_id == "3")
            .map(|(k, t)| (*k, t))
            .collect();
        let small: Vec<u64> = account_3
            .iter()
            .filter(|(_, t)| t.amount < SMALL)
            .map(|(k, _)| *k % 50)
            .collect();
        let large: Vec<u64> = account_3
            .iter()
            .filter(|(_, t)| t.amount > LARGE)
            .map(|(k, _)| *k % 50)
            .collect();
        assert_eq!(small, [12, 17, 22, 12, 17, 22]);
        assert_eq!(large, [27, 27]);
        assert_eq!(TRANSACTIONS[12], (3, 0.219));
        assert_eq!(TRANSACTIONS[17], (3, 0.77));
        assert_eq!(TRANSACTIONS[22], (3, 0.80));
        assert_eq!(TRANSACTIONS[27], (3, 871.15));
        // In each cycle, the transaction after the small one at 22 is the large one at 27.
        for cycle in 0..2 {
            let at = |k: u64| {
                account_3
                    .iter()
                    .position(|(i, _)| *i == cycle * 50 + k)
                    .expect("present")
            };
            assert_eq!(at(27), at(22) + 1);
            assert_eq!(
                account_3[at(27)].1.ts - account_3[at(22)].1.ts,
                30 * 60 * 1000
            );
        }
        // The alert of docs/semantics.md §1 is this pair.
        assert_eq!(record(22).1, 1_546_308_720_000);
        assert_eq!(record(27).1, 1_546_310_520_000);
    }

    #[test]
    fn count_stops_it() {
        let source = unthrottled(Some(73));
        assert!(source.bounded());
        let (records, status) = read(&source, 1_000, 10);
        assert_eq!(records.len(), 73);
        assert_eq!(status, ReadStatus::Done);
        let mut reader = source.open(0).expect("opens");
        let mut watermark = Watermark::new(0);
        let mut out = ReadBatch::default();
        let mut emit = Emitter::new(
            SOURCE_NAME,
            0,
            RuleTime::Event,
            &mut watermark,
            0,
            100,
            &mut out,
        );
        assert_eq!(reader.read(73, &mut emit).expect("reads"), ReadStatus::Done);
        assert_eq!(reader.first_ts().expect("peeks"), None);
        assert_eq!(reader.read(10, &mut emit).expect("reads"), ReadStatus::Done);
        assert_eq!(out.events.len(), 73);
        assert!(!unthrottled(None).bounded());
        assert_eq!(
            unthrottled(Some(0))
                .open(0)
                .expect("opens")
                .first_ts()
                .expect("peeks"),
            None
        );
    }

    #[test]
    fn first_ts_and_throttling() {
        let source = WalkthroughSource::new(WalkthroughConfig {
            rate: Some(1e-9),
            count: None,
        })
        .expect("valid");
        assert_eq!(source.source_name(0), "walkthrough");
        assert_eq!(source.partitions(), 1);
        assert!(source.open(1).is_err());
        let mut reader = source.open(0).expect("opens");
        assert_eq!(reader.first_ts().expect("peeks"), Some(START_MS));
        let mut watermark = Watermark::new(0);
        let mut out = ReadBatch::default();
        let mut emit = Emitter::new(
            SOURCE_NAME,
            0,
            RuleTime::Event,
            &mut watermark,
            0,
            100,
            &mut out,
        );
        assert_eq!(reader.read(10, &mut emit).expect("reads"), ReadStatus::More);
        assert_eq!(reader.read(10, &mut emit).expect("reads"), ReadStatus::Idle);
        assert_eq!(out.events.len(), 1, "only the first record is due");
        assert_eq!(reader.first_ts().expect("peeks"), Some(START_MS + STEP_MS));
    }

    #[test]
    fn validate_rejects_bad_options() {
        assert!(WalkthroughConfig::default().validate().is_ok());
        assert_eq!(WalkthroughConfig::default().rate, Some(10.0));
        for rate in [0.0, -1.0, f64::NAN] {
            assert!(
                WalkthroughSource::new(WalkthroughConfig {
                    rate: Some(rate),
                    count: None
                })
                .is_err()
            );
        }
        assert!(
            WalkthroughConfig {
                rate: None,
                count: Some(u64::MAX)
            }
            .validate()
            .is_err()
        );
    }
}
