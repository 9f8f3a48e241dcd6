//! The job's lake outputs: its Delta tables, opened once at start, and the sinks each
//! worker writes them with (SPEC §5).
//!
//! At start every table is opened (created if missing, with the row type's schema and
//! partitioning, or checked against them), after checking that its store honours
//! put-if-absent. Each worker then commits its own epochs as `<job id>-w<global worker
//! index>` from the snapshot read here.

use std::collections::BTreeMap;
use std::sync::Arc;

use tidelake_sinks::delta::auto_compact::{AutoCompactor, CompactionTotals};
use tidelake_sinks::delta::optimize::OptimizeOptions;

use tidelake_sinks::delta::commit::CommitOptions;
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
    job_id: String,
    commit_interval_ms: u64,
    writer: WriterOptions,
    transactions: Option<OpenTable>,
    alerts: Option<OpenTable>,
    parquet_dir: Option<String>,
}

/// A table, its snapshot at start, and its auto-compactor.
struct OpenTable {
    table: DeltaTable,
    snapshot: Snapshot,
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

impl Lake {
    /// Opens (or creates) the tables of `config`. Without a job id in `config`, a fresh
    /// one is chosen.
    pub fn open(config: &LakeConfig) -> Result<Lake, DeltaError> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| DeltaError::Corrupt(format!("cannot start an I/O runtime: {e}")))?;
        let (transactions, alerts) = runtime.block_on(async {
            let transactions = match &config.transactions {
                Some(url) => Some(open_table::<TransactionRow>(url, config).await?),
                None => None,
            };
            let alerts = match &config.alerts {
                Some(url) => Some(open_table::<AlertRow>(url, config).await?),
                None => None,
            };
            Ok::<_, DeltaError>((transactions, alerts))
        })?;
        Ok(Lake {
            job_id: config
                .job_id
                .clone()
                .unwrap_or_else(|| uuid::Uuid::new_v4().to_string()),
            commit_interval_ms: config.commit_interval_ms,
            writer: config.writer.clone(),
            transactions,
            alerts,
            parquet_dir: config.parquet_dir.clone(),
        })
    }

    /// The job id the writers commit as.
    pub fn job_id(&self) -> &str {
        &self.job_id
    }

    /// The commit epoch, in ms of rule time.
    pub fn commit_interval_ms(&self) -> u64 {
        self.commit_interval_ms
    }

    /// The `appId` of global worker `worker`.
    pub fn app_id(&self, worker: usize) -> String {
        format!("{}-w{worker}", self.job_id)
    }

    /// The transactions table's location, if the job writes it.
    pub fn transactions_location(&self) -> Option<&str> {
        self.transactions.as_ref().map(|t| t.table.location())
    }

    /// The alerts table's location, if the job writes it.
    pub fn alerts_location(&self) -> Option<&str> {
        self.alerts.as_ref().map(|t| t.table.location())
    }

    /// The sink of global worker `worker` for the transactions table.
    pub fn transactions_sink(
        &self,
        worker: usize,
    ) -> Option<Result<DeltaSink<TransactionRow>, DeltaError>> {
        self.transactions.as_ref().map(|t| self.sink(t, worker))
    }

    /// The sink of global worker `worker` for the alerts table.
    pub fn alerts_sink(&self, worker: usize) -> Option<Result<DeltaSink<AlertRow>, DeltaError>> {
        self.alerts.as_ref().map(|t| self.sink(t, worker))
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

    /// Ends auto-compaction: waits for running compactions, compacts what was committed
    /// since the last run, and says what was done to each table.
    pub fn finish_compaction(&self) -> Vec<TableCompaction> {
        [&self.transactions, &self.alerts]
            .into_iter()
            .flatten()
            .filter_map(|open| {
                open.compactor.as_ref().map(|compactor| TableCompaction {
                    table: open.table.location().to_owned(),
                    totals: compactor.finish(),
                })
            })
            .collect()
    }

    fn sink<R: ArrowRows>(
        &self,
        open: &OpenTable,
        worker: usize,
    ) -> Result<DeltaSink<R>, DeltaError> {
        let sink = DeltaSink::new(
            open.table.clone(),
            self.app_id(worker),
            worker,
            &open.snapshot,
            self.writer.clone(),
            CommitOptions {
                query_id: self.job_id.clone(),
                ..CommitOptions::default()
            },
        )?;
        Ok(match &open.compactor {
            Some(compactor) => sink.with_compactor(Arc::clone(compactor)),
            None => sink,
        })
    }
}

/// Opens the table at `url` for rows `R`, creating it if there is none, and starts its
/// auto-compactor if `config` asks for one.
async fn open_table<R: ArrowRows>(url: &str, config: &LakeConfig) -> Result<OpenTable, DeltaError> {
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
        compactor,
    })
}
