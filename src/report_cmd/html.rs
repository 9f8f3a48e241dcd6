//! The report as one self-contained HTML page: the charts inline as SVG, the numbers in
//! tables; no script, no external resource.

use std::fmt::Write as _;

use super::charts::Charts;
use super::figures::Figures;

const STYLE: &str = "body{font-family:sans-serif;max-width:960px;margin:2em auto;padding:0 1em;color:#111}\
h1{font-size:1.6em}h2{font-size:1.2em;margin-top:2em}\
figure{margin:1em 0}figure svg{max-width:100%;height:auto}\
table{border-collapse:collapse;margin:1em 0}th,td{border:1px solid #ccc;padding:4px 10px;text-align:right}\
th:first-child,td:first-child{text-align:left}code{background:#f3f4f6;padding:0 4px}";

/// The page of `figures` with `charts`.
pub fn page(figures: &Figures, charts: &Charts) -> String {
    let mut html = String::new();
    let title = format!("Fraud predictions: {}", escape(&figures.table));
    let _ = write!(
        html,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <title>{title}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n<h1>{title}</h1>\n"
    );
    html.push_str(&summary(figures));
    for (id, heading, svg) in [
        (
            "precision-recall",
            "1. Precision and recall over time",
            &charts.precision_recall,
        ),
        ("confusion", "2. Confusion matrices", &charts.confusion),
        (
            "scores",
            "3. Scores of fraud and non-fraud (log scale)",
            &charts.scores,
        ),
        (
            "rule-vs-model",
            "4. The rule against the model",
            &charts.rule_vs_model,
        ),
    ] {
        let _ = write!(
            html,
            "<h2>{heading}</h2>\n<figure id=\"{id}\">\n{svg}</figure>\n"
        );
    }
    html.push_str(&figures_table(figures));
    html.push_str("</body>\n</html>\n");
    html
}

/// The table, its size, its model versions and its time.
fn summary(figures: &Figures) -> String {
    let versions: Vec<String> = figures
        .model_versions
        .iter()
        .map(|(version, rows)| format!("<code>{}</code> ({rows} rows)", escape(version)))
        .collect();
    let span = match (&figures.first_event, &figures.last_event) {
        (Some(first), Some(last)) => format!("{first} to {last}"),
        _ => "none".to_owned(),
    };
    format!(
        "<table id=\"summary\">\n\
         <tr><td>table</td><td><code>{}</code> version {}</td></tr>\n\
         <tr><td>rows</td><td id=\"rows\">{}</td></tr>\n\
         <tr><td>labelled rows</td><td id=\"labelled-rows\">{}</td></tr>\n\
         <tr><td>model versions</td><td id=\"model-versions\">{}</td></tr>\n\
         <tr><td>event time</td><td>{span}, in buckets of {}</td></tr>\n\
         </table>\n",
        escape(&figures.table),
        figures.version,
        figures.rows,
        figures.labelled_rows,
        if versions.is_empty() {
            "none".to_owned()
        } else {
            versions.join(", ")
        },
        figures.bucket,
    )
}

/// Precision, recall, F1, accuracy and the counts of the rule, the model and either.
fn figures_table(figures: &Figures) -> String {
    let mut html = String::from(
        "<table id=\"figures\">\n<tr><th>labelled rows</th><th>precision</th><th>recall</th>\
         <th>F1</th><th>accuracy</th><th>TP</th><th>FP</th><th>TN</th><th>FN</th></tr>\n",
    );
    for (id, name, scores) in [
        ("rule", "rule", &figures.rule),
        ("model", "model", &figures.model),
        ("any", "any (rule or model)", &figures.any),
    ] {
        let c = &scores.confusion;
        let _ = writeln!(
            html,
            "<tr id=\"{id}\"><td>{name}</td><td>{}</td><td>{}</td><td>{:.4}</td><td>{}</td>\
             <td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            share(scores.precision),
            share(scores.recall),
            scores.f1,
            share(scores.accuracy),
            c.true_positives,
            c.false_positives,
            c.true_negatives,
            c.false_negatives,
        );
    }
    html.push_str("</table>\n");
    html
}

/// A share to four places, or `–` where it is undefined.
pub fn share(value: Option<f64>) -> String {
    value.map_or_else(|| "–".to_owned(), |v| format!("{v:.4}"))
}

/// `text` with the characters HTML gives a meaning escaped.
fn escape(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => escaped.push_str("&amp;"),
            '<' => escaped.push_str("&lt;"),
            '>' => escaped.push_str("&gt;"),
            '"' => escaped.push_str("&quot;"),
            c => escaped.push(c),
        }
    }
    escaped
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_escaped_and_shares_rounded() {
        assert_eq!(escape("a<b & \"c\">"), "a&lt;b &amp; &quot;c&quot;&gt;");
        assert_eq!(share(Some(2.0 / 3.0)), "0.6667");
        assert_eq!(share(None), "–");
    }

    #[test]
    fn the_page_holds_every_chart_and_the_figures() {
        let figures = super::super::figures::Accumulator::new(None).finish("lake/<p>", 4);
        let charts = Charts {
            precision_recall: "<svg id=\"a\"></svg>".into(),
            confusion: "<svg id=\"b\"></svg>".into(),
            scores: "<svg id=\"c\"></svg>".into(),
            rule_vs_model: "<svg id=\"d\"></svg>".into(),
        };
        let html = page(&figures, &charts);
        for part in ["id=\"a\"", "id=\"d\"", "lake/&lt;p&gt;", "<tr id=\"any\">"] {
            assert!(html.contains(part), "{part} in {html}");
        }
        assert!(!html.contains("<script"));
    }
}
