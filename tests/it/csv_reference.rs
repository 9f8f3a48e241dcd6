//! A large CSV file through the binary, split into 1 MiB ranges read by 2 workers,
//! against the reference model (docs/semantics.md §2): many equal timestamps, the exact boundary
//! amounts 1.00 and 500.00, and small→large gaps of 59 999, 60 000 and 60 001 ms.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use crate::reference::{self, RefAlert, Tx};
use crate::support::{AlertLine, Rng, assert_exit, describe, read_lines, tidelake};

/// Lines in the file.
const LINES: usize = 300_000;
/// Normal accounts: `"0"` to `"1999"`.
const ACCOUNTS: u64 = 2_000;
/// Gaps of the injected pairs, cycled.
const PAIR_GAPS: [u64; 7] = [59_999, 60_000, 60_001, 0, 1, 30_000, 120_000];

fn cents(c: u64) -> String {
    format!("{}.{:02}", c / 100, c % 100)
}

/// The lines `(account, ts, amount text)` of the file, ts non-decreasing.
fn generate() -> Vec<(String, u64, String)> {
    let mut rng = Rng(0x7469_6465_6c61_6b65);
    let mut ts: u64 = 1_700_000_000_000;
    // Injected partners: (due ts, pair number, account, amount).
    let mut pending: BinaryHeap<Reverse<(u64, u64, String, String)>> = BinaryHeap::new();
    let mut pairs = 0u64;
    let mut lines = Vec::with_capacity(LINES);
    while lines.len() < LINES {
        // 40 % of lines share the previous line's timestamp.
        let next = if rng.below(100) < 40 {
            ts
        } else {
            ts + rng.below(25)
        };
        if let Some(Reverse((due, ..))) = pending.peek()
            && *due <= next
        {
            let Some(Reverse((due, _, account, amount))) = pending.pop() else {
                unreachable!()
            };
            ts = due;
            lines.push((account, ts, amount));
            continue;
        }
        ts = next;
        let i = lines.len();
        if i % 997 == 0 {
            // A pair on its own account: small now, large after the next gap.
            let gap = PAIR_GAPS[(pairs % PAIR_GAPS.len() as u64) as usize];
            let account = format!("p{pairs}");
            lines.push((account.clone(), ts, cents(rng.range(1, 99))));
            pending.push(Reverse((ts + gap, pairs, account, "777.77".to_owned())));
            pairs += 1;
            continue;
        }
        if i % 1_009 == 0 {
            // Large then small at the same ts on one account: no alert.
            let account = format!("q{i}");
            lines.push((account.clone(), ts, "900.00".to_owned()));
            lines.push((account, ts, "0.10".to_owned()));
            continue;
        }
        let account = rng.below(ACCOUNTS).to_string();
        let amount = match rng.below(1_000) {
            0..30 => cents(rng.range(1, 99)),
            30..60 => cents(rng.range(50_001, 500_000)),
            60..70 => "1.00".to_owned(),
            70..80 => "500.00".to_owned(),
            80..85 => "0.99".to_owned(),
            85..90 => "500.01".to_owned(),
            _ => cents(rng.range(100, 50_000)),
        };
        lines.push((account, ts, amount));
    }
    lines.truncate(LINES);
    lines
}

#[test]
fn split_csv_with_two_workers_matches_the_reference() {
    let lines = generate();
    assert!(
        lines.windows(2).all(|w| w[0].1 <= w[1].1),
        "test data: ts must be non-decreasing"
    );
    let mut content = String::with_capacity(LINES * 24);
    for (account, ts, amount) in &lines {
        content.push_str(&format!("{account},{ts},{amount}\n"));
    }
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("tx.csv"), &content).expect("write input");
    assert!(
        content.len() > 4 << 20,
        "the file should span several 1 MiB ranges"
    );

    // Within one file, byte order is line order: (0, line index) orders as
    // (partition, byte offset) does.
    let txs: Vec<Tx> = lines
        .iter()
        .enumerate()
        .map(|(i, (account, ts, amount))| Tx {
            account: account.clone(),
            ts: *ts,
            partition: 0,
            seq: i as u64,
            amount: amount.parse().expect("amount parses"),
        })
        .collect();
    let expected = reference::alerts(&txs);
    assert!(
        (200..5_000).contains(&expected.len()),
        "{} expected alerts: not a meaningful check",
        expected.len()
    );
    // The data exercises the boundaries it claims to.
    let gap_of = |a: &RefAlert| a.1 - a.2;
    for gap in [0, 59_999, 60_000] {
        assert!(
            expected.iter().any(|a| gap_of(a) == gap),
            "no expected alert with gap {gap}"
        );
    }
    assert!(expected.iter().all(|a| gap_of(a) <= 60_000));
    let organic = expected.iter().filter(|a| !a.0.starts_with('p')).count();
    assert!(organic >= 100, "only {organic} organic alerts");
    for boundary in ["1.00", "500.00"] {
        assert!(lines.iter().filter(|l| l.2 == boundary).count() > 1_000);
    }

    let output = tidelake(
        dir.path(),
        &[
            "run",
            "--source",
            "csv",
            "--input",
            "tx.csv",
            "--workers",
            "2",
            "--split-size",
            "1MiB",
            "--alerts",
            "alerts.jsonl",
        ],
    );
    assert_exit(&output, 0);
    assert_eq!(
        std::fs::read_to_string(dir.path().join("dead-letters.jsonl")).expect("dead letters"),
        "",
        "dead letters\n{}",
        describe(&output)
    );
    let alert_lines: Vec<AlertLine> = read_lines(&dir.path().join("alerts.jsonl"));
    let mut got: Vec<RefAlert> = alert_lines
        .iter()
        .map(|a| {
            a.assert_dates();
            a.as_ref_alert()
        })
        .collect();
    got.sort();
    assert_eq!(got.len(), expected.len(), "alert count");
    assert!(got == expected, "alerts differ from the reference");

    // Exactly the docs/semantics.md §1 fields, in the the order of docs/semantics.md §1.
    let text = std::fs::read_to_string(dir.path().join("alerts.jsonl")).expect("alerts");
    for line in text.lines().take(50) {
        let value: serde_json::Value = serde_json::from_str(line).expect("JSON");
        let keys: Vec<&str> = value
            .as_object()
            .expect("an object")
            .keys()
            .map(String::as_str)
            .collect();
        let mut keys_sorted = keys.clone();
        keys_sorted.sort_unstable();
        assert_eq!(
            keys_sorted,
            [
                "accountId",
                "dt",
                "largeAmount",
                "smallAmount",
                "smallDt",
                "smallTs",
                "ts"
            ],
            "{line}"
        );
        let order: Vec<usize> = [
            "\"accountId\"",
            "\"ts\"",
            "\"dt\"",
            "\"smallTs\"",
            "\"smallDt\"",
            "\"smallAmount\"",
            "\"largeAmount\"",
        ]
        .iter()
        .map(|k| line.find(k).expect("key present"))
        .collect();
        assert!(order.windows(2).all(|w| w[0] < w[1]), "field order: {line}");
    }
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("done"), "{stderr}");
}
