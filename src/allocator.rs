//! The memory allocator's settings for the whole process.
//!
//! glibc's malloc raises its mmap threshold (up to 32 MiB) each time a block it had
//! mapped on its own is freed. From then on, buffers of a few MiB (files being encoded,
//! compaction's reads) come from the threads' heaps, which fragment and are seldom given
//! back: over 100 M events into a table, the process's resident memory grew from about
//! 200 MB to over 400 MB. A fixed threshold keeps it flat (BENCHMARKS.md, "Growth over
//! 100 M events").

/// Blocks of this size or larger are mapped on their own, and unmapped when freed.
const MMAP_THRESHOLD: usize = 4 << 20;

/// Fixes glibc's mmap threshold at [`MMAP_THRESHOLD`], unless `MALLOC_MMAP_THRESHOLD_`
/// sets it already; on other C libraries, does nothing. Called first in `main`, before
/// any other thread starts.
pub fn fix_mmap_threshold() {
    if std::env::var_os("MALLOC_MMAP_THRESHOLD_").is_some() {
        return;
    }
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    #[allow(unsafe_code)]
    // SAFETY: mallopt only sets a parameter of the allocator, and no other thread runs
    // yet; a value it rejects (it returns 0) leaves the default in place.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD as libc::c_int);
    }
}
