//! Panics abort: a panicking timely worker thread would otherwise hang the whole job
//! (its peers wait for it forever), so a panic on a worker thread ends the process.

use std::cell::Cell;
use std::sync::Once;

thread_local! {
    static WORKER_THREAD: Cell<bool> = const { Cell::new(false) };
}

static INSTALL: Once = Once::new();

/// Installs a panic hook that prints the panic and aborts the process when the
/// panicking thread is a timely thread (a worker marked with [`mark_worker_thread`], or
/// one of timely's own `timely:` communication threads). Other threads (a test's own
/// assertions, for instance) panic as usual. Idempotent.
pub fn abort_on_worker_panic() {
    install(false);
}

/// Installs a panic hook that prints the panic and aborts the process, whatever thread
/// panics. For binaries. Idempotent with [`abort_on_worker_panic`]: the first call wins.
pub fn abort_on_any_panic() {
    install(true);
}

/// Marks the current thread as a timely worker for [`abort_on_worker_panic`].
pub fn mark_worker_thread() {
    WORKER_THREAD.with(|w| w.set(true));
}

fn install(always: bool) {
    INSTALL.call_once(|| {
        let default = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            default(info);
            let timely_thread = std::thread::current().name().is_some_and(|n| n.starts_with("timely:"));
            if always || timely_thread || WORKER_THREAD.with(Cell::get) {
                eprintln!("tidelake: a worker thread panicked; aborting the process so no peer waits for it");
                std::process::abort();
            }
        }));
    });
}
