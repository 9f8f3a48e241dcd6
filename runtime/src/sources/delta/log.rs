//! The table's log as the Delta source reads it: the units its partitions read (the
//! snapshot it starts from, then one per version), the reading schema, and when to look
//! for a new version (docs/delta-source.md).
//!
//! One `TableLog` serves every partition of the source in a process: each version is
//! read from the store once and kept while the partitions read it.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use arrow::datatypes::SchemaRef;
use tidelake_sinks::delta::protocol::features::{self, Operation};
use tidelake_sinks::delta::protocol::kernel;
use tidelake_sinks::delta::{
    Action, Add, DeltaError, DeltaTable, Metadata, Protocol, Schema, Snapshot,
};
use tidelake_sinks::parquet::stats::timestamp_bound_micros;

use crate::checkpoint::format::crc32c;
use crate::sources::SourceError;

/// Change versions kept after they were read (every partition reads each one).
const KEPT_VERSIONS: usize = 256;

/// The columns an event time is looked for in, in order, for the files' statistics.
pub(super) const TIME_COLUMNS: [&str; 3] = ["dt", "timestamp", "ts"];

/// The table's columns as the source reads them.
#[derive(Debug)]
pub(super) struct TableSchema {
    /// The version whose `metaData` gave it.
    pub(super) version: u64,
    /// The Delta schema.
    pub(super) delta: Schema,
    /// The partition columns.
    pub(super) partition_columns: Vec<String>,
    /// The data files' Arrow schema (every column but the partition columns).
    pub(super) arrow: SchemaRef,
}

impl TableSchema {
    fn of(table: &str, version: u64, metadata: &Metadata) -> Result<Self, DeltaError> {
        let unreadable = |detail: String| DeltaError::Unsupported {
            table: table.to_owned(),
            detail: format!("the schema of version {version}: {detail}"),
        };
        let delta = Schema::from_schema_string(&metadata.schema_string)
            .map_err(|e| unreadable(e.to_string()))?;
        let arrow = delta
            .data_file_schema(&metadata.partition_columns)
            .map_err(unreadable)?;
        Ok(TableSchema {
            version,
            delta,
            partition_columns: metadata.partition_columns.clone(),
            arrow,
        })
    }

    /// The column of the files' statistics that holds the event time, if any.
    pub(super) fn time_column(&self) -> Option<&str> {
        TIME_COLUMNS
            .into_iter()
            .find(|name| self.arrow.field_with_name(name).is_ok())
    }

    /// Why data of schema `later` (a newer version's) cannot be read on as this
    /// schema's: a column dropped, retyped or made required, or new columns that are
    /// not nullable, or another partitioning.
    fn change_to(&self, later: &TableSchema) -> Option<String> {
        let mut problems = Vec::new();
        for field in &self.delta.fields {
            match later.delta.fields.iter().find(|f| f.name == field.name) {
                None => problems.push(format!("column `{}` was dropped or renamed", field.name)),
                Some(f) if f.data_type != field.data_type => problems.push(format!(
                    "column `{}` changed type from {} to {}",
                    field.name, field.data_type, f.data_type
                )),
                Some(f) if field.nullable && !f.nullable => {
                    problems.push(format!("column `{}` became NOT NULL", field.name))
                }
                Some(_) => {}
            }
        }
        for field in &later.delta.fields {
            if !field.nullable && !self.delta.fields.iter().any(|f| f.name == field.name) {
                problems.push(format!(
                    "column `{}` was added NOT NULL (only nullable columns can be added)",
                    field.name
                ));
            }
        }
        if self.partition_columns != later.partition_columns {
            problems.push(format!(
                "the partition columns changed from {:?} to {:?}",
                self.partition_columns, later.partition_columns
            ));
        }
        (!problems.is_empty()).then(|| problems.join("; "))
    }
}

/// What one partition reads at a time: the live files of the snapshot the source
/// starts from, or the data-changing `add`s of one version (none for a version
/// `--ignore-deletes` skips).
#[derive(Debug)]
pub(super) struct Unit {
    /// The version.
    pub(super) version: u64,
    /// The files, in reading order (their index is the position's file index): by the
    /// least event time their statistics give (files without one first), then
    /// modification time, then path — as near to event-time order as the log tells.
    pub(super) files: Vec<Add>,
    /// Each file's least event time, from its statistics.
    pub(super) mins: Vec<Option<u64>>,
    /// For each source partition, the indexes of its files in `files`, ascending.
    pub(super) by_partition: Vec<Vec<u32>>,
    /// The reading schema when the unit was read.
    pub(super) schema: Arc<TableSchema>,
    /// The greatest of the files' least event times, if their statistics give any.
    pub(super) max_min: Option<u64>,
}

impl Unit {
    fn new(version: u64, files: Vec<Add>, partitions: u32, schema: Arc<TableSchema>) -> Self {
        let column = schema.time_column();
        let mut files: Vec<(Option<u64>, Add)> = files
            .into_iter()
            .map(|add| (column.and_then(|c| least_ms(&add, c)), add))
            .collect();
        files.sort_by(|(a, x), (b, y)| {
            (a, x.modification_time, &x.path).cmp(&(b, y.modification_time, &y.path))
        });
        let (mins, files): (Vec<Option<u64>>, Vec<Add>) = files.into_iter().unzip();
        let mut by_partition = vec![Vec::new(); partitions as usize];
        for (index, add) in files.iter().enumerate() {
            by_partition[partition_of(&add.path, partitions) as usize].push(index as u32);
        }
        Unit {
            version,
            max_min: mins.iter().flatten().copied().max(),
            files,
            mins,
            by_partition,
            schema,
        }
    }
}

/// The source partition a data file belongs to: a fixed hash (CRC-32C) of its path in
/// the log, over `partitions`, so any worker count reads the same.
pub(super) fn partition_of(path: &str, partitions: u32) -> u32 {
    crc32c(path.as_bytes()) % partitions
}

/// The least value of `column` that `add`'s statistics give, as ms since the epoch: a
/// timestamp bound, or an integer.
fn least_ms(add: &Add, column: &str) -> Option<u64> {
    let stats: serde_json::Value = serde_json::from_str(add.stats.as_deref()?).ok()?;
    match stats.get("minValues")?.get(column)? {
        serde_json::Value::Number(n) => n.as_u64(),
        serde_json::Value::String(text) => {
            u64::try_from(timestamp_bound_micros(text)?.div_euclid(1_000)).ok()
        }
        _ => None,
    }
}

/// What [`TableLog::unit`] found.
pub(super) enum Found {
    /// The unit.
    Unit(Arc<Unit>),
    /// The version is not committed yet.
    NotYet,
}

/// The shared reading state of the log.
struct LogState {
    /// Change units read, by version (the newest [`KEPT_VERSIONS`]).
    units: BTreeMap<u64, Arc<Unit>>,
    /// Snapshot units, while a partition reads them.
    snapshots: BTreeMap<u64, Weak<Unit>>,
    /// The schema records are read with: the newest seen.
    reading: Arc<TableSchema>,
    /// The newest version known to exist.
    newest: u64,
    /// No version after `newest` existed when last looked for: not before this.
    next_look: Option<Instant>,
}

/// The table's log: see the [module docs](self).
pub(super) struct TableLog {
    pub(super) table: DeltaTable,
    /// The protocol at open, which a later `metaData` is checked against.
    protocol: Option<Protocol>,
    partitions: u32,
    ignore_deletes: bool,
    poll_interval: Duration,
    state: Mutex<LogState>,
}

impl TableLog {
    /// Opens the table at `url` and reads its newest snapshot (by the Delta Kernel),
    /// whose version is the log's [`newest`](Self::newest).
    pub(super) async fn open(
        url: &str,
        partitions: u32,
        ignore_deletes: bool,
        poll_interval: Duration,
    ) -> Result<TableLog, SourceError> {
        let table = DeltaTable::open_existing_url(url)?;
        let snapshot = kernel::read_existing_snapshot(&table, None).await?;
        features::check(&snapshot, url, Operation::Read)?;
        let metadata = snapshot
            .metadata
            .as_ref()
            .ok_or_else(|| DeltaError::Corrupt(format!("{url}: the log has no metaData")))?;
        let reading = Arc::new(TableSchema::of(url, snapshot.version, metadata)?);
        Ok(TableLog {
            table,
            protocol: snapshot.protocol.clone(),
            partitions,
            ignore_deletes,
            poll_interval,
            state: Mutex::new(LogState {
                units: BTreeMap::new(),
                snapshots: BTreeMap::new(),
                reading,
                newest: snapshot.version,
                next_look: None,
            }),
        })
    }

    fn state(&self) -> std::sync::MutexGuard<'_, LogState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The schema records are read with now.
    pub(super) fn reading_schema(&self) -> Arc<TableSchema> {
        Arc::clone(&self.state().reading)
    }

    /// The newest version known to exist.
    pub(super) fn newest(&self) -> u64 {
        self.state().newest
    }

    /// The unit of the snapshot at `version` (`snapshot`) or of the changes of `version`.
    pub(super) async fn unit(&self, version: u64, snapshot: bool) -> Result<Found, SourceError> {
        if snapshot {
            return self.snapshot_unit(version).await.map(Found::Unit);
        }
        {
            let state = self.state();
            if let Some(unit) = state.units.get(&version) {
                return Ok(Found::Unit(Arc::clone(unit)));
            }
            if version > state.newest && state.next_look.is_some_and(|t| Instant::now() < t) {
                return Ok(Found::NotYet);
            }
        }
        let Some(actions) = self.table.read_commit_if_exists(version).await? else {
            let mut state = self.state();
            if version <= state.newest {
                return Err(SourceError::Stopped(format!(
                    "version {version} of {} is no longer in its log (log cleanup removed it), so the source cannot read on from there; read the table again with a new --job-id",
                    self.table.location()
                )));
            }
            state.next_look = Some(Instant::now() + self.poll_interval);
            return Ok(Found::NotYet);
        };
        let unit = Arc::new(self.changes(version, actions)?);
        let mut state = self.state();
        state.newest = state.newest.max(version);
        state.units.insert(version, Arc::clone(&unit));
        while state.units.len() > KEPT_VERSIONS {
            state.units.pop_first();
        }
        Ok(Found::Unit(unit))
    }

    /// The snapshot unit at `version`: its live files.
    async fn snapshot_unit(&self, version: u64) -> Result<Arc<Unit>, SourceError> {
        if let Some(unit) = self.state().snapshots.get(&version).and_then(Weak::upgrade) {
            return Ok(unit);
        }
        let snapshot = kernel::read_existing_snapshot(&self.table, Some(version)).await?;
        features::check(&snapshot, self.table.location(), Operation::Read)?;
        let schema = self.reading_schema();
        let files = snapshot.files.into_values().collect();
        let unit = Arc::new(Unit::new(version, files, self.partitions, schema));
        self.state()
            .snapshots
            .insert(version, Arc::downgrade(&unit));
        Ok(unit)
    }

    /// The unit of the changes of `version` (its `actions`): its data-changing `add`s,
    /// in the commit's order, after checking what else it does.
    fn changes(&self, version: u64, actions: Vec<Action>) -> Result<Unit, SourceError> {
        let table = self.table.location();
        let mut files = Vec::new();
        let mut removed = Vec::new();
        let (mut protocol, mut metadata) = (None, None);
        for action in actions {
            match action {
                Action::Add(add) if add.data_change => files.push(add),
                Action::Remove(remove) if remove.data_change => removed.push(remove.path),
                Action::Metadata(m) => metadata = Some(m),
                Action::Protocol(p) => protocol = Some(p),
                _ => {}
            }
        }
        // A new protocol or new table properties (column mapping) may ask for a
        // feature the source does not read.
        if protocol.is_some() || metadata.is_some() {
            let snapshot = Snapshot {
                version,
                protocol: protocol.or_else(|| self.protocol.clone()),
                metadata: metadata.clone(),
                ..Snapshot::default()
            };
            features::check(&snapshot, table, Operation::Read)
                .map_err(|e| SourceError::Stopped(format!("version {version} of {table}: {e}")))?;
        }
        let schema = match &metadata {
            Some(m) => Some(TableSchema::of(table, version, m)?),
            None => None,
        };
        let reading = match schema {
            None => self.reading_schema(),
            Some(schema) => self.follow_schema(schema)?,
        };
        if !removed.is_empty() {
            let what = format!(
                "version {version} of {table} removes data ({} file(s) with dataChange=true, e.g. {}: a DELETE, UPDATE, MERGE or overwrite)",
                removed.len(),
                removed[0]
            );
            if !self.ignore_deletes {
                return Err(SourceError::Stopped(format!(
                    "{what}; the Delta source reads appends only: run with --ignore-deletes to skip such versions (their added rows too), or start after it with --starting-version"
                )));
            }
            tracing::warn!(version, "{what}: skipped (--ignore-deletes)");
            files.clear();
        }
        Ok(Unit::new(version, files, self.partitions, reading))
    }

    /// Takes the schema a version's `metaData` sets: a newer one than the reading
    /// schema becomes the reading schema if it only adds nullable columns; an older one
    /// must fit the reading schema the same way. Anything else fails, naming the
    /// versions and the columns.
    fn follow_schema(&self, schema: TableSchema) -> Result<Arc<TableSchema>, SourceError> {
        let mut state = self.state();
        let reading = Arc::clone(&state.reading);
        let table = self.table.location();
        let (older, newer) = match schema.version > reading.version {
            true => (reading.as_ref(), &schema),
            false => (&schema, reading.as_ref()),
        };
        if let Some(problem) = older.change_to(newer) {
            return Err(SourceError::Stopped(format!(
                "the schema of {table} changed between versions {} and {}: {problem}; the Delta source follows only new nullable columns",
                older.version, newer.version
            )));
        }
        if schema.version > reading.version {
            state.reading = Arc::new(schema);
        }
        Ok(Arc::clone(&state.reading))
    }
}
