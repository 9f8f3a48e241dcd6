//! The history features operator against a plain reference — per account, a sort by
//! `(ts, partition, seq)` and a scan of the transactions before each — in order and out
//! of order, with ticks of 1 ms and 1 s, on dense and sparse event time (gaps of a
//! millisecond to weeks), so that every window's edge and the 30-day clean-up are met.

use proptest::prelude::*;
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

/// The features of every transaction, by (account, partition, seq), from the plain
/// definition (docs/semantics.md §2).
fn reference(txs: &[Tx]) -> Vec<((u8, u32, u64), Features)> {
    let mut out = Vec::new();
    for account in 0..4u8 {
        let mut mine: Vec<&Tx> = txs.iter().filter(|t| t.0 == account).collect();
        mine.sort_by_key(|t| (t.1, t.2, t.3));
        for (i, x) in mine.iter().enumerate() {
            let earlier = &mine[..i];
            let within = |w: u64| earlier.iter().filter(move |e| e.1 + w > x.1);
            let count = |w: u64| within(w).count() as u32;
            let sum = |w: u64| within(w).fold(0.0, |s, e| s + e.4);
            let prev = earlier.last().filter(|p| p.1 + MONTH > x.1);
            let mut countries: Vec<&str> = within(DAY).filter_map(|e| e.5).collect();
            countries.sort_unstable();
            countries.dedup();
            out.push((
                (account, x.2, x.3),
                Features {
                    tx_count_1h: count(HOUR),
                    tx_sum_1h: sum(HOUR),
                    tx_count_24h: count(DAY),
                    tx_sum_24h: sum(DAY),
                    tx_count_30d: count(MONTH),
                    tx_sum_30d: sum(MONTH),
                    ms_since_prev: prev.map(|p| x.1 - p.1),
                    prev_amount: prev.map(|p| p.4),
                    countries_24h: x.5.map(|_| countries.len() as u32),
                },
            ));
        }
    }
    out.sort_by_key(|(k, _)| *k);
    out
}

/// The operator's features in `order` of arrival, by (account, partition, seq).
fn operator(txs: &[Tx], order: &[usize], tick: u64) -> Vec<((u8, u32, u64), Features)> {
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
    let mut out: Vec<((u8, u32, u64), Features)> = run
        .main
        .into_iter()
        .map(|f| {
            let merchant = f.tx.merchant.clone().unwrap_or_default();
            let (partition, seq) = merchant.split_once('/').expect("position");
            let account = f.tx.account_id.parse().expect("account");
            let key = (
                account,
                partition.parse().expect("p"),
                seq.parse().expect("s"),
            );
            (key, f.features)
        })
        .collect();
    out.sort_by_key(|(k, _)| *k);
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
