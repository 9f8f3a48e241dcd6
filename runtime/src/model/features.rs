//! The model's features (docs/scoring.md §1): what a model may be trained on and scored
//! with, by name, each computed from one transaction's row of the `features` table the
//! same way in training (from the table's columns) and in the stream (from the features
//! job's records).
//!
//! A feature is a column of the table as a number (`amount`, `txCount1h`, …, booleans as
//! 0/1) or one derived from columns (`logAmount`, `logAmountToAvg30d`, …); when what it
//! is computed from is null, it takes the catalog's fixed `missing` value, which the
//! model file records.

use tidelake_operators::history::Featured;

use crate::reference::as_of_join::WithAccount;

/// One transaction's inputs to the features: the `features` table's columns a feature
/// may read.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Inputs {
    /// `amount`.
    pub amount: f64,
    /// `ruleAlert`.
    pub rule_alert: bool,
    /// `txCount1h`, `txCount24h`, `txCount30d`.
    pub tx_counts: [f64; 3],
    /// `txSum1h`, `txSum24h`, `txSum30d`.
    pub tx_sums: [f64; 3],
    /// `msSincePrev`.
    pub ms_since_prev: Option<f64>,
    /// `prevAmount`.
    pub prev_amount: Option<f64>,
    /// `countries24h`.
    pub countries_24h: Option<f64>,
    /// `foreignCountry`.
    pub foreign_country: Option<bool>,
    /// `birthYear`.
    pub birth_year: Option<f64>,
    /// `creditLimit`.
    pub credit_limit: Option<f64>,
}

impl Inputs {
    /// The inputs of a record of the features job.
    pub fn of(row: &WithAccount<Featured>) -> Self {
        let Featured {
            tx,
            rule_alert,
            features: f,
        } = &row.record;
        let account = row.account.as_ref();
        let home = account.and_then(|a| a.home_country);
        Inputs {
            amount: tx.amount,
            rule_alert: *rule_alert,
            tx_counts: [
                f64::from(f.tx_count_1h),
                f64::from(f.tx_count_24h),
                f64::from(f.tx_count_30d),
            ],
            tx_sums: [f.tx_sum_1h, f.tx_sum_24h, f.tx_sum_30d],
            ms_since_prev: f.ms_since_prev.map(|ms| ms as f64),
            prev_amount: f.prev_amount,
            countries_24h: f.countries_24h.map(f64::from),
            foreign_country: tx.country.zip(home).map(|(c, h)| c != h),
            birth_year: account.and_then(|a| a.birth_year).map(f64::from),
            credit_limit: account.and_then(|a| a.credit_limit).map(|l| l.0),
        }
    }
}

/// The reference-data columns: a pipeline without `--accounts-table` leaves them null.
pub const ACCOUNT_COLUMNS: [&str; 3] = ["foreignCountry", "birthYear", "creditLimit"];

/// A feature of the catalog.
#[derive(Clone, Copy, Debug)]
pub struct Feature {
    /// Its name in model files.
    pub name: &'static str,
    /// The `features` table's columns it reads.
    pub columns: &'static [&'static str],
    /// Its value when a column it reads is null.
    pub missing: f64,
    /// Its value, none when a column it reads is null.
    pub value: fn(&Inputs) -> Option<f64>,
    /// What it is, for docs and `tidelake train --help`.
    pub description: &'static str,
}

impl Feature {
    /// Its value for `inputs`, or its missing value.
    #[inline]
    pub fn of(&self, inputs: &Inputs) -> f64 {
        (self.value)(inputs).unwrap_or(self.missing)
    }
}

fn flag(b: bool) -> f64 {
    if b { 1.0 } else { 0.0 }
}

/// `ln(1 + x)`.
fn log1p(x: f64) -> f64 {
    x.ln_1p()
}

/// Every feature, by name; see the [module docs](self). docs/scoring.md §1 lists them.
pub const CATALOG: &[Feature] = &[
    Feature {
        name: "amount",
        columns: &["amount"],
        missing: 0.0,
        value: |i| Some(i.amount),
        description: "the amount",
    },
    Feature {
        name: "ruleAlert",
        columns: &["ruleAlert"],
        missing: 0.0,
        value: |i| Some(flag(i.rule_alert)),
        description: "1 when the fraud rule alerted on the transaction",
    },
    Feature {
        name: "txCount1h",
        columns: &["txCount1h"],
        missing: 0.0,
        value: |i| Some(i.tx_counts[0]),
        description: "the account's earlier transactions within 1 h",
    },
    Feature {
        name: "txCount24h",
        columns: &["txCount24h"],
        missing: 0.0,
        value: |i| Some(i.tx_counts[1]),
        description: "… within 24 h",
    },
    Feature {
        name: "txCount30d",
        columns: &["txCount30d"],
        missing: 0.0,
        value: |i| Some(i.tx_counts[2]),
        description: "… within 30 days",
    },
    Feature {
        name: "txSum1h",
        columns: &["txSum1h"],
        missing: 0.0,
        value: |i| Some(i.tx_sums[0]),
        description: "their amounts' sum within 1 h",
    },
    Feature {
        name: "txSum24h",
        columns: &["txSum24h"],
        missing: 0.0,
        value: |i| Some(i.tx_sums[1]),
        description: "… within 24 h",
    },
    Feature {
        name: "txSum30d",
        columns: &["txSum30d"],
        missing: 0.0,
        value: |i| Some(i.tx_sums[2]),
        description: "… within 30 days",
    },
    Feature {
        name: "countries24h",
        columns: &["countries24h"],
        missing: 0.0,
        value: |i| i.countries_24h,
        description: "distinct countries of the earlier transactions within 24 h (0 when null)",
    },
    Feature {
        name: "foreignCountry",
        columns: &["foreignCountry"],
        missing: 0.0,
        value: |i| i.foreign_country.map(flag),
        description: "1 when the country is not the account's home country (0 when null)",
    },
    Feature {
        name: "small",
        columns: &["amount"],
        missing: 0.0,
        value: |i| Some(flag(i.amount < 1.0)),
        description: "1 when the amount is below 1.00 (the fraud rule's small transaction)",
    },
    Feature {
        name: "logAmount",
        columns: &["amount"],
        missing: 0.0,
        value: |i| Some(log1p(i.amount)),
        description: "ln(1 + amount)",
    },
    Feature {
        name: "logTxCount1h",
        columns: &["txCount1h"],
        missing: 0.0,
        value: |i| Some(log1p(i.tx_counts[0])),
        description: "ln(1 + txCount1h)",
    },
    Feature {
        name: "logTxCount24h",
        columns: &["txCount24h"],
        missing: 0.0,
        value: |i| Some(log1p(i.tx_counts[1])),
        description: "ln(1 + txCount24h)",
    },
    Feature {
        name: "logAmountToAvg30d",
        columns: &["amount", "txCount30d", "txSum30d"],
        missing: 0.0,
        value: |i| {
            (i.tx_counts[2] > 0.0).then(|| log1p(i.amount) - log1p(i.tx_sums[2] / i.tx_counts[2]))
        },
        description: "ln(1 + amount) − ln(1 + txSum30d / txCount30d); 0 without earlier transactions",
    },
    Feature {
        name: "logAmountToPrev",
        columns: &["amount", "prevAmount"],
        missing: 0.0,
        value: |i| i.prev_amount.map(|prev| log1p(i.amount) - log1p(prev)),
        description: "ln(1 + amount) − ln(1 + prevAmount); 0 when prevAmount is null",
    },
    Feature {
        name: "logSecondsSincePrev",
        columns: &["msSincePrev"],
        missing: 14.767_940_722_256_697, // ln(1 + 30 days in seconds)
        value: |i| i.ms_since_prev.map(|ms| log1p(ms / 1000.0)),
        description: "ln(1 + msSincePrev / 1000); ln(1 + 2,592,000) (30 days) when null",
    },
    Feature {
        name: "amountToCreditLimit",
        columns: &["amount", "creditLimit"],
        missing: 0.0,
        value: |i| {
            i.credit_limit
                .filter(|limit| *limit > 0.0)
                .map(|limit| i.amount / limit)
        },
        description: "amount / creditLimit; 0 when creditLimit is null or not positive",
    },
];

/// The features `tidelake train` uses unless told otherwise: those that need no
/// reference data, and with it (`accounts`) those that do.
pub fn default_features(accounts: bool) -> Vec<&'static str> {
    let mut names = vec![
        "ruleAlert",
        "small",
        "logAmount",
        "logAmountToAvg30d",
        "logAmountToPrev",
        "logSecondsSincePrev",
        "logTxCount1h",
        "logTxCount24h",
        "countries24h",
    ];
    if accounts {
        names.extend(["foreignCountry", "amountToCreditLimit"]);
    }
    names
}

/// The catalog's feature `name`.
pub fn feature(name: &str) -> Option<&'static Feature> {
    CATALOG.iter().find(|f| f.name == name)
}

/// Whether the feature reads reference data (null without `--accounts-table`).
pub fn needs_accounts(feature: &Feature) -> bool {
    feature.columns.iter().any(|c| ACCOUNT_COLUMNS.contains(c))
}

#[cfg(test)]
mod tests {
    use super::*;
    use tidelake_operators::history::MONTH;

    /// Thirty days in seconds: how long ago "no earlier transaction" is.
    const MONTH_SECONDS: f64 = (MONTH / 1000) as f64;

    #[test]
    fn names_are_unique_and_missing_values_are_as_documented() {
        for (i, f) in CATALOG.iter().enumerate() {
            assert!(CATALOG[..i].iter().all(|g| g.name != f.name), "{}", f.name);
        }
        let since = feature("logSecondsSincePrev").expect("in the catalog");
        assert_eq!(since.missing, MONTH_SECONDS.ln_1p());
        for name in default_features(true) {
            assert!(feature(name).is_some(), "{name}");
        }
    }

    #[test]
    fn derived_features_follow_their_formulas() {
        let inputs = Inputs {
            amount: 600.0,
            tx_counts: [1.0, 2.0, 4.0],
            tx_sums: [10.0, 20.0, 40.0],
            ms_since_prev: Some(30_000.0),
            prev_amount: Some(0.5),
            credit_limit: Some(1200.0),
            ..Inputs::default()
        };
        let value = |name: &str| feature(name).expect("in the catalog").of(&inputs);
        let close = |a: f64, b: f64| assert!((a - b).abs() < 1e-12, "{a} against {b}");
        close(value("logAmountToAvg30d"), 601f64.ln() - 11f64.ln());
        close(value("logAmountToPrev"), 601f64.ln() - 1.5f64.ln());
        close(value("logSecondsSincePrev"), 31f64.ln());
        assert_eq!(value("amountToCreditLimit"), 0.5);
        // Nulls take the missing value.
        assert_eq!(value("foreignCountry"), 0.0);
        assert_eq!(value("countries24h"), 0.0);
        let first = Inputs::default();
        let since = feature("logSecondsSincePrev").expect("in the catalog");
        assert_eq!(since.of(&first), since.missing);
    }
}
