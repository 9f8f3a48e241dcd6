//! A table's history: its commits, newest first, as told by the JSON commits that still
//! exist.
//!
//! Log cleanup deletes the JSON commits a checkpoint covers once they are older than the
//! retention, so the history of a long-lived table starts above version 0:
//! [`History::available_from`] says where.

use std::collections::BTreeMap;

use futures::{StreamExt, TryStreamExt, stream};
use serde::Serialize;

use crate::delta::DeltaError;
use crate::delta::protocol::actions::{Action, Txn};
use crate::delta::protocol::checkpoint::list_log;
use crate::delta::protocol::table::DeltaTable;

/// Commits read at once.
const CONCURRENT_READS: usize = 16;

/// One commit, summarised.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CommitSummary {
    /// The table version.
    pub version: u64,
    /// `commitInfo.timestamp`: when, in ms since the epoch.
    pub timestamp: Option<i64>,
    /// `commitInfo.operation` (`CREATE TABLE`, `STREAMING UPDATE`, `OPTIMIZE`, …).
    pub operation: Option<String>,
    /// `commitInfo.operationParameters` (empty if there are none).
    pub operation_parameters: BTreeMap<String, String>,
    /// `commitInfo.engineInfo`: the writer.
    pub engine_info: Option<String>,
    /// The commit's `txn` actions: application ids and their versions.
    pub txns: Vec<Txn>,
    /// `add` actions.
    pub adds: u64,
    /// `remove` actions.
    pub removes: u64,
    /// The sum of the added files' sizes.
    pub bytes_added: u64,
}

impl CommitSummary {
    /// Summarises the actions of commit `version`. Without a `commitInfo` (it is
    /// optional), the commit has no timestamp, operation or engine.
    pub fn of(version: u64, actions: Vec<Action>) -> Self {
        let mut summary = CommitSummary {
            version,
            ..CommitSummary::default()
        };
        for action in actions {
            match action {
                Action::CommitInfo(info) => {
                    summary.timestamp = info.timestamp;
                    summary.operation = info.operation;
                    summary.operation_parameters = info.operation_parameters.unwrap_or_default();
                    summary.engine_info = info.engine_info;
                }
                Action::Txn(txn) => summary.txns.push(txn),
                Action::Add(add) => {
                    summary.adds += 1;
                    summary.bytes_added += u64::try_from(add.size).unwrap_or(0);
                }
                Action::Remove(_) => summary.removes += 1,
                Action::Protocol(_) | Action::Metadata(_) | Action::Other(_) => {}
            }
        }
        summary
    }
}

/// The commits of a table whose JSON files exist, newest first.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct History {
    /// The newest version with a JSON commit (`None` if only checkpoints are left).
    pub latest_version: Option<u64>,
    /// The oldest version with a JSON commit: history is available from there on
    /// (older commits were cleaned up after a checkpoint).
    pub available_from: Option<u64>,
    /// How many JSON commits exist; more than [`commits`](Self::commits) holds when a
    /// limit left the older ones out.
    pub available_commits: usize,
    /// The newest commits, newest first.
    pub commits: Vec<CommitSummary>,
}

/// Reads the history of `table`: its newest `limit` JSON commits (all if `None`),
/// newest first. An error if there is no table (no commit and no checkpoint), or a
/// commit cannot be read or parsed.
pub async fn history(table: &DeltaTable, limit: Option<usize>) -> Result<History, DeltaError> {
    let listing = list_log(table.store().as_ref(), table.root(), None).await?;
    if listing.commits.is_empty() && listing.checkpoints.is_empty() {
        return Err(table.no_table());
    }
    let newest = listing
        .commits
        .iter()
        .rev()
        .take(limit.unwrap_or(usize::MAX));
    let commits: Vec<Option<CommitSummary>> = stream::iter(newest)
        .map(|&version| async move {
            // None: log cleanup deleted it after the listing.
            let actions = table.read_commit_if_exists(version).await?;
            Ok::<_, DeltaError>(actions.map(|actions| CommitSummary::of(version, actions)))
        })
        .buffered(CONCURRENT_READS)
        .try_collect()
        .await?;
    Ok(History {
        latest_version: listing.commits.last().copied(),
        available_from: listing.commits.first().copied(),
        available_commits: listing.commits.len(),
        commits: commits.into_iter().flatten().collect(),
    })
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use object_store::ObjectStoreExt;

    use super::*;
    use crate::delta::protocol::actions::{Add, CommitInfo, Remove};
    use crate::delta::protocol::checkpoint::write_checkpoint;
    use crate::delta::protocol::log::commit_path;
    use crate::delta::protocol::schema::Schema;
    use crate::delta::testing::{add, block_on, txn};

    fn info(operation: &str, epoch: &str) -> Action {
        Action::CommitInfo(CommitInfo {
            timestamp: Some(1_714_521_600_000),
            operation: Some(operation.to_owned()),
            operation_parameters: Some(BTreeMap::from([("epochId".to_owned(), epoch.to_owned())])),
            engine_info: Some("tidelake/test".to_owned()),
            ..CommitInfo::default()
        })
    }

    fn sized(path: &str, size: i64) -> Action {
        let Action::Add(a) = add(path) else {
            unreachable!("add builds an add")
        };
        Action::Add(Add { size, ..a })
    }

    fn remove(path: &str) -> Action {
        Action::Remove(Remove {
            path: path.to_owned(),
            deletion_timestamp: Some(2),
            data_change: false,
            extended_file_metadata: None,
            partition_values: None,
            size: None,
            ..Default::default()
        })
    }

    async fn table_with_three_commits() -> DeltaTable {
        let table = DeltaTable::open_url("memory://t").expect("open");
        let schema = Schema::of(&[("n", "long"), ("date", "string")]);
        table
            .create_or_open(&schema, &["date"], BTreeMap::new(), "tidelake/test")
            .await
            .expect("create");
        table
            .try_commit(
                1,
                &[
                    sized("a", 100),
                    sized("b", 250),
                    txn("job-w0", 7),
                    txn("job-w1", 7),
                    info("STREAMING UPDATE", "7"),
                ],
            )
            .await
            .expect("commit 1");
        // No commitInfo: a foreign writer's minimal commit.
        table
            .try_commit(2, &[remove("a"), sized("c", 350)])
            .await
            .expect("commit 2");
        table
    }

    #[test]
    fn commits_are_summarised_newest_first() {
        block_on(async {
            let table = table_with_three_commits().await;
            let found = history(&table, None).await.expect("history");
            assert_eq!(found.latest_version, Some(2));
            assert_eq!(found.available_from, Some(0));
            assert_eq!(found.available_commits, 3);
            let versions: Vec<u64> = found.commits.iter().map(|c| c.version).collect();
            assert_eq!(versions, [2, 1, 0]);

            assert_eq!(
                found.commits[0],
                CommitSummary {
                    version: 2,
                    adds: 1,
                    removes: 1,
                    bytes_added: 350,
                    ..CommitSummary::default()
                }
            );
            let one = &found.commits[1];
            assert_eq!(one.operation.as_deref(), Some("STREAMING UPDATE"));
            assert_eq!(one.timestamp, Some(1_714_521_600_000));
            assert_eq!(one.operation_parameters["epochId"], "7");
            assert_eq!(one.engine_info.as_deref(), Some("tidelake/test"));
            assert_eq!(
                one.txns
                    .iter()
                    .map(|t| (t.app_id.as_str(), t.version))
                    .collect::<Vec<_>>(),
                [("job-w0", 7), ("job-w1", 7)]
            );
            assert_eq!((one.adds, one.removes, one.bytes_added), (2, 0, 350));
            let zero = &found.commits[2];
            assert_eq!(zero.operation.as_deref(), Some("CREATE TABLE"));
            assert_eq!((zero.adds, zero.removes, zero.txns.len()), (0, 0, 0));
        });
    }

    #[test]
    fn a_limit_keeps_the_newest_commits() {
        block_on(async {
            let table = table_with_three_commits().await;
            let found = history(&table, Some(2)).await.expect("history");
            let versions: Vec<u64> = found.commits.iter().map(|c| c.version).collect();
            assert_eq!(versions, [2, 1]);
            assert_eq!(found.available_commits, 3);
            assert!(
                history(&table, Some(0))
                    .await
                    .expect("history")
                    .commits
                    .is_empty()
            );
        });
    }

    #[test]
    fn after_log_cleanup_history_starts_at_the_oldest_commit_left() {
        block_on(async {
            let table = table_with_three_commits().await;
            let (store, root) = (table.store().as_ref(), table.root());
            let snapshot = table.existing_snapshot().await.expect("snapshot");
            write_checkpoint(store, root, &snapshot)
                .await
                .expect("checkpoint");
            table.try_commit(3, &[add("d")]).await.expect("commit 3");
            for version in 0..2 {
                store
                    .delete(&commit_path(root, version))
                    .await
                    .expect("delete");
            }
            let found = history(&table, None).await.expect("history");
            assert_eq!(found.available_from, Some(2));
            assert_eq!(found.latest_version, Some(3));
            let versions: Vec<u64> = found.commits.iter().map(|c| c.version).collect();
            assert_eq!(versions, [3, 2]);
        });
    }

    #[test]
    fn no_table_is_an_error_naming_the_location() {
        block_on(async {
            let table = DeltaTable::open_url("memory://nothing").expect("open");
            let err = history(&table, None).await.expect_err("no table");
            assert!(
                matches!(err, DeltaError::Url { .. })
                    && err.to_string().contains("memory://nothing"),
                "{err}"
            );
        });
    }
}
