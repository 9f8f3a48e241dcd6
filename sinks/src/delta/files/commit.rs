//! Exactly-once commits of writers' epochs: `add`s + `txn(appId, epoch)` +
//! `commitInfo`, put-if-absent at the next version, retried on conflict.
//!
//! An [`EpochCommitter`] is one application (`appId`, e.g. `<job id>-w<worker>`) of one
//! table. It remembers the next version it expects to be free and the latest `txn`
//! version of its `appId`, and follows `shared/notes/delta-writer.md` §2–§3:
//!
//! 1. An epoch not above the `txn` version already in the log is committed: skip it.
//! 2. Otherwise commit it with the [commit loop](crate::delta::protocol::commit_loop) (put-if-absent at
//!    the next version; on a lost race or an unknown outcome, back off, read the
//!    winners, retry at the next free version without rewriting any file), whose check
//!    of each winner is this: a `protocol` or `metaData` change fails the commit (the
//!    table changed under the writer), a `txn` of our `appId` either shows the epoch is
//!    committed already (its version ≥ the epoch: skip) or that another writer uses our
//!    `appId` (fail). Adds and removes of other writers never conflict with a blind
//!    append.
//!
//! A committer may belong to a [`CommitGroup`](crate::delta::files::group_commit): then
//! the sealed epochs of the group's writers go into one commit with one `txn` per
//! writer, under the same rules for each of them ([`commit_epochs`] commits any number).
//!
//! After committing, the committer writes a checkpoint if its
//! [`CheckpointPolicy`] says one is due.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde_json::{Map, Value};

use crate::delta::DeltaError;
use crate::delta::files::group_commit::CommitGroup;
use crate::delta::files::job_identity::{COMMIT_INFO_KEY, JobIdentity};
use crate::delta::protocol::actions::{Action, Add, CommitInfo, Txn};
use crate::delta::protocol::checkpoint::policy::Checkpointer;
pub use crate::delta::protocol::checkpoint::policy::{
    CheckpointPolicy, CheckpointWrite, DEFAULT_CHECKPOINT_INTERVAL,
};
use crate::delta::protocol::commit_loop::{ConflictCheck, Landing, Retry, commit_with_retries};
use crate::delta::protocol::snapshot::Snapshot;
use crate::delta::protocol::table::DeltaTable;

/// `commitInfo.engineInfo` of tidelake's commits: `tidelake/<version>`.
pub fn engine_info() -> String {
    format!("tidelake/{}", env!("CARGO_PKG_VERSION"))
}

/// How an [`EpochCommitter`] commits.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CommitOptions {
    /// Written as `commitInfo.engineInfo`, e.g. `tidelake/0.1.0`.
    pub engine_info: String,
    /// Written as `commitInfo.operationParameters.queryId`: the job id.
    pub query_id: String,
    /// How an epoch's commit retries after lost races (default 1,000 attempts, backoff
    /// from 1 ms to 100 ms).
    pub retry: Retry,
    /// When to checkpoint after a commit (default: by log size, see
    /// [`CheckpointPolicy`]).
    pub checkpoints: CheckpointPolicy,
    /// The job's identity, recorded in every commit's `commitInfo` (see
    /// [`crate::delta::files::job_identity`]).
    pub job: Option<JobIdentity>,
}

impl Default for CommitOptions {
    fn default() -> Self {
        CommitOptions {
            engine_info: engine_info(),
            query_id: String::new(),
            retry: Retry::default(),
            checkpoints: CheckpointPolicy::default(),
            job: None,
        }
    }
}

/// One writer's sealed epoch, to commit.
#[derive(Clone, Debug, PartialEq)]
pub struct EpochCommit {
    /// The writer's `appId`.
    pub app_id: String,
    /// The epoch: the `txn` version.
    pub epoch: i64,
    /// Its files.
    pub adds: Vec<Add>,
    /// Fields added to the commit's `commitInfo` (what `tidelake ingest` loaded, for one).
    pub record: Map<String, Value>,
}

/// What became of an epoch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EpochOutcome {
    /// The epoch is table version `version`, after `attempts` puts.
    Committed {
        /// The table version.
        version: u64,
        /// Puts it took (1 without contention).
        attempts: u32,
        /// The checkpoint this writer wrote after the commit, if one was due.
        checkpoint: Option<CheckpointWrite>,
    },
    /// The log already holds this epoch (or a later one) for this `appId`.
    AlreadyCommitted {
        /// The `appId`'s `txn` version in the log.
        txn_version: i64,
    },
}

/// What a committer knows of the log between its commits.
#[derive(Clone, Debug)]
pub(crate) struct CommitState {
    /// The first version not seen.
    next_version: u64,
    /// The latest `txn` version known of each of the committer's `appId`s.
    txn_versions: BTreeMap<String, i64>,
    checkpointer: Checkpointer,
}

impl CommitState {
    /// The state of a committer of `app_ids` that read the table as `snapshot`.
    pub(crate) fn new<'a>(
        snapshot: &Snapshot,
        app_ids: impl IntoIterator<Item = &'a str>,
        options: &CommitOptions,
    ) -> Self {
        CommitState {
            next_version: snapshot.version + 1,
            txn_versions: app_ids
                .into_iter()
                .filter_map(|app| snapshot.txn_version(app).map(|v| (app.to_owned(), v)))
                .collect(),
            checkpointer: Checkpointer::new(options.checkpoints),
        }
    }

    fn is_committed(&self, app_id: &str, epoch: i64) -> Option<i64> {
        self.txn_versions
            .get(app_id)
            .copied()
            .filter(|&v| v >= epoch)
    }
}

/// Commits one writer's epochs; see the [module docs](self).
pub struct EpochCommitter {
    table: DeltaTable,
    app_id: String,
    options: CommitOptions,
    state: CommitState,
    group: Option<Arc<CommitGroup>>,
}

impl EpochCommitter {
    /// A committer for `app_id` on `table`, starting from `snapshot` (the table as read
    /// at start).
    pub fn new(
        table: DeltaTable,
        app_id: impl Into<String>,
        snapshot: &Snapshot,
        options: CommitOptions,
    ) -> Self {
        let app_id = app_id.into();
        EpochCommitter {
            state: CommitState::new(snapshot, [app_id.as_str()], &options),
            table,
            app_id,
            options,
            group: None,
        }
    }

    /// Commits through `group`, together with the other writers' epochs sealed at the
    /// same time, instead of one commit per epoch.
    pub fn in_group(mut self, group: Arc<CommitGroup>) -> Self {
        self.group = Some(group);
        self
    }

    /// The `appId`'s latest `txn` version known: the last epoch committed.
    pub fn txn_version(&self) -> Option<i64> {
        self.state.txn_versions.get(&self.app_id).copied()
    }

    /// True if `epoch` is known to be committed already.
    pub fn is_committed(&self, epoch: u64) -> bool {
        i64::try_from(epoch).is_ok_and(|e| self.state.is_committed(&self.app_id, e).is_some())
    }

    /// Commits `adds` as epoch `epoch` (see the [module docs](self)). On
    /// [`EpochOutcome::AlreadyCommitted`] nothing was written to the log and the caller
    /// should delete the files of `adds`.
    pub async fn commit(&mut self, epoch: u64, adds: Vec<Add>) -> Result<EpochOutcome, DeltaError> {
        self.commit_recording(epoch, adds, Map::new()).await
    }

    /// Like [`commit`](Self::commit), with `record`'s fields added to the commit's
    /// `commitInfo` (what `tidelake ingest` loaded, for one).
    pub async fn commit_recording(
        &mut self,
        epoch: u64,
        adds: Vec<Add>,
        record: Map<String, Value>,
    ) -> Result<EpochOutcome, DeltaError> {
        let epoch = i64::try_from(epoch).map_err(|_| {
            DeltaError::Corrupt(format!("epoch {epoch} does not fit a txn version"))
        })?;
        if let Some(txn_version) = self.state.is_committed(&self.app_id, epoch) {
            return Ok(EpochOutcome::AlreadyCommitted { txn_version });
        }
        let commit = EpochCommit {
            app_id: self.app_id.clone(),
            epoch,
            adds,
            record,
        };
        let outcome = match &self.group {
            Some(group) => group.commit(commit).await?,
            None => commit_epochs(&self.table, &self.options, &mut self.state, vec![commit])
                .await?
                .pop()
                .ok_or_else(|| DeltaError::Corrupt("a commit lost its epoch".into()))?,
        };
        let txn_version = match &outcome {
            EpochOutcome::Committed { .. } => epoch,
            EpochOutcome::AlreadyCommitted { txn_version } => *txn_version,
        };
        self.state
            .txn_versions
            .insert(self.app_id.clone(), txn_version);
        Ok(outcome)
    }
}

/// Commits `epochs` (of distinct `appId`s) in one commit, leaving out those the log
/// holds already; returns each one's outcome, in order, the first committed one with
/// the checkpoint written after the commit if one was due (see the [module docs](self)).
pub(crate) async fn commit_epochs(
    table: &DeltaTable,
    options: &CommitOptions,
    state: &mut CommitState,
    epochs: Vec<EpochCommit>,
) -> Result<Vec<EpochOutcome>, DeltaError> {
    let mut outcomes: Vec<Option<EpochOutcome>> = epochs
        .iter()
        .map(|e| {
            state
                .is_committed(&e.app_id, e.epoch)
                .map(|txn_version| EpochOutcome::AlreadyCommitted { txn_version })
        })
        .collect();
    loop {
        let pending: Vec<usize> = (0..epochs.len())
            .filter(|&i| outcomes[i].is_none())
            .collect();
        if pending.is_empty() {
            return Ok(outcomes.into_iter().flatten().collect());
        }
        let members: Vec<&EpochCommit> = pending.iter().map(|&i| &epochs[i]).collect();
        let txn_id = table.clock().new_id().to_string();
        let actions = actions(table, options, state.next_version, &members, &txn_id);
        let what = match members.as_slice() {
            [one] => format!("epoch {} of {}", one.epoch, one.app_id),
            many => format!("the epochs of {} writers", many.len()),
        };
        let mut check = EpochCheck {
            table: table.location(),
            members: &members,
            txn_versions: &mut state.txn_versions,
        };
        let landing = commit_with_retries(
            table,
            state.next_version,
            &actions,
            &txn_id,
            &what,
            options.retry,
            &mut check,
        )
        .await?;
        state.next_version = landing.next_version();
        match landing {
            Landing::Committed { version, attempts } => {
                // The checkpoint written after the commit goes with the first epoch in it.
                let mut checkpoint = state
                    .checkpointer
                    .committed(table, version, &actions)
                    .await?;
                for (&i, member) in pending.iter().zip(&members) {
                    state
                        .txn_versions
                        .insert(member.app_id.clone(), member.epoch);
                    outcomes[i] = Some(EpochOutcome::Committed {
                        version,
                        attempts,
                        checkpoint: checkpoint.take(),
                    });
                    tracing::debug!(
                        table = table.location(),
                        app_id = %member.app_id,
                        epoch = member.epoch,
                        version,
                        attempts,
                        writers = members.len(),
                        "committed epoch {} of {} as version {version}",
                        member.epoch,
                        member.app_id
                    );
                }
                return Ok(outcomes.into_iter().flatten().collect());
            }
            Landing::Stopped { stop, .. } => {
                for (member, txn_version) in stop {
                    outcomes[pending[member]] =
                        Some(EpochOutcome::AlreadyCommitted { txn_version });
                }
            }
        }
    }
}

/// The commit's actions: every member's adds, a `txn` per member and one `commitInfo`
/// (its `epochId` the latest of the members' epochs).
fn actions(
    table: &DeltaTable,
    options: &CommitOptions,
    next_version: u64,
    members: &[&EpochCommit],
    txn_id: &str,
) -> Vec<Action> {
    let now = table.clock().now_ms();
    let mut actions: Vec<Action> = members
        .iter()
        .flat_map(|m| m.adds.iter().cloned().map(Action::Add))
        .collect();
    actions.extend(members.iter().map(|m| {
        Action::Txn(Txn {
            app_id: m.app_id.clone(),
            version: m.epoch,
            last_updated: Some(now),
            other: Default::default(),
        })
    }));
    let mut other: Map<String, Value> = members.iter().flat_map(|m| m.record.clone()).collect();
    if let Some(job) = &options.job {
        other.insert(COMMIT_INFO_KEY.to_owned(), job.to_json());
    }
    let epoch = members.iter().map(|m| m.epoch).max().unwrap_or_default();
    actions.push(Action::CommitInfo(CommitInfo {
        timestamp: Some(now),
        operation: Some("STREAMING UPDATE".to_owned()),
        operation_parameters: Some(BTreeMap::from([
            ("outputMode".to_owned(), "Append".to_owned()),
            ("queryId".to_owned(), options.query_id.clone()),
            ("epochId".to_owned(), epoch.to_string()),
        ])),
        read_version: i64::try_from(next_version).ok().map(|v| v - 1),
        is_blind_append: Some(true),
        txn_id: Some(txn_id.to_owned()),
        engine_info: Some(options.engine_info.clone()),
        other,
    }));
    actions
}

/// The check of another writer's commit against a blind append of `members`' epochs
/// (see the [module docs](self)): it stops the commit when some member's epoch is
/// committed already, with those members (their index) and the `txn` versions that say
/// so.
struct EpochCheck<'a> {
    table: &'a str,
    members: &'a [&'a EpochCommit],
    /// The latest `txn` version known of each `appId`, kept up to date.
    txn_versions: &'a mut BTreeMap<String, i64>,
}

impl ConflictCheck for EpochCheck<'_> {
    type Stop = Vec<(usize, i64)>;

    fn check(
        &mut self,
        version: u64,
        actions: &[Action],
    ) -> Result<Option<Vec<(usize, i64)>>, DeltaError> {
        let conflict = |detail: String| DeltaError::Conflict {
            table: self.table.to_owned(),
            version,
            detail,
        };
        let mut done = Vec::new();
        for action in actions {
            match action {
                Action::Protocol(_) => {
                    return Err(conflict(
                        "another writer changed the table's protocol".into(),
                    ));
                }
                Action::Metadata(_) => {
                    return Err(conflict(
                        "another writer changed the table's metadata (schema, partitioning or configuration)"
                            .into(),
                    ));
                }
                Action::Txn(txn) => {
                    let Some(member) = self.members.iter().position(|m| m.app_id == txn.app_id)
                    else {
                        continue;
                    };
                    let epoch = self.members[member].epoch;
                    self.txn_versions.insert(txn.app_id.clone(), txn.version);
                    if txn.version >= epoch {
                        done.push((member, txn.version));
                    } else {
                        return Err(conflict(format!(
                            "another writer committed epoch {} as appId {} while this one was committing epoch {epoch}: two jobs with the same --job-id are writing at once",
                            txn.version, txn.app_id
                        )));
                    }
                }
                _ => {}
            }
        }
        Ok((!done.is_empty()).then_some(done))
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::delta::protocol::actions::Metadata;
    use crate::delta::protocol::checkpoint::{checkpoint_path, read_last_checkpoint};
    use std::time::Duration;

    use crate::delta::protocol::commit_loop::MAX_STORE_ERRORS;
    use crate::delta::protocol::schema::Schema;
    use crate::delta::testing::{add, block_on, txn};
    use object_store::ObjectStoreExt;

    fn adds(names: &[&str]) -> Vec<Add> {
        names
            .iter()
            .map(|n| match add(n) {
                Action::Add(a) => a,
                _ => unreachable!("add() makes adds"),
            })
            .collect()
    }

    async fn new_table(url: &str) -> (DeltaTable, Snapshot) {
        let table = DeltaTable::open_url(url).expect("open");
        let schema = Schema::of(&[("x", "long"), ("date", "string")]);
        let snapshot = table
            .create_or_open(&schema, &["date"], BTreeMap::new(), "test")
            .await
            .expect("create");
        (table, snapshot)
    }

    fn options() -> CommitOptions {
        CommitOptions {
            query_id: "job".into(),
            retry: Retry {
                min_backoff: Duration::from_micros(100),
                max_backoff: Duration::from_millis(5),
                ..Retry::default()
            },
            checkpoints: CheckpointPolicy::EveryVersions(10),
            ..CommitOptions::default()
        }
    }

    fn commit_info(actions: &[Action]) -> &CommitInfo {
        actions
            .iter()
            .find_map(|a| match a {
                Action::CommitInfo(info) => Some(info),
                _ => None,
            })
            .expect("commitInfo")
    }

    #[test]
    fn commits_adds_txn_and_commit_info_at_the_next_version() {
        block_on(async {
            let (table, snapshot) = new_table("memory://t").await;
            let mut committer = EpochCommitter::new(table.clone(), "job-w0", &snapshot, options());
            let outcome = committer
                .commit(7, adds(&["a", "b"]))
                .await
                .expect("commit");
            assert_eq!(
                outcome,
                EpochOutcome::Committed {
                    version: 1,
                    attempts: 1,
                    checkpoint: None
                }
            );
            assert_eq!(committer.txn_version(), Some(7));

            let actions = table.read_commit(1).await.expect("read");
            assert_eq!(&actions[..2], &[add("a"), add("b")]);
            assert!(
                matches!(&actions[2], Action::Txn(t) if t.app_id == "job-w0" && t.version == 7)
            );
            let info = commit_info(&actions);
            assert_eq!(info.operation.as_deref(), Some("STREAMING UPDATE"));
            assert_eq!(info.is_blind_append, Some(true));
            assert_eq!(info.read_version, Some(0));
            assert!(info.txn_id.is_some());
            let params = info.operation_parameters.clone().expect("parameters");
            assert_eq!(params.get("epochId").map(String::as_str), Some("7"));
            assert_eq!(params.get("queryId").map(String::as_str), Some("job"));
            assert_eq!(params.get("outputMode").map(String::as_str), Some("Append"));
        });
    }

    #[test]
    fn an_epoch_the_log_holds_is_not_committed_again() {
        block_on(async {
            let (table, _) = new_table("memory://t").await;
            table
                .try_commit(1, &[add("a"), txn("job-w0", 5)])
                .await
                .expect("commit");
            let snapshot = table.snapshot().await.expect("load").expect("table");
            let mut committer = EpochCommitter::new(table.clone(), "job-w0", &snapshot, options());
            assert!(committer.is_committed(5) && !committer.is_committed(6));
            let outcome = committer.commit(5, adds(&["b"])).await.expect("commit");
            assert_eq!(outcome, EpochOutcome::AlreadyCommitted { txn_version: 5 });
            assert_eq!(
                table
                    .snapshot()
                    .await
                    .expect("load")
                    .expect("table")
                    .version,
                1
            );
        });
    }

    #[test]
    fn a_lost_race_reads_the_winner_and_commits_at_the_next_version() {
        block_on(async {
            let (table, snapshot) = new_table("memory://t").await;
            let mut a = EpochCommitter::new(table.clone(), "job-w0", &snapshot, options());
            let mut b = EpochCommitter::new(table.clone(), "job-w1", &snapshot, options());
            assert_eq!(
                a.commit(1, adds(&["a"])).await.expect("a"),
                EpochOutcome::Committed {
                    version: 1,
                    attempts: 1,
                    checkpoint: None
                }
            );
            // Another writer's blind append and a compaction do not conflict.
            table.try_commit(2, &[add("x")]).await.expect("external");
            assert_eq!(
                b.commit(1, adds(&["b"])).await.expect("b"),
                EpochOutcome::Committed {
                    version: 3,
                    attempts: 2,
                    checkpoint: None
                }
            );
            let snapshot = table.snapshot().await.expect("load").expect("table");
            assert_eq!(snapshot.txn_version("job-w0"), Some(1));
            assert_eq!(snapshot.txn_version("job-w1"), Some(1));
            assert_eq!(snapshot.files.len(), 3);
        });
    }

    #[test]
    fn metadata_changes_and_a_second_writer_of_the_app_id_conflict() {
        block_on(async {
            let (table, snapshot) = new_table("memory://t").await;
            let metadata = snapshot.metadata.clone().expect("metadata");
            let mut committer = EpochCommitter::new(table.clone(), "job-w0", &snapshot, options());
            table
                .try_commit(
                    1,
                    &[Action::Metadata(Metadata {
                        name: Some("x".into()),
                        ..metadata
                    })],
                )
                .await
                .expect("external");
            let err = committer
                .commit(1, adds(&["a"]))
                .await
                .expect_err("conflict");
            assert!(
                err.to_string().contains("changed the table's metadata"),
                "{err}"
            );

            let snapshot = table.snapshot().await.expect("load").expect("table");
            let mut committer = EpochCommitter::new(table.clone(), "job-w0", &snapshot, options());
            table
                .try_commit(2, &[txn("job-w0", 3)])
                .await
                .expect("zombie");
            let err = committer
                .commit(4, adds(&["a"]))
                .await
                .expect_err("conflict");
            assert!(err.to_string().contains("same --job-id"), "{err}");

            // The same epoch committed by someone else: already done, not a conflict.
            let mut committer = EpochCommitter::new(table.clone(), "job-w0", &snapshot, options());
            assert_eq!(
                committer.commit(3, adds(&["a"])).await.expect("skip"),
                EpochOutcome::AlreadyCommitted { txn_version: 3 }
            );
        });
    }

    #[test]
    fn racing_committers_land_every_epoch_once_with_contiguous_versions() {
        let dir = tempfile::tempdir().expect("tempdir");
        let url = dir.path().display().to_string();
        let (table, snapshot) = block_on(new_table(&url));
        let threads: Vec<_> = (0..4)
            .map(|w| {
                let (table, snapshot) = (table.clone(), snapshot.clone());
                std::thread::spawn(move || {
                    block_on(async {
                        let app = format!("job-w{w}");
                        let mut committer = EpochCommitter::new(table, &app, &snapshot, options());
                        for epoch in 1..=15u64 {
                            let name = format!("{app}-{epoch}");
                            committer
                                .commit(epoch, adds(&[&name]))
                                .await
                                .expect("commit");
                        }
                    })
                })
            })
            .collect();
        for thread in threads {
            thread.join().expect("committer thread");
        }
        block_on(async {
            let snapshot = table.snapshot().await.expect("load").expect("table");
            assert_eq!(
                snapshot.version, 60,
                "one version per epoch per writer, no gap"
            );
            assert_eq!(snapshot.files.len(), 60);
            for w in 0..4 {
                assert_eq!(snapshot.txn_version(&format!("job-w{w}")), Some(15));
            }
            // Checkpoints at 10, 20, …, 60; `_last_checkpoint` names one of the last.
            for version in (10..=60).step_by(10) {
                let path = checkpoint_path(table.root(), version);
                table
                    .store()
                    .head(&path)
                    .await
                    .expect("a checkpoint every 10 versions");
            }
            let last = read_last_checkpoint(table.store().as_ref(), table.root())
                .await
                .expect("read");
            assert!(last.is_some_and(|v| v >= 50), "{last:?}");
        });
    }

    /// A store whose next commit puts fail as a timeout would: after landing, or
    /// before.
    #[derive(Debug, Default)]
    struct FlakyStore {
        inner: object_store::memory::InMemory,
        faults: std::sync::Mutex<std::collections::VecDeque<bool>>,
    }

    impl FlakyStore {
        /// The next commit put fails; `lands`: after it was written.
        fn fail_next(&self, lands: bool) {
            self.faults.lock().expect("lock").push_back(lands);
        }

        fn timeout() -> object_store::Error {
            object_store::Error::Generic {
                store: "flaky",
                source: "request timed out".into(),
            }
        }
    }

    impl std::fmt::Display for FlakyStore {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            write!(f, "FlakyStore")
        }
    }

    #[async_trait::async_trait]
    impl object_store::ObjectStore for FlakyStore {
        async fn put_opts(
            &self,
            location: &object_store::path::Path,
            payload: object_store::PutPayload,
            opts: object_store::PutOptions,
        ) -> object_store::Result<object_store::PutResult> {
            let fault = match location.as_ref().ends_with(".json") {
                true => self.faults.lock().expect("lock").pop_front(),
                false => None,
            };
            match fault {
                None => self.inner.put_opts(location, payload, opts).await,
                Some(true) => {
                    self.inner.put_opts(location, payload, opts).await?;
                    Err(Self::timeout())
                }
                Some(false) => Err(Self::timeout()),
            }
        }

        async fn put_multipart_opts(
            &self,
            location: &object_store::path::Path,
            opts: object_store::PutMultipartOptions,
        ) -> object_store::Result<Box<dyn object_store::MultipartUpload>> {
            self.inner.put_multipart_opts(location, opts).await
        }

        async fn get_opts(
            &self,
            location: &object_store::path::Path,
            options: object_store::GetOptions,
        ) -> object_store::Result<object_store::GetResult> {
            self.inner.get_opts(location, options).await
        }

        fn delete_stream(
            &self,
            locations: futures::stream::BoxStream<
                'static,
                object_store::Result<object_store::path::Path>,
            >,
        ) -> futures::stream::BoxStream<'static, object_store::Result<object_store::path::Path>>
        {
            self.inner.delete_stream(locations)
        }

        fn list(
            &self,
            prefix: Option<&object_store::path::Path>,
        ) -> futures::stream::BoxStream<'static, object_store::Result<object_store::ObjectMeta>>
        {
            self.inner.list(prefix)
        }

        async fn list_with_delimiter(
            &self,
            prefix: Option<&object_store::path::Path>,
        ) -> object_store::Result<object_store::ListResult> {
            self.inner.list_with_delimiter(prefix).await
        }

        async fn copy_opts(
            &self,
            from: &object_store::path::Path,
            to: &object_store::path::Path,
            options: object_store::CopyOptions,
        ) -> object_store::Result<()> {
            self.inner.copy_opts(from, to, options).await
        }
    }

    #[test]
    fn an_ambiguous_put_is_resolved_by_reading_the_version_back() {
        block_on(async {
            let store = std::sync::Arc::new(FlakyStore::default());
            let table = DeltaTable::new(store.clone(), Default::default(), "flaky://t");
            let schema = Schema::of(&[("x", "long"), ("date", "string")]);
            let snapshot = table
                .create_or_open(&schema, &["date"], BTreeMap::new(), "test")
                .await
                .expect("create");
            let mut committer = EpochCommitter::new(table.clone(), "job-w0", &snapshot, options());

            // The put landed but its answer was lost: our txnId is there, so it counts.
            store.fail_next(true);
            assert_eq!(
                committer.commit(1, adds(&["a"])).await.expect("commit"),
                EpochOutcome::Committed {
                    version: 1,
                    attempts: 1,
                    checkpoint: None
                }
            );
            // The put failed before landing, twice: the version is free, so it is retried.
            store.fail_next(false);
            store.fail_next(false);
            assert_eq!(
                committer.commit(2, adds(&["b"])).await.expect("commit"),
                EpochOutcome::Committed {
                    version: 2,
                    attempts: 3,
                    checkpoint: None
                }
            );
            let snapshot = table.snapshot().await.expect("load").expect("table");
            assert_eq!(snapshot.version, 2, "each epoch committed once");
            assert_eq!(snapshot.files.len(), 2);

            // A store that keeps failing: the error, after a few tries.
            for _ in 0..MAX_STORE_ERRORS {
                store.fail_next(false);
            }
            let err = committer
                .commit(3, adds(&["c"]))
                .await
                .expect_err("gives up");
            assert!(err.to_string().contains("request timed out"), "{err}");
            assert_eq!(
                table
                    .snapshot()
                    .await
                    .expect("load")
                    .expect("table")
                    .version,
                2
            );
        });
    }
}
