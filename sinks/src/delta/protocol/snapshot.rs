//! A snapshot: the table's state at one version, replayed from its log.
//!
//! Replay starts from the newest Parquet checkpoint, if there is one (see
//! [`crate::delta::protocol::checkpoint`]), and applies the JSON commits after it in version order: the
//! latest `protocol` and `metaData` win, an `add` makes a file live (and clears its
//! tombstone), a `remove` turns it into a tombstone, and each `txn` sets its
//! application's version. Within one commit the removes apply before the adds: the
//! protocol does not order a commit's actions, and a commit may remove a file and add
//! the same path again (with a new deletion vector).

use std::collections::{BTreeMap, BTreeSet, HashMap};

use object_store::ObjectStore;
use object_store::path::Path;

use crate::delta::DeltaError;
use crate::delta::protocol::actions::{
    Action, Add, Metadata, Protocol, Remove, Txn, logical_file_key,
};
use crate::delta::protocol::checkpoint::{
    list_log, read_checkpoint_files, read_last_checkpoint, usable_checkpoint,
};
use crate::delta::protocol::log::read_commit_if_exists;
use crate::delta::protocol::schema::Schema;

/// The state of a table at [`version`](Self::version).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Snapshot {
    /// The version this snapshot is at.
    pub version: u64,
    /// The table's protocol.
    pub protocol: Option<Protocol>,
    /// The table's metadata.
    pub metadata: Option<Metadata>,
    /// Live data files by path.
    pub files: BTreeMap<String, Add>,
    /// Removed files not yet vacuumed, by [logical file](logical_file_key): their path,
    /// and their deletion vector's id if they had one (a file whose deletion vector
    /// changed is live with the new one and a tombstone with the old).
    pub tombstones: BTreeMap<String, Remove>,
    /// The latest `txn` of each application.
    pub txns: HashMap<String, Txn>,
    /// Actions replayed that carry table state tidelake does not model (e.g.
    /// `domainMetadata`), by name; `cdc` and `commitInfo` carry none.
    pub unmodeled_actions: BTreeSet<String>,
}

impl Snapshot {
    /// Applies the actions of commit `version` on top of this state.
    pub fn apply(&mut self, version: u64, actions: impl IntoIterator<Item = Action>) {
        self.version = version;
        let (removes, others): (Vec<Action>, Vec<Action>) = actions
            .into_iter()
            .partition(|a| matches!(a, Action::Remove(_)));
        for action in removes.into_iter().chain(others) {
            match action {
                Action::Protocol(p) => self.protocol = Some(p),
                Action::Metadata(m) => self.metadata = Some(m),
                Action::Add(add) => {
                    self.tombstones
                        .remove(logical_file_key(&add.path, &add.other).as_ref());
                    self.files.insert(add.path.clone(), add);
                }
                Action::Remove(remove) => {
                    let key = logical_file_key(&remove.path, &remove.other).into_owned();
                    if self.files.get(&remove.path).is_some_and(|live| {
                        logical_file_key(&live.path, &live.other) == key.as_str()
                    }) {
                        self.files.remove(&remove.path);
                    }
                    self.tombstones.insert(key, remove);
                }
                Action::Txn(txn) => {
                    self.txns.insert(txn.app_id.clone(), txn);
                }
                Action::Other(name) if name != "cdc" && !name.is_empty() => {
                    self.unmodeled_actions.insert(name);
                }
                Action::CommitInfo(_) | Action::Other(_) => {}
            }
        }
    }

    /// The live files grouped by partition (`add.partitionValues`), partitions in
    /// order of their values (null first), files in path order.
    pub fn files_by_partition(&self) -> BTreeMap<&BTreeMap<String, Option<String>>, Vec<&Add>> {
        let mut partitions: BTreeMap<_, Vec<&Add>> = BTreeMap::new();
        for add in self.files.values() {
            partitions
                .entry(&add.partition_values)
                .or_default()
                .push(add);
        }
        partitions
    }

    /// The table's metadata and its schema, parsed from `schemaString`; an error naming
    /// the table at `location` if the log has no `metaData` or its schema does not parse.
    pub fn schema(&self, location: &str) -> Result<(&Metadata, Schema), DeltaError> {
        let metadata = self
            .metadata
            .as_ref()
            .ok_or_else(|| DeltaError::Corrupt(format!("{location}: the log has no metaData")))?;
        let schema = Schema::from_schema_string(&metadata.schema_string).map_err(|e| {
            DeltaError::Corrupt(format!(
                "{location}: metaData.schemaString does not parse: {e}"
            ))
        })?;
        Ok((metadata, schema))
    }

    /// The version application `app_id` last committed, if any.
    pub fn txn_version(&self, app_id: &str) -> Option<i64> {
        self.txns.get(app_id).map(|t| t.version)
    }

    /// Reads the latest snapshot of the table at `root`, or `None` if there is no table
    /// (no commit and no checkpoint) there.
    ///
    /// Starts from the newest complete classic checkpoint: the one `_last_checkpoint`
    /// names (or a newer one listed after it), else, if `_last_checkpoint` is missing,
    /// unreadable or names a missing checkpoint, the newest found by listing `_delta_log/`.
    /// Then applies the JSON commits after it, which must be contiguous. Without a
    /// checkpoint, replay starts at version 0, which must exist.
    pub async fn load(
        store: &dyn ObjectStore,
        root: &Path,
    ) -> Result<Option<Snapshot>, DeltaError> {
        Self::load_version(store, root, None).await
    }

    /// Like [`load`](Self::load), but replays the log only up to `version` (if given):
    /// the table as it was at that version.
    pub async fn load_version(
        store: &dyn ObjectStore,
        root: &Path,
        version: Option<u64>,
    ) -> Result<Option<Snapshot>, DeltaError> {
        let until = version.unwrap_or(u64::MAX);
        let hint = match read_last_checkpoint(store, root).await {
            Ok(hint) => hint.filter(|&v| v <= until),
            // A `_last_checkpoint` that does not parse is only a hint: list instead.
            Err(DeltaError::Checkpoint { .. }) => None,
            Err(e) => return Err(e),
        };
        let mut listing = None;
        if let Some(version) = hint {
            let listed = list_log(store, root, Some(version)).await?;
            let files = listed.checkpoints.get(&version).map(Vec::as_slice);
            if usable_checkpoint(files.unwrap_or_default())?.is_some() {
                listing = Some(listed);
            }
        }
        let listing = match listing {
            Some(listing) => listing,
            None => list_log(store, root, None).await?,
        };

        let mut start = None;
        for (&version, files) in listing.checkpoints.range(..=until).rev() {
            if let Some(parts) = usable_checkpoint(files)? {
                start = Some((version, parts));
                break;
            }
        }
        let (mut snapshot, mut next) = match start {
            Some((version, parts)) => (
                read_checkpoint_files(store, version, &parts).await?,
                version + 1,
            ),
            None => match listing.commits.first() {
                None => return Ok(None),
                Some(0) => (Snapshot::default(), 0),
                Some(&first) => {
                    return Err(DeltaError::Corrupt(format!(
                        "the log starts at version {first} and has no checkpoint: versions 0 to {} are missing",
                        first - 1
                    )));
                }
            },
        };
        // Every commit from the start up to the newest listed (or the version asked
        // for) is read directly: a listing made while writers commit may miss a commit
        // that a later listed one proves exists, or the newest ones.
        let listed_last = listing.commits.iter().rev().find(|&&v| v <= until).copied();
        let last = version.or(listed_last);
        while last.is_some_and(|last| next <= last) {
            match read_commit_if_exists(store, root, next).await? {
                Some(actions) => snapshot.apply(next, actions),
                None => match listing.commits.iter().find(|&&v| v > next && v <= until) {
                    Some(&listed) => {
                        return Err(DeltaError::Corrupt(format!(
                            "the log jumps from version {} to {listed}: versions {next} to {} are missing, and commits must be contiguous",
                            next.saturating_sub(1),
                            listed - 1
                        )));
                    }
                    None => break,
                },
            }
            next += 1;
        }
        Ok(Some(snapshot))
    }
}

#[cfg(test)]
mod tests {
    use crate::delta::testing::{add, txn};
    use object_store::{ObjectStoreExt, PutPayload};

    use super::*;
    use crate::delta::protocol::checkpoint::tests::{block_on, sample_table};
    use crate::delta::protocol::checkpoint::{
        checkpoint_path, last_checkpoint_path, write_checkpoint,
    };
    use crate::delta::protocol::log::commit_path;
    use crate::delta::protocol::table::DeltaTable;

    async fn delete_commits(
        store: &dyn ObjectStore,
        root: &Path,
        versions: std::ops::RangeInclusive<u64>,
    ) {
        for version in versions {
            store
                .delete(&commit_path(root, version))
                .await
                .expect("delete");
        }
    }

    #[test]
    fn load_starts_from_the_checkpoint_once_older_commits_are_cleaned_up() {
        block_on(async {
            let table = DeltaTable::open_url("memory://t").expect("open");
            let (store, root) = (table.store().as_ref(), table.root());
            let replayed = sample_table(&table).await;
            write_checkpoint(store, root, &replayed)
                .await
                .expect("checkpoint");
            assert_eq!(
                Snapshot::load(store, root).await.expect("load"),
                Some(replayed.clone())
            );
            delete_commits(store, root, 0..=5).await;
            assert_eq!(
                Snapshot::load(store, root).await.expect("load"),
                Some(replayed)
            );
        });
    }

    #[test]
    fn load_applies_the_commits_after_the_checkpoint() {
        block_on(async {
            let dir = tempfile::tempdir().expect("tempdir");
            let table = DeltaTable::open_url(&dir.path().display().to_string()).expect("open");
            let (store, root) = (table.store().as_ref(), table.root());
            let replayed = sample_table(&table).await;
            write_checkpoint(store, root, &replayed)
                .await
                .expect("checkpoint");
            delete_commits(store, root, 0..=4).await;
            table
                .try_commit(6, &[add("e"), txn("job-w0", 7)])
                .await
                .expect("commit");
            table.try_commit(7, &[add("f")]).await.expect("commit");

            let mut expected = replayed;
            expected.apply(6, [add("e"), txn("job-w0", 7)]);
            expected.apply(7, [add("f")]);
            let loaded = Snapshot::load(store, root).await.expect("load");
            assert_eq!(loaded.as_ref(), Some(&expected));
            let loaded = loaded.expect("exists");
            assert_eq!(loaded.version, 7);
            assert_eq!(loaded.txn_version("job-w0"), Some(7));
            assert_eq!(loaded.txn_version("job-w1"), Some(3));
            assert!(loaded.files.contains_key("e") && loaded.files.contains_key("f"));
        });
    }

    #[test]
    fn without_a_usable_last_checkpoint_listing_finds_the_checkpoint() {
        block_on(async {
            let table = DeltaTable::open_url("memory://t").expect("open");
            let (store, root) = (table.store().as_ref(), table.root());
            let replayed = sample_table(&table).await;
            write_checkpoint(store, root, &replayed)
                .await
                .expect("checkpoint");
            delete_commits(store, root, 0..=5).await;
            let last = last_checkpoint_path(root);

            store.delete(&last).await.expect("delete");
            assert_eq!(
                Snapshot::load(store, root)
                    .await
                    .expect("no _last_checkpoint"),
                Some(replayed.clone())
            );

            // Pointing at a checkpoint that does not exist.
            let missing = br#"{"version":3,"size":4}"#;
            store
                .put(&last, PutPayload::from_static(missing))
                .await
                .expect("put");
            assert_eq!(
                Snapshot::load(store, root)
                    .await
                    .expect("stale _last_checkpoint"),
                Some(replayed.clone())
            );

            // Unparseable.
            store
                .put(&last, PutPayload::from_static(b"{nope"))
                .await
                .expect("put");
            assert_eq!(
                Snapshot::load(store, root)
                    .await
                    .expect("bad _last_checkpoint"),
                Some(replayed)
            );
        });
    }

    #[test]
    fn a_newer_checkpoint_than_last_checkpoint_names_is_used() {
        block_on(async {
            let table = DeltaTable::open_url("memory://t").expect("open");
            let (store, root) = (table.store().as_ref(), table.root());
            let mut snapshot = sample_table(&table).await;
            write_checkpoint(store, root, &snapshot)
                .await
                .expect("checkpoint 5");
            let last = store
                .get(&last_checkpoint_path(root))
                .await
                .expect("get")
                .bytes()
                .await
                .expect("bytes");
            table.try_commit(6, &[add("e")]).await.expect("commit");
            table.try_commit(7, &[add("f")]).await.expect("commit");
            snapshot.apply(6, [add("e")]);
            snapshot.apply(7, [add("f")]);
            write_checkpoint(store, root, &snapshot)
                .await
                .expect("checkpoint 7");
            // `_last_checkpoint` lags behind (a writer died between the two PUTs).
            store
                .put(&last_checkpoint_path(root), PutPayload::from(last))
                .await
                .expect("put");
            delete_commits(store, root, 0..=7).await;
            assert_eq!(
                Snapshot::load(store, root).await.expect("load"),
                Some(snapshot)
            );
        });
    }

    #[test]
    fn gaps_after_the_checkpoint_and_uncovered_early_versions_are_corrupt() {
        block_on(async {
            let table = DeltaTable::open_url("memory://t").expect("open");
            let (store, root) = (table.store().as_ref(), table.root());
            let replayed = sample_table(&table).await;
            write_checkpoint(store, root, &replayed)
                .await
                .expect("checkpoint");
            delete_commits(store, root, 0..=5).await;
            table.try_commit(8, &[add("x")]).await.expect("commit");
            let err = Snapshot::load(store, root).await.expect_err("gap");
            assert!(
                matches!(err, DeltaError::Corrupt(_))
                    && err.to_string().contains("from version 5 to 8")
                    && err.to_string().contains("versions 6 to 7 are missing"),
                "{err}"
            );

            // Without the checkpoint, the log starts at version 8.
            store
                .delete(&checkpoint_path(root, 5))
                .await
                .expect("delete");
            let err = Snapshot::load(store, root)
                .await
                .expect_err("no checkpoint");
            assert!(
                matches!(err, DeltaError::Corrupt(_))
                    && err.to_string().contains("versions 0 to 7 are missing"),
                "{err}"
            );
        });
    }

    #[test]
    fn a_commit_that_removes_a_path_and_adds_it_again_leaves_it_live() {
        use crate::delta::protocol::actions::Remove;
        let mut snapshot = Snapshot::default();
        snapshot.apply(1, [add("a"), add("b")]);
        let remove = |path: &str| {
            Action::Remove(Remove {
                path: path.to_owned(),
                data_change: true,
                ..Remove::default()
            })
        };
        // As Spark's DELETE writes it: the add of the new version first.
        snapshot.apply(2, [add("a"), remove("a"), remove("b")]);
        assert_eq!(snapshot.files.keys().collect::<Vec<_>>(), ["a"]);
        assert_eq!(snapshot.tombstones.keys().collect::<Vec<_>>(), ["b"]);
    }

    #[test]
    fn a_file_whose_deletion_vector_changes_is_live_with_the_new_one_and_a_tombstone_with_the_old()
    {
        use crate::delta::protocol::actions::Remove;
        let dv = |id: &str| {
            serde_json::Map::from_iter([(
                "deletionVector".to_owned(),
                serde_json::json!({"storageType": "u", "pathOrInlineDv": id, "offset": 1,
                    "sizeInBytes": 34, "cardinality": 2}),
            )])
        };
        let add_with = |other| match add("a") {
            Action::Add(add) => Action::Add(Add { other, ..add }),
            _ => unreachable!(),
        };
        let remove_with = |other| {
            Action::Remove(Remove {
                path: "a".to_owned(),
                data_change: true,
                other,
                ..Remove::default()
            })
        };
        let mut snapshot = Snapshot::default();
        snapshot.apply(1, [add("a")]);
        snapshot.apply(2, [remove_with(Default::default()), add_with(dv("x"))]);
        snapshot.apply(3, [add_with(dv("y")), remove_with(dv("x"))]);
        assert_eq!(snapshot.files["a"].other, dv("y"));
        assert_eq!(
            snapshot.tombstones.keys().collect::<Vec<_>>(),
            ["a", "a\u{0}ux@1"]
        );
        assert_eq!(snapshot.tombstones["a\u{0}ux@1"].other, dv("x"));
        // A remove of another vector than the live one's leaves the live file.
        snapshot.apply(4, [remove_with(dv("z"))]);
        assert_eq!(snapshot.files["a"].other, dv("y"));
        snapshot.apply(5, [remove_with(dv("y"))]);
        assert!(snapshot.files.is_empty());
        assert_eq!(snapshot.tombstones.len(), 4);
    }

    #[test]
    fn no_commit_and_no_checkpoint_is_no_table() {
        block_on(async {
            let table = DeltaTable::open_url("memory://t").expect("open");
            let (store, root) = (table.store().as_ref(), table.root());
            assert_eq!(Snapshot::load(store, root).await.expect("load"), None);
            // A stray `_last_checkpoint` alone is not a table either.
            store
                .put(
                    &last_checkpoint_path(root),
                    PutPayload::from_static(br#"{"version":3,"size":4}"#),
                )
                .await
                .expect("put");
            assert_eq!(Snapshot::load(store, root).await.expect("load"), None);
        });
    }
}
