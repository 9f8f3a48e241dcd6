//! Shared job control: a stop request (Ctrl-C) and the first fatal error.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

/// Lets any thread ask a running job to stop, and lets operators report a fatal error.
///
/// Sources check [`should_stop`](Self::should_stop) between batches; when set they
/// release their capabilities, so the dataflow drains what it holds and ends.
#[derive(Debug, Default)]
pub struct JobControl {
    stop: AtomicBool,
    error: Mutex<Option<String>>,
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

    /// Records a fatal error (the first one wins) and stops the job.
    pub fn fail(&self, message: String) {
        if let Ok(mut error) = self.error.lock()
            && error.is_none()
        {
            *error = Some(message);
        }
        self.request_stop();
    }

    /// The first fatal error reported, if any.
    pub fn error(&self) -> Option<String> {
        self.error.lock().ok().and_then(|e| e.clone())
    }
}
