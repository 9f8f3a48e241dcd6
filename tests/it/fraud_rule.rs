//! The fraud operator against the rule's edges and, by property test, against the
//! reference model — with ticks of 1 ms and 1 s and out-of-order arrival.

use proptest::prelude::*;
use tidelake_operators::{Alert, Event, FraudDetector, Transaction, harness};

use crate::reference::{self, RefAlert, Tx};

fn event(account: &str, ts: u64, partition: u32, seq: u64, amount: f64) -> Event<Transaction> {
    Event::new(ts, partition, seq, Transaction::new(account, ts, amount))
}

/// Runs the detector with `tick` on events given in arrival order.
fn detect(events: Vec<Event<Transaction>>, tick: u64) -> Vec<RefAlert> {
    let run = harness::run(FraudDetector::new(), events.clone(), tick);
    assert_eq!(
        run.main.len(),
        events.len(),
        "every transaction comes out enriched"
    );
    let flagged = run.main.iter().filter(|t| t.alert).count();
    assert_eq!(
        flagged,
        run.side.len(),
        "one enriched row flagged per alert"
    );
    let mut alerts: Vec<RefAlert> = run.side.iter().map(as_ref_alert).collect();
    alerts.sort();
    alerts
}

fn as_ref_alert(a: &Alert) -> RefAlert {
    (
        a.account_id.to_string(),
        a.ts,
        a.small_ts,
        a.small_amount.to_bits(),
        a.large_amount.to_bits(),
    )
}

/// `(ts, amount)` pairs of one account, in order, as events of partition 0.
fn one_account(txs: &[(u64, f64)]) -> Vec<Event<Transaction>> {
    txs.iter()
        .enumerate()
        .map(|(i, &(ts, amount))| event("a", ts, 0, i as u64, amount))
        .collect()
}

fn alert_times(txs: &[(u64, f64)]) -> Vec<u64> {
    [1, 100, 1_000]
        .into_iter()
        .map(|tick| {
            detect(one_account(txs), tick)
                .into_iter()
                .map(|a| a.1)
                .collect::<Vec<_>>()
        })
        .reduce(|a, b| {
            assert_eq!(a, b, "the tick changed the result");
            a
        })
        .unwrap_or_default()
}

#[test]
fn gap_of_exactly_the_window_alerts_one_more_does_not() {
    assert_eq!(alert_times(&[(0, 0.5), (60_000, 600.0)]), vec![60_000]);
    assert_eq!(alert_times(&[(0, 0.5), (60_001, 600.0)]), Vec::<u64>::new());
    assert_eq!(alert_times(&[(1_000, 0.5), (60_999, 600.0)]), vec![60_999]);
}

#[test]
fn thresholds_are_strict() {
    assert_eq!(
        alert_times(&[(0, 1.00), (10, 600.0)]),
        Vec::<u64>::new(),
        "1.00 is not small"
    );
    assert_eq!(
        alert_times(&[(0, 0.99), (10, 500.00)]),
        Vec::<u64>::new(),
        "500.00 is not large"
    );
    assert_eq!(alert_times(&[(0, 0.99), (10, 500.01)]), vec![10]);
}

#[test]
fn small_small_large_restarts_the_window() {
    // The second small one restarts the window: 70 s after the first, 40 s after the second.
    assert_eq!(
        alert_times(&[(0, 0.1), (30_000, 0.2), (70_000, 900.0)]),
        vec![70_000]
    );
    let alerts = detect(
        one_account(&[(0, 0.1), (30_000, 0.2), (70_000, 900.0)]),
        100,
    );
    assert_eq!(
        alerts[0].2, 30_000,
        "paired with the small transaction right before it"
    );
}

#[test]
fn small_normal_large_does_not_alert() {
    assert_eq!(
        alert_times(&[(0, 0.1), (1_000, 50.0), (2_000, 900.0)]),
        Vec::<u64>::new()
    );
}

#[test]
fn small_and_large_at_the_same_ts_alert() {
    assert_eq!(alert_times(&[(5_000, 0.1), (5_000, 900.0)]), vec![5_000]);
}

#[test]
fn ties_are_ordered_by_partition_then_sequence() {
    // Same ts: the order is (partition, seq), whatever the arrival order.
    let large_first = vec![event("a", 5, 0, 7, 900.0), event("a", 5, 1, 0, 0.1)];
    assert_eq!(
        detect(large_first, 100),
        Vec::<RefAlert>::new(),
        "large (p0) runs before small (p1)"
    );
    let small_first = vec![event("a", 5, 1, 0, 900.0), event("a", 5, 0, 7, 0.1)];
    assert_eq!(
        detect(small_first, 100).len(),
        1,
        "small (p0) runs before large (p1)"
    );
    let by_seq = vec![event("a", 5, 0, 2, 900.0), event("a", 5, 0, 1, 0.1)];
    assert_eq!(
        detect(by_seq, 1).len(),
        1,
        "within a partition, by sequence"
    );
}

#[test]
fn accounts_do_not_interfere() {
    let events = vec![
        event("a", 0, 0, 0, 0.1),
        event("b", 1, 0, 1, 900.0),
        event("a", 2, 0, 2, 900.0),
    ];
    let alerts = detect(events, 100);
    assert_eq!(alerts.len(), 1);
    assert_eq!(alerts[0].0, "a");
}

/// Random transactions over a few accounts, with gaps that hit the window's edges,
/// equal timestamps and amounts at and around both thresholds.
fn transactions() -> impl Strategy<Value = Vec<Tx>> {
    let gap = prop_oneof![
        Just(0u64),
        Just(1),
        Just(59_999),
        Just(60_000),
        Just(60_001),
        0u64..5_000,
        0u64..200_000,
    ];
    let amount = prop_oneof![
        Just(0.99),
        Just(1.00),
        Just(500.00),
        Just(500.01),
        0.01f64..1.0,
        500.01f64..5_000.0,
        1.0f64..500.0,
    ];
    let step = (0usize..4, 0u32..3, gap, amount);
    prop::collection::vec(step, 1..120).prop_map(|steps| {
        let mut ts = 1_700_000_000_000u64;
        let mut seqs = [0u64; 3];
        let mut last_of = [ts; 4];
        steps
            .into_iter()
            .map(|(account, partition, gap, amount)| {
                // Gaps are per account, so the window edges are hit between neighbours.
                ts = ts.max(last_of[account] + gap);
                last_of[account] = ts;
                let seq = seqs[partition as usize];
                seqs[partition as usize] += 1;
                Tx {
                    account: format!("acct-{account}"),
                    ts,
                    partition,
                    seq,
                    amount,
                }
            })
            .collect()
    })
}

/// Arrival order: each record delayed by up to `bound` ms (out of order within the
/// bound), ties broken by the generated order.
fn arrival(txs: &[Tx], delays: &[u64], bound: u64) -> Vec<Event<Transaction>> {
    let mut order: Vec<usize> = (0..txs.len()).collect();
    order.sort_by_key(|&i| (txs[i].ts + delays[i % delays.len()] % (bound + 1), i));
    order
        .into_iter()
        .map(|i| {
            let t = &txs[i];
            event(&t.account, t.ts, t.partition, t.seq, t.amount)
        })
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn operator_matches_the_reference_model(
        txs in transactions(),
        delays in prop::collection::vec(0u64..10_000, 1..50),
        bound in prop_oneof![Just(0u64), Just(2_000), Just(10_000)],
        tick in prop_oneof![Just(1u64), Just(1_000)],
    ) {
        let expected = reference::alerts(&txs);
        let got = detect(arrival(&txs, &delays, bound), tick);
        prop_assert_eq!(got, expected);
    }
}

#[test]
fn the_generated_inputs_do_contain_alerts() {
    // The property above is only meaningful if its inputs alert; check the strategy.
    use proptest::strategy::ValueTree;
    use proptest::test_runner::TestRunner;
    let mut runner = TestRunner::deterministic();
    let with_alerts = (0..200)
        .filter(|_| {
            let txs = transactions()
                .new_tree(&mut runner)
                .expect("value")
                .current();
            !reference::alerts(&txs).is_empty()
        })
        .count();
    assert!(with_alerts >= 40, "only {with_alerts} of 200 inputs alert");
}
