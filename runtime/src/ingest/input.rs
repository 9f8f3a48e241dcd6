//! The input directory of `tidelake ingest`: every file under it, as Spark lists a
//! streaming file source's path (docs/ingest.md, "Which files load").
//!
//! The listing is recursive. A file any of whose path components below the input
//! starts with `_` or `.` is hidden and never listed: Flink's FileSink writes its
//! in-progress files as `.part-…`, tidelake's `--parquet-dir` under `_in-progress/`,
//! Spark its `_SUCCESS` markers and `.crc` files. Files come oldest first (modification
//! time, then path), as Auto Loader takes them.

use std::sync::Arc;

use futures::TryStreamExt;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt};
use serde::{Deserialize, Serialize};

use super::IngestError;

/// A file found under the input.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InputFile {
    /// The path below the input, `/`-separated (`date=2024-05-01/part-0.parquet`).
    pub path: String,
    /// Its size in bytes.
    pub size: u64,
    /// Its modification time, ms since the epoch.
    pub modification_time: i64,
}

/// The input directory: a store and the prefix of the files in it.
#[derive(Clone, Debug)]
pub struct Input {
    url: String,
    store: Arc<dyn ObjectStore>,
    root: Path,
}

impl Input {
    /// The input at `url` (a local directory, which must exist, or an `s3://` URL).
    pub fn open(url: &str) -> Result<Input, IngestError> {
        let (store, root) = tidelake_sinks::delta::protocol::store::open_existing_store(url)
            .map_err(|e| IngestError::Config(format!("--input {url}: {e}")))?;
        Ok(Input {
            url: url.to_owned(),
            store,
            root,
        })
    }

    /// The URL it was opened with.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Every file under the input that is not hidden, oldest first; see the [module
    /// docs](self).
    pub async fn list(&self) -> Result<Vec<InputFile>, IngestError> {
        let prefix = (!self.root.as_ref().is_empty()).then_some(&self.root);
        let objects: Vec<_> = self
            .store
            .list(prefix)
            .try_collect()
            .await
            .map_err(|source| IngestError::Input {
                path: self.url.clone(),
                detail: format!("cannot list it: {source}"),
            })?;
        let mut files: Vec<InputFile> = objects
            .into_iter()
            .filter_map(|meta| {
                let path = relative(&self.root, &meta.location)?;
                (!is_hidden(&path)).then(|| InputFile {
                    path,
                    size: meta.size,
                    modification_time: meta.last_modified.timestamp_millis(),
                })
            })
            .collect();
        files.sort_by(|a, b| (a.modification_time, &a.path).cmp(&(b.modification_time, &b.path)));
        Ok(files)
    }

    /// The whole content of `file`; `None` if it is gone (deleted since it was
    /// listed). Any other store error is an error: the file is not lost, it loads once
    /// the store answers.
    pub async fn read(&self, file: &InputFile) -> Result<Option<bytes::Bytes>, IngestError> {
        let location = self.location(&file.path)?;
        let failed = |e: object_store::Error| IngestError::Input {
            path: file.path.clone(),
            detail: e.to_string(),
        };
        let got = match self.store.get(&location).await {
            Err(object_store::Error::NotFound { .. }) => return Ok(None),
            got => got.map_err(failed)?,
        };
        got.bytes().await.map(Some).map_err(failed)
    }

    /// Where `path` (below the input, as [`list`](Self::list) gave it) is in the store.
    fn location(&self, path: &str) -> Result<Path, IngestError> {
        let full = if self.root.as_ref().is_empty() {
            path.to_owned()
        } else {
            format!("{}/{path}", self.root)
        };
        Path::parse(full).map_err(|e| IngestError::Input {
            path: path.to_owned(),
            detail: e.to_string(),
        })
    }
}

/// `location` below `root`, `/`-separated; `None` if it is not below it.
fn relative(root: &Path, location: &Path) -> Option<String> {
    let parts: Vec<String> = location
        .prefix_match(root)?
        .map(|part| part.as_ref().to_owned())
        .collect();
    (!parts.is_empty()).then(|| parts.join("/"))
}

/// True if a component of `path` starts with `_` or `.`.
pub fn is_hidden(path: &str) -> bool {
    path.split('/')
        .any(|part| part.starts_with('_') || part.starts_with('.'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hidden_components_anywhere_below_the_input_hide_a_file() {
        for (path, hidden) in [
            ("part-0.parquet", false),
            ("date=2024-05-01/part-0.parquet", false),
            ("_SUCCESS", true),
            (".part-0.parquet.inprogress.abc", true),
            ("_in-progress/date=2024-05-01/part-1.parquet", true),
            ("date=2024-05-01/.part-1.parquet", true),
            ("a/_tmp/b.parquet", true),
            ("under_score/file.csv", false),
        ] {
            assert_eq!(is_hidden(path), hidden, "{path}");
        }
    }

    #[test]
    fn files_are_listed_oldest_first_relative_to_the_input() {
        let dir = tempfile::tempdir().expect("dir");
        let write = |name: &str, age_s: u64| {
            let path = dir.path().join(name);
            std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
            std::fs::write(&path, name).expect("write");
            let time = std::time::SystemTime::now() - std::time::Duration::from_secs(age_s);
            std::fs::File::options()
                .write(true)
                .open(&path)
                .and_then(|f| f.set_modified(time))
                .expect("mtime");
        };
        write("b/new.csv", 10);
        write("old.csv", 100);
        write("a/mid.csv", 50);
        write("_in-progress/x.csv", 200);
        write(".hidden.csv", 300);
        let input = Input::open(dir.path().to_str().expect("utf-8")).expect("open");
        let files = futures::executor::block_on(input.list()).expect("list");
        let paths: Vec<&str> = files.iter().map(|f| f.path.as_str()).collect();
        assert_eq!(paths, ["old.csv", "a/mid.csv", "b/new.csv"]);
        assert_eq!(files[0].size, 7);
        let read = futures::executor::block_on(input.read(&files[1])).expect("read");
        assert_eq!(read.as_deref(), Some(&b"a/mid.csv"[..]));
        std::fs::remove_file(dir.path().join("a/mid.csv")).expect("remove");
        let gone = futures::executor::block_on(input.read(&files[1])).expect("read");
        assert_eq!(gone, None);
    }
}
