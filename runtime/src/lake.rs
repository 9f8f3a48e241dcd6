//! The job's lake outputs: its Delta tables, opened once at start, and the sinks each
//! worker writes them with (SPEC §5).
//!
//! At start every table is opened (created if missing, with the row type's schema and
//! partitioning, or checked against them), after checking that its store honours
//! put-if-absent, and a job id that committed to it before is checked to run with the
//! same settings (its [`JobIdentity`]). Each worker then commits its own epochs as
//! `<job id>-w<global worker index>` from the snapshot read here, recording the job's
//! identity in every commit.

use std::collections::BTreeMap;
use std::sync::Arc;

use tidelake_sinks::delta::auto_compact::{AutoCompactor, CompactionTotals};
use tidelake_sinks::delta::optimize::OptimizeOptions;

use tidelake_sinks::delta::commit::CommitOptions;
use tidelake_sinks::delta::constraints::{Constraints, OnRejected};
use tidelake_sinks::delta::features::{self, Operation};
use tidelake_sinks::delta::job_identity::{self, JobIdentity, check_job_identity};
use tidelake_sinks::delta::retention::check_retention_properties;
use tidelake_sinks::delta::sink::DeltaSink;
use tidelake_sinks::delta::store::check_put_if_absent;
use tidelake_sinks::delta::writer::WriterOptions;
use tidelake_sinks::delta::{DeltaError, DeltaTable, Snapshot};
use tidelake_sinks::parquet_files::ParquetFileSink;
use tidelake_sinks::rows::ArrowRows;

use crate::alerts_table::AlertRow;
use crate::config::LakeConfig;
use crate::transactions_table::TransactionRow;

/// The lake outputs of a job, ready for its workers.
pub struct Lake {
    identity: JobIdentity,
    commit_interval_ms: u64,
    writer: WriterOptions,
    transactions: Option<OpenTable>,
    alerts: Option<OpenTable>,
    parquet_dir: Option<String>,
}

/// A table, its snapshot at start, its row rules, and its auto-compactor.
struct OpenTable {
    table: DeltaTable,
    snapshot: Snapshot,
    constraints: Arc<Constraints>,
    compactor: Option<Arc<AutoCompactor>>,
}

/// What auto-compaction did to one table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TableCompaction {
    /// The table.
    pub table: String,
    /// What its compactor did.
    pub totals: CompactionTotals,
}

/// What a job is, for the tables it writes: see [`JobIdentity`].
#[derive(Clone, Debug)]
pub struct LakeJob {
    /// The settings that decide which rows each writer commits in which epoch.
    pub settings: Vec<(String, String)>,
    /// False when a new run cannot reproduce the epochs of an old one (ingestion time):
    /// such a job id may not be used again on a table it committed to.
    pub replayable: bool,
}

impl Lake {
    /// Opens (or creates) the tables of `config` for `job`. Without a job id in
    /// `config`, a fresh one is chosen.
    pub fn open(config: &LakeConfig, job: LakeJob) -> Result<Lake, DeltaError> {
        let job_id = config
            .job_id
            .clone()
            .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
        let identity = JobIdentity::new(job_id, job.settings);
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| DeltaError::Corrupt(format!("cannot start an I/O runtime: {e}")))?;
        let (transactions, alerts) = runtime.block_on(async {
            let open = |url| open_table::<TransactionRow>(url, config, &identity, job.replayable);
            let transactions = match &config.transactions {
                Some(url) => Some(open(url).await?),
                None => None,
            };
            let alerts = match &config.alerts {
                Some(url) => {
                    Some(open_table::<AlertRow>(url, config, &identity, job.replayable).await?)
                }
                None => None,
            };
            Ok::<_, DeltaError>((transactions, alerts))
        })?;
        Ok(Lake {
            identity,
            commit_interval_ms: config.commit_interval_ms,
            writer: config.writer.clone(),
            transactions,
            alerts,
            parquet_dir: config.parquet_dir.clone(),
        })
    }

    /// The job id the writers commit as.
    pub fn job_id(&self) -> &str {
        &self.identity.job_id
    }

    /// The commit epoch, in ms of rule time.
    pub fn commit_interval_ms(&self) -> u64 {
        self.commit_interval_ms
    }

    /// The `appId` of global worker `worker`.
    pub fn app_id(&self, worker: usize) -> String {
        job_identity::app_id(&self.identity.job_id, worker)
    }

    /// The transactions table's location, if the job writes it.
    pub fn transactions_location(&self) -> Option<&str> {
        self.transactions.as_ref().map(|t| t.table.location())
    }

    /// The alerts table's location, if the job writes it.
    pub fn alerts_location(&self) -> Option<&str> {
        self.alerts.as_ref().map(|t| t.table.location())
    }

    /// The sink of global worker `worker` for the transactions table; the rows its
    /// constraints keep out go to `on_rejected`.
    pub fn transactions_sink(
        &self,
        worker: usize,
        on_rejected: impl FnOnce(&str) -> OnRejected,
    ) -> Option<Result<DeltaSink<TransactionRow>, DeltaError>> {
        self.transactions
            .as_ref()
            .map(|t| self.sink(t, worker, on_rejected))
    }

    /// The sink of global worker `worker` for the alerts table; the rows its
    /// constraints keep out go to `on_rejected`.
    pub fn alerts_sink(
        &self,
        worker: usize,
        on_rejected: impl FnOnce(&str) -> OnRejected,
    ) -> Option<Result<DeltaSink<AlertRow>, DeltaError>> {
        self.alerts
            .as_ref()
            .map(|t| self.sink(t, worker, on_rejected))
    }

    /// The Parquet file sink of global worker `worker`.
    pub fn parquet_sink(
        &self,
        worker: usize,
    ) -> Option<Result<ParquetFileSink<TransactionRow>, DeltaError>> {
        self.parquet_dir
            .as_deref()
            .map(|dir| ParquetFileSink::new(dir, worker, self.writer.clone()))
    }

    /// What auto-compaction has done to each table so far (empty without it).
    pub fn compaction(&self) -> Vec<TableCompaction> {
        self.each_compactor(AutoCompactor::totals)
    }

    /// The tables the job writes, to read back (for the monitoring page).
    pub fn tables(&self) -> Vec<DeltaTable> {
        [&self.transactions, &self.alerts]
            .into_iter()
            .flatten()
            .map(|open| open.table.clone())
            .collect()
    }

    /// Ends auto-compaction: waits for running compactions, compacts what was committed
    /// since the last run, and says what was done to each table.
    pub fn finish_compaction(&self) -> Vec<TableCompaction> {
        self.each_compactor(AutoCompactor::finish)
    }

    /// `totals` of each table's auto-compactor.
    fn each_compactor(
        &self,
        totals: fn(&AutoCompactor) -> CompactionTotals,
    ) -> Vec<TableCompaction> {
        [&self.transactions, &self.alerts]
            .into_iter()
            .flatten()
            .filter_map(|open| {
                open.compactor.as_deref().map(|compactor| TableCompaction {
                    table: open.table.location().to_owned(),
                    totals: totals(compactor),
                })
            })
            .collect()
    }

    /// A sink of `open` for global worker `worker`; `on_rejected` is given the table's
    /// location and makes the callback for the rows its constraints keep out.
    fn sink<R: ArrowRows>(
        &self,
        open: &OpenTable,
        worker: usize,
        on_rejected: impl FnOnce(&str) -> OnRejected,
    ) -> Result<DeltaSink<R>, DeltaError> {
        let sink = DeltaSink::new(
            open.table.clone(),
            self.app_id(worker),
            worker,
            &open.snapshot,
            self.writer.clone(),
            CommitOptions {
                query_id: self.identity.job_id.clone(),
                job: Some(self.identity.clone()),
                ..CommitOptions::default()
            },
        )?
        .with_constraints(
            Arc::clone(&open.constraints),
            on_rejected(open.table.location()),
        );
        Ok(match &open.compactor {
            Some(compactor) => sink.with_compactor(Arc::clone(compactor)),
            None => sink,
        })
    }
}

/// Opens the table at `url` for rows `R`, creating it if there is none, checks that the
/// job may write it (`identity`, `replayable`: see [`LakeJob`]), and starts its
/// auto-compactor if `config` asks for one.
async fn open_table<R: ArrowRows>(
    url: &str,
    config: &LakeConfig,
    identity: &JobIdentity,
    replayable: bool,
) -> Result<OpenTable, DeltaError> {
    let table = DeltaTable::open_url(url)?;
    check_put_if_absent(table.store().as_ref(), table.root(), url).await?;
    let configuration = BTreeMap::from([("delta.checkpointInterval".to_owned(), "10".to_owned())]);
    let engine_info = CommitOptions::default().engine_info;
    let snapshot = table
        .create_or_open(
            &R::delta_schema(),
            R::partition_columns(),
            configuration,
            &engine_info,
        )
        .await?;
    check_retention_properties(&snapshot, url)?;
    if !replayable && !job_identity::committed_writers(&snapshot, &identity.job_id).is_empty() {
        return Err(DeltaError::JobNotReplayable {
            table: url.to_owned(),
            job_id: identity.job_id.clone(),
        });
    }
    check_job_identity(&table, &snapshot, identity).await?;
    let metadata = snapshot
        .metadata
        .as_ref()
        .ok_or_else(|| DeltaError::Corrupt(format!("{url}: the log has no metaData")))?;
    let constraints = Arc::new(Constraints::of_table(metadata, url)?);
    if config.auto_compact.is_some() {
        // Refused now rather than by every background compaction.
        features::check(&snapshot, url, Operation::Optimize)?;
    }
    let compactor = match config.auto_compact {
        Some(auto) => {
            let options = OptimizeOptions {
                target_file_size: config.writer.target_file_size as u64,
                min_file_size: config.writer.target_file_size as u64 * 3 / 4,
                min_files: auto.min_files,
                auto: true,
                engine_info,
                ..OptimizeOptions::default()
            };
            Some(AutoCompactor::start(
                table.clone(),
                options,
                auto.every_commits,
            )?)
        }
        None => None,
    };
    Ok(OpenTable {
        table,
        snapshot,
        constraints,
        compactor,
    })
}
