#!/usr/bin/env bash
# Measures `tidelake ingest` (docs/ingest.md) on this machine and writes
# docs/benchmarks/ingest.md, which BENCHMARKS.md includes: FILES Parquet files of ROWS
# rows each (default 1,000 × 10,000 = 10 M rows in the seed's schema, as pyarrow
# writes them, 3 days of event time) loaded into a new Delta table partitioned by
# date, `dt` renamed to `timestamp`, alternately RUNS times each, by
#
# - `tidelake ingest --once --partition-by date --rename dt=timestamp`, whole process;
# - pyarrow reading the files (`pyarrow.dataset(...).to_table()`), then delta-rs
#   writing the same rows shaped the same way (`write_deltalake(partition_by=["date"])`),
#   one after the other in one Python process (the time of each is kept too).
#
#     (bash scripts/test.sh once makes .venv, with deltalake and pyarrow)
#     bash scripts/ingest_bench.sh
set -euo pipefail
cd "$(dirname "$0")/.."

WORK=${WORK:-/tmp/tidelake-bench}
RUNS=${RUNS:-3}
FILES=${FILES:-1000}
ROWS=${ROWS:-10000}
OUT=$WORK/ingest
JSON=$WORK/ingest-json
rm -rf "$JSON" "$OUT"
mkdir -p "$JSON" "$OUT"
cargo build --release --quiet --bin tidelake
BIN=$(realpath "${CARGO_TARGET_DIR:-target}/release/tidelake")
PY=$PWD/.venv/bin/python
INPUT=$OUT/input

"$PY" - "$FILES" "$ROWS" "$INPUT" <<'PY'
import os, random, sys
import pyarrow as pa, pyarrow.parquet as pq

files, rows, out = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
rng = random.Random(7)
start, span = 1_714_521_600_000, 3 * 86_400_000
per = span // files
for f in range(files):
    ts = sorted(start + f * per + rng.randrange(per) for _ in range(rows))
    table = pa.table({
        "dt": pa.array(ts, pa.timestamp("ms")),
        "accountId": pa.array([f"acct-{rng.randrange(100_000):06d}" for _ in range(rows)]),
        "amount": pa.array([rng.randrange(100_000) / 100 for _ in range(rows)], pa.float64()),
        "alert": pa.array([False] * rows),
    })
    hour = f"2024-05-0{1 + f * 3 // files}--{f % 24:02d}"
    os.makedirs(f"{out}/{hour}", exist_ok=True)
    pq.write_table(table, f"{out}/{hour}/part-{f % 4}-{f}.parquet")
PY

for i in $(seq "$RUNS"); do
    rm -rf "$OUT/tidelake" "$OUT/deltars"
    started=$(date +%s%N)
    "$BIN" ingest --input "$INPUT" --table "$OUT/tidelake" --partition-by date \
        --rename dt=timestamp --once --dead-letters "$OUT/dead.jsonl" >"$JSON/tidelake-$i.txt"
    echo "{\"ms\": $((($(date +%s%N) - started) / 1000000))}" >"$JSON/tidelake-$i.json"
    "$PY" - "$INPUT" "$OUT/deltars" >"$JSON/python-$i.json" <<'PY'
import json, os, sys, time
import pyarrow as pa, pyarrow.compute as pc, pyarrow.dataset as ds
from deltalake import write_deltalake

source, table = sys.argv[1:3]
started = time.perf_counter()
rows = ds.dataset(source, format="parquet", ignore_prefixes=["_", "."]).to_table()
read = time.perf_counter()
ts = rows.column("dt").cast(pa.timestamp("us", tz="UTC"))
rows = rows.set_column(0, "timestamp", ts).append_column("date", pc.strftime(ts, format="%Y-%m-%d"))
write_deltalake(table, rows, mode="append", partition_by=["date"])
done = time.perf_counter()
print(json.dumps({"rows": rows.num_rows, "read": read - started, "write": done - read}), flush=True)
# deltalake sometimes aborts in the interpreter's teardown (tests/py/delta_read.py).
os._exit(0)
PY
done

python3 - "$JSON" "$RUNS" "$FILES" "$ROWS" "$(du -sm "$INPUT" | cut -f1)" \
    "$(find "$OUT/tidelake" -name '*.parquet' | wc -l)" "$(find "$OUT/deltars" -name '*.parquet' | wc -l)" \
    "$(date -u +%F)" "$(nproc)" "$(cut -d' ' -f1-3 /proc/loadavg)" >docs/benchmarks/ingest.md <<'PY'
import json, statistics, sys

folder, runs, files, rows, size, ours, theirs, day, cores, load = sys.argv[1:11]
runs, files, rows, med = int(runs), int(files), int(rows), statistics.median_low
total = files * rows
load_json = lambda name, i: json.load(open(f"{folder}/{name}-{i}.json"))
tidelake = [load_json("tidelake", i)["ms"] / 1000 for i in range(1, runs + 1)]
python = [load_json("python", i) for i in range(1, runs + 1)]
read = [p["read"] for p in python]
write = [p["write"] for p in python]
both = [p["read"] + p["write"] for p in python]
fmt = lambda xs: f"{med(xs):.2f} s ({min(xs):.2f}–{max(xs):.2f})"
rate = lambda xs: f"{total / med(xs) / 1e6:.2f} M"
print("## Ingest (`bash scripts/ingest_bench.sh`)")
print()
print(f"{day}, {cores} cores, load average after the runs {load}, release build. {files:,} Parquet "
      f"files of {rows:,} rows each ({total:,} rows, {size} MB, the seed's schema as pyarrow writes "
      f"it, 3 days of event time) loaded into a new Delta table partitioned by `date`, `dt` renamed "
      f"to `timestamp`, alternately {runs} times each; wall time, medians (range).")
print()
print("| load | time | rows/s | data files |")
print("|---|---|---|---|")
print(f"| `tidelake ingest --once --partition-by date --rename dt=timestamp` (whole process) | {fmt(tidelake)} | {rate(tidelake)} | {ours} |")
print(f"| pyarrow `dataset(...).to_table()` then delta-rs `write_deltalake(partition_by=[\"date\"])` | {fmt(both)} | {rate(both)} | {theirs} |")
print(f"| of which pyarrow's read | {fmt(read)} | {rate(read)} | |")
print(f"| of which delta-rs's write | {fmt(write)} | {rate(write)} | |")
print()
print(f"tidelake ingest takes {med(tidelake) / med(both):.2f} of the time of pyarrow's read plus "
      f"delta-rs's write ({med(both) / med(tidelake):.1f}× faster), and "
      f"{med(tidelake) / med(read):.2f} of pyarrow's read alone.")
PY
echo "wrote docs/benchmarks/ingest.md"
