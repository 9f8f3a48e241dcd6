//! When a writer checkpoints the version it has just committed (docs/scaling.md §3).
//!
//! Spark checkpoints every 10th version. That rule ties the checkpoint rate to the
//! commit rate, so with many writers committing to one table the table rewrites its
//! whole state (every live file and tombstone) ever more often: at 64 writers committing
//! every 10 s, 0.64 checkpoints a second. [`CheckpointPolicy::LogSize`], tidelake's
//! default, ties it to the log instead: it checkpoints every `k`th version, `k` the
//! least of `interval`, 2 × `interval`, 4 × `interval`, … (at most `max_interval`) for
//! which `k` commits hold at least as many bytes as the newest checkpoint. So writing
//! checkpoints costs at most about what writing the commits costs, whatever the number
//! of writers, and a reader replays fewer than `k` commits after the checkpoint.
//!
//! Every writer computes `k` from the newest checkpoint's size and its own commit's, so
//! writers agree on it (or differ by a power of two, whose multiples nest) without
//! talking to each other, and exactly one of them — the one that committed the version
//! — checkpoints each multiple of `k`. A writer reads `_last_checkpoint` again (one
//! small GET) only when its version is a multiple of the `k` it knows.

use std::time::{Duration, Instant};

use crate::delta::DeltaError;
use crate::delta::protocol::actions::Action;
use crate::delta::protocol::checkpoint::{read_last_checkpoint_file, write_checkpoint_at};
use crate::delta::protocol::snapshot::Snapshot;
use crate::delta::protocol::table::DeltaTable;

/// Versions between checkpoint candidates, unless a writer says otherwise: 10, as Spark.
pub const DEFAULT_CHECKPOINT_INTERVAL: u64 = 10;

/// The most versions [`CheckpointPolicy::LogSize`] lets pass without a checkpoint, by
/// default (10 × 2⁶).
pub const DEFAULT_MAX_CHECKPOINT_INTERVAL: u64 = 640;

/// When a writer checkpoints; see the [module docs](self).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CheckpointPolicy {
    /// Never.
    Off,
    /// Every version that is a positive multiple of this (Spark's rule with 10).
    EveryVersions(u64),
    /// Every `k`th version, `k` = `interval` × 2ʲ the least for which `k` commits hold
    /// the newest checkpoint's bytes, at most `max_interval`.
    LogSize {
        /// The least spacing of checkpoints.
        interval: u64,
        /// The greatest spacing of checkpoints.
        max_interval: u64,
    },
}

impl Default for CheckpointPolicy {
    fn default() -> Self {
        CheckpointPolicy::LogSize {
            interval: DEFAULT_CHECKPOINT_INTERVAL,
            max_interval: DEFAULT_MAX_CHECKPOINT_INTERVAL,
        }
    }
}

/// A checkpoint a writer wrote.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CheckpointWrite {
    /// The version it holds.
    pub version: u64,
    /// Its size in bytes.
    pub bytes: u64,
    /// Its actions (rows).
    pub actions: u64,
    /// Reading the table at the version, encoding and writing the checkpoint and
    /// `_last_checkpoint`.
    pub took: Duration,
}

/// One writer's checkpoints: the policy and what it knows of the newest checkpoint.
#[derive(Clone, Debug)]
pub struct Checkpointer {
    policy: CheckpointPolicy,
    /// The newest checkpoint's bytes, as last read (`None`: not read yet; 0: there is
    /// none).
    last_bytes: Option<u64>,
}

impl Checkpointer {
    /// A writer's checkpoints under `policy`.
    pub fn new(policy: CheckpointPolicy) -> Self {
        Checkpointer {
            policy,
            last_bytes: None,
        }
    }

    /// Called after this writer committed `actions` as `version`: writes a checkpoint
    /// of `version` (and `_last_checkpoint`) if it is due (see the [module docs](self)).
    pub async fn committed(
        &mut self,
        table: &DeltaTable,
        version: u64,
        actions: &[Action],
    ) -> Result<Option<CheckpointWrite>, DeltaError> {
        let due = match self.policy {
            CheckpointPolicy::Off => false,
            CheckpointPolicy::EveryVersions(n) => is_candidate(version, n),
            CheckpointPolicy::LogSize {
                interval,
                max_interval,
            } => {
                is_candidate(version, interval)
                    && self
                        .due_by_size(table, version, actions, interval, max_interval)
                        .await?
            }
        };
        if !due {
            return Ok(None);
        }
        let write = checkpoint(table, version).await?;
        self.last_bytes = Some(write.bytes);
        Ok(Some(write))
    }

    /// True if `version` is a multiple of the spacing the newest checkpoint's size and
    /// `actions`' size give (see the [module docs](self)); reads `_last_checkpoint`
    /// again before saying yes.
    async fn due_by_size(
        &mut self,
        table: &DeltaTable,
        version: u64,
        actions: &[Action],
        interval: u64,
        max_interval: u64,
    ) -> Result<bool, DeltaError> {
        let commit_bytes: u64 = actions
            .iter()
            .map(|a| a.to_json().map_or(0, |line| line.len() as u64 + 1))
            .sum();
        let due = |checkpoint_bytes: u64| {
            let mut spacing = interval;
            while spacing * 2 <= max_interval && spacing * commit_bytes < checkpoint_bytes {
                spacing *= 2;
            }
            version.is_multiple_of(spacing)
        };
        if self.last_bytes.is_some_and(|bytes| !due(bytes)) {
            return Ok(false);
        }
        let last = read_last_checkpoint_file(table.store().as_ref(), table.root()).await?;
        let bytes = last.map_or(0, |last| last.size_in_bytes.unwrap_or(0));
        self.last_bytes = Some(bytes);
        Ok(due(bytes))
    }
}

/// True if `version` is a positive multiple of `interval` (0: never).
fn is_candidate(version: u64, interval: u64) -> bool {
    interval > 0 && version > 0 && version.is_multiple_of(interval)
}

/// Writes a checkpoint of `version`, which was just committed, and `_last_checkpoint`.
async fn checkpoint(table: &DeltaTable, version: u64) -> Result<CheckpointWrite, DeltaError> {
    let started = Instant::now();
    let store = table.store().as_ref();
    let snapshot = Snapshot::load_version(store, table.root(), Some(version))
        .await?
        .ok_or_else(|| {
            DeltaError::Corrupt(format!(
                "{}: version {version} vanished right after it was committed",
                table.location()
            ))
        })?;
    let last = write_checkpoint_at(store, table.root(), &snapshot, table.clock().now_ms()).await?;
    Ok(CheckpointWrite {
        version,
        bytes: last.size_in_bytes.unwrap_or(0),
        actions: last.size,
        took: started.elapsed(),
    })
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::delta::protocol::checkpoint::read_last_checkpoint;
    use crate::delta::protocol::schema::Schema;
    use crate::delta::testing::{add, block_on, txn};

    async fn new_table() -> DeltaTable {
        let table = DeltaTable::open_url("memory://t").expect("open");
        let schema = Schema::of(&[("x", "long"), ("date", "string")]);
        table
            .create_or_open(&schema, &["date"], BTreeMap::new(), "test")
            .await
            .expect("create");
        table
    }

    /// The versions a lone writer checkpoints while committing 1..=`commits`.
    fn checkpointed(policy: CheckpointPolicy, commits: u64) -> Vec<u64> {
        block_on(async {
            let table = new_table().await;
            let mut checkpointer = Checkpointer::new(policy);
            let mut written = Vec::new();
            for version in 1..=commits {
                let name = format!("file-with-a-longish-name-{version:08}.parquet");
                let actions = [add(&name), txn("w", version as i64)];
                table.try_commit(version, &actions).await.expect("commit");
                if let Some(write) = checkpointer
                    .committed(&table, version, &actions)
                    .await
                    .expect("checkpoint")
                {
                    assert_eq!(write.version, version);
                    assert_eq!(write.actions, version + 3, "protocol, metaData, txn, adds");
                    written.push(version);
                }
            }
            let last = read_last_checkpoint(table.store().as_ref(), table.root())
                .await
                .expect("read");
            assert_eq!(last, written.last().copied());
            written
        })
    }

    #[test]
    fn every_versions_checkpoints_each_multiple() {
        assert_eq!(
            checkpointed(CheckpointPolicy::EveryVersions(10), 45),
            [10, 20, 30, 40]
        );
        assert!(checkpointed(CheckpointPolicy::Off, 25).is_empty());
    }

    #[test]
    fn log_size_spaces_checkpoints_as_the_state_grows() {
        let written = checkpointed(
            CheckpointPolicy::LogSize {
                interval: 10,
                max_interval: 1_000,
            },
            2_000,
        );
        assert_eq!(
            written.first(),
            Some(&10),
            "the first candidate: no checkpoint yet"
        );
        let gaps: Vec<u64> = written.windows(2).map(|w| w[1] - w[0]).collect();
        assert!(
            gaps.first() < gaps.last(),
            "gaps widen as the state grows: {gaps:?}"
        );
        assert!(
            gaps.last().is_some_and(|&g| g > 10),
            "later checkpoints are further apart than Spark's: {gaps:?}"
        );
        assert!(
            written
                .iter()
                .all(|v| [10, 20, 40, 80, 160, 320, 640].iter().any(|k| v % k == 0)),
            "only multiples of the spacings: {written:?}"
        );
        assert!(
            written.len() < 200 / 2,
            "fewer than half of every-10's checkpoints: {written:?}"
        );

        let capped = checkpointed(
            CheckpointPolicy::LogSize {
                interval: 10,
                max_interval: 30,
            },
            400,
        );
        assert!(
            capped.windows(2).all(|w| w[1] - w[0] <= 20),
            "never more than max_interval apart (in steps of 10 × 2ʲ): {capped:?}"
        );
    }
}
