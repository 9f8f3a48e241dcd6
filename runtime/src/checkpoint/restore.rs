//! Starting a job's checkpoints: opening the directory, choosing the checkpoint to
//! restore and checking that it fits the job (docs/checkpoints.md §5).
//!
//! The newest checkpoint whose manifest and parts read back whole is restored; newer
//! ones that do not (a damaged or missing part, a format from a newer tidelake) are
//! skipped with a warning naming the file. If checkpoints are there but none can be
//! restored, the job refuses to start unless told to ignore them. A checkpoint whose
//! job settings differ from the job's is refused naming each difference; one taken on
//! another layout of workers is restored only if it is a savepoint.

use std::sync::Mutex;

use super::process::{Checkpoints, Restored};
use super::store::CheckpointStore;
use super::writer::CheckpointWriter;
use super::{CheckpointError, Kind, Layout};

/// Why a job's checkpoints could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum RestoreError {
    /// The store failed, or the location is not usable.
    #[error(transparent)]
    Store(#[from] CheckpointError),
    /// The checkpoints there do not fit the job (exit 2).
    #[error("{0}")]
    Refused(String),
}

/// The name of the worker count among a job's identity settings, which a savepoint may
/// restore onto another value of.
pub const WORKERS_SETTING: &str = "--workers (in all processes)";

/// The identity settings a job restored from a checkpoint (`restored`, onto another
/// layout of workers if `rescaled`) may hold other values of than the commits its
/// tables record: the worker count of a rescaled savepoint, and where a Delta source
/// started, which the restored positions carry.
pub(crate) fn may_differ(restored: bool, rescaled: bool) -> Vec<String> {
    let mut names = Vec::new();
    if restored {
        names.push(crate::sources::delta::START_SETTING.to_owned());
    }
    if rescaled {
        names.push(WORKERS_SETTING.to_owned());
    }
    names
}

/// What a job asks of its checkpoints.
pub(crate) struct Request<'a> {
    pub(crate) location: &'a str,
    pub(crate) job_id: &'a str,
    /// The job's identity settings (see `JobConfig::identity_settings`).
    pub(crate) settings: Vec<(String, String)>,
    pub(crate) layout: Layout,
    pub(crate) interval: u64,
    pub(crate) retained: usize,
    /// Start from scratch when none of the checkpoints there can be restored.
    pub(crate) ignore_unusable: bool,
}

/// The job's checkpoints at `request.location`, with the one to restore.
pub(crate) fn open(request: Request<'_>) -> Result<Checkpoints, RestoreError> {
    let store = CheckpointStore::open(request.location)?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| CheckpointError::Location {
            url: request.location.to_owned(),
            message: format!("cannot start an I/O runtime: {e}"),
        })?;
    let found = runtime.block_on(store.newest_restorable())?;
    for (id, reason) in &found.skipped {
        tracing::warn!(
            checkpoint = id,
            "checkpoint {id} in {} cannot be restored, skipped: {reason}",
            request.location
        );
    }
    if found.newest.is_none() && !found.skipped.is_empty() && !request.ignore_unusable {
        return Err(RestoreError::Refused(format!(
            "none of the {} checkpoint(s) in {} can be restored (the newest: {}); start with --ignore-checkpoints to run from the start of the input anyway",
            found.skipped.len(),
            request.location,
            found.skipped[0].1
        )));
    }
    let settings = compared(&request.settings);
    let restored = match found.newest {
        None => None,
        Some((manifest, parts)) => {
            check_fits(&manifest, &request, &settings)?;
            Some(Restored { manifest, parts })
        }
    };
    let next_id = found.last_id + 1;
    Ok(Checkpoints {
        writer: CheckpointWriter::start(store)?,
        interval: request.interval,
        retained: request.retained,
        attempt: found.last_attempt + 1,
        job_id: request.job_id.to_owned(),
        settings,
        layout: request.layout,
        restored,
        next_id,
        taken: Mutex::new(Default::default()),
        on_complete: std::sync::OnceLock::new(),
    })
}

/// The settings a checkpoint records and a restore compares: the job's identity but
/// its worker count, which the layout records, and where a Delta source started, which
/// the positions record.
fn compared(settings: &[(String, String)]) -> Vec<(String, String)> {
    settings
        .iter()
        .filter(|(name, _)| name != WORKERS_SETTING && name != crate::sources::delta::START_SETTING)
        .cloned()
        .collect()
}

/// Refuses `manifest` if it is another job's, was taken with other settings, or on
/// another layout of workers without being a savepoint.
fn check_fits(
    manifest: &super::Manifest,
    request: &Request<'_>,
    settings: &[(String, String)],
) -> Result<(), RestoreError> {
    let what = format!(
        "{} {} in {}",
        manifest.kind.name(),
        manifest.id,
        request.location
    );
    if manifest.job_id != request.job_id {
        return Err(RestoreError::Refused(format!(
            "{what} is job {:?}'s, not {:?}'s",
            manifest.job_id, request.job_id
        )));
    }
    let mut differences = Vec::new();
    for (name, value) in settings {
        match manifest.settings.iter().find(|(n, _)| n == name) {
            Some((_, recorded)) if recorded == value => {}
            Some((_, recorded)) => differences.push(format!(
                "{name} was {recorded:?} when it was taken, is {value:?} now"
            )),
            None => differences.push(format!(
                "{name} was not set when it was taken, is {value:?} now"
            )),
        }
    }
    for (name, recorded) in &manifest.settings {
        if !settings.iter().any(|(n, _)| n == name) {
            differences.push(format!(
                "{name} was {recorded:?} when it was taken, is not set now"
            ));
        }
    }
    if !differences.is_empty() {
        return Err(RestoreError::Refused(format!(
            "{what} was taken with other settings: {}; run with the same settings, or another --job-id to start over",
            differences.join("; ")
        )));
    }
    let (then, now) = (manifest.layout, request.layout);
    if then.key_groups != now.key_groups {
        return Err(RestoreError::Refused(format!(
            "{what} shards keyed state into {} key groups, the job into {} (--max-parallelism): they must be the same",
            then.key_groups, now.key_groups
        )));
    }
    if (then.processes, then.workers) != (now.processes, now.workers)
        && manifest.kind == Kind::Checkpoint
    {
        return Err(RestoreError::Refused(format!(
            "{what} was taken by {} process(es) of {} worker(s), the job runs {} of {}: a checkpoint restores onto the layout that took it; stop the job with Ctrl-C or SIGTERM to take a savepoint, which restores onto any",
            then.processes, then.workers, now.processes, now.workers
        )));
    }
    Ok(())
}
