//! The fraud operator per event: 200 000 transactions over 10 000 accounts (the docs/semantics.md §4
//! amount mix: 2% small, 2% large), through a one-worker dataflow with a 100 ms tick.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use tidelake_operators::{Event, FraudDetector, Transaction, harness};

const EVENTS: u64 = 200_000;
const ACCOUNTS: u64 = 10_000;

fn events() -> Vec<Event<Transaction>> {
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    (0..EVENTS)
        .map(|i| {
            let ts = 1_700_000_000_000 + i / 100;
            let account = (next() % ACCOUNTS).to_string();
            let amount = match next() % 100 {
                0 | 1 => 0.5,
                2 | 3 => 900.0,
                n => n as f64 * 4.0,
            };
            Event::new(
                ts,
                (i % 16) as u32,
                i / 16,
                Transaction::new(&account, ts, amount),
            )
        })
        .collect()
}

fn fraud_operator(c: &mut Criterion) {
    let input = events();
    let mut group = c.benchmark_group("fraud_operator");
    group.throughput(Throughput::Elements(EVENTS));
    group.sample_size(10);
    group.bench_function("200k_events_10k_accounts", |b| {
        b.iter(|| {
            harness::run(FraudDetector::new(), input.clone(), 100)
                .side
                .len()
        })
    });
    group.finish();
}

criterion_group!(benches, fraud_operator);
criterion_main!(benches);
