//! The velocity job from the command line (`--rule velocity`): its alerts equal a plain
//! reference model of the rule, written here from its definition, on input in order and
//! out of order, on 1, 2 and 4 workers and on 2 processes; its `transactions` and
//! `alerts` tables read back with delta-rs; its settings part of the job's identity.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Deserialize;

use crate::delta_sink::write_csv;
use crate::python::{Python, TransactionOut};
use crate::reference::Tx;
use crate::support::{Rng, assert_exit, describe, read_lines, rfc3339_millis, tidelake};

/// A velocity alert as `(account, ts, count)`.
type VelocityAlert = (String, u64, u64);

/// The rule, from its definition: for each account, in `(ts, partition, sequence)`
/// order, a transaction alerts iff the number of that account's transactions so far
/// (itself included) with `ts > its ts − window` is more than `max`. Returns each
/// transaction's verdict (in `txs`' order) and the alerts, sorted.
fn reference(txs: &[Tx], max: u64, window: u64) -> (Vec<bool>, Vec<VelocityAlert>) {
    let mut by_account: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    for (i, tx) in txs.iter().enumerate() {
        by_account.entry(&tx.account).or_default().push(i);
    }
    let mut verdicts = vec![false; txs.len()];
    let mut alerts = Vec::new();
    for (account, mut list) in by_account {
        list.sort_by_key(|&i| (txs[i].ts, txs[i].partition, txs[i].seq));
        for (k, &i) in list.iter().enumerate() {
            let ts = txs[i].ts;
            let count = list[..=k]
                .iter()
                .filter(|&&j| txs[j].ts + window > ts)
                .count() as u64;
            if count > max {
                verdicts[i] = true;
                alerts.push((account.to_owned(), ts, count));
            }
        }
    }
    alerts.sort();
    (verdicts, alerts)
}

/// `lines` transactions on 60 accounts of several id shapes, a minute apart per account
/// on average, in bursts of one account's transactions tens of milliseconds apart (of 2.5 more
/// on average, geometric), so windows of a second or more see from one to a dozen
/// transactions; out of order by up to `disorder` ms (in file order, which is also
/// `(partition, sequence)` order).
fn bursty(seed: u64, lines: usize, disorder: u64) -> Vec<Tx> {
    let mut rng = Rng(seed);
    let shapes = |n: u64| match n % 3 {
        0 => n.to_string(),
        1 => format!("acct-ü-{n:04}"),
        _ => format!("{}{n}", "x".repeat(40 + n as usize % 50)),
    };
    let mut ts = 1_714_600_000_000;
    let mut account = 0;
    let mut txs: Vec<(u64, Tx)> = (0..lines)
        .map(|_| {
            if rng.below(10) < 6 {
                ts += rng.below(50);
            } else {
                ts += rng.below(2_000);
                account = rng.below(60);
            }
            let jittered = ts + rng.below(disorder + 1);
            let tx = Tx {
                account: shapes(account),
                ts,
                partition: 0,
                seq: 0,
                amount: (1 + rng.below(100_000)) as f64 / 100.0,
            };
            (jittered, tx)
        })
        .collect();
    // Lines are ordered by a jittered time, so a line's ts may be below an earlier one's.
    txs.sort_by_key(|(jittered, _)| *jittered);
    txs.into_iter()
        .enumerate()
        .map(|(i, (_, tx))| Tx {
            seq: i as u64,
            ..tx
        })
        .collect()
}

/// A velocity alert line of `--alerts`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct AlertLine {
    account_id: String,
    ts: u64,
    count: u64,
}

fn alerts_of(path: &Path) -> Vec<VelocityAlert> {
    let mut alerts: Vec<VelocityAlert> = read_lines::<AlertLine>(path)
        .into_iter()
        .map(|a| (a.account_id, a.ts, a.count))
        .collect();
    alerts.sort();
    alerts
}

/// Runs `tidelake <command> --rule velocity` on `input.csv` in `dir` with `extra` flags.
fn run_velocity(dir: &Path, command: &str, extra: &[&str]) -> std::process::Output {
    let mut args = vec![
        command,
        "--source",
        "csv",
        "--input",
        "input.csv",
        "--split-size",
        "64KiB",
        "--rule",
        "velocity",
        "--alerts",
        "alerts.jsonl",
    ];
    args.extend_from_slice(extra);
    tidelake(dir, &args)
}

#[test]
fn velocity_alerts_equal_the_reference_in_order_and_out_of_order_on_any_worker_count() {
    let cases: [(u64, &[&str], u64, u64); 3] = [
        (0, &[], 3, 10_000),
        (2_000, &["--out-of-orderness", "2s"], 3, 10_000),
        (
            500,
            &[
                "--out-of-orderness",
                "500ms",
                "--velocity-max",
                "5",
                "--velocity-window",
                "1500ms",
            ],
            5,
            1_500,
        ),
    ];
    for (case, (disorder, flags, max, window)) in cases.into_iter().enumerate() {
        let dir = tempfile::tempdir().expect("tempdir");
        let txs = bursty(case as u64 + 7, 30_000, disorder);
        write_csv(&dir.path().join("input.csv"), &txs);
        let (_, expected) = reference(&txs, max, window);
        let behind = txs.windows(2).filter(|w| w[1].ts < w[0].ts).count();
        assert_eq!(
            behind > 1_000,
            disorder > 0,
            "case {case}: {behind} lines out of order"
        );
        assert!(
            expected.len() > 100 && expected.len() < txs.len() / 2,
            "case {case}: the data raises {} alerts of {} transactions",
            expected.len(),
            txs.len()
        );
        for workers in ["1", "2", "4"] {
            let head = ["--no-table", "--workers", workers];
            let out = run_velocity(dir.path(), "run", &[&head[..], flags].concat());
            assert_exit(&out, 0);
            let dead =
                std::fs::read_to_string(dir.path().join("dead-letters.jsonl")).unwrap_or_default();
            assert!(dead.is_empty(), "case {case}: no record is late: {dead}");
            assert_eq!(
                alerts_of(&dir.path().join("alerts.jsonl")),
                expected,
                "case {case}, {workers} worker(s)"
            );
        }
    }
}

#[test]
fn velocity_on_two_processes_writes_the_reference_tables() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let txs = bursty(31, 20_000, 1_000);
    write_csv(&d.join("input.csv"), &txs);
    let (verdicts, expected) = reference(&txs, 3, 10_000);
    let out = run_velocity(
        d,
        "launch",
        &[
            "--processes",
            "2",
            "--workers",
            "2",
            "--out-of-orderness",
            "1s",
            "--table",
            "t",
            "--alerts-table",
            "a",
            "--job-id",
            "velocity",
        ],
    );
    assert_exit(&out, 0);
    assert_eq!(alerts_of(&d.join("alerts.jsonl")), expected);

    let python = Python::find();
    let rows = python
        .read(&d.join("t").to_string_lossy(), &[])
        .transactions();
    let mut expected_rows: Vec<TransactionOut> = txs
        .iter()
        .zip(&verdicts)
        .map(|(t, &alert)| TransactionOut {
            dt: t.ts as i64 * 1000,
            account_id: t.account.clone(),
            amount: t.amount,
            alert,
            date: Some(rfc3339_millis(t.ts)[..10].to_owned()),
        })
        .collect();
    let key = |r: &TransactionOut| (r.account_id.clone(), r.dt, r.amount.to_bits(), r.alert);
    expected_rows.sort_by_key(key);
    let mut rows = rows;
    rows.sort_by_key(key);
    assert_eq!(rows, expected_rows);

    let table = python.read(&d.join("a").to_string_lossy(), &[]);
    assert_eq!(
        table.schema.keys().collect::<Vec<_>>(),
        ["accountId", "count", "date", "dt"],
        "{:?}",
        table.schema
    );
    let mut alerts: Vec<VelocityAlert> = table
        .rows
        .iter()
        .map(|row| {
            let dt = row["dt"].as_i64().expect("dt") as u64;
            assert_eq!(row["date"], rfc3339_millis(dt / 1000)[..10]);
            (
                row["accountId"].as_str().expect("accountId").to_owned(),
                dt / 1000,
                row["count"].as_u64().expect("count"),
            )
        })
        .collect();
    alerts.sort();
    assert_eq!(alerts, expected);
}

#[test]
fn the_rule_and_its_settings_are_part_of_the_jobs_identity() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    write_csv(&d.join("input.csv"), &bursty(5, 2_000, 0));
    let table = ["--table", "t", "--job-id", "j"];
    assert_exit(&run_velocity(d, "run", &table), 0);
    // The same job id with another limit would commit other rows under the same epochs:
    // its checkpoints refuse it, and so does the table without them.
    let out = run_velocity(d, "run", &[&table[..], &["--velocity-max", "4"]].concat());
    assert_exit(&out, 2);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(r#"--velocity-max was "3" when it was taken, is "4" now"#),
        "{}",
        describe(&out)
    );
    let out = run_velocity(
        d,
        "run",
        &[&table[..], &["--velocity-max", "4", "--no-checkpoints"]].concat(),
    );
    assert_exit(&out, 2);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(r#"--velocity-max was "3" when it committed, is "4" now"#),
        "{}",
        describe(&out)
    );
    // And another rule.
    let out = tidelake(
        d,
        &[
            "run",
            "--source",
            "csv",
            "--input",
            "input.csv",
            "--alerts",
            "x.jsonl",
            "--table",
            "t",
            "--job-id",
            "j",
        ],
    );
    assert_exit(&out, 2);
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains(r#"--rule was "velocity" when it was taken, is "fraud" now"#),
        "{}",
        describe(&out)
    );
    // Velocity's settings belong to velocity.
    let out = tidelake(d, &["run", "--velocity-max", "4", "--count", "10"]);
    assert_exit(&out, 2);
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("only for --rule velocity"),
        "{}",
        describe(&out)
    );
}
