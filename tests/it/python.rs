//! Real Delta readers for the tests: `tests/py/delta_read.py` (delta-rs, pyarrow and
//! polars) run as a subprocess with the venv's Python, its JSON answer deserialised.
//!
//! The interpreter is `$TIDELAKE_PYTHON` (set by `scripts/test.sh`), else
//! `<repo>/.venv/bin/python`; `bash scripts/test.sh` creates the venv.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use crate::support::rfc3339_millis;

/// The tests' Python, with the environment its scripts run in.
#[derive(Clone, Debug)]
pub struct Python {
    interpreter: PathBuf,
    env: Vec<(String, String)>,
}

impl Python {
    /// The venv's interpreter; panics with how to create it if it is missing.
    pub fn find() -> Python {
        let interpreter = std::env::var_os("TIDELAKE_PYTHON")
            .map(PathBuf::from)
            .unwrap_or_else(|| repo().join(".venv/bin/python"));
        assert!(
            interpreter.is_file(),
            "no Python at {}: run bash scripts/test.sh once to create .venv",
            interpreter.display()
        );
        Python {
            interpreter,
            env: Vec::new(),
        }
    }

    /// This Python with `env` added to its scripts' environment (e.g.
    /// [`MotoServer::env`](crate::moto::MotoServer::env)).
    pub fn with_env(mut self, env: impl IntoIterator<Item = (String, String)>) -> Python {
        self.env.extend(env);
        self
    }

    /// The interpreter's path.
    pub fn interpreter(&self) -> &Path {
        &self.interpreter
    }

    /// A command running `delta_read.py` with `args`. Inherited `AWS_*` variables are
    /// removed, so only the ones given with [`with_env`](Self::with_env) apply.
    pub fn command(&self, args: &[&str]) -> Command {
        self.script_command("delta_read.py", args)
    }

    /// A command running `tests/py/<script>` with `args`, in the same environment.
    fn script_command(&self, script: &str, args: &[&str]) -> Command {
        let mut command = Command::new(&self.interpreter);
        command
            .arg(repo().join("tests/py").join(script))
            .args(args)
            .stdin(Stdio::null());
        for (key, _) in std::env::vars_os() {
            if key.to_string_lossy().starts_with("AWS_") {
                command.env_remove(key);
            }
        }
        command.envs(self.env.iter().map(|(k, v)| (k, v)));
        command
    }

    /// Runs `delta_read.py` with `args` and parses the JSON document it prints.
    pub fn run<T: DeserializeOwned>(&self, args: &[&str]) -> T {
        self.run_script("delta_read.py", args)
    }

    /// Runs `tests/py/<script>` with `args` and parses the JSON document it prints.
    fn run_script<T: DeserializeOwned>(&self, script: &str, args: &[&str]) -> T {
        let output = self
            .script_command(script, args)
            .output()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", self.interpreter.display()));
        assert!(
            output.status.success(),
            "{script} {args:?} failed ({}):\n{}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        );
        serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
            panic!(
                "{script} {args:?} printed no valid JSON ({e}):\n{}",
                String::from_utf8_lossy(&output.stdout)
            )
        })
    }

    /// Runs `tests/py/model_check.py` with `args` (independent checks of model scoring).
    pub fn model_check<T: DeserializeOwned>(&self, args: &[&str]) -> T {
        self.run_script("model_check.py", args)
    }

    /// Makes a table of the transactions schema with one Delta table feature at `url`
    /// (see `tests/py/feature_tables.py` for the features), with `rows` rows.
    pub fn feature_table(&self, url: &str, feature: &str, rows: usize) -> FeatureTable {
        self.run_script(
            "feature_tables.py",
            &["make", url, feature, "--rows", &rows.to_string()],
        )
    }

    /// What delta-rs (`DeltaTable.scan()`, which applies deletion vectors) and polars read
    /// of the table at `url` now (`tests/py/feature_tables.py readers`).
    pub fn readers(&self, url: &str) -> ReadersRead {
        self.run_script("feature_tables.py", &["readers", url])
    }

    /// `text` in the Prometheus text format, parsed by the `prometheus_client` package
    /// (`tests/py/monitoring.py metrics`).
    pub fn parse_metrics(&self, text: &str) -> MetricsRead {
        use std::io::Write;
        let mut child = self
            .script_command("monitoring.py", &["metrics"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("python runs");
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(text.as_bytes())
            .expect("feed the metrics");
        let output = child.wait_with_output().expect("python ends");
        assert!(
            output.status.success(),
            "the Prometheus parser refused the metrics:\n{}\n---\n{text}",
            String::from_utf8_lossy(&output.stderr)
        );
        serde_json::from_slice(&output.stdout).expect("JSON")
    }

    /// Each of `files` read as an SVG (XML) or PNG image (`monitoring.py images`).
    pub fn images(&self, files: &[&Path]) -> Vec<ImageRead> {
        let files: Vec<String> = files.iter().map(|f| f.display().to_string()).collect();
        let mut args = vec!["images"];
        args.extend(files.iter().map(String::as_str));
        self.run_script("monitoring.py", &args)
    }

    /// delta-rs adds the CHECK constraint `name` = `expression`; returns the version.
    pub fn add_constraint(&self, url: &str, name: &str, expression: &str) -> u64 {
        let out: VersionOutput = self.run(&["add-constraint", url, name, expression]);
        out.version
    }

    /// The table's change data feed from `version` on, as delta-rs reads it.
    pub fn change_data_feed(&self, url: &str, version: u64) -> Vec<Map<String, Value>> {
        let out: RowsOutput = self.run(&["cdf", url, "--starting-version", &version.to_string()]);
        out.rows
    }

    /// The rows of the transactions table at `url` as delta-rs reads them, sorted,
    /// each `accountId TAB ts_ms TAB amount bits TAB alert` (for tables too big for
    /// [`read`](Self::read)).
    pub fn transaction_lines(&self, url: &str) -> Vec<String> {
        let out = tempfile::NamedTempFile::new().expect("temp file");
        let path = out.path().display().to_string();
        let _: Value = self.run(&["rows-file", url, &path]);
        let text = std::fs::read_to_string(out.path()).expect("rows file");
        text.lines().map(str::to_owned).collect()
    }

    /// The table at `url` as delta-rs, pyarrow and polars read it, with the
    /// `transaction_version` of each of `app_ids`.
    pub fn read(&self, url: &str, app_ids: &[&str]) -> TableRead {
        self.read_at(url, None, app_ids)
    }

    /// The table at `url` counted by delta-rs and polars, without its rows.
    pub fn count(&self, url: &str) -> TableCount {
        self.run(&["count", url])
    }

    /// The table at `url` as readers see it at `version` (time travel), with the
    /// `transaction_version` of each of `app_ids`.
    pub fn read_version(&self, url: &str, version: u64, app_ids: &[&str]) -> TableRead {
        self.read_at(url, Some(version), app_ids)
    }

    fn read_at(&self, url: &str, version: Option<u64>, app_ids: &[&str]) -> TableRead {
        let version = version.map(|v| v.to_string());
        let mut args = vec!["read", url];
        if let Some(version) = &version {
            args.extend(["--version", version]);
        }
        for app in app_ids {
            args.extend(["--app-id", app]);
        }
        self.run(&args)
    }

    /// delta-rs sets the table property `key` to `value`, unchecked; returns the version
    /// of its commit.
    pub fn set_property(&self, url: &str, key: &str, value: &str) -> u64 {
        let out: VersionOutput = self.run(&["set-property", url, key, value]);
        out.version
    }

    /// delta-rs compacts the table's small files (`optimize.compact()`).
    pub fn compact(&self, url: &str) -> CompactOutput {
        self.run(&["compact", url])
    }

    /// delta-rs appends `rows` rows of the transactions schema (see the script's doc);
    /// returns the version of its commit.
    pub fn append(&self, url: &str, rows: usize) -> u64 {
        let out: AppendOutput = self.run(&["append", url, &rows.to_string()]);
        assert_eq!(out.rows, rows as u64);
        out.version
    }

    /// delta-rs appends the JSON-lines transactions of `file` in the seed's schema, the
    /// time in column `time_column`, first adding the nullable column `add_column` if
    /// given (see the script's doc); returns the version of its commit.
    pub fn append_json(
        &self,
        url: &str,
        file: &Path,
        time_column: &str,
        add_column: Option<&str>,
    ) -> u64 {
        let file = file.display().to_string();
        let mut args = vec!["append-json", url, &file, "--time-column", time_column];
        if let Some(column) = add_column {
            args.extend(["--add-column", column]);
        }
        let out: VersionOutput = self.run(&args);
        out.version
    }

    /// delta-rs appends the accounts of the JSON-lines `file` (see the script's doc),
    /// creating the table if there is none; returns the version of its commit.
    pub fn append_accounts(&self, url: &str, file: &Path) -> u64 {
        let file = file.display().to_string();
        let out: VersionOutput = self.run(&["append-accounts", url, &file]);
        out.version
    }

    /// delta-rs deletes the rows matching `predicate`; returns the version of its commit.
    pub fn delete(&self, url: &str, predicate: &str) -> u64 {
        let out: VersionOutput = self.run(&["delete", url, predicate]);
        out.version
    }

    /// delta-rs checkpoints the table and cleans up expired log files; returns the
    /// checkpoint's version.
    pub fn checkpoint(&self, url: &str) -> u64 {
        let out: VersionOutput = self.run(&["checkpoint", url]);
        out.version
    }

    /// Starts delta-rs appending batches of `batch_rows` rows in a loop until `stop_file`
    /// exists (or 120 s pass); [`AppendLoop::stop`] ends it and returns what it did.
    pub fn spawn_append_loop(&self, url: &str, stop_file: &Path, batch_rows: usize) -> AppendLoop {
        let stop = stop_file.to_string_lossy().into_owned();
        let child = self
            .command(&[
                "append-loop",
                url,
                &stop,
                "--batch-rows",
                &batch_rows.to_string(),
            ])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", self.interpreter.display()));
        AppendLoop {
            child: Some(child),
            stop_file: stop_file.to_owned(),
        }
    }
}

/// The repository root.
fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A running `append-loop`: stopped (and killed if need be) on drop.
pub struct AppendLoop {
    child: Option<Child>,
    stop_file: PathBuf,
}

impl AppendLoop {
    /// Creates the stop file, waits for the loop to finish its current append and
    /// returns its report.
    pub fn stop(mut self) -> AppendLoopOutput {
        std::fs::write(&self.stop_file, b"stop").expect("write the append loop's stop file");
        let child = self.child.take().expect("running");
        let output = child.wait_with_output().expect("wait for the append loop");
        assert!(
            output.status.success(),
            "append-loop failed ({}):\n{}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        );
        serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
            panic!(
                "append-loop printed no valid JSON ({e}):\n{}",
                String::from_utf8_lossy(&output.stdout)
            )
        })
    }
}

impl Drop for AppendLoop {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// What `append` prints.
#[derive(Debug, Deserialize)]
struct AppendOutput {
    rows: u64,
    version: u64,
}

/// What `checkpoint` prints.
#[derive(Debug, Deserialize)]
struct VersionOutput {
    version: u64,
}

/// What `compact` prints.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CompactOutput {
    /// The version of the compaction's commit.
    pub version: u64,
    /// The log paths of the live files it removed, sorted.
    pub removed: Vec<String>,
    /// The log paths of the files it added, sorted.
    pub added: Vec<String>,
}

/// What `append-loop` prints.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AppendLoopOutput {
    /// Rows appended.
    pub rows: u64,
    /// Commits made.
    pub commits: u64,
    /// The version of each commit.
    pub versions: Vec<u64>,
    /// Appends that failed (the loop went on).
    pub errors: Vec<String>,
    /// True if it stopped at its time limit rather than at the stop file.
    pub timed_out: bool,
}

/// The table as `delta_read.py read` reports it.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TableRead {
    /// `DeltaTable.version()`.
    pub version: u64,
    /// Column → Arrow type of `to_pyarrow_table()`.
    pub schema: BTreeMap<String, String>,
    /// `to_pyarrow_table()` rows, column → value (timestamps as µs since the epoch).
    pub rows: Vec<Map<String, Value>>,
    /// appId → `transaction_version(appId)`.
    pub txn: BTreeMap<String, Option<i64>>,
    /// `get_add_actions(flatten=True)`, one entry per live file.
    pub add_actions: Vec<AddActionStats>,
    /// Each live file read by pyarrow itself.
    pub files: Vec<FileRead>,
    /// Rows polars reads.
    pub polars_rows: u64,
}

impl TableRead {
    /// The rows as `transactions` table rows.
    pub fn transactions(&self) -> Vec<TransactionOut> {
        self.rows
            .iter()
            .map(|row| {
                serde_json::from_value(Value::Object(row.clone()))
                    .unwrap_or_else(|e| panic!("not a transactions row ({e}): {row:?}"))
            })
            .collect()
    }

    /// Asserts that the log's stats of every live file (size, numRecords, nullCount,
    /// min, max, partition value) equal what pyarrow computes from the file itself, and
    /// that files hold UTC-micros timestamps and no partition column.
    pub fn assert_log_stats_match_files(&self) {
        self.assert_log_stats_match_files_timed_by("dt");
    }

    /// [`assert_log_stats_match_files`](Self::assert_log_stats_match_files) for the
    /// transactions schema with its time column named `time` (`timestamp` once
    /// `tidelake ingest --rename dt=timestamp` loaded it).
    pub fn assert_log_stats_match_files_timed_by(&self, time: &str) {
        assert_eq!(self.add_actions.len(), self.files.len());
        let now = chrono::Utc::now().timestamp_millis();
        for add in &self.add_actions {
            let file = self.file(&add.path);
            let context = format!("file {}", add.path);
            // Partition values of [A-Za-z0-9-] are the same in the log and in the store.
            assert_eq!(add.object, add.path, "{context}");
            assert_eq!(add.size_bytes, file.size_bytes, "size of {context}");
            assert!(
                0 < add.modification_time && add.modification_time <= now,
                "{context}"
            );
            assert_eq!(
                add.num_records,
                Some(file.num_rows),
                "numRecords of {context}"
            );
            // Timestamps are UTC micros in the file, and the partition column is not there.
            assert_eq!(
                file.schema,
                BTreeMap::from(
                    [
                        (time, "timestamp[us, tz=UTC]"),
                        ("accountId", "string"),
                        ("amount", "double"),
                        ("alert", "bool"),
                    ]
                    .map(|(c, t)| (c.to_owned(), t.to_owned()))
                ),
                "{context}"
            );
            for (column, stats) in &file.columns {
                assert_eq!(
                    add.null_count.get(column).copied().flatten(),
                    Some(stats.null_count),
                    "nullCount.{column} of {context}"
                );
                let (min, max) = if column == time {
                    // The log floors timestamps to ms (and delta-rs shows them so).
                    (floor_ms(&stats.min), floor_ms(&stats.max))
                } else {
                    (stats.min.clone(), stats.max.clone())
                };
                assert_eq!(add.min.get(column), Some(&min), "min.{column} of {context}");
                assert_eq!(add.max.get(column), Some(&max), "max.{column} of {context}");
            }
            // Every row of the file is in the file's partition.
            let day = |micros: &serde_json::Value| {
                let ms = micros.as_i64().expect("dt as µs") / 1_000;
                rfc3339_millis(u64::try_from(ms).expect("after 1970"))[..10].to_owned()
            };
            let dt = &file.columns[time];
            assert_eq!(day(&dt.min), day(&dt.max), "{context}");
            assert_eq!(add.partition["date"], Some(day(&dt.min)), "{context}");
        }
    }

    /// The pyarrow read of the file whose add action has `path`.
    pub fn file(&self, path: &str) -> &FileRead {
        self.files
            .iter()
            .find(|f| f.path == path)
            .unwrap_or_else(|| panic!("no file {path} in {:?}", self.files))
    }
}

/// Metrics as the Prometheus parser read them.
#[derive(Debug, Deserialize)]
pub struct MetricsRead {
    /// Family name (without `_total`) → type.
    pub families: BTreeMap<String, String>,
    /// Every sample.
    pub samples: Vec<MetricSample>,
}

/// One sample of a metric.
#[derive(Debug, Deserialize)]
pub struct MetricSample {
    /// The sample's name, with its suffix.
    pub name: String,
    /// Its labels.
    pub labels: BTreeMap<String, String>,
    /// Its value.
    pub value: f64,
}

impl MetricsRead {
    /// The sum of the samples named `name` whose labels include `labels`.
    pub fn sum(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        self.samples
            .iter()
            .filter(|s| s.name == name)
            .filter(|s| {
                labels
                    .iter()
                    .all(|(k, v)| s.labels.get(*k).map(String::as_str) == Some(*v))
            })
            .map(|s| s.value)
            .sum()
    }

    /// The samples named `name`.
    pub fn named(&self, name: &str) -> Vec<&MetricSample> {
        self.samples.iter().filter(|s| s.name == name).collect()
    }
}

/// An image as `monitoring.py images` read it.
#[derive(Debug, Deserialize)]
pub struct ImageRead {
    /// `svg` or `png`.
    pub kind: String,
    /// Its width in pixels.
    pub width: u64,
    /// Its height.
    pub height: u64,
    /// XML elements (SVG).
    pub elements: u64,
}

/// What `feature_tables.py make` made (its version, protocol and configuration are
/// in the notes too).
#[derive(Debug, Deserialize)]
pub struct FeatureTable {
    /// The rows a reader sees.
    pub rows: u64,
    /// How it was made, and what delta-rs says of it.
    pub notes: String,
}

/// What [`Python::readers`] read.
#[derive(Debug, Deserialize, PartialEq)]
pub struct ReadersRead {
    /// `DeltaTable.version()`.
    pub version: u64,
    /// `DeltaTable.scan()` rows, column → value, by `dt`.
    pub rows: Vec<Map<String, Value>>,
    /// Rows polars' `scan_delta` counts.
    pub polars_rows: u64,
}

#[derive(Deserialize)]
struct RowsOutput {
    rows: Vec<Map<String, Value>>,
}

/// A row of the `transactions` table as delta-rs reads it.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TransactionOut {
    /// µs since the epoch.
    pub dt: i64,
    pub account_id: String,
    pub amount: f64,
    pub alert: bool,
    /// The partition value.
    pub date: Option<String>,
}

/// One row of `get_add_actions(flatten=True)`: a live file and its stats from the log.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AddActionStats {
    /// The path as in the log (URI-encoded).
    pub path: String,
    /// The object key under the table root (the path decoded once).
    pub object: String,
    pub size_bytes: i64,
    pub modification_time: i64,
    pub num_records: Option<u64>,
    /// `partition.<col>`.
    pub partition: BTreeMap<String, Option<String>>,
    /// `null_count.<col>`.
    pub null_count: BTreeMap<String, Option<u64>>,
    /// `min.<col>` (timestamps as µs; delta-rs truncates them to ms).
    pub min: BTreeMap<String, Value>,
    /// `max.<col>`.
    pub max: BTreeMap<String, Value>,
}

/// What `delta_read.py count` read: a table counted, not returned.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TableCount {
    /// `DeltaTable.version()`.
    pub version: u64,
    /// Live files.
    pub files: u64,
    /// Rows delta-rs reads.
    pub rows: u64,
    /// Rows polars reads.
    pub polars_rows: u64,
}

/// A data file as pyarrow reads it directly.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileRead {
    /// The add action's path.
    pub path: String,
    /// The object's size in the store.
    pub size_bytes: i64,
    pub num_rows: u64,
    /// Row groups in the file's footer.
    pub row_groups: u64,
    /// Column → Arrow type in the file.
    pub schema: BTreeMap<String, String>,
    /// Column → stats computed from the values.
    pub columns: BTreeMap<String, ColumnStats>,
}

/// Stats of one column of a file, computed by pyarrow.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ColumnStats {
    pub null_count: u64,
    /// `null` when every value is null.
    pub min: Value,
    pub max: Value,
}

/// A timestamp in µs floored to ms, as the log's stats hold it.
fn floor_ms(micros: &Value) -> Value {
    let micros = micros.as_i64().expect("timestamp as µs");
    (micros.div_euclid(1_000) * 1_000).into()
}
