//! Monitoring through the binary: `/metrics` scraped during and after a run and parsed
//! by the `prometheus_client` package's parser, its counters equal to the run's report;
//! `/healthz` and `/readyz`; the live page in headless Chromium (Debian's package),
//! showing the numbers `/metrics` gives; each process of a launched cluster serving its
//! own figures; JSON log lines; and the bench's and `table files`' SVG charts.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::python::{MetricsRead, Python};
use crate::support::{DeadLine, assert_exit, describe, free_port, read_lines, tidelake};

/// A GET of `path` on `address`: the status code and body, or `None` when nothing
/// answers.
fn get(address: &str, path: &str) -> Option<(u16, String)> {
    let mut stream = TcpStream::connect(address).ok()?;
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .ok()?;
    write!(stream, "GET {path} HTTP/1.1\r\nHost: {address}\r\n\r\n").ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    let (head, body) = response.split_once("\r\n\r\n")?;
    let status = head.split_whitespace().nth(1)?.parse().ok()?;
    Some((status, body.to_owned()))
}

/// Waits (at most 60 s) until `path` on `address` answers `status`.
fn wait_for(address: &str, path: &str, status: u16) -> String {
    let started = Instant::now();
    loop {
        if let Some((got, body)) = get(address, path)
            && got == status
        {
            return body;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "{path} on {address} never answered {status}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Kills the child if the test ends before it does.
struct Running(Option<Child>);

impl Running {
    fn interrupt_and_wait(mut self) -> std::process::Output {
        let child = self.0.take().expect("running");
        let _ = Command::new("kill")
            .args(["-INT", &child.id().to_string()])
            .status();
        child.wait_with_output().expect("wait")
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(mut child) = self.0.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Every metric the issue names, by family (suffix-less) name.
const FAMILIES: [&str; 22] = [
    "tidelake_records_read",
    "tidelake_records_accepted",
    "tidelake_dead_letters",
    "tidelake_blank_lines",
    "tidelake_alerts",
    "tidelake_rule_state_keys",
    "tidelake_rule_state_bytes",
    "tidelake_records_in_flight",
    "tidelake_commits",
    "tidelake_commit_attempts",
    "tidelake_commit_conflicts",
    "tidelake_commit_latency_seconds",
    "tidelake_rows_committed",
    "tidelake_files_written",
    "tidelake_bytes_written",
    "tidelake_epochs_skipped",
    "tidelake_partition_watermark_milliseconds",
    "tidelake_partition_watermark_lag_seconds",
    "tidelake_compactions",
    "tidelake_compacted_files_removed",
    "tidelake_ready",
    "tidelake_process_resident_memory_bytes",
];

fn scrape(python: &Python, address: &str) -> MetricsRead {
    let (status, body) = get(address, "/metrics").expect("/metrics answers");
    assert_eq!(status, 200, "{body}");
    python.parse_metrics(&body)
}

/// The page, rendered by headless Chromium once its script has run: its DOM.
pub(crate) fn chromium(dir: &Path, url: &str, screenshot: &Path) -> String {
    let binary = std::env::var("TIDELAKE_CHROMIUM").unwrap_or_else(|_| "chromium".into());
    let run = |extra: &[String]| {
        Command::new(&binary)
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-dev-shm-usage",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
                "--virtual-time-budget=5000",
                "--window-size=1300,2200",
            ])
            .arg(format!(
                "--user-data-dir={}",
                dir.join("chromium").display()
            ))
            .args(extra)
            .arg(url)
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|e| panic!("cannot run {binary}: {e} (scripts/test.sh installs it)"))
    };
    let shot = run(&[format!("--screenshot={}", screenshot.display())]);
    assert!(shot.status.success(), "{}", describe(&shot));
    let dom = run(&["--dump-dom".to_owned()]);
    assert!(dom.status.success(), "{}", describe(&dom));
    String::from_utf8_lossy(&dom.stdout).into_owned()
}

/// The `data-value` of the element with `id` in `dom`.
fn value_of(dom: &str, id: &str) -> u64 {
    let start = dom
        .find(&format!("id=\"{id}\""))
        .unwrap_or_else(|| panic!("no #{id} in the page:\n{dom}"));
    let element = &dom[start..dom[start..].find('>').map_or(dom.len(), |e| start + e)];
    let value = element
        .split("data-value=\"")
        .nth(1)
        .and_then(|v| v.split('"').next())
        .unwrap_or_else(|| panic!("#{id} has no value yet: {element}"));
    value.parse().unwrap_or_else(|_| panic!("#{id}: {value}"))
}

#[test]
fn metrics_health_and_the_page_match_the_run() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let python = Python::find();
    let address = format!("127.0.0.1:{}", free_port());
    // 150 000 transactions at 50 000/s, out of order by up to 2 s with no tolerance
    // (so some are late), committed every second of event time.
    let child = Command::new(env!("CARGO_BIN_EXE_tidelake"))
        .args([
            "run",
            "--count",
            "150000",
            "--rate",
            "50000",
            "--workers",
            "2",
            "--density",
            "20000",
            "--disorder",
            "2s",
            "--start",
            "2024-05-01T00:00:00Z",
            "--commit-interval",
            "1s",
            "--table",
            "t",
            "--job-id",
            "mon",
            "--auto-compact",
            "--auto-compact-every",
            "4",
            "--alerts",
            "alerts.jsonl",
            "--dead-letters",
            "dead.jsonl",
            "--report-json",
            "report.json",
            "--quiet",
            "--metrics-linger",
            "120s",
            "--metrics-addr",
        ])
        .arg(&address)
        .current_dir(d)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the tidelake binary runs");
    let running = Running(Some(child));

    // While it runs: ready, healthy, and every metric there.
    wait_for(&address, "/readyz", 200);
    assert_eq!(get(&address, "/healthz").map(|r| r.0), Some(200));
    let during = scrape(&python, &address);
    for family in FAMILIES {
        assert!(
            during.families.contains_key(family),
            "{family} missing from {:?}",
            during.families.keys()
        );
    }
    assert_eq!(
        during.families["tidelake_commit_latency_seconds"],
        "histogram"
    );
    assert_eq!(during.sum("tidelake_ready", &[]), 1.0);

    // Once the job has ended (its report is written before it lingers): the final
    // counters equal the report, the dead letters and the table.
    let started = Instant::now();
    while !d.join("report.json").is_file() {
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "the job never ended"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(d.join("report.json")).expect("report"))
            .expect("JSON");
    let totals = &report["totals"];
    let total = |k: &str| {
        totals[k]
            .as_u64()
            .unwrap_or_else(|| panic!("{k} in {totals}")) as f64
    };
    let after = scrape(&python, &address);
    let job = [("job", "mon"), ("process", "0")];
    assert_eq!(
        after.sum("tidelake_records_accepted_total", &job),
        total("events")
    );
    assert_eq!(
        after.sum("tidelake_records_accepted_total", &[]),
        150_000.0 - total("dead_letters")
    );
    assert_eq!(after.sum("tidelake_records_read_total", &[]), 150_000.0);
    assert_eq!(
        after.sum("tidelake_dead_letters_total", &[]),
        total("dead_letters")
    );
    let dead: Vec<DeadLine> = read_lines(&d.join("dead.jsonl"));
    let late = dead.iter().filter(|l| l.reason == "late").count() as f64;
    assert!(late > 0.0, "no late records: not a meaningful check");
    assert_eq!(
        after.sum("tidelake_dead_letters_total", &[("reason", "late")]),
        late
    );
    assert_eq!(after.sum("tidelake_alerts_total", &[]), total("alerts"));
    assert_eq!(after.sum("tidelake_commits_total", &[]), total("commits"));
    assert_eq!(
        after.sum("tidelake_files_written_total", &[]),
        total("files")
    );
    assert_eq!(
        after.sum("tidelake_bytes_written_total", &[]),
        total("bytes")
    );
    assert_eq!(
        after.sum("tidelake_commit_latency_seconds_count", &[]),
        total("commits")
    );
    assert!(after.sum("tidelake_commit_attempts_total", &[]) >= total("commits"));
    let rows = python
        .read(&d.join("t").display().to_string(), &[])
        .rows
        .len() as f64;
    assert_eq!(after.sum("tidelake_rows_committed_total", &[]), rows);
    assert_eq!(
        after
            .named("tidelake_partition_watermark_milliseconds")
            .len(),
        16
    );
    let workers: Vec<&str> = after
        .named("tidelake_records_accepted_total")
        .iter()
        .map(|s| s.labels["worker"].as_str())
        .collect();
    assert_eq!(workers, ["0", "1"]);
    assert!(after.sum("tidelake_process_resident_memory_bytes", &[]) > 1e6);
    assert!(after.sum("tidelake_compactions_total", &[("table", "t")]) >= 1.0);
    // Ended: alive, no longer ready.
    assert_eq!(get(&address, "/healthz").map(|r| r.0), Some(200));
    assert_eq!(get(&address, "/readyz").map(|r| r.0), Some(503));
    assert_eq!(get(&address, "/nope").map(|r| r.0), Some(404));

    // The page, in headless Chromium, shows the numbers /metrics gives.
    let screenshot = d.join("page.png");
    let dom = chromium(d, &format!("http://{address}/"), &screenshot);
    assert!(
        dom.contains("data-loaded=\"true\""),
        "the page's script did not run:\n{dom}"
    );
    for (id, metric) in [
        ("events", "tidelake_records_accepted_total"),
        ("alerts", "tidelake_alerts_total"),
        ("dead", "tidelake_dead_letters_total"),
        ("commits", "tidelake_commits_total"),
        ("files", "tidelake_files_written_total"),
    ] {
        assert_eq!(value_of(&dom, id) as f64, after.sum(metric, &[]), "#{id}");
    }
    assert!(
        dom.contains("FraudDetector") && dom.contains("TransactionsTable"),
        "{dom}"
    );
    let image = &python.images(&[&screenshot])[0];
    assert_eq!((image.kind.as_str(), image.width), ("png", 1300));

    // Ctrl-C ends the lingering.
    let output = running.interrupt_and_wait();
    assert_exit(&output, 0);
}

#[test]
fn each_launched_process_serves_its_own_figures() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let python = Python::find();
    let child = Command::new(env!("CARGO_BIN_EXE_tidelake"))
        .args([
            "launch",
            "--processes",
            "2",
            "--workers",
            "1",
            "--count",
            "40000",
            "--start",
            "0",
            "--no-table",
            "--alerts",
            "alerts.jsonl",
            "--quiet",
            "--metrics-addr",
            "127.0.0.1:0",
            "--metrics-linger",
            "120s",
            "--report-json",
            "report.json",
        ])
        .current_dir(d)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("runs");
    let mut running = Running(Some(child));
    // The launcher names each process's metrics address.
    let stderr = running
        .0
        .as_mut()
        .and_then(|c| c.stderr.take())
        .expect("stderr");
    let mut lines = std::io::BufRead::lines(std::io::BufReader::new(stderr));
    let mut addresses = Vec::new();
    while addresses.len() < 2 {
        let line = lines.next().expect("a line").expect("text");
        // The launcher's own lines, not a process's "serving metrics on …".
        if !line.starts_with("tidelake launch: process ") {
            continue;
        }
        if let Some(rest) = line.split("metrics on http://").nth(1) {
            addresses.push(rest.trim_end_matches("/metrics").to_owned());
        }
    }
    let mut events = 0.0;
    for (process, address) in addresses.iter().enumerate() {
        let process = process.to_string();
        // Each process's figures are final once it has nothing in flight (the process
        // may not listen yet when the launcher names its address).
        let metrics = loop {
            wait_for(address, "/metrics", 200);
            let m = scrape(&python, address);
            if m.sum("tidelake_records_in_flight", &[]) == -1.0 {
                break m;
            }
            std::thread::sleep(Duration::from_millis(100));
        };
        let series = metrics.named("tidelake_records_accepted_total");
        assert_eq!(series.len(), 1, "one worker per process");
        assert_eq!(series[0].labels["process"], process);
        assert_eq!(
            series[0].labels["worker"], process,
            "the global worker index"
        );
        events += series[0].value;
    }
    assert_eq!(events, 40_000.0);
    std::thread::spawn(move || for _ in lines {});
    let output = running.interrupt_and_wait();
    assert_exit(&output, 0);
}

#[test]
fn json_logs_are_json_lines_with_level_target_message_and_fields() {
    let dir = tempfile::tempdir().expect("tempdir");
    let output = Command::new(env!("CARGO_BIN_EXE_tidelake"))
        .args([
            "--log-format",
            "json",
            "run",
            "--count",
            "20000",
            "--start",
            "0",
            "--commit-interval",
            "1s",
            "--table",
            "t",
            "--alerts",
            "alerts.jsonl",
        ])
        .env("RUST_LOG", "info,tidelake_sinks=debug")
        .current_dir(dir.path())
        .output()
        .expect("runs");
    assert_exit(&output, 0);
    let stderr = String::from_utf8_lossy(&output.stderr);
    let events: Vec<serde_json::Value> = stderr
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    for event in &events {
        for key in ["timestamp", "level", "target", "message"] {
            assert!(event.get(key).is_some(), "{key} missing in {event}");
        }
    }
    let commits: Vec<&serde_json::Value> = events
        .iter()
        .filter(|e| e["level"] == "DEBUG" && e["target"] == "tidelake_sinks::delta::files::commit")
        .collect();
    assert!(!commits.is_empty(), "no commit at debug level in\n{stderr}");
    assert!(
        commits
            .iter()
            .all(|c| c["epoch"].is_u64() && c["version"].is_u64())
    );
    assert!(
        events.iter().any(|e| e["target"] == "tidelake::summary"
            && e["message"]
                .as_str()
                .is_some_and(|m| m.contains("20,000 events"))),
        "{stderr}"
    );
    // An error is a JSON line too.
    let output = tidelake(
        dir.path(),
        &[
            "--log-format",
            "json",
            "run",
            "--source",
            "csv",
            "--input",
            "missing.csv",
        ],
    );
    assert_exit(&output, 2);
    let error: serde_json::Value =
        serde_json::from_str(String::from_utf8_lossy(&output.stderr).trim()).expect("JSON");
    assert_eq!(error["level"], "ERROR");
    assert!(
        error["message"]
            .as_str()
            .is_some_and(|m| m.contains("missing.csv"))
    );
}

#[test]
fn the_bench_and_table_files_draw_svg_charts() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let output = tidelake(
        d,
        &[
            "bench",
            "--events",
            "20000",
            "--accounts",
            "500",
            "--sink",
            "delta",
            "--latency-rate",
            "20000",
            "--latency-duration",
            "1s",
            "--json",
            "bench.json",
            "--keep",
            "--dir",
            ".",
            "--plot",
            "plots",
        ],
    );
    assert_exit(&output, 0);
    let output = tidelake(
        d,
        &[
            "bench",
            "--events",
            "20000",
            "--sink",
            "null",
            "--scaling",
            "--json",
            "scaling.json",
            "--plot",
            "plots",
        ],
    );
    assert_exit(&output, 0);
    let bench: serde_json::Value =
        serde_json::from_slice(&std::fs::read(d.join("bench.json")).expect("json")).expect("JSON");
    let table = Path::new(bench["dir"].as_str().expect("kept")).join("throughput/transactions");
    let output = tidelake(
        d,
        &[
            "table",
            "files",
            &table.display().to_string(),
            "--plot",
            "plots/files.svg",
        ],
    );
    assert_exit(&output, 0);
    let plots = d.join("plots");
    let files =
        ["scaling.svg", "throughput.svg", "latency.svg", "files.svg"].map(|f| plots.join(f));
    let images = Python::find().images(&files.each_ref().map(|f| f.as_path()));
    for (file, image) in files.iter().zip(&images) {
        assert_eq!(image.kind, "svg", "{}", file.display());
        assert!(image.width >= 700 && image.height >= 400, "{image:?}");
        assert!(image.elements > 20, "{}: {image:?}", file.display());
    }
    // The charts name what they show.
    let scaling = std::fs::read_to_string(&files[0]).expect("svg");
    assert!(
        scaling.contains("2 × 1") && scaling.contains("M events/s"),
        "{scaling}"
    );
}
