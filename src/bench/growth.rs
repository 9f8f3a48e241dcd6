//! `tidelake bench --scenario growth`: one long throughput run of the fraud job on the
//! generator (the fraud scenario's sink and flags), watched through its own Prometheus
//! metrics (`--metrics-addr`, read every [`SCRAPE_EVERY`]). The run is cut into
//! `--samples` equal stretches of `--events`; each stretch gets its events/s and, at
//! its end, the process's RSS, the rule state and the rows committed. Then delta-rs
//! opens the table the run wrote (`--delta-rs`). It shows whether a long run stays as
//! fast and as small as a short one (BENCHMARKS.md, "Growth").

use std::ffi::OsString;
use std::fmt::Write as _;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{ChildStderr, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde::Serialize;

use super::delta_rs::{DeltaRsOpener, Opened};
use super::output::{Settings, ThroughputResult};
use super::{BenchArgs, SinkKind, subdir, work_dir, write_results};
use crate::plot::{Line, lines};
use crate::status::group;

/// How often the run's metrics are read.
const SCRAPE_EVERY: Duration = Duration::from_millis(100);
/// The line of the job's stderr that gives its metrics address (`--metrics-addr`).
const SERVING: &str = "serving metrics on http://";

/// The growth scenario's results, as `--json` writes them.
#[derive(Debug, Serialize)]
pub struct GrowthReport {
    /// The tidelake version measured.
    pub version: &'static str,
    /// The workload.
    pub settings: Settings,
    /// One row per stretch of the run, in order.
    pub stretches: Vec<Stretch>,
    /// The whole run, from its report.
    pub run: ThroughputResult,
    /// delta-rs opening the table after the run (`--delta-rs`, Delta sink).
    pub delta_rs: Option<Opened>,
    /// The kept temporary directory (`--keep`).
    pub dir: Option<String>,
}

/// One stretch of the run: from the end of the one before to the first reading of the
/// metrics at or past its end (so stretches are about, not exactly, `--events /
/// --samples` long), or to the process's exit for the last one, which then includes
/// the final commit.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Stretch {
    /// Records read by its end.
    pub events: u64,
    /// Its end, in seconds since the process was started.
    pub elapsed_secs: f64,
    /// Records per second over the stretch.
    pub events_per_second: f64,
    /// The process's resident set size at its end (the last reading), in bytes.
    pub rss_bytes: u64,
    /// Bytes of rule state of all workers at its end (the last reading).
    pub state_bytes: u64,
    /// Rows committed to the table by its end (the last reading).
    pub rows_committed: u64,
}

/// Runs the growth scenario: prints the table and writes the JSON.
pub fn run(args: &BenchArgs) -> anyhow::Result<()> {
    if args.processes != 1 {
        bail!(
            "--scenario growth runs one process (--processes 1): it reads that process's metrics"
        );
    }
    if args.input.is_some() {
        bail!("--scenario growth reads the generator (--events, --accounts), not --input");
    }
    if args.samples == 0 || args.samples > args.events {
        bail!("--samples must be at least 1 and at most --events");
    }
    let work = work_dir(args, "tidelake-bench-")?;
    let dir = subdir(work.path(), "growth")?;
    let mut flags = args.source_flags();
    flags.extend(args.common_flags(args.workers, &args.throughput_tick(), &dir));
    flags.extend(["--metrics-addr", "127.0.0.1:0"].map(OsString::from));
    let (stretches, report) = watch(args, &flags, &dir)?;
    let delta_rs = match (&args.delta_rs, args.sink) {
        (Some(python), SinkKind::Delta) => {
            let table = dir.join("transactions");
            Some(DeltaRsOpener::start(python)?.open(&table.to_string_lossy())?)
        }
        _ => None,
    };
    let report = GrowthReport {
        version: env!("CARGO_PKG_VERSION"),
        settings: Settings::of(args),
        stretches,
        run: ThroughputResult::new(&report),
        delta_rs,
        dir: args.keep.then(|| work.path().display().to_string()),
    };
    write_results(args, &report.table(), &report)?;
    if let Some(dir) = &args.plot {
        plot(&report, dir)?;
    }
    Ok(())
}

/// Runs the job with `flags` and reads its metrics until it exits: the stretches and
/// the job's report.
fn watch(
    args: &BenchArgs,
    flags: &[OsString],
    dir: &Path,
) -> anyhow::Result<(Vec<Stretch>, tidelake_runtime::report::ClusterReport)> {
    let report_path = dir.join("report.json");
    let started = Instant::now();
    let mut child = super::job_command(flags, 1, &report_path)?
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .context("cannot start tidelake")?;
    let stderr = child.stderr.take().context("no stderr of the run")?;
    let (address, reader) = read_stderr(stderr);
    let address = loop {
        match address.recv_timeout(SCRAPE_EVERY) {
            Ok(address) => break Some(address),
            Err(RecvTimeoutError::Disconnected) => break None,
            Err(RecvTimeoutError::Timeout) if child.try_wait()?.is_some() => break None,
            Err(RecvTimeoutError::Timeout) => {}
        }
    };
    let step = args.events.div_ceil(args.samples).max(1);
    let mut stretches: Vec<Stretch> = Vec::new();
    let mut last = Reading::default();
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break status;
        }
        if let Some(reading) = address.as_deref().and_then(|a| Reading::scrape(a).ok()) {
            last = reading;
            let ended = stretches.last().map_or(0, |s| s.events / step);
            if last.events / step > ended && last.events < args.events {
                stretches.push(last.stretch(started.elapsed(), stretches.last()));
            }
        }
        std::thread::sleep(SCRAPE_EVERY);
    };
    let elapsed = started.elapsed();
    let stderr = reader.join().unwrap_or_default();
    if !status.success() {
        return Err(super::run_failed(flags, 1, status, &stderr));
    }
    if address.is_none() {
        bail!("the run never said where it serves its metrics:\n{stderr}");
    }
    let report = super::read_report(&report_path, 1)?;
    last.events = report.totals.events;
    stretches.push(last.stretch(elapsed, stretches.last()));
    Ok((stretches, report))
}

/// Reads the job's stderr on a thread until it closes: sends the metrics address as
/// soon as the job prints it, and returns all of the text (for an error).
fn read_stderr(stderr: ChildStderr) -> (Receiver<String>, JoinHandle<String>) {
    let (sender, receiver) = std::sync::mpsc::channel();
    let thread = std::thread::spawn(move || {
        let mut text = String::new();
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if let Some(at) = line.find(SERVING) {
                let rest = &line[at + SERVING.len()..];
                let address = rest.split('/').next().unwrap_or(rest);
                let _ = sender.send(address.to_owned());
            }
            text.push_str(&line);
            text.push('\n');
        }
        text
    });
    (receiver, thread)
}

/// The figures of one reading of `/metrics`, summed over the workers.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
struct Reading {
    events: u64,
    rss_bytes: u64,
    state_bytes: u64,
    rows_committed: u64,
}

impl Reading {
    /// Reads `http://address/metrics`.
    fn scrape(address: &str) -> std::io::Result<Reading> {
        let mut stream = TcpStream::connect(address)?;
        stream.set_read_timeout(Some(Duration::from_secs(2)))?;
        write!(
            stream,
            "GET /metrics HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n\r\n"
        )?;
        let mut response = String::new();
        stream.read_to_string(&mut response)?;
        if !response.starts_with("HTTP/1.1 200") {
            return Err(std::io::Error::other("the metrics page did not answer 200"));
        }
        Ok(Reading::parse(&response))
    }

    /// The figures of Prometheus text `text`: each sample line is `name{labels} value`.
    fn parse(text: &str) -> Reading {
        let mut reading = Reading::default();
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            let name = line.split(['{', ' ']).next().unwrap_or_default();
            let Some(value) = line.rsplit(' ').next().and_then(|v| v.parse::<f64>().ok()) else {
                continue;
            };
            let value = value as u64;
            match name {
                "tidelake_records_read_total" => reading.events += value,
                "tidelake_process_resident_memory_bytes" => reading.rss_bytes = value,
                "tidelake_rule_state_bytes" => reading.state_bytes += value,
                "tidelake_rows_committed_total" => reading.rows_committed += value,
                _ => {}
            }
        }
        reading
    }

    /// The stretch that ends with this reading at `elapsed`, after `before`.
    fn stretch(&self, elapsed: Duration, before: Option<&Stretch>) -> Stretch {
        let (events, secs) = before.map_or((0, 0.0), |b| (b.events, b.elapsed_secs));
        let elapsed_secs = elapsed.as_secs_f64();
        Stretch {
            events: self.events,
            elapsed_secs,
            events_per_second: self.events.saturating_sub(events) as f64
                / (elapsed_secs - secs).max(1e-9),
            rss_bytes: self.rss_bytes,
            state_bytes: self.state_bytes,
            rows_committed: self.rows_committed,
        }
    }
}

impl GrowthReport {
    /// The results as a text table.
    fn table(&self) -> String {
        let s = &self.settings;
        let source = s.source_text();
        let mut out = format!(
            "tidelake bench --scenario growth: {source}, {} workers\n\
             | events read | at (s) | events/s over the stretch | RSS | rule state | rows committed |\n\
             |---|---|---|---|---|---|\n",
            s.workers
        );
        for t in &self.stretches {
            let _ = writeln!(
                out,
                "| {} | {:.1} | {:.2} M | {} MB | {:.1} MB | {} |",
                group(t.events),
                t.elapsed_secs,
                t.events_per_second / 1e6,
                t.rss_bytes / 1_000_000,
                t.state_bytes as f64 / 1e6,
                group(t.rows_committed)
            );
        }
        let r = &self.run;
        let _ = writeln!(
            out,
            "  whole run     {} events in {:.2} s, {:.2} M/s, peak RSS {} MB; {} commits, {} files, {:.1} MB",
            group(r.events),
            r.elapsed_secs,
            r.events_per_second / 1e6,
            r.peak_rss_bytes.unwrap_or(0) / 1_000_000,
            group(r.commits),
            group(r.files),
            r.bytes as f64 / 1e6
        );
        if let Some(o) = &self.delta_rs {
            let _ = writeln!(
                out,
                "  delta-rs      opened version {} ({} files) in {:.0} ms",
                o.version, o.files, o.ms
            );
        }
        out
    }
}

/// Draws `growth.svg` in `dir`: events/s and RSS per stretch.
fn plot(report: &GrowthReport, dir: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let points = |value: fn(&Stretch) -> f64| {
        report
            .stretches
            .iter()
            .map(|s| (s.events as f64 / 1e6, Some(value(s))))
            .collect()
    };
    let svg = lines(
        "Growth: each stretch of the run",
        "M events/s; GB",
        &|x| format!("{x:.0} M"),
        &[
            Line {
                name: "M events/s over the stretch".to_owned(),
                color: crate::plot::MODEL_COLOR,
                dashed: false,
                points: points(|s| s.events_per_second / 1e6),
            },
            Line {
                name: "RSS (GB)".to_owned(),
                color: crate::plot::RULE_COLOR,
                dashed: true,
                points: points(|s| s.rss_bytes as f64 / 1e9),
            },
        ],
    )?;
    let path = dir.join("growth.svg");
    std::fs::write(&path, svg).with_context(|| format!("cannot write {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reading_sums_the_workers_and_skips_the_rest() {
        let text = "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\n\
            # HELP tidelake_records_read Records read.\n\
            # TYPE tidelake_records_read counter\n\
            tidelake_records_read_total{job=\"j\",worker=\"0\"} 1500\n\
            tidelake_records_read_total{job=\"j\",worker=\"1\"} 2500\n\
            tidelake_records_read_created{job=\"j\",worker=\"1\"} 17.5\n\
            tidelake_rule_state_bytes{job=\"j\",worker=\"0\"} 100\n\
            tidelake_rule_state_bytes{job=\"j\",worker=\"1\"} 20\n\
            tidelake_rows_committed_total{job=\"j\",worker=\"0\"} 7\n\
            tidelake_process_resident_memory_bytes{job=\"j\"} 3.5e8\n\
            # EOF\n";
        assert_eq!(
            Reading::parse(text),
            Reading {
                events: 4000,
                rss_bytes: 350_000_000,
                state_bytes: 120,
                rows_committed: 7,
            }
        );
    }

    #[test]
    fn a_stretch_is_measured_from_the_one_before() {
        let reading = Reading {
            events: 3000,
            rss_bytes: 5,
            state_bytes: 6,
            rows_committed: 7,
        };
        let first = reading.stretch(Duration::from_secs(2), None);
        assert_eq!(first.events_per_second, 1500.0);
        let next = Reading {
            events: 5000,
            ..reading
        }
        .stretch(Duration::from_secs(6), Some(&first));
        assert_eq!(next.events_per_second, 500.0);
        assert_eq!((next.events, next.elapsed_secs), (5000, 6.0));
    }
}
