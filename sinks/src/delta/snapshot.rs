//! A snapshot: the table's state at one version, replayed from its log.
//!
//! Replay applies commits in version order: the latest `protocol` and `metaData` win, an
//! `add` makes a file live (and clears its tombstone), a `remove` turns it into a
//! tombstone, and each `txn` sets its application's version.

use std::collections::{BTreeMap, HashMap};

use object_store::ObjectStore;
use object_store::path::Path;

use super::DeltaError;
use super::actions::{Action, Add, Metadata, Protocol, Remove, Txn};
use super::log::{list_commits, read_commit};

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
    /// Removed files not yet vacuumed, by path.
    pub tombstones: BTreeMap<String, Remove>,
    /// The latest `txn` of each application.
    pub txns: HashMap<String, Txn>,
}

impl Snapshot {
    /// Applies the actions of commit `version` on top of this state.
    pub fn apply(&mut self, version: u64, actions: impl IntoIterator<Item = Action>) {
        self.version = version;
        for action in actions {
            match action {
                Action::Protocol(p) => self.protocol = Some(p),
                Action::Metadata(m) => self.metadata = Some(m),
                Action::Add(add) => {
                    self.tombstones.remove(&add.path);
                    self.files.insert(add.path.clone(), add);
                }
                Action::Remove(remove) => {
                    self.files.remove(&remove.path);
                    self.tombstones.insert(remove.path.clone(), remove);
                }
                Action::Txn(txn) => {
                    self.txns.insert(txn.app_id.clone(), txn);
                }
                Action::CommitInfo(_) | Action::Other(_) => {}
            }
        }
    }

    /// The version application `app_id` last committed, if any.
    pub fn txn_version(&self, app_id: &str) -> Option<i64> {
        self.txns.get(app_id).map(|t| t.version)
    }

    /// Reads the latest snapshot of the table at `root`, or `None` if there is no table
    /// (no commit) there.
    pub async fn load(
        store: &dyn ObjectStore,
        root: &Path,
    ) -> Result<Option<Snapshot>, DeltaError> {
        let versions = list_commits(store, root).await?;
        let Some(&first) = versions.first() else {
            return Ok(None);
        };
        if first != 0 {
            // Earlier commits were cleaned up behind a Parquet checkpoint.
            return Err(DeltaError::CheckpointRequired { version: first });
        }
        let mut snapshot = Snapshot::default();
        for (expected, &version) in versions.iter().enumerate() {
            if version != expected as u64 {
                return Err(DeltaError::Corrupt(format!(
                    "the log jumps from version {} to {version}: commits must be contiguous",
                    expected as u64 - 1
                )));
            }
            snapshot.apply(version, read_commit(store, root, version).await?);
        }
        Ok(Some(snapshot))
    }
}
