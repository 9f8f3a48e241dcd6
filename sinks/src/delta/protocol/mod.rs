//! The Delta protocol: what the log holds and how it is read and written.
//!
//! - The log: [`actions`] (plain serde types), the [`log`] directory and its
//!   put-if-absent commits, the writers' [`snapshot`] replay, [`checkpoint`]s, table
//!   [`schema`]s, [`retention`] properties, and the [`table`] that ties them to an
//!   object [`store`].
//! - Readers' snapshots through the Delta Kernel: [`kernel`] (docs/delta-kernel.md says
//!   what stays hand-written and why), with the Arrow [`columns`] of actions it shares
//!   with checkpoint reading.
//! - What a table asks of tidelake's operations: [`features`].
//! - Committing: the [`commit_loop`] every commit retries in (the sink's, OPTIMIZE's,
//!   VACUUM's), with its [`backoff`].

pub mod actions;
pub mod backoff;
pub mod checkpoint;
mod columns;
pub mod commit_loop;
pub mod features;
pub mod kernel;
pub mod log;
pub mod retention;
pub mod schema;
pub mod snapshot;
pub mod store;
pub mod table;
