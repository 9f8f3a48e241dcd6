//! The two operators that make checkpoints durable (docs/checkpoints.md §1, §4).
//!
//! - **Parts**, on every worker: hands each part its collector makes to the process's
//!   writer thread and, once the part is durable, sends its entry to worker 0.
//! - **Manifest**, whose input all goes to worker 0: once every worker has a durable
//!   part holding a boundary `B` and every sink has committed the epochs before `B`
//!   (the committed frontier has passed `B`), writes the manifest of the checkpoint at
//!   the greatest such `B`, then deletes what retention no longer keeps. Checkpoints
//!   are therefore taken as often as the parts and commits allow, at most one per
//!   boundary.

use std::collections::BTreeMap;
use std::rc::Rc;
use std::sync::atomic::Ordering;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use timely::container::CapacityContainerBuilder;
use timely::dataflow::channels::pact::Exchange;
use timely::dataflow::operators::generic::OutputBuilder;
use timely::dataflow::operators::generic::builder_rc::OperatorBuilder;
use timely::dataflow::{ProbeHandle, Scope, StreamVec};

use tidelake_operators::snapshot::holds_boundary;

use super::process::WorkerCheckpoints;
use super::{CheckpointError, DurablePart, Kind, Manifest, Part, PartEntry};
use crate::sources::Position;

/// How often the manifest operator looks again at a committed frontier that holds a
/// checkpoint back.
const COMMITTED_POLL: Duration = Duration::from_millis(20);

/// Builds the parts operator of this worker: see the [module docs](self).
pub(crate) fn parts<'s>(
    scope: Scope<'s, u64>,
    worker: Rc<WorkerCheckpoints>,
) -> StreamVec<'s, u64, DurablePart> {
    let mut builder = OperatorBuilder::new("CheckpointParts".to_owned(), scope);
    let info = builder.operator_info();
    worker.set_parts_operator(scope.activator_for(info.address.clone()));
    let wake = scope.worker().sync_activator_for(info.address.to_vec());
    let (out, entries) = builder.new_output::<Vec<DurablePart>>();
    let mut out = OutputBuilder::<_, CapacityContainerBuilder<Vec<DurablePart>>>::from(out);
    builder.build(move |initial| {
        let mut cap = initial.into_iter().next();
        let (replies_tx, replies) = mpsc::channel::<Result<Vec<PartEntry>, CheckpointError>>();
        // Parts made while a write is under way, written together after it.
        let mut ready: Vec<Part> = Vec::new();
        let mut writing = false;
        // The resume positions of the parts being written, part by part.
        let mut resumes: Vec<Vec<(u32, Position)>> = Vec::new();
        move |_frontiers| {
            let Some(held) = cap.as_ref() else { return };
            let shared = &worker.shared;
            ready.extend(worker.collector.borrow_mut().take_ready());
            let mut out = out.activate();
            while let Ok(reply) = replies.try_recv() {
                writing = false;
                match reply {
                    Ok(entries) => {
                        if let Some(last) = entries.last() {
                            worker.durable(last.range.1);
                        }
                        if let Some(source) = worker.stop.borrow().source_activator() {
                            source.activate();
                        }
                        let durable = entries
                            .into_iter()
                            .zip(std::mem::take(&mut resumes))
                            .map(|(entry, resume)| DurablePart { entry, resume });
                        out.session(held).give_iterator(durable);
                    }
                    Err(e) => worker.control.fail(format!("writing a checkpoint: {e}")),
                }
            }
            // One file at a time: a backlog of parts becomes one file, not one each.
            if !writing && !ready.is_empty() {
                let parts = thin(std::mem::take(&mut ready), shared.interval);
                resumes = parts
                    .iter()
                    .map(|p| p.sources.iter().map(|s| (s.partition, s.resume)).collect())
                    .collect();
                shared
                    .writer
                    .write_parts(shared.attempt, parts, &replies_tx, wake.clone());
                writing = true;
            }
            let failed = worker.control.error().is_some();
            let done = ready.is_empty() && worker.collector.borrow().done();
            if failed || (!writing && done) {
                cap = None;
            }
        }
    });
    entries
}

/// Parts a worker writes at once before it thins them out.
const THIN_ABOVE: usize = 8;

/// `parts` (one worker's, in boundary order) thinned out to about [`THIN_ABOVE`] when
/// there are more: those holding a multiple of `interval × 2^j` for the least `j` that
/// keeps so few, and the newest (a savepoint's). Workers that thin with other `j` keep
/// nested sets of boundaries — every multiple of the greater stride is a multiple of the
/// smaller — so they still hold common boundaries for a manifest.
fn thin(parts: Vec<Part>, interval: u64) -> Vec<Part> {
    if parts.len() <= THIN_ABOVE {
        return parts;
    }
    let holds = |part: &Part, stride: u64| holds_boundary(part.range.0, part.range.1, stride);
    let mut stride = interval;
    while parts.iter().filter(|p| holds(p, stride)).count() > THIN_ABOVE {
        match stride.checked_mul(2) {
            Some(wider) => stride = wider,
            None => break,
        }
    }
    let last = parts.len() - 1;
    parts
        .into_iter()
        .enumerate()
        .filter(|(i, part)| *i == last || holds(part, stride))
        .map(|(_, part)| part)
        .collect()
}

/// Builds the manifest operator (its input goes to worker 0): see the [module docs](self).
/// `committed` sees the epochs the sinks have committed.
pub(crate) fn manifests<'s>(
    entries: StreamVec<'s, u64, DurablePart>,
    worker: Rc<WorkerCheckpoints>,
    committed: ProbeHandle<u64>,
) {
    let scope = entries.scope();
    let mut builder = OperatorBuilder::new("CheckpointManifest".to_owned(), scope);
    let info = builder.operator_info();
    let wake = scope.worker().sync_activator_for(info.address.to_vec());
    let poll = scope.activator_for(info.address.clone());
    let mut input = builder.new_input(entries, Exchange::new(|_: &DurablePart| 0));
    let peers = scope.peers();
    builder.build_reschedule(move |_| {
        let shared = Rc::clone(&worker);
        let (replies_tx, replies) = mpsc::channel::<Result<Manifest, CheckpointError>>();
        // Durable parts by worker, by the upper end of their range.
        let mut parts: Vec<BTreeMap<u64, DurablePart>> = vec![BTreeMap::new(); peers];
        // The resume positions of the manifest being written.
        let mut resume: Vec<(u32, Position)> = Vec::new();
        let mut last = shared.shared.restored.as_ref().map_or(0, |r| r.boundary());
        let mut next_id = shared.shared.next_id;
        let mut writing = false;
        // When each part reached this operator, and when the one being written did.
        let mut arrived: BTreeMap<String, Instant> = BTreeMap::new();
        let mut first_part: Option<Instant> = None;
        move |frontiers| {
            let checkpoints = &shared.shared;
            input.for_each(|_, data| {
                for part in data.drain(..) {
                    arrived.insert(part.entry.file.clone(), Instant::now());
                    if let Some(by_hi) = parts.get_mut(part.entry.worker as usize) {
                        by_hi.insert(part.entry.range.1, part);
                    }
                }
            });
            while let Ok(reply) = replies.try_recv() {
                writing = false;
                match reply {
                    Ok(manifest) => {
                        let took = first_part.take().map_or(0.0, |t| t.elapsed().as_secs_f64());
                        tracing::info!(
                            checkpoint = manifest.id,
                            rule_time = manifest.rule_time,
                            "{} {} complete at {} ({} parts, {} bytes, {took:.3} s from its first part)",
                            manifest.kind.name(),
                            manifest.id,
                            super::at_rule_time(manifest.rule_time),
                            manifest.parts.len(),
                            manifest.parts_bytes()
                        );
                        let metrics = &shared.metrics.checkpoints;
                        metrics.taken.fetch_add(1, Ordering::Relaxed);
                        metrics.rule_time.store(manifest.rule_time, Ordering::Relaxed);
                        metrics.bytes.store(manifest.parts_bytes(), Ordering::Relaxed);
                        metrics.duration.observe(took);
                        if let Some(hook) = checkpoints.on_complete.get() {
                            hook(&resume);
                        }
                        checkpoints.taken(manifest);
                    }
                    Err(e) => shared.control.fail(format!("writing a checkpoint: {e}")),
                }
            }
            let mut waiting = false;
            if !writing && shared.control.error().is_none() {
                // Every epoch before the frontier of the sinks' reports is committed.
                let committed_to = committed.with_frontier(|f| f.first().copied());
                let limit = committed_to.unwrap_or(u64::MAX);
                match newest_covered(&parts, last, checkpoints.interval, limit) {
                    Some(b) => {
                        let kind = match shared.stop.borrow().agreed() {
                            Some(Some(f)) if f == b => Kind::Savepoint,
                            _ => Kind::Checkpoint,
                        };
                        let held: Vec<&DurablePart> =
                            parts.iter().filter_map(|by_hi| covering(by_hi, b)).collect();
                        resume = held.iter().flat_map(|p| p.resume.iter().copied()).collect();
                        let manifest = Manifest {
                            id: next_id,
                            kind,
                            job_id: checkpoints.job_id.clone(),
                            attempt: checkpoints.attempt,
                            rule_time: b,
                            created_ms: chrono::Utc::now().timestamp_millis(),
                            settings: checkpoints.settings.clone(),
                            layout: checkpoints.layout,
                            parts: held.iter().map(|p| p.entry.clone()).collect(),
                        };
                        first_part = manifest
                            .parts
                            .iter()
                            .filter_map(|p| arrived.get(&p.file).copied())
                            .min();
                        next_id += 1;
                        last = b;
                        for by_hi in &mut parts {
                            // No later checkpoint is at or before b.
                            by_hi.retain(|&hi, _| hi > b);
                        }
                        let live: Vec<&String> = parts
                            .iter()
                            .flat_map(|p| p.values().map(|d| &d.entry.file))
                            .collect();
                        arrived.retain(|file, _| live.contains(&file));
                        checkpoints.writer.write_manifest(
                            manifest,
                            checkpoints.retained,
                            &replies_tx,
                            wake.clone(),
                        );
                        writing = true;
                    }
                    // Parts wait for the sinks to commit the epochs before them.
                    None if newest_covered(&parts, last, checkpoints.interval, u64::MAX)
                        .is_some() =>
                    {
                        poll.activate_after(COMMITTED_POLL);
                        waiting = true;
                    }
                    None => {}
                }
            }
            writing || waiting || !frontiers[0].is_empty()
        }
    });
}

/// The greatest boundary after `last`, and at most `limit`, that a part of every worker
/// holds.
fn newest_covered(
    parts: &[BTreeMap<u64, DurablePart>],
    last: u64,
    interval: u64,
    limit: u64,
) -> Option<u64> {
    let top = parts
        .iter()
        .map(|by_hi| by_hi.keys().next_back().copied())
        .min()??
        .min(limit);
    if top == u64::MAX && last < u64::MAX {
        // Every worker has read and run everything: the checkpoint of the input's end.
        return Some(u64::MAX);
    }
    let mut b = top.saturating_sub(top % interval);
    while b > last {
        match parts.iter().find(|by_hi| covering(by_hi, b).is_none()) {
            None => return Some(b),
            // The greatest boundary below b that this worker's parts hold.
            Some(by_hi) => {
                let below = by_hi.range(..b).next_back().map(|(&hi, _)| hi)?;
                b = below.saturating_sub(below % interval);
            }
        }
    }
    None
}

/// The part of `by_hi` that holds boundary `b`.
fn covering(by_hi: &BTreeMap<u64, DurablePart>, b: u64) -> Option<&DurablePart> {
    by_hi
        .range(b..)
        .next()
        .map(|(_, part)| part)
        .filter(|part| part.entry.range.0 < b)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(ranges: &[&[(u64, u64)]]) -> Vec<BTreeMap<u64, DurablePart>> {
        ranges
            .iter()
            .enumerate()
            .map(|(worker, ranges)| {
                ranges
                    .iter()
                    .map(|&(lo, hi)| {
                        let entry = PartEntry {
                            worker: worker as u32,
                            file: format!("w{worker}-{lo}-{hi}"),
                            size: 1,
                            crc32c: 0,
                            index: 0,
                            range: (lo, hi),
                        };
                        let resume = Vec::new();
                        (hi, DurablePart { entry, resume })
                    })
                    .collect()
            })
            .collect()
    }

    #[test]
    fn a_backlog_of_parts_is_thinned_to_nested_strides_keeping_the_newest() {
        let part = |lo: u64| Part {
            range: (lo, lo + 10),
            ..Part::default()
        };
        let few: Vec<Part> = (0..8).map(|i| part(i * 10)).collect();
        assert_eq!(thin(few.clone(), 10), few, "few enough: all");
        // 40 parts, one boundary each (10, 20, …, 400).
        let many: Vec<Part> = (0..40).map(|i| part(i * 10)).collect();
        let kept: Vec<u64> = thin(many.clone(), 10).iter().map(|p| p.range.1).collect();
        assert_eq!(
            kept,
            vec![80, 160, 240, 320, 400],
            "multiples of 80, and the newest"
        );
        // Another worker with fewer parts thins less, and keeps every multiple of 80.
        let other: Vec<u64> = thin(many[..20].to_vec(), 10)
            .iter()
            .map(|p| p.range.1)
            .collect();
        assert_eq!(other, vec![40, 80, 120, 160, 200]);
        // A part for every later boundary (the input's end) is always kept.
        let mut ending = many;
        ending.push(Part {
            range: (400, u64::MAX),
            ..Part::default()
        });
        assert_eq!(thin(ending, 10).last().map(|p| p.range.1), Some(u64::MAX));
    }

    #[test]
    fn the_newest_boundary_every_worker_holds() {
        let all = parts(&[&[(0, 100)], &[(0, 50), (50, 100)]]);
        assert_eq!(newest_covered(&all, 0, 10, u64::MAX), Some(100));
        assert_eq!(
            newest_covered(&all, 100, 10, u64::MAX),
            None,
            "nothing after the last"
        );
        let all = parts(&[&[(0, 100)], &[(0, 55)]]);
        assert_eq!(newest_covered(&all, 0, 10, u64::MAX), Some(50));
        // Worker 1 holds nothing between 40 and 60: the boundary below both.
        let all = parts(&[&[(0, 75)], &[(0, 35), (60, 80)]]);
        assert_eq!(newest_covered(&all, 0, 10, u64::MAX), Some(70));
        let all = parts(&[&[(0, 65)], &[(0, 35), (66, 80)]]);
        assert_eq!(newest_covered(&all, 0, 10, u64::MAX), Some(30));
        assert_eq!(newest_covered(&all, 30, 10, u64::MAX), None);
        let all = parts(&[&[(0, u64::MAX)], &[(5, 95)]]);
        assert_eq!(newest_covered(&all, 0, 10, u64::MAX), Some(90));
        let all = parts(&[&[(0, u64::MAX)], &[(5, 95), (95, u64::MAX)]]);
        assert_eq!(
            newest_covered(&all, 0, 10, u64::MAX),
            Some(u64::MAX),
            "the end of the input"
        );
        assert_eq!(newest_covered(&all, u64::MAX, 10, u64::MAX), None);
        let all = parts(&[&[(0, 100)], &[]]);
        assert_eq!(
            newest_covered(&all, 0, 10, u64::MAX),
            None,
            "a worker with no part"
        );
        // Only what the sinks have committed up to.
        let all = parts(&[&[(0, 35), (35, 100)], &[(0, 100)]]);
        assert_eq!(newest_covered(&all, 0, 10, 57), Some(50));
        assert_eq!(newest_covered(&all, 0, 10, 9), None);
    }
}
