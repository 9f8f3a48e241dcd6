//! The built-in jobs, each a [`Pipeline`] of a few lines: [`fraud`] (the default) and
//! [`velocity`], chosen by `--rule`.

use std::sync::Arc;

use tidelake_operators::Transaction;

use crate::config::RuleConfig;
use crate::pipeline::Pipeline;

pub mod fraud;
pub mod velocity;

pub use fraud::FraudJob;
pub use velocity::VelocityJob;

/// The pipeline of the built-in rule `rule`.
pub fn pipeline(rule: RuleConfig) -> Arc<dyn Pipeline<Record = Transaction>> {
    match rule {
        RuleConfig::Fraud => Arc::new(FraudJob),
        RuleConfig::Velocity { max, window_ms } => Arc::new(VelocityJob { max, window_ms }),
    }
}
