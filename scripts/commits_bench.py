#!/usr/bin/env python3
"""CSV -> fraud -> Delta with commits sized for the table, against pyarrow + delta-rs.

    .venv/bin/python scripts/commits_bench.py TIDELAKE_BIN CSV WORKDIR OUT.md [--rounds 3]

Runs, alternately, `rounds` times each (whole processes, wall time and peak RSS):

- tidelake, defaults: `run --source csv --input CSV --workers 2 --table T`;
- the same without auto-compaction (`--no-auto-compact`), whose last run at the job's
  end rewrites the small files into one per partition;
- tidelake with the tick and split of the defaults before 2026-12-07 (`--tick 100ms
  --split-size 64MiB`: ten times as many ticks, and 5 ranges of the file, 3 on one
  worker, instead of 16);
- tidelake committing every epoch on its own, without auto-compaction
  (`--max-commit-rate 0s --no-auto-compact`), as before commits were sized;
- pyarrow's CSV parse of the same file, then delta-rs's `write_deltalake` of the rows
  tidelake wrote (read back beforehand, not timed), partitioned by `date`, one after
  the other in one Python process.

Every tidelake table is read back with delta-rs and must hold every line of the CSV.
Writes a Markdown table of medians to OUT.md (scripts/commits_bench.sh includes it in
docs/benchmarks/commits.md).
"""
import argparse
import json
import shutil
import statistics
import subprocess
import sys
import time

import deltalake
import pyarrow as pa
import pyarrow.csv as pacsv


def tidelake(binary, csv, table, extra):
    shutil.rmtree(table, ignore_errors=True)
    report = f"{table}.report.json"
    cmd = [binary, "run", "--source", "csv", "--input", csv, "--workers", "2",
           "--table", table, "--alerts", "/dev/null", "--quiet", "--report-json", report, *extra]
    started = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True)
    wall = time.perf_counter() - started
    if done.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed:\n{done.stderr}")
    with open(report) as f:
        rss = json.load(f).get("peak_rss_bytes") or 0
    dt = deltalake.DeltaTable(table)
    history = dt.history()
    writes = sum(1 for h in history if h.get("operation") == "STREAMING UPDATE")
    compactions = sum(1 for h in history if h.get("operation") == "OPTIMIZE")
    files = pa.table(dt.get_add_actions(flatten=True)).to_pydict()
    return {
        "wall": wall,
        "rss_mb": rss / 1e6,
        "rows": sum(files["num_records"]),
        "writes": writes,
        "compactions": compactions,
        "files": len(files["path"]),
        "mean_file_mb": sum(files["size_bytes"]) / max(1, len(files["path"])) / 1e6,
    }


def pyarrow_delta_rs(csv, rows_from, table):
    shutil.rmtree(table, ignore_errors=True)
    rows = deltalake.DeltaTable(rows_from).to_pyarrow_table()
    started = time.perf_counter()
    parsed = pacsv.read_csv(
        csv,
        read_options=pacsv.ReadOptions(column_names=["accountId", "ts", "amount"]),
    )
    parsed_at = time.perf_counter()
    deltalake.write_deltalake(table, rows, partition_by=["date"])
    written_at = time.perf_counter()
    return {
        "parse": parsed_at - started,
        "write": written_at - parsed_at,
        "wall": written_at - started,
        "lines": parsed.num_rows,
        "files": pa.table(deltalake.DeltaTable(table).get_add_actions()).num_rows,
    }


def median(runs, key):
    return statistics.median(r[key] for r in runs)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("binary")
    p.add_argument("csv")
    p.add_argument("work")
    p.add_argument("out")
    p.add_argument("--rounds", type=int, default=3)
    a = p.parse_args()
    lines = sum(1 for _ in open(a.csv, "rb"))
    sized, plain, earlier, every, python = [], [], [], [], []
    for round_ in range(a.rounds):
        every.append(tidelake(a.binary, a.csv, f"{a.work}/every",
                              ["--max-commit-rate", "0s", "--no-auto-compact"]))
        sized.append(tidelake(a.binary, a.csv, f"{a.work}/sized", []))
        earlier.append(tidelake(a.binary, a.csv, f"{a.work}/earlier",
                                ["--tick", "100ms", "--split-size", "64MiB"]))
        plain.append(tidelake(a.binary, a.csv, f"{a.work}/plain", ["--no-auto-compact"]))
        python.append(pyarrow_delta_rs(a.csv, f"{a.work}/sized", f"{a.work}/delta-rs"))
        for run in (every[-1], sized[-1], earlier[-1], plain[-1]):
            if run["rows"] != lines:
                sys.exit(f"a table holds {run['rows']} rows for {lines} lines")
        print(f"round {round_ + 1}: every epoch {every[-1]['wall']:.2f} s, "
              f"sized {sized[-1]['wall']:.2f} s, earlier tick and split {earlier[-1]['wall']:.2f} s, without compaction {plain[-1]['wall']:.2f} s, pyarrow + delta-rs {python[-1]['wall']:.2f} s",
              file=sys.stderr)

    def row(name, runs):
        walls = [r["wall"] for r in runs]
        return (f"| {name} | {median(runs, 'wall'):.2f} s | {min(walls):.2f}–{max(walls):.2f} s "
                f"| {lines / median(runs, 'wall') / 1e6:.2f} M/s | {runs[0]['writes']:,} "
                f"| {runs[0]['compactions']:,} | {runs[0]['files']:,} "
                f"| {runs[0]['mean_file_mb']:.1f} MB | {max(r['rss_mb'] for r in runs):.0f} MB |")

    py_walls = [r["wall"] for r in python]
    table = [
        f"{lines:,} lines, {a.rounds} rounds, run alternately; medians.",
        "",
        "| run | wall (median) | range | lines/s | commits of rows | compactions | live files | mean file | peak RSS |",
        "|---|---|---|---|---|---|---|---|---|",
        row("tidelake, defaults (`--max-commit-rate 1s`, auto-compaction)", sized),
        row("tidelake, defaults without auto-compaction (`--no-auto-compact`)", plain),
        row("tidelake, defaults at the tick and split before (`--tick 100ms --split-size 64MiB`)", earlier),
        row("tidelake, every epoch its own commit (`--max-commit-rate 0s --no-auto-compact`)", every),
        f"| pyarrow `read_csv` + delta-rs `write_deltalake`, one after the other "
        f"| {median(python, 'wall'):.2f} s | {min(py_walls):.2f}–{max(py_walls):.2f} s "
        f"| {lines / median(python, 'wall') / 1e6:.2f} M/s | 1 | 0 | {python[0]['files']:,} | | |",
        "",
        f"pyarrow's parse {median(python, 'parse'):.2f} s + delta-rs's write "
        f"{median(python, 'write'):.2f} s (medians). Wall time over theirs: tidelake's "
        f"defaults {median(sized, 'wall') / median(python, 'wall'):.2f}×, at the tick and "
        f"split before {median(earlier, 'wall') / median(python, 'wall'):.2f}×, without "
        f"auto-compaction {median(plain, 'wall') / median(python, 'wall'):.2f}×, every epoch "
        f"its own commit {median(every, 'wall') / median(python, 'wall'):.2f}×.",
    ]
    with open(a.out, "w") as f:
        f.write("\n".join(table) + "\n")
    print("\n".join(table))


if __name__ == "__main__":
    main()
