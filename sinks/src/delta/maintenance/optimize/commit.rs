//! A partition's compaction commit: its actions, and putting them at the first free
//! version unless a newer commit conflicts (see the [module docs](super#conflicts)).

use std::collections::{BTreeMap, BTreeSet};

use object_store::path::Path;
use serde_json::json;

use super::{OptimizeOptions, OptimizePlan, file_size};
use crate::delta::DeltaError;
use crate::delta::protocol::actions::{Action, Add, CommitInfo, Remove};
use crate::delta::protocol::commit_loop::{self, ConflictCheck, Retry, commit_with_retries};
use crate::delta::protocol::table::DeltaTable;

/// The commit of a partition's compaction at `now` (ms since the epoch): the removes,
/// the adds and `commitInfo`.
pub(super) fn compaction_actions(
    plan: &OptimizePlan,
    options: &OptimizeOptions,
    inputs: &[&Add],
    outputs: &[Add],
    now: i64,
    txn_id: &str,
) -> Vec<Action> {
    let removes = inputs.iter().map(|add| {
        Action::Remove(Remove {
            path: add.path.clone(),
            deletion_timestamp: Some(now),
            data_change: false,
            extended_file_metadata: Some(true),
            partition_values: Some(add.partition_values.clone()),
            size: Some(add.size),
            tags: add.tags.clone(),
            ..Remove::default()
        })
    });
    let adds = outputs.iter().cloned().map(Action::Add);
    let predicate: Vec<String> = options
        .partition_filter
        .iter()
        .map(|(column, value)| format!("{column} = '{value}'"))
        .collect();
    let parameters = BTreeMap::from([
        ("predicate".to_owned(), json!(predicate).to_string()),
        (
            "targetSize".to_owned(),
            options.target_file_size.to_string(),
        ),
        ("zOrderBy".to_owned(), json!(options.zorder_by).to_string()),
        ("auto".to_owned(), options.auto.to_string()),
    ]);
    let removed_bytes: u64 = inputs.iter().map(|f| file_size(f)).sum();
    let added_bytes: u64 = outputs.iter().map(file_size).sum();
    let metrics = json!({
        "numRemovedFiles": inputs.len().to_string(),
        "numAddedFiles": outputs.len().to_string(),
        "numRemovedBytes": removed_bytes.to_string(),
        "numAddedBytes": added_bytes.to_string(),
    });
    let info = CommitInfo {
        timestamp: Some(now),
        operation: Some("OPTIMIZE".to_owned()),
        operation_parameters: Some(parameters),
        read_version: i64::try_from(plan.read_version).ok(),
        is_blind_append: Some(false),
        txn_id: Some(txn_id.to_owned()),
        engine_info: Some(options.engine_info.clone()),
        other: serde_json::Map::from_iter([("operationMetrics".to_owned(), metrics)]),
    };
    removes
        .chain(adds)
        .chain(std::iter::once(Action::CommitInfo(info)))
        .collect()
}

/// Where a compaction's commit landed.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Landing {
    /// At `version`, after `attempts` puts.
    Committed { version: u64, attempts: u32 },
    /// Not at all, for this reason.
    Conflict(String),
}

/// The commits after the snapshot an optimization planned from, as far as it has read
/// them (its own included): each partition's commit is checked against all of them,
/// and is put at the first version after them.
pub(super) struct LogTail {
    /// The first version not read yet.
    next: u64,
    /// The commits read, in version order.
    commits: Vec<(u64, Vec<Action>)>,
}

impl LogTail {
    pub(super) fn new(read_version: u64) -> Self {
        LogTail {
            next: read_version + 1,
            commits: Vec::new(),
        }
    }
}

/// Puts `actions` at the first version after `tail`, as long as no commit there
/// conflicts with the compaction of `inputs` (see the [module docs](super#conflicts)),
/// reading on after every lost race with the [commit loop](crate::delta::protocol::commit_loop).
pub(super) async fn commit(
    table: &DeltaTable,
    tail: &mut LogTail,
    actions: &[Action],
    inputs: &[&Add],
    txn_id: &str,
    max_attempts: u32,
) -> Result<Landing, DeltaError> {
    let read: BTreeSet<String> = inputs.iter().map(|add| file_key(&add.path)).collect();
    // The commits earlier partitions read or wrote (`txn_id` is new: none is ours).
    for (version, winner) in &tail.commits {
        if let Some(reason) = conflict(*version, winner, &read) {
            return Ok(Landing::Conflict(reason));
        }
    }
    let retry = Retry {
        max_attempts,
        ..Retry::default()
    };
    let mut check = TailCheck { tail, read: &read };
    let landing = commit_with_retries(
        table,
        check.tail.next,
        actions,
        txn_id,
        "a compaction",
        retry,
        &mut check,
    )
    .await;
    match landing {
        Ok(commit_loop::Landing::Committed { version, attempts }) => {
            tail.commits.push((version, actions.to_vec()));
            tail.next = version + 1;
            Ok(Landing::Committed { version, attempts })
        }
        Ok(commit_loop::Landing::Stopped { stop, .. }) => Ok(Landing::Conflict(stop)),
        // Other writers kept taking the next version: the partition is left as it is.
        Err(DeltaError::Conflict { detail, .. }) => Ok(Landing::Conflict(detail)),
        Err(e) => Err(e),
    }
}

/// The check of the commits read while committing: each joins the tail, and stops the
/// commit if it conflicts with the compaction of the files `read`.
struct TailCheck<'a> {
    tail: &'a mut LogTail,
    read: &'a BTreeSet<String>,
}

impl ConflictCheck for TailCheck<'_> {
    type Stop = String;

    fn check(&mut self, version: u64, actions: &[Action]) -> Result<Option<String>, DeltaError> {
        self.tail.commits.push((version, actions.to_vec()));
        self.tail.next = version + 1;
        Ok(conflict(version, actions, self.read))
    }
}

/// Why the commit at `version` (another writer's) conflicts with a compaction that
/// read the files `read` (see [`file_key`]), if it does.
fn conflict(version: u64, actions: &[Action], read: &BTreeSet<String>) -> Option<String> {
    actions.iter().find_map(|action| match action {
        Action::Protocol(_) => Some(format!("version {version} changed the table's protocol")),
        Action::Metadata(_) => Some(format!(
            "version {version} changed the table's metadata (schema, partitioning or configuration)"
        )),
        Action::Remove(remove) if read.contains(&file_key(&remove.path)) => Some(format!(
            "version {version} removed {}, one of the files this compaction rewrote",
            remove.path
        )),
        _ => None,
    })
}

/// A file's identity from its `add.path`/`remove.path`: the path decoded, so that two
/// writers' encodings of the same path agree.
fn file_key(path: &str) -> String {
    Path::from_url_path(path).map_or_else(|_| path.to_owned(), |p| p.to_string())
}
