//! The fraud job: builds its dataflow on every worker and runs it to the end.

use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::{Duration, Instant};

use timely::dataflow::operators::vec::Map;
use timely::dataflow::operators::{Inspect, Probe};
use timely::dataflow::{ProbeHandle, Scope, StreamVec};

use tidelake_operators::{FraudDetector, KeyedProcess};
use tidelake_sinks::delta::DeltaError;
use tidelake_sinks::delta::constraints::{OnRejected, Rejected};
use tidelake_sinks::epochs::{EpochOutcome, EpochReport, EpochWriter, WriteEpochs};
use tidelake_sinks::{JsonLinesWriter, SinkError, WriteJsonLines};

use crate::alerts_table::AlertRow;

use crate::clock::{Clock, SystemClock};
use crate::cluster::{self, ClusterError};
use crate::config::{AlertOutput, JobConfig};
use crate::control::JobControl;
use crate::dead_letter::{DeadLetter, Reason};
use crate::fault_injection;
use crate::lake::{Lake, LakeJob, TableCompaction};
use crate::latency::{self, AlertLatency, Histogram};
use crate::metrics::{Metrics, Totals, WorkerMetrics, add, record_state_size};
use crate::monitor::{Monitor, MonitorError, Phase, Server};
use crate::panic;
use crate::report::{ProcessReport, peak_rss_bytes};
use crate::sources::operator::{SourceSettings, TimeMode, read_source};
use crate::sources::{Source, SourceError};
use crate::transactions_table::TransactionRow;
use crate::watchdog::Watchdog;

/// Why a job did not run to completion.
#[derive(Debug, thiserror::Error)]
pub enum JobError {
    /// The configuration is invalid.
    #[error("invalid configuration: {0}")]
    Config(String),
    /// The source could not be set up.
    #[error(transparent)]
    Source(#[from] SourceError),
    /// An output could not be written.
    #[error(transparent)]
    Sink(#[from] SinkError),
    /// A table could not be opened or created.
    #[error(transparent)]
    Table(#[from] DeltaError),
    /// The processes of the cluster did not connect.
    #[error(transparent)]
    Cluster(#[from] ClusterError),
    /// The monitoring endpoint could not start (its address is taken or wrong).
    #[error(transparent)]
    Monitor(#[from] MonitorError),
    /// The job stopped on an error while running.
    #[error("job failed: {0}")]
    Failed(String),
}

/// What a finished job did.
#[derive(Clone, Debug)]
pub struct JobReport {
    /// Counters summed over workers.
    pub totals: Totals,
    /// Wall time from start to end.
    pub elapsed: Duration,
    /// True when the job ended because a stop was requested rather than at the end of
    /// its input.
    pub stopped: bool,
    /// The job id the table writers committed as.
    pub job_id: String,
    /// The transactions table, if written.
    pub transactions_table: Option<String>,
    /// The alerts table, if written.
    pub alerts_table: Option<String>,
    /// What auto-compaction did to each table (empty without `--auto-compact`).
    pub compaction: Vec<TableCompaction>,
    /// This process's index in the cluster (0 for a single process).
    pub process: usize,
    /// Processes in the cluster (1 for a single process).
    pub processes: usize,
    /// Worker threads in this process.
    pub workers: usize,
    /// Every alert's latency, if the config asked for it.
    pub alert_latency: Option<Histogram>,
    /// What the source has to say about what it read (an input named twice and read
    /// once, …).
    pub source_notes: Vec<String>,
}

impl JobReport {
    /// Accepted records per second of wall time.
    pub fn events_per_second(&self) -> f64 {
        self.totals.events as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    /// The report as `--report-json` writes it, with this process's peak RSS.
    pub fn process_report(&self) -> ProcessReport {
        ProcessReport {
            process: self.process,
            processes: self.processes,
            workers: self.workers,
            elapsed_secs: self.elapsed.as_secs_f64(),
            stopped: self.stopped,
            job_id: self.job_id.clone(),
            totals: self.totals.clone(),
            peak_rss_bytes: peak_rss_bytes(),
            alert_latency: self.alert_latency.clone(),
        }
    }
}

/// A configured fraud job, ready to run.
pub struct Job {
    config: JobConfig,
    clock: Arc<dyn Clock>,
    control: Arc<JobControl>,
    metrics: Arc<Metrics>,
    /// The monitoring endpoint, while the job has one.
    server: std::sync::Mutex<Option<Server>>,
}

/// What every worker of the job shares.
struct Shared {
    source: Arc<dyn Source>,
    settings: SourceSettings,
    alerts: Option<Arc<JsonLinesWriter>>,
    dead_letters: Arc<JsonLinesWriter>,
    enriched: Option<Arc<JsonLinesWriter>>,
    lake: Lake,
    metrics: Arc<Metrics>,
    control: Arc<JobControl>,
    latency: Option<Arc<AlertLatency>>,
}

impl Job {
    /// Validates `config` into a job.
    pub fn new(config: JobConfig) -> Result<Self, JobError> {
        config.validate().map_err(JobError::Config)?;
        let metrics = Arc::new(Metrics::new(config.workers));
        Ok(Job {
            config,
            clock: Arc::new(SystemClock),
            control: Arc::new(JobControl::default()),
            metrics,
            server: std::sync::Mutex::new(None),
        })
    }

    /// Uses `clock` for ingestion time.
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// The handle that stops the job (Ctrl-C) and carries its first error.
    pub fn control(&self) -> Arc<JobControl> {
        Arc::clone(&self.control)
    }

    /// The job's live counters.
    pub fn metrics(&self) -> Arc<Metrics> {
        Arc::clone(&self.metrics)
    }

    /// Runs the job on `workers` threads until its input ends or it is stopped.
    pub fn run(&self) -> Result<JobReport, JobError> {
        let config = &self.config;
        let source = config.source.build()?;
        self.metrics.set_partitions(source.partitions());
        if config.cluster.is_some()
            && let Some(why) = source.single_process_only()
        {
            return Err(JobError::Config(why));
        }
        let alerts = match &config.alerts {
            AlertOutput::Stdout => Some(JsonLinesWriter::stdout()),
            AlertOutput::File(path) => Some(JsonLinesWriter::create(path)?),
            AlertOutput::Discard => None,
        };
        let dead_letters = JsonLinesWriter::create(&config.dead_letters)?;
        let enriched = config
            .enriched
            .as_deref()
            .map(JsonLinesWriter::create)
            .transpose()?;
        let lake = Lake::open(
            &config.lake,
            LakeJob {
                settings: config.identity_settings(),
                replayable: config.time == TimeMode::Event,
            },
        )?;
        let (job_id, transactions_table, alerts_table) = (
            lake.job_id().to_owned(),
            lake.transactions_location().map(str::to_owned),
            lake.alerts_location().map(str::to_owned),
        );
        let shared = Arc::new(Shared {
            source,
            settings: SourceSettings {
                time: config.time,
                tick: config.tick_ms,
                out_of_orderness: config.out_of_orderness_ms,
                idle_timeout: config.idle_timeout,
                batch_size: config.batch_size,
                max_in_flight: config.max_in_flight,
                clock: Arc::clone(&self.clock),
            },
            alerts: alerts.clone(),
            dead_letters: Arc::clone(&dead_letters),
            enriched: enriched.clone(),
            lake,
            metrics: Arc::clone(&self.metrics),
            control: Arc::clone(&self.control),
            latency: config
                .alert_latency
                .then(|| Arc::new(AlertLatency::new(config.workers))),
        });

        tracing::info!(
            job_id = %job_id,
            workers = config.workers,
            "job {job_id}: {} worker(s), {} partition(s) of {}{}",
            config.workers,
            shared.source.partitions(),
            shared.source.source_name(0),
            match (&transactions_table, &alerts_table) {
                (Some(t), Some(a)) => format!(", tables {t} and {a}"),
                (Some(t), None) | (None, Some(t)) => format!(", table {t}"),
                (None, None) => String::new(),
            }
        );
        let monitor = self.start_monitor(&shared, &job_id)?;
        panic::abort_on_worker_panic();
        let workers = config.workers;
        let (builders, communication) = match &config.cluster {
            None => timely::CommunicationConfig::Process(workers)
                .try_build()
                .map_err(JobError::Failed)?,
            Some(cluster) => {
                panic::name_cluster_peers(&cluster.addresses);
                let formed = cluster::connect(cluster, workers, &config.cluster_settings())?;
                tracing::info!(
                    process = cluster.process,
                    processes = cluster.addresses.len(),
                    "cluster formed: process {} of {}, {} peer(s) connected and authenticated",
                    cluster.process,
                    cluster.addresses.len(),
                    cluster.addresses.len() - 1
                );
                formed
            }
        };
        if let Some(monitor) = &monitor {
            monitor.set_phase(Phase::Running);
        }
        let dataflow = monitor.as_ref().map(|m| Arc::clone(m.dataflow()));
        let started = Instant::now();
        let watchdog = config.stall_timeout.map(|timeout| {
            Watchdog::start(
                Arc::clone(&self.metrics),
                timeout,
                Arc::clone(&self.control),
                STALL_GRACE,
            )
        });
        let dataflow_shared = Arc::clone(&shared);
        let guards = timely::execute::execute_from(
            builders,
            communication,
            timely::WorkerConfig::default(),
            move |worker| {
                if let Some(dataflow) = &dataflow {
                    dataflow.register(worker, worker.index());
                }
                let shared = &dataflow_shared;
                panic::mark_worker_thread();
                let probe = ProbeHandle::new();
                let committed = ProbeHandle::new();
                let slot = worker.index() % workers;
                worker.dataflow::<u64, _, _>(|scope| {
                    fraud_dataflow(scope, shared, slot, &probe, &committed)
                });
            },
        )
        .map_err(JobError::Failed)?;
        for result in guards.join() {
            result.map_err(JobError::Failed)?;
        }
        let elapsed = started.elapsed();
        drop(watchdog);
        if let Some(monitor) = &monitor {
            monitor.set_phase(Phase::Finished);
        }
        let compaction = shared.lake.finish_compaction();

        for writer in alerts.iter().chain([&dead_letters]).chain(enriched.iter()) {
            writer.finish()?;
        }
        if let Some(error) = self.control.error() {
            return Err(JobError::Failed(error));
        }
        Ok(JobReport {
            totals: self.metrics.totals(),
            elapsed,
            stopped: self.control.should_stop(),
            job_id,
            transactions_table,
            alerts_table,
            compaction,
            process: config.cluster.as_ref().map_or(0, |c| c.process),
            processes: config.cluster.as_ref().map_or(1, |c| c.addresses.len()),
            workers,
            alert_latency: shared.latency.as_ref().map(|l| l.merged()),
            source_notes: shared.source.notes(),
        })
    }
}

impl Job {
    /// Starts serving the job's metrics, health and page on `--metrics-addr`, if set;
    /// the server stays with the job until [`linger`](Self::linger).
    fn start_monitor(
        &self,
        shared: &Arc<Shared>,
        job_id: &str,
    ) -> Result<Option<Arc<Monitor>>, JobError> {
        let Some(address) = &self.config.metrics_addr else {
            return Ok(None);
        };
        let cluster = self.config.cluster.as_ref();
        let lake = Arc::clone(shared);
        let monitor = Arc::new(Monitor::new(
            job_id.to_owned(),
            cluster.map_or(0, |c| c.process),
            cluster.map_or(1, |c| c.addresses.len()),
            self.config.workers,
            Arc::clone(&self.metrics),
            Arc::new(SystemClock),
            Box::new(move || lake.lake.compaction()),
            shared.lake.tables(),
        ));
        let server = Server::start(address, Arc::clone(&monitor))?;
        tracing::info!(
            address = server.address(),
            "serving metrics on http://{}/metrics, the job's page on http://{}/",
            server.address(),
            server.address()
        );
        *self.server.lock().unwrap_or_else(|e| e.into_inner()) = Some(server);
        Ok(Some(monitor))
    }

    /// Keeps serving the final figures for `--metrics-linger` after the job has ended
    /// (so a scraper gets them), unless the job was stopped or is asked to stop; then
    /// stops the server.
    pub fn linger(&self) {
        let server = self.server.lock().unwrap_or_else(|e| e.into_inner()).take();
        let Some(server) = server else { return };
        let stopped = self.control.should_stop();
        let until = Instant::now() + self.config.metrics_linger;
        while !stopped && !self.control.should_stop() && Instant::now() < until {
            std::thread::sleep(Duration::from_millis(50));
        }
        drop(server);
    }
}

/// How long a stalled job gets to stop by itself before the process exits.
const STALL_GRACE: Duration = Duration::from_secs(2);

/// The fraud job on one worker: source → fraud detector → alerts and enriched rows →
/// JSON lines, Delta tables and Parquet files. `probe` sees the end of the dataflow (for
/// flow control), `committed` the epochs the lake sinks made durable.
fn fraud_dataflow<'s>(
    scope: Scope<'s, u64>,
    job: &Shared,
    slot: usize,
    probe: &ProbeHandle<u64>,
    committed: &ProbeHandle<u64>,
) {
    let (transactions, dead_letters) = read_source(
        scope,
        Arc::clone(&job.source),
        job.settings.clone(),
        probe.clone(),
        Arc::clone(&job.metrics),
        slot,
        Arc::clone(&job.control),
    );
    dead_letters.write_json_lines("DeadLetters", Arc::clone(&job.dead_letters));
    let transactions = fault_injection::panic_if_asked(transactions, scope.index());

    let metrics = Arc::clone(&job.metrics);
    let on_state_size = move |size| record_state_size(metrics.worker(slot), size);
    let (enriched, alerts) = transactions.keyed_process_sized(
        "FraudDetector",
        job.settings.tick,
        FraudDetector::new(),
        on_state_size,
    );
    let alerts = latency::measure(alerts, job.latency.as_ref(), slot);

    let alerts = count_into(alerts, &job.metrics, slot, |w| &w.alerts).probe_with(probe);
    if let Some(writer) = &job.alerts {
        alerts
            .clone()
            .write_json_lines("Alerts", Arc::clone(writer));
    }
    let enriched = count_into(enriched, &job.metrics, slot, |w| &w.enriched).probe_with(probe);
    if let Some(writer) = &job.enriched {
        enriched
            .clone()
            .write_json_lines("Enriched", Arc::clone(writer));
    }

    let worker = scope.index();
    let to_dead_letters = |table: &str| job.rejected_rows(table, slot);
    if let Some(sink) = job.lake.transactions_sink(worker, to_dead_letters) {
        let rows = enriched.clone().map(TransactionRow);
        write_lake(rows, "TransactionsTable", sink, job, slot, committed);
    }
    if let Some(sink) = job.lake.parquet_sink(worker) {
        let rows = enriched.map(TransactionRow);
        write_lake(rows, "ParquetFiles", sink, job, slot, committed);
    }
    if let Some(sink) = job.lake.alerts_sink(worker, to_dead_letters) {
        write_lake(
            alerts.map(AlertRow),
            "AlertsTable",
            sink,
            job,
            slot,
            committed,
        );
    }
}

impl Shared {
    /// Where worker `slot`'s sink of `table` hands the rows the table's constraints keep
    /// out: the dead letters, with reason `constraint`.
    fn rejected_rows(&self, table: &str, slot: usize) -> OnRejected {
        let (table, writer, metrics) = (
            table.to_owned(),
            Arc::clone(&self.dead_letters),
            Arc::clone(&self.metrics),
        );
        Arc::new(move |rows: Vec<Rejected>| {
            metrics
                .worker(slot)
                .dead_letter(Reason::Constraint, rows.len() as u64);
            writer.write_records(
                rows.into_iter()
                    .map(|r| DeadLetter::constraint(&table, &r.constraint, r.row)),
            );
        })
    }
}

/// Writes `rows` with a lake sink (or fails the job if the sink could not be made),
/// counting what it commits into the worker's metrics.
fn write_lake<'s, W: EpochWriter>(
    rows: StreamVec<'s, u64, W::Row>,
    name: &str,
    sink: Result<W, DeltaError>,
    job: &Shared,
    slot: usize,
    committed: &ProbeHandle<u64>,
) {
    let sink = match sink {
        Ok(sink) => sink,
        Err(e) => return job.control.fail(format!("{name}: {e}")),
    };
    let control = Arc::clone(&job.control);
    let prefix = name.to_owned();
    let on_error = move |e: String| control.fail(format!("{prefix}: {e}"));
    let metrics = Arc::clone(&job.metrics);
    rows.write_epochs(name, job.lake.commit_interval_ms(), sink, on_error)
        .inspect_core(move |event| match event {
            Ok((_, reports)) => reports
                .iter()
                .for_each(|report| count_epoch(metrics.worker(slot), report)),
            Err(_frontier) => add(&metrics.worker(slot).progress, 1),
        })
        .probe_with(committed);
}

/// Adds a sealed epoch to the worker's counters.
fn count_epoch(counters: &WorkerMetrics, report: &EpochReport) {
    match report.outcome {
        EpochOutcome::Committed { attempts, .. } => {
            add(&counters.commits, 1);
            add(&counters.commit_attempts, u64::from(attempts));
            add(&counters.rows_committed, report.rows);
            if let Some(latency) = report.commit_latency {
                counters.commit_latency.observe(latency.as_secs_f64());
            }
        }
        EpochOutcome::AlreadyCommitted => {
            add(&counters.epochs_skipped, 1);
            add(&counters.rows_skipped, report.rows);
        }
        EpochOutcome::Written | EpochOutcome::Empty => {}
    }
    add(&counters.files, report.files);
    add(&counters.bytes, report.bytes);
}

/// Passes a stream through, adding the number of records to one of the worker's
/// counters, and each move of its frontier to the worker's progress.
fn count_into<'s, D: Clone + 'static>(
    stream: timely::dataflow::StreamVec<'s, u64, D>,
    metrics: &Arc<Metrics>,
    slot: usize,
    counter: fn(&crate::metrics::WorkerMetrics) -> &AtomicU64,
) -> timely::dataflow::StreamVec<'s, u64, D> {
    let metrics = Arc::clone(metrics);
    stream.inspect_core(move |event| match event {
        Ok((_, data)) => add(counter(metrics.worker(slot)), data.len() as u64),
        Err(_frontier) => add(&metrics.worker(slot).progress, 1),
    })
}
