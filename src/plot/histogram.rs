//! Histograms of counts on a log scale, one panel above the other (a report's score
//! distributions: fraud is rare, so its bars would vanish on a linear scale).

use plotters::prelude::*;

use super::{draw_error, svg_text};

/// One panel of [`log_histograms`]: counts in equal bins from `lo` to `hi`.
#[derive(Clone, Copy, Debug)]
pub struct Bins<'a> {
    /// The panel's title.
    pub title: &'a str,
    /// The bars' colour.
    pub color: RGBColor,
    /// The start of the first bin.
    pub lo: f64,
    /// The end of the last bin.
    pub hi: f64,
    /// The count in each bin.
    pub counts: &'a [u64],
}

/// `panels` one above the other, the x axis named `x_desc` and counts (rows) on a log
/// scale, as SVG text. Empty bins have no bar.
pub fn log_histograms(x_desc: &str, panels: &[Bins<'_>]) -> anyhow::Result<String> {
    let height = 300;
    let panel_count = u32::try_from(panels.len().max(1)).unwrap_or(1);
    svg_text((900, height * panel_count), |root| {
        let areas = root.split_evenly((panels.len().max(1), 1));
        for (area, bins) in areas.iter().zip(panels) {
            let top = bins.counts.iter().copied().max().unwrap_or(0).max(1) as f64 * 2.0;
            let mut chart = ChartBuilder::on(area)
                .caption(bins.title, ("sans-serif", 18))
                .margin(10)
                .x_label_area_size(36)
                .y_label_area_size(60)
                // Bars start below 1, so a count of 1 shows.
                .build_cartesian_2d(bins.lo..bins.hi, (0.5..top).log_scale())
                .map_err(draw_error)?;
            chart
                .configure_mesh()
                .disable_x_mesh()
                .x_desc(x_desc)
                .y_desc("rows (log)")
                .y_label_formatter(&|y| format!("{y:.0}"))
                .draw()
                .map_err(draw_error)?;
            let width = (bins.hi - bins.lo) / bins.counts.len().max(1) as f64;
            chart
                .draw_series(
                    bins.counts
                        .iter()
                        .enumerate()
                        .filter(|(_, count)| **count > 0)
                        .map(|(i, &count)| {
                            let x = bins.lo + i as f64 * width;
                            Rectangle::new(
                                [(x + width * 0.05, 0.5), (x + width * 0.95, count as f64)],
                                bins.color.filled(),
                            )
                        }),
                )
                .map_err(draw_error)?;
        }
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn panels_draw_a_bar_per_non_empty_bin() {
        let svg = log_histograms(
            "probability",
            &[
                Bins {
                    title: "fraud",
                    color: RGBColor(200, 0, 0),
                    lo: 0.0,
                    hi: 1.0,
                    counts: &[0, 1, 10, 1000],
                },
                Bins {
                    title: "not fraud",
                    color: RGBColor(0, 0, 200),
                    lo: 0.0,
                    hi: 1.0,
                    counts: &[0; 4],
                },
            ],
        )
        .expect("draws");
        assert!(svg.starts_with("<svg") && svg.contains("not fraud"));
        assert_eq!(svg.matches("fill=\"#C80000\"").count(), 3, "{svg}");
    }
}
