//! Grouped bar charts: a bar for each series in each group (a report's precision, recall
//! and F1 of the rule, the model and either), each bar labelled with its value.

use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::{draw_error, svg_text};

/// One series of [`grouped_bars`]: its name, colour and value in each group.
#[derive(Clone, Debug)]
pub struct BarGroup {
    /// Its name, in the legend.
    pub name: String,
    /// Its colour.
    pub color: RGBColor,
    /// Its value in each group, in the groups' order; none draws no bar.
    pub values: Vec<Option<f64>>,
}

/// A chart titled `title` of `series` in `groups` (their names, left to right), values
/// from 0 to at least 1, as SVG text.
pub fn grouped_bars(title: &str, groups: &[&str], series: &[BarGroup]) -> anyhow::Result<String> {
    let top = series
        .iter()
        .flat_map(|s| s.values.iter().flatten())
        .fold(1.0, |top: f64, v| top.max(*v))
        // Room above the bars for the legend.
        * 1.3;
    let n = groups.len().max(1) as f64;
    let slot = 0.8 / series.len().max(1) as f64;
    svg_text((900, 440), |root| {
        let mut chart = ChartBuilder::on(root)
            .caption(title, ("sans-serif", 20))
            .margin(12)
            .x_label_area_size(36)
            .y_label_area_size(60)
            .build_cartesian_2d(-0.5..(n - 0.5), 0.0..top)
            .map_err(draw_error)?;
        chart
            .configure_mesh()
            .disable_x_mesh()
            // Ticks every half unit: the whole ones, the groups' centres, get names.
            .x_labels(groups.len() * 2 + 1)
            .x_label_formatter(&|x| {
                let i = x.round();
                if (x - i).abs() < 1e-9 && i >= 0.0 {
                    groups
                        .get(i as usize)
                        .map_or_else(String::new, |g| (*g).to_owned())
                } else {
                    String::new()
                }
            })
            .draw()
            .map_err(draw_error)?;
        let value_font = ("sans-serif", 12)
            .into_font()
            .color(&BLACK)
            .pos(Pos::new(HPos::Center, VPos::Bottom));
        for (s, bars) in series.iter().enumerate() {
            let offset = -0.4 + slot * s as f64;
            let color = bars.color;
            let present: Vec<(f64, f64)> = bars
                .values
                .iter()
                .enumerate()
                .filter_map(|(g, v)| v.map(|v| (g as f64 + offset, v)))
                .collect();
            chart
                .draw_series(present.iter().map(|&(x, v)| {
                    Rectangle::new(
                        [(x + slot * 0.08, 0.0), (x + slot * 0.92, v)],
                        color.filled(),
                    )
                }))
                .map_err(draw_error)?
                .label(bars.name.as_str())
                .legend(move |(x, y)| {
                    Rectangle::new([(x, y - 5), (x + 14, y + 5)], color.filled())
                });
            chart
                .draw_series(present.iter().map(|&(x, v)| {
                    Text::new(format!("{v:.3}"), (x + slot / 2.0, v), value_font.clone())
                }))
                .map_err(draw_error)?;
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperRight)
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK.mix(0.3))
            .draw()
            .map_err(draw_error)?;
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_bar_is_labelled_with_its_value() {
        let svg = grouped_bars(
            "rule and model",
            &["precision", "recall"],
            &[
                BarGroup {
                    name: "rule".into(),
                    color: RGBColor(1, 2, 3),
                    values: vec![Some(0.25), None],
                },
                BarGroup {
                    name: "model".into(),
                    color: RGBColor(4, 5, 6),
                    values: vec![Some(0.5), Some(1.0)],
                },
            ],
        )
        .expect("draws");
        for text in ["0.250", "0.500", "1.000", "precision", "recall", "model"] {
            assert!(svg.contains(text), "{text} in {svg}");
        }
    }
}
