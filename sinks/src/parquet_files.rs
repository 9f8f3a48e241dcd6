//! The Parquet file sink, Flink's `FileSink` for bulk formats: rolling Parquet files in
//! a directory, each made visible whole.
//!
//! Rows go to `<dir>/<partition>=<value>/part-<worker>-<uuid>-c000.<codec>.parquet`
//! (Hive-style directories, as the Delta writer lays them out). A file rolls when it
//! reaches the target size and at the end of every epoch (the roll interval): it is
//! written under `<dir>/_in-progress/`, which readers skip like every `_`-prefixed
//! path, and moved to its place when the epoch is sealed. A local move is a rename, so
//! no reader ever sees part of a file.

use std::sync::Arc;

use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt};

use crate::clock;
use crate::delta::DeltaError;
use crate::delta::protocol::store::open_store;
use crate::epoch_files::{EpochFiles, report};
use crate::epochs::{EpochOutcome, EpochReport, EpochWriter};
use crate::parquet::ArrowRows;
use crate::parquet::{WriterOptions, data_file_location};

/// The directory files are written in before they are complete.
pub const IN_PROGRESS_DIR: &str = "_in-progress";

/// Writes one worker's rows as rolling Parquet files; see the [module docs](self).
pub struct ParquetFileSink<R: ArrowRows> {
    store: Arc<dyn ObjectStore>,
    root: Path,
    in_progress: Path,
    files: EpochFiles<R>,
}

impl<R: ArrowRows> ParquetFileSink<R> {
    /// A sink writing under `url` (a directory or object-store URL, as for tables);
    /// `writer_index` (the global worker index) goes into file names.
    pub fn new(url: &str, writer_index: usize, options: WriterOptions) -> Result<Self, DeltaError> {
        Self::open(url, writer_index, options, None)
    }

    /// [`new`](Self::new), naming each epoch's files from `job` (a job id), the writer,
    /// the epoch and their order in it, so that a job restored from a checkpoint writes
    /// the epochs it runs again over the files it wrote the first time, not beside
    /// them.
    pub fn named_by_epoch(
        url: &str,
        writer_index: usize,
        options: WriterOptions,
        job: &str,
    ) -> Result<Self, DeltaError> {
        Self::open(
            url,
            writer_index,
            options,
            Some(format!("{job}/{writer_index}")),
        )
    }

    fn open(
        url: &str,
        writer_index: usize,
        options: WriterOptions,
        epoch_names: Option<String>,
    ) -> Result<Self, DeltaError> {
        let (store, root) = open_store(url)?;
        let in_progress = root.clone().join(IN_PROGRESS_DIR);
        let mut files = EpochFiles::new(
            store.clone(),
            in_progress.clone(),
            writer_index,
            options,
            clock::system(),
        )?;
        if let Some(seed) = epoch_names {
            files = files.with_epoch_names(seed);
        }
        Ok(ParquetFileSink {
            store,
            root,
            in_progress,
            files,
        })
    }
}

impl<R: ArrowRows + Send> EpochWriter for ParquetFileSink<R> {
    type Row = R;
    type Error = DeltaError;

    async fn write(&mut self, epoch: u64, rows: Vec<R>) -> Result<(), DeltaError> {
        // No rules: nothing is kept out.
        self.files.write(epoch, &rows).await.map(drop)
    }

    async fn seal(&mut self, epoch: u64) -> Result<Vec<EpochReport>, DeltaError> {
        let (files, rows) = self.files.finish(epoch).await?;
        for file in &files {
            let bad_path =
                |e| DeltaError::Corrupt(format!("bad data file path {}: {e}", file.path));
            let from = data_file_location(&self.in_progress, &file.path).map_err(bad_path)?;
            let to = data_file_location(&self.root, &file.path).map_err(bad_path)?;
            self.store
                .rename(&from, &to)
                .await
                .map_err(|source| DeltaError::Store {
                    path: to.to_string(),
                    source,
                })?;
        }
        let outcome = match files.is_empty() {
            true => EpochOutcome::Empty,
            false => EpochOutcome::Written,
        };
        Ok(vec![report(epoch, rows, &files, outcome)])
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use super::*;
    use crate::epochs::{running, test_dataflow};
    use crate::parquet::rows::test_rows::TestRow;
    use parquet::file::reader::{FileReader, SerializedFileReader};

    /// Every `*.parquet` file under `dir` (recursively), skipping `_`-prefixed paths.
    fn visible_files(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
        let mut files = Vec::new();
        for entry in std::fs::read_dir(dir).expect("read dir") {
            let path = entry.expect("entry").path();
            let name = path
                .file_name()
                .and_then(|n| n.to_str())
                .unwrap_or_default();
            if name.starts_with('_') || name.starts_with('.') {
                continue;
            }
            if path.is_dir() {
                files.extend(visible_files(&path));
            } else {
                files.push(path);
            }
        }
        files
    }

    #[test]
    fn files_roll_per_epoch_and_at_the_target_size_and_appear_whole() {
        let dir = tempfile::tempdir().expect("tempdir");
        let url = dir.path().display().to_string();
        let reports = Arc::new(Mutex::new(Vec::new()));
        let shared = Arc::clone(&reports);
        timely::execute(timely::Config::process(2), move |worker| {
            let w = worker.index();
            let options = WriterOptions {
                target_file_size: 4096,
                batch_rows: 100,
                ..WriterOptions::default()
            };
            let sink = ParquetFileSink::<TestRow>::new(&url, w, options).expect("sink");
            let mut input = test_dataflow(worker, 1_000, sink, running(), Arc::clone(&shared));
            // 3 epochs of 2,000 rows per worker.
            for i in 0..6_000u64 {
                let ms = 1_714_521_600_000 + i / 2;
                input.advance_to(ms);
                input.send(TestRow {
                    dt_micros: (ms * 1000) as i64,
                    account_id: format!("w{w}-{}", i % 97),
                    amount: i as f64,
                    alert: false,
                });
            }
        })
        .expect("timely");

        let reports = reports.lock().expect("lock").clone();
        assert_eq!(reports.len(), 6, "3 epochs × 2 workers");
        assert!(
            reports
                .iter()
                .all(|r| r.outcome == EpochOutcome::Written && r.files > 1)
        );
        let files = visible_files(dir.path());
        assert_eq!(
            files.len() as u64,
            reports.iter().map(|r| r.files).sum::<u64>()
        );
        let mut rows = 0;
        for file in &files {
            let name = file
                .file_name()
                .and_then(|n| n.to_str())
                .unwrap_or_default();
            assert!(
                name.starts_with("part-0000") && name.ends_with(".zstd.parquet"),
                "{name}"
            );
            let reader = SerializedFileReader::new(std::fs::File::open(file).expect("open"))
                .expect("a complete Parquet file");
            rows += reader.metadata().file_metadata().num_rows();
        }
        assert_eq!(rows, 12_000);
        let in_progress: Vec<_> = std::fs::read_dir(dir.path().join(IN_PROGRESS_DIR))
            .map(|d| d.collect())
            .unwrap_or_default();
        assert!(
            in_progress
                .iter()
                .all(|e| e.as_ref().is_ok_and(|e| e.path().is_dir())),
            "nothing left in progress"
        );
    }
}
