//! The fraud job (docs/semantics.md §2): transactions keyed by account through the
//! small-then-large rule; its alerts to `--alerts` and the `alerts` table, every
//! transaction with its verdict to `--enriched`, the `transactions` table and
//! `--parquet-dir`. Flink's walkthrough job, in tidelake:
//!
//! ```java
//! DataStream<Alert> alerts = transactions
//!     .keyBy(Transaction::getAccountId)
//!     .process(new FraudDetector());
//! alerts.addSink(new AlertSink());
//! ```

use tidelake_operators::{FraudDetector, Transaction};

use crate::alerts_table::AlertRow;
use crate::pipeline::{ALERTS, Events, Pipeline, Stage, TRANSACTIONS, TableDecl};
use crate::transactions_table::TransactionRow;

/// The fraud job.
#[derive(Clone, Copy, Debug, Default)]
pub struct FraudJob;

impl Pipeline for FraudJob {
    type Record = Transaction;

    fn settings(&self) -> Vec<(String, String)> {
        vec![("--rule".to_owned(), "fraud".to_owned())]
    }

    fn tables(&self) -> Vec<TableDecl> {
        vec![
            TableDecl::of::<TransactionRow>(TRANSACTIONS),
            TableDecl::of::<AlertRow>(ALERTS),
        ]
    }

    fn build<'s>(&self, stage: &Stage<'s, '_>, transactions: Events<'s, Transaction>) {
        let (enriched, alerts) = stage.keyed("FraudDetector", FraudDetector::new(), transactions);

        let alerts = stage.alerts(alerts);
        stage.table(ALERTS, alerts, AlertRow);

        let enriched = stage.enriched(enriched);
        stage.table(TRANSACTIONS, enriched.clone(), TransactionRow);
        stage.parquet_files(enriched, TransactionRow);
    }
}
