#!/usr/bin/env bash
# Measures what checkpoints cost (docs/checkpoints.md) on this machine and writes
# docs/benchmarks/checkpoints.md, which BENCHMARKS.md includes:
#
# 1. throughput without and with checkpoints every 10 s of rule time (a job id of its
#    own), run alternately RUNS times: the generator (10 M events) and the 10 M-line
#    CSV file, each into the transactions Delta table, 2 workers;
# 2. 1 M live accounts of fraud state: the size of a checkpoint of it, how long it took
#    (from its first part to its manifest), and how long a restart takes to read it;
# 3. recovery on a 2 × 2 launch: from kill -9 of one process to the restarted job's
#    first new commit.
#
#     bash scripts/checkpoint_bench.sh
set -euo pipefail
cd "$(dirname "$0")/.."

WORK=${WORK:-/tmp/tidelake-bench}
RUNS=${RUNS:-3}
OUT=$WORK/checkpoints
JSON=$WORK/checkpoints-json
rm -rf "$JSON"
mkdir -p "$JSON"
cargo build --release --quiet
BIN=$(realpath "${CARGO_TARGET_DIR:-target}/release/tidelake")
CSV=$WORK/tx10m.csv
[ -f "$CSV" ] || python3 scripts/make_csv.py "$CSV"
START=2024-05-01T00:00:00Z

# One run: NAME, MODE (plain or ck), RUN, then the job's flags; a fresh directory each.
run() {
    local name=$1 mode=$2 i=$3
    shift 3
    local extra=()
    [ "$mode" = ck ] && extra=(--job-id bench --checkpoint-interval 10s)
    rm -rf "$OUT" && mkdir -p "$OUT"
    (cd "$OUT" && "$BIN" run "$@" --alerts alerts.jsonl --quiet "${extra[@]}" \
        --report-json "$JSON/$name-$mode-$i.json" 2>"$JSON/$name-$mode-$i.log")
}

# 1. Throughput, alternately.
for i in $(seq "$RUNS"); do
    for mode in plain ck; do
        run gen "$mode" "$i" --count 10000000 --workers 2 --start "$START"
        run csv "$mode" "$i" --source csv --input "$CSV" --workers 2
    done
done

# 2. 1 M live accounts: every account's small transactions keep state for a minute.
rm -rf "$OUT" && mkdir -p "$OUT"
BIG=(run --count unbounded --rate 2000000 --accounts 1000000 --density 50000
    --small-share 0.98 --large-share 0.01 --fraud-every 0 --workers 2 --start "$START"
    --job-id big --checkpoint-interval 30s --alerts alerts.jsonl)
(cd "$OUT" && exec "$BIN" "${BIG[@]}" 2>"$JSON/big-1.log") &
PID=$!
sleep 40
kill -INT "$PID"
wait "$PID"
# The restart logs "job big: …" once it has read and checked the savepoint's parts.
RESTORE_S=$(cd "$OUT" && python3 - "$BIN" "${BIG[@]}" <<'PY'
import signal, subprocess, sys, time
start = time.time()
job = subprocess.Popen(sys.argv[1:], stderr=subprocess.PIPE, text=True)
read = None
for line in job.stderr:
    if read is None and "job big:" in line:
        read = time.time() - start
        job.send_signal(signal.SIGINT)
job.wait()
print(f"{read:.2f}" if read is not None else "?")
PY
)
"$BIN" checkpoints show "$OUT/lake/_checkpoints/big" --json >"$JSON/big-show.json" || true
grep -h "complete at" "$JSON/big-1.log" >"$JSON/big-checkpoints.txt" || true

# 3. Recovery on 2 × 2: kill -9 process 1 mid-run, launch again at once.
rm -rf "$OUT" && mkdir -p "$OUT"
REC=(launch --processes 2 --workers 2 --count unbounded --rate 400000 --start "$START"
    --job-id rec --alerts alerts.jsonl --quiet)
(cd "$OUT" && exec "$BIN" "${REC[@]}" 2>"$JSON/rec-1.log") &
LAUNCHER=$!
sleep 15
P1=$(sed -n 's/.*process 1: pid \([0-9]*\).*/\1/p' "$JSON/rec-1.log" | head -1)
KILLED=$(date +%s.%N)
kill -9 "$P1"
wait "$LAUNCHER" || true
(cd "$OUT" && exec "$BIN" "${REC[@]}" 2>"$JSON/rec-2.log") &
LAUNCHER=$!
RECOVERY_S=$(python3 - "$OUT/lake/transactions/_delta_log" "$KILLED" <<'PY'
import os, sys, time
log, killed = sys.argv[1], float(sys.argv[2])
seen = {f for f in os.listdir(log) if os.path.getmtime(os.path.join(log, f)) <= killed}
deadline = time.time() + 120
while time.time() < deadline:
    new = [f for f in os.listdir(log) if f.endswith(".json") and f not in seen
           and os.path.getmtime(os.path.join(log, f)) > killed]
    if new:
        print(f"{min(os.path.getmtime(os.path.join(log, f)) for f in new) - killed:.2f}")
        break
    time.sleep(0.01)
else:
    print("none within 120 s")
PY
)
kill -INT "$LAUNCHER"
wait "$LAUNCHER" || true

python3 - "$JSON" "$RUNS" "$RESTORE_S" "$RECOVERY_S" "$(date -u +%F)" "$(nproc)" \
    "$(cut -d' ' -f1-3 /proc/loadavg)" >docs/benchmarks/checkpoints.md <<'PY'
import json, re, statistics, sys

folder, runs, restore_s, recovery_s, day, cores, load = sys.argv[1:8]
runs = int(runs)
med = statistics.median_low
load = lambda name, mode: [json.load(open(f"{folder}/{name}-{mode}-{i}.json")) for i in range(1, runs + 1)]
rate = lambda r: r["totals"]["events"] / r["elapsed_secs"]
print("## Checkpoints' cost (`bash scripts/checkpoint_bench.sh`)")
print()
print(f"{day}, {cores} cores, load average after the runs {load}, release build. Run "
      f"alternately, {runs} times each, 2 workers, into the transactions table; with "
      "checkpoints: a job id of its own and a checkpoint every 10 s of rule time.")
print()
print("| job | without (events/s, median) | with checkpoints | ratio (target ≥ 0.90) | checkpoints taken |")
print("|---|---|---|---|---|")
for name, label in [("gen", "generator, 10 M → fraud → Delta"), ("csv", "CSV, 10 M lines → fraud → Delta")]:
    plain, ck = [rate(r) for r in load(name, "plain")], [rate(r) for r in load(name, "ck")]
    taken = med(r["checkpoints"]["taken"] for r in load(name, "ck"))
    print(f"| {label} | {med(plain) / 1e6:.2f} M ({min(plain) / 1e6:.2f}–{max(plain) / 1e6:.2f}) "
          f"| {med(ck) / 1e6:.2f} M ({min(ck) / 1e6:.2f}–{max(ck) / 1e6:.2f}) "
          f"| {med(ck) / med(plain):.3f} | {taken} |")
print()
lines = open(f"{folder}/big-checkpoints.txt").read().splitlines()
sizes = [(int(m.group(1)), float(m.group(2))) for m in
         (re.search(r"parts, (\d+) bytes, ([0-9.]+) s", l) for l in lines) if m]
try:
    show = json.load(open(f"{folder}/big-show.json"))
    keys = sum(g["keys"] for p in show["parts"] for o in p["operators"] for g in o["groups"])
except Exception:
    keys = 0
print("| 1 M accounts' fraud state (generator, 1 M accounts, 98 % small amounts) | |")
print("|---|---|")
if sizes:
    big = max(sizes)
    print(f"| largest checkpoint | {big[0] / 1e6:.1f} MB, taken in {big[1]:.2f} s (first part to manifest) |")
print(f"| keys in the savepoint | {keys:,} |")
print(f"| restart: process start to the savepoint read and checked | {restore_s} s |")
print(f"| 2 × 2 launch: kill -9 of one process to the relaunched job's first commit | {recovery_s} s |")
PY
echo "wrote docs/benchmarks/checkpoints.md"
