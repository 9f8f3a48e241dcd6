//! `tidelake train`: fits the fraud classifier on a features table and writes the model
//! file `tidelake run --model` scores with ([`tidelake_runtime::model::train`],
//! docs/scoring.md §2), printing its figures on the held-out rows next to the rule's.
//!
//! Exit codes: 0 written; 1 the table or the file could not be read or written, or the
//! solver failed; 2 a flag is wrong or the table cannot be trained on (a missing column,
//! one class only).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;

use crate::logging;
use tidelake_runtime::job::{EXIT_FAILED, EXIT_USAGE};
use tidelake_runtime::model::Model;
use tidelake_runtime::model::features::{default_features, needs_accounts};
use tidelake_runtime::model::file::{Figures, ModelError};
use tidelake_runtime::model::train::{
    ThresholdChoice, TrainError, TrainOptions, catalog_features, fit, read_rows,
};
use tidelake_sinks::delta::DeltaTable;

/// `tidelake train` flags.
#[derive(Clone, Debug, Args)]
pub struct TrainArgs {
    /// The features table to train on (`tidelake run --rule features` writes it), or any
    /// Delta table with the features' columns, `dt` and `label`.
    #[arg(long, value_name = "URL")]
    pub table: String,
    /// The model file to write.
    #[arg(long, value_name = "FILE", default_value = "model.json")]
    pub model: PathBuf,
    /// The features, comma-separated, from the catalog (docs/scoring.md §1). Default:
    /// ruleAlert, small, logAmount, logAmountToAvg30d, logAmountToPrev, logSecondsSincePrev,
    /// logTxCount1h, logTxCount24h, countries24h, and foreignCountry and
    /// amountToCreditLimit when the table has the accounts' columns filled.
    #[arg(long, value_name = "NAMES", value_delimiter = ',')]
    pub features: Vec<String>,
    /// The share of labelled rows held out to measure the model: the latest by event
    /// time.
    #[arg(long, value_name = "SHARE", default_value_t = 0.2)]
    pub holdout: f64,
    /// The L2 penalty on the coefficients (of the summed log-loss, as scikit-learn's
    /// `1 / C`).
    #[arg(long, value_name = "L2", default_value_t = 1.0)]
    pub l2: f64,
    /// Predict fraud at probabilities at least this.
    #[arg(long, value_name = "P", conflicts_with = "target_precision")]
    pub threshold: Option<f64>,
    /// Instead of --threshold: the threshold with the greatest recall on the training
    /// rows whose precision there is at least this.
    #[arg(long, value_name = "PRECISION")]
    pub target_precision: Option<f64>,
}

/// Runs `tidelake train`.
pub fn run(args: &TrainArgs) -> ExitCode {
    let threshold = match (args.threshold, args.target_precision) {
        (_, Some(p)) if !(0.0..=1.0).contains(&p) => {
            return usage(format!("--target-precision {p} is not between 0 and 1"));
        }
        (_, Some(p)) => ThresholdChoice::TargetPrecision(p),
        (Some(t), None) if !(0.0..=1.0).contains(&t) => {
            return usage(format!("--threshold {t} is not between 0 and 1"));
        }
        (t, None) => ThresholdChoice::Fixed(t.unwrap_or(0.5)),
    };
    if !(args.l2 >= 0.0 && args.l2.is_finite()) {
        return usage(format!("--l2 {} must be a number ≥ 0", args.l2));
    }
    let chosen = !args.features.is_empty();
    let names: Vec<String> = if chosen {
        args.features.iter().map(|n| n.trim().to_owned()).collect()
    } else {
        default_features(true)
            .into_iter()
            .map(str::to_owned)
            .collect()
    };
    let runtime = match crate::io_runtime() {
        Ok(runtime) => runtime,
        Err(e) => {
            tracing::error!("{e}");
            return ExitCode::from(EXIT_FAILED);
        }
    };
    let trained = catalog_features(&names).and_then(|features| {
        let table = DeltaTable::open_existing_url(&args.table)?;
        let mut rows = runtime.block_on(read_rows(&table, &features))?;
        if !chosen {
            // The accounts' features only where the table has the reference data.
            rows.retain_features(|f, present| !needs_accounts(f) || present > 0);
        }
        let options = TrainOptions {
            holdout: args.holdout,
            l2: args.l2,
            threshold,
        };
        fit(&rows, &args.table, &options)
    });
    let model = match trained {
        Ok(model) => model,
        Err(e) => {
            tracing::error!("{e}");
            let usage = match &e {
                TrainError::Invalid(_) => true,
                TrainError::Table(e) => e.is_configuration(),
                TrainError::Fit(_) => false,
            };
            return ExitCode::from(if usage { EXIT_USAGE } else { EXIT_FAILED });
        }
    };
    if let Err(e) = model.save(&args.model) {
        tracing::error!("{e}");
        let code = match e {
            ModelError::Io { .. } => EXIT_FAILED,
            _ => EXIT_USAGE,
        };
        return ExitCode::from(code);
    }
    logging::report(&summary(&model, &args.model));
    ExitCode::SUCCESS
}

fn usage(message: String) -> ExitCode {
    tracing::error!("{message}");
    ExitCode::from(EXIT_USAGE)
}

/// What `train` prints: the model and its figures on the held-out rows, the rule's.
fn summary(model: &Model, path: &std::path::Path) -> String {
    let t = &model.training;
    let names: Vec<&str> = model.features.iter().map(|f| f.name.as_str()).collect();
    let mut text = format!(
        "model {} written to {}\n  trained on {} labelled rows of {} (version {}, {} rows read), features: {}\n  held out: {} rows from {}\n",
        model.model_version,
        path.display(),
        t.train_rows,
        t.table,
        t.table_version,
        t.rows,
        names.join(", "),
        t.held_out_rows,
        t.held_out_from,
    );
    text.push_str("              precision  recall      F1  ROC AUC\n");
    text.push_str(&figures_line(
        &format!("model ≥ {:.4}", model.threshold),
        &t.model,
    ));
    text.push_str(&figures_line("rule", &t.rule));
    match &t.model_at_rule_precision {
        Some(at) => text.push_str(&format!(
            "  at the rule's precision the model recalls {:.4} (threshold {:.4}, precision {:.4})",
            at.recall, at.threshold, at.precision
        )),
        None => text.push_str("  no threshold gives the model the rule's precision"),
    }
    text
}

fn figures_line(name: &str, f: &Figures) -> String {
    let figure = |v: Option<f64>| v.map_or_else(|| "–".to_owned(), |v| format!("{v:.4}"));
    format!(
        "  {name:<12} {:>9} {:>7} {:>7} {:>8}\n",
        figure(f.precision),
        figure(f.recall),
        figure(Some(f.f1)),
        figure(f.roc_auc)
    )
}
