#!/usr/bin/env bash
# Measures the Delta source (docs/delta-source.md) on this machine and writes
# docs/benchmarks/delta-source.md, which BENCHMARKS.md includes:
#
# - throughput: a table of N generated transactions that `tidelake run` wrote (2
#   workers, the default 10 s commits) read whole, alternately RUNS times, by
#   `run --source delta` on 2 workers → fraud → null, by delta-rs
#   (`DeltaTable.to_pyarrow_table()`) and by polars (`pl.read_delta`);
# - lag: delta-rs appends a batch of 1,000 rows, then waits until the job following
#   the table has read it (its `tidelake_records_accepted_total`, scraped every 5 ms
#   from `--metrics-addr`), 40 times at random moments (0–2 s apart, so that an append
#   falls anywhere in the poll interval); from the append's return
#   to the rows counted, with `--poll-interval` 1 s (the default) and 100 ms.
#
#     (bash scripts/test.sh once makes .venv, with deltalake, polars, prometheus-client)
#     bash scripts/delta_source_bench.sh
set -euo pipefail
cd "$(dirname "$0")/.."

WORK=${WORK:-/tmp/tidelake-bench}
RUNS=${RUNS:-3}
N=${N:-10000000}
OUT=$WORK/delta-source
JSON=$WORK/delta-source-json
rm -rf "$JSON" "$OUT"
mkdir -p "$JSON" "$OUT"
cargo build --release --quiet --bin tidelake
BIN=$(realpath "${CARGO_TARGET_DIR:-target}/release/tidelake")
PY=$PWD/.venv/bin/python
TABLE=$OUT/table

"$BIN" run --count "$N" --accounts 100000 --start 2024-05-01T00:00:00Z --workers 2 \
    --table "$TABLE" --no-checkpoints --alerts /dev/null --quiet

python_reader() {
    "$PY" - "$1" "$TABLE" <<'PY'
import json, os, sys, time
reader, table = sys.argv[1:3]
started = time.perf_counter()
if reader == "deltars":
    from deltalake import DeltaTable
    rows = DeltaTable(table).to_pyarrow_table().num_rows
else:
    import polars as pl
    rows = pl.read_delta(table).height
print(json.dumps({"rows": rows, "seconds": time.perf_counter() - started}), flush=True)
# deltalake sometimes aborts in the interpreter's teardown (tests/py/delta_read.py).
os._exit(0)
PY
}
for i in $(seq "$RUNS"); do
    (cd "$OUT" && "$BIN" run --source delta --input "$TABLE" --no-table --workers 2 \
        --alerts /dev/null --quiet --report-json "$JSON/tidelake-$i.json" >/dev/null)
    python_reader deltars >"$JSON/deltars-$i.json"
    python_reader polars >"$JSON/polars-$i.json"
done

lag() {
    local name=$1 interval=$2
    local table=$OUT/lag-$name
    local port
    port=$("$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    "$PY" - "$table" "$port" create >/dev/null <"$OUT/lag.py"
    (cd "$OUT" && exec "$BIN" run --source delta --input "$table" --follow \
        --poll-interval "$interval" --no-table --no-checkpoints --alerts /dev/null \
        --metrics-addr "127.0.0.1:$port" --quiet 2>"$JSON/lag-$name.log") &
    local job=$!
    "$PY" - "$table" "$port" measure >"$JSON/lag-$name.json" <"$OUT/lag.py"
    kill -INT "$job"
    wait "$job" || true
}
cat >"$OUT/lag.py" <<'PY'
import datetime, json, os, random, sys, time, urllib.request
import pyarrow as pa
from deltalake import write_deltalake
from prometheus_client.parser import text_string_to_metric_families

table, port, mode = sys.argv[1], int(sys.argv[2]), sys.argv[3]
ROWS = 1000
START = 1_714_521_600_000

def batch(k):
    ts = [START + (k * ROWS + i) * 10 for i in range(ROWS)]
    return pa.table({
        "dt": pa.array([t * 1000 for t in ts], pa.timestamp("us", tz="UTC")),
        "accountId": [f"a{i % 500}" for i in range(ROWS)],
        "amount": [float(i % 700) for i in range(ROWS)],
        "date": [datetime.datetime.fromtimestamp(t / 1000, tz=datetime.timezone.utc).strftime("%Y-%m-%d") for t in ts],
    })

def accepted():
    try:
        text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=1).read().decode()
    except OSError:
        return None
    return sum(s.value for f in text_string_to_metric_families(text)
               if f.name == "tidelake_records_accepted" for s in f.samples if s.name.endswith("_total"))

def wait_for(count, limit):
    deadline = time.perf_counter() + limit
    while time.perf_counter() < deadline:
        seen = accepted()
        if seen is not None and seen >= count:
            return time.perf_counter()
        time.sleep(0.005)
    raise SystemExit(f"the job did not read {count} rows within {limit} s")

if mode == "create":
    write_deltalake(table, batch(0), mode="append", partition_by=["date"])
    print("{}", flush=True)
    os._exit(0)
wait_for(ROWS, 60)
lags = []
for k in range(1, 41):
    time.sleep(random.uniform(0, 2.0))
    write_deltalake(table, batch(k), mode="append", partition_by=["date"])
    committed = time.perf_counter()
    lags.append((wait_for((k + 1) * ROWS, 30) - committed) * 1000)
lags.sort()
pick = lambda q: round(lags[min(len(lags) - 1, int(q * len(lags)))])
print(json.dumps({"p50_ms": pick(0.5), "p99_ms": pick(0.99), "max_ms": round(lags[-1]), "samples": len(lags)}), flush=True)
os._exit(0)
PY
lag 1s 1s
lag 100ms 100ms

FILES=$(find "$TABLE" -name '*.parquet' | wc -l)
SIZE=$(du -sm "$TABLE" | cut -f1)
python3 - "$JSON" "$RUNS" "$N" "$FILES" "$SIZE" "$(date -u +%F)" "$(nproc)" \
    "$(cut -d' ' -f1-3 /proc/loadavg)" >docs/benchmarks/delta-source.md <<'PY'
import json, statistics, sys

folder, runs, n, files, size, day, cores, load = sys.argv[1:9]
runs, med = int(runs), statistics.median_low
load_json = lambda name, i: json.load(open(f"{folder}/{name}-{i}.json"))
tidelake = [(lambda r: r["totals"]["events"] / r["elapsed_secs"])(load_json("tidelake", i))
            for i in range(1, runs + 1)]
python = lambda name: [(lambda r: r["rows"] / r["seconds"])(load_json(name, i)) for i in range(1, runs + 1)]
base = med(python("deltars"))
fmt = lambda xs: f"{med(xs) / 1e6:.2f} M ({min(xs) / 1e6:.2f}–{max(xs) / 1e6:.2f})"
print("## Delta source (`bash scripts/delta_source_bench.sh`)")
print()
print(f"{day}, {cores} cores, load average after the runs {load}, release build. A table of "
      f"{int(n):,} generated transactions that `tidelake run` wrote on 2 workers with its default "
      f"10 s commits ({files} files, {size} MB, local disk), read whole by each reader, alternately, "
      f"{runs} times each; rows/s, medians (range).")
print()
print("| reader | rows/s | against delta-rs |")
print("|---|---|---|")
print(f"| `run --source delta`, 2 workers → fraud → null (whole process) | {fmt(tidelake)} | {med(tidelake) / base:.2f} |")
print(f"| delta-rs `DeltaTable.to_pyarrow_table()` (all columns into memory) | {fmt(python('deltars'))} | 1 |")
print(f"| polars `pl.read_delta` | {fmt(python('polars'))} | {med(python('polars')) / base:.2f} |")
print()
print("Lag from a delta-rs append (its `write_deltalake` returned) to the job that follows the "
      "table having read the rows (`tidelake_records_accepted_total`), 40 appends of 1,000 rows:")
print()
print("| `--poll-interval` | p50 | p99 | max |")
print("|---|---|---|---|")
for name in ["1s", "100ms"]:
    r = json.load(open(f"{folder}/lag-{name}.json"))
    print(f"| {name} | {r['p50_ms']} ms | {r['p99_ms']} ms | {r['max_ms']} ms |")
PY
echo "wrote docs/benchmarks/delta-source.md"
