//! `examples/custom_rule.rs`, a job of its own outside the crates (its own record type,
//! rule, table and dead letters on 2 workers), run as built by `cargo test`: its table
//! read back with delta-rs equals a reference model of the rule, from JSON lines and
//! from CSV, in order and out of order, and its bad lines are exactly its dead letters.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde::Deserialize;

use crate::python::Python;
use crate::support::{Rng, assert_exit, read_lines};

const WINDOW: u64 = 10 * 60_000;
const MERCHANTS: usize = 3;
const OUT_OF_ORDERNESS: u64 = 60_000;

/// The example's binary: `cargo test` builds examples next to the test's own directory.
fn example() -> PathBuf {
    let exe = std::env::current_exe().expect("the test's path");
    let target = exe
        .parent()
        .and_then(Path::parent)
        .expect("target/<profile>/deps");
    let path = target.join("examples").join("custom_rule");
    assert!(path.exists(), "{} is not built", path.display());
    path
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

/// One line of an input file: a purchase, or a bad line and the reason it must have.
enum Line {
    Good(Purchase),
    Bad(String, &'static str),
}

/// Purchases of `cards` cards, each with its own few merchants, `density` ms apart on
/// average per file, each up to `jitter` ms later than its place in the file (so out of
/// order within the out-of-orderness when `jitter` > 0), with a late line and bad
/// lines mixed in.
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
        match k % 97 {
            13 => out.push(Line::Bad("{\"card\":\"c\",\"ts\":1,".into(), "parse")),
            31 => out.push(Line::Bad(String::new(), "missing merchant")),
            47 => out.push(Line::Bad(String::new(), "negative amount")),
            // Well below the watermark: late.
            71 if base > 3 * OUT_OF_ORDERNESS => out.push(Line::Bad(String::new(), "late")),
            _ => {}
        }
    }
    out
}

/// Writes `lines` as JSON lines or CSV, filling in each purchase's byte offset and the
/// text of each bad line; returns the purchases on time and the expected dead letters
/// as (file name, line number, reason).
fn write(
    dir: &Path,
    file: usize,
    lines: &mut [Line],
    csv: bool,
) -> (String, Vec<Purchase>, Vec<(String, u64, String)>) {
    let name = format!("purchases-{file}.{}", if csv { "csv" } else { "jsonl" });
    let mut text = String::new();
    if csv {
        text.push_str("card,merchant,ts,amount\n");
    }
    let (mut good, mut bad) = (Vec::new(), Vec::new());
    let mut max_ts = 0u64;
    for line in lines.iter_mut() {
        let number = text.matches('\n').count() as u64 + 1;
        let offset = text.len() as u64;
        match line {
            Line::Good(p) => {
                p.position = (file, offset);
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
            Line::Bad(raw, what) => {
                let (raw_text, reason) = match (*what, csv) {
                    ("parse", false) => (raw.clone(), "parse"),
                    ("parse", true) => ("c1,m1,not-a-time,3.5".to_owned(), "parse"),
                    ("missing merchant", false) => (
                        "{\"card\":\"c1\",\"ts\":5,\"amount\":1.5}".to_owned(),
                        "parse",
                    ),
                    ("missing merchant", true) => ("c1,5,1.5".to_owned(), "parse"),
                    ("negative amount", false) => (
                        format!(
                            "{{\"card\":\"c1\",\"merchant\":\"m1\",\"ts\":{max_ts},\"amount\":-2}}"
                        ),
                        "invalid",
                    ),
                    ("negative amount", true) => (format!("c1,m1,{max_ts},-2"), "invalid"),
                    (_, false) => (
                        format!(
                            "{{\"card\":\"c1\",\"merchant\":\"m1\",\"ts\":{},\"amount\":1}}",
                            max_ts - 2 * OUT_OF_ORDERNESS
                        ),
                        "late",
                    ),
                    (_, true) => (format!("c1,m1,{},1", max_ts - 2 * OUT_OF_ORDERNESS), "late"),
                };
                text.push_str(&raw_text);
                text.push('\n');
                bad.push((name.clone(), number, reason.to_owned()));
            }
        }
    }
    std::fs::write(dir.join(&name), text).expect("write input");
    (name, good, bad)
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
        let (mut names, mut purchases, mut dead) = (Vec::new(), Vec::new(), Vec::new());
        for file in 0..3 {
            let mut lines = lines(&mut rng, file, 1_500 + 400 * file, density, jitter);
            let (name, good, bad) = write(dir.path(), file, &mut lines, csv);
            names.push(dir.path().join(name).display().to_string());
            purchases.extend(good);
            dead.extend(bad);
        }
        let out = dir.path().join("out");
        let output = Command::new(example())
            .arg(&out)
            .args(&names)
            .output()
            .expect("the example runs");
        assert_exit(&output, 0);

        let expected = reference(purchases.clone());
        assert!(
            expected.len() > 5,
            "{what}: the data has alerts ({})",
            expected.len()
        );
        let table = python.read(&out.join("merchant_alerts").display().to_string(), &[]);
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
        assert_eq!(got, expected, "{what}: the table");
        assert_eq!(table.polars_rows, expected.len() as u64, "{what}: polars");

        let mut letters: Vec<(String, u64, String)> =
            read_lines::<DeadLetterOut>(&out.join("dead-letters.jsonl"))
                .into_iter()
                .map(|d| {
                    let file = Path::new(&d.source)
                        .file_name()
                        .map(|f| f.to_string_lossy().into_owned())
                        .unwrap_or(d.source.clone());
                    if d.reason == "invalid" {
                        assert!(d.detail.contains("not a positive number"), "{d:?}");
                    }
                    if d.reason == "parse" && !d.detail.contains("EOF") {
                        assert!(
                            d.detail.contains("merchant") || d.detail.contains("ts"),
                            "{what}: the detail names the field: {d:?}"
                        );
                    }
                    (file, d.line.expect("a line number"), d.reason)
                })
                .collect();
        letters.sort();
        dead.sort();
        assert_eq!(letters, dead, "{what}: the dead letters");
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(
            stdout.contains(&format!("{} purchases", purchases.len())),
            "{what}: {stdout}"
        );
    }
}

#[test]
fn a_csv_without_its_header_goes_to_the_dead_letters_line_by_line() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("no-header.csv");
    std::fs::write(&path, "c1,m1,1000,2.5\nc1,m2,2000,3\nc1,m3,3000,4\n").expect("write");
    let out = dir.path().join("out");
    let output = Command::new(example())
        .arg(&out)
        .arg(&path)
        .output()
        .expect("the example runs");
    assert_exit(&output, 0);
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
