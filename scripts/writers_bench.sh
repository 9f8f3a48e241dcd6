#!/usr/bin/env bash
# Measures many writers committing to one Delta table (docs/scaling.md) with
# `tidelake bench --scenario writers`, and writes docs/benchmarks/writers.md (which
# BENCHMARKS.md includes) and its charts docs/benchmarks/writers-*.svg:
#
# 1. Scale, local disk: 8, 64 and 256 writers, per-worker commits and group commits
#    (--commit-scope process), 20 min of simulated time with 10 s epochs offered at 10×
#    real time (the commit rate of 10× as many writers).
# 2. Checkpoints: 64 per-worker writers as in 1, every 10 versions against by log size.
# 3. moto S3 on loopback (moto_server from .venv): 8 and 64 writers per worker, 64 as a
#    group, 3 min of simulated time at real time.
# 4. Growth: 64 writers as a group, 4 simulated hours at 120× real time, delta-rs
#    opening the table after every hour; charts.
#
#     (bash scripts/test.sh once makes .venv)
#     bash scripts/writers_bench.sh
set -euo pipefail
cd "$(dirname "$0")/.."

WORK=${WORK:-/tmp/tidelake-bench}/writers
rm -rf "$WORK"
mkdir -p "$WORK"
cargo build --release --quiet --bin tidelake
BIN=$(realpath "${CARGO_TARGET_DIR:-target}/release/tidelake")
PYTHON=$PWD/.venv/bin/python

bench() { # name, then bench flags
    local name=$1
    shift
    echo "== $name" >&2
    "$BIN" bench --scenario writers --dir "$WORK" --json "$WORK/$name.json" \
        --delta-rs "$PYTHON" "$@" >&2
}

for writers in 8 64 256; do
    for scope in worker process; do
        bench "scale-$writers-$scope" --writers "$writers" --commit-scope "$scope" \
            --duration 20min --speedup 10
    done
done
bench "checkpoints-every-10" --writers 64 --duration 20min --speedup 10 --checkpoints every10

PORT=$("$PYTHON" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
.venv/bin/moto_server -H 127.0.0.1 -p "$PORT" >"$WORK/moto.log" 2>&1 &
MOTO=$!
trap 'kill $MOTO 2>/dev/null || true' EXIT
for _ in $(seq 100); do
    curl -sf -X PUT "http://127.0.0.1:$PORT/tidelake" >/dev/null && break
    sleep 0.2
done
export AWS_ENDPOINT=http://127.0.0.1:$PORT AWS_ALLOW_HTTP=true AWS_ACCESS_KEY_ID=bench \
    AWS_SECRET_ACCESS_KEY=bench AWS_DEFAULT_REGION=us-east-1
bench "s3-8-worker" --writers 8 --duration 3min --speedup 1 --table s3://tidelake/w8
bench "s3-64-worker" --writers 64 --duration 3min --speedup 1 --table s3://tidelake/w64
bench "s3-64-process" --writers 64 --duration 3min --speedup 1 --commit-scope process \
    --table s3://tidelake/w64p
kill $MOTO
unset AWS_ENDPOINT AWS_ALLOW_HTTP AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY AWS_DEFAULT_REGION

bench "growth-64-process" --writers 64 --commit-scope process --duration 4h --speedup 120 \
    --plot "$WORK/plots"
for chart in latency log open; do
    cp "$WORK/plots/writers-$chart.svg" "docs/benchmarks/writers-$chart.svg"
done

"$PYTHON" - "$WORK" >docs/benchmarks/writers.md <<'EOF'
import datetime, json, os, pathlib, subprocess, sys

work = pathlib.Path(sys.argv[1])
def load(name):
    return json.loads((work / f"{name}.json").read_text())

def whole(r):
    """The run's figures over all its hours."""
    hours = r["hours"]
    commits = sum(h["commits"] for h in hours)
    wall = sum(h["wall_seconds"] for h in hours)
    last = hours[-1]
    return {
        "commits": commits,
        "per_s": commits / wall,
        "versions": sum(h["versions"] for h in hours),
        "conflicts": sum(h["conflicts_per_commit"] * h["commits"] for h in hours) / commits,
        "p50": max(h["latency_p50_ms"] for h in hours),
        "p99": max(h["latency_p99_ms"] for h in hours),
        "max": max(h["latency_max_ms"] for h in hours),
        "checkpoints": sum(h["checkpoints"] for h in hours),
        "ckpt_kb": max(h["checkpoint_bytes"] for h in hours) / 1024,
        "ckpt_ms": max(h["checkpoint_max_ms"] for h in hours),
        "live": last["live_files"],
        "log_mb": last["log_bytes"] / 1e6,
        "replay": last["commits_after_checkpoint"],
        "open": last["delta_rs_open_ms"],
        "put": r["store_put_ms"],
    }

HEAD = ("| writers | commits | offered / s | done / s | versions | lost races / commit | "
        "p50 ms | p99 ms | max ms | checkpoints (largest KB, slowest ms) | live files | "
        "log MB | commits replayed | delta-rs open ms |\n"
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")

def row(label, r):
    w = whole(r)
    s = r["settings"]
    offered = s["writers"] * 1000 / s["epoch_ms"] * (s["speedup"] or 0)
    return (f"| {label} | {w['commits']:,} | {offered:,.1f} | {w['per_s']:,.1f} | {w['versions']:,} | "
            f"{w['conflicts']:.2f} | {w['p50']:.0f} | {w['p99']:.0f} | {w['max']:.0f} | "
            f"{w['checkpoints']} ({w['ckpt_kb']:,.0f}, {w['ckpt_ms']:,.0f}) | {w['live']:,} | "
            f"{w['log_mb']:.1f} | {w['replay']} | {w['open']:.0f} |")

commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
print("## Many writers on one table (`bash scripts/writers_bench.sh`)\n")
loadavg = " ".join(open("/proc/loadavg").read().split()[:3])
print(f"{datetime.date.today()}, {len(os.sched_getaffinity(0))} cores, load average after the runs "
      f"{loadavg}, release build at {commit}. `tidelake bench --scenario writers` (docs/scaling.md): "
      "each writer a thread with its own appId and the real commit path (Parquet file, txn, "
      "put-if-absent, re-read and retry, checkpoints, auto-compaction), 10 s epochs of 100 rows, "
      "all writers sealing each epoch at the same moment. Latency is sealing an epoch: its file "
      "uploaded, the commit landed, and the checkpoint if that writer wrote one. Single runs; a "
      "run's figures are over all its hours (latency: the worst hour's quantiles); the last "
      "columns are the table at the end.\n")
print("### Scale: local disk, 20 min simulated at 10× real time\n")
print(HEAD)
for n in (8, 64, 256):
    for scope, label in (("worker", "per worker"), ("process", "group (process)")):
        print(row(f"{n}, {label}", load(f"scale-{n}-{scope}")))
print(f"\nThe store's put-if-absent takes {load('scale-8-worker')['store_put_ms']:.2f} ms (median of 20).\n")
print("### Checkpoints: 64 per-worker writers, as above\n")
print(HEAD)
print(row("every 10 versions (Spark's rule)", load("checkpoints-every-10")))
print(row("by log size (the default)", load("scale-64-worker")))
print("\n### moto S3 on loopback, 3 min simulated at real time\n")
print(HEAD)
for name, label in (("s3-8-worker", "8, per worker"), ("s3-64-worker", "64, per worker"),
                    ("s3-64-process", "64, group (process)")):
    print(row(label, load(name)))
print(f"\nmoto's put-if-absent takes {load('s3-8-worker')['store_put_ms']:.2f} ms (median of 20, idle).\n")
print("### Growth: 64 writers as a group, 4 simulated hours at 120× real time\n")
growth = load("growth-64-process")
print("| hour | commits / s | versions | p50 ms | p99 ms | max ms | checkpoints | live files | "
      "log MB | commits replayed | delta-rs open ms |\n|---|---|---|---|---|---|---|---|---|---|---|")
for h in growth["hours"]:
    print(f"| {h['hour']} | {h['commits_per_second']:,.0f} | {h['versions']:,} | {h['latency_p50_ms']:.0f} | "
          f"{h['latency_p99_ms']:.0f} | {h['latency_max_ms']:.0f} | {h['checkpoints']} | {h['live_files']:,} | "
          f"{h['log_bytes'] / 1e6:.1f} | {h['commits_after_checkpoint']} | {h['delta_rs_open_ms']:.0f} |")
print("\n![commit latency](docs/benchmarks/writers-latency.svg)")
print("![live files and log replay](docs/benchmarks/writers-log.svg)")
print("![delta-rs opening the table](docs/benchmarks/writers-open.svg)")
EOF
echo "wrote docs/benchmarks/writers.md" >&2
