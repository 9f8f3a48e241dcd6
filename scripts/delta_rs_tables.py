"""Compares tidelake's table commands with delta-rs on delta-rs's own test tables.

delta-rs keeps small tables written by Spark, Databricks and delta-rs in
crates/test/tests/data/ of github.com/delta-io/delta-rs (they are not ours to copy
here). With a checkout of that repository and the venv's deltalake:

    .venv/bin/python scripts/delta_rs_tables.py <delta-rs checkout> target/debug/tidelake

For every table Python deltalake opens, prints whether `tidelake table files --json`
gives the same version, number of live files and rows (where delta-rs reads the rows;
tidelake counts `stats.numRecords` less the deletion vectors' cardinality), and whether
`tidelake table history` reads it; a table tidelake refuses shows its error (exit 2
names the feature).
"""
import json
import os
import subprocess
import sys

from deltalake import DeltaTable


def main(checkout, tidelake):
    root = os.path.join(checkout, "crates", "test", "tests", "data")
    agree = opened = 0
    for name in sorted(os.listdir(root)):
        path = os.path.join(root, name)
        if not os.path.isdir(os.path.join(path, "_delta_log")):
            continue
        try:
            table = DeltaTable(path)
            expected = (table.version(), len(table.file_uris()))
        except Exception as e:  # delta-rs refuses it: nothing to compare with
            print(f"{name:45s} delta-rs cannot open it: {str(e)[:80]}")
            continue
        try:
            expected_rows = table.to_pyarrow_table().num_rows
        except Exception:  # delta-rs cannot read the data (a type, a feature)
            expected_rows = None
        opened += 1
        files = subprocess.run([tidelake, "table", "files", path, "--json"],
                               capture_output=True, text=True)
        if files.returncode != 0:
            print(f"{name:45s} tidelake exit {files.returncode}: {files.stderr.strip()[:160]}")
            continue
        report = json.loads(files.stdout)
        got = (report["version"], report["total"]["files"])
        rows = report["total"]["rows"]
        counted = report["total"]["filesWithoutRowCount"] == 0
        history = subprocess.run([tidelake, "table", "history", path, "--json"],
                                 capture_output=True, text=True)
        same_rows = expected_rows is None or not counted or rows == expected_rows
        same = got == expected and same_rows and history.returncode == 0
        agree += same
        print(f"{name:45s} {'AGREE' if same else 'DIFFER'} tidelake v{got[0]} files={got[1]}"
              f" rows={rows if counted else '?'}"
              f" | delta-rs v{expected[0]} files={expected[1]} rows={expected_rows}"
              f" | history exit {history.returncode}")
    print(f"{agree} of the {opened} tables delta-rs opens agree")


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    main(sys.argv[1], sys.argv[2])
