//! The pipeline API: what a job computes, built on every worker from the source's
//! stream, like a Flink job's `env.fromSource(..).keyBy(..).process(..).sinkTo(..)`.
//!
//! A [`Pipeline`] names its settings (part of the job's identity and of the settings
//! every process of a cluster shares) and the Delta tables it may write, and builds its
//! dataflow with a [`Stage`]: keyed processing by any
//! [`KeyedProcessFunction`](tidelake_operators::KeyedProcessFunction), then each output
//! to its sinks. Everything else — the source's partitions, watermarks and dead letters,
//! ticks and timers, exactly-once commits, auto-compaction, metrics, the status line and
//! report, clusters, the stall watchdog and Ctrl-C — is the [`Job`](crate::Job)'s, the
//! same for every pipeline. The built-in pipelines are in [`crate::jobs`].

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;

use serde::Serialize;
use timely::ExchangeData;
use timely::dataflow::operators::vec::Map;
use timely::dataflow::operators::{Concatenate, Inspect, Probe};
use timely::dataflow::{ProbeHandle, Scope, StreamVec};

use tidelake_operators::keyed_process::KeyedOutputs;
use tidelake_operators::positioned::Positioned;
use tidelake_operators::snapshot::{KeyedOptions, Restored, Snapshots};
use tidelake_operators::{EnrichedTransaction, Event, KeyedProcess, KeyedProcessFunction};
use tidelake_sinks::epochs::{EpochOutcome, EpochReport, EpochWriter, WriteEpochs};
use tidelake_sinks::json_lines::{InOrder, WriteJsonLinesInOrder};
use tidelake_sinks::parquet::ArrowRows;
use tidelake_sinks::{JsonLinesWriter, WriteJsonLines};

use crate::checkpoint::OutputLength;
use crate::checkpoint::collector::Piece;
use crate::checkpoint::process::{Checkpoints, KeyedDepositor, WorkerCheckpoints};
use crate::control::JobControl;
use crate::dead_letter::{DeadLetter, Reason};
use crate::kafka::KafkaRow;
use crate::kafka::sink::{KafkaSink, KafkaSinkConfig};
use crate::lake::Lake;
use crate::latency::{self, AlertLatency};
use crate::metrics::{Metrics, WorkerMetrics, add, record_state_size};
use crate::reference::AccountRecord;
use crate::reference::as_of_join::{AccountAt, WithAccount, join_accounts};
use crate::reference::input::{
    JoinFrontier, ReferenceRecord, ReferenceSettings, RowCounters, Update, read_accounts,
    read_reference,
};
use crate::sources::operator::SourceSettings;
use crate::sources::{Source, SourceRecord};

pub use crate::lake::{ALERTS, TRANSACTIONS, TableDecl};

/// The name checkpoints give the alerts output file.
pub(crate) const ALERTS_OUTPUT: &str = "alerts";
/// The name checkpoints give the dead-letters output file.
pub(crate) const DEAD_LETTERS_OUTPUT: &str = "dead letters";
/// The name checkpoints give the enriched-transactions output file.
pub(crate) const ENRICHED_OUTPUT: &str = "enriched";

/// What a job computes: see the [module docs](self).
pub trait Pipeline: Send + Sync + 'static {
    /// The records its source decodes ([`Transaction`](tidelake_operators::Transaction)
    /// for the built-in jobs).
    type Record: SourceRecord;

    /// The rule and the settings that decide what it computes, by flag (e.g.
    /// `("--rule", "velocity")`, `("--velocity-max", "3")`): recorded in every commit as
    /// part of the job's identity, and shared by every process of a cluster.
    fn settings(&self) -> Vec<(String, String)>;

    /// The Delta tables this pipeline may write, by name ([`TRANSACTIONS`], [`ALERTS`]);
    /// those the job's configuration gives a location are opened (created or checked
    /// against the row type's schema) before the workers start.
    fn tables(&self) -> Vec<TableDecl>;

    /// How far behind its partition's watermark a record may be and still reach the
    /// pipeline (at the watermark's time) rather than the dead letters: for pipelines
    /// that update results late, like windows with an allowed lateness
    /// (`tidelake_operators::window`). 0, the default, for rules that need every record
    /// at its own time. Part of the job's identity.
    fn allowed_lateness(&self) -> u64 {
        0
    }

    /// Builds the dataflow of one worker on the source's accepted records.
    fn build<'s>(&self, stage: &Stage<'s, '_>, records: Events<'s, Self::Record>);
}

/// A stream of records with their rule time and position.
pub type Events<'s, R> = StreamVec<'s, u64, Event<R>>;

/// What every worker of the job shares (but its source).
pub(crate) struct Shared {
    pub(crate) settings: SourceSettings,
    /// Key groups keyed state is routed and sharded by.
    pub(crate) key_groups: u32,
    /// This process is one of a cluster.
    pub(crate) in_cluster: bool,
    /// The job's checkpoints in this process, if it takes any.
    pub(crate) checkpoints: Option<Arc<Checkpoints>>,
    pub(crate) alerts: Option<Arc<JsonLinesWriter>>,
    /// The Kafka topic alerts go to (`--alerts kafka://…`).
    pub(crate) kafka_alerts: Option<KafkaSinkConfig>,
    /// The Kafka topic enriched transactions go to (`--transactions-topic`).
    pub(crate) transactions_topic: Option<KafkaSinkConfig>,
    /// The job's id (generated when not given).
    pub(crate) job_id: String,
    pub(crate) dead_letters: Arc<JsonLinesWriter>,
    pub(crate) enriched: Option<Arc<JsonLinesWriter>>,
    pub(crate) lake: Lake,
    pub(crate) metrics: Arc<Metrics>,
    pub(crate) control: Arc<JobControl>,
    pub(crate) latency: Option<Arc<AlertLatency>>,
}

/// What a pipeline builds its dataflow with, on one worker: keyed processing with the
/// job's tick and state accounting, and the job's sinks.
pub struct Stage<'s, 'j> {
    pub(crate) scope: Scope<'s, u64>,
    pub(crate) job: &'j Shared,
    /// This worker's index in the process (its slot in the metrics).
    pub(crate) slot: usize,
    /// Sees the end of the dataflow, for the source's flow control.
    pub(crate) probe: ProbeHandle<u64>,
    /// Sees the epochs the lake sinks made durable.
    pub(crate) committed: ProbeHandle<u64>,
    /// This worker's part in the job's checkpoints, if it takes any.
    pub(crate) checkpoints: Option<Rc<WorkerCheckpoints>>,
    /// The dead letters of the source and of the tables' sinks, written once the
    /// pipeline is built.
    pub(crate) dead_letters: RefCell<Vec<StreamVec<'s, u64, DeadLetter>>>,
}

impl<'s> Stage<'s, '_> {
    /// The global index of this worker.
    pub fn worker(&self) -> usize {
        self.scope.index()
    }

    /// Runs `function` on `input`, keyed by its key, with frontier-driven timers at the
    /// job's tick (docs/semantics.md §2–3); the size of its keyed state goes to the
    /// worker's metrics. Returns its main and side outputs.
    pub fn keyed<F>(
        &self,
        name: &str,
        function: F,
        input: Events<'s, F::Input>,
    ) -> KeyedOutputs<'s, F::Output, F::SideOutput>
    where
        F: KeyedProcessFunction,
        F::Input: ExchangeData + Clone,
    {
        let metrics = Arc::clone(&self.job.metrics);
        let slot = self.slot;
        let on_state_size = move |size| record_state_size(metrics.worker(slot), size);
        let options = KeyedOptions {
            tick: self.job.settings.tick,
            key_groups: self.job.key_groups,
            halt_at: self.job.control.halt_handle(),
            snapshots: self.checkpoints.as_ref().map(|worker| {
                let operator = worker.keyed_name(name);
                let shared = &worker.shared;
                Snapshots {
                    interval: shared.interval,
                    restored: shared.restored.as_ref().map(|restored| Restored {
                        boundary: restored.boundary(),
                        groups: restored.groups(&operator, self.worker(), self.scope.peers()),
                    }),
                    sink: Box::new(KeyedDepositor {
                        operator,
                        depositor: worker.component(),
                    }),
                }
            }),
        };
        let (main, side) = input.keyed_process_with(name, options, function, on_state_size);
        // The source reads ahead of what the keyed stages have done, not further.
        (main.probe_with(&self.probe), side.probe_with(&self.probe))
    }

    /// [`keyed`](Self::keyed), with each output an [`Event`] at the rule time and
    /// position of what made it (`tidelake_operators::positioned`), so another keyed
    /// stage can take it as its input: keyed stages in a row.
    pub fn keyed_events<F>(
        &self,
        name: &str,
        function: F,
        input: Events<'s, F::Input>,
    ) -> (Events<'s, F::Output>, Events<'s, F::SideOutput>)
    where
        F: KeyedProcessFunction,
        F::Input: ExchangeData + Clone,
    {
        self.keyed(name, Positioned::new(function), input)
    }

    /// The job's alerts: counted (and timed, with `--alert-latency`), written as JSON
    /// lines to `--alerts` (or a Kafka topic), and passed on for more sinks.
    pub fn alerts<A: Serialize + Clone + 'static>(
        &self,
        alerts: StreamVec<'s, u64, A>,
    ) -> StreamVec<'s, u64, A> {
        let alerts = latency::measure(alerts, self.job.latency.as_ref(), self.slot);
        let alerts = count_into(alerts, &self.job.metrics, self.slot, |w| &w.alerts);
        self.json_lines(
            "Alerts",
            ALERTS_OUTPUT,
            self.job.alerts.as_ref(),
            alerts.clone(),
        );
        let topic = self.job.kafka_alerts.as_ref();
        self.kafka_topic("AlertsTopic", ALERTS, topic, alerts.clone());
        alerts
    }

    /// Writes `records` (the job's output `output`) as JSON values keyed by account id
    /// to the Kafka topic `topic`, if the job writes one, exactly once
    /// ([`crate::kafka::sink`]).
    fn kafka_topic<D: Serialize + Clone + 'static>(
        &self,
        name: &str,
        output: &str,
        topic: Option<&KafkaSinkConfig>,
        records: StreamVec<'s, u64, D>,
    ) {
        let Some(topic) = topic else { return };
        let sink = KafkaSink::open(topic, &self.job.job_id, output, self.worker());
        let rows = records.map(|record| KafkaRow::json(&record));
        self.write_epochs(rows, name, sink, count_kafka_epoch);
    }

    /// Writes `records` as JSON lines to `writer`, if the job has one: as they come, or,
    /// with checkpoints, in time order on worker 0 (docs/checkpoints.md §3), which
    /// records in every checkpoint how much of `output` it covers.
    pub(crate) fn json_lines<D>(
        &self,
        name: &str,
        output: &'static str,
        writer: Option<&Arc<JsonLinesWriter>>,
        records: StreamVec<'s, u64, D>,
    ) where
        D: Serialize + Clone + 'static,
    {
        let Some(writer) = writer else { return };
        let Some(worker) = &self.checkpoints else {
            return records.write_json_lines(name, Arc::clone(writer));
        };
        let mut in_order = InOrder {
            writer: None,
            on_written: None,
            on_finish: None,
            halt_at: self.job.control.halt_handle(),
        };
        if self.worker() == 0 {
            in_order.writer = Some(Arc::clone(writer));
            if writer.is_file() {
                let depositor = Rc::new(worker.component());
                let finished = Rc::clone(&depositor);
                in_order.on_written = Some(Box::new(move |lo, hi, bytes, lines| {
                    let length = OutputLength {
                        output: output.to_owned(),
                        bytes,
                        lines,
                    };
                    depositor.deposit(lo, hi, Piece::Output(length));
                }));
                in_order.on_finish = Some(Box::new(move || finished.finish()));
            }
        }
        records.write_json_lines_in_order(name, in_order);
    }

    /// The job's enriched transactions: counted, written as JSON lines to `--enriched`,
    /// and passed on for more sinks.
    pub fn enriched(
        &self,
        enriched: StreamVec<'s, u64, EnrichedTransaction>,
    ) -> StreamVec<'s, u64, EnrichedTransaction> {
        let enriched = count_into(enriched, &self.job.metrics, self.slot, |w| &w.enriched);
        let writer = self.job.enriched.as_ref();
        self.json_lines("Enriched", ENRICHED_OUTPUT, writer, enriched.clone());
        let topic = self.job.transactions_topic.as_ref();
        self.kafka_topic("TransactionsTopic", TRANSACTIONS, topic, enriched.clone());
        enriched
    }

    /// Joins `records` with the accounts of `accounts` as of each record's time
    /// ([`crate::reference`]): the accounts are read by worker 0 into an arrangement
    /// by account (`poll`: how often a followed table is polled), rows that cannot be
    /// read go to the dead letters, and records of unknown accounts are counted.
    pub fn join_accounts<D>(
        &self,
        records: StreamVec<'s, u64, D>,
        accounts: Arc<dyn Source<AccountRecord>>,
        poll: std::time::Duration,
    ) -> StreamVec<'s, u64, WithAccount<D>>
    where
        D: AccountAt + ExchangeData + Clone,
    {
        let counters: RowCounters = (|w| &w.accounts_read, |w| &w.accounts_late);
        let settings = self.reference_settings("accounts", poll, counters);
        let input = read_accounts(self.scope, accounts, settings, self.job.key_groups);
        self.dead_letters.borrow_mut().push(input.dead_letters);
        let joined = join_accounts(
            records,
            input.arranged,
            input.frontier,
            self.job.key_groups,
            Arc::clone(&self.job.metrics),
            self.slot,
        );
        joined.probe_with(&self.probe)
    }

    /// Reads the reference data `source` (read by worker 0, following the records of
    /// the operator that sets the returned input's frontier; `poll`: how often a followed
    /// table is polled); rows that cannot be read go to the dead letters, rows read and
    /// rows late count in `counters`.
    pub fn reference<R: ReferenceRecord>(
        &self,
        what: &'static str,
        source: Arc<dyn Source<R>>,
        poll: std::time::Duration,
        counters: RowCounters,
    ) -> (StreamVec<'s, u64, Update<R::Data>>, JoinFrontier) {
        let settings = self.reference_settings(what, poll, counters);
        let input = read_reference(self.scope, source, settings);
        self.dead_letters.borrow_mut().push(input.dead_letters);
        (input.updates, input.frontier)
    }

    fn reference_settings(
        &self,
        what: &'static str,
        poll: std::time::Duration,
        counters: RowCounters,
    ) -> ReferenceSettings {
        ReferenceSettings {
            what,
            tick: self.job.settings.tick,
            poll,
            counters,
            metrics: Arc::clone(&self.job.metrics),
            slot: self.slot,
            control: Arc::clone(&self.job.control),
        }
    }

    /// Writes `records`, each made a row by `to_row`, to the table `table` (one of
    /// [`Pipeline::tables`]) exactly once, if the job writes it (otherwise nothing runs,
    /// not even `to_row`); rows its constraints keep out become dead letters.
    pub fn table<D, R>(
        &self,
        table: &'static str,
        records: StreamVec<'s, u64, D>,
        to_row: impl Fn(D) -> R + 'static,
    ) where
        D: Clone + 'static,
        R: ArrowRows + Clone + Send,
    {
        let worker = self.worker();
        if let Some(sink) = self.job.lake.sink::<R>(table, worker) {
            let location = self.job.lake.location(table).unwrap_or(table).to_owned();
            let name = table_operator_name(table);
            if let Some(reports) = self.write_epochs(records.map(to_row), &name, sink, count_epoch)
            {
                self.rejected_rows(location, reports);
            }
        }
    }

    /// Writes `records`, each made a row by `to_row`, as rolling Parquet files to
    /// `--parquet-dir`, if the job writes one.
    pub fn parquet_files<D, R>(
        &self,
        records: StreamVec<'s, u64, D>,
        to_row: impl Fn(D) -> R + 'static,
    ) where
        D: Clone + 'static,
        R: ArrowRows + Clone + Send,
    {
        if let Some(sink) = self.job.lake.parquet_sink::<R>(self.worker()) {
            self.write_epochs(records.map(to_row), "ParquetFiles", sink, count_epoch);
        }
    }

    /// Writes the job's dead letters — the source's and those of the tables' sinks —
    /// to `--dead-letters`, once the pipeline is built.
    pub(crate) fn write_dead_letters(&self) {
        let streams = std::mem::take(&mut *self.dead_letters.borrow_mut());
        let letters = self.scope.concatenate(streams);
        let writer = Some(&self.job.dead_letters);
        self.json_lines("DeadLetters", DEAD_LETTERS_OUTPUT, writer, letters);
    }

    /// The rows the table at `location` kept out of its sealed epochs (`reports`) go to
    /// the dead letters, with reason `constraint`, at their epoch's time.
    fn rejected_rows(&self, location: String, reports: StreamVec<'s, u64, EpochReport>) {
        let (metrics, slot) = (Arc::clone(&self.job.metrics), self.slot);
        let letters = reports.flat_map(move |report| {
            let rows = report.rejected;
            metrics
                .worker(slot)
                .dead_letter(Reason::Constraint, rows.len() as u64);
            let table = location.clone();
            rows.into_iter()
                .map(move |r| DeadLetter::constraint(&table, &r.constraint, r.row))
        });
        self.dead_letters.borrow_mut().push(letters);
    }

    /// Writes `rows` with an epoch sink — a lake sink or a Kafka sink — (or fails the job
    /// if the sink could not be made), counting what it commits into the worker's
    /// metrics with `count`; returns the reports of its sealed epochs, which join the
    /// committed frontier.
    fn write_epochs<W: EpochWriter>(
        &self,
        rows: StreamVec<'s, u64, W::Row>,
        name: &str,
        sink: Result<W, impl std::fmt::Display>,
        count: fn(&WorkerMetrics, &EpochReport),
    ) -> Option<StreamVec<'s, u64, EpochReport>>
    where
        W::Row: Clone,
    {
        let job = self.job;
        let sink = match sink {
            Ok(sink) => sink,
            Err(e) => {
                job.control.fail(format!("{name}: {e}"));
                return None;
            }
        };
        let control = Arc::clone(&job.control);
        let prefix = name.to_owned();
        let on_error = move |e: String| control.fail(format!("{prefix}: {e}"));
        let (metrics, slot) = (Arc::clone(&job.metrics), self.slot);
        let reports = rows
            .write_epochs(
                name,
                job.lake.commit_interval_ms(),
                sink,
                on_error,
                job.control.halt_handle(),
            )
            .inspect_core(move |event| match event {
                Ok((_, reports)) => reports
                    .iter()
                    .for_each(|report| count(metrics.worker(slot), report)),
                Err(_frontier) => add(&metrics.worker(slot).progress, 1),
            })
            .probe_with(&self.committed);
        Some(reports)
    }
}

/// The dataflow operator's name for the sink of `table`: `TransactionsTable`, …
fn table_operator_name(table: &str) -> String {
    let mut chars = table.chars();
    let first = chars.next().map(|c| c.to_ascii_uppercase());
    first
        .into_iter()
        .chain(chars)
        .chain("Table".chars())
        .collect()
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
        // In the commit of a later epoch, counted with it.
        EpochOutcome::Included { .. } => add(&counters.rows_committed, report.rows),
        EpochOutcome::AlreadyCommitted => {
            add(&counters.epochs_skipped, 1);
            add(&counters.rows_skipped, report.rows);
        }
        EpochOutcome::Written | EpochOutcome::Empty => {}
    }
    add(&counters.files, report.files);
    add(&counters.bytes, report.bytes);
}

/// Adds a sealed epoch of a Kafka sink to the worker's counters.
fn count_kafka_epoch(counters: &WorkerMetrics, report: &EpochReport) {
    match report.outcome {
        EpochOutcome::Committed { .. } => {
            add(&counters.kafka_transactions, 1);
            add(&counters.kafka_records, report.rows);
        }
        EpochOutcome::AlreadyCommitted => {
            add(&counters.epochs_skipped, 1);
            add(&counters.rows_skipped, report.rows);
        }
        // A Kafka epoch is a transaction of its own.
        EpochOutcome::Included { .. } | EpochOutcome::Written | EpochOutcome::Empty => {}
    }
}

/// Passes a stream through, adding the number of records to one of the worker's
/// counters, and each move of its frontier to the worker's progress.
fn count_into<'s, D: Clone + 'static>(
    stream: StreamVec<'s, u64, D>,
    metrics: &Arc<Metrics>,
    slot: usize,
    counter: fn(&WorkerMetrics) -> &AtomicU64,
) -> StreamVec<'s, u64, D> {
    let metrics = Arc::clone(metrics);
    stream.inspect_core(move |event| match event {
        Ok((_, data)) => add(counter(metrics.worker(slot)), data.len() as u64),
        Err(_frontier) => add(&metrics.worker(slot).progress, 1),
    })
}
