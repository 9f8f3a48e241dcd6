//! A job's identity in the tables it writes: the settings that decide which rows each of
//! its writers commits in which epoch, recorded in every commit and checked when a job
//! with the same id starts again.
//!
//! A writer `<job id>-w<i>` skips the epochs up to its `txn` version when a job is run
//! again (see [`crate::delta::files::commit`]). That is exactly once only if the new run puts the same
//! rows into the same (writer, epoch) pairs as the old one: the same commit interval, the
//! same number of writers (which decides the accounts each owns), the same input and
//! rule. A run with another commit interval would skip the wrong epochs; one with
//! another worker count would skip the wrong accounts. So every commit carries
//! `commitInfo.tidelakeJob` = `{"jobId", "fingerprint", "settings": {name: value}}`, and
//! [`check_job_identity`] refuses a job whose id has committed to the table with other
//! settings, naming each setting that differs (the README's "Exactly once, and what
//! a job id promises").
//!
//! The settings are opaque to this module: the runtime names them (by the flag that sets
//! them) and formats their values.

use std::collections::BTreeMap;

use futures::{StreamExt, TryStreamExt};
use serde_json::{Map, Value};

use crate::delta::DeltaError;
use crate::delta::protocol::actions::{Action, CommitInfo};
use crate::delta::protocol::snapshot::Snapshot;
use crate::delta::protocol::table::DeltaTable;

/// The `commitInfo` field that holds a job's identity.
pub const COMMIT_INFO_KEY: &str = "tidelakeJob";

/// Commits read at once while looking for a job's newest recorded identity.
const READ_AHEAD: usize = 16;

/// The settings of a job that decide where its rows are committed; see the [module
/// docs](self).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JobIdentity {
    /// The job id (`--job-id`); its writers commit as `<job id>-w<i>`.
    pub job_id: String,
    /// Setting name → value, as the runtime formats them.
    pub settings: BTreeMap<String, String>,
}

impl JobIdentity {
    /// The identity of job `job_id` with `settings`.
    pub fn new(
        job_id: impl Into<String>,
        settings: impl IntoIterator<Item = (String, String)>,
    ) -> Self {
        JobIdentity {
            job_id: job_id.into(),
            settings: settings.into_iter().collect(),
        }
    }

    /// This identity without the settings named in `names`.
    pub fn without(&self, names: &[String]) -> JobIdentity {
        let mut identity = self.clone();
        identity.settings.retain(|name, _| !names.contains(name));
        identity
    }

    /// A short, stable digest of the settings (16 hex digits of xxh3-64 over
    /// `name=value` lines in name order).
    pub fn fingerprint(&self) -> String {
        let mut text = String::new();
        for (name, value) in &self.settings {
            text.push_str(name);
            text.push('=');
            text.push_str(value);
            text.push('\n');
        }
        format!("{:016x}", xxhash_rust::xxh3::xxh3_64(text.as_bytes()))
    }

    /// The identity as `commitInfo.tidelakeJob` holds it.
    pub fn to_json(&self) -> Value {
        let settings: Map<String, Value> = self
            .settings
            .iter()
            .map(|(name, value)| (name.clone(), Value::String(value.clone())))
            .collect();
        serde_json::json!({
            "jobId": self.job_id,
            "fingerprint": self.fingerprint(),
            "settings": settings,
        })
    }

    /// The identity a commit records, if it has one.
    pub fn from_commit_info(info: &CommitInfo) -> Option<JobIdentity> {
        let recorded = info.other.get(COMMIT_INFO_KEY)?;
        let job_id = recorded.get("jobId")?.as_str()?;
        let settings = recorded.get("settings")?.as_object()?;
        let settings = settings.iter().map(|(name, value)| {
            let value = value
                .as_str()
                .map_or_else(|| value.to_string(), str::to_owned);
            (name.clone(), value)
        });
        Some(JobIdentity::new(job_id, settings))
    }

    /// `name: <recorded> in the table, <ours> in this run` for each setting that
    /// differs between `recorded` and this identity.
    fn differences(&self, recorded: &JobIdentity) -> Vec<String> {
        let unset = || "(unset)".to_owned();
        let mut names: Vec<&String> = recorded.settings.keys().collect();
        names.extend(self.settings.keys());
        names.sort();
        names.dedup();
        names
            .into_iter()
            .filter_map(|name| {
                let theirs = recorded.settings.get(name).cloned().unwrap_or_else(unset);
                let ours = self.settings.get(name).cloned().unwrap_or_else(unset);
                (theirs != ours)
                    .then(|| format!("{name} was {theirs:?} when it committed, is {ours:?} now"))
            })
            .collect()
    }
}

/// True if `id` may be a job id: non-empty, of letters, digits, `-`, `_` and `.` (it
/// names `appId`s, checkpoint directories and ingest segments).
pub fn is_valid_job_id(id: &str) -> bool {
    !id.is_empty()
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
}

/// The `appId` of writer `writer` of job `job_id`: `<job id>-w<writer>`.
pub fn app_id(job_id: &str, writer: usize) -> String {
    format!("{job_id}-w{writer}")
}

/// The writer index of `app_id` if it is one of job `job_id`'s writers.
pub fn writer_of(app_id: &str, job_id: &str) -> Option<usize> {
    let index = app_id.strip_prefix(job_id)?.strip_prefix("-w")?;
    if index.is_empty() || !index.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    index.parse().ok()
}

/// The writers of job `job_id` that have a `txn` in `snapshot`, in index order.
pub fn committed_writers(snapshot: &Snapshot, job_id: &str) -> Vec<usize> {
    let mut writers: Vec<usize> = snapshot
        .txns
        .keys()
        .filter_map(|app| writer_of(app, job_id))
        .collect();
    writers.sort_unstable();
    writers
}

/// Refuses to let `identity`'s job write to `table` (as read in `snapshot`) if its job
/// id has committed there with other settings; see the [module docs](self).
///
/// A job id with no `txn` in the snapshot has never committed: nothing to check. One
/// that has is compared with the newest commit that records the job's identity, found
/// by reading the JSON commits back from the latest version. If no such commit is left
/// (log cleanup deleted it, or a tidelake too old to record identities wrote it), the
/// job is refused too, since it cannot be shown to split rows the same way.
///
/// The settings named in `may_differ` are left out of the comparison (a job restored
/// from a savepoint onto another number of workers).
pub async fn check_job_identity(
    table: &DeltaTable,
    snapshot: &Snapshot,
    identity: &JobIdentity,
    may_differ: &[String],
) -> Result<(), DeltaError> {
    let writers = committed_writers(snapshot, &identity.job_id);
    if writers.is_empty() {
        return Ok(());
    }
    let Some((version, recorded)) =
        newest_identity(table, snapshot.version, &identity.job_id).await?
    else {
        return Err(DeltaError::JobUnverifiable {
            table: table.location().to_owned(),
            job_id: identity.job_id.clone(),
            writers: writers.len(),
        });
    };
    let differences = identity
        .without(may_differ)
        .differences(&recorded.without(may_differ));
    if differences.is_empty() {
        return Ok(());
    }
    Err(DeltaError::JobMismatch {
        table: table.location().to_owned(),
        job_id: identity.job_id.clone(),
        version,
        differences: differences.join("; "),
    })
}

/// The newest commit at or below `latest` whose `commitInfo` records job `job_id`'s
/// identity, reading back until one is found or a version is missing (cleaned up).
async fn newest_identity(
    table: &DeltaTable,
    latest: u64,
    job_id: &str,
) -> Result<Option<(u64, JobIdentity)>, DeltaError> {
    let mut commits = futures::stream::iter((0..=latest).rev())
        .map(|version| async move {
            let actions = table.read_commit_if_exists(version).await?;
            Ok::<_, DeltaError>((version, actions))
        })
        .buffered(READ_AHEAD);
    while let Some((version, actions)) = commits.try_next().await? {
        let Some(actions) = actions else {
            return Ok(None);
        };
        let recorded = actions.iter().find_map(|action| match action {
            Action::CommitInfo(info) => JobIdentity::from_commit_info(info),
            _ => None,
        });
        if let Some(recorded) = recorded.filter(|r| r.job_id == job_id) {
            return Ok(Some((version, recorded)));
        }
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::delta::Schema;
    use crate::delta::files::commit::{CommitOptions, EpochCommitter};
    use crate::delta::testing::{add, block_on, txn};

    fn identity(interval: &str, workers: &str) -> JobIdentity {
        JobIdentity::new(
            "nightly",
            [
                ("--commit-interval".to_owned(), interval.to_owned()),
                ("workers".to_owned(), workers.to_owned()),
            ],
        )
    }

    async fn table_with_commit_by(identity: Option<&JobIdentity>) -> (DeltaTable, Snapshot) {
        let table = DeltaTable::open_url("memory://t").expect("open");
        let schema = Schema::of(&[("x", "long"), ("date", "string")]);
        let snapshot = table
            .create_or_open(&schema, &["date"], BTreeMap::new(), "test")
            .await
            .expect("create");
        let options = CommitOptions {
            job: identity.cloned(),
            ..CommitOptions::default()
        };
        let mut committer = EpochCommitter::new(table.clone(), "nightly-w1", &snapshot, options);
        let Action::Add(file) = add("a") else {
            unreachable!("add() makes adds")
        };
        committer.commit(3, vec![file]).await.expect("commit");
        // Another writer commits after it.
        table
            .try_commit(2, &[add("b"), txn("other-w0", 9)])
            .await
            .expect("commit");
        let snapshot = table.snapshot().await.expect("load").expect("table");
        (table, snapshot)
    }

    #[test]
    fn app_ids_name_the_job_and_the_writer() {
        assert_eq!(app_id("nightly", 3), "nightly-w3");
        assert_eq!(writer_of("nightly-w3", "nightly"), Some(3));
        assert_eq!(writer_of("nightly-w12", "nightly"), Some(12));
        // Another job whose id starts with this one's.
        assert_eq!(writer_of("nightly-w1-w0", "nightly"), None);
        assert_eq!(writer_of("nightly-w1-w0", "nightly-w1"), Some(0));
        assert_eq!(writer_of("nightly-w", "nightly"), None);
        assert_eq!(writer_of("nightly2-w0", "nightly"), None);
    }

    #[test]
    fn the_fingerprint_depends_on_every_setting_and_round_trips_through_commit_info() {
        let a = identity("1s", "2");
        assert_eq!(a.fingerprint(), identity("1s", "2").fingerprint());
        assert_ne!(a.fingerprint(), identity("2s", "2").fingerprint());
        assert_ne!(a.fingerprint(), identity("1s", "3").fingerprint());
        let info = CommitInfo {
            other: Map::from_iter([(COMMIT_INFO_KEY.to_owned(), a.to_json())]),
            ..CommitInfo::default()
        };
        assert_eq!(JobIdentity::from_commit_info(&info), Some(a));
        assert_eq!(JobIdentity::from_commit_info(&CommitInfo::default()), None);
    }

    #[test]
    fn a_job_that_never_committed_or_committed_alike_may_write() {
        block_on(async {
            let ours = identity("1s", "2");
            let (table, snapshot) = table_with_commit_by(Some(&ours)).await;
            check_job_identity(&table, &snapshot, &ours, &[])
                .await
                .expect("the same settings");
            let fresh = JobIdentity::new("fresh", ours.settings.clone());
            check_job_identity(&table, &snapshot, &fresh, &[])
                .await
                .expect("a job id with no txn");
        });
    }

    #[test]
    fn other_settings_for_a_job_id_in_the_table_are_refused_naming_each() {
        block_on(async {
            let (table, snapshot) = table_with_commit_by(Some(&identity("1s", "2"))).await;
            let err = check_job_identity(&table, &snapshot, &identity("2s", "3"), &[])
                .await
                .expect_err("other settings");
            let message = err.to_string();
            assert!(
                matches!(err, DeltaError::JobMismatch { version: 1, .. }),
                "{err:?}"
            );
            assert!(
                message.contains(r#"--commit-interval was "1s" when it committed, is "2s" now"#)
                    && message.contains(r#"workers was "2" when it committed, is "3" now"#),
                "{message}"
            );
        });
    }

    #[test]
    fn a_job_id_whose_identity_is_not_recorded_is_refused() {
        block_on(async {
            let (table, snapshot) = table_with_commit_by(None).await;
            let err = check_job_identity(&table, &snapshot, &identity("1s", "2"), &[])
                .await
                .expect_err("unverifiable");
            assert!(
                matches!(err, DeltaError::JobUnverifiable { writers: 1, .. }),
                "{err:?}"
            );
        });
    }
}
