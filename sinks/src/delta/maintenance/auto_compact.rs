//! Auto-compaction (docs/semantics.md §6): the streaming sinks of a table count their commits, and
//! after every N of them a background thread runs [`optimize`] on the partitions that
//! hold enough small files.
//!
//! One [`AutoCompactor`] per table per process, so at most one compaction of a table
//! runs at a time in a process. Compaction runs on its own thread with its own I/O
//! runtime: a sink only bumps a counter, so neither the stream nor the commit path waits
//! for it. Compaction commits remove files with `dataChange=false`, which the sinks'
//! blind appends never conflict with; a compaction that loses a file to another
//! compaction gives up on that partition and tries again next time. A failed run is
//! counted and reported, not fatal: the table stays valid, only less compact.
//!
//! [`AutoCompactor::finish`] waits for a running compaction and, if commits were made
//! since the last run, runs a last one, so a bounded job ends with a compact table.

use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;

use crate::delta::DeltaError;
use crate::delta::maintenance::optimize::{OptimizeOptions, PartitionOutcome, optimize};
use crate::delta::protocol::table::DeltaTable;

/// What the auto-compactor of a table did.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct CompactionTotals {
    /// Compaction runs.
    pub runs: u64,
    /// Partitions compacted (one commit each).
    pub partitions: u64,
    /// Small files removed.
    pub files_removed: u64,
    /// Files written in their place.
    pub files_added: u64,
    /// Partitions given up on (another writer compacted the same files first).
    pub gave_up: u64,
    /// Runs that failed, and the last failure.
    pub failures: u64,
    /// The last failure's message.
    pub last_failure: Option<String>,
}

/// Compacts one table in the background; see the [module docs](self).
pub struct AutoCompactor {
    shared: Arc<Shared>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

struct Shared {
    state: Mutex<State>,
    wake: Condvar,
}

#[derive(Default)]
struct State {
    /// Commits since the last run started.
    commits: u64,
    /// No more commits will come.
    finishing: bool,
    totals: CompactionTotals,
}

impl AutoCompactor {
    /// Starts the compactor of `table`: a run after every `every` commits (at least 1),
    /// with `options` (its `min_files` is the small-file count that makes a partition
    /// worth compacting).
    pub fn start(
        table: DeltaTable,
        options: OptimizeOptions,
        every: u64,
    ) -> Result<Arc<AutoCompactor>, DeltaError> {
        let shared = Arc::new(Shared {
            state: Mutex::new(State::default()),
            wake: Condvar::new(),
        });
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| DeltaError::Corrupt(format!("cannot start an I/O runtime: {e}")))?;
        let every = every.max(1);
        let worker = Arc::clone(&shared);
        let thread = std::thread::Builder::new()
            .name("auto-compact".to_owned())
            .spawn(move || {
                while worker.wait_for_run(every) {
                    let result = runtime.block_on(optimize(&table, &options, &mut |_| {}));
                    worker.record(result.map(|report| report.partitions));
                }
            })
            .map_err(|e| DeltaError::Corrupt(format!("cannot start the compaction thread: {e}")))?;
        Ok(Arc::new(AutoCompactor {
            shared,
            thread: Mutex::new(Some(thread)),
        }))
    }

    /// Counts a commit of a streaming sink; wakes the compactor when a run is due.
    pub fn committed(&self) {
        let mut state = self.shared.lock();
        state.commits += 1;
        drop(state);
        self.shared.wake.notify_one();
    }

    /// What the compactor has done so far.
    pub fn totals(&self) -> CompactionTotals {
        self.shared.lock().totals.clone()
    }

    /// Waits for a running compaction, runs a last one if commits were made since the
    /// last run, and returns what the compactor did. Later calls return the totals.
    pub fn finish(&self) -> CompactionTotals {
        self.shared.lock().finishing = true;
        self.shared.wake.notify_one();
        let thread = self.thread.lock().ok().and_then(|mut t| t.take());
        if let Some(thread) = thread {
            let _ = thread.join();
        }
        self.shared.lock().totals.clone()
    }
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // A panicking compaction thread aborts the process, so the lock is never
        // poisoned in practice; recover the state if it is.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Blocks until a run is due (true) or the compactor is done (false).
    fn wait_for_run(&self, every: u64) -> bool {
        let mut state = self.lock();
        loop {
            if state.commits >= every || (state.finishing && state.commits > 0) {
                state.commits = 0;
                return true;
            }
            if state.finishing {
                return false;
            }
            state = self.wake.wait(state).unwrap_or_else(|e| e.into_inner());
        }
    }

    fn record(&self, result: Result<Vec<PartitionOutcome>, DeltaError>) {
        let mut state = self.lock();
        let totals = &mut state.totals;
        totals.runs += 1;
        match result {
            Ok(partitions) => {
                for partition in partitions {
                    match partition {
                        PartitionOutcome::Compacted { removed, added, .. } => {
                            totals.partitions += 1;
                            totals.files_removed += removed as u64;
                            totals.files_added += added as u64;
                        }
                        PartitionOutcome::GaveUp { .. } => totals.gave_up += 1,
                        PartitionOutcome::Skipped { .. } => {}
                    }
                }
            }
            Err(e) => {
                totals.failures += 1;
                totals.last_failure = Some(e.to_string());
            }
        }
    }
}

impl Drop for AutoCompactor {
    fn drop(&mut self) {
        self.finish();
    }
}
