#!/usr/bin/env python3
"""OPTIMIZE and ZORDER BY of one large partition: tidelake against delta-rs.

    .venv/bin/python scripts/optimize_bench.py TIDELAKE_BIN WORKDIR OUT.md [--gb 5] [--rounds 1]

Makes (once, kept in WORKDIR/source-<gb>gb) an unpartitioned Delta table of about `gb`
GB with delta-rs: files of about 32 MB, each a commit of 140,000 rows of `accountId`
(`acct_000123`-style, 1 M accounts), `ts` (a day, microseconds), `amount` and `memo`
(200 random hex characters, so the rows are wide and barely compress). Then, on a fresh
copy of it each time, alternately `rounds` times:

- tidelake bin-packing: `tidelake table optimize T --json` (128 MiB target);
- delta-rs bin-packing: `DeltaTable(T).optimize.compact(target_size=128 MiB)`;
- tidelake Z-order: `tidelake table optimize T --zorder-by accountId,ts --json`;
- delta-rs Z-order: `DeltaTable(T).optimize.z_order(["accountId", "ts"], target_size=128 MiB)`.

Each is a child process: wall time, and its own peak RSS (`wait4`'s `ru_maxrss`).
Every result is read back with delta-rs: it must hold every row, in fewer files.
Writes a Markdown table of medians to OUT.md.
"""
import argparse
import os
import shutil
import statistics
import subprocess
import sys
import time

import deltalake
import numpy as np
import pyarrow as pa

ROWS_PER_FILE = 140_000
MEMO_CHARS = 200
TARGET = 128 * 1024 * 1024


def make_source(path, gb):
    if os.path.exists(os.path.join(path, "_delta_log")):
        return
    shutil.rmtree(path, ignore_errors=True)
    rng = np.random.default_rng(2024)
    hex_digits = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)
    files = 1
    file = 0
    while file < files:
        n = ROWS_PER_FILE
        accounts = pa.array([f"acct_{a:06d}" for a in rng.integers(0, 1_000_000, n)])
        micros = 1_714_521_600_000_000 + rng.integers(0, 86_400_000_000, n)
        ts = pa.array(micros, type=pa.timestamp("us", tz="UTC"))
        amount = pa.array(np.round(rng.exponential(80.0, n), 2))
        memo_bytes = hex_digits[rng.integers(0, 16, n * MEMO_CHARS, dtype=np.uint8)]
        offsets = np.arange(0, (n + 1) * MEMO_CHARS, MEMO_CHARS, dtype=np.int32)
        memo = pa.StringArray.from_buffers(
            n, pa.py_buffer(offsets.tobytes()), pa.py_buffer(memo_bytes.tobytes())
        )
        table = pa.table({"accountId": accounts, "ts": ts, "amount": amount, "memo": memo})
        deltalake.write_deltalake(path, table, mode="append")
        file += 1
        if file == 1:
            _, _, size = files_and_rows(path)
            files = max(1, round(gb * 1e9 / size))
    print(f"source: {files} files", file=sys.stderr)


def files_and_rows(path):
    actions = pa.table(deltalake.DeltaTable(path).get_add_actions(flatten=True))
    return (
        actions.num_rows,
        sum(actions.column("num_records").to_pylist()),
        sum(actions.column("size_bytes").to_pylist()),
    )


def run(cmd):
    """Runs `cmd`; returns (wall seconds, peak RSS bytes) of that process alone."""
    started = time.perf_counter()
    child = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(child.pid, 0)
    wall = time.perf_counter() - started
    stderr = child.stderr.read().decode(errors="replace")
    child.stderr.close()
    if os.waitstatus_to_exitcode(status) != 0:
        sys.exit(f"{' '.join(cmd)} failed:\n{stderr}")
    return wall, usage.ru_maxrss * 1024


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("binary")
    parser.add_argument("work")
    parser.add_argument("out")
    parser.add_argument("--gb", type=float, default=5.0)
    parser.add_argument("--rounds", type=int, default=1)
    args = parser.parse_args()

    source = os.path.join(args.work, f"source-{args.gb:g}gb")
    make_source(source, args.gb)
    before_files, rows, before_bytes = files_and_rows(source)
    python = sys.executable
    delta_rs = (
        "import sys, deltalake; dt = deltalake.DeltaTable(sys.argv[1]); "
        "print(dt.optimize.{call})"
    )
    scenarios = [
        ("tidelake bin-packing", lambda t: [args.binary, "table", "optimize", t, "--json"]),
        ("delta-rs bin-packing", lambda t: [
            python, "-c", delta_rs.format(call=f"compact(target_size={TARGET})"), t]),
        ("tidelake Z-order by accountId, ts", lambda t: [
            args.binary, "table", "optimize", t, "--zorder-by", "accountId,ts", "--json"]),
        ("delta-rs Z-order by accountId, ts", lambda t: [
            python, "-c",
            delta_rs.format(call=f"z_order(['accountId', 'ts'], target_size={TARGET})"), t]),
    ]
    results = {name: [] for name, _ in scenarios}
    copy = os.path.join(args.work, "copy")
    for round_ in range(args.rounds):
        for name, command in scenarios:
            shutil.rmtree(copy, ignore_errors=True)
            subprocess.run(["cp", "-r", source, copy], check=True)
            wall, rss = run(command(copy))
            files, after_rows, after_bytes = files_and_rows(copy)
            if after_rows != rows or files >= before_files:
                sys.exit(f"{name}: {after_rows} rows in {files} files, from {rows} in {before_files}")
            results[name].append((wall, rss, files, after_bytes))
            print(f"round {round_ + 1}: {name}: {wall:.1f} s, {rss / 1e9:.2f} GB, {files} files",
                  file=sys.stderr)
    shutil.rmtree(copy, ignore_errors=True)

    lines = [
        f"The partition: {before_bytes / 1e9:.2f} GB in {before_files} files, {rows:,} rows; "
        f"{args.rounds} round(s), medians.",
        "",
        "| run | wall (median) | peak RSS (max) | files after | bytes after |",
        "|---|---|---|---|---|",
    ]
    for name, _ in scenarios:
        runs = results[name]
        wall = statistics.median(r[0] for r in runs)
        rss = max(r[1] for r in runs)
        lines.append(
            f"| {name} | {wall:.1f} s | {rss / 1e9:.2f} GB | {runs[-1][2]} | {runs[-1][3] / 1e9:.2f} GB |"
        )
    with open(args.out, "w") as f:
        f.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
