//! The generator with account profiles (`--source generator --profiles`,
//! docs/semantics.md §4): richer transactions whose amounts and countries follow each
//! account's [profile](crate::profiles), with fraud injected in several patterns and
//! every record labelled — ground truth for the features and the model.
//!
//! # Generation scheme
//!
//! The slots, their nominal times and partitions are the generator's
//! ([`generator`](super::generator)); each partition has its own PCG generator, so the
//! data is the same for any worker count. Accounts are `"0"` to `accounts − 1` only,
//! so every transaction joins with the `accounts` table `tidelake generate accounts`
//! writes for the same seed, start, span and update share. At slot `seq` with nominal
//! time `t`, the first of these that applies decides the record:
//!
//! 1. **A pending record** of a fraud pattern whose time is `≤ t` (least `(ts, order)`
//!    first).
//! 2. **A fraud pattern**, when the slots owe one (every `fraud_every`-th slot owes one,
//!    as the generator's pairs): a uniform account, and patterns in turn:
//!    - *small then large*: an amount of 0.01–0.99, then one of 500.01–5000.00 1 to 60 s
//!      later (the fraud rule's pair), both labelled 1;
//!    - *burst*: [`BURST`] transactions within two minutes, each of the typical spend
//!      × 0.5–2, all labelled 1;
//!    - *far above typical*: one transaction of the typical spend × 20–50, labelled 1;
//!    - *foreign after home*: a normal transaction in the home country, labelled 0, then
//!      one 5 to 30 minutes later in another country, of the typical spend × 0.5–3,
//!      labelled 1.
//! 3. **A normal record**: a uniform account, an amount of its typical spend × 0.25–4
//!    (log-uniform, so never below 1.00), a merchant `m0000`–`m0999`, the home country
//!    (or, with probability [`TRAVEL_SHARE`], another one), labelled 0.
//!
//! Countries are the account's home country at the record's `ts` (a profile's home may
//! move during the span); a foreign one is another of [`COUNTRIES`]. With
//! `out_of_orderness_ms = d > 0`, normal records and the first record of a pattern are
//! up to `d` earlier than their nominal time; a pattern's later records are at their
//! offset from its first. Records a pattern would have after the partition's last slot
//! are never emitted.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use compact_str::format_compact;
use rand_core::Rng;
use rand_pcg::Pcg64Mcg;
use tidelake_operators::{Country, RichTransaction, Transaction};

use super::generator::{
    GeneratorConfig, LARGE_CENTS, SMALL_CENTS, SOURCE_NAME, Slots, below, draw_cents, jittered,
    partition_rng,
};
use super::synthetic::{Throttle, budget};
use super::{Emitter, PartitionReader, Position, ReadStatus, Source, SourceError, SourceRecord};
use crate::dead_letter::Reason;
use crate::profiles::{COUNTRIES, Profile, ProfileConfig, unit};

/// Transactions of a burst.
pub const BURST: u64 = 8;
/// The share of normal transactions made abroad (labelled 0).
pub const TRAVEL_SHARE: f64 = 0.02;
/// Merchants `m0000` to `m0999`.
const MERCHANTS: u128 = 1_000;

/// The generator with profiles: see the [module docs](self).
#[derive(Clone, Debug)]
pub struct ProfiledSource {
    config: GeneratorConfig,
}

impl ProfiledSource {
    /// The generator of `config` (its `profiles` set or not), checked.
    pub fn new(config: GeneratorConfig) -> Result<Self, SourceError> {
        config.validate()?;
        Ok(ProfiledSource { config })
    }

    /// The reader of `partition`, as its concrete type.
    pub fn reader(&self, partition: u32) -> Result<ProfiledReader, SourceError> {
        if partition >= self.config.partitions {
            return Err(SourceError::Config(format!(
                "generator: partition {partition} does not exist (there are {})",
                self.config.partitions
            )));
        }
        Ok(ProfiledReader::new(&self.config, partition))
    }
}

/// A record type the generator with profiles makes.
pub trait FromProfiled: SourceRecord {
    /// The record of a generated richer transaction.
    fn from_profiled(tx: RichTransaction) -> Self;
}

impl FromProfiled for RichTransaction {
    fn from_profiled(tx: RichTransaction) -> Self {
        tx
    }
}

/// The fraud job on profiled data reads the transactions without their extra fields.
impl FromProfiled for Transaction {
    fn from_profiled(tx: RichTransaction) -> Self {
        Transaction {
            account_id: tx.account_id,
            ts: tx.ts,
            amount: tx.amount,
        }
    }
}

impl<R: FromProfiled> Source<R> for ProfiledSource {
    fn partitions(&self) -> u32 {
        self.config.partitions
    }

    fn bounded(&self) -> bool {
        self.config.count.is_some()
    }

    fn source_name(&self, _partition: u32) -> String {
        SOURCE_NAME.to_owned()
    }

    fn open(&self, partition: u32) -> Result<Box<dyn PartitionReader<R>>, SourceError> {
        Ok(Box::new(self.reader(partition)?))
    }

    /// Generates the partition's records up to `position` again and drops them.
    fn open_at(
        &self,
        partition: u32,
        position: Position,
    ) -> Result<Box<dyn PartitionReader<R>>, SourceError> {
        let mut reader = self.reader(partition)?;
        while reader.next_seq() < position.offset && reader.next_record().is_some() {}
        Ok(Box::new(reader))
    }
}

/// A record decided but not made yet: a pattern's later record, or the one being made.
/// Ordered by `(ts, order)`: `order` is unique within a partition.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Pending {
    ts: u64,
    order: u64,
    account: u64,
    cents: u64,
    merchant: u16,
    /// Abroad: a draw choosing the country among those other than the home one.
    foreign: Option<u8>,
    fraud: bool,
}

/// Reads one partition of the generator with profiles.
#[derive(Debug)]
pub struct ProfiledReader {
    rng: Pcg64Mcg,
    slots: Slots,
    profiles: ProfileConfig,
    accounts: u128,
    out_of_orderness: u64,
    /// Patterns started so far.
    patterns: u64,
    /// Pending records scheduled so far.
    scheduled: u64,
    pending: BinaryHeap<Reverse<Pending>>,
    peeked: Option<(u64, RichTransaction)>,
    throttle: Option<Throttle>,
    emitted: u64,
}

impl ProfiledReader {
    fn new(config: &GeneratorConfig, partition: u32) -> Self {
        ProfiledReader {
            rng: partition_rng(config, partition),
            slots: Slots::new(config, partition),
            profiles: config.profile_config(),
            accounts: u128::from(config.accounts.max(1)),
            out_of_orderness: config.out_of_orderness_ms,
            patterns: 0,
            scheduled: 0,
            pending: BinaryHeap::new(),
            peeked: None,
            throttle: config.partition_rate().map(Throttle::new),
            emitted: 0,
        }
    }

    fn next_seq(&self) -> u64 {
        self.peeked.as_ref().map_or(self.slots.seq, |(seq, _)| *seq)
    }

    fn exhausted(&self) -> bool {
        self.peeked.is_none() && self.slots.exhausted()
    }

    fn next_record(&mut self) -> Option<(u64, RichTransaction)> {
        match self.peeked.take() {
            Some(record) => Some(record),
            None => self.generate(),
        }
    }

    /// The record of the next slot (see the [module docs](self)).
    fn generate(&mut self) -> Option<(u64, RichTransaction)> {
        let (seq, nominal) = self.slots.next()?;
        let (record, profile) = match self.pending.peek() {
            Some(&Reverse(due)) if due.ts <= nominal => {
                self.pending.pop();
                (due, Profile::of(&self.profiles, due.account))
            }
            _ if self.slots.take_owed() => self.start_pattern(nominal),
            _ => {
                let account = self.account();
                let profile = Profile::of(&self.profiles, account);
                let cents = self.spend(typical_cents(&profile), 0.25, 4.0);
                let foreign = self.travels();
                let ts = self.jittered(nominal);
                (self.record(ts, account, cents, foreign, false), profile)
            }
        };
        Some((seq, self.transaction(record, &profile)))
    }

    /// Starts the next fraud pattern at `nominal`: its first record (and its account's
    /// profile), the others pending.
    fn start_pattern(&mut self, nominal: u64) -> (Pending, Profile) {
        let account = self.account();
        let profile = Profile::of(&self.profiles, account);
        let typical = typical_cents(&profile);
        let ts = self.jittered(nominal);
        let pattern = self.patterns % 4;
        self.patterns += 1;
        let first = match pattern {
            0 => {
                let small = draw_cents(self.rng.next_u64(), SMALL_CENTS);
                let gap = 1_000 + below(self.rng.next_u64(), 59_001);
                let large = draw_cents(self.rng.next_u64(), LARGE_CENTS);
                let partner = self.record(ts + gap, account, large, None, true);
                self.schedule(partner);
                self.record(ts, account, small, None, true)
            }
            1 => {
                for _ in 1..BURST {
                    let offset = 1 + below(self.rng.next_u64(), 120_000);
                    let cents = self.spend(typical, 0.5, 2.0);
                    let next = self.record(ts + offset, account, cents, None, true);
                    self.schedule(next);
                }
                let cents = self.spend(typical, 0.5, 2.0);
                self.record(ts, account, cents, None, true)
            }
            2 => {
                let factor = 20.0 + 30.0 * unit(&mut self.rng);
                let cents = (typical as f64 * factor).round() as u64;
                self.record(ts, account, cents, None, true)
            }
            _ => {
                let home = self.spend(typical, 0.25, 4.0);
                let delay = 300_000 + below(self.rng.next_u64(), 1_500_001);
                let cents = self.spend(typical, 0.5, 3.0);
                let abroad = Some(self.rng.next_u64() as u8);
                let next = self.record(ts + delay, account, cents, abroad, true);
                self.schedule(next);
                self.record(ts, account, home, None, false)
            }
        };
        (first, profile)
    }

    /// A record of `account` at `ts`, with a merchant drawn for it.
    fn record(
        &mut self,
        ts: u64,
        account: u64,
        cents: u64,
        foreign: Option<u8>,
        fraud: bool,
    ) -> Pending {
        Pending {
            ts,
            order: 0,
            account,
            cents,
            merchant: below(self.rng.next_u64(), MERCHANTS) as u16,
            foreign,
            fraud,
        }
    }

    fn schedule(&mut self, mut record: Pending) {
        record.order = self.scheduled;
        self.scheduled += 1;
        self.pending.push(Reverse(record));
    }

    fn account(&mut self) -> u64 {
        below(self.rng.next_u64(), self.accounts)
    }

    /// `typical` × a factor log-uniform in `[low, high)`, in whole cents.
    fn spend(&mut self, typical: u64, low: f64, high: f64) -> u64 {
        let factor = low * (high / low).powf(unit(&mut self.rng));
        (typical as f64 * factor).round() as u64
    }

    /// Abroad with probability [`TRAVEL_SHARE`]: a draw choosing the country.
    fn travels(&mut self) -> Option<u8> {
        let abroad = unit(&mut self.rng) < TRAVEL_SHARE;
        let draw = self.rng.next_u64() as u8;
        abroad.then_some(draw)
    }

    fn jittered(&mut self, nominal: u64) -> u64 {
        jittered(&mut self.rng, self.out_of_orderness, nominal)
    }

    /// The transaction of a decided record: its country from the profile at its time.
    fn transaction(&self, record: Pending, profile: &Profile) -> RichTransaction {
        let home = profile.home_country_at(&self.profiles, record.account, record.ts);
        let country = match record.foreign {
            None => home,
            Some(draw) => {
                let home_index = COUNTRIES.iter().position(|c| *c == home).unwrap_or(0);
                let others = COUNTRIES.len() - 1;
                COUNTRIES[(home_index + 1 + usize::from(draw) % others) % COUNTRIES.len()]
            }
        };
        RichTransaction {
            account_id: format_compact!("{}", record.account),
            ts: record.ts,
            amount: record.cents as f64 / 100.0,
            merchant: Some(format_compact!("m{:04}", record.merchant)),
            country: Country::parse(country).ok(),
            label: Some(record.fraud),
        }
    }
}

/// The account's typical spend in whole cents.
fn typical_cents(profile: &Profile) -> u64 {
    (profile.typical_spend * 100.0).round() as u64
}

impl<R: FromProfiled> PartitionReader<R> for ProfiledReader {
    fn first_ts(&mut self) -> Result<Option<u64>, SourceError> {
        if self.peeked.is_none() {
            self.peeked = self.generate();
        }
        Ok(self.peeked.as_ref().map(|(_, record)| record.ts))
    }

    /// Emits up to `max` records (fewer when throttled).
    fn read(&mut self, max: usize, emit: &mut Emitter<'_, R>) -> Result<ReadStatus, SourceError> {
        if self.exhausted() {
            return Ok(ReadStatus::Done);
        }
        let budget = budget(&mut self.throttle, self.emitted, max);
        if budget == 0 {
            return Ok(ReadStatus::Idle);
        }
        let mut emitted = 0;
        while emitted < budget {
            let Some((seq, record)) = self.next_record() else {
                break;
            };
            let (account, ts, amount) = (record.account_id.clone(), record.ts, record.amount);
            if let Err(late) = emit.record(seq, R::from_profiled(record)) {
                let raw = format!("{account},{ts},{amount}");
                emit.reject(seq, None, raw.as_bytes(), Reason::Late, late.detail);
            }
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
    use std::collections::HashMap;

    use super::*;
    use crate::sources::files::testing::read_all;

    fn config(out_of_orderness_ms: u64) -> GeneratorConfig {
        GeneratorConfig {
            count: Some(60_001),
            partitions: 3,
            accounts: 2_000,
            density: 10,
            fraud_every: Some(50),
            out_of_orderness_ms,
            profiles: true,
            profile_span_ms: 300_000_000,
            update_share: 0.3,
            ..GeneratorConfig::default()
        }
    }

    /// Every record of every partition, by partition, with its `seq`.
    fn generate(config: &GeneratorConfig, max: usize) -> Vec<Vec<(u64, RichTransaction)>> {
        let source = ProfiledSource::new(config.clone()).expect("valid");
        read_all::<RichTransaction>(&source, max, config.out_of_orderness_ms)
            .into_iter()
            .map(|batch| {
                assert!(batch.dead_letters.is_empty(), "{:?}", batch.dead_letters);
                batch
                    .events
                    .into_iter()
                    .map(|e| (e.seq, e.record))
                    .collect()
            })
            .collect()
    }

    #[test]
    fn the_data_is_exact_in_count_deterministic_and_resumable() {
        let config = config(0);
        let whole = generate(&config, 10_000);
        assert_eq!(whole.iter().map(Vec::len).sum::<usize>(), 60_001);
        assert_eq!(generate(&config, 7), whole);
        let source = ProfiledSource::new(config.clone()).expect("valid");
        let mut reader: Box<dyn PartitionReader<RichTransaction>> = source
            .open_at(
                1,
                Position {
                    offset: 777,
                    lines: 0,
                },
            )
            .expect("opens");
        let mut watermark = crate::sources::Watermark::new(0);
        let mut out = crate::sources::ReadBatch::default();
        let mut emit = Emitter::new(
            SOURCE_NAME,
            1,
            crate::sources::RuleTime::Event,
            &mut watermark,
            0,
            1,
            &mut out,
        );
        reader.read(5, &mut emit).expect("reads");
        let resumed: Vec<(u64, RichTransaction)> =
            out.events.into_iter().map(|e| (e.seq, e.record)).collect();
        assert_eq!(resumed, whole[1][777..782]);
    }

    #[test]
    fn records_follow_the_profiles_and_fraud_comes_in_labelled_patterns() {
        for disorder in [0, 5_000] {
            let config = config(disorder);
            let profiles = config.profile_config();
            let mut by_account: HashMap<u64, Vec<RichTransaction>> = HashMap::new();
            for (_, tx) in generate(&config, 1_000).into_iter().flatten() {
                let account: u64 = tx.account_id.parse().expect("numeric accounts only");
                assert!(account < config.accounts);
                by_account.entry(account).or_default().push(tx);
            }
            let end = config.nominal_ts(60_000);
            let (mut fraud, mut abroad, mut total) = (0, 0, 0);
            let (mut small_large, mut bursts, mut far_above, mut foreign) = (0, 0, 0, 0);
            for (account, txs) in &mut by_account {
                txs.sort_by_key(|tx| tx.ts);
                let profile = Profile::of(&profiles, *account);
                for (i, tx) in txs.iter().enumerate() {
                    total += 1;
                    let home = profile.home_country_at(&profiles, *account, tx.ts);
                    let country = tx.country.expect("a country").to_string();
                    abroad += usize::from(country != home);
                    let label = tx.label.expect("a label");
                    fraud += usize::from(label);
                    assert!(tx.merchant.as_deref().is_some_and(|m| m.len() == 5));
                    if !label {
                        let ratio = tx.amount / profile.typical_spend;
                        assert!((0.24..=4.01).contains(&ratio), "{tx:?} {profile:?}");
                        assert!(tx.amount >= 1.0, "normal amounts are never small: {tx:?}");
                    }
                    if label && tx.amount >= 20.0 * profile.typical_spend - 0.01 {
                        far_above += 1;
                    }
                    if label && country != home {
                        foreign += 1;
                    }
                    // A burst: 8 labelled transactions within 2 minutes, counted at
                    // its first.
                    let within = txs[i..]
                        .iter()
                        .take_while(|next| next.ts <= tx.ts + 120_000)
                        .filter(|next| next.label == Some(true) && next.amount >= 1.0)
                        .count();
                    let first = i == 0 || txs[i - 1].label != Some(true);
                    if label && first && within >= BURST as usize {
                        bursts += 1;
                    }
                    if label && tx.amount < 1.0 && tx.ts + 120_000 < end {
                        // The small of a pair: its large follows within a minute
                        // (unless the data ends first).
                        let large = txs[i + 1..]
                            .iter()
                            .find(|next| next.amount > 500.0 && next.label == Some(true));
                        let large = large.expect("a large partner");
                        assert!(large.ts - tx.ts <= 60_000, "{tx:?} {large:?}");
                        small_large += 1;
                    }
                }
            }
            // About one pattern per 50 slots: a quarter each, 8 records in a burst.
            let patterns = 60_001 / 50;
            // (pairs in the last two minutes of the 6,000 s are not counted)
            assert!(small_large > patterns / 4 * 9 / 10 - 20, "{small_large}");
            // (a foreign transaction 5 to 30 minutes after the last 30 minutes' home
            // ones may fall after the end)
            for (pattern, seen, share) in [
                ("burst", bursts, 0.9),
                ("far above typical", far_above, 0.9),
                ("foreign after home", foreign, 0.75),
            ] {
                assert!(
                    seen as f64 > (patterns / 4) as f64 * share,
                    "{pattern}: {seen}"
                );
            }
            let expected = patterns / 4 * (2 + BURST as usize + 1 + 1);
            assert!(
                fraud.abs_diff(expected) < expected / 10,
                "{fraud} vs {expected}"
            );
            let travel = (total as f64 * TRAVEL_SHARE) as usize + patterns / 4;
            assert!(abroad.abs_diff(travel) < travel / 4, "{abroad} vs {travel}");
        }
    }
}
