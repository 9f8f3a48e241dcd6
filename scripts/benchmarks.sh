#!/usr/bin/env bash
# Measures the end-to-end throughput targets of issue 5 on this machine and writes
# BENCHMARKS.md: each scenario 3 times (release build, whole process), median and range
# of events/s, and the peak RSS (GNU time). Run it on an otherwise idle machine:
#
#     bash scripts/benchmarks.sh            # writes BENCHMARKS.md
#
# Needs GNU time (/usr/bin/time) and python3 (for the 10 M-line CSV, made once in $WORK).
set -euo pipefail
cd "$(dirname "$0")/.."

WORK=${WORK:-/tmp/tidelake-bench}
RUNS=3
mkdir -p "$WORK"
cargo build --release --quiet
BIN=${CARGO_TARGET_DIR:-target}/release/tidelake
CSV=$WORK/tx10m.csv
[ -f "$CSV" ] || python3 scripts/make_csv.py "$CSV"

# One scenario: NAME, then the `tidelake run` arguments. Prints a Markdown table row.
measure() {
    local name=$1
    shift
    local rates=() rss=()
    for _ in $(seq "$RUNS"); do
        rm -rf "$WORK/lake"
        local out
        out=$(/usr/bin/time -f 'peak-rss-kb %M' "$BIN" run --quiet "$@" 2>&1 >/dev/null)
        rates+=("$(sed -n 's/.* events (\([0-9,]*\)\/s).*/\1/p' <<<"$out" | tr -d ,)")
        rss+=("$(sed -n 's/^peak-rss-kb //p' <<<"$out")")
    done
    local sorted median
    sorted=$(printf '%s\n' "${rates[@]}" | sort -n)
    median=$(sed -n "$(((RUNS + 1) / 2))p" <<<"$sorted")
    printf '| %s | %.2f M | %.2f–%.2f M | %d MB |\n' "$name" \
        "$(bc -l <<<"$median / 1000000")" \
        "$(bc -l <<<"$(head -1 <<<"$sorted") / 1000000")" \
        "$(bc -l <<<"$(tail -1 <<<"$sorted") / 1000000")" \
        "$(($(printf '%s\n' "${rss[@]}" | sort -n | tail -1) / 1024))"
}

rows=$(
    measure "CSV file, 10 M lines → fraud → alerts file (target ≥ 5 M/s)" \
        --source csv --input "$CSV" --workers 2 --alerts "$WORK/alerts.jsonl" --no-table
    measure "generator, 10 M → fraud → null sink (target ≥ 10 M/s)" \
        --count 10000000 --start 0 --workers 2 --alerts /dev/null --no-table
    measure "generator, 10 M → fraud → Delta table on local disk (target ≥ 3 M/s)" \
        --count 10000000 --start 0 --workers 2 --alerts /dev/null --table "$WORK/lake/t"
)

cat >BENCHMARKS.md <<EOF
# Benchmarks

Measured by \`bash scripts/benchmarks.sh\`, which wrote this file; every figure below
comes from that run. Do not edit the figures by hand: run the script.

## Machine

- $(nproc) cores: $(lscpu | sed -n 's/^Model name: *//p' | head -1)
- $(free -g | awk '/^Mem:/ {print $2}') GiB of memory; $(uname -sr)
- $(rustc --version)

## End to end (release build, whole process)

The defaults of the bench: 100 000 accounts, the SPEC §4 amount mix with injected
fraud, 100 000 events per second of event time, tick \`100ms\`, commit interval \`10s\`,
2 workers. The CSV file is \`python3 scripts/make_csv.py\` (10 M lines, the same mix).
Each scenario runs $RUNS times; events/s is the process's total (accepted records over
wall time from start to end of the job), the RSS the largest of the runs.

| scenario | events/s (median) | range | peak RSS |
|---|---|---|---|
$rows

Commands (as the script runs them):

\`\`\`sh
tidelake run --source csv --input tx10m.csv --workers 2 --alerts alerts.jsonl --no-table
tidelake run --count 10000000 --start 0 --workers 2 --alerts /dev/null --no-table
tidelake run --count 10000000 --start 0 --workers 2 --alerts /dev/null --table lake/t
\`\`\`

Not measured yet (issue 5): alert latency p50/p99 in ingestion mode, state bytes per
account, the \`tidelake bench\` command and its \`--scaling\` runs.

## Hot paths (criterion)

\`cargo bench\` runs \`benches/fraud_operator.rs\` (the fraud operator per event) and
\`benches/hot_paths.rs\` (key routing, CSV parsing per line, Arrow building + Parquet
encoding per row, one Delta commit on local disk); criterion keeps its reports under
\`target/criterion/\`.
EOF
echo "wrote BENCHMARKS.md"
