//! Histograms: counts in equal bins, drawn as bars.

use plotters::coord::Shift;
use plotters::prelude::*;

use crate::font::{register, FONT};
use crate::{draw_err, Result};

/// A histogram: counts of `values` in `bins` equal bins over `range`.
pub fn histogram(values: &[f64], range: (f64, f64), bins: usize) -> Vec<(f64, f64, usize)> {
    let width = (range.1 - range.0) / bins as f64;
    let mut counts = vec![0usize; bins];
    for &v in values.iter().filter(|v| v.is_finite()) {
        let i = (((v - range.0) / width).floor().max(0.0) as usize).min(bins - 1);
        counts[i] += 1;
    }
    counts
        .into_iter()
        .enumerate()
        .map(|(i, c)| (range.0 + i as f64 * width, range.0 + (i + 1) as f64 * width, c))
        .collect()
}

/// Draws histogram bars `(from, to, count)` into `area`.
pub fn draw_histogram(
    area: &DrawingArea<BitMapBackend<'_>, Shift>,
    title: &str,
    x_label: &str,
    bars: &[(f64, f64, usize)],
    colour: RGBColor,
) -> Result<()> {
    register();
    let x0 = bars.first().map_or(0.0, |b| b.0);
    let x1 = bars.last().map_or(1.0, |b| b.1);
    let top = bars.iter().map(|b| b.2).max().unwrap_or(1).max(1) as f64 * 1.05;
    let mut chart = ChartBuilder::on(area)
        .caption(title, (FONT, 18))
        .margin(12)
        .x_label_area_size(42)
        .y_label_area_size(64)
        .build_cartesian_2d(x0..x1, 0.0..top)
        .map_err(draw_err)?;
    chart
        .configure_mesh()
        .x_desc(x_label)
        .y_desc("weights")
        .label_style((FONT, 13))
        .axis_desc_style((FONT, 15))
        .disable_x_mesh()
        .draw()
        .map_err(draw_err)?;
    chart
        .draw_series(bars.iter().map(|&(a, b, c)| Rectangle::new([(a, 0.0), (b, c as f64)], colour.filled())))
        .map_err(draw_err)?;
    Ok(())
}
