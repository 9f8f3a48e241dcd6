//! Charts as SVG, drawn with `plotters`: the benchmark's scaling, throughput and
//! latency figures (`tidelake bench --plot DIR`), a table's file sizes and files per
//! partition (`tidelake table files --plot FILE`), and the charts of a predictions
//! report (`tidelake report`): lines over time, log-scale histograms, confusion
//! matrices and grouped bars, drawn as SVG text to write or inline.

use std::path::Path;

use anyhow::Context;
use plotters::coord::Shift;
use plotters::prelude::*;

mod confusion;
mod grouped_bars;
mod histogram;
mod lines;

pub use confusion::confusion_matrices;
pub use grouped_bars::{BarGroup, grouped_bars};
pub use histogram::{Bins, log_histograms};
pub use lines::{Line, lines};

/// The colours of a report's series: the model, the rule, either of them.
pub const MODEL_COLOR: RGBColor = RGBColor(37, 99, 235);
/// The rule's colour.
pub const RULE_COLOR: RGBColor = RGBColor(234, 88, 12);
/// The colour of "either".
pub const ANY_COLOR: RGBColor = RGBColor(22, 163, 74);

/// The drawing area of an SVG document drawn as text.
type SvgArea<'a> = DrawingArea<SVGBackend<'a>, Shift>;

/// An SVG document of `size` pixels drawn by `draw`, as text.
fn svg_text(
    size: (u32, u32),
    draw: impl FnOnce(&SvgArea<'_>) -> anyhow::Result<()>,
) -> anyhow::Result<String> {
    let mut text = String::new();
    {
        let root = SVGBackend::with_string(&mut text, size).into_drawing_area();
        root.fill(&WHITE).map_err(draw_error)?;
        draw(&root)?;
        root.present().map_err(draw_error)?;
    }
    Ok(text)
}

/// A bar chart of `bars` (label, value) titled `title`, the value axis named `unit`,
/// written to `path`.
pub fn bars(path: &Path, title: &str, unit: &str, bars: &[(String, f64)]) -> anyhow::Result<()> {
    let root = SVGBackend::new(path, (760, 420)).into_drawing_area();
    draw_bars(&root, title, unit, bars)?;
    root.present()
        .with_context(|| format!("cannot write the chart {}", path.display()))
}

/// Two bar charts one above the other, written to `path`.
pub fn two_bars(
    path: &Path,
    top: (&str, &str, &[(String, f64)]),
    bottom: (&str, &str, &[(String, f64)]),
) -> anyhow::Result<()> {
    let root = SVGBackend::new(path, (760, 780)).into_drawing_area();
    let (upper, lower) = root.split_vertically(390);
    draw_bars(&upper, top.0, top.1, top.2)?;
    draw_bars(&lower, bottom.0, bottom.1, bottom.2)?;
    root.present()
        .with_context(|| format!("cannot write the chart {}", path.display()))
}

fn draw_bars<DB: DrawingBackend>(
    area: &DrawingArea<DB, plotters::coord::Shift>,
    title: &str,
    unit: &str,
    bars: &[(String, f64)],
) -> anyhow::Result<()>
where
    DB::ErrorType: 'static,
{
    area.fill(&WHITE).map_err(draw_error)?;
    let top = bars.iter().map(|b| b.1).fold(0.0, f64::max).max(1.0) * 1.15;
    let labels: Vec<String> = bars.iter().map(|b| b.0.clone()).collect();
    let mut chart = ChartBuilder::on(area)
        .caption(title, ("sans-serif", 20))
        .margin(12)
        .x_label_area_size(36)
        .y_label_area_size(72)
        // A segmented range `0..n` has a segment for each of 0 to n.
        .build_cartesian_2d(
            (0..bars.len().saturating_sub(1).max(1)).into_segmented(),
            0.0..top,
        )
        .map_err(draw_error)?;
    chart
        .configure_mesh()
        .disable_x_mesh()
        .y_desc(unit)
        .x_label_formatter(&|x| match x {
            SegmentValue::CenterOf(i) => labels.get(*i).cloned().unwrap_or_default(),
            _ => String::new(),
        })
        .draw()
        .map_err(draw_error)?;
    chart
        .draw_series(
            Histogram::vertical(&chart)
                .style(RGBColor(59, 130, 246).filled())
                .margin(18)
                .data(bars.iter().enumerate().map(|(i, b)| (i, b.1))),
        )
        .map_err(draw_error)?;
    Ok(())
}

/// A plotters error as an [`anyhow::Error`].
fn draw_error<E: std::error::Error + Send + Sync + 'static>(
    e: DrawingAreaErrorKind<E>,
) -> anyhow::Error {
    anyhow::anyhow!("cannot draw the chart: {e}")
}
