//! `tidelake report`: a predictions table written by delta-rs
//! (`tests/py/predictions_fixture.py`), read into `report.json` whose numbers equal the
//! fixture's own recomputation from the rows it wrote, SVG charts that parse as SVG, and
//! an HTML page that headless Chromium renders with its four charts and the numbers; a
//! table without a needed column, or no table, is refused with exit code 2.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

use crate::monitor::chromium;
use crate::python::Python;
use crate::support::{assert_exit, describe, read_json, tidelake};

/// The classifiers' confusion counts, as report.json and the fixture name them.
const COUNTS: [&str; 4] = [
    "truePositives",
    "falsePositives",
    "trueNegatives",
    "falseNegatives",
];

/// Makes a predictions table at `table` with `predictions_fixture.py make` and `args`;
/// returns the figures the fixture computed from its rows.
fn make_table(python: &Python, table: &Path, args: &[&str]) -> Value {
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/py/predictions_fixture.py");
    let output = Command::new(python.interpreter())
        .arg(script)
        .arg("make")
        .arg(table)
        .args(args)
        .output()
        .expect("python runs");
    assert!(output.status.success(), "{}", describe(&output));
    serde_json::from_slice(&output.stdout).expect("the fixture prints JSON")
}

/// Asserts that `actual` (a report's scores) has the counts, precision and recall of
/// `expected` (the fixture's).
fn assert_scores(actual: &Value, expected: &Value, what: &str) {
    for count in COUNTS {
        assert_eq!(actual[count], expected[count], "{what}: {count}");
    }
    for share in ["precision", "recall"] {
        match (actual[share].as_f64(), expected[share].as_f64()) {
            (Some(a), Some(e)) => assert!((a - e).abs() < 1e-12, "{what}: {share} {a} != {e}"),
            (a, e) => assert_eq!(a, e, "{what}: {share}"),
        }
    }
}

/// The element of `dom` that opens with `open` (e.g. `<tr id="model">`), up to `close`.
fn element<'a>(dom: &'a str, open: &str, close: &str) -> &'a str {
    let start = dom
        .find(open)
        .unwrap_or_else(|| panic!("no {open} in the page:\n{dom}"));
    let end = dom[start..]
        .find(close)
        .map_or(dom.len(), |e| start + e + close.len());
    &dom[start..end]
}

#[test]
fn the_report_shows_what_the_rows_say() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let python = Python::find();
    let table = d.join("fraud_predictions");
    let expected = make_table(&python, &table, &["--rows", "4000", "--seed", "11"]);
    let table_arg = table.display().to_string();

    // A directory: the four charts and report.json.
    let output = tidelake(
        d,
        &["report", "--predictions", &table_arg, "--out", "charts"],
    );
    assert_exit(&output, 0);
    let report = read_json(&d.join("charts/report.json"));
    for key in ["rows", "labelledRows", "modelVersions"] {
        assert_eq!(report[key], expected[key], "{key}");
    }
    assert_eq!(report["version"], 2, "three appends");
    assert_eq!(report["bucket"], "1h", "two days are bucketed by the hour");
    for classifier in ["model", "rule", "any"] {
        assert_scores(&report[classifier], &expected[classifier], classifier);
    }
    let buckets = report["buckets"].as_array().expect("buckets");
    let expected_buckets = expected["buckets"].as_array().expect("buckets");
    assert_eq!(buckets.len(), expected_buckets.len());
    assert!(buckets.len() > 40, "{} hours", buckets.len());
    let mut undefined = 0;
    for (bucket, want) in buckets.iter().zip(expected_buckets) {
        let what = format!("bucket {}", want["startMs"]);
        for key in ["startMs", "rows", "labelledRows"] {
            assert_eq!(bucket[key], want[key], "{what}: {key}");
        }
        assert_scores(&bucket["model"], &want["model"], &format!("{what}, model"));
        assert_scores(&bucket["rule"], &want["rule"], &format!("{what}, rule"));
        undefined += usize::from(bucket["rule"]["precision"].is_null());
    }
    assert!(
        undefined > 0,
        "some hour has no rule alert, so no precision"
    );
    assert_eq!(report["scores"]["fraud"], expected["scores"]["fraud"]);
    assert_eq!(report["scores"]["notFraud"], expected["scores"]["notFraud"]);

    let charts = [
        "precision_recall.svg",
        "confusion.svg",
        "scores.svg",
        "rule_vs_model.svg",
    ]
    .map(|name| d.join("charts").join(name));
    let images = python.images(&charts.each_ref().map(PathBuf::as_path));
    for (chart, image) in charts.iter().zip(&images) {
        assert!(std::fs::metadata(chart).expect("written").len() > 0);
        assert_eq!(image.kind, "svg", "{}", chart.display());
        assert!(image.width >= 700 && image.height >= 300, "{image:?}");
        assert!(image.elements > 20, "{}: {image:?}", chart.display());
    }
    let confusion = std::fs::read_to_string(&charts[1]).expect("svg");
    let tp = expected["model"]["truePositives"].to_string();
    assert!(confusion.contains(&format!("\n{tp}\n")), "{confusion}");

    // --bucket: days, each the sum of its hours.
    let output = tidelake(
        d,
        &[
            "report",
            "--predictions",
            &table_arg,
            "--out",
            "daily",
            "--bucket",
            "1d",
        ],
    );
    assert_exit(&output, 0);
    let daily = read_json(&d.join("daily/report.json"));
    let days = daily["buckets"].as_array().expect("buckets");
    assert_eq!(days.len(), 2);
    for day in days {
        let start = day["startMs"].as_i64().expect("start");
        let hours = expected_buckets.iter().filter(|b| {
            let t = b["startMs"].as_i64().expect("start");
            (start..start + 86_400_000).contains(&t)
        });
        let mut tp = 0;
        let mut rows = 0;
        for hour in hours {
            tp += hour["model"]["truePositives"].as_u64().expect("count");
            rows += hour["rows"].as_u64().expect("count");
        }
        assert_eq!(day["model"]["truePositives"].as_u64(), Some(tp));
        assert_eq!(day["rows"].as_u64(), Some(rows));
    }

    // A page: four charts and the numbers, rendered by Chromium, nothing fetched.
    let output = tidelake(
        d,
        &[
            "report",
            "--predictions",
            &table_arg,
            "--out",
            "report.html",
        ],
    );
    assert_exit(&output, 0);
    let page = std::fs::read_to_string(d.join("report.html")).expect("html");
    for external in ["<script", "<link", "src=", "url("] {
        assert!(!page.contains(external), "the page has {external}");
    }
    let screenshot = d.join("report.png");
    let dom = chromium(
        d,
        &format!("file://{}", d.join("report.html").display()),
        &screenshot,
    );
    for id in ["precision-recall", "confusion", "scores", "rule-vs-model"] {
        let figure = element(&dom, &format!("<figure id=\"{id}\">"), "</figure>");
        assert!(figure.contains("<svg"), "#{id} has no chart");
    }
    assert_eq!(dom.matches("<svg").count(), 4);
    assert!(dom.contains(&format!("<td id=\"rows\">{}</td>", expected["rows"])));
    assert!(dom.contains(&format!(
        "<td id=\"labelled-rows\">{}</td>",
        expected["labelledRows"]
    )));
    for version in ["fraud-v1", "fraud-v2"] {
        assert!(element(&dom, "<td id=\"model-versions\">", "</td>").contains(version));
    }
    for classifier in ["rule", "model", "any"] {
        let row = element(&dom, &format!("<tr id=\"{classifier}\">"), "</tr>");
        let want = &expected[classifier];
        for share in ["precision", "recall"] {
            let value = want[share].as_f64().expect("defined overall");
            assert!(
                row.contains(&format!("<td>{value:.4}</td>")),
                "{classifier} {share} {value:.4}: {row}"
            );
        }
        for count in COUNTS {
            assert!(
                row.contains(&format!("<td>{}</td>", want[count])),
                "{classifier} {count}: {row}"
            );
        }
    }
    let image = &python.images(&[&screenshot])[0];
    assert_eq!((image.kind.as_str(), image.width), ("png", 1300));
}

#[test]
fn a_table_without_a_needed_column_or_no_table_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let table = d.join("no_probability");
    make_table(
        &Python::find(),
        &table,
        &["--rows", "60", "--without", "probability"],
    );
    let table_arg = table.display().to_string();
    let output = tidelake(
        d,
        &["report", "--predictions", &table_arg, "--out", "r.html"],
    );
    assert_exit(&output, 2);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("no column `probability`") && stderr.contains(&table_arg),
        "{}",
        describe(&output)
    );
    assert!(!d.join("r.html").exists());

    let missing = d.join("nowhere").display().to_string();
    let output = tidelake(d, &["report", "--predictions", &missing, "--out", "out"]);
    assert_exit(&output, 2);
    assert!(
        String::from_utf8_lossy(&output.stderr).contains(&missing),
        "{}",
        describe(&output)
    );

    let output = tidelake(
        d,
        &[
            "report",
            "--predictions",
            &table_arg,
            "--out",
            "out",
            "--bucket",
            "0s",
        ],
    );
    assert_exit(&output, 2);
}
