//! Shared job control: a stop request (Ctrl-C), the first fatal error, and the halt time
//! after which nothing more is run or committed.

use std::io::Write;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Lets any thread ask a running job to stop, and lets operators report a fatal error.
///
/// Sources check [`should_stop`](Self::should_stop) between batches; when set they
/// release their capabilities, so the dataflow drains what it holds and ends.
#[derive(Debug)]
pub struct JobControl {
    stop: AtomicBool,
    error: Mutex<Option<String>>,
    /// Rule times at or after this are not run, written or committed: a savepoint's
    /// (docs/checkpoints.md §6), or 0 once the job has failed; `u64::MAX` while running.
    halt: Arc<AtomicU64>,
}

impl Default for JobControl {
    fn default() -> Self {
        JobControl {
            stop: AtomicBool::new(false),
            error: Mutex::new(None),
            halt: Arc::new(AtomicU64::new(u64::MAX)),
        }
    }
}

impl JobControl {
    /// Asks the job to stop reading and finish.
    pub fn request_stop(&self) {
        self.stop.store(true, Ordering::SeqCst);
    }

    /// True once a stop was requested or an error reported.
    #[inline]
    pub fn should_stop(&self) -> bool {
        self.stop.load(Ordering::Relaxed)
    }

    /// Records a fatal error (the first one wins) and stops the job: nothing more is run
    /// or committed (a failed job is restarted from its last checkpoint, or its input,
    /// and an epoch committed with part of its rows would then be skipped).
    pub fn fail(&self, message: String) {
        if let Ok(mut error) = self.error.lock()
            && error.is_none()
        {
            *error = Some(message);
        }
        self.halt(0);
        self.request_stop();
    }

    /// Runs, writes and commits nothing at or after rule time `at` (the earliest halt
    /// wins).
    pub fn halt(&self, at: u64) {
        self.halt.fetch_min(at, Ordering::AcqRel);
    }

    /// The halt time, shared with the operators that honour it.
    pub fn halt_handle(&self) -> Arc<AtomicU64> {
        Arc::clone(&self.halt)
    }

    /// The first fatal error reported, if any.
    pub fn error(&self) -> Option<String> {
        self.error.lock().ok().and_then(|e| e.clone())
    }
}

/// A failure found outside the dataflow that its workers may be unable to act on (a
/// stalled peer holds them, a launcher is gone): the job is failed at once, and the
/// process exits with status 1 if the job has not ended `grace` later. A
/// [`Periodic`](crate::periodic::Periodic) check drives it and is dropped when the job
/// ends, so a job that does stop is never exited.
#[derive(Debug)]
pub struct FailOrExit {
    control: Arc<JobControl>,
    grace: Duration,
    failed: Option<(Instant, String)>,
}

impl FailOrExit {
    /// Fails `control`'s job when asked, giving it `grace` to end.
    pub fn new(control: Arc<JobControl>, grace: Duration) -> Self {
        FailOrExit {
            control,
            grace,
            failed: None,
        }
    }

    /// True once [`fail`](Self::fail) was called.
    pub fn failed(&self) -> bool {
        self.failed.is_some()
    }

    /// Fails the job with `message` (the first call only).
    pub fn fail(&mut self, message: String) {
        if self.failed.is_none() {
            self.control.fail(message.clone());
            self.failed = Some((Instant::now(), message));
        }
    }

    /// Exits the process with status 1 if the job was failed `grace` ago or more (its
    /// error on stderr, if stderr is still there).
    pub fn exit_if_overdue(&self) {
        if let Some((at, message)) = &self.failed
            && at.elapsed() >= self.grace
        {
            let _ = writeln!(std::io::stderr(), "tidelake: error: job failed: {message}");
            std::process::exit(1);
        }
    }
}
