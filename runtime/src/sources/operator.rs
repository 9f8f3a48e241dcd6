//! The source operator: reads one worker's partitions, applies watermarks and lateness,
//! and emits each record at the tick of its rule time.
//!
//! Partition `p` is read by worker `p mod peers`, so the data and each partition's order
//! do not depend on the worker count. The worker holds its capability at the tick of the
//! least watermark over its partitions (docs/semantics.md §2): a partition not read yet holds it at
//! its first record's time minus the out-of-orderness bound; a finished partition holds
//! nothing; an unbounded partition that has been idle for the idle timeout stops
//! holding it. The partition holding the watermark lowest is always read first, so
//! time-ordered file ranges are read in order and interleaved generator partitions in
//! turn.
//!
//! Flow control: timely has none, so a worker that has more than `max_in_flight` records,
//! or more than [`MAX_TICKS_IN_FLIGHT`] ticks of records, beyond the probe's frontier,
//! while another worker holds that frontier back, waits. (Every tick in flight is a
//! message to each worker, each with a buffer of its own: sparse event time makes many
//! small ones.)

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use timely::container::CapacityContainerBuilder;
use timely::dataflow::operators::Capability;
use timely::dataflow::operators::generic::OutputBuilder;
use timely::dataflow::operators::generic::builder_rc::OperatorBuilder;
use timely::dataflow::{ProbeHandle, Scope, StreamVec};

use tidelake_operators::Event;
use tidelake_operators::time::tick_of;

use crate::checkpoint::PartitionState;
use crate::checkpoint::collector::Piece;
use crate::checkpoint::process::{Depositor, Restored};
use crate::clock::Clock;
use crate::control::JobControl;
use crate::dead_letter::DeadLetter;
use crate::metrics::{Metrics, add};
use crate::sources::progress::Progress;
use crate::sources::{
    Emitter, PartitionReader, Position, ReadBatch, ReadStatus, Replay, RuleTime, Source,
    SourceRecord, Watermark,
};

/// Ticks of records a worker may have beyond the probe's frontier while another worker
/// holds it back (see the module docs).
pub const MAX_TICKS_IN_FLIGHT: usize = 1_024;

/// Which time the rule runs on (docs/semantics.md §2).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum TimeMode {
    /// The record's event time `ts`.
    #[default]
    Event,
    /// The wall-clock time at which the source read the record.
    Ingestion,
}

/// How the source operator reads.
#[derive(Clone)]
pub struct SourceSettings {
    /// Event or ingestion time.
    pub time: TimeMode,
    /// The tick (ms) timely time is quantised to.
    pub tick: u64,
    /// The out-of-orderness bound of each partition's watermark (ms).
    pub out_of_orderness: u64,
    /// How far behind its partition's watermark a record may be and still be passed on
    /// (at the watermark's time), for pipelines that update results late (ms; 0: late
    /// records are dead letters).
    pub allowed_lateness: u64,
    /// How long an unbounded partition may have no input before it stops holding the
    /// watermark.
    pub idle_timeout: Duration,
    /// Records per read call.
    pub batch_size: usize,
    /// Records a worker may have beyond the probe's frontier while another worker holds
    /// the frontier back.
    pub max_in_flight: u64,
    /// The clock of ingestion time and idleness.
    pub clock: Arc<dyn Clock>,
}

/// Records read per activation before yielding to the rest of the dataflow.
const READ_BUDGET: usize = 65_536;

/// One partition being read.
struct Partition<R> {
    index: u32,
    name: String,
    /// The partition number its dead letters carry ([`Source::dead_letter_partition`]).
    number: u32,
    /// Its last read said [`ReadStatus::Waiting`].
    waiting: bool,
    reader: Box<dyn PartitionReader<R>>,
    watermark: Watermark,
    /// What the partition holds the watermark at before its first record.
    initial_hold: u64,
    idle_since: Option<Instant>,
    done: bool,
    /// What its checkpoints need of its reading.
    progress: Progress,
    /// What a restored partition reads again that is in the restored state already.
    replay: Option<Replay>,
    /// How far a restored partition had been read before its checkpoint: a later
    /// checkpoint must not say less, or a restore from it would write the dead letters
    /// before it again.
    read_before: Option<Position>,
}

impl<R> Partition<R> {
    /// The event time this partition holds the worker's watermark at, if any.
    fn hold(&self, unbounded: bool, idle_timeout: Duration) -> Option<u64> {
        let own = self.watermark.current().unwrap_or(self.initial_hold);
        if !self.done
            && self.idle_since.is_some()
            && let Some(hold) = self.reader.idle_hold()
        {
            return Some(own.max(hold.saturating_sub(self.watermark.bound())));
        }
        let idle = unbounded
            && self
                .idle_since
                .is_some_and(|since| since.elapsed() >= idle_timeout);
        if self.done || idle {
            return None;
        }
        Some(own)
    }
}

/// Reads `source` on this worker: returns the stream of accepted events and the stream
/// of dead letters. The source stops, releasing its capabilities, when its partitions
/// are exhausted or `control` asks it to stop. `metrics_slot` is this worker's local
/// index in `metrics`; `probe` observes the end of the dataflow, for flow control.
///
/// With `checkpoints` (the worker's source component), it starts from a restored
/// checkpoint's positions, deposits its partitions' positions for the boundaries its
/// watermark passes, and a stop takes a savepoint (`crate::checkpoint::stop`). After a
/// failure it holds its capabilities if `hold_on_failure` (a process of a cluster).
#[allow(clippy::too_many_arguments)]
pub(crate) fn read_source<'s, R: SourceRecord>(
    scope: Scope<'s, u64>,
    source: Arc<dyn Source<R>>,
    settings: SourceSettings,
    probe: ProbeHandle<u64>,
    metrics: Arc<Metrics>,
    metrics_slot: usize,
    control: Arc<JobControl>,
    checkpoints: Option<Depositor>,
    hold_on_failure: bool,
) -> (StreamVec<'s, u64, Event<R>>, StreamVec<'s, u64, DeadLetter>) {
    let mut builder = OperatorBuilder::new("Source".to_owned(), scope);
    let info = builder.operator_info();
    let activator = scope.activator_for(info.address.clone());
    let (events_out, events) = builder.new_output::<Vec<Event<R>>>();
    let (dead_out, dead_letters) = builder.new_output::<Vec<DeadLetter>>();
    let mut events_out =
        OutputBuilder::<_, CapacityContainerBuilder<Vec<Event<R>>>>::from(events_out);
    let mut dead_out =
        OutputBuilder::<_, CapacityContainerBuilder<Vec<DeadLetter>>>::from(dead_out);
    let (worker, peers) = (scope.index(), scope.peers());
    if let Some(checkpoints) = &checkpoints {
        let activator = scope.activator_for(info.address.clone());
        checkpoints.worker().stop.borrow_mut().set_source(activator);
    }

    builder.build(move |initial| {
        let mut caps: Option<Vec<Capability<u64>>> = Some(initial);
        let mut partitions: Option<Vec<Partition<R>>> = None;
        let mut in_flight: VecDeque<(u64, u64)> = VecDeque::new();
        let mut in_flight_total = 0u64;
        let mut last_now = 0u64;
        let mut batch = ReadBatch::default();
        let unbounded = !source.bounded();
        let tick = settings.tick;

        move |_frontiers| {
            let counters = metrics.worker(metrics_slot);
            counters.last_active_ms.store(
                settings.clock.now_ms(),
                std::sync::atomic::Ordering::Relaxed,
            );
            let Some(held) = caps.as_mut() else { return };
            let finish = |caps: &mut Option<Vec<Capability<u64>>>| {
                *caps = None;
                counters
                    .watermark
                    .store(u64::MAX, std::sync::atomic::Ordering::Relaxed);
                counters
                    .in_flight
                    .store(u64::MAX, std::sync::atomic::Ordering::Relaxed);
            };
            if control.error().is_some() {
                // A failed job runs nothing more. One process lets go, so its dataflow
                // ends; a process of a cluster holds on and exits (`Job::run`), since
                // letting go would move the others' frontier past what it never read.
                if !hold_on_failure {
                    finish(&mut caps);
                }
                return;
            }
            let stopping = match &checkpoints {
                // A stop takes a savepoint.
                Some(checkpoints) => {
                    control.should_stop() || checkpoints.worker().stop.borrow().requested()
                }
                None => {
                    if control.should_stop() {
                        finish(&mut caps);
                        return;
                    }
                    false
                }
            };
            let restored = checkpoints
                .as_ref()
                .and_then(|c| c.worker().shared.restored.as_ref());
            let parts = match partitions.as_mut() {
                Some(parts) => parts,
                None => {
                    match open_partitions(source.as_ref(), worker, peers, &settings, restored) {
                        Ok(parts) => {
                            let parts = partitions.insert(parts);
                            if let (Some(restored), Some(checkpoints)) = (restored, &checkpoints) {
                                // Everything before the checkpoint is in the restored
                                // state, and the positions are those of its boundary.
                                let b = restored.boundary();
                                for cap in held.iter_mut() {
                                    cap.downgrade(&b);
                                }
                                let sources = partition_states(parts, b - 1);
                                checkpoints.deposit(b - 1, b, Piece::Sources(sources));
                            }
                            parts
                        }
                        Err(message) => {
                            control.fail(message);
                            finish(&mut caps);
                            return;
                        }
                    }
                }
            };
            let floor = *held[0].time();
            // Stopping: hold at the agreed stop time F (or, until agreed, at this
            // source's own proposal), and let go of it once every worker knows F and
            // this worker's part of the savepoint at F is durable.
            let mut hold_at = u64::MAX;
            if let (true, Some(checkpoints)) = (stopping, &checkpoints) {
                let worker_checkpoints = checkpoints.worker();
                let mut stop = worker_checkpoints.stop.borrow_mut();
                let interval = worker_checkpoints.shared.interval;
                stop.propose(Some(floor.div_ceil(interval) * interval));
                hold_at = match (stop.agreed(), stop.proposal()) {
                    (Some(Some(f)), _) | (None, Some(Some(f))) => f,
                    _ => floor,
                };
                if floor >= hold_at {
                    let released = stop.agreed() == Some(Some(floor))
                        && stop.all_know()
                        && worker_checkpoints.durable_through(floor);
                    drop(stop);
                    if released {
                        // Nothing after the savepoint is deposited: it is discarded.
                        checkpoints.finish();
                        finish(&mut caps);
                    } else {
                        activator.activate_after(Duration::from_millis(1));
                    }
                    return;
                }
            }

            // Flow control: wait while far ahead of a frontier another worker holds back.
            while let Some(&(t, n)) = in_flight.front() {
                if probe.less_equal(&t) {
                    break;
                }
                in_flight.pop_front();
                in_flight_total -= n;
            }
            counters
                .in_flight
                .store(in_flight_total, std::sync::atomic::Ordering::Relaxed);
            let ahead =
                in_flight_total > settings.max_in_flight || in_flight.len() > MAX_TICKS_IN_FLIGHT;
            if ahead && probe.less_than(&floor) {
                activator.activate_after(Duration::from_micros(200));
                return;
            }

            let now = settings.clock.now_ms().max(last_now);
            last_now = now;
            let rule_time = match settings.time {
                TimeMode::Event => RuleTime::Event,
                TimeMode::Ingestion => RuleTime::Ingestion(now),
            };
            let mut budget = READ_BUDGET;
            let mut skipped = vec![false; parts.len()];
            let mut more = false;
            while budget > 0 {
                let next = (0..parts.len())
                    .filter(|&i| !parts[i].done && !skipped[i])
                    .min_by_key(|&i| {
                        parts[i]
                            .watermark
                            .current()
                            .unwrap_or(parts[i].initial_hold)
                    });
                let Some(i) = next else { break };
                let part = &mut parts[i];
                let before =
                    batch.events.len() + batch.dead_letters.len() + batch.blank_lines as usize;
                let (events_before, letters_before) =
                    (batch.events.len(), batch.dead_letters.len());
                let start = part.reader.position();
                let start_ts = part.watermark.max_ts();
                let max = settings.batch_size.min(budget);
                let mut emit = Emitter::new(
                    &part.name,
                    part.number,
                    rule_time,
                    &mut part.watermark,
                    floor,
                    tick,
                    &mut batch,
                )
                .replaying(part.replay);
                let status = match part.reader.read(max, &mut emit) {
                    Ok(status) => status,
                    Err(e) => {
                        control.fail(format!(
                            "source {} (partition {}): {e}",
                            part.name, part.number
                        ));
                        finish(&mut caps);
                        return;
                    }
                };
                let read =
                    batch.events.len() + batch.dead_letters.len() + batch.blank_lines as usize
                        - before;
                if let (Some(checkpoints), Some(start)) = (&checkpoints, start) {
                    let max_time = batch.events[events_before..].iter().map(|e| e.time).max();
                    let interval = checkpoints.worker().shared.interval;
                    part.progress.batch(start, start_ts, max_time, interval);
                }
                if let Some(replay) = part.replay {
                    // Their dead letters were written before the checkpoint.
                    let mut index = 0;
                    batch.dead_letters.retain(|letter| {
                        index += 1;
                        index <= letters_before || letter.position.is_none_or(|p| p >= replay.until)
                    });
                    if part
                        .reader
                        .position()
                        .is_none_or(|p| p.offset >= replay.until)
                    {
                        part.replay = None;
                    }
                }
                if let (Some(wm), Some(gauge)) = (
                    part.watermark.current(),
                    metrics.partition_watermark(part.index),
                ) {
                    gauge.store(wm, std::sync::atomic::Ordering::Relaxed);
                }
                budget = budget.saturating_sub(read.max(1));
                if read > 0 {
                    part.idle_since = None;
                }
                if part.waiting != (status == ReadStatus::Waiting) {
                    part.waiting = status == ReadStatus::Waiting;
                    let gauge = &counters.partitions_waiting;
                    let relaxed = std::sync::atomic::Ordering::Relaxed;
                    match part.waiting {
                        true => gauge.fetch_add(1, relaxed),
                        false => gauge.fetch_sub(1, relaxed),
                    };
                }
                match status {
                    ReadStatus::More => more = true,
                    ReadStatus::Idle => {
                        if read == 0 && part.idle_since.is_none() {
                            part.idle_since = Some(Instant::now());
                        }
                        skipped[i] = true;
                    }
                    ReadStatus::Waiting => {
                        // Not idle: it holds the watermark until it reads again.
                        part.idle_since = None;
                        skipped[i] = true;
                    }
                    ReadStatus::Done => part.done = true,
                }
            }

            // Emit: events at the tick of their rule time, dead letters at the watermark.
            add(&counters.events, batch.events.len() as u64);
            for letter in &batch.dead_letters {
                counters.dead_letter(letter.reason, 1);
            }
            add(&counters.blank_lines, batch.blank_lines);
            batch.blank_lines = 0;
            if !batch.dead_letters.is_empty() {
                dead_out
                    .activate()
                    .session(&held[1])
                    .give_container(&mut batch.dead_letters);
                batch.dead_letters.clear();
            }
            if !batch.events.is_empty() {
                let mut out = events_out.activate();
                give_by_tick(&mut batch.events, tick, |t, run| {
                    let count = run.len() as u64;
                    out.session(&held[0].delayed(&t)).give_container(run);
                    match in_flight.back_mut() {
                        Some((back, n)) if *back == t => *n += count,
                        _ => in_flight.push_back((t, count)),
                    }
                    in_flight_total += count;
                });
                in_flight.make_contiguous().sort_unstable();
                counters
                    .in_flight
                    .store(in_flight_total, std::sync::atomic::Ordering::Relaxed);
            }

            // Advance the watermark, or end.
            if parts.iter().all(|p| p.done) {
                if let Some(checkpoints) = &checkpoints {
                    // Every later boundary has these positions.
                    let sources = partition_states(parts, floor);
                    checkpoints.deposit(floor, u64::MAX, Piece::Sources(sources));
                    checkpoints.finish();
                    checkpoints.worker().stop.borrow_mut().propose(None);
                }
                finish(&mut caps);
                return;
            }
            let watermark = match settings.time {
                TimeMode::Ingestion => now,
                TimeMode::Event => parts
                    .iter()
                    .filter_map(|p| p.hold(unbounded, settings.idle_timeout))
                    .min()
                    // Every partition is idle: follow the wall clock, less the timeout.
                    .unwrap_or_else(|| {
                        now.saturating_sub(settings.idle_timeout.as_millis() as u64)
                    }),
            };
            let new_time = tick_of(watermark, tick).min(hold_at);
            if new_time > floor {
                if let Some(checkpoints) = &checkpoints {
                    let sources = partition_states(parts, floor);
                    checkpoints.deposit(floor, new_time, Piece::Sources(sources));
                }
                for cap in held.iter_mut() {
                    cap.downgrade(&new_time);
                }
            }
            counters
                .watermark
                .store(watermark.max(floor), std::sync::atomic::Ordering::Relaxed);
            if more {
                activator.activate();
            } else {
                activator.activate_after(Duration::from_millis(tick.clamp(1, 10)));
            }
        }
    });
    (events, dead_letters)
}

/// Opens the partitions this worker reads, with their initial watermark holds; a
/// restored partition reads on from its checkpoint's position.
fn open_partitions<R>(
    source: &dyn Source<R>,
    worker: usize,
    peers: usize,
    settings: &SourceSettings,
    restored: Option<&Restored>,
) -> Result<Vec<Partition<R>>, String> {
    let bound = settings.out_of_orderness;
    let mut parts = Vec::new();
    for index in (0..source.partitions()).filter(|p| *p as usize % peers == worker) {
        let name = source.source_name(index);
        let number = source.dead_letter_partition(index);
        let fail =
            |e: crate::sources::SourceError| format!("source {name} (partition {number}): {e}");
        let state = restored.and_then(|r| r.partition(index).map(|state| (r, state)));
        let watermark = Watermark::new(bound).with_allowed_lateness(settings.allowed_lateness);
        let (mut reader, watermark, replay, read_before) = match state {
            None => (source.open(index).map_err(fail)?, watermark, None, None),
            Some((restored, state)) => (
                source.open_at(index, state.resume).map_err(fail)?,
                watermark.restored(state.max_ts),
                Some(Replay {
                    until: state.read_until.offset,
                    boundary: restored.boundary(),
                }),
                Some(state.read_until),
            ),
        };
        let watermark = match reader.sets_watermark() {
            true => watermark.explicit(),
            false => watermark,
        };
        let initial_hold = match reader.first_ts().map_err(fail)? {
            Some(ts) => ts.saturating_sub(bound),
            // A bounded partition without a valid record can produce no on-time record.
            None if source.bounded() => u64::MAX,
            None => 0,
        };
        parts.push(Partition {
            index,
            name,
            number,
            waiting: false,
            reader,
            watermark,
            initial_hold,
            idle_since: None,
            done: false,
            progress: Progress::default(),
            replay,
            read_before,
        });
    }
    Ok(parts)
}

/// The checkpoint pieces of `parts` for the boundaries after `lo`.
fn partition_states<R>(parts: &mut [Partition<R>], lo: u64) -> Vec<PartitionState> {
    parts
        .iter_mut()
        .filter_map(|part| {
            let now = part.reader.position()?;
            let max_ts = part.watermark.max_ts();
            let mut state = part.progress.state(part.index, lo, now, max_ts, part.done);
            state.read_until = state.read_until.max(part.read_before.unwrap_or_default());
            Some(state)
        })
        .collect()
}

/// Calls `give` with the run of `events` at each tick, in tick order, leaving `events`
/// empty (its capacity kept). A batch is usually in tick order already (one partition,
/// or partitions in step): then the first tick's run is `events` itself and each later
/// run is split off, each of its records moved once; otherwise each record moves once
/// into its tick's run, which is cheaper than sorting the batch.
fn give_by_tick<R>(
    events: &mut Vec<Event<R>>,
    tick: u64,
    mut give: impl FnMut(u64, &mut Vec<Event<R>>),
) {
    if events.is_sorted_by_key(|e| tick_of(e.time, tick)) {
        let mut later = Vec::new();
        while let Some(last) = events.last() {
            let t = tick_of(last.time, tick);
            let start = events.partition_point(|e| tick_of(e.time, tick) < t);
            if start == 0 {
                give(t, events);
                break;
            }
            later.push((t, events.split_off(start)));
        }
        for (t, mut run) in later.into_iter().rev() {
            give(t, &mut run);
        }
    } else {
        // Counted first, so that each run is allocated once.
        let mut counts: BTreeMap<u64, usize> = BTreeMap::new();
        for event in events.iter() {
            *counts.entry(tick_of(event.time, tick)).or_default() += 1;
        }
        let mut by_tick: BTreeMap<u64, Vec<Event<R>>> = (counts.into_iter())
            .map(|(t, count)| (t, Vec::with_capacity(count)))
            .collect();
        for event in events.drain(..) {
            // Every tick has its run (with its capacity) already.
            by_tick
                .entry(tick_of(event.time, tick))
                .or_default()
                .push(event);
        }
        for (t, mut run) in by_tick {
            give(t, &mut run);
        }
    }
    events.clear();
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Silent;

    impl PartitionReader for Silent {
        fn read(
            &mut self,
            _max: usize,
            _emit: &mut Emitter<'_>,
        ) -> Result<ReadStatus, crate::sources::SourceError> {
            Ok(ReadStatus::Idle)
        }
    }

    fn partition(initial_hold: u64) -> Partition<tidelake_operators::Transaction> {
        Partition {
            index: 0,
            name: "test".into(),
            number: 0,
            waiting: false,
            reader: Box::new(Silent),
            watermark: Watermark::new(100),
            initial_hold,
            idle_since: None,
            done: false,
            progress: Progress::default(),
            replay: None,
            read_before: None,
        }
    }

    #[test]
    fn a_partition_holds_its_watermark_until_idle_or_done() {
        let timeout = Duration::from_secs(1);
        let mut p = partition(5_000);
        assert_eq!(
            p.hold(true, timeout),
            Some(5_000),
            "before any record: its first ts less the bound"
        );
        p.watermark.observe(9_000).expect("on time");
        assert_eq!(p.hold(true, timeout), Some(8_900));

        p.idle_since = Instant::now().checked_sub(Duration::from_secs(2));
        assert_eq!(
            p.hold(true, timeout),
            None,
            "idle past the timeout: holds nothing"
        );
        assert_eq!(
            p.hold(false, timeout),
            Some(8_900),
            "bounded sources never use the idle timeout"
        );
        p.idle_since = Some(Instant::now());
        assert_eq!(
            p.hold(true, timeout),
            Some(8_900),
            "idle, but not for long yet"
        );

        p.done = true;
        assert_eq!(p.hold(false, timeout), None);
    }

    /// The runs `give_by_tick` hands out for `times` (one event each, tick 10).
    fn given(times: &[u64]) -> Vec<(u64, Vec<u64>)> {
        let mut events: Vec<Event<u64>> = (times.iter().enumerate())
            .map(|(seq, &t)| Event::new(t, 0, seq as u64, t))
            .collect();
        let capacity = events.capacity();
        let mut runs = Vec::new();
        give_by_tick(&mut events, 10, |t, run| {
            runs.push((t, run.iter().map(|e| e.seq).collect()));
            run.clear();
        });
        assert!(events.is_empty());
        assert_eq!(events.capacity(), capacity, "the batch keeps its buffer");
        runs
    }

    #[test]
    fn a_batch_is_given_tick_by_tick_in_tick_order() {
        // In tick order: the first run is the batch itself.
        assert_eq!(
            given(&[1, 5, 12, 19, 19, 40]),
            vec![(0, vec![0, 1]), (10, vec![2, 3, 4]), (40, vec![5])]
        );
        // Out of tick order: each run keeps the batch's order.
        assert_eq!(
            given(&[12, 1, 40, 5, 19]),
            vec![(0, vec![1, 3]), (10, vec![0, 4]), (40, vec![2])]
        );
        assert_eq!(given(&[7]), vec![(0, vec![0])]);
        assert_eq!(given(&[]), Vec::<(u64, Vec<u64>)>::new());
    }
}
