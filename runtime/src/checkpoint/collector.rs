//! Gathering one worker's part of a checkpoint from the dataflow's pieces.
//!
//! Every component of a worker that holds something a restart needs — its source, each
//! keyed operator, each output file it writes — deposits a [`Piece`] for a range of
//! boundaries `(lo, hi]`: what it holds is right for every boundary in the range (the
//! keyed state between two ticks, the source's positions between two moves of its
//! watermark). A component's ranges follow one another. Where the ranges of all the
//! worker's components overlap on a boundary, their pieces make a [`Part`] for the
//! overlap; so a worker writes one part per stretch of boundaries in which none of its
//! components changed, however many boundaries the stretch holds (docs/checkpoints.md
//! §1).

use std::collections::VecDeque;
use std::sync::Arc;

use tidelake_operators::snapshot::holds_boundary;

use super::{OperatorState, OutputLength, Part, PartitionState};

/// What one component holds for a range of boundaries.
#[derive(Clone, Debug)]
pub(crate) enum Piece {
    /// The source's partitions.
    Sources(Vec<PartitionState>),
    /// A keyed operator's state.
    Operator(OperatorState),
    /// An output file's length.
    Output(OutputLength),
}

/// One component's pieces not yet combined.
#[derive(Debug, Default)]
struct Component {
    pieces: VecDeque<(u64, u64, Arc<Piece>)>,
    finished: bool,
}

/// One worker's pieces, combined into parts as their ranges meet.
#[derive(Debug)]
pub(crate) struct Collector {
    worker: u32,
    interval: u64,
    components: Vec<Component>,
    ready: Vec<Part>,
}

impl Collector {
    /// The collector of global worker `worker`, with boundaries every `interval` ms.
    pub(crate) fn new(worker: u32, interval: u64) -> Self {
        Collector {
            worker,
            interval,
            components: Vec::new(),
            ready: Vec::new(),
        }
    }

    /// A new component; its index is what it deposits with.
    pub(crate) fn register(&mut self) -> usize {
        self.components.push(Component::default());
        self.components.len() - 1
    }

    /// Component `c` holds `piece` for the boundaries in `(lo, hi]`.
    pub(crate) fn deposit(&mut self, c: usize, lo: u64, hi: u64, piece: Piece) {
        if !holds_boundary(lo, hi, self.interval) {
            return;
        }
        if let Some(component) = self.components.get_mut(c) {
            component.pieces.push_back((lo, hi, Arc::new(piece)));
        }
        self.combine();
    }

    /// Component `c` deposits nothing more.
    pub(crate) fn finish(&mut self, c: usize) {
        if let Some(component) = self.components.get_mut(c) {
            component.finished = true;
        }
    }

    /// True when no more part can come: every component has finished and one of them
    /// has no piece left.
    pub(crate) fn done(&self) -> bool {
        self.components.iter().all(|c| c.finished)
            && self.components.iter().any(|c| c.pieces.is_empty())
    }

    /// The parts made since the last call, in boundary order.
    pub(crate) fn take_ready(&mut self) -> Vec<Part> {
        std::mem::take(&mut self.ready)
    }

    /// Makes a part of every overlap of the first pieces of all components.
    fn combine(&mut self) {
        while !self.components.is_empty() && self.components.iter().all(|c| !c.pieces.is_empty()) {
            let fronts = || self.components.iter().filter_map(|c| c.pieces.front());
            let lo = fronts().map(|p| p.0).max().unwrap_or(0);
            let hi = fronts().map(|p| p.1).min().unwrap_or(0);
            if holds_boundary(lo, hi, self.interval) {
                let mut part = Part {
                    worker: self.worker,
                    range: (lo, hi),
                    ..Part::default()
                };
                for (_, _, piece) in fronts() {
                    match piece.as_ref() {
                        Piece::Sources(sources) => part.sources.extend(sources.iter().cloned()),
                        Piece::Operator(state) => part.operators.push(state.clone()),
                        Piece::Output(length) => part.outputs.push(length.clone()),
                    }
                }
                self.ready.push(part);
            }
            if hi == u64::MAX {
                // Every component holds its last piece for every later boundary.
                for component in &mut self.components {
                    component.pieces.clear();
                }
                break;
            }
            for component in &mut self.components {
                if component.pieces.front().is_some_and(|p| p.1 == hi) {
                    component.pieces.pop_front();
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn output(bytes: u64) -> Piece {
        Piece::Output(OutputLength {
            output: "alerts".into(),
            bytes,
            lines: bytes,
        })
    }

    fn ranges(parts: &[Part]) -> Vec<(u64, u64)> {
        parts.iter().map(|p| p.range).collect()
    }

    #[test]
    fn parts_are_the_overlaps_of_the_components_ranges() {
        let mut collector = Collector::new(0, 10);
        let a = collector.register();
        let b = collector.register();
        collector.deposit(a, 0, 35, output(1));
        assert!(collector.take_ready().is_empty(), "b has nothing yet");
        collector.deposit(b, 0, 12, output(2));
        collector.deposit(b, 12, 50, output(3));
        let parts = collector.take_ready();
        assert_eq!(ranges(&parts), vec![(0, 12), (12, 35)]);
        assert_eq!(parts[1].outputs[0].bytes, 1);
        assert_eq!(parts[1].outputs[1].bytes, 3);
        // A range without a boundary is no piece.
        collector.deposit(a, 35, 39, output(4));
        collector.deposit(a, 39, 60, output(5));
        assert_eq!(ranges(&collector.take_ready()), vec![(39, 50)]);
        assert!(!collector.done());
        collector.finish(a);
        collector.deposit(b, 50, u64::MAX, output(6));
        collector.finish(b);
        assert_eq!(ranges(&collector.take_ready()), vec![(50, 60)]);
        assert!(collector.done());
    }

    #[test]
    fn components_that_hold_for_ever_make_one_last_part() {
        let mut collector = Collector::new(3, 10);
        let a = collector.register();
        let b = collector.register();
        collector.deposit(a, 5, u64::MAX, output(1));
        collector.deposit(b, 0, u64::MAX, output(2));
        let parts = collector.take_ready();
        assert_eq!(ranges(&parts), vec![(5, u64::MAX)]);
        assert_eq!(parts[0].worker, 3);
        collector.finish(a);
        collector.finish(b);
        assert!(collector.done());
    }
}
