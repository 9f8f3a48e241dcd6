//! Keeping a table fast and small: [`optimize`] (bin-packing, or [`zorder`]),
//! [`auto_compact`] after the sink's commits, [`vacuum`] of unreferenced data files and
//! log [`cleanup`] behind checkpoints.

pub mod auto_compact;
pub mod cleanup;
pub mod external_sort;
pub mod optimize;
pub mod vacuum;
pub mod zorder;
