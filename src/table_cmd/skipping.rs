//! `tidelake table files URL --skipping COLUMN=VALUE[,VALUE…]`: for point lookups of
//! each value, how many live files a reader must open (their min/max stats of COLUMN
//! contain the value) out of how many, and the average share — the figure Z-order
//! improves — through the sinks crate's [`skipping`]. The flag may be repeated, one
//! column each; values cannot contain commas.

use std::fmt::Write as _;

use tidelake_sinks::delta::inspection::layout::TableLayout;
use tidelake_sinks::delta::inspection::skipping::{SkippingReport, skipping};
use tidelake_sinks::delta::{DeltaError, Snapshot};

use super::{Align, TextTable, count};
use crate::status::group;

/// The values of one column to look up.
pub type Lookups = (String, Vec<String>);

/// Parses `COLUMN=VALUE[,VALUE…]`.
pub fn parse_lookups(text: &str) -> Result<Lookups, String> {
    match text.split_once('=') {
        Some((column, values)) if !column.is_empty() && !values.is_empty() => Ok((
            column.to_owned(),
            values.split(',').map(str::to_owned).collect(),
        )),
        _ => Err(format!(
            "'{text}' is not COLUMN=VALUE[,VALUE…], e.g. accountId=17,42"
        )),
    }
}

/// The skipping figure of each column's lookups.
pub fn figures(
    snapshot: &Snapshot,
    lookups: &[Lookups],
) -> Result<Vec<SkippingReport>, DeltaError> {
    lookups
        .iter()
        .map(|(column, values)| skipping(snapshot, column, values))
        .collect()
}

/// The JSON of `tidelake table files`: the layout, with a `skipping` list when there
/// are figures.
pub fn files_json(layout: &TableLayout, figures: &[SkippingReport]) -> serde_json::Result<String> {
    let mut json = serde_json::to_value(layout)?;
    if !figures.is_empty() {
        json["skipping"] = serde_json::to_value(figures)?;
    }
    serde_json::to_string_pretty(&json)
}

/// The figures as text: a summary line and a row per lookup, for each column.
pub fn figures_text(figures: &[SkippingReport]) -> String {
    let mut text = String::new();
    for report in figures {
        let _ = writeln!(
            text,
            "\nSkipping on {} ({}, {}): a lookup reads {:.1} files on average, {:.1}% of them{}",
            report.column,
            count(report.lookups.len() as u64, "lookup"),
            count(report.files, "live file"),
            report.average_files_read,
            report.average_share * 100.0,
            match report.files_without_bounds {
                0 => String::new(),
                n => format!(" ({} without bounds for it)", count(n, "file")),
            }
        );
        let mut table = TextTable::new(&[
            ("VALUE", Align::Left),
            ("FILES READ", Align::Right),
            ("SHARE", Align::Right),
        ]);
        for lookup in &report.lookups {
            table.row(vec![
                lookup.value.clone(),
                group(lookup.files_read),
                format!("{:.1}%", lookup.share * 100.0),
            ]);
        }
        text.push_str(&table.render());
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookups_parse_as_a_column_and_its_values() {
        assert_eq!(
            parse_lookups("accountId=17,42"),
            Ok((
                "accountId".to_owned(),
                vec!["17".to_owned(), "42".to_owned()]
            ))
        );
        assert_eq!(
            parse_lookups("dt=2024-05-01T10:00:00Z"),
            Ok(("dt".to_owned(), vec!["2024-05-01T10:00:00Z".to_owned()]))
        );
        assert!(parse_lookups("accountId").is_err());
        assert!(parse_lookups("accountId=").is_err());
    }
}
