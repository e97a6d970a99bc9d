//! A scalar field on a square (a critic's value over the plane) drawn as colour, with a
//! colour bar that says which value each colour is, and labelled point sets over it.

use plotters::prelude::*;

use crate::chart::{draw_legend, tick};
use crate::font::{register, FONT};
use crate::png::Panel;
use crate::{draw_err, ChartError, Result};

/// Points drawn over a surface, named in the legend; each set over the ones before it.
#[derive(Debug, Clone)]
pub struct PointSet {
    pub label: String,
    pub points: Vec<(f64, f64)>,
    pub colour: RGBColor,
}

/// A field sampled at the centres of a `side × side` grid of cells covering
/// `[-radius, radius]²`, plus points.
#[derive(Debug, Clone)]
pub struct Surface {
    pub title: String,
    pub radius: f64,
    /// Row-major, row 0 at the top (`y` near `+radius`), column 0 at `x` near
    /// `-radius`. Empty: points on white, no colour bar.
    pub values: Vec<f64>,
    pub side: usize,
    /// What the colour bar measures ("critic value").
    pub value_label: String,
    pub points: Vec<PointSet>,
}

/// Width of the colour bar's panel, labels included.
const BAR_WIDTH: u32 = 110;
const OUTLINE: RGBColor = RGBColor(60, 60, 60);

impl Surface {
    /// The centre of cell `i` along an axis (0 = the low end).
    pub fn cell_centre(radius: f64, side: usize, i: usize) -> f64 {
        -radius + 2.0 * radius * (i as f64 + 0.5) / side as f64
    }

    pub fn draw_on(&self, area: &Panel<'_>) -> Result<()> {
        register();
        if !self.values.is_empty() && self.values.len() != self.side * self.side {
            return Err(ChartError::Draw(format!(
                "surface has {} values for a {}×{} grid",
                self.values.len(),
                self.side,
                self.side
            )));
        }
        let range = self.value_range();
        let (main, bar) = match range {
            Some(_) => {
                let (w, _) = area.dim_in_pixel();
                let (a, b) = area.split_horizontally(w.saturating_sub(BAR_WIDTH));
                (a, Some(b))
            }
            None => (area.clone(), None),
        };
        let r = self.radius;
        let mut chart = ChartBuilder::on(&main)
            .caption(&self.title, (FONT, 17))
            .margin(10)
            .x_label_area_size(40)
            .y_label_area_size(52)
            .build_cartesian_2d(-r..r, -r..r)
            .map_err(draw_err)?;
        chart
            .configure_mesh()
            .disable_mesh()
            .x_desc("x")
            .y_desc("y")
            .x_label_formatter(&|v| tick(*v, 2.0 * r))
            .y_label_formatter(&|v| tick(*v, 2.0 * r))
            .label_style((FONT, 12))
            .axis_desc_style((FONT, 14))
            .draw()
            .map_err(draw_err)?;
        if let Some((lo, hi)) = range {
            let half = r / self.side as f64;
            let cell = |k: usize| {
                let x = Self::cell_centre(r, self.side, k % self.side);
                let y = -Self::cell_centre(r, self.side, k / self.side);
                let c = viridis((self.values[k] - lo) / (hi - lo).max(1e-12));
                Rectangle::new([(x - half, y - half), (x + half, y + half)], c.filled())
            };
            chart.draw_series((0..self.values.len()).map(cell)).map_err(draw_err)?;
        }
        for (i, set) in self.points.iter().enumerate() {
            let colour = set.colour;
            // Later sets half transparent, so the sets under them still show.
            let alpha = if i == 0 { 1.0 } else { 0.55 };
            let inside = set.points.iter().copied().filter(|p| p.0.abs() <= r && p.1.abs() <= r);
            chart
                .draw_series(inside.map(move |p| {
                    // Outlined so a point shows on any part of the ramp.
                    EmptyElement::at(p)
                        + Circle::new((0, 0), 2, colour.mix(alpha).filled())
                        + Circle::new((0, 0), 3, OUTLINE.mix(alpha))
                }))
                .map_err(draw_err)?
                .label(&set.label)
                .legend(move |(x, y)| Circle::new((x + 8, y), 3, colour.filled()));
        }
        if !self.points.is_empty() {
            draw_legend(&mut chart)?;
        }
        match (bar, range) {
            (Some(bar), Some((lo, hi))) => self.draw_bar(&bar, lo, hi),
            _ => Ok(()),
        }
    }

    /// Finite values' range; `None` without values (or none finite).
    fn value_range(&self) -> Option<(f64, f64)> {
        let (lo, hi) =
            self.values.iter().filter(|v| v.is_finite()).fold((f64::MAX, f64::MIN), |(a, b), &v| (a.min(v), b.max(v)));
        (lo <= hi).then_some(if lo == hi { (lo - 0.5, hi + 0.5) } else { (lo, hi) })
    }

    fn draw_bar(&self, area: &Panel<'_>, lo: f64, hi: f64) -> Result<()> {
        let mut bar = ChartBuilder::on(area)
            .margin_top(40)
            .margin_bottom(50)
            .margin_right(8)
            .y_label_area_size(70)
            .build_cartesian_2d(0.0..1.0, lo..hi)
            .map_err(draw_err)?;
        bar.configure_mesh()
            .disable_mesh()
            .disable_x_axis()
            .y_desc(&self.value_label)
            .y_label_formatter(&|v| tick(*v, hi - lo))
            .label_style((FONT, 11))
            .axis_desc_style((FONT, 13))
            .draw()
            .map_err(draw_err)?;
        const STEPS: usize = 128;
        let step = (hi - lo) / STEPS as f64;
        let band = |i: usize| {
            let v = lo + i as f64 * step;
            Rectangle::new([(0.0, v), (1.0, v + step)], viridis((i as f64 + 0.5) / STEPS as f64).filled())
        };
        bar.draw_series((0..STEPS).map(band)).map_err(draw_err)?;
        Ok(())
    }
}

/// Dark purple (0) through blue and green to yellow (1): matplotlib's viridis, in five stops.
pub fn viridis(t: f64) -> RGBColor {
    const STOPS: [(f64, [f64; 3]); 5] = [
        (0.0, [68.0, 1.0, 84.0]),
        (0.25, [59.0, 82.0, 139.0]),
        (0.5, [33.0, 145.0, 140.0]),
        (0.75, [94.0, 201.0, 98.0]),
        (1.0, [253.0, 231.0, 37.0]),
    ];
    let t = if t.is_finite() { t.clamp(0.0, 1.0) } else { 0.0 };
    let k = STOPS.iter().position(|s| s.0 >= t).unwrap_or(4).max(1);
    let ((t0, a), (t1, b)) = (STOPS[k - 1], STOPS[k]);
    let u = (t - t0) / (t1 - t0);
    let mix = |i: usize| (a[i] + u * (b[i] - a[i])).round() as u8;
    RGBColor(mix(0), mix(1), mix(2))
}
