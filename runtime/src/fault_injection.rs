//! A test hook of debug builds: `TIDELAKE_TEST_PANIC=W:N` makes global worker `W` panic
//! once it has read `N` records, so tests can check that a panicking worker ends its
//! process and the cluster fails instead of hanging. Release builds ignore it.

use timely::dataflow::StreamVec;

/// The environment variable of the hook.
pub const PANIC_VARIABLE: &str = "TIDELAKE_TEST_PANIC";

/// Passes `stream` through; on a debug build, panics on global worker `worker` as
/// [`PANIC_VARIABLE`] asks.
pub fn panic_if_asked<'s, D: Clone + 'static>(
    stream: StreamVec<'s, u64, D>,
    worker: usize,
) -> StreamVec<'s, u64, D> {
    #[cfg(debug_assertions)]
    if let Some(after) = panic_after(worker) {
        use timely::dataflow::operators::Inspect;
        let mut seen = 0u64;
        return stream.inspect_core(move |event| {
            if let Ok((_, batch)) = event {
                seen += batch.len() as u64;
                assert!(
                    seen < after,
                    "{PANIC_VARIABLE}: worker {worker} panics after {after} records, as asked"
                );
            }
        });
    }
    let _ = worker;
    stream
}

/// The record count after which `worker` is to panic, if the variable names it.
#[cfg(debug_assertions)]
fn panic_after(worker: usize) -> Option<u64> {
    let value = std::env::var(PANIC_VARIABLE).ok()?;
    let (w, n) = value.split_once(':')?;
    (w.parse::<usize>().ok()? == worker).then_some(n.parse().ok()?)
}
