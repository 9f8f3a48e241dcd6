//! Group commit (docs/scaling.md §2): the writers of one process that seal epochs at the
//! same time commit them together, as one table version with one `txn` per writer.
//!
//! With per-writer commits, N writers committing every epoch make N table versions per
//! epoch, and every version is a put-if-absent race, a log file readers replay and a
//! step towards the next checkpoint. A [`CommitGroup`] shared by a process's writers
//! of one table (`--commit-scope process`) makes that one version per process per
//! epoch in the common case.
//!
//! No writer waits for another: a writer that seals an epoch while no group commit is
//! running leads one at once, with every epoch queued so far; epochs sealed while it
//! runs queue up, and when it lands the leader hands the queue to the first of their
//! writers, which commits them all as the next group. Each writer's epoch is exactly
//! once in the log under the same rules as a commit of its own
//! ([`commit_epochs`](crate::delta::files::commit)): an epoch the log holds already for
//! its `appId` is left out of the group (its writer deletes its files), and a re-run
//! skips exactly the epochs each `appId`'s `txn` says are committed. A group commit
//! lands whole or not at all.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};

use futures::channel::oneshot;

use crate::delta::DeltaError;
use crate::delta::files::commit::{
    CommitOptions, CommitState, EpochCommit, EpochOutcome, commit_epochs,
};
use crate::delta::protocol::snapshot::Snapshot;
use crate::delta::protocol::table::DeltaTable;

/// The writers of one table in one process, committing together; see the
/// [module docs](self).
pub struct CommitGroup {
    table: DeltaTable,
    options: CommitOptions,
    inner: Mutex<Inner>,
}

struct Inner {
    /// A group commit is running; its leader holds the state.
    leading: bool,
    /// What the group knows of the log while no commit runs.
    state: Option<CommitState>,
    /// Epochs sealed while a group commit runs, for the next one.
    queue: VecDeque<Waiting>,
}

/// An epoch waiting for the next group commit, and where its outcome goes.
struct Waiting {
    epoch: EpochCommit,
    reply: oneshot::Sender<Reply>,
}

enum Reply {
    /// The epoch's outcome.
    Done(Result<EpochOutcome, Arc<DeltaError>>),
    /// Lead the next group commit, with the epoch given back and the group's state.
    Lead(EpochCommit, CommitState),
}

impl CommitGroup {
    /// A group of writers of `table`, read as `snapshot` at start, committing with
    /// `options`.
    pub fn new(table: DeltaTable, snapshot: &Snapshot, options: CommitOptions) -> Arc<CommitGroup> {
        let app_ids = snapshot.txns.keys().map(String::as_str);
        let state = CommitState::new(snapshot, app_ids, &options);
        Arc::new(CommitGroup {
            table,
            options,
            inner: Mutex::new(Inner {
                leading: false,
                state: Some(state),
                queue: VecDeque::new(),
            }),
        })
    }

    /// Commits `epoch` in the next group commit and returns its outcome (a checkpoint
    /// written after the commit is in the first committed epoch's outcome).
    pub async fn commit(&self, epoch: EpochCommit) -> Result<EpochOutcome, DeltaError> {
        let (own, mut state) = match self.join(epoch) {
            Ok(lead) => lead,
            Err(waiting) => match waiting.await {
                Ok(Reply::Done(outcome)) => return outcome.map_err(DeltaError::Shared),
                Ok(Reply::Lead(own, state)) => (own, state),
                Err(oneshot::Canceled) => {
                    return Err(DeltaError::Corrupt(
                        "the writer leading a group commit stopped without an answer".into(),
                    ));
                }
            },
        };
        let queued: Vec<Waiting> = self.lock().queue.drain(..).collect();
        let mut epochs = vec![own];
        let mut replies = Vec::with_capacity(queued.len());
        for waiting in queued {
            epochs.push(waiting.epoch);
            replies.push(waiting.reply);
        }
        let result = commit_epochs(&self.table, &self.options, &mut state, epochs).await;
        self.hand_over(state);
        match result {
            Ok(outcomes) => {
                let mut outcomes = outcomes.into_iter();
                let own = outcomes.next();
                for (reply, outcome) in replies.into_iter().zip(outcomes) {
                    // A writer that stopped waiting has nothing left to tell.
                    let _ = reply.send(Reply::Done(Ok(outcome)));
                }
                own.ok_or_else(|| DeltaError::Corrupt("a group commit lost an epoch".into()))
            }
            Err(error) => {
                let error = Arc::new(error);
                for reply in replies {
                    let _ = reply.send(Reply::Done(Err(Arc::clone(&error))));
                }
                Err(DeltaError::Shared(error))
            }
        }
    }

    /// Hands the group's `state` to the writer of the first epoch queued, which leads
    /// the next group commit, or keeps it until an epoch comes.
    fn hand_over(&self, mut state: CommitState) {
        let mut inner = self.lock();
        while let Some(next) = inner.queue.pop_front() {
            state = match next.reply.send(Reply::Lead(next.epoch, state)) {
                Ok(()) => return,
                // That writer stopped waiting: the next one leads.
                Err(Reply::Lead(_, state)) => state,
                Err(Reply::Done(_)) => unreachable!("a lead was sent"),
            };
        }
        inner.leading = false;
        inner.state = Some(state);
    }

    /// Queues `epoch` behind a running group commit (the receiver of its reply), or
    /// makes the caller the leader of one (the epoch and the group's state).
    fn join(
        &self,
        epoch: EpochCommit,
    ) -> Result<(EpochCommit, CommitState), oneshot::Receiver<Reply>> {
        let mut inner = self.lock();
        match (inner.leading, inner.state.take()) {
            (false, Some(state)) => {
                inner.leading = true;
                Ok((epoch, state))
            }
            (_, state) => {
                inner.state = state;
                let (reply, receiver) = oneshot::channel();
                inner.queue.push_back(Waiting { epoch, reply });
                Err(receiver)
            }
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // No code panics while holding the lock.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::sync::Barrier;

    use super::*;
    use crate::delta::files::commit::EpochCommitter;
    use crate::delta::protocol::actions::{Action, Add};
    use crate::delta::protocol::schema::Schema;
    use crate::delta::testing::{add, block_on, txn};

    fn adds(name: &str) -> Vec<Add> {
        match add(name) {
            Action::Add(a) => vec![a],
            _ => unreachable!("add() makes adds"),
        }
    }

    fn new_table(url: &str) -> (DeltaTable, Snapshot) {
        let table = DeltaTable::open_url(url).expect("open");
        let schema = Schema::of(&[("x", "long"), ("date", "string")]);
        let snapshot = block_on(table.create_or_open(&schema, &["date"], BTreeMap::new(), "test"))
            .expect("create");
        (table, snapshot)
    }

    /// `writers` threads, each committing epochs 1..=`epochs` through one group; every
    /// thread waits for the others before each epoch, so the epochs of a round are
    /// sealed at about the same time.
    fn run_group(table: &DeltaTable, snapshot: &Snapshot, writers: usize, epochs: u64) {
        let apps: Vec<String> = (0..writers).map(|w| format!("job-w{w}")).collect();
        let group = CommitGroup::new(table.clone(), snapshot, CommitOptions::default());
        let barrier = Arc::new(Barrier::new(writers));
        let threads: Vec<_> = apps
            .into_iter()
            .map(|app| {
                let (table, snapshot) = (table.clone(), snapshot.clone());
                let (group, barrier) = (Arc::clone(&group), Arc::clone(&barrier));
                std::thread::spawn(move || {
                    let mut committer =
                        EpochCommitter::new(table, &app, &snapshot, CommitOptions::default())
                            .in_group(group);
                    for epoch in 1..=epochs {
                        barrier.wait();
                        let outcome =
                            block_on(committer.commit(epoch, adds(&format!("{app}-{epoch}"))))
                                .expect("commit");
                        assert!(
                            matches!(outcome, EpochOutcome::Committed { .. }),
                            "{app} epoch {epoch}: {outcome:?}"
                        );
                    }
                })
            })
            .collect();
        for thread in threads {
            thread.join().expect("writer thread");
        }
    }

    #[test]
    fn a_group_commits_every_writers_epoch_once_in_fewer_versions() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (table, snapshot) = new_table(&dir.path().display().to_string());
        run_group(&table, &snapshot, 8, 20);
        let snapshot = block_on(table.snapshot()).expect("load").expect("table");
        assert_eq!(snapshot.files.len(), 160, "every epoch's file, once");
        for w in 0..8 {
            assert_eq!(snapshot.txn_version(&format!("job-w{w}")), Some(20));
        }
        assert!(
            snapshot.version < 160 / 2,
            "group commits take fewer versions than one per epoch: {}",
            snapshot.version
        );
        // Each writer's txn versions, read commit by commit, are 1, 2, …, 20: no epoch
        // twice, none skipped.
        let mut seen: BTreeMap<String, Vec<i64>> = BTreeMap::new();
        for version in 1..=snapshot.version {
            for action in block_on(table.read_commit(version)).expect("read") {
                if let Action::Txn(t) = action {
                    seen.entry(t.app_id).or_default().push(t.version);
                }
            }
        }
        assert_eq!(seen.len(), 8);
        for versions in seen.values() {
            assert_eq!(versions, &(1..=20).collect::<Vec<i64>>());
        }
    }

    #[test]
    fn a_group_leaves_out_epochs_the_log_holds_and_a_rerun_commits_nothing() {
        let (table, snapshot) = new_table("memory://t");
        // Another run committed epoch 3 of job-w1 already.
        block_on(table.try_commit(1, &[add("old"), txn("job-w1", 3)])).expect("commit");
        let group = CommitGroup::new(table.clone(), &snapshot, CommitOptions::default());
        let commit = |app: &str, epoch: i64| EpochCommit {
            app_id: app.to_owned(),
            epoch,
            adds: adds(&format!("{app}-{epoch}")),
            record: Default::default(),
        };
        let outcome = block_on(group.commit(commit("job-w1", 2))).expect("commit");
        assert_eq!(outcome, EpochOutcome::AlreadyCommitted { txn_version: 3 });
        let outcome = block_on(group.commit(commit("job-w0", 2))).expect("commit");
        assert!(
            matches!(outcome, EpochOutcome::Committed { version: 2, .. }),
            "{outcome:?}"
        );
        let snapshot = block_on(table.snapshot()).expect("load").expect("table");
        assert_eq!(snapshot.files.len(), 2);
        assert_eq!(snapshot.txn_version("job-w0"), Some(2));
        assert_eq!(snapshot.txn_version("job-w1"), Some(3));
    }
}
