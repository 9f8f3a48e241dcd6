#!/usr/bin/env python3
"""Writes a CSV of transactions `account_id,ts_millis,amount` (no header, ts
non-decreasing) for throughput runs and reference checks.

    python3 scripts/make_csv.py OUT.csv [--lines 10000000] [--accounts 100000] [--seed 7]
        [--per-second 100000] [--ids number|acct]

Event-time density is --per-second events per second of event time (default 100 000);
account ids are numbers (`4711`) or, with `--ids acct`, 11 characters (`acct_004711`);
amounts are 2% small (< 1.00), 2% large (> 500.00), the rest between 1.00 and 500.00
inclusive.
"""
import argparse
import random


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("out")
    p.add_argument("--lines", type=int, default=10_000_000)
    p.add_argument("--accounts", type=int, default=100_000)
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--start", type=int, default=1_714_521_600_000, help="first ts (ms)")
    p.add_argument("--per-second", type=int, default=100_000, help="events per second of event time")
    p.add_argument("--ids", choices=["number", "acct"], default="number")
    a = p.parse_args()
    account = (lambda n: f"acct_{n:06d}") if a.ids == "acct" else str
    rng = random.Random(a.seed)
    rand, randrange = rng.random, rng.randrange
    with open(a.out, "w", buffering=1 << 22) as f:
        chunk = []
        for i in range(a.lines):
            r = rand()
            if r < 0.02:
                amount = randrange(1, 100) / 100
            elif r < 0.04:
                amount = randrange(50001, 500001) / 100
            else:
                amount = randrange(100, 50001) / 100
            ts = a.start + i * 1000 // a.per_second
            chunk.append(f"{account(randrange(a.accounts))},{ts},{amount:.2f}\n")
            if len(chunk) == 100_000:
                f.write("".join(chunk))
                chunk.clear()
        f.write("".join(chunk))


if __name__ == "__main__":
    main()
