//! The record types sources read: [`Transaction`] and any type a pipeline names
//! (docs/semantics.md §4).

use std::sync::Arc;

use tidelake_operators::Transaction;

use crate::config::SourceConfig;
use crate::sources::validate::Invalid;
use crate::sources::{Source, SourceError};

/// A record type a job's source decodes and its pipeline reads: its event time, the
/// check a decoded record must pass, and the source each `--source` makes of it.
///
/// A serde type gets CSV (by header) and JSON-lines files from
/// [`decoded::source`](crate::sources::decoded::source):
///
/// ```
/// use std::sync::Arc;
/// use serde::{Deserialize, Serialize};
/// use tidelake_runtime::SourceConfig;
/// use tidelake_runtime::dead_letter::Reason;
/// use tidelake_runtime::sources::{Source, SourceError, SourceRecord, decoded};
///
/// #[derive(Clone, Debug, Serialize, Deserialize)]
/// struct Reading { sensor: String, ts: u64, celsius: f64 }
///
/// impl SourceRecord for Reading {
///     fn event_time(&self) -> u64 { self.ts }
///     fn validate(&self) -> Result<(), (Reason, String)> {
///         match self.celsius.is_finite() {
///             true => Ok(()),
///             false => Err((Reason::Invalid, "celsius is not finite".into())),
///         }
///     }
///     fn source(config: &SourceConfig) -> Result<Arc<dyn Source<Self>>, SourceError> {
///         decoded::source(config)
///     }
/// }
/// ```
pub trait SourceRecord: timely::ExchangeData + Clone + std::fmt::Debug {
    /// The record's event time, ms since the Unix epoch (UTC); it must be below
    /// year 10000 ([`MAX_TS`](crate::sources::validate::MAX_TS)).
    fn event_time(&self) -> u64;

    /// Checks a decoded record: a bad one goes to the dead letters with this reason and
    /// detail (name the field). Every record passes by default.
    fn validate(&self) -> Result<(), Invalid> {
        Ok(())
    }

    /// The source `config` configures, decoding records of this type; a source that
    /// cannot make them (the generator makes transactions) is a
    /// [`SourceError::Config`] naming it.
    fn source(config: &SourceConfig) -> Result<Arc<dyn Source<Self>>, SourceError>;
}

/// The last segment of `R`'s type name (`Reading`), for messages about the records a
/// job reads.
pub(crate) fn short_type_name<R>() -> &'static str {
    let name = std::any::type_name::<R>();
    name.rsplit("::").next().unwrap_or(name)
}

impl SourceRecord for Transaction {
    #[inline]
    fn event_time(&self) -> u64 {
        self.ts
    }

    fn source(config: &SourceConfig) -> Result<Arc<dyn Source<Self>>, SourceError> {
        config.build()
    }
}
