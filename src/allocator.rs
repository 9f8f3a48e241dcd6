//! The memory allocator's settings for the whole process.
//!
//! glibc's malloc adjusts its mmap threshold as it goes: each time a block it had mapped
//! on its own is freed, the threshold rises to that block's size (up to 32 MiB) and the
//! trim threshold, below which a heap keeps its free top, to twice that. Over 100 M
//! events into a table, the threads' heaps then kept what they had freed: the process's
//! resident memory grew from about 200 MB to over 400 MB. Setting the threshold turns the
//! adjustment off, so heaps give back their free tops at the default trim threshold
//! (BENCHMARKS.md, "Growth over 100 M events"). At 32 MiB, the most glibc would raise it
//! to, buffers of a few MiB allocated every tick still come from the heaps: at 4 MiB each
//! was mapped and unmapped again, and a dense CSV replay took 1.3 times as long.

/// Blocks of this size or larger are mapped on their own, and unmapped when freed.
const MMAP_THRESHOLD: usize = 32 << 20;

/// Sets glibc's mmap threshold to [`MMAP_THRESHOLD`], unless `MALLOC_MMAP_THRESHOLD_`
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
