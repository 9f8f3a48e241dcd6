//! A line chart of values over an x axis (time in a report), each line broken where it
//! has no value.

use plotters::prelude::*;

use super::{draw_error, svg_text};

/// One line of a [`lines`] chart.
#[derive(Clone, Debug)]
pub struct Line {
    /// Its name, in the legend.
    pub name: String,
    /// Its colour.
    pub color: RGBColor,
    /// Dashed rather than solid.
    pub dashed: bool,
    /// Its value at each x, in increasing x; none where it has no value (the line breaks
    /// there).
    pub points: Vec<(f64, Option<f64>)>,
}

/// A line chart titled `title` of `lines` over x, with the x labels written by
/// `x_label` and the y axis (from 0) named `y_desc`, as SVG text.
pub fn lines(
    title: &str,
    y_desc: &str,
    x_label: &dyn Fn(f64) -> String,
    lines: &[Line],
) -> anyhow::Result<String> {
    let xs = lines.iter().flat_map(|l| l.points.iter().map(|p| p.0));
    let (mut x_min, mut x_max) = xs.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), x| {
        (lo.min(x), hi.max(x))
    });
    if x_min > x_max {
        (x_min, x_max) = (0.0, 1.0);
    }
    // A single x still needs a range to place it in.
    let pad = if x_max > x_min {
        (x_max - x_min) * 0.02
    } else {
        1.0
    };
    let y_max = lines
        .iter()
        .flat_map(|l| l.points.iter().filter_map(|p| p.1))
        .fold(1.0, f64::max)
        // Room above the lines for the legend.
        * 1.35;
    svg_text((900, 440), |root| {
        let mut chart = ChartBuilder::on(root)
            .caption(title, ("sans-serif", 20))
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(60)
            .build_cartesian_2d((x_min - pad)..(x_max + pad), 0.0..y_max)
            .map_err(draw_error)?;
        chart
            .configure_mesh()
            .y_desc(y_desc)
            .x_labels(8)
            .x_label_formatter(&|x| x_label(*x))
            .draw()
            .map_err(draw_error)?;
        for line in lines {
            let style = line.color.stroke_width(2);
            let dashed = line.dashed;
            // The legend's entry, whether or not the line has a point.
            chart
                .draw_series(LineSeries::new(std::iter::empty(), style))
                .map_err(draw_error)?
                .label(line.name.as_str())
                .legend(move |(x, y)| {
                    // A gap in the middle for a dashed line.
                    let gap = if dashed { 4 } else { 0 };
                    EmptyElement::at((x, y))
                        + PathElement::new(vec![(0, 0), (10 - gap, 0)], style)
                        + PathElement::new(vec![(10 + gap, 0), (20, 0)], style)
                });
            for run in defined_runs(&line.points) {
                if line.dashed {
                    chart
                        .draw_series(DashedLineSeries::new(run.clone(), 6, 4, style))
                        .map_err(draw_error)?;
                } else {
                    chart
                        .draw_series(LineSeries::new(run.clone(), style))
                        .map_err(draw_error)?;
                }
                chart
                    .draw_series(run.iter().map(|&p| Circle::new(p, 3, line.color.filled())))
                    .map_err(draw_error)?;
            }
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

/// The runs of consecutive points that have a value.
fn defined_runs(points: &[(f64, Option<f64>)]) -> Vec<Vec<(f64, f64)>> {
    let mut runs = Vec::new();
    let mut run = Vec::new();
    for &(x, y) in points {
        match y {
            Some(y) => run.push((x, y)),
            None if !run.is_empty() => runs.push(std::mem::take(&mut run)),
            None => {}
        }
    }
    if !run.is_empty() {
        runs.push(run);
    }
    runs
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_break_where_there_is_no_value() {
        let points = [
            (0.0, Some(0.5)),
            (1.0, None),
            (2.0, Some(1.0)),
            (3.0, Some(0.0)),
        ];
        assert_eq!(
            defined_runs(&points),
            vec![vec![(0.0, 0.5)], vec![(2.0, 1.0), (3.0, 0.0)]]
        );
        let svg = lines(
            "t",
            "share",
            &|x| format!("{x:.0}"),
            &[Line {
                name: "model precision".into(),
                color: RGBColor(0, 0, 0),
                dashed: true,
                points: points.to_vec(),
            }],
        )
        .expect("draws");
        assert!(svg.starts_with("<svg") && svg.contains("model precision"));
    }
}
