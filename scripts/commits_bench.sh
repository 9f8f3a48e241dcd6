#!/usr/bin/env bash
# Measures commits sized for the table (docs/semantics.md §5) on a replay: CSV -> fraud
# -> Delta, 10 M lines (acct_000123-style ids over 100 k accounts, 868 events per second
# of event time: 3.2 hours, 1,152 commit epochs of 10 s), 2 workers, whole processes, 3
# rounds run alternately: tidelake's defaults, tidelake committing every epoch on its own,
# and pyarrow's CSV parse plus delta-rs's write of the same rows
# (scripts/commits_bench.py). Writes docs/benchmarks/commits.md, which BENCHMARKS.md
# includes.
#
#     (bash scripts/test.sh once makes .venv)
#     bash scripts/commits_bench.sh
set -euo pipefail
cd "$(dirname "$0")/.."

WORK=${WORK:-/tmp/tidelake-bench}/commits
mkdir -p "$WORK"
cargo build --release --quiet --bin tidelake
BIN=$(realpath "${CARGO_TARGET_DIR:-target}/release/tidelake")
PYTHON=$PWD/.venv/bin/python
CSV=$WORK/tx10m-acct.csv
[ -f "$CSV" ] || python3 scripts/make_csv.py "$CSV" --ids acct --per-second 868

"$PYTHON" scripts/commits_bench.py "$BIN" "$CSV" "$WORK" "$WORK/table.md"

LOAD=$(cut -d' ' -f1-3 /proc/loadavg)
COMMIT=$(git rev-parse --short HEAD)
cat >docs/benchmarks/commits.md <<MD
## Commits sized for the table (\`bash scripts/commits_bench.sh\`)

$(date -u +%Y-%m-%d), 2 cores, load average after the runs $LOAD, release build at $COMMIT.
A replay: \`python3 scripts/make_csv.py tx10m-acct.csv --ids acct --per-second 868\` (10 M
lines, 11-character ids over 100 k accounts, 3.2 hours of event time: 1,152 epochs of the
default 10 s per worker) through \`tidelake run --source csv --input tx10m-acct.csv
--workers 2 --table T\` (fraud rule, transactions table, no alerts file), whole process,
against pyarrow's \`read_csv\` of the same file followed by delta-rs's
\`write_deltalake(partition_by=["date"])\` of the rows tidelake wrote (read back
beforehand). Every table is read back with delta-rs and holds every line.

$(cat "$WORK/table.md")
MD
echo "wrote docs/benchmarks/commits.md" >&2
