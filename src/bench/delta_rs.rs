//! Timing delta-rs opening a table: one Python process (`--delta-rs PYTHON`, with the
//! `deltalake` package) kept for the whole bench: the writers scenario asks it once per
//! simulated hour, the growth scenario once after its run.

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};

use anyhow::{Context, bail};
use serde::{Deserialize, Serialize};

/// Reads a table URL per line and answers with one JSON line: the time
/// `DeltaTable(url)` plus listing its files took, the version and the file count. S3
/// settings come from the environment, as tidelake reads them.
const PROGRAM: &str = r#"
import json, os, sys, time
from deltalake import DeltaTable

def storage_options():
    options = {}
    for key, names in [
        ("AWS_ENDPOINT_URL", ("AWS_ENDPOINT", "AWS_ENDPOINT_URL")),
        ("AWS_ALLOW_HTTP", ("AWS_ALLOW_HTTP",)),
        ("AWS_ACCESS_KEY_ID", ("AWS_ACCESS_KEY_ID",)),
        ("AWS_SECRET_ACCESS_KEY", ("AWS_SECRET_ACCESS_KEY",)),
        ("AWS_REGION", ("AWS_REGION", "AWS_DEFAULT_REGION")),
    ]:
        for name in names:
            if os.environ.get(name):
                options[key] = os.environ[name]
                break
    return options

print(json.dumps({"ready": True}), flush=True)
for line in sys.stdin:
    url = line.strip()
    options = storage_options() if url.startswith("s3://") else None
    started = time.perf_counter()
    table = DeltaTable(url, storage_options=options)
    files = len(table.file_uris())
    ms = (time.perf_counter() - started) * 1000
    print(json.dumps({"ms": ms, "version": table.version(), "files": files}), flush=True)
"#;

/// What delta-rs said when it opened the table.
#[derive(Clone, Copy, Debug, Deserialize, Serialize)]
pub struct Opened {
    /// Opening the table and listing its files, in ms.
    pub ms: f64,
    /// The version it opened.
    pub version: u64,
    /// Its live files.
    pub files: u64,
}

/// The Python process that opens tables with delta-rs; killed on drop.
pub struct DeltaRsOpener {
    child: Child,
    input: ChildStdin,
    output: BufReader<ChildStdout>,
}

impl DeltaRsOpener {
    /// Starts `python` on the program and waits until it has imported `deltalake`.
    pub fn start(python: &Path) -> anyhow::Result<DeltaRsOpener> {
        let mut child = Command::new(python)
            .args(["-c", PROGRAM])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .with_context(|| format!("cannot run {}", python.display()))?;
        let (Some(input), Some(output)) = (child.stdin.take(), child.stdout.take()) else {
            bail!("{}: no pipes to talk to it", python.display());
        };
        let mut opener = DeltaRsOpener {
            child,
            input,
            output: BufReader::new(output),
        };
        opener
            .answer()
            .with_context(|| format!("{} cannot import deltalake", python.display()))?;
        Ok(opener)
    }

    /// Opens the table at `url` with delta-rs.
    pub fn open(&mut self, url: &str) -> anyhow::Result<Opened> {
        writeln!(self.input, "{url}").context("cannot talk to the delta-rs process")?;
        self.input.flush()?;
        let answer = self
            .answer()
            .with_context(|| format!("delta-rs cannot open {url}"))?;
        Ok(serde_json::from_str(&answer)?)
    }

    fn answer(&mut self) -> anyhow::Result<String> {
        let mut line = String::new();
        if self.output.read_line(&mut line)? == 0 {
            bail!("it exited (its error is above)");
        }
        Ok(line)
    }
}

impl Drop for DeltaRsOpener {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
