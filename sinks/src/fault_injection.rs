//! A test hook of debug builds: `TIDELAKE_TEST_PAUSE=<point>:<n>` makes the process
//! stop for a minute the `n`-th time (from 1) it reaches `<point>`, after saying so on
//! stderr (`tidelake-test: paused at <point> <n>`), so that a test can `kill -9` it at
//! exactly that moment. The points:
//!
//! - `commit`: a Delta sink has uploaded an epoch's data files and not yet written its
//!   log entry;
//! - `manifest`: every part of a checkpoint is written and its manifest is not;
//! - `ingest-commit`: `tidelake ingest` has uploaded a commit's data files and not
//!   yet written its log entry;
//! - `ingest-segment`: an ingest commit is in the log and its segment of loaded files
//!   is not written yet.
//!
//! Release builds ignore it.

/// The environment variable of the hook.
pub const PAUSE_VARIABLE: &str = "TIDELAKE_TEST_PAUSE";

/// Stops for a minute if [`PAUSE_VARIABLE`] asks for this arrival at `point`.
pub fn pause_if_asked(point: &str) {
    #[cfg(debug_assertions)]
    {
        use std::collections::HashMap;
        use std::io::Write;
        use std::sync::{LazyLock, Mutex};

        static ASKED: LazyLock<Option<(String, u64)>> = LazyLock::new(|| {
            let value = std::env::var(PAUSE_VARIABLE).ok()?;
            let (point, n) = value.split_once(':')?;
            Some((point.to_owned(), n.parse().ok()?))
        });
        static ARRIVALS: LazyLock<Mutex<HashMap<String, u64>>> = LazyLock::new(Default::default);

        let Some((asked, n)) = ASKED.as_ref() else {
            return;
        };
        if asked != point {
            return;
        }
        let arrival = {
            let mut arrivals = ARRIVALS.lock().unwrap_or_else(|e| e.into_inner());
            let count = arrivals.entry(point.to_owned()).or_default();
            *count += 1;
            *count
        };
        if arrival == *n {
            let _ = writeln!(std::io::stderr(), "tidelake-test: paused at {point} {n}");
            std::thread::sleep(std::time::Duration::from_secs(60));
        }
    }
    #[cfg(not(debug_assertions))]
    let _ = point;
}
