//! A process started by `tidelake launch` stops when its launcher is gone.
//!
//! The launcher starts its processes in a process group of their own, so a launcher
//! killed outright (SIGKILL, OOM) forwards nothing, and its processes would run on
//! unsupervised with nobody reading their alerts. Each one watches its parent instead:
//! once it is no longer the launcher (the process was re-parented), the job fails, which
//! stops it as a Ctrl-C would (completed epochs are still committed); if it has not
//! ended a few seconds later, the process exits.

use std::ops::ControlFlow;
use std::sync::Arc;
use std::time::Duration;

use nix::unistd::getppid;

use crate::control::{FailOrExit, JobControl};
use crate::periodic::Periodic;

/// How often the parent is checked.
const POLL: Duration = Duration::from_millis(200);
/// How long the job gets to stop by itself once the launcher is gone.
const GRACE: Duration = Duration::from_secs(5);

/// Watches the parent process while the job runs; dropping it stops the watch.
pub struct LauncherWatch {
    _thread: Periodic,
}

impl LauncherWatch {
    /// Starts watching: `launcher` is the pid of the `tidelake launch` that started this
    /// process.
    pub fn start(launcher: u32, control: Arc<JobControl>) -> Self {
        let mut lost = FailOrExit::new(control, GRACE);
        let thread = Periodic::start("tidelake:launcher-watch", POLL, move || {
            if lost.failed() {
                lost.exit_if_overdue();
            } else if u32::try_from(getppid().as_raw()).ok() != Some(launcher) {
                lost.fail(format!(
                    "the launcher (pid {launcher}) is gone: nobody supervises this process or reads its alerts"
                ));
            }
            ControlFlow::Continue(())
        });
        LauncherWatch { _thread: thread }
    }
}
