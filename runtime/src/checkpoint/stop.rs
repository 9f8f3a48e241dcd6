//! Stopping with a savepoint: how every worker of a cluster agrees on the rule time
//! `F` at which the job stops (docs/checkpoints.md §6).
//!
//! When a stop is asked (Ctrl-C, SIGTERM, `launch`'s stop) in any process, each
//! worker's source proposes the first boundary at or after its watermark, or says it
//! has read everything; a worker whose source has ended says so when it ends. Every
//! worker hears every proposal (a broadcast), so each finds the same `F`, the greatest
//! proposal. Sources then read on until their watermark reaches `F` and hold there; the
//! dataflow runs everything before `F`, every component deposits its piece for `F`, and
//! the sinks commit every epoch before it. Each worker, once it knows `F`, sets its
//! process's halt time (nothing at or after `F` runs) and says so to all (a second
//! broadcast); a source lets go of `F` only when every worker has said so and its own
//! part of the checkpoint at `F` is durable. So no operator anywhere runs a tick at or
//! after `F`: the savepoint is the state at `F` and nothing after it was written.

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::Arc;

use timely::dataflow::channels::pact::Pipeline;
use timely::dataflow::operators::generic::builder_rc::OperatorBuilder;
use timely::dataflow::operators::vec::Broadcast;
use timely::dataflow::{Scope, StreamVec};
use timely::progress::operate::FrontierInterest;
use timely::scheduling::Activator;

use crate::control::JobControl;

/// One worker's view of a stop.
#[derive(Default)]
pub(crate) struct StopState {
    /// A stop was asked here, or another worker proposed one.
    requested: bool,
    /// What this worker's source proposed: `Some(h)`, to stop at boundary `h`; `None`,
    /// that it has read everything.
    proposal: Option<Option<u64>>,
    /// Proposals heard: `(from workers, the greatest stop)`.
    heard: (usize, Option<u64>),
    /// Once every worker has proposed: the stop time `F`, or `None` (no stop: every
    /// source ended).
    agreed: Option<Option<u64>>,
    /// Workers that have said they know `F`.
    acks: usize,
    peers: usize,
    proposer: Option<Activator>,
    acker: Option<Activator>,
    source: Option<Activator>,
}

/// A worker's stop state, shared by its source and the agreement's operators.
pub(crate) type StopCell = Rc<RefCell<StopState>>;

impl StopState {
    /// True once a stop was asked here or proposed by another worker.
    pub(crate) fn requested(&self) -> bool {
        self.requested
    }

    /// What this worker proposed, if it has.
    pub(crate) fn proposal(&self) -> Option<Option<u64>> {
        self.proposal
    }

    /// Proposes to stop at boundary `h` (`None`: this worker's source has read
    /// everything). The first proposal stands.
    pub(crate) fn propose(&mut self, h: Option<u64>) {
        if self.proposal.is_none() {
            self.proposal = Some(h);
            if let Some(proposer) = &self.proposer {
                proposer.activate();
            }
        }
    }

    /// The stop time every worker agreed on, once they have.
    pub(crate) fn agreed(&self) -> Option<Option<u64>> {
        self.agreed
    }

    /// True once every worker knows the agreed stop time.
    pub(crate) fn all_know(&self) -> bool {
        self.acks >= self.peers
    }

    /// Wakes the source when the agreement moves.
    pub(crate) fn set_source(&mut self, source: Activator) {
        self.source = Some(source);
    }

    /// The source's activator, once set.
    pub(crate) fn source_activator(&self) -> Option<&Activator> {
        self.source.as_ref()
    }

    fn wake_source(&self) {
        if let Some(source) = &self.source {
            source.activate();
        }
    }
}

/// Builds the agreement on this worker: returns the state its source shares. Once `F` is
/// agreed, `control` halts the process there.
pub(crate) fn build<'s>(scope: Scope<'s, u64>, control: Arc<JobControl>) -> StopCell {
    let cell: StopCell = Rc::new(RefCell::new(StopState {
        peers: scope.peers(),
        ..StopState::default()
    }));
    let proposals = announce(scope, "StopProposal", &cell, Arc::clone(&control), |s| {
        s.proposal
    });
    let acks = announce(scope, "StopAgreed", &cell, Arc::clone(&control), |s| {
        s.agreed.map(|_| None)
    });
    let mut builder = OperatorBuilder::new("StopAgreement".to_owned(), scope);
    let mut proposals = builder.new_input(proposals.broadcast(), Pipeline);
    let mut acks = builder.new_input(acks.broadcast(), Pipeline);
    builder.set_notify_for(0, FrontierInterest::Never);
    builder.set_notify_for(1, FrontierInterest::Never);
    let state = Rc::clone(&cell);
    builder.build(move |_| {
        move |_frontiers| {
            let mut state = state.borrow_mut();
            proposals.for_each(|_, data| {
                for proposal in data.drain(..) {
                    state.heard.0 += 1;
                    if let Some(h) = proposal {
                        state.heard.1 = Some(state.heard.1.map_or(h, |g: u64| g.max(h)));
                        state.requested = true;
                    }
                }
            });
            acks.for_each(|_, data| state.acks += data.len());
            if state.agreed.is_none() && state.heard.0 >= state.peers {
                let stop = state.heard.1;
                state.agreed = Some(stop);
                if let Some(f) = stop {
                    control.halt(f);
                }
                if let Some(acker) = &state.acker {
                    acker.activate();
                }
            }
            state.wake_source();
        }
    });
    cell
}

/// How often a waiting announcement looks for a failed job.
const FAILURE_POLL: std::time::Duration = std::time::Duration::from_millis(100);

/// An operator that sends, once, what `message` reads from the state when it has
/// something (to every worker, by the caller's broadcast), and then lets go of its
/// capability; or lets go without sending if the job fails first.
fn announce<'s>(
    scope: Scope<'s, u64>,
    name: &str,
    cell: &StopCell,
    control: Arc<JobControl>,
    message: fn(&StopState) -> Option<Option<u64>>,
) -> StreamVec<'s, u64, Option<u64>> {
    let mut builder = OperatorBuilder::new(name.to_owned(), scope);
    let info = builder.operator_info();
    let activator = scope.activator_for(info.address.clone());
    let proposer = name == "StopProposal";
    {
        let mut state = cell.borrow_mut();
        match proposer {
            true => state.proposer = Some(activator.clone()),
            false => state.acker = Some(activator.clone()),
        }
    }
    let (out, stream) = builder.new_output::<Vec<Option<u64>>>();
    let mut out = timely::dataflow::operators::generic::OutputBuilder::<
        _,
        timely::container::CapacityContainerBuilder<Vec<Option<u64>>>,
    >::from(out);
    let state = Rc::clone(cell);
    builder.build(move |initial| {
        let mut cap = initial.into_iter().next();
        move |_frontiers| {
            let Some(held) = cap.as_ref() else { return };
            if control.error().is_some() {
                cap = None;
                return;
            }
            match message(&state.borrow()) {
                Some(value) => {
                    out.activate().session(held).give(value);
                    cap = None;
                }
                // Looks again for a failure, which nothing else would wake it for.
                None => activator.activate_after(FAILURE_POLL),
            }
        }
    });
    stream
}
