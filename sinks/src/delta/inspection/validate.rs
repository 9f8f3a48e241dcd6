//! Validating a table against its store: does the log replay, and is every live file
//! there, whole, and as many rows as its stats say?
//!
//! [`validate`] reads the log with the Delta Kernel ([`read_existing_snapshot`]: a
//! gap in the versions, or a commit or checkpoint that does not parse, is a
//! [`Problem::Log`]), then checks each live file:
//! - its `add.path` decodes to an object (see [`data_file_location`]) that exists;
//! - the object's size is `add.size` (readers find the footer with it);
//! - its Parquet footer decodes, and its row count is `stats.numRecords` when the stats
//!   give one (readers trust the stats to skip files);
//! - its deletion vector, if any, reads (inline or from its file, checksum checked by
//!   the kernel) and deletes `cardinality` rows, all within the file.
//!
//! Every problem is reported, not just the first. The footer is read with ranged GETs:
//! one of the file's last [`FOOTER_PREFETCH`] bytes, which also gives the object's size,
//! and a second only when the footer is longer.

use std::fmt;

use bytes::Bytes;
use futures::{StreamExt, stream};
use object_store::path::Path;
use object_store::{GetOptions, GetRange, ObjectStore, ObjectStoreExt};
use parquet::file::FOOTER_SIZE;
use parquet::file::metadata::{FooterTail, ParquetMetaDataReader};
use serde::Serialize;

use crate::delta::DeltaError;
use crate::delta::protocol::actions::Add;
use crate::delta::protocol::kernel::{check_deletion_vectors, read_existing_snapshot};
use crate::delta::protocol::table::DeltaTable;
use crate::parquet::data_file_location;
use crate::parquet::stats::parse_num_records;

/// Bytes read from the end of each data file at first: enough for the footer of a
/// typical file.
pub const FOOTER_PREFETCH: u64 = 64 * 1024;

/// Files checked at once.
const CONCURRENT_CHECKS: usize = 16;

/// Something wrong with the table.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(
    tag = "kind",
    rename_all = "camelCase",
    rename_all_fields = "camelCase"
)]
pub enum Problem {
    /// The log does not replay: versions are missing, or a commit or checkpoint does
    /// not parse. No file is checked then.
    Log {
        /// The replay error.
        detail: String,
    },
    /// A live file's `add.path` names no object (it does not decode or parse).
    BadPath {
        /// `add.path`.
        path: String,
        /// Why.
        detail: String,
    },
    /// A live file is not in the store.
    Missing {
        /// `add.path`.
        path: String,
    },
    /// A live file could not be read (for another reason than being missing).
    Unreadable {
        /// `add.path`.
        path: String,
        /// The store's error.
        detail: String,
    },
    /// A live file's size is not `add.size`.
    SizeMismatch {
        /// `add.path`.
        path: String,
        /// `add.size`.
        log_size: i64,
        /// The object's size.
        store_size: u64,
    },
    /// A live file's Parquet footer cannot be read.
    BadFooter {
        /// `add.path`.
        path: String,
        /// Why.
        detail: String,
    },
    /// A live file's `add.stats` is not a JSON object with a valid `numRecords`.
    BadStats {
        /// `add.path`.
        path: String,
        /// Why.
        detail: String,
    },
    /// A live file's deletion vector cannot be read, or deletes other rows than its
    /// descriptor says.
    BadDeletionVector {
        /// `add.path`.
        path: String,
        /// Why.
        detail: String,
    },
    /// A live file's footer row count is not its `stats.numRecords`.
    RowCountMismatch {
        /// `add.path`.
        path: String,
        /// `stats.numRecords`.
        num_records: u64,
        /// The row count of the Parquet footer.
        footer_rows: i64,
    },
}

impl Problem {
    /// The `add.path` of the file concerned (`None` for a log problem).
    pub fn path(&self) -> Option<&str> {
        match self {
            Problem::Log { .. } => None,
            Problem::BadPath { path, .. }
            | Problem::Missing { path }
            | Problem::Unreadable { path, .. }
            | Problem::SizeMismatch { path, .. }
            | Problem::BadFooter { path, .. }
            | Problem::BadStats { path, .. }
            | Problem::BadDeletionVector { path, .. }
            | Problem::RowCountMismatch { path, .. } => Some(path),
        }
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Problem::Log { detail } => write!(f, "the log does not replay: {detail}"),
            Problem::BadPath { path, detail } => {
                write!(f, "{path}: the path names no object: {detail}")
            }
            Problem::Missing { path } => write!(f, "{path}: missing from the store"),
            Problem::Unreadable { path, detail } => write!(f, "{path}: cannot be read: {detail}"),
            Problem::SizeMismatch {
                path,
                log_size,
                store_size,
            } => write!(
                f,
                "{path}: {store_size} bytes in the store, but add.size is {log_size}"
            ),
            Problem::BadFooter { path, detail } => {
                write!(f, "{path}: the Parquet footer cannot be read: {detail}")
            }
            Problem::BadStats { path, detail } => {
                write!(f, "{path}: add.stats does not parse: {detail}")
            }
            Problem::BadDeletionVector { path, detail } => {
                write!(f, "{path}: the deletion vector {detail}")
            }
            Problem::RowCountMismatch {
                path,
                num_records,
                footer_rows,
            } => write!(
                f,
                "{path}: the Parquet footer has {footer_rows} rows, but stats.numRecords is {num_records}"
            ),
        }
    }
}

/// What [`validate`] found.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ValidationReport {
    /// The version validated (`None` if the log does not replay).
    pub version: Option<u64>,
    /// Live files checked.
    pub files_checked: u64,
    /// Every problem found, log problems first, then by file path.
    pub problems: Vec<Problem>,
}

impl ValidationReport {
    /// True if no problem was found.
    pub fn is_ok(&self) -> bool {
        self.problems.is_empty()
    }
}

/// Validates `table`; see the [module docs](self). An error (rather than a problem in
/// the report) if there is no table, or the store fails while the log is read.
pub async fn validate(table: &DeltaTable) -> Result<ValidationReport, DeltaError> {
    let snapshot = match read_existing_snapshot(table, None).await {
        Ok(snapshot) => snapshot,
        Err(kernel @ DeltaError::Corrupt(_)) => {
            // The kernel's message may not name the commit or the line; tidelake's own
            // replay does, where it reads the table.
            let detail = match table.snapshot().await {
                Err(
                    ours @ (DeltaError::Corrupt(_)
                    | DeltaError::InvalidCommit { .. }
                    | DeltaError::Checkpoint { .. }),
                ) => ours.to_string(),
                _ => kernel.to_string(),
            };
            return Ok(ValidationReport {
                version: None,
                files_checked: 0,
                problems: vec![Problem::Log { detail }],
            });
        }
        Err(e) => return Err(e),
    };
    let (store, root) = (table.store().as_ref(), table.root());
    let per_file: Vec<Vec<Problem>> = stream::iter(snapshot.files.values())
        .map(|add| check_file(store, root, add))
        .buffered(CONCURRENT_CHECKS)
        .collect()
        .await;
    let mut problems: Vec<Problem> = per_file.into_iter().flatten().collect();
    let with_vectors: Vec<Add> = snapshot
        .files
        .values()
        .filter(|add| add.other.contains_key("deletionVector"))
        .cloned()
        .collect();
    if !with_vectors.is_empty() {
        let bad = check_deletion_vectors(table, with_vectors).await?;
        problems.extend(
            bad.into_iter()
                .map(|(path, detail)| Problem::BadDeletionVector { path, detail }),
        );
        // Stable: each file's own problems stay in the order they were found.
        problems.sort_by(|a, b| a.path().cmp(&b.path()));
    }
    Ok(ValidationReport {
        version: Some(snapshot.version),
        files_checked: snapshot.files.len() as u64,
        problems,
    })
}

/// The problems of one live file.
async fn check_file(store: &dyn ObjectStore, root: &Path, add: &Add) -> Vec<Problem> {
    let path = add.path.clone();
    let location = match data_file_location(root, &add.path) {
        Ok(location) => location,
        Err(e) => {
            let detail = e.to_string();
            return vec![Problem::BadPath { path, detail }];
        }
    };
    let (store_size, tail) = match read_tail(store, &location).await {
        Ok(read) => read,
        Err(object_store::Error::NotFound { .. }) => return vec![Problem::Missing { path }],
        Err(e) => {
            let detail = e.to_string();
            return vec![Problem::Unreadable { path, detail }];
        }
    };

    let mut problems = Vec::new();
    if u64::try_from(add.size) != Ok(store_size) {
        problems.push(Problem::SizeMismatch {
            path: path.clone(),
            log_size: add.size,
            store_size,
        });
    }
    let footer_rows = match footer_rows(store, &location, store_size, tail).await {
        Ok(rows) => Some(rows),
        Err(detail) => {
            problems.push(Problem::BadFooter {
                path: path.clone(),
                detail,
            });
            None
        }
    };
    match add.stats.as_deref().map(parse_num_records) {
        None | Some(Ok(None)) => {}
        Some(Err(e)) => problems.push(Problem::BadStats {
            path,
            detail: e.to_string(),
        }),
        Some(Ok(Some(num_records))) => {
            if let Some(footer_rows) = footer_rows
                && u64::try_from(footer_rows) != Ok(num_records)
            {
                problems.push(Problem::RowCountMismatch {
                    path,
                    num_records,
                    footer_rows,
                });
            }
        }
    }
    problems
}

/// The object's size and its last [`FOOTER_PREFETCH`] bytes (all of it if shorter).
async fn read_tail(
    store: &dyn ObjectStore,
    location: &Path,
) -> Result<(u64, Bytes), object_store::Error> {
    let options = GetOptions::default().with_range(Some(GetRange::Suffix(FOOTER_PREFETCH)));
    let result = store.get_opts(location, options).await?;
    let size = result.meta.size;
    Ok((size, result.bytes().await?))
}

/// The row count in the footer of the Parquet file at `location`, of `size` bytes, whose
/// last bytes are `tail`; the rest of the footer is fetched if `tail` does not hold it.
async fn footer_rows(
    store: &dyn ObjectStore,
    location: &Path,
    size: u64,
    tail: Bytes,
) -> Result<i64, String> {
    let Some(end) = tail.len().checked_sub(FOOTER_SIZE) else {
        return Err(format!("{size} bytes are too few for a Parquet file"));
    };
    let footer = FooterTail::try_from(&tail[end..]).map_err(|e| e.to_string())?;
    if footer.is_encrypted_footer() {
        return Err("the footer is encrypted".into());
    }
    let length = footer.metadata_length();
    let metadata = if length <= end {
        tail.slice(end - length..end)
    } else {
        let footer_end = size
            .checked_sub(FOOTER_SIZE as u64)
            .ok_or("the file is shorter than its footer")?;
        let start = footer_end.checked_sub(length as u64).ok_or_else(|| {
            format!("the footer says its metadata has {length} bytes, but the file has {size}")
        })?;
        store
            .get_range(location, start..footer_end)
            .await
            .map_err(|e| format!("reading the footer: {e}"))?
    };
    let metadata = ParquetMetaDataReader::decode_metadata(&metadata).map_err(|e| e.to_string())?;
    Ok(metadata.file_metadata().num_rows())
}

#[cfg(test)]
mod tests {
    use object_store::PutPayload;
    use serde_json::Value;

    use super::*;
    use crate::delta::Schema;
    use crate::delta::protocol::actions::Action;
    use crate::delta::protocol::log::commit_path;
    use crate::delta::testing::{block_on, txn};
    use crate::parquet::ArrowRows;
    use crate::parquet::rows::test_rows::{MICROS_PER_DAY, TestRow};
    use crate::parquet::{DataFileWriter, WriterOptions};

    /// 2024-05-01.
    const FIRST_DAY: i64 = 19_844;

    /// `n` rows on day `day` after 2024-05-01.
    fn rows(n: usize, day: i64) -> Vec<TestRow> {
        (0..n)
            .map(|i| TestRow {
                dt_micros: (FIRST_DAY + day) * MICROS_PER_DAY + i as i64 * 1_000,
                account_id: format!("a{i}"),
                amount: i as f64,
                alert: i % 7 == 0,
            })
            .collect()
    }

    /// A table whose version 1 adds real files of 100, 200 and 300 rows, one per day
    /// (returned smallest first).
    async fn table_with_files() -> (DeltaTable, Vec<Add>) {
        let table = DeltaTable::open_url("memory://t").expect("open");
        table
            .create_or_open(
                &Schema::of_rows::<TestRow>(),
                TestRow::partition_columns(),
                Default::default(),
                "tidelake/test",
            )
            .await
            .expect("create");
        let mut writer = DataFileWriter::<TestRow>::new(
            table.store().clone(),
            table.root().clone(),
            0,
            WriterOptions::default(),
        )
        .expect("writer");
        for (day, n) in [(0, 100), (1, 200), (2, 300)] {
            writer.write(&rows(n, day)).await.expect("write");
        }
        let mut adds: Vec<Add> = writer
            .finish()
            .await
            .expect("finish")
            .into_iter()
            .map(Add::from)
            .collect();
        adds.sort_by_key(|a| a.size);
        let mut actions: Vec<Action> = adds.iter().cloned().map(Action::Add).collect();
        actions.push(txn("job-w0", 1));
        table.try_commit(1, &actions).await.expect("commit");
        (table, adds)
    }

    fn location(table: &DeltaTable, add: &Add) -> Path {
        data_file_location(table.root(), &add.path).expect("path")
    }

    #[test]
    fn a_table_written_by_the_writer_is_valid() {
        block_on(async {
            let (table, adds) = table_with_files().await;
            assert_eq!(adds.len(), 3);
            let report = validate(&table).await.expect("validate");
            assert!(report.is_ok(), "{:?}", report.problems);
            assert_eq!(report.version, Some(1));
            assert_eq!(report.files_checked, 3);
        });
    }

    #[test]
    fn deleted_truncated_and_miscounted_files_are_all_reported() {
        block_on(async {
            let (table, adds) = table_with_files().await;
            let store = table.store();
            // Deleted.
            store
                .delete(&location(&table, &adds[0]))
                .await
                .expect("delete");
            // Truncated.
            let truncated = location(&table, &adds[1]);
            let bytes = store
                .get(&truncated)
                .await
                .expect("get")
                .bytes()
                .await
                .expect("bytes");
            store
                .put(&truncated, PutPayload::from(bytes.slice(..bytes.len() / 2)))
                .await
                .expect("put");
            // Lying stats: a new version replaces the third file's add.
            let mut stats: Value =
                serde_json::from_str(adds[2].stats.as_deref().expect("stats")).expect("JSON");
            stats["numRecords"] = Value::from(301);
            let lying = Add {
                stats: Some(stats.to_string()),
                ..adds[2].clone()
            };
            table
                .try_commit(2, &[Action::Add(lying)])
                .await
                .expect("commit");

            let report = validate(&table).await.expect("validate");
            assert!(!report.is_ok());
            assert_eq!(report.version, Some(2));
            assert_eq!(report.files_checked, 3);
            let mut problems = report.problems.clone();
            problems.sort_by(|a, b| a.path().cmp(&b.path()));
            let mut expected = vec![
                Problem::Missing {
                    path: adds[0].path.clone(),
                },
                Problem::SizeMismatch {
                    path: adds[1].path.clone(),
                    log_size: adds[1].size,
                    store_size: (adds[1].size / 2) as u64,
                },
                Problem::RowCountMismatch {
                    path: adds[2].path.clone(),
                    num_records: 301,
                    footer_rows: 300,
                },
            ];
            expected.sort_by(|a, b| a.path().cmp(&b.path()));
            // The truncated file's footer is gone too.
            let footer: Vec<&Problem> = problems
                .iter()
                .filter(|p| matches!(p, Problem::BadFooter { .. }))
                .collect();
            assert_eq!(footer.len(), 1, "{problems:?}");
            assert_eq!(footer[0].path(), Some(adds[1].path.as_str()));
            problems.retain(|p| !matches!(p, Problem::BadFooter { .. }));
            assert_eq!(problems, expected);
            let messages: Vec<String> = report.problems.iter().map(|p| p.to_string()).collect();
            assert!(
                messages.iter().any(|m| m
                    == &format!(
                        "{}: the Parquet footer has 300 rows, but stats.numRecords is 301",
                        adds[2].path
                    )),
                "{messages:?}"
            );
        });
    }

    #[test]
    fn a_wrong_size_or_unparseable_stats_are_reported_for_an_intact_file() {
        block_on(async {
            let (table, adds) = table_with_files().await;
            let wrong = Add {
                size: adds[0].size + 1,
                stats: Some("{nope".into()),
                ..adds[0].clone()
            };
            table
                .try_commit(2, &[Action::Add(wrong)])
                .await
                .expect("commit");
            let report = validate(&table).await.expect("validate");
            assert_eq!(report.problems.len(), 2, "{:?}", report.problems);
            assert_eq!(
                report.problems[0],
                Problem::SizeMismatch {
                    path: adds[0].path.clone(),
                    log_size: adds[0].size + 1,
                    store_size: adds[0].size as u64,
                }
            );
            assert!(matches!(report.problems[1], Problem::BadStats { .. }));
        });
    }

    #[test]
    fn a_gap_in_the_log_is_a_log_problem() {
        block_on(async {
            let (table, adds) = table_with_files().await;
            table
                .try_commit(3, &[Action::Add(adds[0].clone())])
                .await
                .expect("commit");
            let report = validate(&table).await.expect("validate");
            assert_eq!(report.version, None);
            assert_eq!(report.problems.len(), 1);
            let message = report.problems[0].to_string();
            assert!(
                message.starts_with("the log does not replay")
                    && message.contains("versions 2 to 2 are missing"),
                "{message}"
            );
            // A commit that does not parse is one too.
            table
                .store()
                .put(
                    &commit_path(table.root(), 2),
                    PutPayload::from_static(b"{nope\n"),
                )
                .await
                .expect("put");
            let report = validate(&table).await.expect("validate");
            assert!(
                matches!(&report.problems[..], [Problem::Log { detail }] if detail.contains("version 2, line 1")),
                "{:?}",
                report.problems
            );
        });
    }

    #[test]
    fn a_footer_longer_than_the_prefetch_is_fetched() {
        block_on(async {
            let (table, adds) = table_with_files().await;
            let store = table.store().as_ref();
            let location = location(&table, &adds[2]);
            let size = adds[2].size as u64;
            // Only the last 8 bytes prefetched: the metadata needs a second GET.
            let tail = store
                .get_range(&location, size - FOOTER_SIZE as u64..size)
                .await
                .expect("tail");
            assert_eq!(footer_rows(store, &location, size, tail).await, Ok(300));
            let err = footer_rows(store, &location, size, Bytes::from_static(b"PAR1"))
                .await
                .expect_err("short");
            assert!(err.contains("too few"), "{err}");
        });
    }

    #[test]
    fn no_table_is_an_error() {
        block_on(async {
            let table = DeltaTable::open_url("memory://none").expect("open");
            let err = validate(&table).await.expect_err("no table");
            assert!(err.to_string().contains("no Delta table"), "{err}");
        });
    }
}
