//! The as-of join with the `accounts` reference data (`--accounts-table`), against a plain
//! reference — per transaction, the account's latest version with `validFrom ≤ ts`:
//! versions before, at and after transactions' times, unknown accounts, ids of several
//! shapes, out-of-order input, 1, 2 and 4 workers, the accounts from a CSV file and from
//! a Delta table written by delta-rs; a followed accounts table that delta-rs appends to
//! while the job runs (a late version is counted and never rewrites emitted rows); and
//! the generator's profiles against `tidelake generate accounts`.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Map, Value};

use crate::python::Python;
use crate::support::{Rng, assert_exit, describe, read_lines, rfc3339_millis, tidelake};
use tidelake_runtime::profiles::{Profile, ProfileConfig};

const START: u64 = 1_717_200_000_000;
const HOUR: u64 = 3_600_000;

/// A version of an account's attributes.
#[derive(Clone, Debug)]
struct Version {
    account: String,
    valid_from: u64,
    home: Option<&'static str>,
    birth_year: Option<i64>,
    credit_limit: Option<f64>,
}

/// A transaction; its merchant (`m-<index>`) names it.
#[derive(Clone, Debug)]
struct Line {
    account: String,
    ts: u64,
    amount: f64,
    country: Option<&'static str>,
}

/// What the join attaches to a row: homeCountry, birthYear, creditLimit, foreignCountry.
type Joined = (Value, Value, Value, Value);

const COUNTRIES: [&str; 4] = ["DE", "FR", "US", "JP"];

fn account_name(n: u64) -> String {
    match n % 4 {
        0 => n.to_string(),
        1 => format!("card-{n:08x}"),
        2 => format!("Ünï, \"{n}\""),
        _ => format!("{}-{n}", "long".repeat(24)),
    }
}

/// Accounts with 1–4 versions each over the transactions' 3 hours (some exactly at a
/// transaction's time), a fifth of the ids never given a version, and transactions
/// out of order within 5 s.
fn data(seed: u64) -> (Vec<Version>, Vec<Line>) {
    let mut rng = Rng(seed);
    let ids: Vec<String> = (0..40).map(account_name).collect();
    let mut lines = Vec::new();
    let mut ts = START;
    for _ in 0..3_000 {
        ts += rng.below(3_600);
        let account = ids[rng.below(ids.len() as u64) as usize].clone();
        let country = [None, Some("DE"), Some("FR"), Some("US")][rng.below(4) as usize];
        let amount = rng.range(100, 90_000) as f64 / 100.0;
        lines.push(Line {
            account,
            ts,
            amount,
            country,
        });
    }
    for i in 1..lines.len() {
        if lines[i].ts - lines[i - 1].ts < 5_000 && rng.below(3) == 0 {
            lines.swap(i, i - 1);
        }
    }
    let mut versions = Vec::new();
    for (n, account) in ids.iter().enumerate() {
        if n % 5 == 4 {
            continue; // unknown
        }
        let mut from = START - rng.below(2 * HOUR);
        for _ in 0..rng.range(1, 4) {
            // Now and then exactly at one of its transactions' time.
            if let Some(line) = lines
                .iter()
                .find(|l| &l.account == account && l.ts > from && rng.below(4) == 0)
            {
                from = line.ts;
            }
            versions.push(Version {
                account: account.clone(),
                valid_from: from,
                home: [None, Some("DE"), Some("FR"), Some("US"), Some("JP")][rng.below(5) as usize],
                birth_year: (rng.below(5) > 0).then(|| 1940 + rng.below(66) as i64),
                credit_limit: (rng.below(5) > 0).then(|| rng.range(1, 40) as f64 * 250.0),
            });
            from += 1 + rng.below(HOUR);
        }
    }
    // One account with versions at known instants and transactions around them.
    for (i, at) in [START + HOUR, START + 2 * HOUR].into_iter().enumerate() {
        versions.push(Version {
            account: "edge".into(),
            valid_from: at,
            home: Some(COUNTRIES[i]),
            birth_year: Some(1970 + i as i64),
            credit_limit: Some(1_000.0 * (i + 1) as f64),
        });
        for ts in [at - 1, at, at + 1] {
            lines.push(Line {
                account: "edge".into(),
                ts,
                amount: 10.0,
                country: Some("FR"),
            });
        }
    }
    lines.sort_by_key(|l| l.ts / 4_000);
    (versions, lines)
}

/// The reference: each line's account version valid at its time, by merchant; and the
/// number of lines with none.
fn reference(versions: &[Version], lines: &[Line]) -> (BTreeMap<String, Joined>, usize) {
    let null = || Value::Null;
    let mut unknown = 0;
    let joined = lines
        .iter()
        .enumerate()
        .map(|(i, line)| {
            let version = versions
                .iter()
                .filter(|v| v.account == line.account && v.valid_from <= line.ts)
                .max_by_key(|v| v.valid_from);
            unknown += usize::from(version.is_none());
            let joined = match version {
                None => (null(), null(), null(), null()),
                Some(v) => (
                    v.home.map_or(null(), Value::from),
                    v.birth_year.map_or(null(), Value::from),
                    v.credit_limit.map_or(null(), Value::from),
                    match (line.country, v.home) {
                        (Some(c), Some(h)) => Value::from(c != h),
                        _ => null(),
                    },
                ),
            };
            (format!("m-{i}"), joined)
        })
        .collect();
    (joined, unknown)
}

fn quoted(text: &str) -> String {
    format!("\"{}\"", text.replace('"', "\"\""))
}

fn transactions_csv(lines: &[Line]) -> String {
    let mut text = String::from("account_id,ts_millis,amount,merchant,country\n");
    for (i, l) in lines.iter().enumerate() {
        text += &format!(
            "{},{},{},m-{i},{}\n",
            quoted(&l.account),
            l.ts,
            l.amount,
            l.country.unwrap_or("")
        );
    }
    text
}

/// The accounts as `generate accounts` writes them, but times now RFC 3339, now ms.
fn accounts_csv(versions: &[Version]) -> String {
    let mut text = String::from("accountId,homeCountry,birthYear,creditLimit,openedAt,validFrom\n");
    for (i, v) in versions.iter().enumerate() {
        let valid_from = match i % 2 {
            0 => rfc3339_millis(v.valid_from),
            _ => v.valid_from.to_string(),
        };
        text += &format!(
            "{},{},{},{},{},{valid_from}\n",
            quoted(&v.account),
            v.home.unwrap_or(""),
            v.birth_year.map_or(String::new(), |y| y.to_string()),
            v.credit_limit.map_or(String::new(), |l| l.to_string()),
            rfc3339_millis(START - 400 * 24 * HOUR),
        );
    }
    text
}

fn accounts_jsonl(versions: &[Version]) -> String {
    versions
        .iter()
        .map(|v| {
            let row = serde_json::json!({
                "accountId": v.account,
                "homeCountry": v.home,
                "birthYear": v.birth_year,
                "creditLimit": v.credit_limit,
                "openedAt": START - 400 * 24 * HOUR,
                "validFrom": v.valid_from,
            });
            format!("{row}\n")
        })
        .collect()
}

/// The join's columns of each row of the features table, by merchant.
fn joined_rows(rows: &[Map<String, Value>]) -> BTreeMap<String, Joined> {
    let mut joined = BTreeMap::new();
    for row in rows {
        let merchant = row["merchant"].as_str().expect("merchant").to_owned();
        let columns = (
            row["homeCountry"].clone(),
            row["birthYear"].clone(),
            row["creditLimit"].clone(),
            row["foreignCountry"].clone(),
        );
        assert!(
            joined.insert(merchant.clone(), columns).is_none(),
            "{merchant} twice"
        );
    }
    joined
}

fn totals(dir: &Path) -> Value {
    let text = std::fs::read_to_string(dir.join("report.json")).expect("report");
    let report: Value = serde_json::from_str(&text).expect("JSON report");
    report["totals"].clone()
}

/// The features job on `tx.csv` in `dir` with the accounts `accounts`.
fn run_features(dir: &Path, accounts: &str, workers: &str, table: &str) {
    let args = [
        "run",
        "--rule",
        "features",
        "--source",
        "csv",
        "--input",
        "tx.csv",
        "--split-size",
        "16KiB",
        "--workers",
        workers,
        "--out-of-orderness",
        "5s",
        "--accounts-table",
        accounts,
        "--features-table",
        table,
        "--alerts",
        "alerts.jsonl",
        "--report-json",
        "report.json",
        "--dead-letters",
        "dead.jsonl",
        "--quiet",
    ];
    assert_exit(&tidelake(dir, &args), 0);
}

#[test]
fn the_as_of_join_matches_the_reference_for_any_worker_count_and_accounts_source() {
    let dir = tempfile::tempdir().expect("dir");
    let (versions, lines) = data(11);
    std::fs::write(dir.path().join("tx.csv"), transactions_csv(&lines)).expect("tx");
    std::fs::write(dir.path().join("accounts.csv"), accounts_csv(&versions)).expect("csv");
    std::fs::write(dir.path().join("accounts.jsonl"), accounts_jsonl(&versions)).expect("jsonl");
    let (want, unknown) = reference(&versions, &lines);
    assert!(unknown > 100 && unknown < lines.len() / 2, "{unknown}");
    let edge: Vec<&Joined> = (0..lines.len())
        .filter(|&i| lines[i].account == "edge")
        .map(|i| &want[&format!("m-{i}")])
        .collect();
    assert_eq!(edge.len(), 6);
    assert_eq!(edge[0].0, Value::Null, "before the first version: none");
    assert_eq!(edge[1].0, "DE", "at its validFrom: the version");
    assert_eq!(edge[3].0, "DE", "a ms before the next: still the first");
    assert_eq!(edge[4].0, "FR", "at the next's validFrom: the next");

    let python = Python::find();
    let table_of = |name: &str| dir.path().join(name).display().to_string();
    let accounts_table = table_of("accounts-delta");
    python.append_accounts(&accounts_table, &dir.path().join("accounts.jsonl"));
    for (accounts, workers) in [
        ("accounts.csv", "1"),
        ("accounts.csv", "2"),
        ("accounts.csv", "4"),
        (accounts_table.as_str(), "2"),
    ] {
        let table = table_of(&format!("features-{workers}-{}", accounts.len()));
        run_features(dir.path(), accounts, workers, &table);
        let got = joined_rows(&python.read(&table, &[]).rows);
        assert_eq!(got.len(), lines.len(), "{accounts}, {workers} workers");
        for (merchant, joined) in &want {
            assert_eq!(
                &got[merchant], joined,
                "{merchant}: {accounts}, {workers} workers"
            );
        }
        let totals = totals(dir.path());
        assert_eq!(totals["accounts_read"], versions.len(), "{accounts}");
        assert_eq!(totals["accounts_late"], 0, "{accounts}");
        assert_eq!(totals["accounts_unknown"], unknown, "{accounts}");
    }
}

#[test]
fn bad_account_rows_are_dead_letters_naming_the_line_and_field() {
    let dir = tempfile::tempdir().expect("dir");
    std::fs::write(
        dir.path().join("tx.csv"),
        "account_id,ts_millis,amount,country\n7,1717200000000,5,DE\n8,1717200000001,6,FR\n",
    )
    .expect("tx");
    std::fs::write(
        dir.path().join("accounts.csv"),
        "accountId,homeCountry,birthYear,creditLimit,openedAt,validFrom\n7,FR,1980,500,,2024-01-01T00:00:00Z\n8,France,1980,500,,2024-01-01T00:00:00Z\n9,DE,1980,500,,yesterday\n",
    )
    .expect("accounts");
    let features = dir.path().join("features").display().to_string();
    run_features(dir.path(), "accounts.csv", "2", &features);
    let letters: Vec<Value> = read_lines(&dir.path().join("dead.jsonl"));
    let dead = format!("{letters:?}");
    assert_eq!(letters.len(), 2, "{dead}");
    assert_eq!(letters[0]["line"], 3, "{dead}");
    assert!(
        letters[0]["detail"]
            .as_str()
            .unwrap_or("")
            .contains("country"),
        "{dead}"
    );
    assert_eq!(letters[1]["line"], 4, "{dead}");
    assert!(
        letters[1]["detail"]
            .as_str()
            .unwrap_or("")
            .contains("RFC 3339"),
        "{dead}"
    );
    assert!(
        letters.iter().all(|l| l["source"] == "accounts.csv"),
        "{dead}"
    );
    let rows = Python::find().read(&features, &[]).rows;
    let homes: BTreeMap<String, Value> = rows
        .iter()
        .map(|r| {
            (
                r["accountId"].as_str().unwrap_or("").to_owned(),
                r["homeCountry"].clone(),
            )
        })
        .collect();
    assert_eq!(homes["7"], "FR");
    assert_eq!(homes["8"], Value::Null, "its only version is a dead letter");
}

/// A followed accounts table that delta-rs appends to while the job runs: a version
/// valid from the past arrives late — counted, applied from its arrival on, rows before
/// it keep the old attributes — and one valid from the future applies exactly from its
/// `validFrom`.
#[test]
fn a_followed_accounts_table_takes_updates_late_updates_never_rewrite_rows() {
    let dir = tempfile::tempdir().expect("dir");
    let python = Python::find();
    let table = dir.path().join("accounts").display().to_string();
    let version = |account: &str, valid_from: u64, limit: f64| {
        serde_json::json!({
            "accountId": account,
            "homeCountry": "DE",
            "birthYear": 1980,
            "creditLimit": limit,
            "validFrom": valid_from,
        })
        .to_string()
    };
    let start = 1_717_200_000_000u64;
    let initial: String = (0..50)
        .map(|a| version(&a.to_string(), start - 86_400_000, 1_000.0) + "\n")
        .collect();
    std::fs::write(dir.path().join("initial.jsonl"), initial).expect("initial");
    python.append_accounts(&table, &dir.path().join("initial.jsonl"));
    let future = start + 15_000;
    let updates = format!(
        "{}\n{}\n",
        version("7", start, 7_777.0),
        version("8", future, 8_888.0)
    );
    std::fs::write(dir.path().join("updates.jsonl"), updates).expect("updates");

    // 80,000 transactions over 20 s of event time, at 4,000 a second of wall time.
    let job = Command::new(env!("CARGO_BIN_EXE_tidelake"))
        .args([
            "run",
            "--rule",
            "features",
            "--source",
            "generator",
            "--profiles",
            "--accounts",
            "50",
            "--start",
            &start.to_string(),
            "--density",
            "4000",
            "--rate",
            "4000",
            "--count",
            "80000",
            "--accounts-table",
            &table,
            "--poll-interval",
            "100ms",
            "--features-table",
            "features",
            "--report-json",
            "report.json",
            "--quiet",
        ])
        .current_dir(dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the tidelake binary runs");
    let began = Instant::now();
    std::thread::sleep(Duration::from_millis(2_500));
    python.append_accounts(&table, &dir.path().join("updates.jsonl"));
    let appended = began.elapsed();
    let out = job.wait_with_output().expect("the job ends");
    assert_exit(&out, 0);
    assert!(
        appended < Duration::from_secs(12),
        "the updates must land well before {future}: after {appended:?}"
    );

    let rows = python
        .read(&dir.path().join("features").display().to_string(), &[])
        .rows;
    assert_eq!(rows.len(), 80_000, "{}", describe(&out));
    let limits = |account: &str| -> Vec<(u64, f64)> {
        let mut limits: Vec<(u64, f64)> = rows
            .iter()
            .filter(|r| r["accountId"] == account)
            .map(|r| {
                let micros = r["dt"].as_u64().expect("dt");
                (micros / 1000, r["creditLimit"].as_f64().expect("limit"))
            })
            .collect();
        limits.sort_by_key(|(ts, _)| *ts);
        limits
    };
    // The future version: exactly from its validFrom.
    for (ts, limit) in limits("8") {
        let want = if ts >= future { 8_888.0 } else { 1_000.0 };
        assert_eq!(limit, want, "account 8 at {ts}");
    }
    // The late one: the old limit up to some time, the new one after it; the rows of
    // the first 2 s (emitted before the update existed) keep the old one.
    let seven = limits("7");
    let switch = seven
        .iter()
        .position(|(_, limit)| *limit == 7_777.0)
        .expect("the late version applies from its arrival on");
    assert!(
        seven[..switch].iter().all(|(_, l)| *l == 1_000.0),
        "{seven:?}"
    );
    assert!(
        seven[switch..].iter().all(|(_, l)| *l == 7_777.0),
        "{seven:?}"
    );
    assert!(seven[switch].0 > start + 2_000, "{:?}", seven[switch]);
    let totals = totals(dir.path());
    assert_eq!(totals["accounts_read"], 52);
    assert_eq!(totals["accounts_late"], 1);
    assert_eq!(totals["accounts_unknown"], 0);
}

/// The generator's profiles and `generate accounts` for the same seed, start, span and
/// update share agree: every transaction finds its account, its home country is the
/// profile's at its time, and the foreign-after-home fraud is foreign; and the rows are
/// the same for 1 and 3 workers, and with the accounts loaded into a Delta table by
/// `tidelake ingest` (as the README does) or read from the CSV file.
#[test]
fn generated_transactions_join_the_generated_accounts() {
    let dir = tempfile::tempdir().expect("dir");
    let common = [
        "--seed",
        "5",
        "--accounts",
        "500",
        "--start",
        "2024-05-01T00:00:00Z",
        "--update-share",
        "0.4",
    ];
    let csv = "accounts-csv/accounts.csv";
    let mut generate = vec!["generate", "accounts", "--span", "2h", "--out", csv];
    generate.extend(common);
    assert_exit(&tidelake(dir.path(), &generate), 0);
    let accounts_table = dir.path().join("accounts").display().to_string();
    let ingest = [
        "ingest",
        "--input",
        "accounts-csv",
        "--format",
        "csv",
        "--table",
        &accounts_table,
        "--schema",
        "accountId string, homeCountry string, birthYear int, creditLimit long, openedAt timestamp, validFrom timestamp",
    ];
    assert_exit(&tidelake(dir.path(), &ingest), 0);
    let run = |workers: &str, accounts: &str, table: &str| {
        let mut run = vec![
            "run",
            "--rule",
            "features",
            "--source",
            "generator",
            "--profiles",
            "--profile-span",
            "2h",
            "--count",
            "60000",
            "--density",
            "10",
            "--fraud-every",
            "100",
            "--workers",
            workers,
            "--accounts-table",
            accounts,
            "--features-table",
            table,
            "--report-json",
            "report.json",
            "--quiet",
        ];
        run.extend(common);
        assert_exit(&tidelake(dir.path(), &run), 0);
        assert_eq!(totals(dir.path())["accounts_unknown"], 0);
        Python::find()
            .read(&dir.path().join(table).display().to_string(), &[])
            .rows
    };
    let rows = run("3", csv, "features-3");
    assert_eq!(rows.len(), 60_000);
    let sorted = |rows: &[Map<String, Value>]| {
        let mut text: Vec<String> = rows
            .iter()
            .map(|r| Value::from(r.clone()).to_string())
            .collect();
        text.sort();
        text
    };
    assert!(
        sorted(&rows) == sorted(&run("1", &accounts_table, "features-1")),
        "1 and 3 workers differ"
    );
    let config = ProfileConfig {
        seed: 5,
        accounts: 500,
        start_ms: 1_714_521_600_000,
        span_ms: 2 * HOUR,
        update_share: 0.4,
    };
    let (mut moved, mut foreign_fraud, mut travel) = (0, 0, 0);
    for row in &rows {
        let account: u64 = row["accountId"]
            .as_str()
            .and_then(|a| a.parse().ok())
            .expect("id");
        let ts = row["dt"].as_u64().expect("dt") / 1000;
        let profile = Profile::of(&config, account);
        let home = profile.home_country_at(&config, account, ts);
        assert_eq!(row["homeCountry"], home, "{row:?}");
        moved += usize::from(home != profile.first.home_country);
        let foreign = row["foreignCountry"] == true;
        match row["label"].as_i64() {
            Some(1) => foreign_fraud += usize::from(foreign),
            Some(0) => travel += usize::from(foreign),
            other => panic!("label {other:?}"),
        }
    }
    assert!(
        moved > 100,
        "some rows come after a home country moved: {moved}"
    );
    // 600 patterns, a quarter foreign-after-home (those of the last half hour cut
    // short); 2% of normal transactions abroad.
    assert!((100..=150).contains(&foreign_fraud), "{foreign_fraud}");
    assert!((900..=1_500).contains(&travel), "{travel}");
}
