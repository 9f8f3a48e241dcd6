#!/usr/bin/env python3
"""A model's predictions table for `tidelake report`'s integration tests, with the figures
the report must show recomputed here in plain Python, run with the venv that
scripts/test.sh creates.

    predictions_fixture.py make URL [--rows N] [--seed S] [--without COLUMN]
        Creates a new Delta table at URL with delta-rs (write_deltalake, three appends,
        partitioned by `date`, yyyy-MM-dd of dt) of N rows (default 4000) over two days
        from 2024-05-01T00:00:00Z, generated from the seed (default 7):
            dt timestamp[us, UTC], accountId string, amount double, merchant string,
            country string, label int32 (1 fraud, 0 not, null for ~8%), ruleAlert bool
            (null for ~1%), probability double, prediction int32 (probability >= 0.5),
            modelVersion string ("fraud-v1" the first day, "fraud-v2" the second).
        About 5% of rows are fraud; the rule catches ~40% of it with few false alarms,
        the model scores fraud high and the rest low, with overlap.
        --without COLUMN leaves COLUMN out of the table.

        Prints the figures the report must give, computed from the rows written:
        {"rows": int, "labelledRows": int, "modelVersions": {str: int},
         "model" | "rule" | "any": SCORES,
         "buckets": [{"startMs": int, "rows": int, "labelledRows": int,
                      "model": SCORES, "rule": SCORES}, ...],   # hours with rows, in order
         "scores": {"fraud": [int] * 20, "notFraud": [int] * 20}}
        SCORES = {"truePositives", "falsePositives", "trueNegatives", "falseNegatives":
                  int, "precision", "recall": float or null}.
        A row counts for a classifier when its label and the classifier's verdict are
        known; any = ruleAlert OR prediction, known when either is true or both known.

Prints exactly one JSON document on stdout and exits 0; on any error it prints a traceback
on stderr and exits non-zero.
"""
import argparse
import json
import random
import sys
from datetime import datetime, timezone

import pyarrow as pa
from deltalake import write_deltalake

START_US = 1_714_521_600_000_000  # 2024-05-01T00:00:00Z
DAY_US = 86_400_000_000
HOUR_US = 3_600_000_000
BINS = 20

SCHEMA = pa.schema([
    ("dt", pa.timestamp("us", tz="UTC")),
    ("accountId", pa.string()),
    ("amount", pa.float64()),
    ("merchant", pa.string()),
    ("country", pa.string()),
    ("label", pa.int32()),
    ("ruleAlert", pa.bool_()),
    ("probability", pa.float64()),
    ("prediction", pa.int32()),
    ("modelVersion", pa.string()),
    ("date", pa.string()),
])


def generate(rows, seed):
    rng = random.Random(seed)
    out = []
    for i in range(rows):
        dt = START_US + rng.randrange(2 * DAY_US)
        fraud = rng.random() < 0.05
        if fraud:
            probability = rng.betavariate(5, 2)
            rule = rng.random() < 0.4
        else:
            probability = rng.betavariate(1.2, 12)
            rule = rng.random() < 0.01
        if i % 997 == 0:
            probability = 1.0  # the last bin's closed end
        elif i % 991 == 0:
            probability = 0.0
        out.append({
            "dt": dt,
            "accountId": f"acct-{rng.randrange(300)}",
            "amount": round(rng.uniform(1, 2000), 2),
            "merchant": f"m{rng.randrange(40)}",
            "country": rng.choice(["DE", "FR", "US", "BR", "JP"]),
            "label": None if rng.random() < 0.08 else int(fraud),
            "ruleAlert": None if rng.random() < 0.01 else rule,
            "probability": probability,
            "prediction": int(probability >= 0.5),
            "modelVersion": "fraud-v1" if dt < START_US + DAY_US else "fraud-v2",
            "date": datetime.fromtimestamp(dt / 1e6, tz=timezone.utc).strftime("%Y-%m-%d"),
        })
    return out


class Counts:
    def __init__(self):
        self.tp = self.fp = self.tn = self.fn = 0

    def add(self, verdict, label):
        if verdict is None:
            return
        if verdict and label:
            self.tp += 1
        elif verdict:
            self.fp += 1
        elif label:
            self.fn += 1
        else:
            self.tn += 1

    def figures(self):
        return {
            "truePositives": self.tp, "falsePositives": self.fp,
            "trueNegatives": self.tn, "falseNegatives": self.fn,
            "precision": self.tp / (self.tp + self.fp) if self.tp + self.fp else None,
            "recall": self.tp / (self.tp + self.fn) if self.tp + self.fn else None,
        }


def expected(rows):
    model, rule, either = Counts(), Counts(), Counts()
    buckets = {}
    versions = {}
    fraud_bins, not_fraud_bins = [0] * BINS, [0] * BINS
    labelled = 0
    for r in rows:
        versions[r["modelVersion"]] = versions.get(r["modelVersion"], 0) + 1
        start = r["dt"] - r["dt"] % HOUR_US
        b = buckets.setdefault(start, {"rows": 0, "labelled": 0, "model": Counts(), "rule": Counts()})
        b["rows"] += 1
        if r["label"] is None:
            continue
        label = r["label"] == 1
        labelled += 1
        b["labelled"] += 1
        prediction = r["prediction"] == 1
        alert = r["ruleAlert"]
        if alert is True or prediction:
            any_verdict = True
        elif alert is None:
            any_verdict = None
        else:
            any_verdict = False
        model.add(prediction, label)
        rule.add(alert, label)
        either.add(any_verdict, label)
        b["model"].add(prediction, label)
        b["rule"].add(alert, label)
        bin_ = min(int(r["probability"] * BINS), BINS - 1)
        (fraud_bins if label else not_fraud_bins)[bin_] += 1
    return {
        "rows": len(rows),
        "labelledRows": labelled,
        "modelVersions": versions,
        "model": model.figures(),
        "rule": rule.figures(),
        "any": either.figures(),
        "buckets": [
            {"startMs": start // 1000, "rows": b["rows"], "labelledRows": b["labelled"],
             "model": b["model"].figures(), "rule": b["rule"].figures()}
            for start, b in sorted(buckets.items())
        ],
        "scores": {"fraud": fraud_bins, "notFraud": not_fraud_bins},
    }


def make(url, rows, seed, without):
    data = generate(rows, seed)
    schema = SCHEMA
    if without:
        schema = schema.remove(schema.get_field_index(without))
    # Three appends, so the report reads several commits' files.
    third = len(data) // 3 + 1
    for chunk in (data[:third], data[third:2 * third], data[2 * third:]):
        table = pa.Table.from_pylist(chunk, schema=schema)
        write_deltalake(url, table, partition_by=["date"], mode="append")
    return expected(data)


def main():
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="command", required=True)
    m = sub.add_parser("make")
    m.add_argument("url")
    m.add_argument("--rows", type=int, default=4000)
    m.add_argument("--seed", type=int, default=7)
    m.add_argument("--without")
    args = parser.parse_args()
    out = make(args.url, args.rows, args.seed, args.without)
    json.dump(out, sys.stdout)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
