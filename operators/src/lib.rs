//! tidelake's operators: a keyed-process API in the spirit of Flink's
//! `KeyedProcessFunction`, and the rules built on it.
//!
//! # Architecture
//!
//! - [`event`]: the element every operator consumes — a record with its rule time and its
//!   position `(partition, sequence)` in the source, which orders ties.
//! - [`key`]: the stable key hash used for routing between workers and processes.
//! - [`state`]: per-key [`ValueState`] and [`MapState`], composed by a rule into one
//!   serde-serialisable state type per key.
//! - [`timer`] and [`store`]: the per-key timer service and the store of keyed state
//!   and pending timers one worker holds; [`stored_key`]: the smaller form it keeps keys in.
//! - [`keyed_process`]: the [`KeyedProcessFunction`] trait and the timely operator that
//!   runs it: exchange by key, buffer by tick, and at the frontier merge records and
//!   timers in exact-millisecond order.
//! - [`fraud`] and [`velocity`]: two rules on that API; [`window`]: tumbling, sliding and
//!   session windows with aggregates and allowed lateness, on it too.
//! - [`history`]: account history features (counts and sums over 1 h, 24 h and 30
//!   days, the previous transaction, countries), exact, per transaction.
//! - [`rich_transaction`]: transactions with an optional merchant, country and label,
//!   the records of the enrichment pipeline; the fraud rule reads them as well
//!   ([`fraud::Payment`]).
//! - [`snapshot`]: key groups, and how a keyed operator hands its state to checkpoints
//!   and starts from a restored one.
//! - [`positioned`]: a rule whose outputs keep a position, for keyed stages in a row.
//! - [`harness`]: runs a rule over a finite list of events in a one-worker dataflow, for
//!   examples and tests.
//!
//! The operators know nothing of files, sources or sinks: the runtime wires them.
//!
//! # Example
//!
//! ```
//! use tidelake_operators::{harness, Event, FraudDetector, Transaction};
//!
//! let tx = |seq: u64, ts: u64, amount: f64| {
//!     Event::new(ts, 0, seq, Transaction::new("3", ts, amount))
//! };
//! let events = vec![tx(0, 1_000, 0.50), tx(1, 61_000, 900.00), tx(2, 200_000, 0.10)];
//! let run = harness::run(FraudDetector::new(), events, 100);
//! assert_eq!(run.side.len(), 1);
//! assert_eq!(run.side[0].small_ts, 1_000);
//! assert_eq!(run.side[0].large_amount, 900.00);
//! ```

pub mod event;
pub mod fraud;
pub mod harness;
pub mod history;
pub mod key;
pub mod keyed_process;
pub mod positioned;
pub mod rich_transaction;
pub mod snapshot;
pub mod state;
pub mod store;
pub mod stored_key;
pub mod time;
pub mod timer;
pub mod transaction;
pub mod velocity;
pub mod window;

pub use event::Event;
pub use fraud::{Alert, FraudDetector, Payment};
pub use key::StableHash;
pub use keyed_process::{Collector, Context, KeyedProcess, KeyedProcessFunction};
pub use rich_transaction::{Country, RichTransaction, RichVerdict};
pub use state::{KeyState, MapState, ValueState};
pub use store::StoreSize;
pub use transaction::{AccountId, EnrichedTransaction, Transaction};
pub use velocity::{VelocityAlert, VelocityRule};
