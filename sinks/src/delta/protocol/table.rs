//! A Delta table in an object store: creating it, opening it against the schema a writer
//! expects, reading its snapshot and committing to it.

use std::collections::BTreeMap;
use std::sync::Arc;

use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt};

use crate::clock::{self, SharedClock};
use crate::delta::DeltaError;
use crate::delta::protocol::actions::{Action, Add, CommitInfo, Format, Metadata, Protocol};
use crate::delta::protocol::checkpoint::list_log_objects;
use crate::delta::protocol::features::{self, Operation};
use crate::delta::protocol::log::{
    CommitOutcome, commit_version, read_commit, read_commit_if_exists, write_commit,
};
use crate::delta::protocol::schema::Schema;
use crate::delta::protocol::snapshot::Snapshot;
use crate::delta::protocol::store::{open_existing_store, open_store};
use crate::parquet::data_file_location;

/// A Delta table at `root` in `store`.
#[derive(Clone, Debug)]
pub struct DeltaTable {
    store: Arc<dyn ObjectStore>,
    root: Path,
    location: String,
    /// Commit timestamps, file times, retention cut-offs and fresh ids.
    clock: SharedClock,
}

impl DeltaTable {
    /// The table at `root` in `store`; `location` names it in messages.
    pub fn new(store: Arc<dyn ObjectStore>, root: Path, location: impl Into<String>) -> Self {
        DeltaTable {
            store,
            root,
            location: location.into(),
            clock: clock::system(),
        }
    }

    /// Takes the time and fresh ids from `clock` (the system's by default) for
    /// everything written to this table: commits, data files, retention.
    pub fn with_clock(mut self, clock: SharedClock) -> Self {
        self.clock = clock;
        self
    }

    /// The table's clock.
    pub fn clock(&self) -> &SharedClock {
        &self.clock
    }

    /// The table at `url` (see [`open_store`] for the URLs supported).
    pub fn open_url(url: &str) -> Result<Self, DeltaError> {
        let (store, root) = open_store(url)?;
        Ok(DeltaTable::new(store, root, url))
    }

    /// The table at `url`, for reading: unlike [`open_url`](Self::open_url), a local
    /// directory is not created (see [`open_existing_store`]).
    pub fn open_existing_url(url: &str) -> Result<Self, DeltaError> {
        let (store, root) = open_existing_store(url)?;
        Ok(DeltaTable::new(store, root, url))
    }

    /// The table's location, as given.
    pub fn location(&self) -> &str {
        &self.location
    }

    /// The object store.
    pub fn store(&self) -> &Arc<dyn ObjectStore> {
        &self.store
    }

    /// The table root in the store.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The latest snapshot, or `None` if no table exists here yet.
    pub async fn snapshot(&self) -> Result<Option<Snapshot>, DeltaError> {
        Snapshot::load(self.store.as_ref(), &self.root).await
    }

    /// The latest snapshot; an error naming the table if there is none.
    pub async fn existing_snapshot(&self) -> Result<Snapshot, DeltaError> {
        self.snapshot().await?.ok_or_else(|| self.no_table())
    }

    /// The latest snapshot, checked to need no feature `operation` does not implement
    /// (see [`features`]); an error naming the table if there is none.
    pub async fn snapshot_for(&self, operation: Operation) -> Result<Snapshot, DeltaError> {
        let snapshot = self.existing_snapshot().await?;
        features::check(&snapshot, &self.location, operation)?;
        Ok(snapshot)
    }

    /// The error for a location that holds no table.
    pub(in crate::delta) fn no_table(&self) -> DeltaError {
        DeltaError::Url {
            url: self.location.clone(),
            message: "no Delta table here (_delta_log/ holds no commit or checkpoint)".into(),
        }
    }

    /// The actions of commit `version`.
    pub async fn read_commit(&self, version: u64) -> Result<Vec<Action>, DeltaError> {
        read_commit(self.store.as_ref(), &self.root, version).await
    }

    /// The actions of commit `version`, or `None` if there is no such commit: not yet
    /// (the newest version is below it) or not any more (log cleanup deleted it).
    pub async fn read_commit_if_exists(
        &self,
        version: u64,
    ) -> Result<Option<Vec<Action>>, DeltaError> {
        read_commit_if_exists(self.store.as_ref(), &self.root, version).await
    }

    /// The first version committed at or after `ms` (ms since the epoch), as Spark's
    /// `startingTimestamp` finds it: a commit's time is its file's modification time,
    /// made increasing (a commit older than the one before it counts as 1 ms after
    /// it); `None` if every commit is older.
    pub async fn first_version_at(&self, ms: u64) -> Result<Option<u64>, DeltaError> {
        let objects = list_log_objects(self.store.as_ref(), &self.root, None).await?;
        let mut commits: Vec<(u64, i64)> = objects
            .iter()
            .filter_map(|meta| {
                let version = commit_version(meta.location.filename()?)?;
                Some((version, meta.last_modified.timestamp_millis()))
            })
            .collect();
        commits.sort_unstable();
        let mut previous = i64::MIN;
        for (version, modified) in commits {
            let time = modified.max(previous.saturating_add(1));
            previous = time;
            if time >= 0 && time as u64 >= ms {
                return Ok(Some(version));
            }
        }
        Ok(None)
    }

    /// Deletes the data files of `adds` (written, but not committed); files already
    /// gone are fine.
    pub async fn delete_data_files(&self, adds: &[Add]) -> Result<(), DeltaError> {
        for add in adds {
            let location = data_file_location(&self.root, &add.path).map_err(|e| {
                DeltaError::Corrupt(format!(
                    "add.path {} is not a valid URI path: {e}",
                    add.path
                ))
            })?;
            match self.store.delete(&location).await {
                Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
                Err(source) => {
                    return Err(DeltaError::Store {
                        path: location.to_string(),
                        source,
                    });
                }
            }
        }
        Ok(())
    }

    /// Writes `actions` as commit `version` if that version does not exist yet.
    pub async fn try_commit(
        &self,
        version: u64,
        actions: &[Action],
    ) -> Result<CommitOutcome, DeltaError> {
        write_commit(self.store.as_ref(), &self.root, version, actions).await
    }

    /// Opens the table for appending, creating it (version 0: protocol reader 1 / writer
    /// 2 and `metaData`) if there is none, and checks that an append may write it (see
    /// [`features`]) and that its schema and partition columns are the ones given. Two writers creating the same table at once agree: the loser
    /// opens the winner's table.
    pub async fn create_or_open(
        &self,
        schema: &Schema,
        partition_columns: &[&str],
        configuration: BTreeMap<String, String>,
        engine_info: &str,
    ) -> Result<Snapshot, DeltaError> {
        if let Some(snapshot) = self.snapshot().await? {
            return self.check(snapshot, schema, partition_columns);
        }
        if let Some(detail) = schema.unwritable() {
            return Err(DeltaError::SchemaMismatch {
                table: self.location.clone(),
                detail,
            });
        }
        let now = self.clock.now_ms();
        let metadata = Metadata {
            id: self.clock.new_id().to_string(),
            name: None,
            description: None,
            format: Format {
                provider: "parquet".to_owned(),
                options: BTreeMap::new(),
            },
            schema_string: schema.to_schema_string(),
            partition_columns: partition_columns.iter().map(|c| (*c).to_owned()).collect(),
            created_time: Some(now),
            configuration,
            ..Metadata::default()
        };
        let info = CommitInfo {
            timestamp: Some(now),
            operation: Some("CREATE TABLE".to_owned()),
            engine_info: Some(engine_info.to_owned()),
            txn_id: Some(self.clock.new_id().to_string()),
            ..CommitInfo::default()
        };
        let actions = [
            Action::Protocol(Protocol::reader1_writer2()),
            Action::Metadata(metadata),
            Action::CommitInfo(info),
        ];
        // Whoever wins version 0, the table now exists: read it back and check it.
        self.try_commit(0, &actions).await?;
        let snapshot = self.snapshot().await?.ok_or_else(|| {
            DeltaError::Corrupt(format!(
                "{}: version 0 vanished right after it was written",
                self.location
            ))
        })?;
        self.check(snapshot, schema, partition_columns)
    }

    /// Checks that a writer appending rows of `schema` partitioned by
    /// `partition_columns` may write the table at `snapshot`: it needs no feature an
    /// append does not implement, and has that schema and partitioning.
    fn check(
        &self,
        snapshot: Snapshot,
        schema: &Schema,
        partition_columns: &[&str],
    ) -> Result<Snapshot, DeltaError> {
        features::check(&snapshot, &self.location, Operation::Append)?;
        let (metadata, table_schema) = snapshot.schema(&self.location)?;
        let mut problems: Vec<String> = schema.mismatch(&table_schema).into_iter().collect();
        if metadata.partition_columns != partition_columns {
            problems.push(format!(
                "the table is partitioned by {:?}, this writer partitions by {partition_columns:?}",
                metadata.partition_columns
            ));
        }
        if problems.is_empty() {
            Ok(snapshot)
        } else {
            Err(DeltaError::SchemaMismatch {
                table: self.location.clone(),
                detail: problems.join("; "),
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::delta::protocol::actions::Remove;
    use crate::delta::testing::{add, block_on, txn};

    fn schema() -> Schema {
        Schema::of(&[
            ("dt", "timestamp"),
            ("accountId", "string"),
            ("amount", "double"),
            ("date", "string"),
        ])
    }

    #[test]
    fn create_commit_and_replay() {
        block_on(async {
            let table = DeltaTable::open_url("memory://t").expect("open");
            assert_eq!(table.snapshot().await.expect("load"), None, "no table yet");
            let err = table.existing_snapshot().await.expect_err("no table");
            assert!(
                err.to_string()
                    .contains("cannot open table memory://t: no Delta table here"),
                "{err}"
            );
            let v0 = table
                .create_or_open(&schema(), &["date"], BTreeMap::new(), "tidelake-test")
                .await
                .expect("create");
            assert_eq!(v0.version, 0);
            assert_eq!(v0.protocol, Some(Protocol::reader1_writer2()));
            assert_eq!(
                v0.metadata.as_ref().map(|m| m.partition_columns.clone()),
                Some(vec!["date".to_owned()])
            );

            assert_eq!(
                table
                    .try_commit(1, &[add("a"), add("b"), txn("job-w0", 3)])
                    .await
                    .expect("commit"),
                CommitOutcome::Committed
            );
            assert_eq!(
                table.try_commit(1, &[add("c")]).await.expect("commit"),
                CommitOutcome::VersionTaken,
                "put-if-absent: version 1 is taken"
            );
            let remove = Action::Remove(Remove {
                path: "a".into(),
                deletion_timestamp: Some(2),
                data_change: false,
                extended_file_metadata: Some(true),
                partition_values: None,
                size: Some(10),
                ..Default::default()
            });
            table
                .try_commit(2, &[remove, add("d"), txn("job-w0", 4), txn("job-w1", 1)])
                .await
                .expect("commit");

            let snapshot = table.snapshot().await.expect("load").expect("exists");
            assert_eq!(snapshot.version, 2);
            assert_eq!(snapshot.files.keys().collect::<Vec<_>>(), ["b", "d"]);
            assert_eq!(snapshot.tombstones.keys().collect::<Vec<_>>(), ["a"]);
            assert_eq!(snapshot.txn_version("job-w0"), Some(4));
            assert_eq!(snapshot.txn_version("job-w1"), Some(1));
            assert_eq!(snapshot.txn_version("job-w2"), None);

            // Opening again checks the schema and creates nothing.
            let again = table
                .create_or_open(&schema(), &["date"], BTreeMap::new(), "t")
                .await
                .expect("open");
            assert_eq!(again.version, 2);
        });
    }

    #[test]
    fn a_schema_mismatch_is_refused_naming_the_columns() {
        block_on(async {
            let table = DeltaTable::open_url("memory://t").expect("open");
            table
                .create_or_open(&schema(), &["date"], BTreeMap::new(), "t")
                .await
                .expect("create");
            let other = Schema::of(&[
                ("dt", "timestamp"),
                ("accountId", "long"),
                ("amount", "double"),
                ("date", "string"),
            ]);
            let err = table
                .create_or_open(&other, &["date"], BTreeMap::new(), "t")
                .await
                .expect_err("mismatch");
            assert!(
                err.to_string()
                    .contains("`accountId` is string in the table but long here"),
                "{err}"
            );
            let err = table
                .create_or_open(&schema(), &[], BTreeMap::new(), "t")
                .await
                .expect_err("partitioning");
            assert!(err.to_string().contains("partitioned by"), "{err}");
        });
    }

    #[test]
    fn local_tables_are_files_in_delta_log() {
        block_on(async {
            let dir = tempfile::tempdir().expect("tempdir");
            let url = dir.path().join("lake/tx").display().to_string();
            let table = DeltaTable::open_url(&url).expect("open");
            table
                .create_or_open(&schema(), &["date"], BTreeMap::new(), "t")
                .await
                .expect("create");
            table.try_commit(1, &[add("x")]).await.expect("commit");
            assert_eq!(
                table.try_commit(1, &[add("y")]).await.expect("commit"),
                CommitOutcome::VersionTaken
            );
            let log = dir.path().join("lake/tx/_delta_log");
            let first = std::fs::read_to_string(log.join("00000000000000000000.json")).expect("v0");
            assert!(first.lines().next().is_some_and(|l| {
                l.starts_with(r#"{"protocol":{"minReaderVersion":1,"minWriterVersion":2}"#)
            }));
            let file_url = format!("file://{url}");
            let reopened = DeltaTable::open_url(&file_url).expect("open");
            assert_eq!(
                reopened.snapshot().await.expect("load").map(|s| s.version),
                Some(1)
            );
        });
    }

    #[test]
    fn gaps_and_missing_early_commits_are_reported() {
        block_on(async {
            let table = DeltaTable::open_url("memory://t").expect("open");
            table
                .create_or_open(&schema(), &["date"], BTreeMap::new(), "t")
                .await
                .expect("create");
            table.try_commit(2, &[add("x")]).await.expect("commit");
            let err = table.snapshot().await.expect_err("gap");
            assert!(err.to_string().contains("from version 0 to 2"), "{err}");

            let cleaned = DeltaTable::open_url("memory://u").expect("open");
            cleaned.try_commit(5, &[add("x")]).await.expect("commit");
            let err = cleaned.snapshot().await.expect_err("no checkpoint");
            assert!(
                matches!(err, DeltaError::Corrupt(_))
                    && err.to_string().contains("versions 0 to 4 are missing"),
                "{err}"
            );
        });
    }
}
