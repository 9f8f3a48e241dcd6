//! The table's data files: written by the per-worker epoch [`sink`] and committed
//! exactly once by [`commit`] — one commit per writer's [batch](batches) of epochs, or one per
//! [`group_commit`] of a process's writers — (with the [`job_identity`] each commit records), every
//! row checked against the table's [`constraints`]; read back by [`reader`]. The
//! Parquet encoding itself is the [Parquet layer](crate::parquet), each file becoming
//! an [`Add`](crate::delta::Add).

pub mod batches;
pub mod commit;
pub mod constraints;
pub mod group_commit;
pub mod job_identity;
pub mod reader;
pub mod sink;
