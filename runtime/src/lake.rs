//! The job's lake outputs: its Delta tables, opened once at start, and the sinks each
//! worker writes them with (docs/semantics.md §5).
//!
//! At start every table is opened (created if missing, with the row type's schema and
//! partitioning, or checked against them), after checking that its store honours
//! put-if-absent, and a job id that committed to it before is checked to run with the
//! same settings (its [`JobIdentity`]). Each worker then commits its own epochs as
//! `<job id>-w<global worker index>` from the snapshot read here, recording the job's
//! identity in every commit — in a commit of its own, or with `--commit-scope process`
//! in the table's [`CommitGroup`] of the process's workers (docs/scaling.md §2).

use std::collections::BTreeMap;
use std::sync::Arc;

use tidelake_sinks::delta::maintenance::auto_compact::{AutoCompactor, CompactionTotals};
use tidelake_sinks::delta::maintenance::optimize::OptimizeOptions;

use tidelake_sinks::delta::files::batches::Batching;
use tidelake_sinks::delta::files::commit::CommitOptions;
use tidelake_sinks::delta::files::constraints::Constraints;
use tidelake_sinks::delta::files::group_commit::CommitGroup;
use tidelake_sinks::delta::files::job_identity::{self, JobIdentity, check_job_identity};
use tidelake_sinks::delta::files::sink::DeltaSink;
use tidelake_sinks::delta::protocol::features::{self, Operation};
use tidelake_sinks::delta::protocol::retention::check_retention_properties;
use tidelake_sinks::delta::protocol::store::check_put_if_absent;
use tidelake_sinks::delta::{DeltaError, DeltaTable, Schema, Snapshot};
use tidelake_sinks::parquet::{ArrowRows, WriterOptions};
use tidelake_sinks::parquet_files::ParquetFileSink;

use crate::config::{CommitScope, LakeConfig};

/// The name of the table `--table` names: the job's enriched transactions.
pub const TRANSACTIONS: &str = "transactions";
/// The name of the table `--alerts-table` names: the job's alerts.
pub const ALERTS: &str = "alerts";

/// A Delta table a pipeline writes: its name and its row type's schema.
#[derive(Clone, Debug, PartialEq)]
pub struct TableDecl {
    /// The table's name in the job ([`TRANSACTIONS`], [`ALERTS`]).
    pub name: &'static str,
    /// The table's schema, partition columns included.
    pub schema: Schema,
    /// The partition columns.
    pub partition_columns: Vec<String>,
}

impl TableDecl {
    /// The table `name` of rows `R`.
    pub fn of<R: ArrowRows>(name: &'static str) -> Self {
        TableDecl {
            name,
            schema: Schema::of_rows::<R>(),
            partition_columns: R::partition_columns()
                .iter()
                .map(|c| (*c).to_owned())
                .collect(),
        }
    }
}

/// The lake outputs of a job, ready for its workers.
pub struct Lake {
    identity: JobIdentity,
    /// How every writer commits: as the job, recording its identity.
    commit: CommitOptions,
    commit_interval_ms: u64,
    writer: WriterOptions,
    /// Which sealed epochs each writer commits together.
    batching: Batching,
    /// The tables the job writes, in the pipeline's order.
    tables: Vec<OpenTable>,
    parquet_dir: Option<String>,
    /// A run of the job may write its epochs again (it restores checkpoints or re-reads
    /// its input): the Parquet files are named by epoch.
    replays: bool,
}

/// A table, its snapshot at start, its row rules, its auto-compactor, and the group
/// its writers commit in (`--commit-scope process`).
struct OpenTable {
    decl: TableDecl,
    table: DeltaTable,
    snapshot: Snapshot,
    constraints: Arc<Constraints>,
    compactor: Option<Arc<AutoCompactor>>,
    group: Option<Arc<CommitGroup>>,
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
    /// Settings that may differ from those the job id committed with: the worker count
    /// of a job restored from a savepoint, after which no epoch was committed.
    pub may_differ: Vec<String>,
}

impl Lake {
    /// Opens (or creates) those of the pipeline's `tables` that `config` gives a
    /// location, for `job`. Without a job id in `config`, a fresh one is chosen.
    pub fn open(
        config: &LakeConfig,
        job: LakeJob,
        tables: &[TableDecl],
    ) -> Result<Lake, DeltaError> {
        let job_id = config
            .job_id
            .clone()
            .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
        let identity = JobIdentity::new(job_id, job.settings.clone());
        let commit = CommitOptions {
            query_id: identity.job_id.clone(),
            job: Some(identity.clone()),
            checkpoints: config.checkpoints,
            ..CommitOptions::default()
        };
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| DeltaError::Corrupt(format!("cannot start an I/O runtime: {e}")))?;
        let tables = runtime.block_on(async {
            let mut open = Vec::new();
            for decl in tables {
                if let Some(url) = location(config, decl.name) {
                    open.push(open_table(url, decl, config, &identity, &job, &commit).await?);
                }
            }
            Ok::<_, DeltaError>(open)
        })?;
        Ok(Lake {
            identity,
            commit,
            commit_interval_ms: config.commit_interval_ms,
            writer: config.writer.clone(),
            batching: Batching {
                max_commit_rate: config.max_commit_rate,
                target_bytes: config.writer.target_file_size as u64,
            },
            tables,
            parquet_dir: config.parquet_dir.clone(),
            replays: config.job_id.is_some() && job.replayable,
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

    /// The location of the table `name`, if the job writes it.
    pub fn location(&self, name: &str) -> Option<&str> {
        self.table(name).map(|t| t.table.location())
    }

    /// The sink of global worker `worker` for the table `name` of rows `R`, if the job
    /// writes it; the rows its constraints keep out are in the reports of its epochs. An
    /// error if `R` is not the row type the pipeline declared the table with.
    pub fn sink<R: ArrowRows>(
        &self,
        name: &str,
        worker: usize,
    ) -> Option<Result<DeltaSink<R>, DeltaError>> {
        let open = self.table(name)?;
        let declared = TableDecl::of::<R>(open.decl.name);
        if declared != open.decl {
            return Some(Err(DeltaError::SchemaMismatch {
                table: open.table.location().to_owned(),
                detail: format!(
                    "the pipeline declared the {name} table with other rows than it writes to it: {}",
                    declared
                        .schema
                        .mismatch(&open.decl.schema)
                        .unwrap_or_else(|| "other partition columns".to_owned())
                ),
            }));
        }
        Some(self.open_sink(open, worker))
    }

    /// The Parquet file sink of global worker `worker`.
    pub fn parquet_sink<R: ArrowRows>(
        &self,
        worker: usize,
    ) -> Option<Result<ParquetFileSink<R>, DeltaError>> {
        self.parquet_dir.as_deref().map(|dir| match self.replays {
            true => {
                ParquetFileSink::named_by_epoch(dir, worker, self.writer.clone(), self.job_id())
            }
            false => ParquetFileSink::new(dir, worker, self.writer.clone()),
        })
    }

    fn table(&self, name: &str) -> Option<&OpenTable> {
        self.tables.iter().find(|t| t.decl.name == name)
    }

    /// What auto-compaction has done to each table so far (empty without it).
    pub fn compaction(&self) -> Vec<TableCompaction> {
        self.each_compactor(AutoCompactor::totals)
    }

    /// The tables the job writes, to read back (for the monitoring page).
    pub fn tables(&self) -> Vec<DeltaTable> {
        self.tables.iter().map(|open| open.table.clone()).collect()
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
        self.tables
            .iter()
            .filter_map(|open| {
                open.compactor.as_deref().map(|compactor| TableCompaction {
                    table: open.table.location().to_owned(),
                    totals: totals(compactor),
                })
            })
            .collect()
    }

    /// A sink of `open` for global worker `worker`.
    fn open_sink<R: ArrowRows>(
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
            self.commit.clone(),
        )?
        .with_batching(self.batching)
        .with_constraints(Arc::clone(&open.constraints));
        let sink = match &open.group {
            Some(group) => sink.with_group(Arc::clone(group)),
            None => sink,
        };
        Ok(match &open.compactor {
            Some(compactor) => sink.with_compactor(Arc::clone(compactor)),
            None => sink,
        })
    }
}

/// Where `config` puts the table `name`, if anywhere.
fn location<'c>(config: &'c LakeConfig, name: &str) -> Option<&'c str> {
    match name {
        TRANSACTIONS => config.transactions.as_deref(),
        ALERTS => config.alerts.as_deref(),
        _ => config.tables.get(name).map(String::as_str),
    }
}

/// Opens the table at `url` as `decl` declares it, creating it if there is none, checks
/// that the job may write it (`identity`, `replayable`: see [`LakeJob`]), and starts its
/// auto-compactor and its commit group if `config` asks for them (the group commits
/// with `commit`).
async fn open_table(
    url: &str,
    decl: &TableDecl,
    config: &LakeConfig,
    identity: &JobIdentity,
    job: &LakeJob,
    commit: &CommitOptions,
) -> Result<OpenTable, DeltaError> {
    let table = DeltaTable::open_url(url)?;
    check_put_if_absent(table.store().as_ref(), table.root(), url).await?;
    let configuration = BTreeMap::from([("delta.checkpointInterval".to_owned(), "10".to_owned())]);
    let engine_info = CommitOptions::default().engine_info;
    let snapshot = table
        .create_or_open(
            &decl.schema,
            &decl
                .partition_columns
                .iter()
                .map(String::as_str)
                .collect::<Vec<_>>(),
            configuration,
            &engine_info,
        )
        .await?;
    check_retention_properties(&snapshot, url)?;
    if !job.replayable && !job_identity::committed_writers(&snapshot, &identity.job_id).is_empty() {
        return Err(DeltaError::JobNotReplayable {
            table: url.to_owned(),
            job_id: identity.job_id.clone(),
        });
    }
    check_job_identity(&table, &snapshot, identity, &job.may_differ).await?;
    let metadata = snapshot
        .metadata
        .as_ref()
        .ok_or_else(|| DeltaError::Corrupt(format!("{url}: the log has no metaData")))?;
    let constraints = Arc::new(Constraints::of_table(metadata, url)?);
    let compactor = match config.auto_compact {
        Some(auto) => match features::check(&snapshot, url, Operation::Optimize) {
            // Refused now rather than by every background compaction.
            Err(e) if auto.asked => return Err(e),
            Err(e) => {
                tracing::warn!(table = url, "not compacting {url} while writing it: {e}");
                None
            }
            Ok(()) => {
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
        },
        None => None,
    };
    let group = (config.commit_scope == CommitScope::Process)
        .then(|| CommitGroup::new(table.clone(), &snapshot, commit.clone()));
    Ok(OpenTable {
        decl: decl.clone(),
        table,
        snapshot,
        constraints,
        compactor,
        group,
    })
}
