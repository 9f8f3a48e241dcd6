//! Helpers shared by the Delta modules' tests.

use std::collections::BTreeMap;

use super::actions::{Action, Add, Txn};

/// Runs `future` to completion on a current-thread runtime.
pub(crate) fn block_on<F: std::future::Future>(future: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
        .block_on(future)
}

/// An `add` of a 10-byte file at `path` in partition `date=2024-05-01`.
pub(crate) fn add(path: &str) -> Action {
    Action::Add(Add {
        path: path.to_owned(),
        partition_values: BTreeMap::from([("date".to_owned(), Some("2024-05-01".to_owned()))]),
        size: 10,
        modification_time: 1,
        data_change: true,
        stats: None,
        tags: None,
    })
}

/// A `txn` of `app` at `version`.
pub(crate) fn txn(app: &str, version: i64) -> Action {
    Action::Txn(Txn {
        app_id: app.to_owned(),
        version,
        last_updated: Some(1),
    })
}
