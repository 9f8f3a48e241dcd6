//! The velocity job: more than `max` transactions of one account within `window` of
//! rule time. For each account, in `(ts, partition, sequence)` order, a transaction
//! alerts iff the number of that account's transactions so far (itself included) with
//! `ts > its ts − window` is more than `max`. Its alerts, `{"accountId","ts","count"}`,
//! go to `--alerts` and the `alerts` table; every transaction, marked `alert` when it
//! crossed the limit, to `--enriched`, the `transactions` table and `--parquet-dir`.

use tidelake_operators::{Transaction, VelocityRule};

use crate::pipeline::{ALERTS, Events, Pipeline, Stage, TRANSACTIONS, TableDecl};
use crate::transactions_table::TransactionRow;
use crate::velocity_alerts_table::VelocityAlertRow;

/// The velocity job (`--rule velocity`).
#[derive(Clone, Copy, Debug)]
pub struct VelocityJob {
    /// Transactions allowed within a window (`--velocity-max`).
    pub max: u64,
    /// The window, ms (`--velocity-window`).
    pub window_ms: u64,
}

impl Pipeline for VelocityJob {
    type Record = Transaction;

    fn settings(&self) -> Vec<(String, String)> {
        vec![
            ("--rule".to_owned(), "velocity".to_owned()),
            ("--velocity-max".to_owned(), self.max.to_string()),
            (
                "--velocity-window".to_owned(),
                format!("{}ms", self.window_ms),
            ),
        ]
    }

    fn tables(&self) -> Vec<TableDecl> {
        vec![
            TableDecl::of::<TransactionRow>(TRANSACTIONS),
            TableDecl::of::<VelocityAlertRow>(ALERTS),
        ]
    }

    fn build<'s>(&self, stage: &Stage<'s, '_>, transactions: Events<'s, Transaction>) {
        let rule = VelocityRule::new(self.max, self.window_ms);
        let (enriched, alerts) = stage.keyed("Velocity", rule, transactions);

        let alerts = stage.alerts(alerts);
        stage.table(ALERTS, alerts, VelocityAlertRow);

        let enriched = stage.enriched(enriched);
        stage.table(TRANSACTIONS, enriched.clone(), TransactionRow);
        stage.parquet_files(enriched, TransactionRow);
    }
}
