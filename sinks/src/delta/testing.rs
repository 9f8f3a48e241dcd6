//! Helpers shared by the Delta modules' tests.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use super::protocol::actions::{Action, Add, Remove, Txn};
use super::protocol::schema::Schema;
use super::protocol::table::DeltaTable;

pub(crate) use crate::testing::block_on;

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
        ..Default::default()
    })
}

/// A `txn` of `app` at `version`.
pub(crate) fn txn(app: &str, version: i64) -> Action {
    Action::Txn(Txn {
        app_id: app.to_owned(),
        version,
        last_updated: Some(1),
        ..Default::default()
    })
}

/// A `remove` of `path` at `deleted_ms` (no `deletionTimestamp` if `None`).
pub(crate) fn remove(path: &str, deleted_ms: Option<i64>) -> Action {
    Action::Remove(Remove {
        path: path.to_owned(),
        deletion_timestamp: deleted_ms,
        data_change: false,
        extended_file_metadata: None,
        partition_values: None,
        size: None,
        ..Default::default()
    })
}

/// Creates `table` (`accountId` string, partitioned by `date`) with `configuration`.
pub(crate) async fn create_table(table: &DeltaTable, configuration: &[(&str, &str)]) {
    let schema = Schema::of(&[("accountId", "string"), ("date", "string")]);
    let configuration = configuration
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    table
        .create_or_open(&schema, &["date"], configuration, "tidelake-test")
        .await
        .expect("create");
}

/// Sets the last modification of the local file `path` to `ms` since the epoch.
pub(crate) fn set_mtime(path: &std::path::Path, ms: i64) {
    let file = std::fs::File::options()
        .write(true)
        .open(path)
        .expect("open");
    let time = SystemTime::UNIX_EPOCH + Duration::from_millis(ms as u64);
    file.set_modified(time).expect("set mtime");
}
