//! The history features against a plain reference — per account, a sort by `(ts,
//! partition, seq)` and a scan of the transactions before each: the operator in order
//! and out of order, with ticks of 1 ms and 1 s, on dense and sparse event time (gaps of
//! a millisecond to months), so that every window's edge and the 30-day clean-up are
//! met; and the whole `--rule features` job on 1, 2 and 4 workers, its `features` table
//! read by delta-rs.

use proptest::prelude::*;

use crate::python::Python;
use crate::reference::{self, Tx as Tx2};
use crate::support::{Rng, assert_exit, describe, read_alerts, tidelake};
use tidelake_operators::history::{DAY, Features, HOUR, HistoryFeatures, MONTH};
use tidelake_operators::{Country, Event, RichTransaction, RichVerdict, harness};

/// A transaction of the property: account, ts, partition, seq, amount, country.
type Tx = (u8, u64, u32, u64, f64, Option<&'static str>);

const COUNTRIES: [&str; 3] = ["DE", "FR", "US"];

fn transactions() -> impl Strategy<Value = Vec<Tx>> {
    let gap = prop_oneof![
        0u64..3,
        0u64..HOUR,
        Just(HOUR),
        Just(DAY),
        Just(MONTH - 1),
        Just(MONTH),
        0u64..3 * MONTH,
    ];
    let one = (
        0u8..4,
        gap,
        0u32..3,
        -1_000i64..100_000,
        prop::option::weighted(0.7, prop::sample::select(&COUNTRIES[..])),
    );
    prop::collection::vec(one, 1..80).prop_map(|draws| {
        let mut ts = 1_700_000_000_000u64;
        let mut seqs = [0u64; 3];
        draws
            .into_iter()
            .map(|(account, gap, partition, cents, country)| {
                // Half of the time the same instant as the last one: ties by position.
                ts += gap;
                let seq = seqs[partition as usize];
                seqs[partition as usize] += 1;
                (account, ts, partition, seq, cents as f64 / 100.0, country)
            })
            .collect()
    })
}

/// A transaction as the features reference sees it: `order` breaks ties of `ts` (the
/// position `(partition, seq)`, as one number).
pub struct RefTx<'a> {
    pub account: &'a str,
    pub ts: u64,
    pub order: u64,
    pub amount: f64,
    pub country: Option<&'a str>,
}

/// The features of every transaction, by (account, order), from the plain definition
/// (docs/semantics.md §2): per account a sort by `(ts, order)` and a scan of the
/// transactions before each.
pub fn reference_features(txs: &[RefTx<'_>]) -> Vec<((String, u64), Features)> {
    let mut accounts: Vec<&str> = txs.iter().map(|t| t.account).collect();
    accounts.sort_unstable();
    accounts.dedup();
    let mut out = Vec::new();
    for account in accounts {
        let mut mine: Vec<&RefTx> = txs.iter().filter(|t| t.account == account).collect();
        mine.sort_by_key(|t| (t.ts, t.order));
        for (i, x) in mine.iter().enumerate() {
            let earlier = &mine[..i];
            let within = |w: u64| earlier.iter().filter(move |e| e.ts + w > x.ts);
            let count = |w: u64| within(w).count() as u32;
            let sum = |w: u64| within(w).fold(0.0, |s, e| s + e.amount);
            let prev = earlier.last().filter(|p| p.ts + MONTH > x.ts);
            let mut countries: Vec<&str> = within(DAY).filter_map(|e| e.country).collect();
            countries.sort_unstable();
            countries.dedup();
            out.push((
                (account.to_owned(), x.order),
                Features {
                    tx_count_1h: count(HOUR),
                    tx_sum_1h: sum(HOUR),
                    tx_count_24h: count(DAY),
                    tx_sum_24h: sum(DAY),
                    tx_count_30d: count(MONTH),
                    tx_sum_30d: sum(MONTH),
                    ms_since_prev: prev.map(|p| x.ts - p.ts),
                    prev_amount: prev.map(|p| p.amount),
                    countries_24h: x.country.map(|_| countries.len() as u32),
                },
            ));
        }
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

/// [`reference_features`] of the property's transactions.
fn reference(txs: &[Tx]) -> Vec<((String, u64), Features)> {
    let accounts: Vec<String> = (0..4u8).map(|a| a.to_string()).collect();
    let refs: Vec<RefTx> = txs
        .iter()
        .map(|&(account, ts, partition, seq, amount, country)| RefTx {
            account: &accounts[account as usize],
            ts,
            order: (u64::from(partition) << 32) | seq,
            amount,
            country,
        })
        .collect();
    reference_features(&refs)
}

/// The operator's features in `order` of arrival, by (account, partition, seq).
fn operator(txs: &[Tx], order: &[usize], tick: u64) -> Vec<((String, u64), Features)> {
    let events = order
        .iter()
        .map(|&i| {
            let (account, ts, partition, seq, amount, country) = txs[i];
            let mut tx = RichTransaction::new(&account.to_string(), ts, amount);
            tx.country = country.and_then(|c| Country::parse(c).ok());
            // The position rides in the merchant, to match outputs to inputs.
            tx.merchant = Some(format!("{partition}/{seq}").into());
            let verdict = RichVerdict {
                tx,
                rule_alert: false,
            };
            Event::new(ts, partition, seq, verdict)
        })
        .collect();
    let run = harness::run(HistoryFeatures, events, tick);
    let mut out: Vec<((String, u64), Features)> = run
        .main
        .into_iter()
        .map(|f| {
            let merchant = f.tx.merchant.clone().unwrap_or_default();
            let (partition, seq) = merchant.split_once('/').expect("position");
            let partition: u64 = partition.parse().expect("partition");
            let order = (partition << 32) | seq.parse::<u64>().expect("seq");
            ((f.tx.account_id.to_string(), order), f.features)
        })
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(150))]

    #[test]
    fn history_features_match_the_reference_in_any_arrival_order(
        txs in transactions(),
        keys in prop::collection::vec(any::<u32>(), 80),
        tick in prop_oneof![Just(1u64), Just(1_000)],
    ) {
        let want = reference(&txs);
        let in_order: Vec<usize> = (0..txs.len()).collect();
        prop_assert_eq!(&operator(&txs, &in_order, tick), &want);
        let mut shuffled = in_order.clone();
        shuffled.sort_by_key(|&i| keys[i]);
        prop_assert_eq!(&operator(&txs, &shuffled, tick), &want);
    }
}

/// A richer transaction of the job test, and its line in the CSV file.
struct Line {
    account: String,
    ts: u64,
    amount: f64,
    country: Option<&'static str>,
    label: Option<bool>,
}

/// `n` richer transactions: ids of several shapes, dense and sparse event time (gaps
/// of hours, days and over 30 days now and then), small-then-large pairs, out of order
/// within 5 s.
fn rich_lines(seed: u64, n: usize) -> Vec<Line> {
    let mut rng = Rng(seed);
    let mut ts = 1_717_200_000_000u64;
    let mut lines: Vec<Line> = (0..n)
        .map(|_| {
            ts += match rng.below(200) {
                0 => MONTH + rng.below(DAY),
                1..4 => DAY,
                4..10 => rng.below(6 * HOUR),
                _ => rng.below(3_000),
            };
            let account = match rng.below(3) {
                0 => rng.below(30).to_string(),
                1 => format!("card-{:08x}", rng.below(20)),
                _ => format!("Ünï, \"{}\"", rng.below(10)),
            };
            let amount = match rng.below(10) {
                0 => rng.below(99) as f64 / 100.0,
                1 => (50_001 + rng.below(10_000)) as f64 / 100.0,
                _ => rng.below(50_000) as f64 / 100.0,
            };
            Line {
                account,
                ts,
                amount,
                country: [None, Some("DE"), Some("FR"), Some("US")][rng.below(4) as usize],
                label: [None, Some(false), Some(true)][rng.below(3) as usize],
            }
        })
        .collect();
    // Out of order within 5 s: swap neighbours less than 5 s apart.
    for i in 1..lines.len() {
        if lines[i].ts - lines[i - 1].ts < 5_000 && rng.below(3) == 0 {
            lines.swap(i, i - 1);
        }
    }
    lines
}

/// `lines` as a CSV file with a header; the merchant names the line.
fn csv_text(lines: &[Line]) -> String {
    let mut text = String::from("account_id,ts_millis,amount,merchant,country,label\n");
    for (i, l) in lines.iter().enumerate() {
        let label = l.label.map_or(String::new(), |f| u8::from(f).to_string());
        text += &format!(
            "\"{}\",{},{},\"m, {i}\",{},{label}\n",
            l.account.replace('"', "\"\""),
            l.ts,
            l.amount,
            l.country.unwrap_or("")
        );
    }
    text
}

#[test]
fn the_features_job_writes_the_reference_features_for_any_worker_count() {
    let dir = tempfile::tempdir().expect("dir");
    let lines = rich_lines(7, 4_000);
    std::fs::write(dir.path().join("rich.csv"), csv_text(&lines)).expect("csv");
    // The reference: ties of ts in file order, as the source's positions order them.
    let refs: Vec<RefTx> = lines
        .iter()
        .enumerate()
        .map(|(i, l)| RefTx {
            account: &l.account,
            ts: l.ts,
            order: i as u64,
            amount: l.amount,
            country: l.country,
        })
        .collect();
    let want: Vec<(String, Features)> = reference_features(&refs)
        .into_iter()
        .map(|((account, order), f)| (format!("{account}/m, {order}"), f))
        .collect();
    let txs: Vec<Tx2> = lines
        .iter()
        .enumerate()
        .map(|(i, l)| Tx2 {
            account: l.account.clone(),
            ts: l.ts,
            partition: 0,
            seq: i as u64,
            amount: l.amount,
        })
        .collect();
    let alerts = reference::alerts(&txs);
    assert!(alerts.len() > 5, "the data must alert: {}", alerts.len());
    let python = Python::find();
    for workers in ["1", "2", "4"] {
        let table = format!("features-{workers}");
        let out = tidelake(
            dir.path(),
            &[
                "run",
                "--rule",
                "features",
                "--source",
                "csv",
                "--input",
                "rich.csv",
                "--split-size",
                "16KiB",
                "--workers",
                workers,
                "--out-of-orderness",
                "5s",
                "--features-table",
                &table,
                "--alerts",
                &format!("alerts-{workers}.jsonl"),
                "--quiet",
            ],
        );
        assert_exit(&out, 0);
        assert_eq!(
            read_alerts(&dir.path().join(format!("alerts-{workers}.jsonl"))),
            alerts
        );
        let read = python.read(&dir.path().join(&table).display().to_string(), &[]);
        let mut got: Vec<(String, Features)> = read
            .rows
            .iter()
            .map(|row| {
                let merchant = row["merchant"].as_str().expect("merchant");
                let key = format!("{}/{merchant}", row["accountId"].as_str().expect("id"));
                (key, features_of(row))
            })
            .collect();
        got.sort_by(|a, b| a.0.cmp(&b.0));
        let mut want = want.clone();
        want.sort_by(|a, b| a.0.cmp(&b.0));
        assert_eq!(
            got.len(),
            want.len(),
            "{workers} workers: every transaction once"
        );
        for (g, w) in got.iter().zip(&want) {
            assert_eq!(g, w, "{workers} workers");
        }
        // The verdict and the label ride along.
        let flagged = read.rows.iter().filter(|r| r["ruleAlert"] == true).count();
        assert_eq!(flagged, alerts.len(), "{workers} workers");
        let labelled = read.rows.iter().filter(|r| r["label"] == 1).count();
        assert_eq!(
            labelled,
            lines.iter().filter(|l| l.label == Some(true)).count()
        );
    }
}

#[test]
fn the_features_job_refuses_what_it_cannot_do() {
    let dir = tempfile::tempdir().expect("dir");
    for (args, needle) in [
        (
            &["--parquet-dir", "files"][..],
            "--parquet-dir is for --rule fraud",
        ),
        (
            &["--enriched", "e.jsonl"][..],
            "--enriched is for --rule fraud",
        ),
        (&[][..], "--source generator makes transactions"),
    ] {
        let mut all = vec!["run", "--rule", "features", "--quiet"];
        all.extend(args);
        let out = tidelake(dir.path(), &all);
        assert_exit(&out, 2);
        assert!(
            describe(&out).contains(needle),
            "{args:?}: {}",
            describe(&out)
        );
    }
}

/// A features row as delta-rs reads it, as [`Features`].
fn features_of(row: &serde_json::Map<String, serde_json::Value>) -> Features {
    let int = |name: &str| row[name].as_u64().map(|v| v as u32);
    let float = |name: &str| row[name].as_f64().expect(name);
    Features {
        tx_count_1h: int("txCount1h").expect("count"),
        tx_sum_1h: float("txSum1h"),
        tx_count_24h: int("txCount24h").expect("count"),
        tx_sum_24h: float("txSum24h"),
        tx_count_30d: int("txCount30d").expect("count"),
        tx_sum_30d: float("txSum30d"),
        ms_since_prev: row["msSincePrev"].as_u64(),
        prev_amount: row["prevAmount"].as_f64(),
        countries_24h: int("countries24h"),
    }
}
