//! Panics abort: a panicking timely worker thread would otherwise hang the whole job
//! (its peers wait for it forever), so a panic on a worker thread ends the process.
//!
//! A panic on one of timely's communication threads (`timely:recv-N`, `timely:send-N`)
//! means the connection to process N broke: N exited or was killed. That is reported as
//! such, naming the process, and the process exits with status 1.

use std::cell::Cell;
use std::sync::{Once, OnceLock};

thread_local! {
    static WORKER_THREAD: Cell<bool> = const { Cell::new(false) };
}

static INSTALL: Once = Once::new();

/// How the error line of a process that lost a peer begins.
pub const LOST_PEER: &str = "lost the connection to process";

/// The addresses of the cluster's processes, to name a lost peer.
static PEERS: OnceLock<Vec<String>> = OnceLock::new();

/// Records the cluster's addresses, so a broken connection names the peer's address.
pub fn name_cluster_peers(addresses: &[String]) {
    let _ = PEERS.set(addresses.to_vec());
}

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
            let thread = std::thread::current();
            if let Some(peer) = thread.name().and_then(peer_of_communication_thread) {
                let address = PEERS
                    .get()
                    .and_then(|p| p.get(peer))
                    .map(|a| format!(" ({a})"))
                    .unwrap_or_default();
                let cause = info
                    .payload()
                    .downcast_ref::<String>()
                    .map(String::as_str)
                    .or_else(|| info.payload().downcast_ref::<&str>().copied())
                    .unwrap_or("unknown cause");
                eprintln!(
                    "tidelake: error: {LOST_PEER} {peer}{address}: it exited, was killed or became unreachable ({cause}); stopping this process"
                );
                std::process::exit(1);
            }
            default(info);
            let timely_thread = thread.name().is_some_and(|n| n.starts_with("timely:"));
            if always || timely_thread || WORKER_THREAD.with(Cell::get) {
                eprintln!("tidelake: a worker thread panicked; aborting the process so no peer waits for it");
                std::process::abort();
            }
        }));
    });
}

/// The peer process of a `timely:recv-N` or `timely:send-N` thread.
fn peer_of_communication_thread(name: &str) -> Option<usize> {
    name.strip_prefix("timely:recv-")
        .or_else(|| name.strip_prefix("timely:send-"))
        .and_then(|n| n.parse().ok())
}

#[cfg(test)]
mod tests {
    use super::peer_of_communication_thread;

    #[test]
    fn communication_threads_name_their_peer() {
        assert_eq!(peer_of_communication_thread("timely:recv-3"), Some(3));
        assert_eq!(peer_of_communication_thread("timely:send-0"), Some(0));
        assert_eq!(peer_of_communication_thread("timely:work-0"), None);
        assert_eq!(peer_of_communication_thread("main"), None);
    }
}
