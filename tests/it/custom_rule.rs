//! `examples/custom_rule.rs`, a job of its own outside the crates (its own record type,
//! rule, table and dead letters on 2 workers), run as built by `cargo test`: its table
//! read back with delta-rs equals a reference model of the rule, from JSON lines and
//! from CSV, in order and out of order, and its bad lines are exactly its dead letters.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use serde::Deserialize;

use crate::python::{Python, TableRead};
use crate::support::{Rng, assert_exit, read_lines};

const WINDOW: u64 = 10 * 60_000;
const MERCHANTS: usize = 3;
const OUT_OF_ORDERNESS: u64 = 60_000;

/// Runs the example's binary (`cargo test` builds examples next to the test's own
/// directory) on `inputs`, writing to `out`.
fn run_example(out: &Path, inputs: &[PathBuf]) -> Output {
    let output = Command::new(example())
        .arg(out)
        .args(inputs)
        .output()
        .expect("the example runs");
    assert_exit(&output, 0);
    output
}

/// The example's binary.
fn example() -> PathBuf {
    let exe = std::env::current_exe().expect("the test's path");
    let target = exe
        .parent()
        .and_then(Path::parent)
        .expect("target/<profile>/deps");
    let example = target.join("examples").join("custom_rule");
    assert!(example.exists(), "{} is not built", example.display());
    example
}

#[derive(Clone, Debug)]
struct Purchase {
    card: String,
    merchant: String,
    ts: u64,
    amount: f64,
    /// (file, byte offset of its line): the job's (partition, sequence).
    position: (usize, u64),
}

/// A bad line of an input file: what it is, in JSON lines and in CSV.
#[derive(Clone, Copy, Debug)]
enum Bad {
    /// Not a whole record: JSON cut short, a CSV time that is not a number.
    Garbled,
    /// No merchant.
    MissingMerchant,
    /// An amount below zero: decodes, fails the record's check.
    NegativeAmount,
    /// Two out-of-orderness bounds below the file's greatest time so far.
    Late,
}

impl Bad {
    /// The line's text, for a file whose greatest time so far is `max_ts`.
    fn text(self, csv: bool, max_ts: u64) -> String {
        let late = max_ts - 2 * OUT_OF_ORDERNESS;
        match (self, csv) {
            (Bad::Garbled, false) => "{\"card\":\"c\",\"ts\":1,".to_owned(),
            (Bad::Garbled, true) => "c1,m1,not-a-time,3.5".to_owned(),
            (Bad::MissingMerchant, false) => "{\"card\":\"c1\",\"ts\":5,\"amount\":1.5}".to_owned(),
            (Bad::MissingMerchant, true) => "c1,5,1.5".to_owned(),
            (Bad::NegativeAmount, false) => {
                format!("{{\"card\":\"c1\",\"merchant\":\"m1\",\"ts\":{max_ts},\"amount\":-2}}")
            }
            (Bad::NegativeAmount, true) => format!("c1,m1,{max_ts},-2"),
            (Bad::Late, false) => {
                format!("{{\"card\":\"c1\",\"merchant\":\"m1\",\"ts\":{late},\"amount\":1}}")
            }
            (Bad::Late, true) => format!("c1,m1,{late},1"),
        }
    }

    /// The dead letter's reason, and words its detail must hold.
    fn expected(self, csv: bool) -> (&'static str, &'static str) {
        match (self, csv) {
            (Bad::Garbled, false) => ("parse", "EOF while parsing"),
            (Bad::Garbled, true) => ("parse", "column ts"),
            (Bad::MissingMerchant, false) => ("parse", "missing field `merchant`"),
            (Bad::MissingMerchant, true) => ("parse", "expected 4 fields"),
            (Bad::NegativeAmount, _) => ("invalid", "not a positive number"),
            (Bad::Late, _) => ("late", "below the partition's watermark"),
        }
    }
}

/// One line of an input file: a purchase, or a bad line.
enum Line {
    Good(Purchase),
    Bad(Bad),
}

/// An expected dead letter: file name, line number, reason, words of its detail.
type Letter = (String, u64, &'static str, &'static str);

/// `count` purchases of 12 cards (ids of three lengths), from a pool of merchants that
/// grows with `file`, `density` ms apart on average, each up to `jitter` ms later than
/// its place in the file (so out of order within the out-of-orderness when `jitter` >
/// 0), with a bad line of each kind every 97 purchases.
fn lines(rng: &mut Rng, file: usize, count: usize, density: u64, jitter: u64) -> Vec<Line> {
    let mut out = Vec::new();
    let mut base = 1_700_000_000_000 + rng.below(1_000);
    for k in 0..count {
        base += rng.below(2 * density + 1);
        let card = format!("card-{}{}", "x".repeat(rng.below(3) as usize), rng.below(4));
        let merchant = format!("m{}", rng.below(5 + 10 * file as u64));
        let ts = base + rng.below(jitter + 1);
        let amount = (1 + rng.below(99_999)) as f64 / 100.0;
        out.push(Line::Good(Purchase {
            card,
            merchant,
            ts,
            amount,
            position: (file, 0),
        }));
        let bad = match k % 97 {
            13 => Some(Bad::Garbled),
            31 => Some(Bad::MissingMerchant),
            47 => Some(Bad::NegativeAmount),
            71 => Some(Bad::Late),
            _ => None,
        };
        out.extend(bad.map(Line::Bad));
    }
    out
}

/// Writes `lines` as JSON lines or CSV, filling in each purchase's byte offset; returns
/// the file, the purchases (all on time) and the expected dead letters.
fn write(
    dir: &Path,
    file: usize,
    lines: &mut [Line],
    csv: bool,
) -> (PathBuf, Vec<Purchase>, Vec<Letter>) {
    let name = format!("purchases-{file}.{}", if csv { "csv" } else { "jsonl" });
    let mut text = String::new();
    let mut number = 0;
    if csv {
        text.push_str("card,merchant,ts,amount\n");
        number += 1;
    }
    let (mut good, mut bad) = (Vec::new(), Vec::new());
    let mut max_ts = 0u64;
    for line in lines.iter_mut() {
        number += 1;
        match line {
            Line::Good(p) => {
                p.position = (file, text.len() as u64);
                if csv {
                    text.push_str(&format!(
                        "{},{},{},{}\n",
                        p.card, p.merchant, p.ts, p.amount
                    ));
                } else {
                    text.push_str(&format!(
                        "{{\"card\":\"{}\",\"merchant\":\"{}\",\"ts\":{},\"amount\":{}}}\n",
                        p.card, p.merchant, p.ts, p.amount
                    ));
                }
                max_ts = max_ts.max(p.ts);
                good.push(p.clone());
            }
            Line::Bad(kind) => {
                text.push_str(&kind.text(csv, max_ts));
                text.push('\n');
                let (reason, detail) = kind.expected(csv);
                bad.push((name.clone(), number, reason, detail));
            }
        }
    }
    let path = dir.join(&name);
    std::fs::write(&path, text).expect("write input");
    (path, good, bad)
}

/// The rule by its definition (the example's doc comment), on every purchase at once.
fn reference(mut purchases: Vec<Purchase>) -> Vec<(String, String, u64, u64, u64)> {
    purchases.sort_by_key(|p| (p.ts, p.position));
    let mut seen: BTreeMap<&str, Vec<&Purchase>> = BTreeMap::new();
    let mut alerts = Vec::new();
    let mut count: BTreeMap<&str, u64> = BTreeMap::new();
    for p in &purchases {
        let before = seen.entry(&p.card).or_default();
        let recent: Vec<&str> = before
            .iter()
            .filter(|q| q.ts + WINDOW > p.ts)
            .map(|q| q.merchant.as_str())
            .collect();
        let mut distinct: Vec<&str> = recent.clone();
        distinct.sort_unstable();
        distinct.dedup();
        if !recent.contains(&p.merchant.as_str()) && distinct.len() + 1 >= MERCHANTS {
            let nth = count.entry(&p.card).or_default();
            *nth += 1;
            alerts.push((
                p.card.clone(),
                p.merchant.clone(),
                p.ts,
                (distinct.len() + 1) as u64,
                *nth,
            ));
        }
        before.push(p);
    }
    alerts.sort();
    alerts
}

/// The rows of the example's alerts table, as the reference writes them, sorted.
fn table_alerts(table: &TableRead) -> Vec<(String, String, u64, u64, u64)> {
    let mut got: Vec<(String, String, u64, u64, u64)> = table
        .rows
        .iter()
        .map(|row| {
            let a: AlertOut = serde_json::from_value(serde_json::Value::Object(row.clone()))
                .expect("an alert row");
            (a.card, a.merchant, a.dt / 1_000, a.merchants, a.nth)
        })
        .collect();
    got.sort();
    got
}

#[derive(Debug, Deserialize)]
struct AlertOut {
    card: String,
    merchant: String,
    dt: u64,
    merchants: u64,
    nth: u64,
}

#[derive(Debug, Deserialize)]
struct DeadLetterOut {
    source: String,
    line: Option<u64>,
    reason: String,
    detail: String,
}

#[test]
fn the_custom_rule_example_equals_its_reference_from_json_lines_and_csv() {
    let python = Python::find();
    for (csv, density, jitter) in [
        (false, 7_000, 0),
        (true, 20_000, 45_000),
        (false, 1_500, 59_000),
    ] {
        let what = format!("csv {csv}, density {density} ms, jitter {jitter} ms");
        let dir = tempfile::tempdir().expect("tempdir");
        let mut rng = Rng(density ^ jitter ^ u64::from(csv));
        let (mut inputs, mut purchases, mut dead) = (Vec::new(), Vec::new(), Vec::new());
        for file in 0..3 {
            let mut lines = lines(&mut rng, file, 1_500 + 400 * file, density, jitter);
            let (input, good, bad) = write(dir.path(), file, &mut lines, csv);
            inputs.push(input);
            purchases.extend(good);
            dead.extend(bad);
        }
        let out = dir.path().join("out");
        let output = run_example(&out, &inputs);
        assert_out(&python, &out, &purchases, dead, &what);
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(
            stdout.contains(&format!("{} purchases", purchases.len())),
            "{what}: {stdout}"
        );
    }
}

/// Asserts that the example wrote to `out` the alerts of the rule's reference on
/// `purchases` and the dead letters `dead`.
fn assert_out(
    python: &Python,
    out: &Path,
    purchases: &[Purchase],
    mut dead: Vec<Letter>,
    what: &str,
) {
    let expected = reference(purchases.to_vec());
    assert!(
        expected.len() > 5,
        "{what}: the data has alerts ({})",
        expected.len()
    );
    let table = python.read(&out.join("merchant_alerts").display().to_string(), &[]);
    let got = table_alerts(&table);
    assert_eq!(got, expected, "{what}: the table");
    assert_eq!(table.polars_rows, expected.len() as u64, "{what}: polars");

    let mut letters: Vec<(String, u64, String, String)> =
        read_lines::<DeadLetterOut>(&out.join("dead-letters.jsonl"))
            .into_iter()
            .map(|d| {
                let file = Path::new(&d.source)
                    .file_name()
                    .map(|f| f.to_string_lossy().into_owned())
                    .unwrap_or(d.source.clone());
                (file, d.line.expect("a line number"), d.reason, d.detail)
            })
            .collect();
    letters.sort();
    dead.sort();
    assert_eq!(letters.len(), dead.len(), "{what}: {letters:?}");
    for (got, want) in letters.iter().zip(&dead) {
        assert_eq!(
            (&got.0, got.1, got.2.as_str()),
            (&want.0, want.1, want.2),
            "{what}"
        );
        assert!(
            got.3.contains(want.3),
            "{what}: {got:?} should say {:?}",
            want.3
        );
    }
}

/// The example is a job with a job id of its own, so it takes checkpoints: killed
/// between an epoch's data-file upload and its commit, it resumes from its newest
/// checkpoint, reads only what came after it, and ends with the reference's alerts and
/// every dead letter once.
#[test]
fn the_custom_rule_example_resumes_after_kill_9_with_the_same_results() {
    let python = Python::find();
    let dir = tempfile::tempdir().expect("tempdir");
    let mut rng = Rng(2024);
    let (mut inputs, mut purchases, mut dead) = (Vec::new(), Vec::new(), Vec::new());
    for file in 0..3 {
        let mut lines = lines(&mut rng, file, 3_000, 1_000, 45_000);
        let (input, good, bad) = write(dir.path(), file, &mut lines, true);
        inputs.push(input);
        purchases.extend(good);
        dead.extend(bad);
    }
    let out = dir.path().join("out");
    // Every epoch its own commit: 150 commits before the kill, and checkpoints.
    let mut killed = Command::new(example())
        .arg("--commit-every-epoch")
        .arg(&out)
        .args(&inputs)
        .env("TIDELAKE_TEST_PAUSE", "commit:150")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the example runs");
    let stderr = killed.stderr.take().expect("piped");
    let paused = BufReader::new(stderr)
        .lines()
        .map_while(Result::ok)
        .any(|line| line.contains("tidelake-test: paused at commit 150"));
    let _ = killed.kill();
    let status = killed.wait().expect("wait");
    assert!(
        paused && !status.success(),
        "the example paused at its 150th commit"
    );

    let output = run_example(&out, &inputs);
    let stdout = String::from_utf8_lossy(&output.stdout);
    let read: usize = stdout
        .split(' ')
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("purchases read: {stdout}"));
    assert!(
        0 < read && read < purchases.len(),
        "the restart read {read} of {} purchases: {stdout}",
        purchases.len()
    );
    assert_out(&python, &out, &purchases, dead, "after kill -9");
}

#[test]
fn a_csv_without_its_header_goes_to_the_dead_letters_line_by_line() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("no-header.csv");
    std::fs::write(&path, "c1,m1,1000,2.5\nc1,m2,2000,3\nc1,m3,3000,4\n").expect("write");
    let out = dir.path().join("out");
    let output = run_example(&out, &[path]);
    let mut letters = read_lines::<DeadLetterOut>(&out.join("dead-letters.jsonl"));
    letters.sort_by_key(|d| d.line);
    let lines: Vec<(Option<u64>, &str)> = letters
        .iter()
        .map(|d| (d.line, d.reason.as_str()))
        .collect();
    assert_eq!(
        lines,
        vec![(Some(1), "parse"), (Some(2), "parse"), (Some(3), "parse")],
        "{letters:?}"
    );
    assert!(
        letters[0].detail.contains("not a header")
            && letters[0].detail.contains("card,merchant,ts,amount"),
        "{letters:?}"
    );
    assert!(
        String::from_utf8_lossy(&output.stdout).contains("0 purchases, 3 dead letters, 0 alerts")
    );
}

/// The example's own record type from a Kafka topic of JSON values (one file per
/// partition, a message per line, bad lines too): the same alerts as its reference, and
/// every bad line a dead letter naming the topic, its partition and offset.
#[test]
fn the_custom_rule_example_reads_its_records_from_kafka_json_values() {
    let broker = crate::kafka_broker::KafkaBroker::start();
    let b = broker.address();
    let python = Python::find();
    let dir = tempfile::tempdir().expect("tempdir");
    crate::kafka::create_topic(dir.path(), &b, "purchases", 3);
    let mut rng = Rng(77);
    let (mut purchases, mut dead) = (Vec::new(), Vec::new());
    for file in 0..3 {
        let mut lines = lines(&mut rng, file, 1_200 + 300 * file, 3_000, 30_000);
        let (input, good, bad) = write(dir.path(), file, &mut lines, false);
        let text = std::fs::read_to_string(&input).expect("the file");
        let messages = text.lines().map(|line| (file as i32, line.to_owned()));
        crate::kafka::send_to_partitions(&b, "purchases", messages);
        purchases.extend(good);
        // A message per line: line n is offset n - 1 of partition `file`.
        dead.extend(
            bad.into_iter()
                .map(|(_, line, reason, detail)| (file as u64, line - 1, reason, detail)),
        );
    }
    let out = dir.path().join("out");
    run_example(&out, &[PathBuf::from(format!("kafka://{b}/purchases"))]);

    let expected = reference(purchases.to_vec());
    assert!(expected.len() > 5, "the data has alerts");
    let table = python.read(&out.join("merchant_alerts").display().to_string(), &[]);
    let got = table_alerts(&table);
    assert_eq!(got, expected, "the table");

    let mut letters: Vec<(u64, u64, String, String)> =
        read_lines::<serde_json::Value>(&out.join("dead-letters.jsonl"))
            .into_iter()
            .map(|d| {
                assert_eq!(d["source"], "purchases", "{d}");
                (
                    d["partition"].as_u64().expect("a partition"),
                    d["position"].as_u64().expect("an offset"),
                    d["reason"].as_str().unwrap_or_default().to_owned(),
                    d["detail"].as_str().unwrap_or_default().to_owned(),
                )
            })
            .collect();
    letters.sort();
    dead.sort();
    assert_eq!(letters.len(), dead.len(), "{letters:?}");
    for (got, want) in letters.iter().zip(&dead) {
        assert_eq!((got.0, got.1, got.2.as_str()), (want.0, want.1, want.2));
        assert!(got.3.contains(want.3), "{got:?} should say {:?}", want.3);
    }
}
