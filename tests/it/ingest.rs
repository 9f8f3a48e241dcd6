//! `tidelake ingest` (docs/ingest.md): files pyarrow writes as Flink's FileSink leaves
//! them, and tidelake's own `--parquet-dir` files, loaded into a Delta table exactly
//! once — across re-runs, `--follow` and `kill -9` — read back by delta-rs, pyarrow and
//! polars; bad files in the dead letters whole; the Auto Loader pipeline of the README.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Output;
use std::time::Duration;

use serde::Deserialize;
use serde_json::{Value, json};

use crate::checkpoints::{Kill, Running, random_kills, same_lines, signal};
use crate::moto::{BUCKET, MotoServer};
use crate::python::Python;
use crate::support::{Rng, assert_exit, describe, read_alerts, tidelake};

/// A row of the seed schema, as the tests write it.
#[derive(Clone, Debug)]
struct Row {
    account: String,
    ts: i64,
    amount: f64,
    alert: bool,
}

impl Row {
    /// The row as a comparable line: id, µs, amount bits, alert.
    fn line(&self) -> String {
        format!(
            "{}\t{}\t{}\t{}",
            self.account,
            self.ts * 1000,
            self.amount.to_bits(),
            self.alert
        )
    }
}

/// An input file: its path below the input, the unit pyarrow writes `dt` in, its rows.
#[derive(Clone, Debug)]
struct InputFile {
    path: String,
    unit: &'static str,
    rows: Vec<Row>,
}

/// `files` input files of 1–`max_rows` rows each (some empty-ish, some large), in
/// FileSink's `yyyy-MM-dd--HH/part-<subtask>-<n>.parquet` buckets, rows out of order
/// within a file, ids of several shapes and lengths, `dt` in any unit.
fn input_files(seed: u64, files: usize, max_rows: u64, first: usize) -> Vec<InputFile> {
    let mut rng = Rng(seed);
    let mut ts: i64 = 1_717_190_000_000;
    (first..first + files)
        .map(|n| {
            let rows: Vec<Row> = (0..1 + rng.below(max_rows))
                .map(|_| {
                    // Dense and sparse stretches of event time: some files span days.
                    let gap = if rng.below(10) == 0 { 20_000_000 } else { 900 };
                    ts += 1 + rng.below(gap) as i64;
                    Row {
                        account: match rng.below(4) {
                            0 => rng.below(300).to_string(),
                            1 => format!("card-{:016x}", rng.below(200)),
                            2 => format!("Ünïcode, \"{}\"", rng.below(50)),
                            _ => format!("{}{}", "x".repeat(120), rng.below(20)),
                        },
                        ts: ts - rng.below(5_000) as i64,
                        amount: rng.below(1_000_000) as f64 / 100.0,
                        alert: rng.below(50) == 0,
                    }
                })
                .collect();
            let hour = chrono::DateTime::from_timestamp_millis(rows[0].ts)
                .expect("time")
                .format("%Y-%m-%d--%H");
            InputFile {
                path: format!("{hour}/part-{}-{n}.parquet", n % 3),
                unit: ["ms", "us", "ns", "s"][n % 4],
                rows: if n % 4 == 3 {
                    // Whole seconds: exact in every unit.
                    rows.into_iter()
                        .map(|r| Row {
                            ts: r.ts / 1000 * 1000,
                            ..r
                        })
                        .collect()
                } else {
                    rows
                },
            }
        })
        .collect()
}

/// The spec `delta_read.py write-files` reads.
fn spec(root: &str, files: &[InputFile], raw: &[(&str, &str)]) -> Value {
    let mut entries: Vec<Value> = files
        .iter()
        .map(|f| {
            json!({
                "path": f.path,
                "format": "parquet",
                "time_unit": f.unit,
                "rows": f.rows.iter().map(|r| json!({
                    "accountId": r.account, "ts": r.ts, "amount": r.amount, "alert": r.alert
                })).collect::<Vec<_>>(),
            })
        })
        .collect();
    entries.extend(
        raw.iter()
            .map(|(path, text)| json!({"path": path, "format": "raw", "text": text})),
    );
    json!({"root": root, "files": entries})
}

/// Writes `spec` with pyarrow, `interval_ms` apart.
fn write_files(python: &Python, dir: &Path, name: &str, spec: &Value) {
    let path = dir.join(format!("{name}.json"));
    std::fs::write(&path, spec.to_string()).expect("spec");
    let _: Value = python.run(&["write-files", &path.display().to_string()]);
}

/// The lines of every row of `files`, sorted.
fn lines_of(files: &[InputFile]) -> Vec<String> {
    let mut lines: Vec<String> = files.iter().flat_map(|f| &f.rows).map(Row::line).collect();
    lines.sort();
    lines
}

/// The table's rows as delta-rs reads them, as sorted lines; asserts each row's `date`
/// is the UTC date of its `timestamp` and that polars reads as many rows.
fn table_lines(python: &Python, url: &str) -> Vec<String> {
    let read = python.read(url, &[]);
    assert_eq!(
        read.polars_rows,
        read.rows.len() as u64,
        "polars reads every row"
    );
    let mut lines: Vec<String> = read
        .rows
        .iter()
        .map(|row| {
            let us = row["timestamp"].as_i64().expect("timestamp");
            let date = chrono::DateTime::from_timestamp_micros(us)
                .expect("time")
                .format("%Y-%m-%d")
                .to_string();
            assert_eq!(row["date"].as_str(), Some(date.as_str()), "{row:?}");
            let amount = row["amount"].as_f64().expect("amount");
            format!(
                "{}\t{us}\t{}\t{}",
                row["accountId"].as_str().expect("accountId"),
                amount.to_bits(),
                row["alert"].as_bool().expect("alert")
            )
        })
        .collect();
    lines.sort();
    lines
}

/// The URL of `name` in `dir`, for readers that run elsewhere.
fn url(dir: &Path, name: &str) -> String {
    dir.join(name).display().to_string()
}

/// `tidelake ingest` with the seed's shaping (`--partition-by date --rename
/// dt=timestamp`) and `extra`.
fn ingest(dir: &Path, input: &str, table: &str, extra: &[&str]) -> Output {
    let mut args = vec![
        "ingest",
        "--input",
        input,
        "--table",
        table,
        "--partition-by",
        "date",
        "--rename",
        "dt=timestamp",
        "--dead-letters",
        "dead.jsonl",
    ];
    args.extend(extra);
    tidelake(dir, &args)
}

/// The number after `label` in an ingest summary (`loaded 12 files`).
fn summary_count(output: &Output, label: &str) -> u64 {
    let stdout = String::from_utf8_lossy(&output.stdout);
    let after = stdout
        .split(label)
        .next()
        .and_then(|before| before.split_whitespace().last())
        .unwrap_or_else(|| panic!("no {label:?} in {stdout}"));
    after
        .replace(',', "")
        .trim_start_matches('(')
        .parse()
        .unwrap_or_else(|_| panic!("no count before {label:?} in {stdout}"))
}

/// The input files each ingest commit of `dir`'s log records, in version order.
fn recorded_files(table: &Path) -> Vec<String> {
    let mut commits: Vec<_> = std::fs::read_dir(table.join("_delta_log"))
        .expect("log")
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    commits.sort();
    let mut files = Vec::new();
    for commit in commits {
        for line in std::fs::read_to_string(&commit).expect("commit").lines() {
            let action: Value = serde_json::from_str(line).expect("action");
            if let Some(record) = action["commitInfo"].get("tidelakeIngest") {
                for file in record["files"].as_array().expect("files") {
                    files.push(file["path"].as_str().expect("path").to_owned());
                }
            }
        }
    }
    files
}

/// A dead letter of a whole file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileDeadLetter {
    source: String,
    reason: String,
    detail: String,
}

fn dead_letters(dir: &Path) -> Vec<FileDeadLetter> {
    match std::fs::read_to_string(dir.join("dead.jsonl")) {
        Ok(text) => text
            .lines()
            .map(|l| serde_json::from_str(l).expect("dead letter"))
            .collect(),
        Err(_) => Vec::new(),
    }
}

#[test]
fn ingest_once_loads_small_pyarrow_files_and_parquet_dir_files_exactly_once() {
    let dir = tempfile::tempdir().expect("dir");
    let python = Python::find();
    let files = input_files(11, 150, 120, 0);
    let hidden = [
        ("_SUCCESS", ""),
        (
            "2024-06-01--00/.part-0-99.parquet.inprogress.3f2a",
            "half a file",
        ),
        ("_in-progress/part-0-98.parquet", "not yet"),
        ("2024-06-01--00/_temporary/part-0-97.parquet", "not yet"),
    ];
    let input = dir.path().join("in").display().to_string();
    write_files(&python, dir.path(), "spec", &spec(&input, &files, &hidden));
    // tidelake's own rolling files (Flink's FileSink), small ones.
    let run = tidelake(
        dir.path(),
        &[
            "run",
            "--count",
            "4000",
            "--density",
            "50",
            "--start",
            "2024-06-01T00:00:00Z",
            "--accounts",
            "300",
            "--no-table",
            "--parquet-dir",
            "files",
            "--commit-interval",
            "2s",
            "--quiet",
        ],
    );
    assert_exit(&run, 0);
    let parquet_dir: Value =
        python.run(&["dataset", &dir.path().join("files").display().to_string()]);
    let produced = parquet_dir["files"].as_u64().expect("files");
    assert!(produced > 10, "many small files: {produced}");

    let first = ingest(dir.path(), "in", "lake", &["--job-id", "flink", "--once"]);
    assert_exit(&first, 0);
    assert_eq!(
        summary_count(&first, "files ("),
        150,
        "{}",
        describe(&first)
    );
    let second = ingest(dir.path(), "files", "lake", &["--job-id", "own", "--once"]);
    assert_exit(&second, 0);
    assert_eq!(
        summary_count(&second, "files ("),
        produced,
        "{}",
        describe(&second)
    );

    // Every row once: the rows written, and the rows pyarrow reads from the files.
    let mut want = lines_of(&files);
    for row in parquet_dir["rows"].as_array().expect("rows") {
        want.push(format!(
            "{}\t{}\t{}\t{}",
            row["accountId"].as_str().expect("id"),
            row["dt"].as_i64().expect("dt"),
            row["amount"].as_f64().expect("amount").to_bits(),
            row["alert"].as_bool().expect("alert")
        ));
    }
    want.sort();
    let lake = url(dir.path(), "lake");
    let got = table_lines(&python, &lake);
    same_lines(&got, &want, "rows", "rows");
    let read = python.read(&lake, &["flink-w0", "own-w0"]);
    assert_eq!(read.txn["flink-w0"], Some(1));
    assert_eq!(read.txn["own-w0"], Some(1));
    read.assert_log_stats_match_files_timed_by("timestamp");
    // Coalesced: one file per date of each commit, not one per input file.
    let dates_per_commit = files
        .iter()
        .flat_map(|f| &f.rows)
        .map(|r| r.ts.div_euclid(86_400_000))
        .collect::<std::collections::BTreeSet<_>>()
        .len();
    assert!(
        read.files.len() <= dates_per_commit + 4,
        "{} data files for {dates_per_commit} dates of the pyarrow files",
        read.files.len()
    );
    // Hidden files never load, nor go to the dead letters; the input's files are
    // each recorded once.
    assert!(dead_letters(dir.path()).is_empty());
    let mut recorded = recorded_files(&dir.path().join("lake"));
    recorded.sort();
    assert_eq!(recorded.len(), 150 + produced as usize);
    recorded.dedup();
    assert_eq!(
        recorded.len(),
        150 + produced as usize,
        "each file recorded once"
    );

    // Run again: nothing loaded, no commit.
    for (input, job) in [("in", "flink"), ("files", "own")] {
        let again = ingest(dir.path(), input, "lake", &["--job-id", job, "--once"]);
        assert_exit(&again, 0);
        assert_eq!(summary_count(&again, "files ("), 0, "{}", describe(&again));
    }
    assert_eq!(python.read(&lake, &[]).version, read.version);
}

#[test]
fn ingest_follow_killed_with_9_while_files_arrive_loads_every_file_once() {
    let dir = tempfile::tempdir().expect("dir");
    let python = Python::find();
    let files = input_files(23, 70, 60, 0);
    let input = dir.path().join("in").display().to_string();
    let spec_path = dir.path().join("spec.json");
    std::fs::write(&spec_path, spec(&input, &files, &[]).to_string()).expect("spec");
    let mut writer = python
        .command(&[
            "write-files",
            &spec_path.display().to_string(),
            "--interval-ms",
            "60",
        ])
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("writer");
    std::fs::create_dir_all(&input).expect("input");
    // No --job-id: the job is named after the input, the same every run.
    let job = |mode: &[&str]| -> Vec<String> {
        let mut args = vec![
            "ingest",
            "--input",
            "in",
            "--table",
            "lake",
            "--partition-by",
            "date",
            "--rename",
            "dt=timestamp",
            "--dead-letters",
            "dead.jsonl",
            "--max-files-per-commit",
            "4",
        ];
        args.extend(mode);
        args.into_iter().map(String::from).collect()
    };
    let args = job(&["--follow", "--poll-interval", "100ms"]);
    let mut kills = vec![
        Kill::AtPause("ingest-commit", 2),
        Kill::AtPause("ingest-segment", 2),
    ];
    kills.extend(random_kills(5, 3, 1_500));
    kills.push(Kill::AtPause("ingest-segment", 1));
    for kill in &kills {
        let env = match kill {
            Kill::AtPause(point, n) => {
                vec![("TIDELAKE_TEST_PAUSE".to_owned(), format!("{point}:{n}"))]
            }
            Kill::After(..) => Vec::new(),
        };
        let mut running = Running::start(dir.path(), &args, &env);
        match kill {
            Kill::AtPause(..) => {
                let status = running.watch(Duration::from_secs(60), |l| {
                    l.contains("tidelake-test: paused at")
                });
                assert!(
                    status.is_none() && running.seen.iter().any(|l| l.contains("paused at")),
                    "never paused at {kill:?}: {}",
                    running.seen.join("\n")
                );
            }
            Kill::After(after, _) => {
                let status = running.watch(*after, |_| false);
                assert!(status.is_none(), "exited: {}", running.seen.join("\n"));
            }
        }
        signal(running.pid(), "KILL");
        running.finish();
    }
    assert!(writer.wait().expect("writer").success());
    // The rest, then a follow that is stopped with Ctrl-C.
    let once = job(&["--once"]);
    let last = tidelake(
        dir.path(),
        &once.iter().map(String::as_str).collect::<Vec<_>>(),
    );
    assert_exit(&last, 0);
    let mut follow = Running::start(dir.path(), &args, &[]);
    std::thread::sleep(Duration::from_millis(700));
    signal(follow.pid(), "INT");
    let status = follow.watch(Duration::from_secs(30), |_| false);
    assert_eq!(
        status.and_then(|s| s.code()),
        Some(0),
        "{}",
        follow.seen.join("\n")
    );

    same_lines(
        &table_lines(&python, &url(dir.path(), "lake")),
        &lines_of(&files),
        "rows",
        "rows",
    );
    let mut recorded = recorded_files(&dir.path().join("lake"));
    recorded.sort();
    let mut want: Vec<String> = files.iter().map(|f| f.path.clone()).collect();
    want.sort();
    assert_eq!(recorded, want, "every file recorded by exactly one commit");
    assert!(dead_letters(dir.path()).is_empty());
}

#[test]
fn bad_files_go_to_the_dead_letters_whole_and_changed_files_are_reported_not_reloaded() {
    let dir = tempfile::tempdir().expect("dir");
    let python = Python::find();
    let good = input_files(31, 6, 50, 0);
    let input = dir.path().join("in").display().to_string();
    write_files(
        &python,
        dir.path(),
        "good",
        &spec(&input, &good, &[("a/not-parquet.parquet", "PAR1 junk")]),
    );
    // Another schema: `accountId` named `account`.
    let foreign = input_files(32, 1, 10, 100);
    let mut foreign_spec = spec(&input, &foreign, &[]);
    foreign_spec["files"][0]["rename"] = json!({"accountId": "account"});
    write_files(&python, dir.path(), "foreign", &foreign_spec);
    // A truncated copy of a good file.
    let truncated = dir.path().join("in/b/truncated.parquet");
    std::fs::create_dir_all(truncated.parent().expect("dir")).expect("mkdir");
    let bytes = std::fs::read(dir.path().join("in").join(&good[0].path)).expect("good file");
    std::fs::write(&truncated, &bytes[..bytes.len() / 2]).expect("truncate");

    let first = ingest(dir.path(), "in", "lake", &["--once"]);
    assert_exit(&first, 0);
    assert_eq!(summary_count(&first, "files ("), 6, "{}", describe(&first));
    assert_eq!(
        summary_count(&first, "to the dead letters"),
        3,
        "{}",
        describe(&first)
    );
    let lake = url(dir.path(), "lake");
    same_lines(
        &table_lines(&python, &lake),
        &lines_of(&good),
        "rows",
        "rows",
    );
    let letters: BTreeMap<String, (String, String)> = dead_letters(dir.path())
        .into_iter()
        .map(|l| (l.source, (l.reason, l.detail)))
        .collect();
    let foreign_path = &foreign[0].path;
    assert_eq!(
        letters.keys().collect::<Vec<_>>(),
        [
            &"a/not-parquet.parquet".to_owned(),
            &"b/truncated.parquet".to_owned(),
            foreign_path
        ]
        .into_iter()
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect::<Vec<_>>()
    );
    assert_eq!(letters["a/not-parquet.parquet"].0, "unreadable");
    assert_eq!(letters["b/truncated.parquet"].0, "unreadable");
    let (reason, detail) = &letters[foreign_path];
    assert_eq!(reason, "schema");
    assert!(
        detail.contains("`account`") && detail.contains("`accountId`"),
        "{detail}"
    );

    // A loaded file rewritten: reported, not loaded again; dead letters not repeated.
    let version = python.read(&lake, &[]).version;
    let changed = InputFile {
        rows: input_files(33, 1, 30, 0).remove(0).rows,
        ..good[2].clone()
    };
    write_files(
        &python,
        dir.path(),
        "changed",
        &spec(&input, &[changed], &[]),
    );
    let again = ingest(dir.path(), "in", "lake", &["--once"]);
    assert_exit(&again, 0);
    assert_eq!(
        summary_count(&again, "changed after loading"),
        1,
        "{}",
        describe(&again)
    );
    assert_eq!(summary_count(&again, "files ("), 0, "{}", describe(&again));
    let stderr = String::from_utf8_lossy(&again.stderr);
    assert!(
        stderr.contains(&good[2].path) && stderr.contains("changed after it was loaded"),
        "{stderr}"
    );
    assert_eq!(dead_letters(dir.path()).len(), 3);
    assert_eq!(python.read(&lake, &[]).version, version);
}

#[test]
fn csv_and_json_lines_load_with_header_order_free_and_bad_lines_name_their_line() {
    let dir = tempfile::tempdir().expect("dir");
    let python = Python::find();
    let input = dir.path().join("csv");
    std::fs::create_dir_all(input.join("2024")).expect("mkdir");
    std::fs::write(
        input.join("2024/a.csv"),
        "account_id,ts_millis,amount\na7,1717200000000,0.5\nb8,1717286400001,600\n",
    )
    .expect("a");
    std::fs::write(
        input.join("2024/b.csv"),
        "amount,account_id,ts_millis\n12.25,\"id, with comma\",1717200000002\n",
    )
    .expect("b");
    std::fs::write(
        input.join("c.csv"),
        "account_id,ts_millis,amount\n9,1717200000003,1\n10,not-a-time,2\n",
    )
    .expect("c");
    let out = tidelake(
        dir.path(),
        &[
            "ingest",
            "--input",
            "csv",
            "--table",
            "t",
            "--format",
            "csv",
            "--partition-by",
            "date",
            "--timestamp-column",
            "ts_millis",
            "--dead-letters",
            "dead.jsonl",
        ],
    );
    assert_exit(&out, 0);
    let read = python.read(&url(dir.path(), "t"), &[]);
    let mut rows: Vec<(String, i64, f64, String)> = read
        .rows
        .iter()
        .map(|r| {
            (
                r["account_id"].as_str().expect("account_id").to_owned(),
                r["ts_millis"].as_i64().expect("ms"),
                r["amount"].as_f64().expect("amount"),
                r["date"].as_str().expect("date").to_owned(),
            )
        })
        .collect();
    rows.sort_by_key(|r| r.1);
    assert_eq!(rows.len(), 3, "{rows:?}");
    assert_eq!(
        rows[0],
        ("a7".into(), 1_717_200_000_000, 0.5, "2024-06-01".into())
    );
    assert_eq!(rows[1].0, "id, with comma");
    assert_eq!(rows[1].2, 12.25);
    assert_eq!(
        rows[2],
        ("b8".into(), 1_717_286_400_001, 600.0, "2024-06-02".into())
    );
    let letters = dead_letters(dir.path());
    assert_eq!(letters.len(), 1, "{letters:?}");
    assert_eq!(letters[0].source, "c.csv");
    assert!(letters[0].detail.contains("line"), "{letters:?}");

    // JSON lines, its schema given; an unknown key makes a file a dead letter.
    let input = dir.path().join("json");
    std::fs::create_dir_all(&input).expect("mkdir");
    std::fs::write(input.join("a.jsonl"), "{\"accountId\":\"a\",\"ts\":1717200000000,\"amount\":1.5}\n{\"ts\":1717200000001,\"amount\":2,\"accountId\":\"b\"}\n").expect("a");
    std::fs::write(
        input.join("b.jsonl"),
        "{\"accountId\":\"c\",\"ts\":1717200000002,\"amount\":3,\"merchant\":\"m\"}\n",
    )
    .expect("b");
    let out = tidelake(
        dir.path(),
        &[
            "ingest",
            "--input",
            "json",
            "--table",
            "j",
            "--format",
            "jsonl",
            "--schema",
            "accountId string, ts bigint, amount double",
            "--rename",
            "ts=ms",
            "--dead-letters",
            "dead.jsonl",
        ],
    );
    assert_exit(&out, 0);
    let read = python.read(&url(dir.path(), "j"), &[]);
    assert_eq!(
        read.schema.keys().collect::<Vec<_>>(),
        ["accountId", "amount", "ms"]
    );
    assert_eq!(read.rows.len(), 2);
    let letters = dead_letters(dir.path());
    assert_eq!(letters.len(), 2);
    assert_eq!(letters[1].source, "b.jsonl");
}

#[test]
fn settings_that_cannot_work_are_refused_with_exit_2_naming_them() {
    let dir = tempfile::tempdir().expect("dir");
    let python = Python::find();
    let files = input_files(41, 3, 20, 0);
    let input = dir.path().join("in").display().to_string();
    write_files(&python, dir.path(), "spec", &spec(&input, &files, &[]));

    // Refused with exit 2, the message containing `needle`.
    let refused = |args: &[&str], needle: &str| {
        let mut all = vec!["ingest", "--input", "in"];
        all.extend(args);
        let out = tidelake(dir.path(), &all);
        assert_exit(&out, 2);
        assert!(
            describe(&out).contains(needle),
            "{args:?}: {}",
            describe(&out)
        );
    };
    refused(&["--table", "t", "--rename", "when=timestamp"], "`when`");
    assert!(!dir.path().join("t/_delta_log").exists(), "no table made");
    let no_time = [
        "--table",
        "t",
        "--partition-by",
        "date",
        "--rename",
        "dt=when",
    ];
    refused(&no_time, "--timestamp-column");
    refused(&["--table", "in"], "is the table itself");
    refused(&["--table", "t", "--job-id", "a/b"], "--job-id");

    let ok = ingest(dir.path(), "in", "lake", &["--job-id", "j"]);
    assert_exit(&ok, 0);
    // The same job with another shape would not load the same rows the same way.
    let other = [
        "--table",
        "lake",
        "--job-id",
        "j",
        "--partition-by",
        "date",
        "--rename",
        "dt=timestamp",
        "--timestamp-column",
        "timestamp",
    ];
    refused(&other, "--timestamp-column");
    // Another job into a table of another shape.
    refused(
        &["--table", "lake", "--rename", "dt=timestamp"],
        "partitioned by",
    );
}

#[test]
fn ingest_reads_and_writes_s3() {
    let moto = MotoServer::start();
    let dir = tempfile::tempdir().expect("dir");
    let python = Python::find().with_env(moto.env());
    let files = input_files(51, 12, 80, 0);
    let input = format!("s3://{BUCKET}/landing");
    write_files(
        &python,
        dir.path(),
        "spec",
        &spec(&input, &files, &[("_SUCCESS", "")]),
    );
    let table = format!("s3://{BUCKET}/lake/transactions");
    let run = |extra: &[&str]| {
        let mut args = vec![
            "ingest",
            "--input",
            &input,
            "--table",
            &table,
            "--partition-by",
            "date",
            "--rename",
            "dt=timestamp",
            "--dead-letters",
            "dead.jsonl",
            "--max-files-per-commit",
            "5",
        ];
        args.extend(extra);
        std::process::Command::new(env!("CARGO_BIN_EXE_tidelake"))
            .args(&args)
            .current_dir(dir.path())
            .envs(moto.env())
            .output()
            .expect("runs")
    };
    let first = run(&[]);
    assert_exit(&first, 0);
    assert_eq!(summary_count(&first, "files ("), 12, "{}", describe(&first));
    assert_eq!(summary_count(&first, "commits"), 3, "{}", describe(&first));
    same_lines(
        &table_lines(&python, &table),
        &lines_of(&files),
        "rows",
        "rows",
    );
    let again = run(&[]);
    assert_exit(&again, 0);
    assert_eq!(summary_count(&again, "files ("), 0, "{}", describe(&again));
}

#[test]
fn the_auto_loader_pipeline_of_the_readme_runs_end_to_end() {
    let dir = tempfile::tempdir().expect("dir");
    let generator = [
        "--count",
        "30000",
        "--accounts",
        "500",
        "--start",
        "2024-05-01T00:00:00Z",
        "--quiet",
    ];
    // The reference: the fraud job on the generator directly.
    let mut direct = vec!["run", "--no-table", "--alerts", "direct.jsonl"];
    direct.extend(generator);
    assert_exit(&tidelake(dir.path(), &direct), 0);
    // Flink's FileSink → Auto Loader → a Delta table → the table as a stream.
    let mut files = vec![
        "run",
        "--no-table",
        "--parquet-dir",
        "files",
        "--target-file-size",
        "64KiB",
        "--alerts",
        "first.jsonl",
    ];
    files.extend(generator);
    assert_exit(&tidelake(dir.path(), &files), 0);
    let loaded = ingest(dir.path(), "files", "lake/transactions", &["--once"]);
    assert_exit(&loaded, 0);
    let stream = tidelake(
        dir.path(),
        &[
            "run",
            "--source",
            "delta",
            "--input",
            "lake/transactions",
            "--no-table",
            "--alerts",
            "from-lake.jsonl",
            "--quiet",
        ],
    );
    assert_exit(&stream, 0);
    let want = read_alerts(&dir.path().join("direct.jsonl"));
    assert!(!want.is_empty());
    assert_eq!(read_alerts(&dir.path().join("from-lake.jsonl")), want);
}
