#!/usr/bin/env bash
# Measures growth over a long run (issue 18, target 6): `tidelake bench --scenario
# growth`, the generator's 100 M events over 1 M accounts -> fraud -> Delta table on
# local disk, 2 workers, whole process, read stretch by stretch (10 M events each) from
# the job's own metrics; then delta-rs opening the table. 3 rounds run alternately:
# tidelake's defaults (auto-compaction on) and --no-auto-compact. Writes
# docs/benchmarks/growth.md, which BENCHMARKS.md includes.
#
#     (bash scripts/test.sh once makes .venv)
#     bash scripts/growth_bench.sh
set -euo pipefail
cd "$(dirname "$0")/.."

WORK=${WORK:-/tmp/tidelake-bench}/growth
RUNS=${RUNS:-3}
EVENTS=${EVENTS:-100000000}
ACCOUNTS=${ACCOUNTS:-1000000}
rm -rf "$WORK"
mkdir -p "$WORK"
cargo build --release --quiet --bin tidelake
BIN=$(realpath "${CARGO_TARGET_DIR:-target}/release/tidelake")
PYTHON=$PWD/.venv/bin/python

for i in $(seq "$RUNS"); do
    for mode in defaults no-compact; do
        extra=()
        [ "$mode" = no-compact ] && extra=(-- --no-auto-compact)
        (cd "$WORK" && "$BIN" bench --scenario growth --events "$EVENTS" --accounts "$ACCOUNTS" \
            --delta-rs "$PYTHON" --dir "$WORK" --json "$WORK/$mode-$i.json" "${extra[@]}" >/dev/null)
    done
done

LOAD=$(cut -d' ' -f1-3 /proc/loadavg)
COMMIT=$(git rev-parse --short HEAD)
tables=$(
    python3 - "$WORK" "$RUNS" <<'PY'
import json, statistics, sys

folder, runs = sys.argv[1], int(sys.argv[2])
med = statistics.median_low
for mode, label in [("defaults", "defaults (auto-compaction on)"), ("no-compact", "`--no-auto-compact`")]:
    reports = [json.load(open(f"{folder}/{mode}-{i}.json")) for i in range(1, runs + 1)]
    print(f"**{label}**, medians of {runs} runs (range):\n")
    print("| stretch ends at | events/s over the stretch | RSS at its end | rule state |")
    print("|---|---|---|---|")
    stretches = min(len(r["stretches"]) for r in reports)
    for k in range(stretches):
        row = [r["stretches"][k] for r in reports]
        rates = [s["events_per_second"] for s in row]
        rss = [s["rss_bytes"] for s in row]
        print(
            f"| {med(s['events'] for s in row) / 1e6:.0f} M "
            f"| {med(rates) / 1e6:.2f} M ({min(rates) / 1e6:.2f}–{max(rates) / 1e6:.2f}) "
            f"| {med(rss) / 1e6:.0f} MB ({min(rss) / 1e6:.0f}–{max(rss) / 1e6:.0f}) "
            f"| {med(s['state_bytes'] for s in row) / 1e6:.1f} MB |"
        )
    runs_ = [r["run"] for r in reports]
    opened = [r["delta_rs"] for r in reports]
    rates = [t["events_per_second"] for t in runs_]
    print(
        f"\nWhole run: {med(rates) / 1e6:.2f} M events/s ({min(rates) / 1e6:.2f}–{max(rates) / 1e6:.2f}), "
        f"peak RSS {max(t['peak_rss_bytes'] for t in runs_) / 1e6:.0f} MB (max), "
        f"{med(t['commits'] for t in runs_)} commits; afterwards delta-rs opens the table "
        f"(version {med(o['version'] for o in opened)}, {med(o['files'] for o in opened)} live files) "
        f"in {med(o['ms'] for o in opened):.0f} ms ({min(o['ms'] for o in opened):.0f}–{max(o['ms'] for o in opened):.0f}).\n"
    )
PY
)

cat >docs/benchmarks/growth.md <<MD
## Growth over 100 M events (\`bash scripts/growth_bench.sh\`)

$(date -u +%Y-%m-%d), 2 cores, load average after the runs $LOAD, release build at $COMMIT.
\`tidelake bench --scenario growth --events $EVENTS --accounts $ACCOUNTS --delta-rs PYTHON\`:
the generator's events through the fraud rule into the transactions table on local disk,
2 workers, one process; the bench reads the job's \`/metrics\` every 100 ms and cuts the
run into 10 stretches at the first reading past each 10 M events. A stretch's events/s
is its events over its wall time; the first includes the process's start, the last its
final commit and compaction. RSS is the process's (\`process_resident_memory_bytes\`).
The rounds of the two settings ran alternately.

$tables
MD
echo "wrote docs/benchmarks/growth.md" >&2
