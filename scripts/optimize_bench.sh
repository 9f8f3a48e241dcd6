#!/usr/bin/env bash
# Measures OPTIMIZE and ZORDER BY of one large partition in bounded memory
# (docs/semantics.md §6): a 5 GB unpartitioned table that delta-rs writes in 32 MB files
# (scripts/optimize_bench.py), bin-packed and Z-ordered by tidelake and by delta-rs, each
# on a fresh copy, whole processes, peak RSS of each. Writes docs/benchmarks/optimize.md,
# which BENCHMARKS.md includes. Needs about 4 × GB of free disk in WORK (the table, a
# copy, and the sorted runs in TMPDIR).
#
#     (bash scripts/test.sh once makes .venv)
#     bash scripts/optimize_bench.sh            # GB=5 ROUNDS=1 by default
set -euo pipefail
cd "$(dirname "$0")/.."

WORK=${WORK:-/tmp/tidelake-bench}/optimize
GB=${GB:-5}
ROUNDS=${ROUNDS:-1}
mkdir -p "$WORK"
cargo build --release --quiet --bin tidelake
BIN=$(realpath "${CARGO_TARGET_DIR:-target}/release/tidelake")

.venv/bin/python scripts/optimize_bench.py "$BIN" "$WORK" "$WORK/table.md" --gb "$GB" --rounds "$ROUNDS"

LOAD=$(cut -d' ' -f1-3 /proc/loadavg)
COMMIT=$(git rev-parse --short HEAD)
cat >docs/benchmarks/optimize.md <<MD
## Maintenance of a large partition (\`bash scripts/optimize_bench.sh\`)

$(date -u +%Y-%m-%d), 2 cores, load average after the runs $LOAD, release build at $COMMIT.
An unpartitioned table of ${GB} GB that delta-rs wrote (\`write_deltalake\`, snappy) in
files of about 32 MB: \`accountId\` (\`acct_000123\`-style, 1 M accounts), \`ts\`,
\`amount\`, and a \`memo\` of 200 random hex characters. Each run on a fresh copy, a
whole process: \`tidelake table optimize T [--zorder-by accountId,ts]\` (defaults: 128 MiB
target, 512 MiB of sort memory, runs spilled to TMPDIR) against delta-rs's
\`optimize.compact(target_size=128 MiB)\` and \`optimize.z_order(["accountId", "ts"],
target_size=128 MiB)\` (its defaults otherwise). Peak RSS is each process's own
(\`wait4\`). Every result is read back with delta-rs and holds every row. tidelake
writes zstd, hence fewer bytes.

$(cat "$WORK/table.md")
MD
echo "wrote docs/benchmarks/optimize.md" >&2
