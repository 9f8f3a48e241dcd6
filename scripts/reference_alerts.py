#!/usr/bin/env python3
"""An independent implementation of the fraud rule (docs/semantics.md §2) for one CSV file
`account_id,ts_millis,amount` (optional header): per account, order by (ts, line) and
alert on each small (< 1.00) -> large (> 500.00) neighbour pair at most 60 000 ms apart.

    python3 scripts/reference_alerts.py tx.csv alerts.jsonl

compares with tidelake's alerts file and exits non-zero on any difference; without the
second argument it prints the alert count.
"""
import json
import sys


def reference(path):
    last = {}  # account -> (ts, amount) of its previous transaction, in (ts, line) order
    rows = []
    with open(path, newline="") as f:
        for n, line in enumerate(f):
            line = line.strip()
            if not line or (n == 0 and line.replace(" ", "").lower() == "account_id,ts_millis,amount"):
                continue
            account, ts, amount = line.split(",")
            rows.append((int(ts), n, account, float(amount)))
    rows.sort()
    alerts = set()
    for ts, _, account, amount in rows:
        prev = last.get(account)
        if prev is not None and amount > 500.0 and prev[1] < 1.0 and ts - prev[0] <= 60_000:
            alerts.add((account, ts, prev[0], prev[1], amount))
        last[account] = (ts, amount)
    return alerts


def main():
    expected = reference(sys.argv[1])
    if len(sys.argv) < 3:
        print(len(expected))
        return
    got = set()
    with open(sys.argv[2]) as f:
        for line in f:
            a = json.loads(line)
            got.add((a["accountId"], a["ts"], a["smallTs"], a["smallAmount"], a["largeAmount"]))
    print(f"reference {len(expected)} alerts, tidelake {len(got)}: {'equal' if got == expected else 'DIFFERENT'}")
    if got != expected:
        print("missing:", sorted(expected - got)[:10], "extra:", sorted(got - expected)[:10])
        sys.exit(1)


if __name__ == "__main__":
    main()
