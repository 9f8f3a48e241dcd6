//! Writing a stream epoch by epoch, with the I/O off the timely worker thread.
//!
//! Commit epochs follow docs/semantics.md §5: a record at timely time `t` belongs to epoch
//! `floor(t / interval)`. [`WriteEpochs::write_epochs`] hands each batch of records to
//! an [`EpochWriter`] running on a thread of its own (with a current-thread tokio
//! runtime for object-store calls), and, once the input frontier has passed the end of
//! an epoch, asks it to seal the epoch — finish its files and commit them. The
//! operator holds a capability for every epoch until its writer reports it sealed, and
//! then emits that [`EpochReport`] at the epoch's time: a probe on the output is the
//! *committed frontier*. So the worker thread keeps stepping the dataflow while files
//! are encoded and uploaded.
//!
//! Epochs are sealed in order, one at a time. A writer may hold sealed epochs back to
//! commit several together (a table writer does, see
//! [`batches`](crate::delta::files::batches)): its seal then reports none, a later one
//! reports them all, and the operator asks it to [`flush`](EpochWriter::flush) when its
//! [`wake_at`](EpochWriter::wake_at) time comes and once the input has ended.
//!
//! The operator gathers an epoch's containers and hands them over together once they
//! hold `SEND_ROWS` rows, or when the epoch is sealed: the I/O thread then wakes once
//! per many containers rather than once per container (a thread switch each). When the
//! store or the Parquet encoding falls behind, the worker waits rather than buffer
//! without limit: it hands over at most `MAX_ROWS_IN_FLIGHT` rows the thread has not
//! written yet. Seals never wait, so a worker whose sink is behind on commits still
//! runs the rest of its dataflow (its checkpoint parts among it). If the writer fails,
//! the error goes to the `on_error` callback, the operator drops its capabilities and
//! discards later records, so the dataflow can end; nothing more is committed.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::Instant;

use timely::container::CapacityContainerBuilder;
use timely::dataflow::StreamVec;
use timely::dataflow::channels::pact::Pipeline;
use timely::dataflow::operators::Capability;
use timely::dataflow::operators::generic::OutputBuilder;
use timely::dataflow::operators::generic::builder_rc::OperatorBuilder;
use timely::scheduling::SyncActivator;

use crate::delta::protocol::checkpoint::policy::CheckpointWrite;
use crate::parquet::Rejected;

/// What became of one sealed epoch of one worker.
#[derive(Clone, Debug, PartialEq)]
pub struct EpochReport {
    /// The epoch.
    pub epoch: u64,
    /// Rows the epoch had.
    pub rows: u64,
    /// Data files written (and, for a table, committed).
    pub files: u64,
    /// Bytes of those files.
    pub bytes: u64,
    /// What the sink did with it.
    pub outcome: EpochOutcome,
    /// How long the commit took, from sealing the epoch (files finished) to the log
    /// entry landing, for a committed epoch.
    pub commit_latency: Option<std::time::Duration>,
    /// The rows the table's rules kept out of the epoch (they become dead letters).
    pub rejected: Vec<Rejected>,
    /// The checkpoint the sink wrote after committing the epoch, if one was due.
    pub checkpoint: Option<CheckpointWrite>,
}

/// What a sink did with an epoch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EpochOutcome {
    /// Committed as table version `version`, after `attempts` puts.
    Committed {
        /// The table version.
        version: u64,
        /// Puts it took (1 without contention).
        attempts: u32,
    },
    /// The table already held this epoch for this writer (a re-run with the same job
    /// id): nothing was committed and files written for it were deleted.
    AlreadyCommitted,
    /// Committed as table version `version` together with later epochs of the same
    /// writer (docs/semantics.md §5): the report of the commit's last epoch has the
    /// commit's files, bytes and puts.
    Included {
        /// The table version.
        version: u64,
    },
    /// The files are complete and visible (a sink without a log).
    Written,
    /// The epoch's records made no file (all its containers were empty).
    Empty,
}

impl EpochReport {
    /// The report of an epoch with no rows.
    pub fn empty(epoch: u64) -> Self {
        EpochReport {
            epoch,
            rows: 0,
            files: 0,
            bytes: 0,
            outcome: EpochOutcome::Empty,
            commit_latency: None,
            rejected: Vec::new(),
            checkpoint: None,
        }
    }
}

/// A halt time that never comes: for a stream written to its end.
pub fn running() -> Arc<AtomicU64> {
    Arc::new(AtomicU64::new(u64::MAX))
}

/// The sinks' tests' dataflow on `worker`: records sent to the returned input are
/// written by `writer` in epochs of `interval`, every report is pushed to `reports`,
/// and a writer error panics.
#[cfg(test)]
pub(crate) fn test_dataflow<W: EpochWriter>(
    worker: &mut timely::worker::Worker,
    interval: u64,
    writer: W,
    halt: Arc<AtomicU64>,
    reports: Arc<std::sync::Mutex<Vec<EpochReport>>>,
) -> timely::dataflow::InputHandle<u64, CapacityContainerBuilder<Vec<W::Row>>>
where
    W::Row: Clone,
{
    use timely::dataflow::operators::Inspect;
    let mut input = timely::dataflow::InputHandle::new();
    worker.dataflow::<u64, _, _>(|scope| {
        input
            .to_stream(scope)
            .write_epochs(
                "Sink",
                interval,
                writer,
                |e| panic!("sink failed: {e}"),
                halt,
            )
            .inspect(move |r| reports.lock().expect("lock").push(r.clone()));
    });
    input
}

/// Writes and seals epochs; runs on the sink's I/O thread.
pub trait EpochWriter: Send + 'static {
    /// The records written.
    type Row: Send + 'static;
    /// A failure; the sink stops at the first.
    type Error: std::fmt::Display + Send + 'static;

    /// Takes more rows of `epoch` (which is not sealed yet). May write files early.
    fn write(
        &mut self,
        epoch: u64,
        rows: Vec<Self::Row>,
    ) -> impl Future<Output = Result<(), Self::Error>>;

    /// Every row of `epoch` has been given: finish its files and make them durable.
    /// Called once per epoch that had rows, in epoch order. Returns the reports of the
    /// epochs this completes, in order: `epoch`'s, after those of earlier epochs held
    /// back, or none if the writer holds `epoch` back for a later commit.
    fn seal(&mut self, epoch: u64) -> impl Future<Output = Result<Vec<EpochReport>, Self::Error>>;

    /// When the writer wants [`flush`](Self::flush) called if no request comes before:
    /// the time a sealed epoch it holds back is due. `None`: it holds none back.
    fn wake_at(&self) -> Option<Instant> {
        None
    }

    /// Completes the sealed epochs held back that are due by now, or all of them once
    /// the input has `ended`; returns their reports, in order.
    fn flush(
        &mut self,
        ended: bool,
    ) -> impl Future<Output = Result<Vec<EpochReport>, Self::Error>> {
        let _ = ended;
        std::future::ready(Ok(Vec::new()))
    }
}

/// Writes a stream epoch by epoch; see the [module docs](self).
pub trait WriteEpochs<'s, R> {
    /// Writes this stream's records with `writer`, in epochs of `interval` units of
    /// timely time. Returns the sealed epochs' reports, each at its epoch's earliest
    /// record time. `on_error` is called once, with the writer's first error. An epoch
    /// that ends after `halt` (a savepoint's time, or 0 once the job has failed) is
    /// never sealed: its rows are dropped, and files written for it early stay
    /// unreferenced.
    fn write_epochs<W: EpochWriter<Row = R>>(
        self,
        name: &str,
        interval: u64,
        writer: W,
        on_error: impl FnMut(String) + 'static,
        halt: Arc<AtomicU64>,
    ) -> StreamVec<'s, u64, EpochReport>;
}

/// Rows of an epoch the operator gathers before handing them to the I/O thread (an
/// epoch's last rows go when it is sealed).
pub(crate) const SEND_ROWS: usize = 8192;

/// Rows handed to the I/O thread and not yet written before the worker waits for it:
/// with the rows gathered in open epochs, the sink's memory bound when the store or
/// Parquet encoding is slower than the dataflow. The I/O thread never waits for the
/// worker, so waiting cannot deadlock.
const MAX_ROWS_IN_FLIGHT: usize = 8 * SEND_ROWS;

/// A request to the I/O thread.
enum Request<R> {
    /// Rows of an epoch, in the containers they came in.
    Write {
        epoch: u64,
        containers: Vec<Vec<R>>,
        /// The containers' rows.
        rows: usize,
    },
    Seal(u64),
    /// Every epoch with rows has been sealed: complete those held back.
    End,
}

/// An answer from the I/O thread.
enum Reply {
    Sealed(Vec<EpochReport>),
    /// The answer to [`Request::End`]: the last reports. An epoch still pending after
    /// them never will be reported (it shares a commit with an epoch the halt left
    /// unsealed): nothing more is committed.
    Ended(Vec<EpochReport>),
    Failed(String),
}

/// An epoch with rows that is not sealed yet.
struct Pending<R> {
    /// At the earliest time of the epoch's records.
    cap: Capability<u64>,
    /// A seal has been requested.
    sealing: bool,
    /// Rows not yet handed to the I/O thread, and how many.
    gathered: Vec<Vec<R>>,
    gathered_rows: usize,
}

impl<R> Pending<R> {
    /// The gathered rows as a request, leaving none.
    fn take_rows(&mut self, epoch: u64) -> Option<Request<R>> {
        let rows = std::mem::take(&mut self.gathered_rows);
        let containers = std::mem::take(&mut self.gathered);
        (!containers.is_empty()).then_some(Request::Write {
            epoch,
            containers,
            rows,
        })
    }
}

impl<'s, R: Send + 'static> WriteEpochs<'s, R> for StreamVec<'s, u64, R> {
    fn write_epochs<W: EpochWriter<Row = R>>(
        self,
        name: &str,
        interval: u64,
        writer: W,
        mut on_error: impl FnMut(String) + 'static,
        halt: Arc<AtomicU64>,
    ) -> StreamVec<'s, u64, EpochReport> {
        assert!(interval >= 1, "the epoch interval must be at least 1");
        let scope = self.scope();
        let mut builder = OperatorBuilder::new(name.to_owned(), scope);
        let info = builder.operator_info();
        let activator = scope.worker().sync_activator_for(info.address.to_vec());
        let mut input = builder.new_input(self, Pipeline);
        let (out, reports) = builder.new_output::<Vec<EpochReport>>();
        let mut out = OutputBuilder::<_, CapacityContainerBuilder<Vec<EpochReport>>>::from(out);
        let name = name.to_owned();

        builder.build(move |initial| {
            drop(initial);
            let mut io = Some(IoThread::start(&name, writer, activator));
            let mut pending: BTreeMap<u64, Pending<R>> = BTreeMap::new();
            let mut ended = false;
            move |frontiers| {
                let Some(thread) = io.as_mut() else {
                    input.for_each_stamp(|_, _| {});
                    return;
                };
                let halt = halt.load(Ordering::Acquire);
                input.for_each_stamp(|icap, data| {
                    let Some(&time) = icap.least() else { return };
                    if time >= halt {
                        return;
                    }
                    let epoch = time / interval;
                    let entry = pending.entry(epoch).or_insert_with(|| Pending {
                        cap: icap.delayed(&time, 0),
                        sealing: false,
                        gathered: Vec::new(),
                        gathered_rows: 0,
                    });
                    if time < *entry.cap.time() {
                        entry.cap = icap.delayed(&time, 0);
                    }
                    for container in data {
                        entry.gathered_rows += container.len();
                        entry.gathered.push(std::mem::take(container));
                    }
                    if entry.gathered_rows >= SEND_ROWS
                        && let Some(rows) = entry.take_rows(epoch)
                    {
                        thread.send(rows);
                    }
                });

                let frontier = &frontiers[0];
                for (&epoch, state) in pending.iter_mut().filter(|(_, p)| !p.sealing) {
                    let end = epoch.saturating_add(1).saturating_mul(interval);
                    if frontier.less_than(&end) || end > halt {
                        break;
                    }
                    state.sealing = true;
                    if let Some(rows) = state.take_rows(epoch) {
                        thread.send(rows);
                    }
                    thread.send(Request::Seal(epoch));
                }

                if frontier.is_empty() {
                    if halt < u64::MAX {
                        // Halted: what is not being sealed never will be.
                        pending.retain(|_, state| state.sealing);
                    }
                    if !ended {
                        ended = true;
                        thread.send(Request::End);
                    }
                }

                let mut out = out.activate();
                while let Ok(reply) = thread.replies.try_recv() {
                    let (reports, last) = match reply {
                        Reply::Sealed(reports) => (reports, false),
                        Reply::Ended(reports) => (reports, true),
                        Reply::Failed(message) => {
                            on_error(message);
                            pending.clear();
                            io = None;
                            return;
                        }
                    };
                    for report in reports {
                        if let Some(state) = pending.remove(&report.epoch) {
                            out.session(&state.cap).give(report);
                        }
                    }
                    if last {
                        // The answer to End: nothing pending will be reported.
                        pending.clear();
                    }
                }
                if pending.is_empty() && frontier.is_empty() {
                    io = None;
                }
            }
        });
        reports
    }
}

/// The sink's I/O thread and the channels to it. Dropping it closes the requests and
/// waits for the thread to finish what it was given.
struct IoThread<R> {
    requests: Option<mpsc::Sender<Request<R>>>,
    in_flight: Arc<InFlight>,
    replies: mpsc::Receiver<Reply>,
    handle: Option<JoinHandle<()>>,
}

impl<R: Send + 'static> IoThread<R> {
    fn start<W: EpochWriter<Row = R>>(name: &str, mut writer: W, activator: SyncActivator) -> Self {
        let (requests, requests_rx) = mpsc::channel::<Request<R>>();
        let in_flight = Arc::new(InFlight::default());
        let written = Arc::clone(&in_flight);
        let (replies_tx, replies) = mpsc::channel();
        let thread_name = format!("{name}-io");
        let handle = std::thread::Builder::new()
            .name(thread_name.clone())
            .spawn(move || {
                // However the thread ends, the worker no longer waits for it.
                let _closed = written.closer();
                let reply = |reply: Reply| {
                    // The operator is gone if either fails: nothing is waiting.
                    let _ = replies_tx.send(reply);
                    let _ = activator.activate();
                };
                let runtime = match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    Ok(runtime) => runtime,
                    Err(e) => return reply(Reply::Failed(format!("{thread_name}: {e}"))),
                };
                loop {
                    let request = match writer.wake_at() {
                        Some(at) => {
                            let wait = at.saturating_duration_since(Instant::now());
                            match requests_rx.recv_timeout(wait) {
                                Ok(request) => Some(request),
                                Err(mpsc::RecvTimeoutError::Timeout) => None,
                                Err(mpsc::RecvTimeoutError::Disconnected) => break,
                            }
                        }
                        None => match requests_rx.recv() {
                            Ok(request) => Some(request),
                            Err(mpsc::RecvError) => break,
                        },
                    };
                    // Sealed epochs are answered when there are any; End always is.
                    let sealed = |reports: Vec<EpochReport>| {
                        (!reports.is_empty()).then_some(Reply::Sealed(reports))
                    };
                    let result = match request {
                        Some(Request::Write {
                            epoch,
                            containers,
                            rows,
                        }) => {
                            let result = runtime.block_on(async {
                                for rows in containers {
                                    writer.write(epoch, rows).await?;
                                }
                                Ok(())
                            });
                            written.written(rows);
                            result.map(|()| None)
                        }
                        Some(Request::Seal(epoch)) => {
                            runtime.block_on(writer.seal(epoch)).map(sealed)
                        }
                        Some(Request::End) => runtime
                            .block_on(writer.flush(true))
                            .map(|r| Some(Reply::Ended(r))),
                        None => runtime.block_on(writer.flush(false)).map(sealed),
                    };
                    match result {
                        Ok(Some(answer)) => reply(answer),
                        Ok(None) => {}
                        Err(e) => return reply(Reply::Failed(e.to_string())),
                    }
                }
            });
        let (requests, handle) = match handle {
            Ok(handle) => (Some(requests), Some(handle)),
            // No thread: report it as the writer's first error.
            Err(e) => {
                in_flight.end();
                let (tx, rx) = mpsc::channel();
                let _ = tx.send(Reply::Failed(format!(
                    "cannot start the {name} I/O thread: {e}"
                )));
                return IoThread {
                    requests: None,
                    in_flight,
                    replies: rx,
                    handle: None,
                };
            }
        };
        IoThread {
            requests,
            in_flight,
            replies,
            handle,
        }
    }

    /// Queues `request`; rows wait while too many handed over are not written yet.
    fn send(&self, request: Request<R>) {
        if let Request::Write { rows, .. } = request {
            self.in_flight.hand_over(rows);
        }
        // A closed channel means the thread failed; its reply says why.
        if let Some(requests) = &self.requests {
            let _ = requests.send(request);
        }
    }
}

/// The rows handed to an I/O thread and not yet written, shared by the worker (which
/// waits while there are too many) and the thread (which counts them off).
#[derive(Default)]
struct InFlight {
    state: Mutex<InFlightState>,
    changed: Condvar,
}

#[derive(Default)]
struct InFlightState {
    rows: usize,
    /// The thread has ended.
    ended: bool,
}

impl InFlight {
    /// Counts `rows` in, first waiting while the rows in flight would pass
    /// `MAX_ROWS_IN_FLIGHT` (unless none are: a batch larger than the bound still goes)
    /// and the thread runs.
    fn hand_over(&self, rows: usize) {
        let Ok(mut state) = self.state.lock() else {
            return;
        };
        while state.rows > 0 && state.rows + rows > MAX_ROWS_IN_FLIGHT && !state.ended {
            let Ok(next) = self.changed.wait(state) else {
                return;
            };
            state = next;
        }
        state.rows += rows;
    }

    /// Counts `rows` off as written.
    fn written(&self, rows: usize) {
        if let Ok(mut state) = self.state.lock() {
            state.rows = state.rows.saturating_sub(rows);
        }
        self.changed.notify_one();
    }

    /// Marks the thread ended (or never started): nothing waits for it after.
    fn end(&self) {
        if let Ok(mut state) = self.state.lock() {
            state.ended = true;
        }
        self.changed.notify_all();
    }

    /// A guard that [ends](Self::end) the thread when dropped.
    fn closer(&self) -> impl Drop + '_ {
        struct Closer<'a>(&'a InFlight);
        impl Drop for Closer<'_> {
            fn drop(&mut self) {
                self.0.end();
            }
        }
        Closer(self)
    }
}

impl<R> Drop for IoThread<R> {
    fn drop(&mut self) {
        self.requests = None;
        if let Some(handle) = self.handle.take() {
            let _ = handle.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::time::Duration;

    use super::{InFlight, MAX_ROWS_IN_FLIGHT};

    /// Hands `rows` over on a thread of its own; the flag says when it got through.
    fn hand_over(in_flight: &Arc<InFlight>, rows: usize) -> Arc<AtomicBool> {
        let (in_flight, through) = (Arc::clone(in_flight), Arc::new(AtomicBool::new(false)));
        let flag = Arc::clone(&through);
        std::thread::spawn(move || {
            in_flight.hand_over(rows);
            flag.store(true, Ordering::Release);
        });
        through
    }

    fn waits_for(through: &AtomicBool) -> bool {
        std::thread::sleep(Duration::from_millis(50));
        !through.load(Ordering::Acquire)
    }

    fn gets_through(through: &AtomicBool) -> bool {
        (0..200).any(|_| {
            std::thread::sleep(Duration::from_millis(10));
            through.load(Ordering::Acquire)
        })
    }

    #[test]
    fn rows_wait_while_too_many_are_in_flight_and_go_once_written() {
        let in_flight = Arc::new(InFlight::default());
        // More than the bound goes when nothing is in flight.
        in_flight.hand_over(MAX_ROWS_IN_FLIGHT + 1);
        let next = hand_over(&in_flight, 1);
        assert!(waits_for(&next), "a row waits while the bound is passed");
        in_flight.written(MAX_ROWS_IN_FLIGHT + 1);
        assert!(gets_through(&next), "and goes once those are written");
        in_flight.written(1);

        in_flight.hand_over(MAX_ROWS_IN_FLIGHT - 1);
        let next = hand_over(&in_flight, 1);
        assert!(gets_through(&next), "up to the bound, rows go at once");
        let last = hand_over(&in_flight, 1);
        assert!(waits_for(&last), "past it, they wait");
        in_flight.written(1);
        assert!(gets_through(&last));
    }

    #[test]
    fn nothing_waits_for_a_thread_that_ended() {
        let in_flight = Arc::new(InFlight::default());
        in_flight.hand_over(MAX_ROWS_IN_FLIGHT);
        let waiting = hand_over(&in_flight, 1);
        assert!(waits_for(&waiting));
        drop(in_flight.closer());
        assert!(gets_through(&waiting), "the waiting rows go");
        let after = hand_over(&in_flight, MAX_ROWS_IN_FLIGHT);
        assert!(gets_through(&after), "and so do later ones");
    }
}
