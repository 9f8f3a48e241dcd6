//! The built-in jobs, each a [`Pipeline`] of a few lines: [`fraud`] (the default),
//! [`velocity`] and [`features`], chosen by `--rule`.

use std::sync::Arc;

use tidelake_operators::{RichTransaction, Transaction};

use crate::config::RuleConfig;
use crate::pipeline::Pipeline;

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

/// The pipeline of the built-in rule `rule`.
pub fn pipeline(rule: RuleConfig) -> BuiltIn {
    match rule {
        RuleConfig::Fraud => BuiltIn::Transactions(Arc::new(FraudJob)),
        RuleConfig::Velocity { max, window_ms } => {
            BuiltIn::Transactions(Arc::new(VelocityJob { max, window_ms }))
        }
        RuleConfig::Features => BuiltIn::Rich(Arc::new(FeaturesJob)),
    }
}
