//! A background thread that runs a check at a fixed interval while a job runs: the
//! stall watchdog, the status line, the launcher watch.

use std::ops::ControlFlow;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Runs a check every interval on a thread of its own until the check breaks or the
/// `Periodic` is dropped. Dropping it wakes the thread and waits for it, so a job that
/// ends is never held up by a sleeping check.
pub struct Periodic {
    running: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Periodic {
    /// Starts a thread named `name` that calls `check` every `every` (the first time
    /// after one interval) until it returns [`ControlFlow::Break`].
    pub fn start(
        name: &str,
        every: Duration,
        mut check: impl FnMut() -> ControlFlow<()> + Send + 'static,
    ) -> Self {
        let running = Arc::new(AtomicBool::new(true));
        let watching = Arc::clone(&running);
        let thread = std::thread::Builder::new()
            .name(name.to_owned())
            .spawn(move || {
                loop {
                    let due = Instant::now() + every;
                    // park_timeout may wake early: sleep until due or dropped.
                    while watching.load(Ordering::Relaxed) && Instant::now() < due {
                        std::thread::park_timeout(due.saturating_duration_since(Instant::now()));
                    }
                    if !watching.load(Ordering::Relaxed) || check().is_break() {
                        return;
                    }
                }
            })
            .ok();
        Periodic { running, thread }
    }
}

impl Drop for Periodic {
    fn drop(&mut self) {
        self.running.store(false, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            thread.thread().unpark();
            let _ = thread.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicU64;

    #[test]
    fn checks_until_it_breaks() {
        let calls = Arc::new(AtomicU64::new(0));
        let counted = Arc::clone(&calls);
        let (broke, on_break) = std::sync::mpsc::channel();
        let periodic = Periodic::start("test", Duration::from_millis(1), move || {
            match counted.fetch_add(1, Ordering::Relaxed) {
                0..4 => ControlFlow::Continue(()),
                _ => {
                    let _ = broke.send(());
                    ControlFlow::Break(())
                }
            }
        });
        on_break
            .recv_timeout(Duration::from_secs(60))
            .expect("the fifth check breaks");
        // A loop that went on after the break would make dozens of checks by now.
        std::thread::sleep(Duration::from_millis(50));
        drop(periodic);
        assert_eq!(calls.load(Ordering::Relaxed), 5);
    }

    #[test]
    fn dropping_it_does_not_wait_for_the_interval() {
        let periodic = Periodic::start("test", Duration::from_secs(3600), || {
            ControlFlow::Continue(())
        });
        let started = Instant::now();
        drop(periodic);
        assert!(started.elapsed() < Duration::from_secs(60));
    }
}
