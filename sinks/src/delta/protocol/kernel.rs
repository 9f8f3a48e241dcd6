//! Reading a table with the Delta Kernel (`delta_kernel`, the official Rust kernel):
//! what a reader of the table sees at a version.
//!
//! The kernel finds the log segment (`_last_checkpoint`, classic, multi-part and V2
//! checkpoints with their sidecars, the commits after them, gaps), replays it, and
//! scans the live files with their deletion vectors; tidelake turns the result into a
//! [`Snapshot`] of live files for the table commands ([`crate::delta::inspection::layout`],
//! [`crate::delta::inspection::validate`], [`crate::delta::inspection::skipping`]). It reads every table feature the kernel
//! reads (deletion vectors, column mapping, V2 checkpoints, row tracking, domain
//! metadata, in-commit timestamps, variant, type widening, …) and refuses the others,
//! naming them. What stays hand-written and why: `docs/delta-kernel.md`.
//!
//! The kernel's API is synchronous: it runs its I/O on one multi-threaded Tokio
//! runtime of its own per process, and [`read_snapshot`] calls it from a blocking
//! thread of the caller's runtime.

use std::sync::{Arc, OnceLock};

use arrow::record_batch::RecordBatch;
use delta_kernel::actions::deletion_vector::DeletionVectorDescriptor;
use delta_kernel::engine::arrow_data::ArrowEngineData;
use delta_kernel::snapshot::CheckpointWriteResult;
use delta_kernel::{Engine, KernelError, Snapshot as KernelSnapshot};
use delta_kernel_default_engine::executor::tokio::TokioMultiThreadExecutor;
use delta_kernel_default_engine::{DefaultEngine, DefaultEngineBuilder};
use futures::StreamExt;
use object_store::ObjectStore;
use object_store::local::LocalFileSystem;
use serde_json::{Map, Value};
use url::Url;

use crate::delta::DeltaError;
use crate::delta::protocol::actions::{Add, Metadata, Protocol};
use crate::delta::protocol::columns::{DeletionVectors, Longs, StrMaps, Strings, child, column};
use crate::delta::protocol::log::log_dir;
use crate::delta::protocol::snapshot::Snapshot;
use crate::delta::protocol::store::local_dir;
use crate::delta::protocol::table::DeltaTable;
use crate::parquet::stats::parse_num_records;

/// The live state of `table` at `version` (the latest if `None`) as a reader sees it,
/// read by the Delta Kernel, or `None` if `_delta_log/` holds nothing. The snapshot has
/// the version, protocol, metadata and live files (`add.deletionVector` and
/// `add.baseRowId` are kept in each [`Add`]'s `other`); it has no tombstones and no
/// txns, which the kernel does not expose.
pub async fn read_snapshot(
    table: &DeltaTable,
    version: Option<u64>,
) -> Result<Option<Snapshot>, DeltaError> {
    if log_is_empty(table).await? {
        return Ok(None);
    }
    with_engine(table, "reading the table's files", move |engine, url| {
        read_blocking(engine, url, version)
    })
    .await
    .map(Some)
}

/// Like [`read_snapshot`], but an error naming the table if there is none: the table as
/// `tidelake table files` and `table validate` read it.
pub async fn read_existing_snapshot(
    table: &DeltaTable,
    version: Option<u64>,
) -> Result<Snapshot, DeltaError> {
    read_snapshot(table, version)
        .await?
        .ok_or_else(|| table.no_table())
}

/// Writes the Delta Kernel's checkpoint of `table` at `version` (a classic one, with
/// every action the kernel keeps: deletion vectors, row ids, domain metadata, the
/// tombstones and txns within their retentions by the system clock) and points
/// `_last_checkpoint` at it; false if a checkpoint of that version was there already.
/// For the tables whose state tidelake's own checkpoint writer does not hold
/// ([`crate::delta::maintenance::cleanup::checkpoint`]). The kernel refuses the tables it
/// cannot write (CHECK constraints, generated and identity columns), naming the reason.
pub async fn write_checkpoint(table: &DeltaTable, version: u64) -> Result<bool, DeltaError> {
    with_engine(table, "writing a checkpoint", move |engine, url| {
        let snapshot = KernelSnapshot::builder_for(url.as_str())
            .at_version(version)
            .build(engine)?;
        let (result, _) = snapshot.checkpoint(engine, None)?;
        Ok(result == CheckpointWriteResult::Written)
    })
    .await
}

/// The deletion vectors of `adds` that are not what their descriptor says, as
/// `(add.path, what is wrong)`: the kernel cannot read the vector (a missing or short
/// file, a bad checksum or magic number, a bad inline encoding), or it deletes another
/// number of rows than its `cardinality`, or a row past the file's `stats.numRecords`.
pub async fn check_deletion_vectors(
    table: &DeltaTable,
    adds: Vec<Add>,
) -> Result<Vec<(String, String)>, DeltaError> {
    with_engine(table, "reading deletion vectors", move |engine, url| {
        Ok(adds
            .iter()
            .filter_map(|add| {
                let problem = deletion_vector_problem(engine, url, add)?;
                Some((add.path.clone(), problem))
            })
            .collect())
    })
    .await
}

fn deletion_vector_problem(engine: &KernelEngine, url: &Url, add: &Add) -> Option<String> {
    let descriptor = add.other.get("deletionVector")?;
    let stated = descriptor.get("cardinality").and_then(Value::as_u64);
    let descriptor: DeletionVectorDescriptor = match serde_json::from_value(descriptor.clone()) {
        Ok(descriptor) => descriptor,
        Err(e) => return Some(format!("the descriptor does not parse: {e}")),
    };
    let deleted = match descriptor.read(engine.storage_handler(), url) {
        Ok(deleted) => deleted,
        Err(e) => return Some(format!("cannot be read: {e}")),
    };
    if stated != Some(deleted.len()) {
        return Some(format!(
            "deletes {} rows, but its cardinality is {}",
            deleted.len(),
            stated.map_or_else(|| "missing".to_owned(), |n| n.to_string())
        ));
    }
    let rows = add.stats.as_deref().map(parse_num_records);
    if let (Some(Ok(Some(rows))), Some(last)) = (rows, deleted.max())
        && last >= rows
    {
        return Some(format!(
            "deletes row {last}, but the file has {rows} rows (stats.numRecords)"
        ));
    }
    None
}

/// Where `table`'s deletion vectors are stored: resolves the `deletionVector` of an
/// action to its file, as the kernel does (`u`: `<prefix>/deletion_vector_<uuid>.bin`
/// under the table root, `p`: the absolute path given, `i`: inline, no file).
pub struct DeletionVectorFiles {
    root: Url,
}

impl DeletionVectorFiles {
    /// The resolver for `table`'s deletion vectors.
    pub fn new(table: &DeltaTable) -> Result<Self, DeltaError> {
        let (_, root) = kernel_location(table)?;
        Ok(DeletionVectorFiles { root })
    }

    /// The file that the deletion vector in `other` (an `add`'s or a `remove`'s fields)
    /// is stored in, as a path relative to the table root, URI-encoded as `add.path` is;
    /// `None` without a vector, for an inline one, or for a file outside the table. An
    /// error if the descriptor does not parse.
    pub fn path_of(&self, other: &Map<String, Value>) -> Result<Option<String>, String> {
        let Some(descriptor) = other.get("deletionVector") else {
            return Ok(None);
        };
        let descriptor: DeletionVectorDescriptor = serde_json::from_value(descriptor.clone())
            .map_err(|e| format!("its deletion vector does not parse: {e}"))?;
        let url = descriptor
            .absolute_path(&self.root)
            .map_err(|e| format!("its deletion vector names no file: {e}"))?;
        Ok(url.and_then(|url| {
            url.as_str()
                .strip_prefix(self.root.as_str())
                .map(str::to_owned)
        }))
    }
}

type KernelEngine = DefaultEngine<TokioMultiThreadExecutor>;

/// Runs `work` (`operation`, in messages) with a kernel engine for `table` and the
/// table's URL on a blocking thread (the kernel blocks on its own runtime).
async fn with_engine<T: Send + 'static>(
    table: &DeltaTable,
    operation: &'static str,
    work: impl FnOnce(&KernelEngine, &Url) -> Result<T, KernelError> + Send + 'static,
) -> Result<T, DeltaError> {
    let (store, url) = kernel_location(table)?;
    let location = table.location().to_owned();
    tokio::task::spawn_blocking(move || {
        let engine = DefaultEngineBuilder::new(store)
            .with_task_executor(executor()?)
            .build();
        work(&engine, &url)
    })
    .await
    .map_err(|e| DeltaError::Corrupt(format!("the Delta Kernel's reader thread failed: {e}")))?
    .map_err(|source| kernel_error(&location, operation, source))
}

/// The store and table URL the kernel reads `table` through: its own local file system
/// (the kernel maps `file://` URLs to absolute paths) for a local table, else the
/// table's store, with the root as the URL's path.
fn kernel_location(table: &DeltaTable) -> Result<(Arc<dyn ObjectStore>, Url), DeltaError> {
    let bad = |message: String| DeltaError::Url {
        url: table.location().to_owned(),
        message,
    };
    if let Some(dir) = local_dir(table.location()) {
        let dir = std::fs::canonicalize(dir).map_err(|e| bad(e.to_string()))?;
        let url = Url::from_directory_path(&dir)
            .map_err(|()| bad(format!("{} is not an absolute path", dir.display())))?;
        return Ok((Arc::new(LocalFileSystem::new()), url));
    }
    let (scheme, rest) = table
        .location()
        .split_once("://")
        .ok_or_else(|| bad("not a URL".into()))?;
    let host = rest.split('/').next().unwrap_or_default();
    let root = table.root().as_ref();
    let path = if root.is_empty() {
        "/".to_owned()
    } else {
        format!("/{root}/")
    };
    let url = Url::parse(&format!("{scheme}://{host}{path}")).map_err(|e| bad(e.to_string()))?;
    Ok((Arc::clone(table.store()), url))
}

async fn log_is_empty(table: &DeltaTable) -> Result<bool, DeltaError> {
    let dir = log_dir(table.root());
    match table.store().list(Some(&dir)).next().await {
        None => Ok(true),
        Some(Ok(_)) => Ok(false),
        Some(Err(source)) => Err(DeltaError::Store {
            path: dir.to_string(),
            source,
        }),
    }
}

/// The process's runtime for the kernel's I/O.
fn executor() -> Result<Arc<TokioMultiThreadExecutor>, KernelError> {
    static EXECUTOR: OnceLock<Arc<TokioMultiThreadExecutor>> = OnceLock::new();
    if let Some(executor) = EXECUTOR.get() {
        return Ok(Arc::clone(executor));
    }
    let executor = Arc::new(TokioMultiThreadExecutor::new_owned_runtime(Some(2), None)?);
    Ok(Arc::clone(EXECUTOR.get_or_init(|| executor)))
}

fn read_blocking(
    engine: &KernelEngine,
    url: &Url,
    version: Option<u64>,
) -> Result<Snapshot, KernelError> {
    let mut builder = KernelSnapshot::builder_for(url.as_str());
    if let Some(version) = version {
        builder = builder.at_version(version);
    }
    let kernel = builder.build(engine)?;
    let configuration = kernel.table_configuration();
    let mut snapshot = Snapshot {
        version: kernel.version(),
        protocol: Some(convert::<Protocol>(configuration.protocol())?),
        metadata: Some(convert::<Metadata>(configuration.metadata())?),
        ..Snapshot::default()
    };
    let scan = Arc::clone(&kernel).scan_builder().build()?;
    for scan_metadata in scan.scan_metadata(engine)? {
        let rows = scan_metadata?.scan_files.apply_selection_vector()?;
        let rows = ArrowEngineData::try_from_engine_data(rows)?;
        for add in scan_row_adds(rows.record_batch())
            .map_err(|e| KernelError::generic(format!("a scan row of the kernel: {e}")))?
        {
            snapshot.files.insert(add.path.clone(), add);
        }
    }
    Ok(snapshot)
}

/// One of the kernel's actions as tidelake's, through their common JSON form.
fn convert<T: serde::de::DeserializeOwned>(
    action: &impl serde::Serialize,
) -> Result<T, KernelError> {
    serde_json::to_value(action)
        .and_then(serde_json::from_value)
        .map_err(|e| {
            KernelError::generic(format!("the kernel's {}: {e}", std::any::type_name::<T>()))
        })
}

/// The live files of a batch of the kernel's scan rows (`path`, `size`,
/// `modificationTime`, `stats`, `deletionVector`, `fileConstantValues`), as the adds
/// that made them live.
fn scan_row_adds(batch: &RecordBatch) -> Result<Vec<Add>, String> {
    let arrow = |e: arrow::error::ArrowError| e.to_string();
    let path = Strings::new(batch.column_by_name("path")).map_err(arrow)?;
    let size = Longs::new(batch.column_by_name("size")).map_err(arrow)?;
    let time = Longs::new(batch.column_by_name("modificationTime")).map_err(arrow)?;
    let stats = Strings::new(batch.column_by_name("stats")).map_err(arrow)?;
    let constants = column(batch, "fileConstantValues");
    let partitions = StrMaps::new(child(constants, "partitionValues")).map_err(arrow)?;
    let tags = StrMaps::new(child(constants, "tags")).map_err(arrow)?;
    let base_row_id = Longs::new(child(constants, "baseRowId")).map_err(arrow)?;
    let row_commit_version =
        Longs::new(child(constants, "defaultRowCommitVersion")).map_err(arrow)?;
    let dvs = DeletionVectors::new(batch.column_by_name("deletionVector")).map_err(arrow)?;

    let mut adds = Vec::with_capacity(batch.num_rows());
    for i in 0..batch.num_rows() {
        let Some(file) = path.get(i) else {
            return Err(format!("row {i}: path is null"));
        };
        let mut other = Map::new();
        if let Some(descriptor) = dvs.get(i) {
            other.insert("deletionVector".into(), descriptor);
        }
        if let Some(id) = base_row_id.get(i) {
            other.insert("baseRowId".into(), Value::from(id));
        }
        if let Some(version) = row_commit_version.get(i) {
            other.insert("defaultRowCommitVersion".into(), Value::from(version));
        }
        adds.push(Add {
            path: file,
            partition_values: partitions.get(i).unwrap_or_default(),
            size: size.get(i).unwrap_or_default(),
            modification_time: time.get(i).unwrap_or_default(),
            data_change: true,
            stats: stats.get(i),
            tags: tags.get(i).filter(|t| !t.is_empty()),
            other,
        });
    }
    Ok(adds)
}

/// A kernel error as tidelake's: a feature or protocol the kernel cannot read is a
/// refusal naming it (exit 2), anything else a corrupt or unreadable log.
fn kernel_error(table: &str, operation: &'static str, mut source: KernelError) -> DeltaError {
    // The kernel wraps an error with a backtrace when RUST_BACKTRACE asks for one; the
    // message is the error's own.
    while let KernelError::Backtraced { source: inner, .. } = source {
        source = *inner;
    }
    match source {
        KernelError::Unsupported(detail) => DeltaError::UnsupportedFeature {
            table: table.to_owned(),
            feature: "a part of the protocol the Delta Kernel does not implement".to_owned(),
            operation,
            detail,
        },
        KernelError::ObjectStore(source) => DeltaError::Store {
            path: table.to_owned(),
            source,
        },
        KernelError::MissingVersion(version) => DeltaError::Corrupt(format!(
            "{table}: version {version} is missing from the log, and no checkpoint covers it"
        )),
        other => DeltaError::Corrupt(format!("{table}: {other}")),
    }
}
