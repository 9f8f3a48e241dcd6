#!/usr/bin/env bash
# Measures model scoring (docs/scoring.md) on this machine and writes
# docs/benchmarks/scoring.md, which BENCHMARKS.md includes:
#
# - `tidelake train` on the features table of EVENTS richer transactions of the
#   generator with profiles (default 10 M, ACCOUNTS = 100,000 accounts, one day of event
#   time, joined with `tidelake generate accounts`): wall time and peak RSS;
# - the features job with the as-of join on another day's transactions (another seed),
#   without and with `--model` (which adds the `fraud_predictions` table), alternately
#   RUNS times each, 2 workers, commit interval 1 h: wall time, events/s, peak RSS.
#
#     (bash scripts/test.sh once makes .venv)
#     bash scripts/scoring_bench.sh
set -euo pipefail
cd "$(dirname "$0")/.."

WORK=${WORK:-/tmp/tidelake-bench}
RUNS=${RUNS:-3}
EVENTS=${EVENTS:-10000000}
ACCOUNTS=${ACCOUNTS:-100000}
OUT=$WORK/scoring
JSON=$WORK/scoring-json
rm -rf "$JSON" "$OUT"
mkdir -p "$JSON" "$OUT"
cargo build --release --quiet --bin tidelake
BIN=$(realpath "${CARGO_TARGET_DIR:-target}/release/tidelake")
START=1714521600000
DENSITY=$((EVENTS / 86400 + 1))
COMMON=(--source generator --profiles --count "$EVENTS" --accounts "$ACCOUNTS"
    --density "$DENSITY" --start "$START" --profile-span 1d --workers 2 --fraud-every 500
    --commit-interval 1h --rule features --accounts-table "$OUT/accounts.csv"
    --alerts /dev/null --quiet --no-checkpoints)

"$BIN" generate accounts --accounts "$ACCOUNTS" --start "$START" --span 1d \
    --out "$OUT/accounts.csv" >/dev/null
"$BIN" run "${COMMON[@]}" --features-table "$OUT/train-features"
started=$(date +%s%N)
/usr/bin/time -f '%M' -o "$JSON/train.rss" "$BIN" train --table "$OUT/train-features" \
    --model "$OUT/model.json" 2>"$JSON/train.txt"
echo $((($(date +%s%N) - started) / 1000000)) >"$JSON/train.ms"

# run NAME I ARGS...: one whole process on another day's data, timed, peak RSS kept.
run() {
    local name=$1 i=$2
    shift 2
    rm -rf "$OUT/features-$name" "$OUT/predictions"
    local started
    started=$(date +%s%N)
    /usr/bin/time -f '%M' -o "$JSON/$name-$i.rss" "$BIN" run "${COMMON[@]}" --seed 7 \
        --features-table "$OUT/features-$name" "$@"
    echo $((($(date +%s%N) - started) / 1000000)) >"$JSON/$name-$i.ms"
}
for i in $(seq "$RUNS"); do
    run plain "$i"
    run scored "$i" --model "$OUT/model.json" --predictions-table "$OUT/predictions"
done

python3 - "$JSON" "$RUNS" "$EVENTS" "$ACCOUNTS" "$(date -u +%F)" "$(nproc)" \
    "$(cut -d' ' -f1-3 /proc/loadavg)" >docs/benchmarks/scoring.md <<'PY'
import statistics, sys

folder, runs, events, accounts, day, cores, load = sys.argv[1:8]
runs, events, accounts, med = int(runs), int(events), int(accounts), statistics.median_low
read = lambda name: open(f"{folder}/{name}").read()
mb = lambda name: int(read(name).split()[-1]) / 1024
def figures(name):
    secs = [int(read(f"{name}-{i}.ms")) / 1000 for i in range(1, runs + 1)]
    return secs, [mb(f"{name}-{i}.rss") for i in range(1, runs + 1)]
fmt = lambda xs: f"{med(xs):.2f} s ({min(xs):.2f}–{max(xs):.2f})"
rate = lambda xs: f"{events / med(xs) / 1e6:.2f} M"
plain, scored = figures("plain"), figures("scored")
train_s = int(read("train.ms")) / 1000
summary = [l for l in read("train.txt").splitlines() if l.strip()]
print("## Model scoring (`bash scripts/scoring_bench.sh`)")
print()
print(f"{day}, {cores} cores, load average after the runs {load}, release build. "
      f"{events:,} richer transactions of the generator with `--profiles` ({accounts:,} "
      f"accounts, one day of event time, a fraud pattern every 500 slots), joined as of "
      f"their time with `tidelake generate accounts`; 2 workers, `--commit-interval 1h`.")
print()
print(f"`tidelake train` on that features table ({events:,} rows): {train_s:.1f} s, "
      f"{mb('train.rss'):,.0f} MB peak RSS. What it printed:")
print()
print("```")
print("\n".join(summary))
print("```")
print()
print(f"Another day (`--seed 7`) through the same job, alternately {runs} times each; whole "
      f"process, medians (range):")
print()
print("| job | time | events/s | peak RSS |")
print("|---|---|---|---|")
for label, (secs, rsses) in [
    ("`--rule features --accounts-table` → features table", plain),
    ("… `--model` → features and `fraud_predictions` tables", scored),
]:
    print(f"| {label} | {fmt(secs)} | {rate(secs)} | {med(rsses):,.0f} MB |")
print()
print(f"With the model the job takes {med(scored[0]) / med(plain[0]):.2f} of the time without it. "
      f"The scoring itself is not what costs: under `perf record` (3 M events of this data) "
      f"`Scorer::probabilities` has 0.3% of the CPU samples and the feature values (`log1p`) "
      f"0.3%; the rest of the difference is the second table — its rows' copies, Parquet "
      f"encoding and writes (the predictions table is 0.6 of the features table's bytes) — "
      f"and its operators' work per tick. The target of the issue (the model under 20%) is "
      f"not met when the predictions table is counted.")
PY
echo "wrote docs/benchmarks/scoring.md"
