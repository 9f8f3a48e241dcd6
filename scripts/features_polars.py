"""Batch reference for tidelake's streaming "history features", in polars.

Reads a Delta table written by tidelake's features job (`--rule features
--features-table TABLE`), recomputes the history features from the input
columns (dt, accountId, amount, merchant, country) as one batch job over all
rows, and with --check compares them with the columns tidelake wrote. Used as
a time to compare with in a benchmark, and as an independent check.

Definitions (exact). For every transaction x of account a, over a's
transactions strictly BEFORE x in (ts, tie-break) order:
  txCountW, txSumW  count and sum of amount of those earlier ones with
                    ts > x.ts - W, for W = 1h (3,600,000 ms), 24h and
                    30d (30 x 86,400,000 ms); 0 and 0.0 when there are none
  msSincePrev,      x.ts - prev.ts and prev.amount of the immediately
  prevAmount        preceding transaction; null if there is none or if
                    prev.ts <= x.ts - 30d
  countries24h      number of distinct non-null countries among the earlier
                    ones with ts > x.ts - 24h; null when x's own country is null

Ties: the stream orders one account's rows by (ts, partition, seq), which the
table does not carry. Rows of an account that share their ts with another row
of that account are "tied": their features depend on that hidden order, so
they are excluded from the comparison (tied_rows counts them). The rolling
windows here are open at both ends, (x.ts - W, x.ts), which leaves out x and
every row at the same instant; that is exact for every untied row. A row right
after a group of tied rows has an ambiguous prevAmount (which of the group is
last?): its prevAmount is not compared (counted as "prevAmount skipped").

Usage:
  .venv/bin/python scripts/features_polars.py TABLE [--check]

Prints one JSON object on stdout:
  {"rows", "accounts", "read_s", "compute_s", "tied_rows", "checked_rows",
   "mismatches"}
read_s is the time to read the input columns into polars, compute_s the time
to sort and compute all features. checked_rows and mismatches are null
without --check. With --check a summary goes to stderr; when mismatches > 0,
up to 5 examples go to stderr too and the exit status is 1. Counts and
msSincePrev, prevAmount, countries24h must match exactly (null = null); sums
within 1e-6 relative (tidelake adds oldest first in f64, polars otherwise).
"""

import argparse
import json
import sys
import time

import deltalake
import polars as pl

INPUTS = ["dt", "accountId", "amount", "merchant", "country"]
KEY = ["accountId", "dt", "merchant"]
WINDOWS = [("1h", "1h"), ("24h", "24h"), ("30d", "720h")]  # name, polars period
COUNTS = [f"txCount{w}" for w, _ in WINDOWS]
SUMS = [f"txSum{w}" for w, _ in WINDOWS]
EXACT = ["msSincePrev", "prevAmount", "countries24h"]
FEATURES = COUNTS + SUMS + EXACT
MS_30D = 30 * 86_400_000


def read(table, columns):
    arrow = deltalake.DeltaTable(table).to_pyarrow_table(columns=columns)
    return pl.from_arrow(arrow)


def compute(df):
    """All features for every row of df (columns INPUTS), sorted by (accountId, dt)."""
    df = df.sort("accountId", "dt")
    exprs = []
    for name, period in WINDOWS:
        # closed="none": the window (dt - period, dt), without this row or its ties.
        def win(e, period=period):
            return e.rolling("dt", period=period, closed="none").over("accountId")

        exprs.append(win(pl.len()).cast(pl.Int32).alias(f"txCount{name}"))
        exprs.append(win(pl.col("amount").sum()).alias(f"txSum{name}"))
        if name == "24h":
            distinct = win(pl.col("country").drop_nulls().n_unique()).cast(pl.Int32)
            exprs.append(
                pl.when(pl.col("country").is_not_null())
                .then(distinct)
                .otherwise(None)
                .alias("countries24h")
            )
    gap = (pl.col("dt") - pl.col("dt").shift(1).over("accountId")).dt.total_milliseconds()
    recent = gap < MS_30D
    exprs.append(pl.when(recent).then(gap).otherwise(None).cast(pl.Int64).alias("msSincePrev"))
    exprs.append(
        pl.when(recent)
        .then(pl.col("amount").shift(1).over("accountId"))
        .otherwise(None)
        .alias("prevAmount")
    )
    return df.with_columns(exprs)


def tied():
    return pl.len().over("accountId", "dt") > 1


def check(ours, theirs):
    """Compare untied rows; return (checked_rows, mismatching rows frame, per-column counts)."""
    # A row whose predecessor is tied has an ambiguous prevAmount.
    ours = ours.with_columns(
        tied=tied(),
        prev_tied=tied().shift(1, fill_value=False).over("accountId")
        & pl.col("msSincePrev").is_not_null(),
    ).filter(~pl.col("tied"))
    theirs = theirs.filter(~tied())
    joined = ours.join(theirs, on=KEY, how="inner", suffix="_tl", validate="1:1")
    if joined.height != ours.height or joined.height != theirs.height:
        sys.exit(f"join mismatch: {ours.height} untied rows here, {theirs.height} "
                 f"in the table, {joined.height} joined")
    bad = {}
    for c in COUNTS + ["msSincePrev", "countries24h"]:
        bad[c] = ~pl.col(c).eq_missing(pl.col(f"{c}_tl"))
    for c in SUMS:
        a, b = pl.col(c), pl.col(f"{c}_tl")
        close = (a - b).abs() <= 1e-6 * pl.max_horizontal(a.abs(), b.abs()) + 1e-9
        bad[c] = a.is_null() | b.is_null() | ~close
    bad["prevAmount"] = ~pl.col("prev_tied") & ~pl.col("prevAmount").eq_missing(
        pl.col("prevAmount_tl"))
    flags = joined.select(**{f"bad_{c}": e for c, e in bad.items()}, **{c: pl.col(c) for c in KEY},
                          **{c: pl.col(c) for c in FEATURES},
                          **{f"{c}_tl": pl.col(f"{c}_tl") for c in FEATURES})
    per_col = {c: int(flags[f"bad_{c}"].sum()) for c in FEATURES}
    rows = flags.filter(pl.any_horizontal(f"bad_{c}" for c in FEATURES))
    skipped = int(joined["prev_tied"].sum())
    return joined.height, rows, per_col, skipped


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("table", help="Delta table written by tidelake's features job")
    ap.add_argument("--check", action="store_true", help="compare with tidelake's columns")
    args = ap.parse_args()

    t0 = time.perf_counter()
    df = read(args.table, INPUTS)
    read_s = time.perf_counter() - t0

    t0 = time.perf_counter()
    ours = compute(df)
    compute_s = time.perf_counter() - t0

    n_tied = int(ours.select(tied().sum()).item())
    out = {"rows": df.height, "accounts": df["accountId"].n_unique(),
           "read_s": round(read_s, 3), "compute_s": round(compute_s, 3),
           "tied_rows": n_tied, "checked_rows": None, "mismatches": None}
    examples = None
    if args.check:
        theirs = read(args.table, KEY + FEATURES)
        checked, rows, per_col, skipped = check(ours, theirs)
        out["checked_rows"], out["mismatches"] = checked, rows.height
        print(f"check: {df.height} rows, {n_tied} tied (excluded), {checked} compared, "
              f"{rows.height} mismatching; prevAmount skipped after a tie: {skipped}",
              file=sys.stderr)
        print("  mismatches by column: " + ", ".join(f"{c}={n}" for c, n in per_col.items()),
              file=sys.stderr)
        examples = rows.head(5)
    print(json.dumps(out))
    if examples is not None and examples.height:
        print("example mismatches (ours vs tidelake's *_tl):", file=sys.stderr)
        for r in examples.iter_rows(named=True):
            wrong = [c for c in FEATURES if r[f"bad_{c}"]]
            detail = ", ".join(f"{c}: {r[c]} vs {r[c + '_tl']}" for c in wrong)
            print(f"  account {r['accountId']} dt {r['dt']} merchant {r['merchant']}: {detail}",
                  file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
