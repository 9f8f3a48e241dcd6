//! A job: a [`Pipeline`] run on every worker, with everything it shares — the source
//! and its dead letters, the tables, metrics, monitoring, the cluster and the stall
//! watchdog — until its input ends or it is stopped.

use std::cell::RefCell;
use std::ops::ControlFlow;
use std::path::Path;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use timely::dataflow::{ProbeHandle, Scope};

use tidelake_operators::Transaction;
use tidelake_sinks::delta::DeltaError;
use tidelake_sinks::{JsonLinesWriter, SinkError};

use crate::checkpoint::process::{Restored, WorkerCheckpoints};
use crate::checkpoint::restore::{self, RestoreError};
use crate::checkpoint::{CheckpointError, Layout, at_rule_time, dataflow, stop};
use crate::clock::{Clock, SystemClock};
use crate::cluster::{self, ClusterError};
use crate::config::{AlertOutput, ConfigError, JobConfig};
use crate::control::{FailOrExit, JobControl};
use crate::fault_injection;
use crate::jobs;
use crate::lake::{Lake, LakeJob, TableCompaction};
use crate::latency::{AlertLatency, Histogram};
use crate::metrics::{Metrics, Totals};
use crate::monitor::{Monitor, MonitorError, Phase, Server};
use crate::panic;
use crate::periodic::Periodic;
use crate::pipeline::{
    ALERTS, ALERTS_OUTPUT, DEAD_LETTERS_OUTPUT, ENRICHED_OUTPUT, Pipeline, Shared, Stage,
    TRANSACTIONS,
};
use crate::report::{CheckpointRef, CheckpointReport, ProcessReport, peak_rss_bytes};
use crate::sources::operator::{SourceSettings, TimeMode, read_source};
use crate::sources::{Source, SourceError, SourceRecord};
use crate::watchdog::Watchdog;

/// Why a job did not run to completion.
#[derive(Debug, thiserror::Error)]
pub enum JobError {
    /// The configuration is invalid.
    #[error("invalid configuration: {0}")]
    Config(#[from] ConfigError),
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
    /// The job's checkpoints could not be opened, or do not fit the job.
    #[error(transparent)]
    Checkpoint(#[from] RestoreError),
    /// The job stopped on an error while running.
    #[error("job failed: {0}")]
    Failed(String),
}

/// Exit code of a job that failed.
pub const EXIT_FAILED: u8 = 1;
/// Exit code of a usage or configuration error.
pub const EXIT_USAGE: u8 = 2;
/// Exit code of a cluster process that could not listen on its address (`launch`
/// starts the cluster again on other ports).
pub const EXIT_CLUSTER_ADDRESS: u8 = 3;

impl JobError {
    /// The process's exit code for this error (docs/semantics.md §7): [`EXIT_USAGE`] for
    /// what the configuration or the table it names decides (a bad option, a source
    /// that cannot be set up, a table that does not fit the job, a cluster without a
    /// secret off loopback, a metrics address taken), [`EXIT_CLUSTER_ADDRESS`] when a
    /// cluster process cannot listen, [`EXIT_FAILED`] for the rest.
    pub fn exit_code(&self) -> u8 {
        match self {
            JobError::Source(SourceError::Unreachable { .. }) => EXIT_FAILED,
            JobError::Source(SourceError::Table(e)) if !e.is_configuration() => EXIT_FAILED,
            JobError::Config(_)
            | JobError::Source(_)
            | JobError::Monitor(_)
            | JobError::Cluster(ClusterError::NoSecret { .. }) => EXIT_USAGE,
            JobError::Table(e) if e.is_configuration() => EXIT_USAGE,
            JobError::Checkpoint(RestoreError::Refused(_))
            | JobError::Checkpoint(RestoreError::Store(CheckpointError::Location { .. })) => {
                EXIT_USAGE
            }
            JobError::Cluster(ClusterError::Bind { .. }) => EXIT_CLUSTER_ADDRESS,
            _ => EXIT_FAILED,
        }
    }
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
    /// What the job restored and took of its checkpoints, if it takes any.
    pub checkpoints: Option<CheckpointReport>,
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
            checkpoints: self.checkpoints.clone(),
        }
    }
}

/// A configured job, ready to run: a pipeline reading records `R`.
pub struct Job<R = Transaction> {
    config: JobConfig,
    pipeline: Arc<dyn Pipeline<Record = R>>,
    clock: Arc<dyn Clock>,
    control: Arc<JobControl>,
    metrics: Arc<Metrics>,
    /// The monitoring endpoint, while the job has one.
    server: std::sync::Mutex<Option<Server>>,
}

impl Job {
    /// Validates `config` into a job running its built-in rule (`config.rule`).
    pub fn new(config: JobConfig) -> Result<Self, JobError> {
        match jobs::pipeline(&config.rule)? {
            jobs::BuiltIn::Transactions(pipeline) => Job::with_pipeline(config, pipeline),
            jobs::BuiltIn::Rich(_) => Err(ConfigError::RecordType(
                "--rule features reads richer transactions: build it with Job::<RichTransaction>::with_pipeline".into(),
            )
            .into()),
        }
    }
}

impl<R: SourceRecord> Job<R> {
    /// Validates `config` into a job running `pipeline` (`config.rule` is not used),
    /// reading the records `R` its source decodes.
    pub fn with_pipeline(
        config: JobConfig,
        pipeline: Arc<dyn Pipeline<Record = R>>,
    ) -> Result<Self, JobError> {
        config.validate()?;
        let metrics = Arc::new(Metrics::new(config.workers));
        Ok(Job {
            config,
            pipeline,
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
        let source = R::source(&config.source)?;
        self.metrics.set_partitions(source.partitions());
        if config.cluster.is_some()
            && let Some(why) = source.single_process_only()
        {
            return Err(ConfigError::SingleProcessOnly(why).into());
        }
        let mut rule = self.pipeline.settings();
        rule.extend(source.settings());
        let lateness = self.pipeline.allowed_lateness();
        if lateness > 0 {
            rule.push(("allowed lateness".to_owned(), format!("{lateness}ms")));
        }
        let identity = config.identity_settings(&rule);
        let (process, processes) = config
            .cluster
            .as_ref()
            .map_or((0, 1), |c| (c.process, c.addresses.len()));
        let location = config.checkpoint_location();
        let checkpoints = match &location {
            None => None,
            Some(location) => Some(Arc::new(restore::open(restore::Request {
                location,
                job_id: config.lake.job_id.as_deref().unwrap_or_default(),
                settings: config.checkpoint_settings(&rule),
                layout: Layout {
                    processes: processes as u32,
                    workers: config.workers as u32,
                    key_groups: config.checkpoints.key_groups,
                },
                interval: config.checkpoint_interval_ms(),
                retained: config.checkpoints.retained,
                ignore_unusable: config.checkpoints.ignore_unusable,
            })?)),
        };
        if let Some(checkpoints) = &checkpoints {
            let source = Arc::clone(&source);
            checkpoints.on_complete(Box::new(move |resume| source.checkpoint_complete(resume)));
        }
        let restored = checkpoints.as_ref().and_then(|c| c.restored.as_ref());
        if let Some(restored) = restored {
            let manifest = &restored.manifest;
            tracing::info!(
                checkpoint = manifest.id,
                rule_time = manifest.rule_time,
                "restoring {} {} of {}, at {}, taken by {} process(es) of {} worker(s)",
                manifest.kind.name(),
                manifest.id,
                location.as_deref().unwrap_or_default(),
                at_rule_time(manifest.rule_time),
                manifest.layout.processes,
                manifest.layout.workers
            );
        }
        // With checkpoints, worker 0 writes the outputs, in time order.
        let outputs = Outputs::open(config, restored, checkpoints.is_none() || process == 0)?;
        let rescaled = restored.is_some_and(|r| {
            (r.manifest.layout.processes, r.manifest.layout.workers)
                != (processes as u32, config.workers as u32)
        });
        let lake = Lake::open(
            &config.lake,
            LakeJob {
                settings: identity,
                replayable: config.time == TimeMode::Event,
                may_differ: restore::may_differ(restored.is_some(), rescaled),
            },
            &self.pipeline.tables(),
        )?;
        let (job_id, transactions_table, alerts_table) = (
            lake.job_id().to_owned(),
            lake.location(TRANSACTIONS).map(str::to_owned),
            lake.location(ALERTS).map(str::to_owned),
        );
        let shared = Arc::new(Shared {
            settings: SourceSettings {
                time: config.time,
                tick: config.tick_ms,
                out_of_orderness: config.out_of_orderness_ms,
                allowed_lateness: lateness,
                idle_timeout: config.idle_timeout,
                batch_size: config.batch_size,
                max_in_flight: config.max_in_flight,
                clock: Arc::clone(&self.clock),
            },
            key_groups: config.checkpoints.key_groups,
            in_cluster: config.cluster.is_some(),
            checkpoints: checkpoints.clone(),
            alerts: outputs.alerts.clone(),
            kafka_alerts: match &config.alerts {
                AlertOutput::Kafka(kafka) => Some(kafka.clone()),
                _ => None,
            },
            transactions_topic: config.transactions_topic.clone(),
            job_id: job_id.clone(),
            dead_letters: Arc::clone(&outputs.dead_letters),
            enriched: outputs.enriched.clone(),
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
            source.partitions(),
            source.source_name(0),
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
                let restored_id =
                    restored.map_or("(none)".to_owned(), |r| r.manifest.id.to_string());
                let settings = config
                    .cluster_settings()
                    .into_iter()
                    .map(|(name, value)| (name.to_owned(), value))
                    .chain(rule)
                    .chain([
                        (
                            "checkpoints".to_owned(),
                            location.clone().unwrap_or_else(|| "(none)".to_owned()),
                        ),
                        ("restored checkpoint".to_owned(), restored_id),
                    ])
                    .collect();
                let formed = cluster::connect(cluster, workers, settings)?;
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
        // A failed process of a cluster holds its sources back and exits, rather than let
        // the others run on past what it never read (docs/checkpoints.md §3).
        let _exit_on_failure = config.cluster.as_ref().map(|_| {
            let control = Arc::clone(&self.control);
            let mut exit = FailOrExit::new(Arc::clone(&control), STALL_GRACE);
            Periodic::start("tidelake:failure", Duration::from_millis(20), move || {
                if let Some(error) = control.error() {
                    exit.fail(error);
                    exit.exit_if_overdue();
                }
                ControlFlow::Continue(())
            })
        });
        let watchdog = config.stall_timeout.map(|timeout| {
            Watchdog::start(
                Arc::clone(&self.metrics),
                timeout,
                Arc::clone(&self.control),
                STALL_GRACE,
            )
        });
        let dataflow_shared = Arc::clone(&shared);
        let dataflow_source = Arc::clone(&source);
        let pipeline = Arc::clone(&self.pipeline);
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
                    let source = Arc::clone(&dataflow_source);
                    build_dataflow(
                        scope,
                        shared,
                        source,
                        pipeline.as_ref(),
                        slot,
                        &probe,
                        &committed,
                    )
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

        for writer in outputs.all() {
            writer.finish()?;
        }
        if let Some(error) = self.control.error() {
            return Err(JobError::Failed(error));
        }
        let checkpoints = checkpoints.as_ref().map(|c| {
            let written = c.written();
            CheckpointReport {
                location: location.clone().unwrap_or_default(),
                restored: c.restored.as_ref().map(|r| CheckpointRef::of(&r.manifest)),
                taken: written.count,
                last: written.last.as_ref().map(CheckpointRef::of),
            }
        });
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
            source_notes: source.notes(),
            checkpoints,
        })
    }
}

impl<R> Job<R> {
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

/// The job on one worker: the source, its dead letters, and `pipeline` on its accepted
/// records. `probe` sees the end of the dataflow (for flow control), `committed` the
/// epochs the lake sinks made durable.
fn build_dataflow<'s, R: SourceRecord>(
    scope: Scope<'s, u64>,
    job: &Shared,
    source: Arc<dyn Source<R>>,
    pipeline: &dyn Pipeline<Record = R>,
    slot: usize,
    probe: &ProbeHandle<u64>,
    committed: &ProbeHandle<u64>,
) {
    // With checkpoints: the worker's part in them, the agreement on a stop, and the
    // operator that writes its parts.
    let checkpoints = job.checkpoints.as_ref().map(|shared| {
        let control = Arc::clone(&job.control);
        let stop = stop::build(scope, Arc::clone(&control));
        let metrics = Arc::clone(&job.metrics);
        WorkerCheckpoints::new(Arc::clone(shared), control, metrics, scope.index(), stop)
    });
    let parts = checkpoints
        .as_ref()
        .map(|worker| dataflow::parts(scope, Rc::clone(worker)));
    let (records, dead_letters) = read_source(
        scope,
        source,
        job.settings.clone(),
        probe.clone(),
        Arc::clone(&job.metrics),
        slot,
        Arc::clone(&job.control),
        checkpoints.as_ref().map(|worker| worker.component()),
        job.in_cluster,
    );
    let records = fault_injection::panic_if_asked(records, scope.index());
    let stage = Stage {
        scope,
        job,
        slot,
        probe: probe.clone(),
        committed: committed.clone(),
        checkpoints: checkpoints.clone(),
        dead_letters: RefCell::new(vec![dead_letters]),
    };
    pipeline.build(&stage, records);
    stage.write_dead_letters();
    if let (Some(worker), Some(parts)) = (checkpoints, parts) {
        dataflow::manifests(parts, worker, committed.clone());
    }
}

/// The job's JSON-lines outputs in this process.
struct Outputs {
    alerts: Option<Arc<JsonLinesWriter>>,
    dead_letters: Arc<JsonLinesWriter>,
    enriched: Option<Arc<JsonLinesWriter>>,
}

impl Outputs {
    /// Opens the outputs `config` names: created, or cut back to what `restored`
    /// recorded of them; `writes` is false in the processes that do not write them
    /// (with checkpoints, process 0 does).
    fn open(
        config: &JobConfig,
        restored: Option<&Restored>,
        writes: bool,
    ) -> Result<Outputs, SinkError> {
        // Every process builds the same dataflow: one that does not write an output
        // has a writer to nowhere in its place.
        let open =
            |output: &str, path: &Path| match (writes, restored.and_then(|r| r.output(output))) {
                (false, _) => Ok(JsonLinesWriter::new(
                    format!("{} (written by process 0)", path.display()),
                    Box::new(std::io::sink()),
                )),
                (true, Some(length)) => JsonLinesWriter::resume(path, length.bytes, length.lines),
                (true, None) => JsonLinesWriter::create(path),
            };
        Ok(Outputs {
            alerts: match &config.alerts {
                AlertOutput::Stdout if writes => Some(JsonLinesWriter::stdout()),
                AlertOutput::Stdout => Some(open(ALERTS_OUTPUT, Path::new("stdout"))?),
                AlertOutput::File(path) => Some(open(ALERTS_OUTPUT, path)?),
                AlertOutput::Discard | AlertOutput::Kafka(_) => None,
            },
            dead_letters: open(DEAD_LETTERS_OUTPUT, &config.dead_letters)?,
            enriched: config
                .enriched
                .as_deref()
                .map(|path| open(ENRICHED_OUTPUT, path))
                .transpose()?,
        })
    }

    /// Every output.
    fn all(&self) -> impl Iterator<Item = &Arc<JsonLinesWriter>> {
        self.alerts
            .iter()
            .chain([&self.dead_letters])
            .chain(self.enriched.iter())
    }
}
