//! `tidelake ingest`: Databricks Auto Loader's job — every file that lands under a
//! directory (local or an object store) loaded exactly once into a Delta table
//! (docs/ingest.md).
//!
//! One pass ([`ingest`]) lists the input ([`input`]), takes the files the job has not
//! loaded ([`loaded`]), oldest first, up to `--max-files-per-commit` of them, decodes
//! each whole ([`formats`]), shapes its rows into the table's ([`shape`]: renames, the
//! `date` partition, the schema check), writes them into files near the target size
//! per partition — many small inputs become few large outputs — and commits them in
//! one Delta commit that also records the files it loaded. A file that cannot be
//! loaded goes to the dead letters whole and is recorded as handled; a loaded file
//! that changes is reported, never loaded again. `--once` loads what the first listing
//! found and stops; `--follow` lists again every poll interval until stopped.

pub mod formats;
pub mod input;
pub mod loaded;
pub mod shape;

use std::collections::BTreeMap;
use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use arrow::record_batch::RecordBatch;
use futures::{StreamExt, TryStreamExt};
use tidelake_sinks::delta::files::commit::{
    CommitOptions, EpochCommitter, EpochOutcome, engine_info,
};
use tidelake_sinks::delta::files::job_identity::{
    JobIdentity, app_id, check_job_identity, is_valid_job_id,
};
use tidelake_sinks::delta::{Add, DeltaError, DeltaTable, Schema, Snapshot};
use tidelake_sinks::parquet::{BatchFileWriter, PartitionSpec, WriterOptions};
use tidelake_sinks::{JsonLinesWriter, SinkError};

use crate::dead_letter::{DeadLetter, Reason};
pub use formats::InputFormat;
use input::{Input, InputFile};
use loaded::{LoadedFile, LoadedFiles, Seen};
use shape::{DATE_COLUMN, Shape};

/// Input files decoded ahead of the one being written.
const READ_AHEAD: usize = 2;

/// What `tidelake ingest` does; the flags of the same names.
#[derive(Clone, Debug)]
pub struct IngestConfig {
    /// The input directory or URL.
    pub input: String,
    /// The table's path or URL.
    pub table: String,
    /// How input files are encoded.
    pub format: InputFormat,
    /// `--partition-by date`: add `date` (`yyyy-MM-dd`, UTC) and partition by it.
    pub partition_by_date: bool,
    /// The column the date derives from (default: `timestamp`, `dt` or `ts`).
    pub timestamp_column: Option<String>,
    /// `from=to` column renames.
    pub renames: Vec<(String, String)>,
    /// `--schema`: the input's columns, instead of the first file's.
    pub schema: Option<String>,
    /// Keep listing every `poll_interval` (`--follow`), or load what is there and stop.
    pub follow: bool,
    /// How often `--follow` lists the input.
    pub poll_interval: Duration,
    /// The most input files one commit loads.
    pub max_files_per_commit: usize,
    /// Output files are cut at about this size.
    pub target_file_size: u64,
    /// The job's id (default: `ingest-` and a digest of the input URL).
    pub job_id: Option<String>,
    /// Where dead letters are appended as JSON lines.
    pub dead_letters: PathBuf,
}

impl IngestConfig {
    /// The job id: `--job-id`, or `ingest-<16 hex digits of xxh3 of the input URL>`, so
    /// that the same command run again is the same job.
    pub fn job_id(&self) -> String {
        self.job_id.clone().unwrap_or_else(|| {
            let digest = xxhash_rust::xxh3::xxh3_64(self.input.trim_end_matches('/').as_bytes());
            format!("ingest-{digest:016x}")
        })
    }

    /// The settings that decide what a commit loads, recorded in every commit and
    /// compared when the job runs again (a re-run with other settings is refused).
    fn identity(&self) -> JobIdentity {
        let renames: Vec<String> = self
            .renames
            .iter()
            .map(|(f, t)| format!("{f}={t}"))
            .collect();
        JobIdentity::new(
            self.job_id(),
            [
                ("command".to_owned(), "ingest".to_owned()),
                ("--input".to_owned(), self.input.clone()),
                ("--format".to_owned(), self.format.name().to_owned()),
                (
                    "--partition-by".to_owned(),
                    if self.partition_by_date {
                        DATE_COLUMN
                    } else {
                        ""
                    }
                    .to_owned(),
                ),
                (
                    "--timestamp-column".to_owned(),
                    self.timestamp_column.clone().unwrap_or_default(),
                ),
                ("--rename".to_owned(), renames.join(",")),
            ],
        )
    }

    fn validate(&self) -> Result<(), IngestError> {
        let id = self.job_id();
        if !is_valid_job_id(&id) {
            return Err(IngestError::Config(format!(
                "--job-id {id:?}: use letters, digits, '-', '_' and '.' only"
            )));
        }
        if self.max_files_per_commit == 0 {
            return Err(IngestError::Config(
                "--max-files-per-commit must be at least 1".into(),
            ));
        }
        if self.target_file_size == 0 {
            return Err(IngestError::Config(
                "--target-file-size must be positive".into(),
            ));
        }
        if same_place(&self.input, &self.table) {
            return Err(IngestError::Config(format!(
                "--input {} is the table itself",
                self.input
            )));
        }
        Ok(())
    }
}

/// True if `a` and `b` name the same directory (or `b` is below `a`).
fn same_place(a: &str, b: &str) -> bool {
    let canonical = |p: &str| {
        std::fs::canonicalize(p)
            .map(|p| p.display().to_string())
            .unwrap_or_else(|_| p.trim_end_matches('/').to_owned())
    };
    let (a, b) = (canonical(a), canonical(b));
    a == b || b.starts_with(&format!("{a}/")) && !b[a.len() + 1..].starts_with('_')
}

/// What an ingest did.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct IngestReport {
    /// The job id.
    pub job_id: String,
    /// Input files loaded.
    pub files: u64,
    /// Rows they held.
    pub rows: u64,
    /// Their bytes.
    pub bytes: u64,
    /// Commits made.
    pub commits: u64,
    /// Table versions of the first and the last commit made.
    pub versions: Option<(u64, u64)>,
    /// Output data files written.
    pub data_files: u64,
    /// Files listed that earlier runs had loaded.
    pub already_loaded: u64,
    /// Files that went to the dead letters.
    pub dead_letters: u64,
    /// Loaded files whose size or modification time changed since (reported once each).
    pub changed: u64,
    /// Whether the ingest created the table.
    pub created_table: bool,
    /// Wall time.
    pub seconds: f64,
}

/// What `progress` is told after each file.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct IngestProgress {
    /// Input files handled (loaded or dead letters) so far.
    pub files: u64,
    /// Rows loaded so far.
    pub rows: u64,
    /// Commits so far.
    pub commits: u64,
    /// New files known and not committed yet.
    pub pending: u64,
}

/// What can stop an ingest.
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    /// A flag, or the data against the flags: nothing was written.
    #[error("{0}")]
    Config(String),
    /// The input cannot be listed or read.
    #[error("input {path}: {detail}")]
    Input {
        /// The input or file.
        path: String,
        /// What failed.
        detail: String,
    },
    /// The table.
    #[error(transparent)]
    Table(#[from] DeltaError),
    /// A segment of the loaded files does not parse.
    #[error("ingest segment {path}: {detail}")]
    Segment {
        /// The segment.
        path: String,
        /// What is wrong.
        detail: String,
    },
    /// The files an earlier run loaded cannot be known.
    #[error("{0}")]
    Unrecoverable(String),
    /// Another process with the same job id committed.
    #[error("{0}")]
    Conflict(String),
    /// The dead letters cannot be written.
    #[error(transparent)]
    DeadLetters(#[from] SinkError),
}

impl IngestError {
    /// True for errors a user fixes by changing the command (exit 2).
    pub fn is_configuration(&self) -> bool {
        match self {
            IngestError::Config(_) | IngestError::Unrecoverable(_) => true,
            IngestError::Table(e) => e.is_configuration(),
            _ => false,
        }
    }
}

/// Loads the files under `config.input` into `config.table`; see the [module
/// docs](self). `stop` ends a `--follow` between commits; `progress` is told after
/// each file.
pub async fn ingest(
    config: &IngestConfig,
    stop: &AtomicBool,
    progress: &mut dyn FnMut(&IngestProgress),
) -> Result<IngestReport, IngestError> {
    let started = Instant::now();
    let (mut run, mut loaded) = Run::start(config).await?;
    let mut first_listing = true;
    loop {
        let listed = run.input.list().await?;
        let new = run.classify(&listed, &loaded, first_listing);
        first_listing = false;
        let mut pending = new.len() as u64;
        for batch in new.chunks(config.max_files_per_commit) {
            if stop.load(Ordering::Relaxed) {
                break;
            }
            run.load(batch, &mut loaded, pending, progress).await?;
            pending -= batch.len() as u64;
        }
        if !config.follow || !sleep_unless_stopped(config.poll_interval, stop).await {
            break;
        }
    }
    run.dead_letters.finish()?;
    run.report.seconds = started.elapsed().as_secs_f64();
    Ok(run.report)
}

/// Sleeps `duration`, waking early (and returning false) when `stop` is set.
async fn sleep_unless_stopped(duration: Duration, stop: &AtomicBool) -> bool {
    let end = Instant::now() + duration;
    while Instant::now() < end {
        if stop.load(Ordering::Relaxed) {
            return false;
        }
        let left = end.saturating_duration_since(Instant::now());
        tokio::time::sleep(left.min(Duration::from_millis(50))).await;
    }
    !stop.load(Ordering::Relaxed)
}

/// Dead letters, appended to `path`.
fn open_dead_letters(path: &std::path::Path) -> Result<Arc<JsonLinesWriter>, IngestError> {
    let file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(|source| SinkError::Io {
            target: path.display().to_string(),
            source,
        })?;
    Ok(JsonLinesWriter::new(
        path.display().to_string(),
        Box::new(std::io::BufWriter::new(file)),
    ))
}

/// The table once its schema is known, and its committer.
struct Target {
    snapshot: Snapshot,
    shape: Arc<Shape>,
    committer: EpochCommitter,
}

impl Target {
    /// The existing table at `snapshot`.
    async fn open(
        table: &DeltaTable,
        snapshot: &Snapshot,
        config: &IngestConfig,
        identity: &JobIdentity,
    ) -> Result<Target, IngestError> {
        let (_, schema) = snapshot.schema(table.location())?;
        Target::create(table, &schema, config, identity).await
    }

    /// The table of `schema`, created if there is none; checked for what an append
    /// needs (features, schema, partitioning).
    async fn create(
        table: &DeltaTable,
        schema: &Schema,
        config: &IngestConfig,
        identity: &JobIdentity,
    ) -> Result<Target, IngestError> {
        let partition_columns: Vec<String> = if config.partition_by_date {
            vec![DATE_COLUMN.to_owned()]
        } else {
            Vec::new()
        };
        let columns: Vec<&str> = partition_columns.iter().map(String::as_str).collect();
        let snapshot = table
            .create_or_open(schema, &columns, BTreeMap::new(), &engine_info())
            .await?;
        let shape = Shape::new(
            schema,
            &partition_columns,
            &config.renames,
            config.partition_by_date,
            config.timestamp_column.as_deref(),
        )
        .map_err(|e| IngestError::Config(format!("table {}: {e}", table.location())))?;
        let options = CommitOptions {
            query_id: identity.job_id.clone(),
            job: Some(identity.clone()),
            ..CommitOptions::default()
        };
        let committer = EpochCommitter::new(
            table.clone(),
            app_id(&identity.job_id, 0),
            &snapshot,
            options,
        );
        Ok(Target {
            snapshot,
            shape: Arc::new(shape),
            committer,
        })
    }
}

/// One ingest's state between commits.
struct Run<'a> {
    config: &'a IngestConfig,
    input: Input,
    table: DeltaTable,
    identity: JobIdentity,
    target: Option<Target>,
    report: IngestReport,
    /// Changed files reported already.
    reported_changes: HashSet<String>,
    /// Dead letters found before the table existed, recorded by the first commit.
    unrecorded: Vec<LoadedFile>,
    dead_letters: Arc<JsonLinesWriter>,
}

/// An input file decoded and shaped: its rows by partition, or why it is a dead letter.
type Decoded = Result<(u64, Vec<(Option<String>, RecordBatch)>), (Reason, String)>;

impl<'a> Run<'a> {
    /// Opens the input and the table (checking the job's identity, creating the table
    /// if `--schema` gives its columns) and recovers the files the job loaded.
    async fn start(config: &'a IngestConfig) -> Result<(Run<'a>, LoadedFiles), IngestError> {
        config.validate()?;
        let input = Input::open(&config.input)?;
        let table = DeltaTable::open_url(&config.table)?;
        let job_id = config.job_id();
        let identity = config.identity();
        let mut target = match table.snapshot().await? {
            Some(snapshot) => {
                check_job_identity(&table, &snapshot, &identity, &[]).await?;
                Some(Target::open(&table, &snapshot, config, &identity).await?)
            }
            None => None,
        };
        if target.is_none()
            && let Some(text) = &config.schema
        {
            let input_schema = shape::parse_schema(text).map_err(IngestError::Config)?;
            let schema =
                shape::table_schema(&input_schema, &config.renames, config.partition_by_date)
                    .map_err(IngestError::Config)?;
            target = Some(Target::create(&table, &schema, config, &identity).await?);
        }
        let loaded = match &target {
            Some(target) => LoadedFiles::recover(&table, &target.snapshot, &job_id).await?,
            None => LoadedFiles::empty(&table, &job_id),
        };
        let run = Run {
            config,
            input,
            table,
            identity,
            target,
            report: IngestReport {
                job_id,
                ..IngestReport::default()
            },
            reported_changes: HashSet::new(),
            unrecorded: Vec::new(),
            dead_letters: open_dead_letters(&config.dead_letters)?,
        };
        Ok((run, loaded))
    }

    /// The files of `listed` the job has not loaded; changed ones are reported.
    fn classify(
        &mut self,
        listed: &[InputFile],
        loaded: &LoadedFiles,
        first: bool,
    ) -> Vec<InputFile> {
        let mut new = Vec::new();
        for file in listed {
            match loaded.seen(file) {
                Seen::New if self.unrecorded.iter().any(|u| u.file == *file) => {}
                Seen::New => new.push(file.clone()),
                Seen::Loaded => {
                    if first {
                        self.report.already_loaded += 1;
                    }
                }
                Seen::Changed(before) => {
                    if first {
                        self.report.already_loaded += 1;
                    }
                    if self.reported_changes.insert(file.path.clone()) {
                        self.report.changed += 1;
                        tracing::warn!(
                            file = %file.path,
                            "input file {} changed after it was loaded (size {} → {}, modified {} → {} ms); it is not loaded again",
                            file.path,
                            before.file.size,
                            file.size,
                            before.file.modification_time,
                            file.modification_time
                        );
                    }
                }
            }
        }
        new
    }

    /// Loads `files` in one commit (or none, while no file gives the table a schema).
    async fn load(
        &mut self,
        files: &[InputFile],
        loaded: &mut LoadedFiles,
        pending: u64,
        progress: &mut dyn FnMut(&IngestProgress),
    ) -> Result<(), IngestError> {
        let mut batch = Batch {
            records: std::mem::take(&mut self.unrecorded),
            letters: Vec::new(),
            pending,
        };
        let rest = self.create_table(files, loaded, &mut batch).await?;
        if self.target.is_none() {
            // No file readable yet: the first commit records these dead letters.
            write_dead_letters(&self.dead_letters, batch.letters)?;
            self.unrecorded = batch.records;
            return Ok(());
        }
        let adds = self.write(rest, &mut batch, progress).await?;
        write_dead_letters(&self.dead_letters, std::mem::take(&mut batch.letters))?;
        tidelake_sinks::fault_injection::pause_if_asked("ingest-commit");
        self.commit(adds, batch, loaded, progress).await
    }

    /// Until the table exists, reads `files` one by one: the first readable one gives
    /// the table's schema, and the table is created. The files left to load (that one
    /// among them).
    async fn create_table<'f>(
        &mut self,
        files: &'f [InputFile],
        loaded: &mut LoadedFiles,
        batch: &mut Batch,
    ) -> Result<&'f [InputFile], IngestError> {
        for (n, file) in files.iter().enumerate() {
            if self.target.is_some() {
                return Ok(&files[n..]);
            }
            let Some(bytes) = self.input.read(file).await? else {
                tracing::warn!(file = %file.path, "input file {} is gone", file.path);
                batch.pending = batch.pending.saturating_sub(1);
                continue;
            };
            let schema = match self.config.format.infer_schema(&bytes) {
                Ok(schema) => schema,
                Err(e) => {
                    batch.dead_letter(file, Reason::Unreadable, e, &mut self.report);
                    batch.pending = batch.pending.saturating_sub(1);
                    continue;
                }
            };
            let config = self.config;
            let schema = shape::table_schema(&schema, &config.renames, config.partition_by_date)
                .map_err(|e| {
                    IngestError::Config(format!("the first input file {}: {e}", file.path))
                })?;
            let target = Target::create(&self.table, &schema, config, &self.identity).await?;
            self.report.created_table = target.snapshot.version == 0;
            *loaded =
                LoadedFiles::recover(&self.table, &target.snapshot, &self.report.job_id).await?;
            self.target = Some(target);
            return Ok(&files[n..]);
        }
        Ok(&[])
    }

    /// Decodes `files` (a few ahead, off this thread) and writes their rows into data
    /// files near the target size per partition; the files uploaded.
    async fn write(
        &mut self,
        files: &[InputFile],
        batch: &mut Batch,
        progress: &mut dyn FnMut(&IngestProgress),
    ) -> Result<Vec<Add>, IngestError> {
        let Some(target) = &self.target else {
            return Ok(Vec::new());
        };
        let options = WriterOptions {
            target_file_size: usize::try_from(self.config.target_file_size).unwrap_or(usize::MAX),
            ..WriterOptions::default()
        };
        let mut writer = BatchFileWriter::<Option<String>>::new(
            self.table.store().clone(),
            self.table.root().clone(),
            0,
            target.shape.data_schema().clone(),
            &options,
        )
        .map_err(DeltaError::from)?
        .with_clock(self.table.clock().clone());
        let partitioned = self.config.partition_by_date;
        let (format, shape, input) = (self.config.format, target.shape.clone(), self.input.clone());
        let mut decoded = futures::stream::iter(files.iter().cloned())
            .map(|file| {
                let (input, shape) = (input.clone(), shape.clone());
                async move {
                    let Some(bytes) = input.read(&file).await? else {
                        return Ok((file, None));
                    };
                    let decoded =
                        tokio::task::spawn_blocking(move || decode(format, bytes, &shape))
                            .await
                            .unwrap_or_else(|e| Err((Reason::Unreadable, e.to_string())));
                    Ok::<_, IngestError>((file, Some(decoded)))
                }
            })
            .buffered(READ_AHEAD);
        while let Some((file, decoded)) = decoded.try_next().await? {
            match decoded {
                None => tracing::warn!(file = %file.path, "input file {} is gone", file.path),
                Some(Err((reason, detail))) => {
                    batch.dead_letter(&file, reason, detail, &mut self.report)
                }
                Some(Ok((rows, parts))) => {
                    for (date, rows) in &parts {
                        let spec = || -> PartitionSpec {
                            match partitioned {
                                true => vec![(DATE_COLUMN.to_owned(), date.clone())],
                                false => Vec::new(),
                            }
                        };
                        writer.write(date, spec, rows).map_err(DeltaError::from)?;
                    }
                    writer.upload_completed().await.map_err(DeltaError::from)?;
                    self.report.files += 1;
                    self.report.rows += rows;
                    self.report.bytes += file.size;
                    batch.records.push(LoadedFile {
                        file,
                        rows,
                        dead_letter: None,
                    });
                }
            }
            batch.pending = batch.pending.saturating_sub(1);
            progress(&self.progress(batch.pending));
        }
        let uploaded = writer.finish().await.map_err(DeltaError::from)?;
        Ok(uploaded.into_iter().map(Add::from).collect())
    }

    /// Commits `adds` with the record of `batch`'s files.
    async fn commit(
        &mut self,
        adds: Vec<Add>,
        batch: Batch,
        loaded: &mut LoadedFiles,
        progress: &mut dyn FnMut(&IngestProgress),
    ) -> Result<(), IngestError> {
        let Some(target) = &mut self.target else {
            return Ok(());
        };
        let commit = loaded.commit() + 1;
        let data_files = adds.len() as u64;
        let Batch {
            records, pending, ..
        } = batch;
        let record = LoadedFiles::record(commit, &records);
        match target
            .committer
            .commit_recording(commit, adds, record)
            .await?
        {
            EpochOutcome::Committed { version, .. } => {
                tidelake_sinks::fault_injection::pause_if_asked("ingest-segment");
                loaded.committed(commit, version, records).await?;
                self.report.commits += 1;
                self.report.data_files += data_files;
                let first = self.report.versions.map_or(version, |(first, _)| first);
                self.report.versions = Some((first, version));
                progress(&self.progress(pending));
                Ok(())
            }
            EpochOutcome::AlreadyCommitted { txn_version } => Err(IngestError::Conflict(format!(
                "{}: another process of ingest job {} committed its commit {txn_version} while this one was making commit {commit}: two ingests with the same job id are running at once",
                self.table.location(),
                self.report.job_id
            ))),
        }
    }

    /// The progress so far, `pending` new files not committed yet.
    fn progress(&self, pending: u64) -> IngestProgress {
        IngestProgress {
            files: self.report.files + self.report.dead_letters,
            rows: self.report.rows,
            commits: self.report.commits,
            pending,
        }
    }
}

/// The files of the commit being made, and its dead letters.
struct Batch {
    /// What the commit records: every file loaded or put in the dead letters.
    records: Vec<LoadedFile>,
    /// Dead letters to append before the commit.
    letters: Vec<DeadLetter>,
    /// New files known and not committed yet.
    pending: u64,
}

impl Batch {
    /// Puts `file` in the dead letters for `reason`.
    fn dead_letter(
        &mut self,
        file: &InputFile,
        reason: Reason,
        detail: String,
        report: &mut IngestReport,
    ) {
        tracing::warn!(file = %file.path, reason = reason.name(), "input file {} goes to the dead letters: {detail}", file.path);
        report.dead_letters += 1;
        self.letters
            .push(DeadLetter::file(&file.path, reason, detail.clone()));
        self.records.push(LoadedFile {
            file: file.clone(),
            rows: 0,
            dead_letter: Some(format!("{}: {detail}", reason.name())),
        });
    }
}

/// Appends `letters` to the dead letters.
fn write_dead_letters(out: &JsonLinesWriter, letters: Vec<DeadLetter>) -> Result<(), IngestError> {
    if letters.is_empty() {
        return Ok(());
    }
    out.write_records(letters);
    out.written()?;
    Ok(())
}

/// The rows of one input file, shaped for the table; or why it is a dead letter.
fn decode(format: InputFormat, bytes: bytes::Bytes, shape: &Shape) -> Decoded {
    let batches = format
        .read(bytes, shape.input_schema())
        .map_err(|e| (Reason::Unreadable, e))?;
    let mut rows = 0;
    let mut parts = Vec::new();
    for batch in &batches {
        rows += batch.num_rows() as u64;
        parts.extend(shape.apply(batch).map_err(|e| (Reason::Schema, e))?);
    }
    Ok((rows, parts))
}
