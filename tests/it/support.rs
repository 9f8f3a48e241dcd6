//! Helpers shared by the end-to-end tests: the alert and dead-letter JSON lines as the
//! tests read them, running the binary, and RFC 3339 formatting written independently
//! of the product's.

use std::path::Path;
use std::process::{Command, Output};

use serde::Deserialize;

use crate::reference::RefAlert;

/// An alert JSON line: exactly the fields of docs/semantics.md §1 (any other field fails to parse).
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AlertLine {
    pub account_id: String,
    pub ts: u64,
    pub dt: String,
    pub small_ts: u64,
    pub small_dt: String,
    pub small_amount: f64,
    pub large_amount: f64,
}

impl AlertLine {
    /// The alert as the reference model writes it.
    pub fn as_ref_alert(&self) -> RefAlert {
        (
            self.account_id.clone(),
            self.ts,
            self.small_ts,
            self.small_amount.to_bits(),
            self.large_amount.to_bits(),
        )
    }

    /// Asserts that `dt` / `smallDt` are the RFC 3339 millisecond forms of `ts` / `smallTs`.
    pub fn assert_dates(&self) {
        assert_eq!(self.dt, rfc3339_millis(self.ts), "dt of {self:?}");
        assert_eq!(
            self.small_dt,
            rfc3339_millis(self.small_ts),
            "smallDt of {self:?}"
        );
    }
}

/// A dead-letter JSON line: the fields of docs/semantics.md §1 (any other field fails to parse).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeadLine {
    pub source: String,
    pub partition: u32,
    pub position: u64,
    #[serde(default)]
    pub line: Option<u64>,
    pub reason: String,
    pub detail: String,
    #[serde(default)]
    pub raw: Option<String>,
    #[serde(default)]
    pub raw_base64: Option<String>,
}

/// `ts` as `YYYY-MM-DDTHH:MM:SS.mmmZ`.
pub fn rfc3339_millis(ts: u64) -> String {
    let t = chrono::DateTime::from_timestamp_millis(i64::try_from(ts).expect("ts fits i64"))
        .expect("ts in chrono's range");
    t.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
}

/// Epoch milliseconds of an RFC 3339 time.
pub fn epoch_ms(rfc3339: &str) -> u64 {
    let t = chrono::DateTime::parse_from_rfc3339(rfc3339).expect("RFC 3339");
    u64::try_from(t.timestamp_millis()).expect("after 1970")
}

/// Parses every line of `text` (which must end each line with `\n`) as `T`.
pub fn parse_lines<T: serde::de::DeserializeOwned>(text: &str, what: &str) -> Vec<T> {
    assert!(
        text.is_empty() || text.ends_with('\n'),
        "{what}: the last line is not terminated"
    );
    text.lines()
        .map(|line| {
            serde_json::from_str(line)
                .unwrap_or_else(|e| panic!("{what}: bad JSON line {line:?}: {e}"))
        })
        .collect()
}

/// The JSON document at `path` (a run's `--report-json`, a bench's `--json`).
pub fn read_json(path: &Path) -> serde_json::Value {
    let text = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_slice(&text).unwrap_or_else(|e| panic!("{} is not JSON: {e}", path.display()))
}

/// Reads and parses the JSON lines file `path`.
pub fn read_lines<T: serde::de::DeserializeOwned>(path: &Path) -> Vec<T> {
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    parse_lines(&text, &path.display().to_string())
}

/// Reads the alerts file `path`, checks every line's dates, and returns the alerts
/// as sorted reference tuples.
pub fn read_alerts(path: &Path) -> Vec<RefAlert> {
    let lines: Vec<AlertLine> = read_lines(path);
    for alert in &lines {
        alert.assert_dates();
    }
    let mut alerts: Vec<RefAlert> = lines.iter().map(AlertLine::as_ref_alert).collect();
    alerts.sort();
    alerts
}

/// Runs the `tidelake` binary with `args` in `dir`.
pub fn tidelake(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tidelake"))
        .args(args)
        .current_dir(dir)
        .output()
        .expect("the tidelake binary runs")
}

/// Stdout and stderr of `output`, for assertion messages.
pub fn describe(output: &Output) -> String {
    format!(
        "status {:?}\n--- stdout (first 2000 bytes)\n{}\n--- stderr\n{}",
        output.status.code(),
        String::from_utf8_lossy(&output.stdout[..output.stdout.len().min(2000)]),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// Asserts that `output` exited with `code`.
pub fn assert_exit(output: &Output, code: i32) {
    assert_eq!(output.status.code(), Some(code), "{}", describe(output));
}

/// Decodes standard base64 (with padding), written here so the test does not share
/// the product's encoder.
pub fn base64_decode(text: &str) -> Vec<u8> {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let bytes = text.as_bytes();
    assert_eq!(bytes.len() % 4, 0, "base64 {text:?} is not padded");
    let mut out = Vec::new();
    for chunk in bytes.chunks(4) {
        let mut acc: u32 = 0;
        let mut pad = 0;
        for &c in chunk {
            acc <<= 6;
            if c == b'=' {
                pad += 1;
            } else {
                assert_eq!(pad, 0, "base64 {text:?}: data after padding");
                let v = ALPHABET
                    .iter()
                    .position(|&a| a == c)
                    .unwrap_or_else(|| panic!("base64 {text:?}: bad character {c}"));
                acc |= v as u32;
            }
        }
        let decoded = [(acc >> 16) as u8, (acc >> 8) as u8, acc as u8];
        out.extend_from_slice(&decoded[..3 - pad]);
    }
    out
}

#[test]
fn base64_decoder_decodes() {
    assert_eq!(base64_decode("/ywxLDI="), b"\xff,1,2");
    assert_eq!(base64_decode("YWI="), b"ab");
    assert_eq!(base64_decode("YQ=="), b"a");
    assert_eq!(base64_decode("YWJj"), b"abc");
    assert_eq!(
        rfc3339_millis(1_546_310_520_000),
        "2019-01-01T02:42:00.000Z"
    );
    assert_eq!(epoch_ms("2024-05-01T00:00:00Z"), 1_714_521_600_000);
}

/// An enriched row JSON line.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct EnrichedLine {
    pub account_id: String,
    pub ts: u64,
    pub amount: f64,
    pub alert: bool,
}

/// splitmix64: a small deterministic PRNG.
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.below(hi - lo + 1)
    }
}

/// Every file under `root` (a table's directory), by path relative to it, but those of
/// the put-if-absent probe's scratch directory `_tidelake/`.
pub fn files_under(root: &Path) -> std::collections::BTreeSet<String> {
    let mut files = std::collections::BTreeSet::new();
    let mut dirs = vec![root.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).expect("read the directory") {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                if !path.ends_with("_tidelake") {
                    dirs.push(path);
                }
            } else {
                let relative = path.strip_prefix(root).expect("under the root");
                files.insert(relative.display().to_string());
            }
        }
    }
    files
}

/// Sets the last modification of every JSON commit of the table at `table_dir` to
/// `days` ago (older than the log retention of 30 days, for 31 and more).
pub fn age_commits(table_dir: &Path, days: u64) {
    for entry in std::fs::read_dir(table_dir.join("_delta_log")).expect("log") {
        let path = entry.expect("entry").path();
        if path.extension().is_some_and(|e| e == "json") {
            set_age(&path, days);
        }
    }
}

/// Sets the last modification of the file at `path` to `days` ago.
pub fn set_age(path: &Path, days: u64) {
    let then = std::time::SystemTime::now() - std::time::Duration::from_secs(days * 24 * 3600);
    let file = std::fs::File::options()
        .write(true)
        .open(path)
        .expect("open");
    file.set_modified(then).expect("set mtime");
}

/// A port that was free on 127.0.0.1 a moment ago.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind((std::net::Ipv4Addr::LOCALHOST, 0))
        .and_then(|listener| listener.local_addr())
        .map(|addr| addr.port())
        .expect("bind 127.0.0.1:0 to find a free port")
}

/// `1234567` as `1,234,567`, as the summary writes counts.
pub fn group(n: usize) -> String {
    let digits: Vec<char> = n.to_string().chars().collect();
    let groups: Vec<String> = digits
        .rchunks(3)
        .rev()
        .map(|chunk| chunk.iter().collect())
        .collect();
    groups.join(",")
}
