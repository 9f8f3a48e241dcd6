//! Model scoring (docs/scoring.md): `tidelake train` on generated data with profiles
//! against scikit-learn and the rule alone; model files refused when changed, of a later
//! format, or needing features the job does not compute; and `run --model` on a CSV of
//! other id shapes, out of order, with labels missing — the same probabilities bit for
//! bit on 1 and 3 workers, each transaction exactly once in `fraud_predictions` (read by
//! delta-rs and polars), probabilities equal to numpy's from the model file, and the
//! alerts of `--alert-on any` those of the predictions; and the model's quality figures
//! per account and hour, corrected by labels that come while the job runs, against a
//! polars batch recomputation, on 1 and 3 workers.

use std::path::Path;

use serde::Deserialize;
use serde_json::Value;

use crate::python::Python;
use crate::support::{Rng, assert_exit, describe, tidelake};

const START: &str = "1714521600000";

fn model(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).expect("model file");
    serde_json::from_str(&text).expect("model JSON")
}

fn f64_of(v: &Value) -> f64 {
    v.as_f64().unwrap_or_else(|| panic!("{v} is not a number"))
}

/// The held-out figures numpy and scikit-learn compute (`model_check.py heldout`).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct HeldOut {
    train_rows: u64,
    held_out_rows: u64,
    model: Value,
    rule: Value,
    model_roc_auc: f64,
    rule_roc_auc: f64,
    recall_at_rule_precision: Option<f64>,
    sklearn_coefficients: Vec<f64>,
    sklearn_intercept: f64,
}

#[test]
fn train_beats_the_rule_and_agrees_with_scikit_learn() {
    let dir = tempfile::tempdir().expect("dir");
    let python = Python::find();
    let common = ["--accounts", "20000", "--start", START];
    let mut generate = vec![
        "generate",
        "accounts",
        "--span",
        "1d",
        "--out",
        "accounts.csv",
    ];
    generate.extend(common);
    assert_exit(&tidelake(dir.path(), &generate), 0);
    let features = dir.path().join("features");
    let features = features.to_str().expect("utf-8");
    let mut run = vec![
        "run",
        "--source",
        "generator",
        "--profiles",
        "--count",
        "300000",
        "--density",
        "4",
        "--fraud-every",
        "200",
        "--profile-span",
        "1d",
        "--commit-interval",
        "1h",
        "--rule",
        "features",
        "--accounts-table",
        "accounts.csv",
        "--features-table",
        features,
        "--alerts",
        "/dev/null",
        "--quiet",
    ];
    run.extend(common);
    assert_exit(&tidelake(dir.path(), &run), 0);

    let train = ["train", "--table", features, "--model", "model.json"];
    let output = tidelake(dir.path(), &train);
    assert_exit(&output, 0);
    let printed = String::from_utf8_lossy(&output.stderr);
    assert!(
        printed.contains("ROC AUC") && printed.contains("rule"),
        "{printed}"
    );
    let m = model(&dir.path().join("model.json"));
    let names: Vec<&str> = m["features"]
        .as_array()
        .expect("features")
        .iter()
        .map(|f| f["name"].as_str().expect("name"))
        .collect();
    assert!(names.contains(&"foreignCountry") && names.contains(&"amountToCreditLimit"));
    let t = &m["training"];

    // The figures, recomputed from the features table and the model file's coefficients.
    let model_json = dir.path().join("model.json");
    let model_json = model_json.to_str().expect("utf-8");
    let held: HeldOut = python.model_check(&["heldout", model_json, features]);
    assert_eq!(t["trainRows"], held.train_rows);
    assert_eq!(t["heldOutRows"], held.held_out_rows);
    assert_eq!(t["rows"], 300_000);
    assert_eq!(t["model"]["confusion"], held.model);
    assert_eq!(t["rule"]["confusion"], held.rule);
    assert!((f64_of(&t["model"]["rocAuc"]) - held.model_roc_auc).abs() < 1e-9);
    assert!((f64_of(&t["rule"]["rocAuc"]) - held.rule_roc_auc).abs() < 1e-9);
    let at_rule = f64_of(&t["modelAtRulePrecision"]["recall"]);
    assert_eq!(Some(at_rule), held.recall_at_rule_precision);
    // scikit-learn's fit of the same penalised log-loss on the same rows.
    let ours: Vec<f64> = m["coefficients"]
        .as_array()
        .expect("coefficients")
        .iter()
        .map(f64_of)
        .collect();
    for (a, b) in ours.iter().zip(&held.sklearn_coefficients) {
        assert!(
            (a - b).abs() < 1e-3 * (1.0 + b.abs()),
            "{ours:?} against {held:?}"
        );
    }
    assert!(
        (f64_of(&m["intercept"]) - held.sklearn_intercept).abs()
            < 1e-3 * (1.0 + held.sklearn_intercept.abs())
    );

    // The model beats the rule: more recall at the rule's precision.
    let rule_recall = f64_of(&t["rule"]["recall"]);
    assert!(
        at_rule >= 2.0 * rule_recall && at_rule >= rule_recall + 0.1,
        "the model recalls {at_rule} at the rule's precision, the rule {rule_recall}"
    );
    assert!(held.model_roc_auc > 0.9, "{held:?}");

    // A target precision picks the threshold on the training rows.
    let precise = [
        "train",
        "--table",
        features,
        "--model",
        "precise.json",
        "--target-precision",
        "0.95",
    ];
    assert_exit(&tidelake(dir.path(), &precise), 0);
    let p = model(&dir.path().join("precise.json"));
    assert_eq!(p["training"]["thresholdFrom"], "--target-precision 0.95");
    assert!(f64_of(&p["threshold"]) > 0.5 && p["modelVersion"] != m["modelVersion"]);

    refusals(dir.path(), features);
}

/// Model files and flags `run` and `train` refuse, with exit 2 and the reason.
fn refusals(dir: &Path, features: &str) {
    let text = std::fs::read_to_string(dir.join("model.json")).expect("model");
    let score = |model: &str, extra: &[&str]| {
        let mut args = vec![
            "run",
            "--source",
            "generator",
            "--profiles",
            "--count",
            "1000",
            "--rule",
            "features",
            "--model",
            model,
            "--no-table",
            "--alerts",
            "/dev/null",
            "--quiet",
        ];
        args.extend(extra);
        tidelake(dir, &args)
    };
    let refused = |output: std::process::Output, reason: &str| {
        assert_exit(&output, 2);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            stderr.contains(reason),
            "not {reason:?}: {}",
            describe(&output)
        );
    };
    // The same file scores (with the accounts its features need).
    assert_exit(
        &score("model.json", &["--accounts-table", "accounts.csv"]),
        0,
    );
    refused(
        score("model.json", &[]),
        "foreignCountry, amountToCreditLimit",
    );

    let coefficient = text.find("\"coefficients\": [").expect("coefficients") + 24;
    let digit = text[coefficient..]
        .find(|c: char| c.is_ascii_digit())
        .expect("digit")
        + coefficient;
    let mut tampered = text.clone().into_bytes();
    tampered[digit] = if tampered[digit] == b'7' { b'8' } else { b'7' };
    std::fs::write(dir.join("tampered.json"), tampered).expect("write");
    refused(
        score("tampered.json", &["--accounts-table", "accounts.csv"]),
        "checksum",
    );

    let future = text.replacen("\"formatVersion\": 1", "\"formatVersion\": 2", 1);
    std::fs::write(dir.join("future.json"), future).expect("write");
    refused(
        score("future.json", &["--accounts-table", "accounts.csv"]),
        "format version 2 is newer",
    );
    refused(score("missing.json", &[]), "missing.json");

    let fraud = [
        "run",
        "--source",
        "generator",
        "--count",
        "100",
        "--model",
        "model.json",
        "--quiet",
    ];
    refused(tidelake(dir, &fraud), "--rule features");
    let unknown = [
        "train",
        "--table",
        features,
        "--features",
        "logAmount,zodiacSign",
    ];
    refused(tidelake(dir, &unknown), "zodiacSign");
    let transactions = dir.join("transactions");
    let transactions = transactions.to_str().expect("utf-8");
    let plain = [
        "run",
        "--source",
        "generator",
        "--count",
        "1000",
        "--table",
        transactions,
        "--alerts",
        "/dev/null",
        "--quiet",
    ];
    assert_exit(&tidelake(dir, &plain), 0);
    refused(
        tidelake(dir, &["train", "--table", transactions]),
        "no column `label`",
    );
}

/// Ids of several shapes.
fn account_name(n: u64) -> String {
    match n % 4 {
        0 => format!("acct_{n:06}"),
        1 => format!("{:x}-{n}", n * 2_654_435_761),
        2 => format!("Ωmega \"{n}\", ü"),
        _ => "x".repeat(40 + (n % 20) as usize) + &n.to_string(),
    }
}

fn quoted(text: &str) -> String {
    format!("\"{}\"", text.replace('"', "\"\""))
}

/// Transactions of 400 accounts over ~6 hours, out of order within 5 s, with
/// small-then-large pairs and bursts labelled fraud, a fifth of the labels missing.
fn transactions_csv(seed: u64) -> String {
    let mut rng = Rng(seed);
    let mut rows: Vec<(u64, String)> = Vec::new();
    let start = 1_717_200_000_000u64;
    let countries = ["DE", "FR", "US", "JP", ""];
    for i in 0..20_000u64 {
        let account = account_name(rng.below(400));
        let ts = start + i * 1_000;
        let (amount, label) = match rng.below(100) {
            0 => (format!("0.{:02}", rng.range(1, 99)), 1),
            1 => (format!("{}.{:02}", rng.range(501, 5000), rng.below(100)), 1),
            _ => (format!("{}.{:02}", rng.range(1, 300), rng.below(100)), 0),
        };
        let label = if rng.below(5) == 0 {
            String::new()
        } else {
            label.to_string()
        };
        let country = countries[rng.below(5) as usize];
        rows.push((
            ts,
            format!("{},{ts},{amount},m-{i},{country},{label}", quoted(&account)),
        ));
        if label == "1" && rng.below(2) == 0 {
            // A burst: three more within a minute.
            for k in 1..=3u64 {
                let at = ts + k * rng.range(1, 20_000);
                rows.push((
                    at,
                    format!(
                        "{},{at},{}.00,m-{i}-{k},{country},1",
                        quoted(&account),
                        rng.range(1, 300)
                    ),
                ));
            }
        }
    }
    // Out of order by up to 4 s (the job allows 5 s).
    let mut keyed: Vec<(u64, String)> = rows
        .into_iter()
        .map(|(ts, line)| (ts + rng.below(4_000), line))
        .collect();
    keyed.sort();
    let mut text = String::from("account_id,ts_millis,amount,merchant,country,label\n");
    for (_, line) in keyed {
        text += &line;
        text.push('\n');
    }
    text
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Probabilities {
    feature_rows: u64,
    prediction_rows: u64,
    distinct_prediction_keys: u64,
    compared: u64,
    max_abs_diff: f64,
    prediction_mismatches: u64,
    rule_mismatches: u64,
    label_mismatches: u64,
    model_versions: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Compared {
    rows_a: u64,
    rows_b: u64,
    equal: bool,
}

#[derive(Debug, Deserialize)]
struct AlertsCompared {
    expected: u64,
    alerts: u64,
    equal: bool,
}

#[test]
fn scoring_is_deterministic_exactly_once_and_numpy_agrees() {
    let dir = tempfile::tempdir().expect("dir");
    let python = Python::find();
    let csv = transactions_csv(11);
    let lines = csv.lines().count() as u64 - 1;
    std::fs::write(dir.path().join("tx.csv"), csv).expect("tx");
    let path = |name: &str| dir.path().join(name).to_str().expect("utf-8").to_owned();
    let run = |workers: &str, features: &str, extra: &[&str]| {
        let mut args = vec![
            "run",
            "--rule",
            "features",
            "--source",
            "csv",
            "--input",
            "tx.csv",
            "--split-size",
            "64KiB",
            "--out-of-orderness",
            "5s",
            "--workers",
            workers,
            "--features-table",
            features,
            "--quiet",
        ];
        args.extend(extra);
        tidelake(dir.path(), &args)
    };
    let features = path("features");
    assert_exit(&run("1", &features, &["--alerts", "/dev/null"]), 0);
    let train = [
        "train",
        "--table",
        &features,
        "--model",
        "model.json",
        "--features",
        "ruleAlert,small,logAmount,logAmountToPrev,logSecondsSincePrev,txCount1h,countries24h",
        "--holdout",
        "0.3",
    ];
    assert_exit(&tidelake(dir.path(), &train), 0);
    let model_json = path("model.json");
    let version = model(&dir.path().join("model.json"))["modelVersion"]
        .as_str()
        .expect("version")
        .to_owned();

    // Scored on 1 and on 3 workers.
    let (one, three) = (path("predictions-1"), path("predictions-3"));
    let scored_1 = path("features-1");
    for (workers, predictions, features) in
        [("1", &one, &scored_1), ("3", &three, &path("features-3"))]
    {
        let extra = [
            "--model",
            "model.json",
            "--predictions-table",
            predictions,
            "--alert-on",
            "any",
            "--alerts",
            &format!("alerts-{workers}.jsonl"),
            "--job-id",
            &format!("score-{workers}"),
        ];
        assert_exit(&run(workers, features, &extra), 0);
    }
    let same: Compared = python.model_check(&["same", &one, &three]);
    assert!(
        same.equal && same.rows_a == lines && same.rows_b == lines,
        "{same:?}"
    );

    // Every transaction once, each probability numpy's from the model file.
    let p: Probabilities = python.model_check(&["probabilities", &model_json, &scored_1, &one]);
    assert_eq!(
        (
            p.feature_rows,
            p.prediction_rows,
            p.distinct_prediction_keys
        ),
        (lines, lines, lines),
        "{p:?}"
    );
    assert_eq!(p.compared, lines);
    assert!(p.max_abs_diff <= 1e-9, "{p:?}");
    assert_eq!(
        (
            p.prediction_mismatches,
            p.rule_mismatches,
            p.label_mismatches
        ),
        (0, 0, 0),
        "{p:?}"
    );
    assert_eq!(p.model_versions, [version]);
    let read = python.read(&one, &[]);
    assert_eq!(read.rows.len() as u64, lines);

    // The alerts of --alert-on any: every prediction or rule verdict, once.
    for workers in ["1", "3"] {
        let alerts = path(&format!("alerts-{workers}.jsonl"));
        let a: AlertsCompared = python.model_check(&["alerts", &one, &alerts, "any"]);
        assert!(a.equal && a.expected > 0, "{workers} workers: {a:?}");
        assert!(a.alerts < lines / 2, "{a:?}");
    }

    // A re-run of a job commits nothing twice; one with another setting is refused.
    let alerts_1 = path("alerts-1.jsonl");
    let flags = |alert_on: &str| -> Vec<String> {
        let model = "model.json";
        let args = [
            "--model",
            model,
            "--predictions-table",
            &one,
            "--alert-on",
            alert_on,
        ];
        let job = ["--alerts", &alerts_1, "--job-id", "score-1"];
        args.iter().chain(&job).map(|a| a.to_string()).collect()
    };
    let again = flags("any");
    let again: Vec<&str> = again.iter().map(String::as_str).collect();
    assert_exit(&run("1", &scored_1, &again), 0);
    let p: Probabilities = python.model_check(&["probabilities", &model_json, &scored_1, &one]);
    assert_eq!((p.feature_rows, p.prediction_rows), (lines, lines));
    let a: AlertsCompared = python.model_check(&["alerts", &one, &alerts_1, "any"]);
    assert!(a.equal, "after the re-run: {a:?}");
    let other = flags("model");
    let other: Vec<&str> = other.iter().map(String::as_str).collect();
    let output = run("1", &scored_1, &other);
    assert_exit(&output, 2);
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("--alert-on"),
        "{}",
        describe(&output)
    );
}

/// The quality table now against polars' batch recomputation (`model_check.py quality`).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct QualityCompared {
    expected_rows: u64,
    rows: u64,
    equal: bool,
    bad_multiplicity: u64,
    deletes: u64,
    changes: u64,
    max_rate_error: f64,
    labelled_now: u64,
}

#[test]
fn late_labels_correct_the_quality_figures() {
    let dir = tempfile::tempdir().expect("dir");
    let python = Python::find();
    let path = |name: &str| dir.path().join(name).to_str().expect("utf-8").to_owned();
    // 24,000 transactions over 6 s of event time; run 2 reads them at 4,000 a second.
    let start: u64 = 1_714_521_600_000;
    let start_text = start.to_string();
    let generator = [
        "run",
        "--rule",
        "features",
        "--source",
        "generator",
        "--profiles",
        "--accounts",
        "300",
        "--fraud-every",
        "50",
        "--density",
        "4000",
        "--count",
        "24000",
        "--start",
        &start_text,
        "--commit-interval",
        "1s",
        "--quiet",
    ];
    let features = path("features");
    let mut first: Vec<&str> = generator.to_vec();
    first.extend(["--features-table", &features, "--alerts", "/dev/null"]);
    assert_exit(&tidelake(dir.path(), &first), 0);
    let train = ["train", "--table", &features, "--model", "model.json"];
    assert_exit(&tidelake(dir.path(), &train), 0);

    // Labels of the first 1.5 s come while the job runs (late); the rest are there at
    // its start.
    let (early, rest) = (path("early.csv"), path("rest.csv"));
    let early_ms = (start + 1_500).to_string();
    let _: Value = python.model_check(&["make-labels", &features, &early_ms, &early, &rest]);
    let labels_table = path("labels");
    let _: Value = python.model_check(&["append-labels", &labels_table, &rest]);
    let lines = |p: &str| std::fs::read_to_string(p).expect("labels").lines().count() as u64 - 1;
    let append = || {
        let _: Value = python.model_check(&["append-labels", &labels_table, &early]);
    };
    let expected_reads = lines(&early) + lines(&rest);
    let q = late_labels(
        dir.path(),
        &python,
        &generator,
        &labels_table,
        "delta",
        append,
    );
    assert_eq!(q.1["labels_read"].as_u64(), Some(expected_reads));

    // The same labels from a Kafka topic (JSON values), the late ones sent while the job
    // runs.
    let mut broker = crate::kafka_broker::KafkaBroker::start();
    let address = broker.address();
    crate::kafka::create_topic(dir.path(), &address, "labels", 2);
    let send = |file: &str| {
        let values = labels_json(file).into_iter().enumerate();
        let messages = values.map(|(i, v)| ((i % 2) as i32, v));
        crate::kafka::send_to_partitions(&address, "labels", messages);
    };
    send(&rest);
    let topic = format!("kafka://{address}/labels");
    let k = late_labels(dir.path(), &python, &generator, &topic, "kafka", || {
        send(&early)
    });
    broker.kill();
    assert_eq!(k.1["labels_read"].as_u64(), Some(expected_reads));
    assert_eq!(k.0.expected_rows, q.0.expected_rows);

    // All the labels from one file, a bad row among them, on 3 workers: the same figures.
    let all = path("all.csv");
    let mut text = std::fs::read_to_string(&rest).expect("rest");
    text += &std::fs::read_to_string(&early)
        .expect("early")
        .lines()
        .skip(1)
        .map(|l| format!("{l}\n"))
        .collect::<String>();
    text += "\"bad\",1714521600000,\n";
    std::fs::write(&all, text).expect("all");
    let quality_3 = path("quality-3");
    let mut third: Vec<&str> = generator.to_vec();
    third.extend([
        "--workers",
        "3",
        "--features-table",
        "features-3",
        "--model",
        "model.json",
        "--predictions-table",
        "predictions-3",
        "--labels",
        &all,
        "--quality-table",
        &quality_3,
        "--no-checkpoints",
        "--alerts",
        "/dev/null",
        "--dead-letters",
        "dead.jsonl",
    ]);
    assert_exit(&tidelake(dir.path(), &third), 0);
    let q3: QualityCompared =
        python.model_check(&["quality", &path("predictions-3"), &quality_3, &all]);
    assert!(q3.equal && q3.expected_rows == q.0.expected_rows, "{q3:?}");
    let dead = std::fs::read_to_string(dir.path().join("dead.jsonl")).expect("dead letters");
    assert_eq!(dead.lines().count(), 1, "{dead}");
    assert!(dead.contains("label") && dead.contains("all.csv"), "{dead}");

    // Refused: labels without --no-checkpoints, or without a model.
    let mut checkpointed: Vec<&str> = generator.to_vec();
    checkpointed.extend(["--model", "model.json", "--labels", &all, "--no-table"]);
    let output = tidelake(dir.path(), &checkpointed);
    assert_exit(&output, 2);
    assert!(String::from_utf8_lossy(&output.stderr).contains("--no-checkpoints"));
    let mut modelless: Vec<&str> = generator.to_vec();
    modelless.extend(["--labels", &all, "--no-checkpoints", "--no-table"]);
    assert_exit(&tidelake(dir.path(), &modelless), 2);
}

/// Runs the generator's flags `generator` with the model and the labels at `labels`
/// (`name` names its tables), at 4,000 transactions a second, calling `append` 3 s in
/// (the labels of the first 1.5 s); checks the quality table against polars' batch
/// recomputation and that the late labels corrected it. Returns that comparison and the
/// report's totals.
fn late_labels(
    dir: &Path,
    python: &Python,
    generator: &[&str],
    labels: &str,
    name: &str,
    append: impl FnOnce(),
) -> (QualityCompared, Value) {
    let path = |file: &str| dir.join(file).to_str().expect("utf-8").to_owned();
    let (predictions, quality) = (
        path(&format!("predictions-{name}")),
        path(&format!("quality-{name}")),
    );
    let features = format!("features-{name}");
    let report = format!("report-{name}.json");
    let mut args: Vec<&str> = generator.to_vec();
    args.extend([
        "--rate",
        "4000",
        "--features-table",
        &features,
        "--model",
        "model.json",
        "--predictions-table",
        &predictions,
        "--labels",
        labels,
        "--quality-table",
        &quality,
        "--poll-interval",
        "100ms",
        "--no-checkpoints",
        "--alerts",
        "/dev/null",
        "--report-json",
        &report,
    ]);
    let job = std::process::Command::new(env!("CARGO_BIN_EXE_tidelake"))
        .args(&args)
        .current_dir(dir)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("the tidelake binary runs");
    std::thread::sleep(std::time::Duration::from_millis(3_000));
    append();
    let out = job.wait_with_output().expect("the job ends");
    assert_exit(&out, 0);

    let (early, rest) = (path("early.csv"), path("rest.csv"));
    let q: QualityCompared =
        python.model_check(&["quality", &predictions, &quality, &early, &rest]);
    assert!(
        q.equal && q.bad_multiplicity == 0,
        "{name}: {q:?}\n{}",
        describe(&out)
    );
    assert!(
        q.rows > 100 && q.labelled_now > 0 && q.max_rate_error < 1e-12,
        "{name}: {q:?}"
    );
    // The late labels corrected figures written before they came.
    assert!(q.deletes > 0 && q.changes > q.rows, "{name}: {q:?}");
    let text = std::fs::read_to_string(dir.join(&report)).expect("report");
    let report: Value = serde_json::from_str(&text).expect("report JSON");
    let totals = report["totals"].clone();
    assert!(
        totals["labels_late"].as_u64().expect("late") > 0,
        "{name}: {totals}"
    );
    (q, totals)
}

/// The labels of a CSV file `accountId,ts,label` (ids without quotes or commas) as JSON
/// values.
fn labels_json(path: &str) -> Vec<String> {
    let text = std::fs::read_to_string(path).expect("labels");
    text.lines()
        .skip(1)
        .map(|line| {
            let fields: Vec<&str> = line.split(',').collect();
            let account = fields[0].trim_matches('"');
            format!(
                r#"{{"accountId":"{account}","ts":{},"label":{}}}"#,
                fields[1], fields[2]
            )
        })
        .collect()
}
