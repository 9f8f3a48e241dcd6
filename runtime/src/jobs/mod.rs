//! The built-in jobs, each a [`Pipeline`] of a few lines: [`fraud`] (the default),
//! [`velocity`] and [`features`], chosen by `--rule`.

use std::sync::Arc;

use tidelake_operators::{RichTransaction, Transaction};

use crate::config::RuleConfig;
use crate::pipeline::Pipeline;
use crate::sources::SourceError;

pub mod features;
pub mod fraud;
pub mod velocity;

pub use features::FeaturesJob;
pub use fraud::FraudJob;
pub use velocity::VelocityJob;

/// A built-in pipeline, by the records it reads.
pub enum BuiltIn {
    /// A job on transactions (`fraud`, `velocity`).
    Transactions(Arc<dyn Pipeline<Record = Transaction>>),
    /// A job on richer transactions (`features`).
    Rich(Arc<dyn Pipeline<Record = RichTransaction>>),
}

/// The pipeline of the built-in rule `rule` (opening the reference data it reads).
pub fn pipeline(rule: &RuleConfig) -> Result<BuiltIn, SourceError> {
    Ok(match rule {
        RuleConfig::Fraud => BuiltIn::Transactions(Arc::new(FraudJob)),
        RuleConfig::Velocity { max, window_ms } => BuiltIn::Transactions(Arc::new(VelocityJob {
            max: *max,
            window_ms: *window_ms,
        })),
        RuleConfig::Features { accounts, scoring } => BuiltIn::Rich(Arc::new(FeaturesJob::new(
            accounts.as_ref(),
            scoring.as_ref(),
        )?)),
    })
}
