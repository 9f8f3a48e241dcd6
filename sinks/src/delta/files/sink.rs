//! The Delta table sink of one worker: each commit epoch's rows become Parquet files
//! and a commit of this worker's `appId` (docs/semantics.md §5).
//!
//! [`DeltaSink`] is the [`EpochWriter`] that [`crate::epochs`] drives on the sink's I/O
//! thread. Rows go to the [`DataFileWriter`] of their epoch's *batch*: consecutive epochs
//! committed together, as many as come within `--max-commit-rate` and the target file
//! size (see [`batches`](crate::delta::files::batches); by default every epoch is a batch
//! of its own). A writer may upload files early when one reaches the target size; once
//! the batch's last epoch is sealed and the batch is due, the rest are uploaded and
//! committed with the [`EpochCommitter`], with the `txn` version of the batch's last
//! epoch. An epoch the log already holds for this `appId` (a re-run with the same job id)
//! is not written at all, and files written for a batch found committed during the
//! commit are deleted. A batch whose rows were all of already committed epochs commits
//! nothing.
//!
//! ```no_run
//! # use tidelake_sinks::delta::DeltaTable;
//! # use tidelake_sinks::delta::files::{commit::CommitOptions, sink::DeltaSink};
//! # use tidelake_sinks::epochs::WriteEpochs;
//! # use tidelake_sinks::parquet::ArrowRows;
//! # fn build<'s, R: ArrowRows + Send>(rows: timely::dataflow::StreamVec<'s, u64, R>,
//! #     table: DeltaTable, snapshot: &tidelake_sinks::delta::Snapshot) {
//! let sink = DeltaSink::<R>::new(table, "job-42-w0", 0, snapshot, Default::default(), CommitOptions::default())
//!     .expect("a valid row type");
//! let halt = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(u64::MAX));
//! let committed = rows.write_epochs("DeltaSink", 10_000, sink, |error| eprintln!("{error}"), halt);
//! # }
//! ```

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use crate::delta::DeltaError;
use crate::delta::files::batches::{Batching, CommitBatches};
use crate::delta::files::commit::{CommitOptions, EpochCommitter, EpochOutcome as CommitOutcome};
use crate::delta::files::constraints::Constraints;
use crate::delta::files::group_commit::CommitGroup;
use crate::delta::maintenance::auto_compact::AutoCompactor;
use crate::delta::protocol::actions::Add;
use crate::delta::protocol::snapshot::Snapshot;
use crate::delta::protocol::table::DeltaTable;
use crate::epoch_files::{EpochFiles, report};
use crate::epochs::{EpochOutcome, EpochReport, EpochWriter};
use crate::parquet::{ArrowRows, Rejected, WriterOptions};

/// Writes one worker's epochs to a Delta table; see the [module docs](self).
pub struct DeltaSink<R: ArrowRows> {
    table: DeltaTable,
    committer: EpochCommitter,
    /// The files of each open batch.
    files: EpochFiles<R>,
    /// Which epochs go into which batch, and when a batch commits.
    batches: CommitBatches,
    /// The epochs given rows and not reported yet.
    epochs: BTreeMap<u64, OpenEpoch>,
    /// Told of every commit, if the table is auto-compacted.
    compactor: Option<Arc<AutoCompactor>>,
}

/// An epoch given rows and not reported yet.
#[derive(Default)]
struct OpenEpoch {
    /// The batch its rows are written in; `None` if the log holds the epoch already.
    batch: Option<u64>,
    /// Its rows: those written (not those the rules kept out), or all of a skipped
    /// epoch.
    rows: u64,
    /// The rows the table's rules kept out.
    rejected: Vec<Rejected>,
}

impl<R: ArrowRows> DeltaSink<R> {
    /// A sink committing as `app_id` to `table`, which was read as `snapshot` at start.
    /// `writer_index` (the global worker index) goes into file names. It commits every
    /// epoch on its own unless given [`with_batching`](Self::with_batching).
    pub fn new(
        table: DeltaTable,
        app_id: impl Into<String>,
        writer_index: usize,
        snapshot: &Snapshot,
        options: WriterOptions,
        commit: CommitOptions,
    ) -> Result<Self, DeltaError> {
        let files = EpochFiles::new(
            table.store().clone(),
            table.root().clone(),
            writer_index,
            options,
            table.clock().clone(),
        )?;
        let committer = EpochCommitter::new(table.clone(), app_id, snapshot, commit);
        Ok(DeltaSink {
            table,
            committer,
            files,
            batches: CommitBatches::new(Batching::EVERY_EPOCH),
            epochs: BTreeMap::new(),
            compactor: None,
        })
    }

    /// Commits consecutive epochs together as `batching` allows (see
    /// [`batches`](crate::delta::files::batches)).
    pub fn with_batching(mut self, batching: Batching) -> Self {
        self.batches = CommitBatches::new(batching);
        self
    }

    /// Checks every row against the table's `constraints` before it is written; the
    /// rows that break one are kept out and reported with their epoch
    /// ([`EpochReport::rejected`], see [`crate::delta::files::constraints`]).
    pub fn with_constraints(mut self, constraints: Arc<Constraints>) -> Self {
        self.files = self.files.with_constraints(constraints);
        self
    }

    /// Commits through `group`, together with the epochs other writers of the process
    /// seal at the same time (`--commit-scope process`).
    pub fn with_group(mut self, group: Arc<CommitGroup>) -> Self {
        self.committer = self.committer.in_group(group);
        self
    }

    /// Tells `compactor` of every commit this sink makes (auto-compaction).
    pub fn with_compactor(mut self, compactor: Arc<AutoCompactor>) -> Self {
        self.compactor = Some(compactor);
        self
    }

    /// Commits the batches that are complete and due (all of them if the input has
    /// `ended`); returns the reports of their epochs.
    async fn commit_due(&mut self, ended: bool) -> Result<Vec<EpochReport>, DeltaError> {
        let mut reports = Vec::new();
        while let Some(batch) =
            (self.batches).take_due(Instant::now(), ended, |b| self.files.bytes(b))
        {
            reports.extend(self.commit_batch(batch).await?);
        }
        Ok(reports)
    }

    /// Uploads the rest of `batch`'s files and commits them as its last epoch; returns
    /// the reports of its epochs, the last one with the commit's files and puts.
    async fn commit_batch(&mut self, batch: u64) -> Result<Vec<EpochReport>, DeltaError> {
        let started = Instant::now();
        let members: Vec<u64> = (self.epochs.iter())
            .filter(|(_, open)| open.batch == Some(batch))
            .map(|(&epoch, _)| epoch)
            .collect();
        let mut reports: Vec<EpochReport> = (members.iter())
            .filter_map(|epoch| self.epochs.remove(epoch).map(|open| (epoch, open)))
            .map(|(&epoch, open)| EpochReport {
                rows: open.rows,
                rejected: open.rejected,
                ..EpochReport::empty(epoch)
            })
            .collect();
        let (files, _rows) = self.files.finish(batch).await?;
        let Some(last) = reports.last_mut().filter(|_| !files.is_empty()) else {
            return Ok(reports);
        };
        let adds: Vec<Add> = files.iter().cloned().map(Add::from).collect();
        crate::fault_injection::pause_if_asked("commit");
        match self.committer.commit(last.epoch, adds.clone()).await? {
            CommitOutcome::Committed {
                version,
                attempts,
                checkpoint,
            } => {
                if let Some(compactor) = &self.compactor {
                    compactor.committed();
                }
                *last = EpochReport {
                    commit_latency: Some(started.elapsed()),
                    checkpoint,
                    rejected: std::mem::take(&mut last.rejected),
                    ..report(
                        last.epoch,
                        last.rows,
                        &files,
                        EpochOutcome::Committed { version, attempts },
                    )
                };
                let earlier = reports.len() - 1;
                for report in &mut reports[..earlier] {
                    report.outcome = EpochOutcome::Included { version };
                }
            }
            CommitOutcome::AlreadyCommitted { .. } => {
                self.table.delete_data_files(&adds).await?;
                for report in &mut reports {
                    report.outcome = EpochOutcome::AlreadyCommitted;
                }
            }
        }
        Ok(reports)
    }
}

impl<R: ArrowRows + Send> EpochWriter for DeltaSink<R> {
    type Row = R;
    type Error = DeltaError;

    async fn write(&mut self, epoch: u64, rows: Vec<R>) -> Result<(), DeltaError> {
        if self.committer.is_committed(epoch) {
            // The epoch's rows are in the table; the ones its constraints kept out are
            // dead letters again, as in the run that committed it.
            let rejected = self.files.check_only(&rows)?;
            let open = self.epochs.entry(epoch).or_default();
            open.rows += rows.len() as u64;
            open.rejected.extend(rejected);
            return Ok(());
        }
        let batch = (self.batches).batch_for(epoch, Instant::now(), |b| self.files.bytes(b));
        let rejected = self.files.write(batch, &rows).await?;
        let open = self.epochs.entry(epoch).or_default();
        open.batch = Some(batch);
        open.rows += (rows.len() - rejected.len()) as u64;
        open.rejected.extend(rejected);
        Ok(())
    }

    async fn seal(&mut self, epoch: u64) -> Result<Vec<EpochReport>, DeltaError> {
        let mut reports = Vec::new();
        match self.epochs.get(&epoch) {
            Some(open) if open.batch.is_some() => self.batches.seal(epoch),
            // Held by the log already: before every epoch of an open batch.
            Some(_) => {
                let open = self.epochs.remove(&epoch).unwrap_or_default();
                reports.push(EpochReport {
                    rows: open.rows,
                    rejected: open.rejected,
                    outcome: EpochOutcome::AlreadyCommitted,
                    ..EpochReport::empty(epoch)
                });
            }
            None => reports.push(EpochReport::empty(epoch)),
        }
        reports.extend(self.commit_due(false).await?);
        Ok(reports)
    }

    fn wake_at(&self) -> Option<Instant> {
        self.batches.wake_at()
    }

    async fn flush(&mut self, ended: bool) -> Result<Vec<EpochReport>, DeltaError> {
        self.commit_due(ended).await
    }
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, BTreeSet};
    use std::sync::{Arc, Mutex};

    use super::*;
    use crate::delta::protocol::actions::Action;
    use crate::delta::protocol::schema::Schema;
    use crate::epochs::test_dataflow;
    use crate::parquet::rows::test_rows::TestRow;
    use crate::testing::block_on;

    /// 2024-05-01T00:00:00Z in ms.
    const DAY_MS: u64 = 1_714_521_600_000;
    const INTERVAL: u64 = 1_000;
    /// Batches open for an hour: a test's epochs all share one commit.
    const HOUR_BATCHES: Batching = Batching {
        max_commit_rate: std::time::Duration::from_secs(3_600),
        target_bytes: u64::MAX,
    };

    fn row(ms: u64, account: &str) -> TestRow {
        TestRow {
            dt_micros: (ms * 1000) as i64,
            account_id: account.into(),
            amount: ms as f64 / 7.0,
            alert: ms.is_multiple_of(3),
        }
    }

    /// Runs 2 workers; worker `w` sends rows at ms `DAY_MS + t` for each `t` in
    /// `times[w]`, each as its own timely time, and writes them with a [`DeltaSink`]
    /// of app `job-w<w>`. Returns every epoch report.
    fn run(table: &DeltaTable, times: [Vec<u64>; 2]) -> Vec<EpochReport> {
        run_batched(table, times, Batching::EVERY_EPOCH)
    }

    /// Creates (or opens) the test table.
    fn create(table: &DeltaTable) -> Snapshot {
        block_on(table.create_or_open(
            &Schema::of_rows::<TestRow>(),
            TestRow::partition_columns(),
            BTreeMap::new(),
            "test",
        ))
        .expect("table")
    }

    /// Worker `w`'s sink (app `job-w<w>`) on `table`, read as `snapshot`.
    fn sink(
        table: &DeltaTable,
        w: usize,
        snapshot: &Snapshot,
        batching: Batching,
    ) -> DeltaSink<TestRow> {
        DeltaSink::new(
            table.clone(),
            format!("job-w{w}"),
            w,
            snapshot,
            WriterOptions::default(),
            CommitOptions::default(),
        )
        .expect("sink")
        .with_batching(batching)
    }

    /// [`run`], the sinks committing epochs together as `batching` allows.
    fn run_batched(
        table: &DeltaTable,
        times: [Vec<u64>; 2],
        batching: Batching,
    ) -> Vec<EpochReport> {
        let snapshot = create(table);
        let reports = Arc::new(Mutex::new(Vec::new()));
        let (table, shared) = (table.clone(), Arc::clone(&reports));
        timely::execute(timely::Config::process(2), move |worker| {
            let w = worker.index();
            let sink = sink(&table, w, &snapshot, batching);
            let mut input = test_dataflow(
                worker,
                INTERVAL,
                sink,
                crate::epochs::running(),
                Arc::clone(&shared),
            );
            for &t in &times[w] {
                input.advance_to(DAY_MS + t);
                input.send(row(DAY_MS + t, &format!("acct-{w}")));
            }
        })
        .expect("timely");
        let mut reports = reports.lock().expect("lock").clone();
        reports.sort_by_key(|r| (r.epoch, r.rows));
        reports
    }

    fn rows_in(snapshot: &Snapshot) -> u64 {
        snapshot
            .files
            .values()
            .map(|add| {
                let stats: serde_json::Value =
                    serde_json::from_str(add.stats.as_deref().expect("stats")).expect("json");
                stats["numRecords"].as_u64().expect("numRecords")
            })
            .sum()
    }

    #[test]
    fn each_worker_commits_each_epoch_with_rows_once_and_a_rerun_commits_nothing() {
        let table = DeltaTable::open_url("memory://t").expect("open");
        // Worker 0 has rows in epochs 0, 1 and 5; worker 1 in epochs 0 and 2.
        let times = [vec![0, 10, 999, 1_000, 5_500], vec![1, 2_000, 2_999]];
        let reports = run(&table, times.clone());
        let committed: Vec<(u64, u64)> = reports.iter().map(|r| (r.epoch, r.rows)).collect();
        let first_epoch = DAY_MS / INTERVAL;
        let e = |i: u64| first_epoch + i;
        assert_eq!(
            committed,
            [(e(0), 1), (e(0), 3), (e(1), 1), (e(2), 2), (e(5), 1)],
            "one report per worker and epoch with rows"
        );
        assert!(
            reports
                .iter()
                .all(|r| matches!(r.outcome, EpochOutcome::Committed { .. }) && r.files == 1)
        );

        let snapshot = block_on(table.snapshot()).expect("load").expect("table");
        assert_eq!(snapshot.version, 5, "table creation + 5 commits");
        assert_eq!(snapshot.txn_version("job-w0"), Some(e(5) as i64));
        assert_eq!(snapshot.txn_version("job-w1"), Some(e(2) as i64));
        assert_eq!(rows_in(&snapshot), 8);

        // The same job again: every epoch is in the log already.
        let reports = run(&table, times);
        assert!(
            reports
                .iter()
                .all(|r| r.outcome == EpochOutcome::AlreadyCommitted && r.files == 0),
            "{reports:?}"
        );
        let again = block_on(table.snapshot()).expect("load").expect("table");
        assert_eq!(again.version, 5, "nothing committed twice");
        let objects = block_on(async {
            use futures::TryStreamExt;
            table
                .store()
                .list(None)
                .try_collect::<Vec<_>>()
                .await
                .expect("list")
        });
        let data_files = objects
            .iter()
            .filter(|o| {
                o.location.as_ref().ends_with(".parquet")
                    && !o.location.as_ref().contains("_delta_log")
            })
            .count();
        assert_eq!(data_files, 5, "no data file written for the skipped epochs");
    }

    #[test]
    fn epochs_sealed_within_the_commit_rate_share_one_commit_and_its_files() {
        let table = DeltaTable::open_url("memory://t").expect("open");
        // Worker 0 has a row in each of epochs 0..40, worker 1 in epochs 3 and 7.
        let w0: Vec<u64> = (0..40).map(|e| e * INTERVAL + e % 7).collect();
        let times = [w0, vec![3 * INTERVAL, 7 * INTERVAL + 5]];
        let reports = run_batched(&table, times.clone(), HOUR_BATCHES);
        let e = |i: u64| DAY_MS / INTERVAL + i;
        assert_eq!(
            reports.len(),
            42,
            "one report per worker and epoch with rows"
        );
        let commits: Vec<&EpochReport> = reports
            .iter()
            .filter(|r| matches!(r.outcome, EpochOutcome::Committed { .. }))
            .collect();
        assert_eq!(commits.len(), 2, "one commit per worker: {reports:?}");
        assert_eq!(
            commits.iter().map(|r| r.epoch).collect::<BTreeSet<_>>(),
            BTreeSet::from([e(7), e(39)]),
            "each commit is reported with its last epoch"
        );
        assert_eq!(
            commits.iter().map(|r| r.files).sum::<u64>(),
            2,
            "one file each"
        );
        assert!(reports.iter().all(|r| r.rows == 1));
        let included = reports
            .iter()
            .filter(|r| matches!(r.outcome, EpochOutcome::Included { .. }))
            .count();
        assert_eq!(included, 40);

        let snapshot = block_on(table.snapshot()).expect("load").expect("table");
        assert_eq!(snapshot.version, 2, "table creation + 2 commits");
        assert_eq!(snapshot.txn_version("job-w0"), Some(e(39) as i64));
        assert_eq!(snapshot.txn_version("job-w1"), Some(e(7) as i64));
        assert_eq!(rows_in(&snapshot), 42);

        // The same job again, epoch by epoch this time: everything is in the log.
        let reports = run(&table, times);
        assert!(
            reports
                .iter()
                .all(|r| r.outcome == EpochOutcome::AlreadyCommitted && r.files == 0),
            "{reports:?}"
        );
        let again = block_on(table.snapshot()).expect("load").expect("table");
        assert_eq!(again.version, 2, "nothing committed twice");
    }

    #[test]
    fn a_halt_that_leaves_a_batch_incomplete_ends_without_committing_it() {
        use std::sync::atomic::{AtomicU64, Ordering};
        let table = DeltaTable::open_url("memory://t").expect("open");
        let snapshot = create(&table);
        let reports = Arc::new(Mutex::new(Vec::new()));
        let (shared, sink_table) = (Arc::clone(&reports), table.clone());
        timely::execute(timely::Config::thread(), move |worker| {
            let sink = sink(&sink_table, 0, &snapshot, HOUR_BATCHES);
            let halt = Arc::new(AtomicU64::new(u64::MAX));
            let mut input = test_dataflow(
                worker,
                INTERVAL,
                sink,
                Arc::clone(&halt),
                Arc::clone(&shared),
            );
            // Epochs 0 and 1 in one batch; epoch 0 is sealed, then the job fails. Epoch 1
            // has enough rows for the operator to hand them to the writer unsealed.
            input.advance_to(DAY_MS);
            input.send(row(DAY_MS, "a"));
            input.advance_to(DAY_MS + INTERVAL);
            for _ in 0..crate::epochs::SEND_ROWS {
                input.send(row(DAY_MS + INTERVAL, "b"));
            }
            input.advance_to(DAY_MS + 2 * INTERVAL - 1);
            for _ in 0..100 {
                worker.step();
            }
            halt.store(0, Ordering::Release);
        })
        .expect("timely ends: the batch held back does not hold the dataflow");
        assert!(reports.lock().expect("lock").is_empty(), "nothing reported");
        let snapshot = block_on(table.snapshot()).expect("load").expect("table");
        assert_eq!(snapshot.version, 0, "nothing committed");
    }

    #[test]
    fn a_pinned_clock_fixes_every_time_and_id_the_sink_writes() {
        const NOW: i64 = 1_800_000_000_123;
        let clock = crate::clock::PinnedClock::at(NOW);
        let table = DeltaTable::open_url("memory://t")
            .expect("open")
            .with_clock(clock.clone());
        run(&table, [vec![0, 1_500], vec![1]]);
        let snapshot = block_on(table.snapshot()).expect("load").expect("table");
        let metadata = snapshot.metadata.as_ref().expect("metadata");
        assert_eq!(metadata.created_time, Some(NOW));
        assert_eq!(metadata.id, "00000000-0000-4000-8000-000000000001");
        for version in 0..=snapshot.version {
            for action in block_on(table.read_commit(version)).expect("read") {
                match action {
                    Action::CommitInfo(info) => {
                        assert_eq!(info.timestamp, Some(NOW), "version {version}");
                        let id = info.txn_id.expect("txnId");
                        assert!(id.starts_with("00000000-0000-4000-8000-"), "{id}");
                    }
                    Action::Txn(txn) => assert_eq!(txn.last_updated, Some(NOW)),
                    Action::Add(add) => {
                        assert_eq!(add.modification_time, NOW);
                        assert!(
                            add.path.contains("-00000000-0000-4000-8000-"),
                            "a counted id in the file name: {}",
                            add.path
                        );
                    }
                    _ => {}
                }
            }
        }
        assert_eq!(snapshot.files.len(), 3);
    }
}
