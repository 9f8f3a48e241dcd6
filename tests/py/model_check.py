"""Independent checks of tidelake's model scoring (docs/scoring.md), for tests/it/scoring.rs.

The model's features are computed here from the features table's columns by the formulas
docs/scoring.md §1 gives, with numpy; probabilities from the model file's scaling,
coefficients and intercept; figures with scikit-learn. Each subcommand prints one JSON
document:

    heldout MODEL FEATURES        the held-out figures of the model and the rule, and
                                  scikit-learn's fit on the same training rows
    probabilities MODEL FEATURES PREDICTIONS
                                  the predictions table's probabilities against these
    same PREDICTIONS_A PREDICTIONS_B
                                  whether two predictions tables hold the same rows, bit
                                  for bit
    alerts PREDICTIONS ALERTS_JSONL ON
                                  the alerts file against the predictions (ON: model|any)
    make-labels FEATURES EARLY_MS OUT_EARLY OUT_REST
                                  labels (CSV accountId,ts,label) for a sample of the
                                  table's transactions, half flipped, some duplicated, some
                                  of no transaction: those at or before EARLY_MS to
                                  OUT_EARLY, the rest to OUT_REST
    append-labels URL CSV         delta-rs appends the labels of CSV (accountId string, ts
                                  timestamp, label int32), creating the table
    quality PREDICTIONS QUALITY LABELS_CSV...
                                  the quality changelog's figures now against polars'
                                  batch recomputation from the predictions and the labels
"""

import json
import math
import sys

import numpy as np
import polars as pl
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score

MONTH_SECONDS = 30 * 24 * 3600


def col(df, name, fill=np.nan):
    return df[name].cast(pl.Float64).fill_null(fill).to_numpy()


def feature_values(df, name):
    """The catalog feature `name` of every row of `df` (nulls: the documented missing value)."""
    a = col(df, "amount")
    log_a = np.log1p(a)
    if name == "amount":
        return a
    if name == "ruleAlert":
        return col(df, "ruleAlert", 0.0)
    if name == "small":
        return (a < 1.0).astype(float)
    if name in ("txCount1h", "txCount24h", "txCount30d", "txSum1h", "txSum24h", "txSum30d"):
        return col(df, name, 0.0)
    if name == "countries24h":
        return col(df, name, 0.0)
    if name == "foreignCountry":
        return col(df, name, 0.0)
    if name == "logAmount":
        return log_a
    if name == "logTxCount1h":
        return np.log1p(col(df, "txCount1h", 0.0))
    if name == "logTxCount24h":
        return np.log1p(col(df, "txCount24h", 0.0))
    if name == "logAmountToAvg30d":
        n, s = col(df, "txCount30d", 0.0), col(df, "txSum30d", 0.0)
        with np.errstate(all="ignore"):
            return np.where(n > 0, log_a - np.log1p(s / np.where(n > 0, n, 1)), 0.0)
    if name == "logAmountToPrev":
        prev = col(df, "prevAmount")
        return np.where(np.isnan(prev), 0.0, log_a - np.log1p(np.nan_to_num(prev)))
    if name == "logSecondsSincePrev":
        ms = col(df, "msSincePrev")
        return np.where(np.isnan(ms), math.log1p(MONTH_SECONDS), np.log1p(np.nan_to_num(ms) / 1000.0))
    if name == "amountToCreditLimit":
        limit = col(df, "creditLimit")
        ok = ~np.isnan(limit) & (np.nan_to_num(limit) > 0)
        return np.where(ok, a / np.where(ok, limit, 1.0), 0.0)
    raise SystemExit(f"unknown feature {name}")


def scaled_matrix(model, df):
    return np.column_stack(
        [(feature_values(df, f["name"]) - f["mean"]) / f["scale"] for f in model["features"]]
    )


def probabilities(model, df):
    x = scaled_matrix(model, df)
    z = np.full(len(df), model["intercept"])
    for j, w in enumerate(model["coefficients"]):
        z = z + w * x[:, j]
    return np.where(z >= 0, 1.0 / (1.0 + np.exp(-np.abs(z))), np.exp(-np.abs(z)) / (1.0 + np.exp(-np.abs(z))))


def confusion(pred, label):
    pred, label = pred.astype(bool), label.astype(bool)
    return {
        "truePositives": int((pred & label).sum()),
        "falsePositives": int((pred & ~label).sum()),
        "trueNegatives": int((~pred & ~label).sum()),
        "falseNegatives": int((~pred & label).sum()),
    }


def best_recall_at(p, label, min_precision):
    order = np.argsort(-p, kind="stable")
    ps, ls = p[order], label[order].astype(float)
    tp, k = np.cumsum(ls), np.arange(1, len(ps) + 1)
    # Only at the last row of each run of equal scores (a threshold takes them all).
    last = np.append(ps[1:] != ps[:-1], True)
    ok = last & (tp / k >= min_precision)
    if not ok.any():
        return None
    return float((tp[ok] / ls.sum()).max())


def read_model(path):
    with open(path) as f:
        return json.load(f)


def heldout(model_path, table):
    model = read_model(model_path)
    df = pl.read_delta(table).filter(pl.col("label").is_not_null())
    split = np.datetime64(model["training"]["heldOutFrom"].rstrip("Z"), "us")
    dt = df["dt"].cast(pl.Datetime("us")).to_numpy()
    held, train = dt >= split, dt < split
    label = df["label"].to_numpy().astype(int)
    rule = col(df, "ruleAlert", 0.0)
    p = probabilities(model, df)
    rule_conf = confusion(rule[held] > 0, label[held])
    rule_precision = rule_conf["truePositives"] / max(1, rule_conf["truePositives"] + rule_conf["falsePositives"])
    # scikit-learn's own fit on the same scaled training rows: C = 1 / l2 on the summed loss.
    x = scaled_matrix(model, df)
    sk = LogisticRegression(C=1.0 / model["training"]["l2"], tol=1e-10, max_iter=10000)
    sk.fit(x[train], label[train])
    print(json.dumps({
        "trainRows": int(train.sum()),
        "heldOutRows": int(held.sum()),
        "model": confusion(p[held] >= model["threshold"], label[held]),
        "rule": rule_conf,
        "modelRocAuc": float(roc_auc_score(label[held], p[held])),
        "ruleRocAuc": float(roc_auc_score(label[held], rule[held])),
        "recallAtRulePrecision": best_recall_at(p[held], label[held], rule_precision),
        "sklearnCoefficients": sk.coef_[0].tolist(),
        "sklearnIntercept": float(sk.intercept_[0]),
    }))


KEY = ["accountId", "dt", "amount", "merchant"]


def check_probabilities(model_path, features_table, predictions_table):
    model = read_model(model_path)
    features = pl.read_delta(features_table)
    predictions = pl.read_delta(predictions_table)
    unique = lambda df: df.filter(pl.len().over(KEY) == 1)
    joined = unique(features).join(unique(predictions), on=KEY, how="inner", suffix="_p")
    expected = probabilities(model, joined)
    got = joined["probability"].to_numpy()
    prediction = joined["prediction"].to_numpy()
    print(json.dumps({
        "featureRows": len(features),
        "predictionRows": len(predictions),
        "distinctPredictionKeys": predictions.select(KEY).unique().height,
        "compared": len(joined),
        "maxAbsDiff": float(np.max(np.abs(expected - got))) if len(joined) else 0.0,
        "predictionMismatches": int((prediction != (got >= model["threshold"]).astype(int)).sum()),
        "ruleMismatches": int((joined["ruleAlert"] != joined["ruleAlert_p"]).sum()),
        "labelMismatches": int((joined["label"].fill_null(-1) != joined["label_p"].fill_null(-1)).sum()),
        "modelVersions": sorted(predictions["modelVersion"].unique().to_list()),
    }))


def same(a, b):
    cols = ["dt", "accountId", "amount", "merchant", "country", "label", "ruleAlert", "probability", "prediction", "modelVersion"]
    def rows(table):
        df = pl.read_delta(table).select(cols)
        # Probabilities compared by their bits.
        df = df.with_columns(pl.col("probability").reinterpret(signed=True).alias("probability"))
        return df.sort(cols)
    ra, rb = rows(a), rows(b)
    equal = ra.height == rb.height and ra.equals(rb)
    print(json.dumps({"rowsA": ra.height, "rowsB": rb.height, "equal": equal}))


def alerts(predictions_table, alerts_path, on):
    predictions = pl.read_delta(predictions_table)
    flagged = pl.col("prediction") == 1
    if on == "any":
        flagged = flagged | pl.col("ruleAlert")
    expected = predictions.filter(flagged)
    expected_keys = sorted(
        (r["accountId"], int(r["dt"].timestamp() * 1000 + 0.5), r["probability"], bool(r["ruleAlert"]), r["prediction"] == 1)
        for r in expected.iter_rows(named=True)
    )
    with open(alerts_path) as f:
        lines = [json.loads(line) for line in f if line.strip()]
    got_keys = sorted((a["accountId"], a["ts"], a["probability"], a["ruleAlert"], a["modelAlert"]) for a in lines)
    print(json.dumps({"expected": len(expected_keys), "alerts": len(got_keys), "equal": expected_keys == got_keys}))


def make_labels(features_table, early_ms, out_early, out_rest):
    rng = np.random.default_rng(7)
    df = pl.read_delta(features_table).select(["accountId", "dt", "label"])
    ms = (df["dt"].cast(pl.Int64) // 1000).to_numpy()
    pick = rng.random(len(df)) < 0.05
    rows = []
    accounts = df["accountId"].to_list()
    labels = df["label"].to_list()
    for i in np.nonzero(pick)[0]:
        inline = labels[i] if labels[i] is not None else 0
        label = 1 - inline if rng.random() < 0.5 else inline
        rows.append((accounts[i], int(ms[i]), int(label)))
        if rng.random() < 0.1:  # a second label for the transaction: fraud wins
            rows.append((accounts[i], int(ms[i]), int(1 - label)))
    # Labels of no transaction.
    rows += [("no-such-account", int(ms[0]), 1), (accounts[0], int(ms[0]) + 1, 1)]
    early = [r for r in rows if r[1] <= int(early_ms)]
    rest = [r for r in rows if r[1] > int(early_ms)]
    for path, part in ((out_early, early), (out_rest, rest)):
        with open(path, "w") as f:
            f.write("accountId,ts,label\n")
            for account, t, label in part:
                quoted = '"' + account.replace('"', '""') + '"'
                f.write(f"{quoted},{t},{label}\n")
    print(json.dumps({"early": len(early), "rest": len(rest)}))


def read_labels(paths):
    frames = [pl.read_csv(p, schema_overrides={"accountId": pl.String, "ts": pl.Int64, "label": pl.Int64}) for p in paths]
    return pl.concat(frames) if frames else pl.DataFrame()


def append_labels(url, path):
    from deltalake import write_deltalake
    import pyarrow as pa
    labels = read_labels([path])
    data = pa.table({
        "accountId": pa.array(labels["accountId"].to_list(), pa.string()),
        "ts": pa.array([t * 1000 for t in labels["ts"].to_list()], pa.timestamp("us", tz="UTC")),
        "label": pa.array(labels["label"].to_list(), pa.int32()),
    })
    write_deltalake(url, data, mode="append")
    print(json.dumps({"rows": data.num_rows}))


def quality(predictions_table, quality_table, *label_paths):
    predictions = pl.read_delta(predictions_table).with_columns(
        (pl.col("dt").cast(pl.Int64) // 1000).alias("ts"))
    labels = read_labels(label_paths).group_by(["accountId", "ts"]).agg(pl.col("label").max().alias("given"))
    joined = predictions.join(labels, on=["accountId", "ts"], how="left").with_columns(
        pl.coalesce([pl.col("given"), pl.col("label").cast(pl.Int64)]).alias("truth"),
        (pl.col("ts") - pl.col("ts") % 3_600_000).alias("hourMs"))
    expected = joined.group_by(["accountId", "hourMs"]).agg(
        pl.len().cast(pl.Int64).alias("count"),
        pl.col("truth").is_not_null().sum().cast(pl.Int64).alias("labelled"),
        (pl.col("truth") == pl.col("prediction")).fill_null(False).sum().cast(pl.Int64).alias("correct"),
        ((pl.col("prediction") == 1) & (pl.col("truth") == 0)).fill_null(False).sum().cast(pl.Int64).alias("falsePositives"),
        ((pl.col("prediction") == 0) & (pl.col("truth") == 1)).fill_null(False).sum().cast(pl.Int64).alias("falseNegatives"),
    )
    changes = pl.read_delta(quality_table).with_columns(
        (pl.col("hour").cast(pl.Int64) // 1000).alias("hourMs"),
        pl.when(pl.col("operation") == "insert").then(1).otherwise(-1).alias("sign"))
    cols = ["accountId", "hourMs", "count", "labelled", "correct", "falsePositives", "falseNegatives"]
    state = changes.group_by(cols).agg(pl.col("sign").sum().alias("n"))
    bad_multiplicity = state.filter(~pl.col("n").is_in([0, 1])).height
    now = state.filter(pl.col("n") == 1).select(cols).sort(cols)
    expected = expected.select(cols).sort(cols)
    rates = changes.filter(pl.col("labelled") > 0).with_columns(
        (pl.col("truePredictionRate") - pl.col("correct") / pl.col("labelled")).abs().alias("err"))
    print(json.dumps({
        "expectedRows": expected.height,
        "rows": now.height,
        "equal": now.equals(expected),
        "badMultiplicity": bad_multiplicity,
        "deletes": changes.filter(pl.col("operation") == "delete").height,
        "changes": changes.height,
        "maxRateError": float(rates["err"].max() or 0.0),
        "labelledNow": int(now["labelled"].sum()),
    }))


if __name__ == "__main__":
    command, args = sys.argv[1], sys.argv[2:]
    {
        "heldout": heldout,
        "probabilities": check_probabilities,
        "same": same,
        "alerts": alerts,
        "make-labels": make_labels,
        "append-labels": append_labels,
        "quality": quality,
    }[command](*args)
