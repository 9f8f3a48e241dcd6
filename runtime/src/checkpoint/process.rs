//! A job's checkpoints in one process ([`Checkpoints`], shared by its workers) and on
//! one worker ([`WorkerCheckpoints`]: its collector of pieces and its stop state), and
//! what a restore hands each component ([`Restored`]).

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::sync::{Arc, Mutex};

use timely::scheduling::Activator;

use tidelake_operators::snapshot::{GroupSnapshot, SnapshotSink};

use super::collector::{Collector, Piece};
use super::stop::StopCell;
use super::writer::CheckpointWriter;
use super::{Layout, Manifest, OperatorState, OutputLength, Part, PartitionState};
use crate::control::JobControl;
use crate::metrics::Metrics;

/// A job's checkpoints in this process: where they go, what was restored, and what has
/// been taken.
pub(crate) struct Checkpoints {
    pub(crate) writer: CheckpointWriter,
    /// Rule time between boundaries (ms).
    pub(crate) interval: u64,
    /// Complete checkpoints kept.
    pub(crate) retained: usize,
    /// This run of the job: one more than any before it in the directory.
    pub(crate) attempt: u64,
    pub(crate) job_id: String,
    /// The settings a checkpoint records and a restore compares.
    pub(crate) settings: Vec<(String, String)>,
    pub(crate) layout: Layout,
    /// The checkpoint this run started from.
    pub(crate) restored: Option<Restored>,
    /// The id of the next manifest this run writes.
    pub(crate) next_id: u64,
    /// The checkpoints this run has written.
    pub(crate) taken: Mutex<Taken>,
    /// Told every source partition's resume position when a checkpoint is complete
    /// (in the process that writes the manifests).
    pub(crate) on_complete: std::sync::OnceLock<CompleteHook>,
}

/// What is told the resume positions of a complete checkpoint.
pub(crate) type CompleteHook = Box<dyn Fn(&[(u32, crate::sources::Position)]) + Send + Sync>;

/// The checkpoints a run has written.
#[derive(Clone, Debug, Default)]
pub struct Taken {
    /// How many.
    pub count: u64,
    /// The newest one's manifest.
    pub last: Option<Manifest>,
}

impl Checkpoints {
    /// Records `manifest` as written.
    pub(crate) fn taken(&self, manifest: Manifest) {
        let mut taken = self.taken.lock().unwrap_or_else(|e| e.into_inner());
        taken.count += 1;
        taken.last = Some(manifest);
    }

    /// Tells `hook` the resume positions of every checkpoint completed from now on.
    pub(crate) fn on_complete(&self, hook: CompleteHook) {
        let _ = self.on_complete.set(hook);
    }

    /// What this run has written so far.
    pub(crate) fn written(&self) -> Taken {
        self.taken.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

/// The checkpoint a run started from, with every worker's part.
#[derive(Clone, Debug)]
pub(crate) struct Restored {
    pub(crate) manifest: Manifest,
    pub(crate) parts: Vec<Part>,
}

impl Restored {
    /// The rule time it was taken at.
    pub(crate) fn boundary(&self) -> u64 {
        self.manifest.rule_time
    }

    /// What it holds of source partition `partition` (whichever worker read it).
    pub(crate) fn partition(&self, partition: u32) -> Option<&PartitionState> {
        self.parts
            .iter()
            .flat_map(|part| part.sources.iter())
            .find(|state| state.partition == partition)
    }

    /// The key groups of keyed operator `operator` that global worker `worker` of
    /// `peers` owns (group `g` lives on worker `g % peers`), from every part.
    pub(crate) fn groups(&self, operator: &str, worker: usize, peers: usize) -> Vec<GroupSnapshot> {
        self.parts
            .iter()
            .flat_map(|part| part.operators.iter())
            .filter(|state| state.operator == operator)
            .flat_map(|state| state.groups.iter())
            .filter(|group| group.group as usize % peers == worker)
            .cloned()
            .collect()
    }

    /// How much of output `output` it covers (worker 0 writes the outputs).
    pub(crate) fn output(&self, output: &str) -> Option<&OutputLength> {
        self.parts
            .iter()
            .flat_map(|part| part.outputs.iter())
            .find(|length| length.output == output)
    }
}

/// One worker's part in the job's checkpoints.
pub(crate) struct WorkerCheckpoints {
    pub(crate) shared: Arc<Checkpoints>,
    pub(crate) control: Arc<JobControl>,
    pub(crate) metrics: Arc<Metrics>,
    pub(crate) collector: RefCell<Collector>,
    /// Wakes the operator that writes the worker's parts.
    parts: RefCell<Option<Activator>>,
    /// Every boundary up to here (inclusive) is in a durable part of this worker.
    durable_through: Cell<u64>,
    pub(crate) stop: StopCell,
    /// Keyed operators registered so far, to name the next (`Name#i`).
    keyed: Cell<usize>,
}

impl WorkerCheckpoints {
    /// Global worker `worker`'s part in `shared`.
    pub(crate) fn new(
        shared: Arc<Checkpoints>,
        control: Arc<JobControl>,
        metrics: Arc<Metrics>,
        worker: usize,
        stop: StopCell,
    ) -> Rc<Self> {
        let worker = worker as u32;
        Rc::new(WorkerCheckpoints {
            collector: RefCell::new(Collector::new(worker, shared.interval)),
            shared,
            control,
            metrics,
            parts: RefCell::new(None),
            durable_through: Cell::new(0),
            stop,
            keyed: Cell::new(0),
        })
    }

    /// A new component of this worker, depositing its pieces through the returned handle.
    pub(crate) fn component(self: &Rc<Self>) -> Depositor {
        let component = self.collector.borrow_mut().register();
        Depositor {
            worker: Rc::clone(self),
            component,
        }
    }

    /// The checkpoint name of the next keyed operator named `name`: `name#i`, `i`
    /// counting the keyed operators of the pipeline.
    pub(crate) fn keyed_name(&self, name: &str) -> String {
        let i = self.keyed.get();
        self.keyed.set(i + 1);
        format!("{name}#{i}")
    }

    /// The operator that writes the parts is `activator`.
    pub(crate) fn set_parts_operator(&self, activator: Activator) {
        *self.parts.borrow_mut() = Some(activator);
    }

    /// A part up to `hi` is durable.
    pub(crate) fn durable(&self, hi: u64) {
        self.durable_through.set(self.durable_through.get().max(hi));
    }

    /// True when every boundary up to `b` is in a durable part of this worker.
    pub(crate) fn durable_through(&self, b: u64) -> bool {
        self.durable_through.get() >= b
    }

    fn wake_parts(&self) {
        if let Some(parts) = self.parts.borrow().as_ref() {
            parts.activate();
        }
    }
}

/// Where one component of a worker deposits its pieces.
pub(crate) struct Depositor {
    worker: Rc<WorkerCheckpoints>,
    component: usize,
}

impl Depositor {
    /// The component holds `piece` for the boundaries in `(lo, hi]`.
    pub(crate) fn deposit(&self, lo: u64, hi: u64, piece: Piece) {
        self.worker
            .collector
            .borrow_mut()
            .deposit(self.component, lo, hi, piece);
        self.worker.wake_parts();
    }

    /// The component deposits nothing more.
    pub(crate) fn finish(&self) {
        self.worker.collector.borrow_mut().finish(self.component);
        self.worker.wake_parts();
    }

    /// The worker this component is on.
    pub(crate) fn worker(&self) -> &Rc<WorkerCheckpoints> {
        &self.worker
    }
}

/// A keyed operator's snapshots, as pieces of its worker's parts.
pub(crate) struct KeyedDepositor {
    pub(crate) operator: String,
    pub(crate) depositor: Depositor,
}

impl SnapshotSink for KeyedDepositor {
    fn deposit(&mut self, lo: u64, hi: u64, groups: Vec<GroupSnapshot>) {
        let state = OperatorState {
            operator: self.operator.clone(),
            groups,
        };
        self.depositor.deposit(lo, hi, Piece::Operator(state));
    }

    fn finish(&mut self) {
        self.depositor.finish();
    }

    fn fail(&mut self, message: String) {
        self.depositor.worker.control.fail(format!(
            "cannot restore {} from checkpoint: {message}",
            self.operator
        ));
    }
}
