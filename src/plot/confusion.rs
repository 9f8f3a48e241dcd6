//! Confusion matrices side by side: labels (rows) against predictions (columns), each
//! cell its count, shaded by its count on a log scale.

use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use tidelake_runtime::model::metrics::Confusion;

use super::{draw_error, svg_text};

/// `matrices` (title, counts) side by side, as SVG text.
pub fn confusion_matrices(matrices: &[(&str, Confusion)]) -> anyhow::Result<String> {
    let panels = matrices.len().max(1);
    let width = 440 * u32::try_from(panels).unwrap_or(1);
    svg_text((width, 380), |root| {
        for (area, (title, confusion)) in root.split_evenly((1, panels)).iter().zip(matrices) {
            draw_matrix(area, title, confusion)?;
        }
        Ok(())
    })
}

fn draw_matrix<DB: DrawingBackend>(
    area: &DrawingArea<DB, plotters::coord::Shift>,
    title: &str,
    confusion: &Confusion,
) -> anyhow::Result<()>
where
    DB::ErrorType: 'static,
{
    // Cells span x 0..2 (predicted fraud, not fraud) and y 0..2 (labelled not fraud
    // below, fraud above); the room left and above holds the headers.
    let mut chart = ChartBuilder::on(area)
        .caption(title, ("sans-serif", 18))
        .margin(14)
        .build_cartesian_2d(-0.9..2.05, -0.05..2.5)
        .map_err(draw_error)?;
    let cells = [
        ("TP", confusion.true_positives, 0.0, 1.0),
        ("FN", confusion.false_negatives, 1.0, 1.0),
        ("FP", confusion.false_positives, 0.0, 0.0),
        ("TN", confusion.true_negatives, 1.0, 0.0),
    ];
    let max = cells.iter().map(|c| c.1).max().unwrap_or(0);
    let centre = Pos::new(HPos::Center, VPos::Center);
    for (name, count, x, y) in cells {
        let shade = if max == 0 {
            0.0
        } else {
            (count as f64).ln_1p() / (max as f64).ln_1p()
        };
        let fill = RGBColor(
            blend(239, 30, shade),
            blend(246, 64, shade),
            blend(255, 175, shade),
        );
        let ink = if shade > 0.55 { WHITE } else { BLACK };
        chart
            .draw_series([Rectangle::new(
                [(x + 0.02, y + 0.02), (x + 0.98, y + 0.98)],
                fill.filled(),
            )])
            .map_err(draw_error)?;
        let big = ("sans-serif", 24).into_font().color(&ink).pos(centre);
        let small = ("sans-serif", 13).into_font().color(&ink).pos(centre);
        chart
            .draw_series([
                Text::new(count.to_string(), (x + 0.5, y + 0.55), big),
                Text::new(name.to_owned(), (x + 0.5, y + 0.25), small),
            ])
            .map_err(draw_error)?;
    }
    let header = ("sans-serif", 14).into_font().color(&BLACK).pos(centre);
    chart
        .draw_series([
            Text::new("predicted fraud", (0.5, 2.2), header.clone()),
            Text::new("predicted not", (1.5, 2.2), header.clone()),
            Text::new("labelled fraud", (-0.45, 1.5), header.clone()),
            Text::new("labelled not", (-0.45, 0.5), header),
        ])
        .map_err(draw_error)?;
    Ok(())
}

/// `from` moved a share `t` (0 to 1) of the way to `to`.
fn blend(from: u8, to: u8, t: f64) -> u8 {
    (f64::from(from) + (f64::from(to) - f64::from(from)) * t).round() as u8
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_cell_shows_its_count() {
        let confusion = Confusion {
            true_positives: 7,
            false_positives: 3,
            true_negatives: 9000,
            false_negatives: 2,
        };
        let svg = confusion_matrices(&[("Model", confusion), ("Rule", Confusion::default())])
            .expect("draws");
        for text in [
            "\n7\n",
            "\n3\n",
            "\n9000\n",
            "\n2\n",
            "predicted fraud",
            "Rule",
        ] {
            assert!(svg.contains(text), "{text} in {svg}");
        }
        assert_eq!(blend(0, 200, 0.5), 100);
    }
}
