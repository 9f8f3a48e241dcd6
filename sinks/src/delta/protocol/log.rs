//! The `_delta_log` directory: commit file names, reading a commit, and writing one with
//! put-if-absent.

use bytes::Bytes;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload};

use crate::delta::DeltaError;
use crate::delta::protocol::actions::Action;

/// The log directory's name under the table root.
pub const LOG_DIR: &str = "_delta_log";

/// `<root>/_delta_log`.
pub fn log_dir(root: &Path) -> Path {
    root.clone().join(LOG_DIR)
}

/// `<root>/_delta_log/<version, 20 digits>.json`.
pub fn commit_path(root: &Path, version: u64) -> Path {
    log_dir(root).join(format!("{version:020}.json"))
}

/// The version of a commit file name (`00000000000000000012.json` → 12).
pub fn commit_version(file_name: &str) -> Option<u64> {
    let digits = file_name.strip_suffix(".json")?;
    (digits.len() == 20 && digits.bytes().all(|b| b.is_ascii_digit()))
        .then(|| digits.parse().ok())
        .flatten()
}

/// Reads and parses commit `version`.
pub async fn read_commit(
    store: &dyn ObjectStore,
    root: &Path,
    version: u64,
) -> Result<Vec<Action>, DeltaError> {
    let path = commit_path(root, version);
    let bytes = store
        .get(&path)
        .await
        .map_err(|source| DeltaError::Store {
            path: path.to_string(),
            source,
        })?
        .bytes()
        .await
        .map_err(|source| DeltaError::Store {
            path: path.to_string(),
            source,
        })?;
    parse_commit(version, &bytes)
}

/// Reads and parses commit `version`, or `None` if there is no such commit.
pub async fn read_commit_if_exists(
    store: &dyn ObjectStore,
    root: &Path,
    version: u64,
) -> Result<Option<Vec<Action>>, DeltaError> {
    match read_commit(store, root, version).await {
        Ok(actions) => Ok(Some(actions)),
        Err(DeltaError::Store {
            source: object_store::Error::NotFound { .. },
            ..
        }) => Ok(None),
        Err(e) => Err(e),
    }
}

/// Parses the newline-delimited actions of commit `version`.
pub fn parse_commit(version: u64, bytes: &[u8]) -> Result<Vec<Action>, DeltaError> {
    let text = std::str::from_utf8(bytes).map_err(|e| DeltaError::InvalidCommit {
        version,
        line: 0,
        detail: format!("not UTF-8: {e}"),
    })?;
    text.lines()
        .enumerate()
        .filter(|(_, line)| !line.trim().is_empty())
        .map(|(i, line)| {
            Action::from_json(line).map_err(|e| DeltaError::InvalidCommit {
                version,
                line: i + 1,
                detail: e.to_string(),
            })
        })
        .collect()
}

/// What `_delta_log/` holds, in objects and bytes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LogSize {
    /// Bytes of every object in it (commits, checkpoints, `_last_checkpoint`).
    pub bytes: u64,
    /// JSON commits.
    pub commits: u64,
    /// Checkpoint files.
    pub checkpoint_files: u64,
}

/// Lists `_delta_log/` of the table at `root`: its objects' bytes, commits and checkpoint
/// files.
pub async fn log_size(store: &dyn ObjectStore, root: &Path) -> Result<LogSize, DeltaError> {
    let objects = crate::delta::protocol::checkpoint::list_log_objects(store, root, None).await?;
    let mut size = LogSize::default();
    for object in &objects {
        size.bytes += object.size;
        let name = object.location.filename().unwrap_or_default();
        if commit_version(name).is_some() {
            size.commits += 1;
        } else if crate::delta::protocol::checkpoint::checkpoint_file(name).is_some() {
            size.checkpoint_files += 1;
        }
    }
    Ok(size)
}

/// What a put-if-absent commit did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CommitOutcome {
    /// The commit is version `N` now.
    Committed,
    /// Another writer committed version `N` first.
    VersionTaken,
}

/// Writes `actions` as commit `version`, only if no such commit exists: the one atomic
/// step that makes a Delta commit.
pub async fn write_commit(
    store: &dyn ObjectStore,
    root: &Path,
    version: u64,
    actions: &[Action],
) -> Result<CommitOutcome, DeltaError> {
    let mut body = String::new();
    for action in actions {
        let line = action.to_json().map_err(|e| DeltaError::InvalidCommit {
            version,
            line: 0,
            detail: e.to_string(),
        })?;
        body.push_str(&line);
        body.push('\n');
    }
    let path = commit_path(root, version);
    let options = PutOptions::from(PutMode::Create);
    match store
        .put_opts(&path, PutPayload::from(Bytes::from(body)), options)
        .await
    {
        Ok(_) => Ok(CommitOutcome::Committed),
        Err(object_store::Error::AlreadyExists { .. }) => Ok(CommitOutcome::VersionTaken),
        Err(source) => Err(DeltaError::Store {
            path: path.to_string(),
            source,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commit_file_names() {
        assert_eq!(
            commit_path(&Path::from("t"), 12).as_ref(),
            "t/_delta_log/00000000000000000012.json"
        );
        assert_eq!(commit_version("00000000000000000012.json"), Some(12));
        assert_eq!(
            commit_version("00000000000000000010.checkpoint.parquet"),
            None
        );
        assert_eq!(commit_version("_last_checkpoint"), None);
        assert_eq!(commit_version("12.json"), None);
    }

    #[test]
    fn a_bad_line_names_the_version_and_line() {
        let err = parse_commit(3, b"{\"txn\":{\"appId\":\"a\",\"version\":1}}\n{nope\n")
            .expect_err("bad line");
        let message = err.to_string();
        assert!(
            message.contains("version 3") && message.contains("line 2"),
            "{message}"
        );
    }
}
