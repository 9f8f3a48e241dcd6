//! The `generator` source: synthetic transactions, deterministic from a seed (docs/semantics.md §4).
//!
//! # Generation scheme
//!
//! The records form one global sequence `i = 0, 1, 2, …` (`i < count`, or forever when
//! the count is unbounded). Record `i` belongs to partition `p = i % partitions` and has
//! the *nominal* event time `start_ms + i * 1000 / density` (integer division). Within
//! its partition a record's position is its slot `seq = i / partitions`. A partition's
//! records depend only on the configuration and the partition index: each partition
//! has its own PCG generator ([`Pcg64Mcg`], seeded with
//! `seed_from_u64(mix(seed, partition))`), so the data is the same for any worker
//! count, reading order and batch size.
//!
//! Slots are filled in order; at slot `seq` with nominal time `t`, the first of these
//! that applies decides the record:
//!
//! 1. **Fraud partner.** A pending large partner whose time is `≤ t` (the one with the
//!    least `(time, pair)`): account `f<partition>-<pair>`, a large amount, `ts` = its
//!    time. So a partner takes the first slot whose nominal time reaches
//!    `small.ts + gap`, and is never before its small transaction.
//! 2. **Fraud small.** Every `fraud_every`-th slot (`seq % fraud_every == 0`, so the
//!    first at slot 0) owes one fraud pair; an owed pair is injected at the first slot
//!    no partner takes: account `f<partition>-<pair>` (`pair = 0, 1, 2, …` within the
//!    partition), a small amount, `ts` = the slot's time; its partner is scheduled at
//!    `ts + FRAUD_GAPS_MS[(partition + pair) % 7]`. A partner that would fall past the
//!    partition's last slot is never emitted.
//! 3. **Normal record.** Draws, in this order: the kind (small with probability
//!    `small_share`, large with `large_share`, else normal), the account (decimal
//!    string of a uniform number in `0..accounts`), the amount in cents (uniform:
//!    small `0.01..=0.99`, normal `1.00..=500.00`, large `500.01..=5000.00`).
//!
//! With `out_of_orderness_ms = d > 0`, normal and fraud-small records then draw a
//! jitter `j` uniform in `0..=d` and get `ts = t − j` (never below 0). Partners carry
//! no jitter of their own. With `d = 0` each partition is non-decreasing in `ts`; with
//! `d > 0` no record is below its partition's watermark with bound `d`.
//!
//! `count` is exact: every slot holds one record. Fraud accounts (`f…`) never collide
//! with normal ones (digits only), so they hold exactly their pair. The pending
//! partners are bounded by the pairs in flight (about
//! `120 000 ms × density / partitions / 1000 / fraud_every`), not by the count.
//! Event time ends before year 10000: an unbounded partition ends (`Done`) there.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use rand_core::{Rng, SeedableRng};
use rand_pcg::Pcg64Mcg;
use serde::{Deserialize, Serialize};

use super::synthetic::{Throttle, budget, emit_record};
use super::validate::MAX_TS;
use super::{Emitter, PartitionReader, Position, ReadStatus, Source, SourceError};
use crate::profiles::ProfileConfig;

/// The gaps (ms) from an injected small transaction to its large partner, cycled so
/// that both sides of the rule's 60 000 ms boundary are exercised.
pub const FRAUD_GAPS_MS: [u64; 7] = [0, 1, 30_000, 59_999, 60_000, 60_001, 120_000];

/// The `source` name of the generator's dead letters.
pub const SOURCE_NAME: &str = "generator";

/// Small amounts, in cents: `0.01..=0.99`.
pub(crate) const SMALL_CENTS: (u64, u64) = (1, 99);
/// Normal amounts, in cents: `1.00..=500.00` (both boundaries are not small, not large).
const NORMAL_CENTS: (u64, u64) = (100, 50_000);
/// Large amounts, in cents: `500.01..=5000.00`.
pub(crate) const LARGE_CENTS: (u64, u64) = (50_001, 500_000);

/// Options of the generator source.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GeneratorConfig {
    /// The seed: the same seed and options give the same records.
    pub seed: u64,
    /// The number of logical partitions (fixed, whatever the worker count).
    pub partitions: u32,
    /// The number of normal accounts: ids `"0"` to `accounts − 1`.
    pub accounts: u64,
    /// Records over all partitions; `None` is unbounded.
    pub count: Option<u64>,
    /// Records per second of event time, over all partitions.
    pub density: u64,
    /// Records per second of wall time, over all partitions; `None` is unthrottled.
    pub rate: Option<f64>,
    /// Event time of the first record (ms since the Unix epoch).
    pub start_ms: u64,
    /// Share of normal records with a small amount (below 1.00).
    pub small_share: f64,
    /// Share of normal records with a large amount (above 500.00).
    pub large_share: f64,
    /// Inject one fraud pair every this many records of a partition; `None`: none.
    pub fraud_every: Option<u64>,
    /// Records are up to this much (ms) earlier than their nominal time.
    pub out_of_orderness_ms: u64,
    /// Richer transactions from account profiles, with fraud patterns and labels
    /// (`--profiles`, [`profiled`](super::profiled)) instead of the scheme above.
    pub profiles: bool,
    /// Profiles: how long from `start_ms` accounts' reference data change
    /// (`--profile-span`, as `tidelake generate accounts --span`).
    pub profile_span_ms: u64,
    /// Profiles: the share of accounts whose reference data change in that span
    /// (`--update-share`).
    pub update_share: f64,
}

impl Default for GeneratorConfig {
    fn default() -> Self {
        GeneratorConfig {
            seed: 42,
            partitions: 16,
            accounts: 100_000,
            count: Some(2_000_000),
            density: 100_000,
            rate: None,
            start_ms: 1_700_000_000_000,
            small_share: 0.02,
            large_share: 0.02,
            fraud_every: Some(5_000),
            out_of_orderness_ms: 0,
            profiles: false,
            profile_span_ms: 86_400_000,
            update_share: 0.1,
        }
    }
}

impl GeneratorConfig {
    /// Checks the options.
    pub fn validate(&self) -> Result<(), SourceError> {
        let bad = |message: String| Err(SourceError::Config(format!("generator: {message}")));
        if self.partitions == 0 {
            return bad("partitions must be at least 1".into());
        }
        if self.accounts == 0 {
            return bad("accounts must be at least 1".into());
        }
        if self.density == 0 {
            return bad("density must be at least 1 event per second".into());
        }
        for (name, share) in [
            ("small share", self.small_share),
            ("large share", self.large_share),
        ] {
            if !(0.0..=1.0).contains(&share) {
                return bad(format!("{name} {share} is not between 0 and 1"));
            }
        }
        if self.small_share + self.large_share > 1.0 + 1e-9 {
            return bad(format!(
                "small share {} and large share {} add up to more than 1",
                self.small_share, self.large_share
            ));
        }
        if let Some(rate) = self.rate
            && !(rate.is_finite() && rate > 0.0)
        {
            return bad(format!(
                "rate {rate} must be a positive number of events per second"
            ));
        }
        if !(0.0..=1.0).contains(&self.update_share) {
            return bad(format!(
                "update share {} is not between 0 and 1",
                self.update_share
            ));
        }
        if self.fraud_every == Some(0) {
            return bad("fraud pairs must be injected every 1 or more records".into());
        }
        if self.start_ms >= MAX_TS {
            return bad(format!(
                "start time {} ms is not before year 10000",
                self.start_ms
            ));
        }
        if let Some(count) = self.count
            && count > 0
            && self.nominal_ts(count - 1) >= MAX_TS
        {
            return bad(format!(
                "{count} records at {} per second from {} ms run past year 10000",
                self.density, self.start_ms
            ));
        }
        Ok(())
    }

    /// The nominal event time of record `index` of the global sequence (saturating).
    pub fn nominal_ts(&self, index: u64) -> u64 {
        let offset = u128::from(index) * 1000 / u128::from(self.density.max(1));
        u64::try_from(u128::from(self.start_ms) + offset).unwrap_or(u64::MAX)
    }

    /// The number of records of `partition`, or `None` when unbounded.
    pub fn partition_len(&self, partition: u32) -> Option<u64> {
        self.count
            .map(|count| slots_below(u128::from(count), partition, self.partitions))
    }

    /// The profiles of the accounts (with `profiles`).
    pub fn profile_config(&self) -> ProfileConfig {
        ProfileConfig {
            seed: self.seed,
            accounts: self.accounts,
            start_ms: self.start_ms,
            span_ms: self.profile_span_ms,
            update_share: self.update_share,
        }
    }

    /// The wall-clock records per second of one partition, if throttled.
    pub(crate) fn partition_rate(&self) -> Option<f64> {
        self.rate.map(|rate| rate / f64::from(self.partitions))
    }
}

/// The number of slots `seq` of `partition` whose global index `partition + seq ×
/// partitions` is below `limit`.
fn slots_below(limit: u128, partition: u32, partitions: u32) -> u64 {
    let (p, n) = (u128::from(partition), u128::from(partitions.max(1)));
    if limit > p {
        u64::try_from((limit - p - 1) / n + 1).unwrap_or(u64::MAX)
    } else {
        0
    }
}

/// The generator source.
#[derive(Clone, Debug)]
pub struct GeneratorSource {
    config: GeneratorConfig,
}

impl GeneratorSource {
    /// A generator with checked options.
    pub fn new(config: GeneratorConfig) -> Result<Self, SourceError> {
        config.validate()?;
        Ok(GeneratorSource { config })
    }

    /// The options.
    pub fn config(&self) -> &GeneratorConfig {
        &self.config
    }

    /// The reader of `partition`, as its concrete type (for benches).
    pub fn reader(&self, partition: u32) -> Result<GeneratorReader, SourceError> {
        if partition >= self.config.partitions {
            return Err(SourceError::Config(format!(
                "generator: partition {partition} does not exist (there are {})",
                self.config.partitions
            )));
        }
        Ok(GeneratorReader::new(&self.config, partition))
    }
}

impl Source for GeneratorSource {
    fn partitions(&self) -> u32 {
        self.config.partitions
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

    /// Generates the partition's records up to `position` again and drops them: a
    /// partition's records depend on all those before it.
    fn open_at(
        &self,
        partition: u32,
        position: Position,
    ) -> Result<Box<dyn PartitionReader>, SourceError> {
        let mut reader = self.reader(partition)?;
        while reader.next_seq() < position.offset && reader.next_record().is_some() {}
        Ok(Box::new(reader))
    }
}

/// An account id being built on the stack: `"<n>"` or `"f<partition>-<pair>"`.
#[derive(Clone, Copy, Debug)]
struct AccountBuf {
    bytes: [u8; 32],
    len: u8,
}

impl AccountBuf {
    fn number(n: u64) -> Self {
        let mut buf = AccountBuf {
            bytes: [0; 32],
            len: 0,
        };
        buf.push_u64(n);
        buf
    }

    fn fraud(partition: u32, pair: u64) -> Self {
        let mut buf = AccountBuf {
            bytes: [0; 32],
            len: 0,
        };
        buf.push_byte(b'f');
        buf.push_u64(u64::from(partition));
        buf.push_byte(b'-');
        buf.push_u64(pair);
        buf
    }

    #[inline]
    fn push_byte(&mut self, byte: u8) {
        self.bytes[usize::from(self.len)] = byte;
        self.len += 1;
    }

    #[inline]
    fn push_u64(&mut self, mut n: u64) {
        let mut digits = [0u8; 20];
        let mut start = digits.len();
        loop {
            start -= 1;
            digits[start] = b'0' + (n % 10) as u8;
            n /= 10;
            if n == 0 {
                break;
            }
        }
        let len = usize::from(self.len);
        let end = len + digits.len() - start;
        self.bytes[len..end].copy_from_slice(&digits[start..]);
        self.len = end as u8;
    }

    #[inline]
    fn as_str(&self) -> &str {
        // Only ASCII digits, 'f' and '-' are ever written.
        std::str::from_utf8(&self.bytes[..usize::from(self.len)]).unwrap_or("?")
    }
}

/// One generated record, before it becomes a [`Transaction`].
#[derive(Clone, Copy, Debug)]
struct Generated {
    seq: u64,
    account: AccountBuf,
    ts: u64,
    amount: f64,
}

/// `x` scaled to `0..n` (multiply-high: unbiased enough for `n ≤ 2^64`).
#[inline]
pub(crate) fn below(x: u64, n: u128) -> u64 {
    ((u128::from(x) * n) >> 64) as u64
}

/// An amount in cents drawn uniformly from `range` (inclusive), in whole cents.
#[inline]
pub(crate) fn draw_cents(x: u64, (lo, hi): (u64, u64)) -> u64 {
    lo + below(x, u128::from(hi - lo + 1))
}

/// [`draw_cents`] in currency units.
#[inline]
fn cents(x: u64, range: (u64, u64)) -> f64 {
    draw_cents(x, range) as f64 / 100.0
}

/// `nominal` less a jitter drawn uniformly from `0..=out_of_orderness` (none when 0),
/// never below 0.
#[inline]
pub(crate) fn jittered(rng: &mut Pcg64Mcg, out_of_orderness: u64, nominal: u64) -> u64 {
    if out_of_orderness == 0 {
        nominal
    } else {
        let jitter = below(rng.next_u64(), u128::from(out_of_orderness) + 1);
        nominal.saturating_sub(jitter)
    }
}

/// A share in `[0, 1]` as a threshold on a uniform 64-bit draw.
fn share_threshold(share: f64) -> u128 {
    if share >= 1.0 {
        1 << 64
    } else {
        (share.max(0.0) * 18_446_744_073_709_551_616.0) as u128
    }
}

/// SplitMix64's finaliser: spreads a seed and a partition over the PCG seed space.
pub(crate) fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// The PCG generator of `partition` under `config`'s seed.
pub(crate) fn partition_rng(config: &GeneratorConfig, partition: u32) -> Pcg64Mcg {
    Pcg64Mcg::seed_from_u64(mix(config.seed ^ mix(u64::from(partition))))
}

/// The slots of one partition and their nominal times (see the [module docs](self)).
#[derive(Clone, Debug)]
pub(crate) struct Slots {
    /// The next slot.
    pub(crate) seq: u64,
    /// The number of slots of the partition.
    end: u64,
    start_ms: u64,
    /// Slot `seq`'s nominal time is `start_ms + offset_ms`, with
    /// `offset_ms × density + rem = (partition + seq × partitions) × 1000`.
    offset_ms: u128,
    rem: u128,
    step_ms: u128,
    step_rem: u128,
    density: u128,
    /// Every this many slots owe one injected fraud; 0 when none is injected.
    fraud_every: u64,
    /// Slots until the next one that owes a fraud.
    until_fraud: u64,
    /// Frauds owed and not injected yet.
    owed: u64,
}

impl Slots {
    /// The slots of `partition`.
    pub(crate) fn new(config: &GeneratorConfig, partition: u32) -> Self {
        let density = u128::from(config.density.max(1));
        let first = u128::from(partition) * 1000;
        let step = u128::from(config.partitions) * 1000;
        // The first global index whose nominal time is at or after year 10000.
        let span = u128::from(MAX_TS.saturating_sub(config.start_ms));
        let time_limit = (span * density).div_ceil(1000);
        let end = slots_below(time_limit, partition, config.partitions)
            .min(config.partition_len(partition).unwrap_or(u64::MAX));
        Slots {
            seq: 0,
            end,
            start_ms: config.start_ms,
            offset_ms: first / density,
            rem: first % density,
            step_ms: step / density,
            step_rem: step % density,
            density,
            fraud_every: config.fraud_every.unwrap_or(0),
            until_fraud: 0,
            owed: 0,
        }
    }

    /// Takes one owed fraud, if the slots so far owe one.
    #[inline]
    pub(crate) fn take_owed(&mut self) -> bool {
        let owed = self.owed > 0;
        self.owed -= u64::from(owed);
        owed
    }

    /// True once every slot has been taken.
    pub(crate) fn exhausted(&self) -> bool {
        self.seq >= self.end
    }

    /// The next slot and its nominal time, if the partition has one.
    #[inline]
    pub(crate) fn next(&mut self) -> Option<(u64, u64)> {
        if self.seq >= self.end {
            return None;
        }
        let seq = self.seq;
        // Below `end`, the nominal time is before year 10000.
        let nominal = self.start_ms + self.offset_ms as u64;
        self.seq += 1;
        self.offset_ms += self.step_ms;
        self.rem += self.step_rem;
        if self.rem >= self.density {
            self.rem -= self.density;
            self.offset_ms += 1;
        }
        if self.fraud_every != 0 {
            if self.until_fraud == 0 {
                self.owed += 1;
                self.until_fraud = self.fraud_every - 1;
            } else {
                self.until_fraud -= 1;
            }
        }
        Some((seq, nominal))
    }
}

/// Reads one partition of the generator.
#[derive(Debug)]
pub struct GeneratorReader {
    partition: u32,
    rng: Pcg64Mcg,
    slots: Slots,
    small_below: u128,
    large_below: u128,
    accounts: u128,
    out_of_orderness: u64,
    /// 0 when no fraud is injected.
    pairs: u64,
    /// Pending large partners: `(ts, pair)`, least first.
    partners: BinaryHeap<Reverse<(u64, u64)>>,
    peeked: Option<Generated>,
    throttle: Option<Throttle>,
    emitted: u64,
}

impl GeneratorReader {
    fn new(config: &GeneratorConfig, partition: u32) -> Self {
        GeneratorReader {
            partition,
            rng: partition_rng(config, partition),
            slots: Slots::new(config, partition),
            small_below: share_threshold(config.small_share),
            large_below: share_threshold(config.small_share + config.large_share),
            accounts: u128::from(config.accounts.max(1)),
            out_of_orderness: config.out_of_orderness_ms,
            pairs: 0,
            partners: BinaryHeap::new(),
            peeked: None,
            throttle: config.partition_rate().map(Throttle::new),
            emitted: 0,
        }
    }

    /// The slot of the next record to emit.
    fn next_seq(&self) -> u64 {
        self.peeked.map_or(self.slots.seq, |record| record.seq)
    }

    /// True once every record of the partition has been emitted.
    fn exhausted(&self) -> bool {
        self.peeked.is_none() && self.slots.exhausted()
    }

    #[inline]
    fn jittered(&mut self, nominal: u64) -> u64 {
        jittered(&mut self.rng, self.out_of_orderness, nominal)
    }

    /// The next record, the peeked one first.
    #[inline]
    fn next_record(&mut self) -> Option<Generated> {
        if let Some(record) = self.peeked.take() {
            return Some(record);
        }
        self.generate()
    }

    /// Generates the record of slot `seq` and moves to the next slot.
    #[inline]
    fn generate(&mut self) -> Option<Generated> {
        let (seq, nominal) = self.slots.next()?;

        let due = match self.partners.peek() {
            Some(&Reverse((ts, pair))) if ts <= nominal => Some((ts, pair)),
            _ => None,
        };
        let record = if let Some((ts, pair)) = due {
            self.partners.pop();
            Generated {
                seq,
                account: AccountBuf::fraud(self.partition, pair),
                ts,
                amount: cents(self.rng.next_u64(), LARGE_CENTS),
            }
        } else if self.slots.take_owed() {
            let pair = self.pairs;
            self.pairs += 1;
            let amount = cents(self.rng.next_u64(), SMALL_CENTS);
            let ts = self.jittered(nominal);
            let gap = FRAUD_GAPS_MS[((u64::from(self.partition) + pair) % 7) as usize];
            self.partners.push(Reverse((ts.saturating_add(gap), pair)));
            Generated {
                seq,
                account: AccountBuf::fraud(self.partition, pair),
                ts,
                amount,
            }
        } else {
            let kind = u128::from(self.rng.next_u64());
            let range = if kind < self.small_below {
                SMALL_CENTS
            } else if kind < self.large_below {
                LARGE_CENTS
            } else {
                NORMAL_CENTS
            };
            let account = AccountBuf::number(below(self.rng.next_u64(), self.accounts));
            let amount = cents(self.rng.next_u64(), range);
            let ts = self.jittered(nominal);
            Generated {
                seq,
                account,
                ts,
                amount,
            }
        };
        Some(record)
    }
}

impl PartitionReader for GeneratorReader {
    fn first_ts(&mut self) -> Result<Option<u64>, SourceError> {
        if self.peeked.is_none() {
            self.peeked = self.generate();
        }
        Ok(self.peeked.map(|record| record.ts))
    }

    /// Emits up to `max` records (fewer when throttled); returns `Done` with the
    /// partition's last records.
    fn read(&mut self, max: usize, emit: &mut Emitter<'_>) -> Result<ReadStatus, SourceError> {
        if self.exhausted() {
            return Ok(ReadStatus::Done);
        }
        let budget = budget(&mut self.throttle, self.emitted, max);
        if budget == 0 {
            return Ok(ReadStatus::Idle);
        }
        let mut emitted = 0;
        while emitted < budget {
            let Some(record) = self.next_record() else {
                break;
            };
            emit_record(
                emit,
                record.seq,
                record.account.as_str(),
                record.ts,
                record.amount,
            );
            emitted += 1;
        }
        self.emitted += emitted;
        Ok(if self.exhausted() {
            ReadStatus::Done
        } else {
            ReadStatus::More
        })
    }

    fn position(&self) -> Option<Position> {
        Some(Position {
            offset: self.next_seq(),
            lines: 0,
        })
    }
}

#[cfg(test)]
mod tests {
    use tidelake_operators::Transaction;

    use crate::dead_letter::Reason;
    use std::collections::HashMap;

    use tidelake_operators::fraud::{LARGE, SMALL, WINDOW};
    use tidelake_operators::{Event, FraudDetector, harness};

    use super::*;
    use crate::sources::{ReadBatch, RuleTime, Watermark};

    /// A small, quick configuration.
    fn config() -> GeneratorConfig {
        GeneratorConfig {
            count: Some(20_003),
            partitions: 4,
            accounts: 1_000,
            fraud_every: Some(500),
            ..GeneratorConfig::default()
        }
    }

    /// Reads `partition` to the end in calls of `max`, through a watermark with
    /// `bound`.
    fn drain(source: &GeneratorSource, partition: u32, max: usize, bound: u64) -> ReadBatch {
        let mut reader = source.open(partition).expect("opens");
        let mut watermark = Watermark::new(bound);
        let mut out = ReadBatch::default();
        loop {
            let mut emit = Emitter::new(
                SOURCE_NAME,
                partition,
                RuleTime::Event,
                &mut watermark,
                0,
                100,
                &mut out,
            );
            match reader.read(max, &mut emit).expect("reads") {
                ReadStatus::Done => return out,
                ReadStatus::More => {}
                ReadStatus::Idle | ReadStatus::Waiting => {
                    panic!("an unthrottled generator is never idle")
                }
            }
        }
    }

    fn records(batch: &ReadBatch) -> Vec<(u64, Transaction)> {
        batch
            .events
            .iter()
            .map(|e| (e.seq, e.record.clone()))
            .collect()
    }

    fn all_records(
        config: &GeneratorConfig,
        max: usize,
        bound: u64,
    ) -> Vec<Vec<(u64, Transaction)>> {
        let source = GeneratorSource::new(config.clone()).expect("valid");
        (0..config.partitions)
            .map(|p| {
                let batch = drain(&source, p, max, bound);
                assert!(
                    batch.dead_letters.is_empty(),
                    "nothing is late: {:?}",
                    batch.dead_letters.first()
                );
                records(&batch)
            })
            .collect()
    }

    #[test]
    fn validate_rejects_bad_options() {
        assert!(GeneratorConfig::default().validate().is_ok());
        let bad = [
            GeneratorConfig {
                partitions: 0,
                ..config()
            },
            GeneratorConfig {
                accounts: 0,
                ..config()
            },
            GeneratorConfig {
                density: 0,
                ..config()
            },
            GeneratorConfig {
                small_share: -0.1,
                ..config()
            },
            GeneratorConfig {
                large_share: f64::NAN,
                ..config()
            },
            GeneratorConfig {
                small_share: 0.6,
                large_share: 0.5,
                ..config()
            },
            GeneratorConfig {
                rate: Some(0.0),
                ..config()
            },
            GeneratorConfig {
                rate: Some(f64::INFINITY),
                ..config()
            },
            GeneratorConfig {
                fraud_every: Some(0),
                ..config()
            },
            GeneratorConfig {
                start_ms: MAX_TS,
                ..config()
            },
            GeneratorConfig {
                density: 1,
                count: Some(u64::MAX),
                ..config()
            },
        ];
        for config in bad {
            assert!(
                matches!(config.validate(), Err(SourceError::Config(_))),
                "{config:?}"
            );
        }
        let source = GeneratorSource::new(config()).expect("valid");
        assert!(source.open(4).is_err());
    }

    #[test]
    fn same_config_gives_identical_partitions() {
        let a = all_records(&config(), 1_000, 0);
        let b = all_records(&config(), 1_000, 0);
        assert_eq!(a, b);
        assert_ne!(a[0], a[1], "partitions differ");
        let other = all_records(
            &GeneratorConfig {
                seed: 7,
                ..config()
            },
            1_000,
            0,
        );
        assert_ne!(a, other, "the seed matters");
    }

    #[test]
    fn read_size_does_not_change_the_records() {
        let big = all_records(&config(), 100_000, 0);
        for max in [1, 7, 256] {
            assert_eq!(all_records(&config(), max, 0), big, "max {max}");
        }
        // So the multiset of all records over the partitions is the same too.
        let key = |t: &Transaction| (t.ts, t.account_id.clone(), t.amount.to_bits());
        let mut a: Vec<_> = big.iter().flatten().map(|(_, t)| key(t)).collect();
        let mut b: Vec<_> = all_records(&config(), 3, 0)
            .iter()
            .flatten()
            .map(|(_, t)| key(t))
            .collect();
        a.sort();
        b.sort();
        assert_eq!(a, b);
    }

    #[test]
    fn count_is_exact() {
        let config = config();
        let parts = all_records(&config, 1_000, 0);
        assert_eq!(parts.iter().map(Vec::len).sum::<usize>(), 20_003);
        for (p, part) in parts.iter().enumerate() {
            assert_eq!(Some(part.len() as u64), config.partition_len(p as u32));
            assert!(
                part.iter().map(|(seq, _)| *seq).eq(0..part.len() as u64),
                "seq numbers the slots"
            );
        }
        // Fewer records than partitions: some partitions are empty.
        let tiny = GeneratorConfig {
            count: Some(3),
            ..config
        };
        let source = GeneratorSource::new(tiny.clone()).expect("valid");
        let mut reader = source.open(3).expect("opens");
        assert_eq!(reader.first_ts().expect("peeks"), None);
        assert!(drain(&source, 3, 10, 0).events.is_empty());
        assert_eq!(
            all_records(&tiny, 10, 0)
                .iter()
                .map(Vec::len)
                .sum::<usize>(),
            3
        );
    }

    #[test]
    fn in_order_without_out_of_orderness() {
        let config = config();
        for (p, part) in all_records(&config, 1_000, 0).iter().enumerate() {
            assert!(
                part.windows(2).all(|w| w[0].1.ts <= w[1].1.ts),
                "partition {p}"
            );
            // Normal records sit at their nominal time.
            for (seq, tx) in part.iter().filter(|(_, t)| !t.account_id.starts_with('f')) {
                let index = *seq * u64::from(config.partitions) + p as u64;
                assert_eq!(tx.ts, config.nominal_ts(index));
            }
        }
    }

    #[test]
    fn out_of_orderness_stays_within_the_bound() {
        let d = 5_000;
        let config = GeneratorConfig {
            out_of_orderness_ms: d,
            density: 1_000,
            ..config()
        };
        // `all_records` asserts that a watermark with bound `d` finds nothing late.
        let parts = all_records(&config, 1_000, d);
        let mut out_of_order = 0;
        for (p, part) in parts.iter().enumerate() {
            out_of_order += part.windows(2).filter(|w| w[1].1.ts < w[0].1.ts).count();
            for (seq, tx) in part.iter().filter(|(_, t)| !t.account_id.starts_with('f')) {
                let nominal = config.nominal_ts(*seq * u64::from(config.partitions) + p as u64);
                assert!(tx.ts <= nominal && tx.ts + d >= nominal);
            }
        }
        assert!(
            out_of_order > 1_000,
            "jitter reorders records ({out_of_order})"
        );
        // With bound 0 the same records are late.
        let source = GeneratorSource::new(config).expect("valid");
        assert!(!drain(&source, 0, 1_000, 0).dead_letters.is_empty());
    }

    #[test]
    fn amount_shares_follow_the_config() {
        let config = GeneratorConfig {
            count: Some(100_000),
            fraud_every: None,
            small_share: 0.05,
            large_share: 0.02,
            ..config()
        };
        let txs: Vec<Transaction> = all_records(&config, 4_096, 0)
            .into_iter()
            .flatten()
            .map(|(_, t)| t)
            .collect();
        let share = |f: &dyn Fn(f64) -> bool| {
            txs.iter().filter(|t| f(t.amount)).count() as f64 / txs.len() as f64
        };
        let small = share(&|a| a < SMALL);
        let large = share(&|a| a > LARGE);
        assert!((small - 0.05).abs() < 0.004, "small share {small}");
        assert!((large - 0.02).abs() < 0.003, "large share {large}");
        for t in &txs {
            assert!(t.amount >= 0.01 && t.amount <= 5_000.0, "{t:?}");
            assert_eq!((t.amount * 100.0).round() / 100.0, t.amount, "cents: {t:?}");
            let account: u64 = t.account_id.parse().expect("a normal account");
            assert!(account < 1_000);
        }
        let none = GeneratorConfig {
            small_share: 0.0,
            large_share: 0.0,
            ..config.clone()
        };
        let txs = all_records(&none, 4_096, 0);
        assert!(
            txs.iter()
                .flatten()
                .all(|(_, t)| (SMALL..=LARGE).contains(&t.amount))
        );
    }

    #[test]
    fn amount_ranges_include_their_boundaries() {
        assert_eq!(cents(0, NORMAL_CENTS), 1.00);
        assert_eq!(cents(u64::MAX, NORMAL_CENTS), 500.00);
        assert_eq!(cents(0, SMALL_CENTS), 0.01);
        assert_eq!(cents(u64::MAX, SMALL_CENTS), 0.99);
        assert_eq!(cents(0, LARGE_CENTS), 500.01);
        assert_eq!(cents(u64::MAX, LARGE_CENTS), 5_000.00);
        assert_eq!(
            AccountBuf::fraud(u32::MAX, u64::MAX).as_str(),
            "f4294967295-18446744073709551615"
        );
        assert_eq!(AccountBuf::number(0).as_str(), "0");
    }

    /// The injected pairs of `parts`: account → (small, large partner if any).
    fn pairs(
        parts: &[Vec<(u64, Transaction)>],
    ) -> HashMap<String, (Transaction, Option<Transaction>)> {
        let mut pairs = HashMap::new();
        for tx in parts.iter().flatten().map(|(_, t)| t) {
            if !tx.account_id.starts_with('f') {
                continue;
            }
            match pairs.get_mut(tx.account_id.as_str()) {
                None => {
                    assert!(tx.amount < SMALL, "a pair starts small: {tx:?}");
                    pairs.insert(tx.account_id.to_string(), (tx.clone(), None));
                }
                Some((_, partner @ None)) => {
                    assert!(tx.amount > LARGE, "the partner is large: {tx:?}");
                    *partner = Some(tx.clone());
                }
                Some(_) => panic!("a fraud account holds one pair: {tx:?}"),
            }
        }
        pairs
    }

    #[test]
    fn fraud_pairs_have_the_boundary_gaps() {
        // 4 partitions × 50 000 records at 250/s each: 200 s of event time, a pair
        // every 4 s.
        let config = GeneratorConfig {
            count: Some(200_000),
            density: 1_000,
            fraud_every: Some(1_000),
            ..config()
        };
        let parts = all_records(&config, 1_000, 0);
        let pairs = pairs(&parts);
        assert_eq!(pairs.len(), 4 * 50);
        // The gaps found, and those expected: every pair whose partner's time is
        // reached by the partition's last slot has its partner.
        let mut found: HashMap<u64, usize> = HashMap::new();
        let mut expected: HashMap<u64, usize> = HashMap::new();
        for (account, (small, large)) in &pairs {
            let (p, n) = account[1..].split_once('-').expect("f<p>-<n>");
            let (p, n): (u64, u64) = (p.parse().expect("p"), n.parse().expect("n"));
            let gap = FRAUD_GAPS_MS[((p + n) % 7) as usize];
            let last_nominal =
                config.nominal_ts((config.partition_len(p as u32).expect("bounded") - 1) * 4 + p);
            if small.ts + gap <= last_nominal {
                *expected.entry(gap).or_default() += 1;
            }
            if let Some(large) = large {
                assert_eq!(large.ts - small.ts, gap, "{account}");
                *found.entry(gap).or_default() += 1;
            }
        }
        assert_eq!(found, expected);
        // Every gap occurs, about equally often but for the longest ones near the end.
        assert_eq!(found.len(), FRAUD_GAPS_MS.len(), "{found:?}");
        assert!(found.values().all(|&n| n >= 10), "{found:?}");
        assert!(found.values().sum::<usize>() >= 150, "{found:?}");
    }

    #[test]
    fn dense_fraud_keeps_count_and_order() {
        // Pairs so dense that partners compete for slots and delay owed smalls.
        for (fraud_every, d) in [(1, 0), (2, 0), (3, 0), (1, 50), (3, 50)] {
            let config = GeneratorConfig {
                count: Some(8_000),
                density: 50,
                fraud_every: Some(fraud_every),
                out_of_orderness_ms: d,
                ..config()
            };
            // `all_records` asserts that nothing is late with bound `d`.
            let parts = all_records(&config, 100, d);
            assert_eq!(parts.iter().map(Vec::len).sum::<usize>(), 8_000);
            if d == 0 {
                assert!(
                    parts
                        .iter()
                        .all(|part| part.windows(2).all(|w| w[0].1.ts <= w[1].1.ts))
                );
            }
            for (small, large) in pairs(&parts).values() {
                if let Some(large) = large {
                    assert!(FRAUD_GAPS_MS.contains(&(large.ts - small.ts)));
                }
            }
        }
    }

    #[test]
    fn injected_pairs_alert_exactly_within_the_window() {
        let config = GeneratorConfig {
            count: Some(40_000),
            density: 200,
            fraud_every: Some(200),
            ..config()
        };
        let parts = all_records(&config, 1_000, 0);
        let expected: Vec<String> = pairs(&parts)
            .into_iter()
            .filter(|(_, (s, l))| l.as_ref().is_some_and(|l| l.ts - s.ts <= WINDOW))
            .map(|(account, _)| account)
            .collect();
        let mut events: Vec<_> = parts
            .iter()
            .enumerate()
            .flat_map(|(p, part)| {
                part.iter()
                    .map(move |(seq, t)| Event::new(t.ts, p as u32, *seq, t.clone()))
            })
            .collect();
        events.sort_by_key(Event::order);
        let run = harness::run(FraudDetector::new(), events, 100);
        let mut alerted: Vec<String> = run
            .side
            .iter()
            .filter(|a| a.account_id.starts_with('f'))
            .map(|a| a.account_id.to_string())
            .collect();
        let mut expected = expected;
        alerted.sort();
        expected.sort();
        assert!(expected.len() >= 50, "{}", expected.len());
        assert_eq!(alerted, expected);
    }

    #[test]
    fn first_ts_peeks_at_the_next_record() {
        let source = GeneratorSource::new(GeneratorConfig {
            out_of_orderness_ms: 100,
            ..config()
        })
        .expect("valid");
        let mut reader = source.open(2).expect("opens");
        let mut watermark = Watermark::new(100);
        let mut out = ReadBatch::default();
        for _ in 0..5 {
            let first = reader.first_ts().expect("peeks");
            assert_eq!(
                reader.first_ts().expect("peeks"),
                first,
                "peeking does not consume"
            );
            let mut emit = Emitter::new(
                SOURCE_NAME,
                2,
                RuleTime::Event,
                &mut watermark,
                0,
                100,
                &mut out,
            );
            assert_eq!(reader.read(1, &mut emit).expect("reads"), ReadStatus::More);
            assert_eq!(Some(out.events.last().expect("a record").record.ts), first);
        }
        let peeked: Vec<_> = records(&out);
        let plain = all_records(
            &GeneratorConfig {
                out_of_orderness_ms: 100,
                ..config()
            },
            5,
            100,
        );
        assert_eq!(peeked, plain[2][..5]);
    }

    #[test]
    fn throttled_reader_idles_when_ahead() {
        let config = GeneratorConfig {
            rate: Some(1e-9),
            ..config()
        };
        let source = GeneratorSource::new(config).expect("valid");
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
        assert_eq!(
            reader.read(100, &mut emit).expect("reads"),
            ReadStatus::More
        );
        assert_eq!(
            reader.read(100, &mut emit).expect("reads"),
            ReadStatus::Idle
        );
        assert_eq!(out.events.len(), 1, "only the first record is due");
    }

    #[test]
    fn unbounded_never_ends() {
        let source = GeneratorSource::new(GeneratorConfig {
            count: None,
            ..config()
        })
        .expect("valid");
        assert!(!source.bounded());
        assert_eq!(source.source_name(1), "generator");
        let mut reader = source.open(1).expect("opens");
        let mut watermark = Watermark::new(0);
        let mut out = ReadBatch::default();
        for _ in 0..20 {
            let mut emit = Emitter::new(
                SOURCE_NAME,
                1,
                RuleTime::Event,
                &mut watermark,
                0,
                100,
                &mut out,
            );
            assert_eq!(
                reader.read(10_000, &mut emit).expect("reads"),
                ReadStatus::More
            );
        }
        assert_eq!(out.events.len(), 200_000);
    }

    #[test]
    fn late_records_go_to_the_dead_letters_as_csv() {
        let source = GeneratorSource::new(config()).expect("valid");
        let mut reader = source.open(0).expect("opens");
        let mut watermark = Watermark::new(0);
        let mut out = ReadBatch::default();
        // A capability floor past every record: the partition resumed after idling.
        let mut emit = Emitter::new(
            SOURCE_NAME,
            0,
            RuleTime::Event,
            &mut watermark,
            u64::MAX,
            100,
            &mut out,
        );
        reader.read(3, &mut emit).expect("reads");
        assert!(out.events.is_empty());
        assert_eq!(out.dead_letters.len(), 3);
        let expected = records(&drain(&source, 0, 3, 0));
        for (letter, (seq, tx)) in out.dead_letters.iter().zip(expected) {
            assert_eq!(letter.reason, Reason::Late);
            assert_eq!(letter.position, Some(seq));
            assert_eq!(letter.source, "generator");
            let raw = format!("{},{},{}", tx.account_id, tx.ts, tx.amount);
            assert_eq!(letter.raw.as_deref(), Some(raw.as_str()));
        }
    }
}
