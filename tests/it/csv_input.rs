//! CSV and JSON-lines input through the binary (docs/semantics.md §1, §4): good lines are processed
//! (the enriched rows are exactly them and the alerts exactly the expected ones), every
//! bad line is a dead letter exactly once with its reason, byte offset, line number,
//! file and raw bytes, blank lines are only counted — for one partition and for many
//! 64-byte partitions.

use std::collections::BTreeMap;

use crate::reference::{self, RefAlert, Tx};
use crate::support::{
    DeadLine, EnrichedLine, assert_exit, base64_decode, describe, read_alerts, read_json,
    read_lines, tidelake,
};

/// What a line of the test file is.
#[derive(Clone, Debug)]
enum Kind {
    Header,
    Blank,
    /// A valid transaction `(account, ts, amount)`.
    Good(&'static str, u64, f64),
    /// A dead letter with this reason, whatever the split.
    Bad(&'static str),
    /// A valid transaction that is late (below an earlier line's ts in its partition)
    /// with one partition per file; with other splits it may be on time.
    Late(&'static str, u64, f64),
}

/// One line of the test file.
struct Entry {
    /// The line without terminator.
    bytes: Vec<u8>,
    /// `\n`, `\r\n`, or nothing for an unterminated last line.
    terminator: &'static [u8],
    kind: Kind,
}

fn line(bytes: &[u8], kind: Kind) -> Entry {
    Entry {
        bytes: bytes.to_vec(),
        terminator: b"\n",
        kind,
    }
}

fn crlf(bytes: &[u8], kind: Kind) -> Entry {
    Entry {
        terminator: b"\r\n",
        ..line(bytes, kind)
    }
}

/// A file's bytes, and each entry with its byte offset and 1-based line number.
fn layout(entries: &[Entry]) -> (Vec<u8>, Vec<(u64, u64, &Entry)>) {
    let mut content = Vec::new();
    let mut placed = Vec::new();
    for (i, entry) in entries.iter().enumerate() {
        placed.push((content.len() as u64, i as u64 + 1, entry));
        content.extend_from_slice(&entry.bytes);
        content.extend_from_slice(entry.terminator);
    }
    (content, placed)
}

/// The CSV test file: a header, good lines with known alerts, blank and bad lines.
fn csv_entries() -> Vec<Entry> {
    use Kind::{Bad, Blank, Good, Header, Late};
    // The longest account id: 128 bytes.
    let long: &'static str = "w".repeat(128).leak();
    vec![
        line(b" Account_ID , ts_millis,AMOUNT", Header),
        line(b"a,1000,0.5", Good("a", 1_000, 0.5)),
        line(b"a,2000,600", Good("a", 2_000, 600.0)),
        line(b"", Blank),
        line(b"b,3000,12x", Bad("parse")),
        line(b",3000,5", Bad("account_id")),
        crlf(b"c,3000,NaN", Bad("amount")),
        line(b"   ", Blank),
        line(b"c,3000", Bad("parse")),
        line(b"c,3000,5,6", Bad("parse")),
        line(b"c,253402300800000,5", Bad("ts")),
        line(b"c,-1,5", Bad("ts")),
        crlf(b"b,4000,0.25", Good("b", 4_000, 0.25)),
        crlf(b"", Blank),
        line(b"b,5000,700.5", Good("b", 5_000, 700.5)),
        line(b"d,4500,1", Late("d", 4_500, 1.0)),
        line(b"e\xff,6000,3", Bad("encoding")),
        line(b" \t ", Blank),
        line(b"f,7000,0.99", Good("f", 7_000, 0.99)),
        line(b"f,67000,500.01", Good("f", 67_000, 500.01)),
        line(b"g,67000,0.5", Good("g", 67_000, 0.5)),
        line(b"g,127001,501", Good("g", 127_001, 501.0)),
        line(b"h,127001,0.1", Good("h", 127_001, 0.1)),
        line(b"h,127001,900", Good("h", 127_001, 900.0)),
        line(b"i,130000,0.5", Good("i", 130_000, 0.5)),
        line(b"i,130000,500.00", Good("i", 130_000, 500.0)),
        line(b"j,140000,1.00", Good("j", 140_000, 1.0)),
        line(b"j,150000,800", Good("j", 150_000, 800.0)),
        line(b"k,150000,0.3", Good("k", 150_000, 0.3)),
        line(b"k,160000,-5", Good("k", 160_000, -5.0)),
        line(b"k,170000,800", Good("k", 170_000, 800.0)),
        line(b"\"l\",180000,\"0.5\"", Good("l", 180_000, 0.5)),
        line(b"l,181000,600", Good("l", 181_000, 600.0)),
        line(b"m,181000,900", Good("m", 181_000, 900.0)),
        line(
            format!("{long},181000,5").as_bytes(),
            Good(long, 181_000, 5.0),
        ),
        line(format!("{long}w,181000,5").as_bytes(), Bad("account_id")),
        // A ts in exponent notation is read when it is a whole number; an account id is
        // taken as written, spaces and all, but a NUL byte in it is bad.
        line(b"n,1.85e5,5", Good("n", 185_000, 5.0)),
        line(b" n ,185000,6", Good(" n ", 185_000, 6.0)),
        line(b"o\x00p,185000,5", Bad("account_id")),
        Entry {
            terminator: b"",
            ..line(b"m,190000,5", Good("m", 190_000, 5.0))
        },
    ]
}

/// The same transactions as JSON lines, with JSON's own bad lines.
fn jsonl_entries() -> Vec<Entry> {
    use Kind::{Bad, Blank, Good, Late};
    let mut entries = Vec::new();
    let good: Vec<(&'static str, u64, f64)> = csv_entries()
        .iter()
        .filter_map(|e| match e.kind {
            Good(a, t, x) => Some((a, t, x)),
            _ => None,
        })
        .collect();
    for (i, &(account, ts, amount)) in good.iter().enumerate() {
        let key = if i % 3 == 0 {
            "account_id"
        } else {
            "accountId"
        };
        // A ts in exponent notation is still a whole number of milliseconds.
        let ts_text = match account {
            "n" => format!("{}e3", ts / 1000),
            _ => ts.to_string(),
        };
        let text = format!(r#"{{"{key}":"{account}","ts":{ts_text},"amount":{amount}}}"#);
        entries.push(line(text.as_bytes(), Good(account, ts, amount)));
        match i {
            1 => entries.push(line(br#"{"accountId":"x","ts":2000}"#, Bad("parse"))),
            2 => entries.push(line(
                br#"{"accountId":"x","ts":2000.5,"amount":1}"#,
                Bad("parse"),
            )),
            3 => entries.push(line(b"", Blank)),
            4 => entries.push(line(b"[\"x\",2000,1]", Bad("parse"))),
            5 => entries.push(crlf(b"  ", Blank)),
            6 => entries.push(line(
                b"{\"accountId\":\"e\xff\",\"ts\":9000,\"amount\":3}",
                Bad("encoding"),
            )),
            7 => entries.push(line(b"42", Bad("parse"))),
            9 => entries.push(line(
                br#"{"accountId":"o\u0000p","ts":5000,"amount":1}"#,
                Bad("account_id"),
            )),
            8 => entries.push(line(
                br#"{"accountId":"x","ts":1,"amount":1}"#,
                Late("x", 1, 1.0),
            )),
            _ => {}
        }
    }
    // Pad with a blank line so that the good line before the late one starts a 64-byte
    // range, which the late one then shares.
    let late = entries
        .iter()
        .position(|e| matches!(e.kind, Late(..)))
        .expect("a late line");
    let (_, placed) = layout(&entries);
    let offset = placed[late - 1].0;
    if offset % 64 != 0 {
        let pad = vec![b' '; (64 - offset % 64 - 1) as usize];
        entries.insert(late - 1, line(&pad, Blank));
    }
    entries
}

/// The dead letter of a bad line, as far as it is known in advance (`detail` is only
/// checked to be non-empty, `raw_base64` by decoding).
fn expected_dead_letter(
    name: &str,
    partition: u32,
    offset: u64,
    number: u64,
    entry: &Entry,
    reason: &str,
) -> DeadLine {
    let (raw, raw_base64) = match std::str::from_utf8(&entry.bytes) {
        Ok(text) => (Some(text.to_owned()), None),
        Err(_) => (None, Some(String::new())),
    };
    DeadLine {
        source: name.to_owned(),
        partition,
        position: offset,
        line: Some(number),
        reason: reason.to_owned(),
        detail: String::new(),
        raw,
        raw_base64,
    }
}

/// What the file should give when split at `split` bytes (`None`: one partition):
/// the dead letters in file order and the accepted transactions. A line belongs to
/// the range its first byte lies in; a valid record is late when its ts is below the
/// greatest ts accepted before it in its partition (bound 0).
fn model(
    name: &str,
    placed: &[(u64, u64, &Entry)],
    split: Option<u64>,
) -> (Vec<DeadLine>, Vec<Tx>) {
    let mut dead = Vec::new();
    let mut accepted = Vec::new();
    let mut max_ts: BTreeMap<u32, u64> = BTreeMap::new();
    for &(offset, number, entry) in placed {
        let partition = split.map_or(0, |s| u32::try_from(offset / s).expect("u32"));
        let (account, ts, amount) = match entry.kind {
            Kind::Header | Kind::Blank => continue,
            Kind::Bad(reason) => {
                dead.push(expected_dead_letter(
                    name, partition, offset, number, entry, reason,
                ));
                continue;
            }
            Kind::Good(account, ts, amount) | Kind::Late(account, ts, amount) => {
                (account, ts, amount)
            }
        };
        let max = max_ts.entry(partition).or_insert(ts);
        if ts < *max {
            dead.push(expected_dead_letter(
                name, partition, offset, number, entry, "late",
            ));
            continue;
        }
        *max = ts;
        accepted.push(Tx {
            account: account.to_owned(),
            ts,
            partition: 0,
            seq: number,
            amount,
        });
    }
    (dead, accepted)
}

/// What a run wrote.
struct Outcome {
    dead: Vec<DeadLine>,
    alerts: Vec<RefAlert>,
}

/// The alerts of the good lines of both test files.
fn known_alerts() -> Vec<RefAlert> {
    let a = |acc: &str, ts: u64, small_ts: u64, small: f64, large: f64| {
        (
            acc.to_owned(),
            ts,
            small_ts,
            small.to_bits(),
            large.to_bits(),
        )
    };
    let mut v = vec![
        a("a", 2_000, 1_000, 0.5, 600.0),
        a("b", 5_000, 4_000, 0.25, 700.5),
        a("f", 67_000, 7_000, 0.99, 500.01),
        a("h", 127_001, 127_001, 0.1, 900.0),
        a("k", 170_000, 160_000, -5.0, 800.0),
        a("l", 181_000, 180_000, 0.5, 600.0),
    ];
    v.sort();
    v
}

/// Runs `tidelake run --source {format}` with 2 workers on `entries` written to `name`,
/// split at `split` bytes (`None`: the default, one partition for this small file), and
/// checks dead letters, enriched rows, alerts and the summary against the entries.
/// Returns the dead letters sorted by position, and the alerts.
fn run_and_check(format: &str, name: &str, entries: &[Entry], split: Option<u64>) -> Outcome {
    let dir = tempfile::tempdir().expect("tempdir");
    let (content, placed) = layout(entries);
    std::fs::write(dir.path().join(name), &content).expect("write input");
    let split_arg = split.map(|s| format!("{s}B"));
    let mut args = vec![
        "run",
        "--source",
        format,
        "--input",
        name,
        "--workers",
        "2",
        "--alerts",
        "alerts.jsonl",
        "--dead-letters",
        "dead.jsonl",
        "--enriched",
        "enriched.jsonl",
    ];
    if let Some(split) = &split_arg {
        args.extend(["--split-size", split]);
    }
    let output = tidelake(dir.path(), &args);
    assert_exit(&output, 0);
    let what = format!("{format} split {split:?}");
    let (expected, accepted) = model(name, &placed, split);
    if split.is_none() {
        // The test data: the lines marked late are late with one partition.
        let late: Vec<u64> = expected
            .iter()
            .filter(|d| d.reason == "late")
            .map(|d| d.position)
            .collect();
        let marked: Vec<u64> = placed
            .iter()
            .filter(|p| matches!(p.2.kind, Kind::Late(..)))
            .map(|p| p.0)
            .collect();
        assert_eq!(late, marked, "test data: late lines");
    }

    // Dead letters: every bad line exactly once, with its partition, position, line
    // and raw bytes.
    let mut dead: Vec<DeadLine> = read_lines(&dir.path().join("dead.jsonl"));
    dead.sort_by_key(|d| d.position);
    let comparable = |d: &DeadLine| {
        let mut d = d.clone();
        d.detail = String::new();
        if d.raw_base64.is_some() {
            d.raw_base64 = Some(String::new());
        }
        d
    };
    let got: Vec<DeadLine> = dead.iter().map(comparable).collect();
    assert_eq!(got, expected, "{what}: dead letters\n{}", describe(&output));
    for d in &dead {
        assert!(!d.detail.trim().is_empty(), "{what}: no detail in {d:?}");
        if let Some(b64) = &d.raw_base64 {
            let entry = placed.iter().find(|p| p.0 == d.position).expect("placed").2;
            assert_eq!(
                base64_decode(b64),
                entry.bytes,
                "{what}: raw_base64 of {d:?}"
            );
        }
    }

    // Accepted lines: the enriched rows are exactly them; the alerts the reference's,
    // and the rows flagged are the alerts' large transactions.
    let enriched: Vec<EnrichedLine> = read_lines(&dir.path().join("enriched.jsonl"));
    let mut rows: Vec<(String, u64, u64)> = enriched
        .iter()
        .map(|r| (r.account_id.clone(), r.ts, r.amount.to_bits()))
        .collect();
    rows.sort();
    let mut expected_rows: Vec<(String, u64, u64)> = accepted
        .iter()
        .map(|t| (t.account.clone(), t.ts, t.amount.to_bits()))
        .collect();
    expected_rows.sort();
    assert_eq!(rows, expected_rows, "{what}: enriched rows");
    let alerts = read_alerts(&dir.path().join("alerts.jsonl"));
    let known = known_alerts();
    assert_eq!(
        reference::alerts(&accepted),
        known,
        "the test's own expectation"
    );
    assert_eq!(alerts, known, "{what}: alerts\n{}", describe(&output));
    let mut flagged: Vec<(String, u64, u64)> = enriched
        .iter()
        .filter(|r| r.alert)
        .map(|r| (r.account_id.clone(), r.ts, r.amount.to_bits()))
        .collect();
    flagged.sort();
    let known_large: Vec<(String, u64, u64)> =
        known.iter().map(|a| (a.0.clone(), a.1, a.4)).collect();
    assert_eq!(
        flagged, known_large,
        "{what}: enriched rows flagged as alerts"
    );

    // The summary counts blank lines (and the rest).
    let blanks = placed
        .iter()
        .filter(|p| matches!(p.2.kind, Kind::Blank))
        .count();
    let stderr = String::from_utf8_lossy(&output.stderr);
    for part in [
        "done".to_owned(),
        format!(" {} events", accepted.len()),
        format!(" {} alerts", known.len()),
        format!(" {} dead letters", expected.len()),
        format!(" {blanks} blank lines"),
    ] {
        assert!(
            stderr.contains(&part),
            "{what}: summary lacks '{part}':\n{stderr}"
        );
    }
    assert!(
        output.stdout.is_empty(),
        "{what}: alerts went to a file, yet stdout has output"
    );
    Outcome { dead, alerts }
}

/// One partition, then 64-byte partitions: the same dead letters (but for their
/// partition) and alerts.
fn with_split(format: &str, name: &str, entries: &[Entry]) {
    let one = run_and_check(format, name, entries, None);
    let many = run_and_check(format, name, entries, Some(64));
    let partitions: std::collections::BTreeSet<u32> =
        many.dead.iter().map(|d| d.partition).collect();
    assert!(
        partitions.len() >= 3,
        "the dead letters span few partitions: {partitions:?}"
    );
    let strip = |dead: &[DeadLine]| -> Vec<DeadLine> {
        dead.iter()
            .map(|d| DeadLine {
                partition: 0,
                ..d.clone()
            })
            .collect()
    };
    assert_eq!(
        strip(&one.dead),
        strip(&many.dead),
        "dead letters depend on the split size"
    );
    assert_eq!(one.alerts, many.alerts);
}

/// The late line must share its 64-byte range with the line it is late against, or
/// it would not be late when the file is split at 64 bytes.
fn assert_late_line_shares_its_range(entries: &[Entry]) {
    let (_, placed) = layout(entries);
    for (i, &(offset, _, entry)) in placed.iter().enumerate() {
        if matches!(entry.kind, Kind::Late(..)) {
            let before = placed[..i]
                .iter()
                .rev()
                .find(|p| matches!(p.2.kind, Kind::Good(..)))
                .expect("a good line before the late one");
            assert_eq!(
                offset / 64,
                before.0 / 64,
                "test layout: move the late line"
            );
        }
    }
}

#[test]
fn csv_bad_lines_are_dead_letters_and_good_lines_alert() {
    let entries = csv_entries();
    assert_late_line_shares_its_range(&entries);
    with_split("csv", "tx.csv", &entries);
}

#[test]
fn jsonl_bad_lines_are_dead_letters_and_good_lines_alert() {
    let entries = jsonl_entries();
    assert_late_line_shares_its_range(&entries);
    with_split("jsonl", "tx.jsonl", &entries);
}

#[test]
fn csv_every_split_size_reads_every_line_once() {
    let entries = csv_entries();
    for split in [1, 2, 3, 5, 8, 13, 17, 31, 63, 65, 100, 129] {
        run_and_check("csv", "tx.csv", &entries, Some(split));
    }
}

#[test]
fn jsonl_every_split_size_reads_every_line_once() {
    let entries = jsonl_entries();
    for split in [1, 2, 7, 29, 45, 46, 47, 63, 100] {
        run_and_check("jsonl", "tx.jsonl", &entries, Some(split));
    }
}

/// A glob matches files in sorted order, not hidden ones; partitions follow file
/// order, so ties at one ts are ordered by file, and lateness is per file.
#[test]
fn csv_glob_reads_files_in_order() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    std::fs::create_dir(&data).expect("mkdir");
    let files: [(&str, &str); 5] = [
        ("b.csv", "x,2000,600\ny,5000,0.5\n"),
        ("a.csv", "x,1000,0.5\ny,5000,900\n"),
        ("c.csv", "y,5000,700\nz,100,0.5\nz,200,800\n"),
        (".hidden.csv", "h,1000,0.5\nh,1001,900\n"),
        ("notes.txt", "n,1000,0.5\nn,1001,900\n"),
    ];
    for (name, content) in files {
        std::fs::write(data.join(name), content).expect("write");
    }
    let output = tidelake(
        dir.path(),
        &[
            "run",
            "--source",
            "csv",
            "--input",
            "data/*.csv",
            "--workers",
            "2",
            "--alerts",
            "alerts.jsonl",
            "--dead-letters",
            "dead.jsonl",
        ],
    );
    assert_exit(&output, 0);
    let bits = |x: f64| x.to_bits();
    assert_eq!(
        read_alerts(&dir.path().join("alerts.jsonl")),
        vec![
            ("x".to_owned(), 2_000, 1_000, bits(0.5), bits(600.0)),
            // At ts 5000: a's 900, then b's 0.5, then c's 700.
            ("y".to_owned(), 5_000, 5_000, bits(0.5), bits(700.0)),
        ],
        "{}",
        describe(&output)
    );
    let mut dead: Vec<DeadLine> = read_lines(&dir.path().join("dead.jsonl"));
    dead.sort_by_key(|d| d.position);
    for d in &mut dead {
        assert!(d.detail.contains("below"), "{d:?}");
        d.detail.clear();
    }
    let late = |position: u64, line: u64, raw: &str| DeadLine {
        source: "data/c.csv".to_owned(),
        partition: 2,
        position,
        line: Some(line),
        reason: "late".to_owned(),
        detail: String::new(),
        raw: Some(raw.to_owned()),
        raw_base64: None,
    };
    assert_eq!(
        dead,
        vec![late(11, 2, "z,100,0.5"), late(21, 3, "z,200,800")]
    );
}

/// An integer ts out of range is reason `ts` (docs/semantics.md §1: "an out-of-range time"), in
/// JSON lines as in CSV — also past the 64-bit range, where a JSON parser without
/// arbitrary precision sees a float.
#[test]
fn jsonl_integer_ts_past_64_bits_is_reason_ts_as_in_csv() {
    let values = [
        "253402300800000",
        "18446744073709551615",
        "18446744073709551616",
        "99999999999999999999999",
        "-1",
        "-9223372036854775809",
    ];
    let dir = tempfile::tempdir().expect("tempdir");
    let csv: String = values.iter().map(|v| format!("a,{v},1\n")).collect();
    let jsonl: String = values
        .iter()
        .map(|v| format!("{{\"accountId\":\"a\",\"ts\":{v},\"amount\":1}}\n"))
        .collect();
    std::fs::write(dir.path().join("tx.csv"), csv).expect("write");
    std::fs::write(dir.path().join("tx.jsonl"), jsonl).expect("write");
    let mut reasons = Vec::new();
    for (format, name) in [("csv", "tx.csv"), ("jsonl", "tx.jsonl")] {
        let output = tidelake(
            dir.path(),
            &[
                "run",
                "--source",
                format,
                "--input",
                name,
                "--dead-letters",
                "dead.jsonl",
            ],
        );
        assert_exit(&output, 0);
        let mut dead: Vec<DeadLine> = read_lines(&dir.path().join("dead.jsonl"));
        dead.sort_by_key(|d| d.position);
        let got: Vec<(u64, String, String)> = dead
            .into_iter()
            .map(|d| (d.line.expect("line"), d.reason, d.detail))
            .collect();
        reasons.push(got);
    }
    let expected: Vec<(u64, &str)> = (1..=values.len() as u64).map(|l| (l, "ts")).collect();
    for (format, got) in ["csv", "jsonl"].iter().zip(&reasons) {
        let short: Vec<(u64, &str)> = got.iter().map(|g| (g.0, g.1.as_str())).collect();
        assert_eq!(short, expected, "{format}: reasons\n{got:#?}");
    }
}

/// The default split (docs/semantics.md §4): a file of about 17 MB is cut into 16 equal
/// ranges, dealt to 2 workers in turn, so each reads exactly the lines that start in its
/// 8 ranges (computed here from the bytes: the same count on each worker within one
/// range's lines); `--split-size 64MiB` (the old default, one range) read the whole file
/// on one worker. The rule is part of the job's identity: a re-run of the job id with
/// `--split-size 64MiB` is refused with exit 2 naming both settings, and one with the
/// default commits nothing more.
#[test]
fn the_default_split_balances_a_file_over_workers_and_is_part_of_the_job_identity() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut rng = crate::support::Rng(0x5e11_7a5e);
    let mut content = String::new();
    let mut starts = Vec::new();
    let mut ts = 1_714_521_600_000u64;
    while content.len() < 17_000_000 {
        starts.push(content.len() as u64);
        let account = match rng.below(3) {
            0 => format!("acct_{:06}", rng.below(50_000)),
            1 => rng.below(1_000_000_000).to_string(),
            _ => format!("{:x}-{}", rng.next(), rng.below(9)),
        };
        ts += rng.below(40);
        let cents = rng.range(1, 99_999);
        content.push_str(&format!(
            "{account},{ts},{}.{:02}\n",
            cents / 100,
            cents % 100
        ));
    }
    std::fs::write(dir.path().join("tx.csv"), &content).expect("write input");

    let size = content.len() as u64;
    let range = size.div_ceil(16);
    let mut expected = [0u64; 2];
    for start in &starts {
        expected[((start / range) % 2) as usize] += 1;
    }
    let spread = expected[0].abs_diff(expected[1]);
    assert!(
        spread * 16 < starts.len() as u64,
        "{expected:?}: not balanced"
    );

    let run = |extra: &[&str]| {
        let mut args = vec![
            "run",
            "--source",
            "csv",
            "--input",
            "tx.csv",
            "--workers",
            "2",
            "--table",
            "t",
            "--job-id",
            "split-job",
            "--no-checkpoints",
            "--report-json",
            "report.json",
            "--quiet",
        ];
        args.extend(extra);
        tidelake(dir.path(), &args)
    };
    let report = || read_json(&dir.path().join("report.json"));
    let output = run(&[]);
    assert_exit(&output, 0);
    let totals = &report()["totals"];
    assert_eq!(
        totals["events_per_worker"],
        serde_json::json!(expected),
        "{}",
        describe(&output)
    );
    assert_eq!(totals["dead_letters"], 0);
    let commits = crate::support::files_under(&dir.path().join("t/_delta_log")).len();

    let output = run(&["--split-size", "64MiB"]);
    assert_exit(&output, 2);
    let stderr = String::from_utf8_lossy(&output.stderr);
    for text in [
        "--split-size was \"auto (16 ranges a file, of 1048576 to 67108864 bytes)\"",
        "is \"67108864\" now",
    ] {
        assert!(
            stderr.contains(text),
            "{text:?} not in\n{}",
            describe(&output)
        );
    }
    assert_eq!(
        crate::support::files_under(&dir.path().join("t/_delta_log")).len(),
        commits
    );

    let output = run(&[]);
    assert_exit(&output, 0);
    assert_eq!(report()["totals"]["commits"], 0, "{}", describe(&output));
    assert_eq!(
        crate::support::files_under(&dir.path().join("t/_delta_log")).len(),
        commits
    );

    // The old default in a job of its own: one range, read by one worker.
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
            "64MiB",
            "--report-json",
            "report.json",
            "--quiet",
        ],
    );
    assert_exit(&output, 0);
    assert_eq!(
        report()["totals"]["events_per_worker"],
        serde_json::json!([starts.len(), 0])
    );
}

/// `lines` transactions as CSV lines, and the same as the reference's input: three id
/// shapes over 300 accounts each, up to 2.4 s of event time between lines, some amounts
/// small and some large.
pub(crate) fn random_csv(seed: u64, lines: u64) -> (String, Vec<Tx>) {
    let mut rng = crate::support::Rng(seed);
    let mut content = String::new();
    let mut txs = Vec::new();
    let mut ts = 1_714_521_600_000u64;
    for seq in 0..lines {
        let account = match rng.below(3) {
            0 => format!("acct_{:06}", rng.below(300)),
            1 => rng.below(300).to_string(),
            _ => format!("user-{}@bank", rng.below(300)),
        };
        ts += rng.below(2_400);
        let cents = match rng.below(10) {
            0..3 => rng.range(1, 99),
            3..5 => rng.range(50_001, 90_000),
            _ => rng.range(100, 50_000),
        };
        txs.push(Tx {
            account: account.clone(),
            ts,
            partition: 0,
            seq,
            amount: cents as f64 / 100.0,
        });
        content.push_str(&format!(
            "{account},{ts},{}.{:02}\n",
            cents / 100,
            cents % 100
        ));
    }
    (content, txs)
}

/// A file's default tick (docs/semantics.md §2): 1 s. A sparse file (a transaction every
/// 0–2.4 s over about a day, small and large amounts, accounts of several shapes) gives
/// the reference's alerts at the default tick and at `--tick 100ms` alike, each run
/// split over 2 workers. The tick is in the job's identity: a job id that committed at
/// `--tick 100ms` is refused (exit 2, naming both ticks) when run again at the default,
/// and finishes with nothing more to commit at `--tick 100ms`.
#[test]
fn files_default_to_a_one_second_tick_which_changes_no_result() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (content, txs) = random_csv(0x71c4, 40_000);
    std::fs::write(dir.path().join("tx.csv"), &content).expect("write input");
    let expected = reference::alerts(&txs);
    assert!(expected.len() > 100, "{} alerts: no check", expected.len());

    let run = |job_id: &str, alerts: &str, extra: &[&str]| {
        let mut args = vec![
            "run",
            "--source",
            "csv",
            "--input",
            "tx.csv",
            "--workers",
            "2",
            "--split-size",
            "64KiB",
            "--table",
            "t",
            "--job-id",
            job_id,
            "--no-checkpoints",
            "--alerts",
            alerts,
            "--report-json",
            "report.json",
            "--quiet",
        ];
        args.extend(extra);
        tidelake(dir.path(), &args)
    };
    let commits = || read_json(&dir.path().join("report.json"))["totals"]["commits"].as_u64();
    for (job_id, alerts, extra) in [
        ("default-tick", "default.jsonl", &[][..]),
        ("fine-tick", "fine.jsonl", &["--tick", "100ms"][..]),
    ] {
        let output = run(job_id, alerts, extra);
        assert_exit(&output, 0);
        assert!(commits() > Some(0));
        let got = read_alerts(&dir.path().join(alerts));
        assert!(
            got == expected,
            "{job_id}: alerts differ from the reference"
        );
    }

    let output = run("fine-tick", "again.jsonl", &[]);
    assert_exit(&output, 2);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("--tick was \"100ms\" when it committed, is \"1000ms\" now"),
        "{}",
        describe(&output)
    );
    let output = run("fine-tick", "again.jsonl", &["--tick", "100ms"]);
    assert_exit(&output, 0);
    assert_eq!(commits(), Some(0), "{}", describe(&output));
}
